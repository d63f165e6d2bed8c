"""Exact MISOCP of the Gaussian data market with SCIP (``method="misocp-scip"``, optional extra ``scip``).

The linear part is the MILP of :mod:`dm_opt.gaussian.backends.milp`, in the same standardised
model units (types divided by ``σ_i``: correlation matrix ``C``, noise ratios
``ρ_i = τ_i²/σ_i²``, objective divided by its scale ``S``; docs/spec.md §1.2:
``Q Λ + R T = I``, McCormick for ``R_ij = Q_ij a_j``, valid inequalities).  Instead
of the outer approximation, the own-signal term ``z_i ≥ g̃_i(Q_ii) = Q_ii²/(ρ_i − Q_ii)``
of a sharer (Thm 2, eq. 5) is stated exactly as the rotated second-order cone

    R_ii² ≤ z_i (ρ_i a_i − R_ii),      z_i ≥ 0,  ρ_i a_i − R_ii ≥ 0,

the perspective of ``g̃_i`` (``R_ii = a_i Q_ii``): for a sharer it is
``Q_ii² ≤ z_i (ρ_i − Q_ii)``; for a non-sharer ``R_ii = 0`` and it reads
``0 ≤ 0``.  The model's tangent table is kept as valid linear cuts (they
strengthen SCIP's LP relaxation; they never cut off a feasible point since
tangents under-estimate the convex ``g̃_i``).  SCIP runs with ``limits/gap = 0`` and
``limits/absgap = tol/(2S)``, warm-started with the best of three cheap profiles.  Its
profile and the profile's single-flip neighbours are valued exactly (a neighbour above
SCIP's bound refutes the bound).  When SCIP's bound still exceeds the best exact value by
more than ``tol`` (its feasibility tolerance at work), SCIP's profile is excluded by a
no-good cut and the model solved again (at most ``max_rounds``); ``max(bound,
excluded_best)`` stays valid, as in the ``milp`` loop.  The certificate is then checked
against ``market.evaluate`` (:func:`dm_opt.gaussian.backends.milp.certify`): ``optimal`` only when
bound and exact value are within ``tol``, else status ``error`` with the numbers.
Instances outside the guaranteed range (:data:`dm_opt.gaussian.backends.milp.RANGES`) are refused
up front.

The budget on equilibrium payments ``Σ v_i σ_i² z_i ≤ B`` is exact here (``z_i`` is
then at least the true payment), up to SCIP's feasibility tolerance; the
returned profile is verified with :meth:`SideConstraints.feasible` and a
violation is reported as a solver failure rather than silently accepted.
"""

from __future__ import annotations

import time

import numpy as np

from dm_opt.core.errors import ProblemError, SolverFailed
from dm_opt.core.registry import Backend, RawSolution, register
from dm_opt.core.result import Termination
from dm_opt.gaussian.backends.milp import (
    BINARY_TOL,
    DEFAULT_CUTS,
    DEFAULT_TANGENTS,
    build_model,
    check_range,
    finish_rounds,
    gaussian_side_constraints,
    infeasible_result,
    model_value,
)

#: SCIP's feasibility tolerance (model units; its default is 1e-6).
FEASTOL = 1e-9


def optimize_interruptible(m, hit: list | None = None) -> bool:
    """``m.optimize()`` where Ctrl-C stops SCIP at its next node or LP (status
    ``"userinterrupt"``, incumbent and bound kept) instead of after the solve.

    SCIP's own Ctrl-C catching is switched off (it prints on stdout); a Python
    SIGINT handler sets a flag and an event handler on node/LP events calls
    ``interruptSolve``; the previous SIGINT handler is restored.  Returns whether
    Ctrl-C arrived.  Outside the main thread: plain ``optimize``.

    A model solved several times (the no-good rounds of :func:`solve_scip`) passes the same
    one-element list ``hit`` each time: the event handler is included on the first call only
    (SCIP refuses a second handler of the same name) and reads the flag from that list.
    """
    import signal
    import threading

    import pyscipopt as ps

    if threading.current_thread() is not threading.main_thread():
        m.optimize()
        return False
    first = hit is None or not hit
    if hit is None:
        hit = []
    if first:
        hit[:] = [False]
        E = ps.SCIP_EVENTTYPE
        events = E.NODEEVENT | E.LPEVENT | E.PRESOLVEROUND | E.DUALBOUNDIMPROVED | E.SOLEVENT

        class _CtrlC(ps.Eventhdlr):
            def eventinit(self):
                self.model.catchEvent(events, self)

            def eventexit(self):
                self.model.dropEvent(events, self)

            def eventexec(self, event):
                if hit[0]:
                    self.model.interruptSolve()

        m.includeEventhdlr(_CtrlC(), "dm_opt_ctrl_c", "stop the solve on Ctrl-C")
        # SCIP's own handler would print "pressed CTRL-C" on stdout (breaking --json output)
        m.setParam("misc/catchctrlc", False)

    def on_sigint(signum, frame):
        hit[0] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        m.optimize()
    finally:
        signal.signal(signal.SIGINT, previous)
    return hit[0]


def check_scip_options(scip_options) -> dict:
    """``options={"scip_options": {...}}``: SCIP parameter names and values (``"limits/nodes"``,
    ``"lp/threads"``, …) passed to every SCIP solve of the backend after its own settings (so they
    win), checked here before any work on a throw-away model: an unknown name or a value SCIP
    rejects raises :class:`ProblemError` naming it (as ``highs_options`` for ``milp``).  A looser
    gap or tolerance can only make the answer less certain, never wrong: the certificate check
    still decides the status."""
    if scip_options is None:
        return {}
    if not isinstance(scip_options, dict):
        raise ProblemError(f"scip_options must be a dict of SCIP parameter names and values, "
                           f"got {type(scip_options).__name__}")
    import pyscipopt as ps

    m = ps.Model()
    m.hideOutput()
    for name, value in scip_options.items():
        if not isinstance(name, str):
            raise ProblemError(f"scip_options: parameter names are strings like 'limits/nodes', got {name!r}")
        try:
            m.getParam(name)
        except (KeyError, LookupError):
            raise ProblemError(f"scip_options: unknown SCIP parameter {name!r} (see SCIP's parameter list, "
                               f"e.g. 'limits/nodes')") from None
        try:
            m.setParam(name, value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ProblemError(f"scip_options: SCIP rejected {name!r} = {value!r} ({exc})") from None
    return dict(scip_options)


def solve_scip(market, objective, *, constraints=None, time_limit=None, tol=0.0,
               n_tangents=DEFAULT_TANGENTS, cuts=DEFAULT_CUTS, threads=None, max_rounds: int = 20,
               scip_options: dict | None = None, verbose: bool = False) -> RawSolution:
    """The MISOCP rounds of the module docstring; ``scip_options`` (checked by
    :func:`check_scip_options`) are set after the backend's own parameters, ``verbose`` shows
    SCIP's log on stdout."""
    import pyscipopt as ps

    t0 = time.perf_counter()
    empty, seed = infeasible_result(market, objective, constraints)
    if empty is not None:
        return empty
    model = build_model(market, objective, constraints, n_tangents=n_tangents, symmetric=True, cuts=cuts)
    S = model.scale
    tol = float(tol)
    tol_m = tol / S
    m = ps.Model()
    m.hideOutput(quiet=not verbose)
    m.setParam("randomization/randomseedshift", 0)
    # a proven-optimal SCIP answer must be within tol: no relative gap, absolute gap tol/2 (model units)
    m.setParam("limits/gap", 0.0)
    m.setParam("limits/absgap", 0.5 * tol_m)
    m.setParam("numerics/feastol", FEASTOL)
    x = []
    for j in range(model.num_col):
        lo = model.col_lo[j]
        hi = model.col_hi[j]
        x.append(m.addVar(name=model.col_names[j], vtype="B" if model.integer[j] else "C",
                          lb=None if lo == -np.inf else float(lo), ub=None if hi == np.inf else float(hi)))
    A = model.A
    if A.data.size and float(np.max(np.abs(A.data))) >= m.infinity():
        # SCIP raises a bare Exception ("error in input data") on a coefficient it reads as infinite
        raise ProblemError(f"constraints.linear: a coefficient of magnitude {float(np.max(np.abs(A.data))):.3g} is at "
                           f"or above SCIP's infinity ({m.infinity():g}); method 'misocp-scip' cannot model it: "
                           f"rescale the row or use method='bnb'")
    for r in range(A.shape[0]):
        s, e = A.indptr[r], A.indptr[r + 1]
        expr = ps.quicksum(float(v) * x[c] for c, v in zip(A.indices[s:e], A.data[s:e], strict=True))
        lo, hi = model.row_lo[r], model.row_hi[r]
        if lo == hi:
            m.addCons(expr == float(lo))
        else:
            if lo > -np.inf:
                m.addCons(expr >= float(lo))
            if hi < np.inf:
                m.addCons(expr <= float(hi))
    rho = model.std.rho
    for i in np.flatnonzero(model.col_z >= 0):
        R = x[model.col_R[i, i]]
        a = x[model.col_a[i]]
        z = x[model.col_z[i]]
        if model.layout == "mixed":
            # R_ii = φ_i U_ii: (φU)² ≤ z (ρ a − φU)  ⇔  φ U² ≤ z ((ρ/φ) a − U)  (φ = min(ρ, 1))
            ph = float(model.phi[i])
            m.addCons(ph * R * R <= z * (float(rho[i]) / ph * a - R), name=f"cone[{i}]")
        else:
            m.addCons(R * R <= z * (float(rho[i]) * a - R), name=f"cone[{i}]")
    # SCIP maximises a linear objective; the constant offset is added back
    m.setObjective(ps.quicksum(float(cst) * x[j] for j, cst in enumerate(model.cost) if cst != 0.0)
                   + model.offset, sense="maximize")
    # a starting incumbent (nobody / everybody / users with positive weight, the best feasible
    # one): SCIP gets a primal bound, and a time limit before SCIP's first solution still
    # returns a profile
    start, start_val = None, -np.inf
    w = model.std.objective.c + model.std.objective.d
    for a0 in [np.zeros(model.n, np.int8), np.ones(model.n, np.int8), (w > 0).astype(np.int8)] + (
            [] if seed is None else [seed.copy()]):
        if constraints is not None:
            a0[list(constraints.force_in)] = 1
            a0[list(constraints.force_out)] = 0
            if not constraints.feasible(market, objective.name, a0):
                continue
        v0 = model_value(model.std, a0)
        if v0 > start_val:
            start, start_val = a0, v0
    if start is not None:
        sol = m.createSol()
        for j, v in enumerate(model.point(start)):
            m.setSolVal(sol, x[j], float(v))
        m.addSol(sol, free=True)          # SCIP checks it; a rejected start is harmless
    if threads is not None:
        m.setParam("parallel/maxnthreads", int(threads))
    for name, value in (scip_options or {}).items():
        m.setParam(name, value)
    deadline = None if time_limit is None else t0 + float(time_limit)
    build_seconds = time.perf_counter() - t0
    extra = {"rows": int(A.shape[0]), "cols": int(model.num_col), "cones": int(np.sum(model.col_z >= 0)),
             "model_scale": S}

    def feasible(a):
        return constraints is None or constraints.feasible(market, objective.name, a)

    seen: dict[bytes, float] = {}                       # profile -> exact value (model units)
    best_a, best_val = (None, -np.inf) if start is None else (start.copy(), start_val)
    if start is not None:
        seen[start.tobytes()] = start_val
    excluded: set[bytes] = set()
    excluded_best = -np.inf
    bound = np.inf
    deficit = 0.0
    nodes = rounds = 0
    solve_seconds = 0.0
    status, message = Termination.OPTIMAL, ""
    ctrl_c: list = []                                   # Ctrl-C flag shared by the rounds' solves
    presolve_off = False
    objlimit = None                                     # set from the second round on
    while True:
        if deadline is not None:
            left = deadline - time.perf_counter()
            if left <= 0:
                status = Termination.TIME_LIMIT
                message = f"time limit {time_limit}s reached after {rounds} SCIP round(s)"
                break
            m.setParam("limits/time", max(left, 0.01))
        ts = time.perf_counter()
        try:
            optimize_interruptible(m, ctrl_c)
        except Exception as exc:        # pyscipopt raises a bare Exception on SCIP errors (e.g. LP trouble)
            raise SolverFailed(f"SCIP failed: {exc}") from None
        solve_seconds += time.perf_counter() - ts
        rounds += 1
        st = m.getStatus()
        nodes += int(m.getNNodes())
        if st == "infeasible" and objlimit is not None:
            # with the objective limit best + tol/2 "infeasible" means: no profile not yet excluded
            # is worth more.  SCIP's presolve was measured calling feasible models infeasible, so
            # the claim is confirmed once without presolve before it closes the gap
            if not presolve_off:
                m.freeTransform()
                m.setPresolve(ps.SCIP_PARAMSETTING.OFF)
                presolve_off = True
                extra["presolve_off"] = True
                continue
            bound = min(bound, max(objlimit, excluded_best))
            break
        if st == "infeasible" and best_val > excluded_best + tol_m and not presolve_off:
            # SCIP's presolve was measured calling a feasible model infeasible (round-off in the
            # posterior block together with linear side rows): a known profile refutes the claim,
            # so solve again without presolve
            m.freeTransform()
            m.setPresolve(ps.SCIP_PARAMSETTING.OFF)
            presolve_off = True
            extra["presolve_off"] = True
            continue
        if st == "infeasible":
            # every profile satisfying the side constraints is excluded (or there is none)
            if best_val > excluded_best + tol_m:
                raise SolverFailed("SCIP reports the model infeasible although a profile satisfying the side "
                                   "constraints is known (numerical trouble)")
            bound = min(bound, excluded_best)
            break
        if st not in ("optimal", "timelimit", "userinterrupt", "gaplimit", "nodelimit"):
            raise SolverFailed(f"SCIP stopped with status '{st}'")
        round_bound = float(m.getDualbound())       # model units, over the profiles not excluded
        base = None
        if m.getNSols() > 0:
            sol = m.getBestSol()
            av = np.array([m.getSolVal(sol, x[j]) for j in model.col_a])
            r = np.rint(av)
            if np.any(np.abs(av - r) > BINARY_TOL):
                raise SolverFailed(f"SCIP returned a binary farther than {BINARY_TOL:g} from 0/1")
            base = np.clip(r, 0, 1).astype(np.int8)
            # a profile feasible only within SCIP's tolerance (a budget, a linear row relaxed by its
            # slack) fails the exact check below: it is never an incumbent, and while the gap is
            # open it is excluded by a no-good cut like any other (the model stays a relaxation)
            # SCIP's profile and its single-flip neighbours, valued exactly: a neighbour above SCIP's
            # bound refutes it (deficit below), and the incumbent improves
            for i in range(-1, model.n):
                b = base.copy()
                if i >= 0:
                    b[i] ^= 1
                key = b.tobytes()
                if key in seen or not feasible(b):
                    continue
                seen[key] = model_value(model.std, b)
                if seen[key] > best_val:
                    best_a, best_val = b, seen[key]
        if np.isfinite(round_bound):
            covered = max((v for k, v in seen.items() if k not in excluded), default=-np.inf)
            deficit = max(deficit, covered - round_bound)
            bound = min(bound, max(round_bound, excluded_best))
        if st not in ("optimal", "gaplimit"):
            # SCIP catches Ctrl-C itself (status "userinterrupt") and keeps its incumbent and bound
            status = {"userinterrupt": Termination.INTERRUPTED, "nodelimit": Termination.NODE_LIMIT}.get(
                st, Termination.TIME_LIMIT)
            message = f"SCIP status '{st}'"
            break
        if bound - best_val <= tol_m or base is None:
            break
        if rounds >= max_rounds:
            status, message = Termination.ITERATION_LIMIT, f"stopped after max_rounds = {max_rounds} SCIP rounds"
            break
        # the gap is open although SCIP proved its profile optimal (its tolerances): exclude that
        # profile by a no-good cut and solve again; max(next bound, excluded_best) stays valid
        excluded.add(base.tobytes())
        excluded_best = max(excluded_best, seen.get(base.tobytes(), -np.inf))
        m.freeTransform()
        ones, zeros = np.flatnonzero(base == 1), np.flatnonzero(base == 0)
        m.addCons(ps.quicksum(1 - x[model.col_a[i]] for i in ones) + ps.quicksum(x[model.col_a[i]] for i in zeros)
                  >= 1, name=f"nogood[{rounds}]")
        # the next round only has to show that no other profile beats best + tol/2: with that
        # objective limit SCIP prunes everything below it instead of closing its own gap to tol/2
        # (measured taking > 20 s at n = 5)
        if np.isfinite(best_val):
            objlimit = best_val + 0.5 * tol_m
            m.setObjlimit(objlimit)
        if best_a is not None and best_a.tobytes() not in excluded:
            sol = m.createSol()
            for j, v in enumerate(model.point(best_a)):
                m.setSolVal(sol, x[j], float(v))
            m.addSol(sol, free=True)
    extra["scip_rounds"] = rounds
    extra["nogood_cuts"] = len(excluded)
    return finish_rounds(market, objective, best_a, best_val, status, bound, S, tol, deficit, nodes=nodes,
                         build_seconds=build_seconds, solve_seconds=solve_seconds, message=message, extra=extra)


@register
class MilpScip(Backend):
    """SCIP MISOCP (rotated cone for the own-signal term) — optional extra ``scip``."""

    name = "misocp-scip"
    supports_constraints = True
    requires = "pyscipopt"
    OPTIONS = ("n_tangents", "cuts", "threads", "max_rounds", "scip_options", "verbose")

    def run(self, market, objective, *, all_optima, time_limit, constraints, tol, progress, options):
        self.check_options(options)
        options = dict(options)
        options["scip_options"] = check_scip_options(options.get("scip_options"))
        options["verbose"] = bool(options.get("verbose", False))
        sc = gaussian_side_constraints(market, objective, constraints)
        check_range(market, objective, self.name)
        return solve_scip(market, objective, constraints=sc, time_limit=time_limit, tol=tol, **options)
