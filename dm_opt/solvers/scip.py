"""Exact MISOCP of the Gaussian data market with SCIP (``method="milp-scip"``, optional extra ``scip``).

The linear part is the MILP of :mod:`dm_opt.solvers.milp` (SPEC §1.2: ``P Λ + R T = I``,
McCormick for ``R_ij = P_ij a_j``, valid inequalities).  Instead of the outer
approximation, the own-signal term ``z_i ≥ g_i(P_ii) = P_ii²/(τ_i² − P_ii)``
of a sharer (Thm 2, eq. 5) is stated exactly as the rotated second-order cone

    R_ii² ≤ z_i (τ_i² a_i − R_ii),      z_i ≥ 0,  τ_i² a_i − R_ii ≥ 0,

the perspective of ``g_i`` (``R_ii = a_i P_ii``): for a sharer it is
``P_ii² ≤ z_i (τ_i² − P_ii)``; for a non-sharer ``R_ii = 0`` and it reads
``0 ≤ 0``.  The model's tangent table is kept as valid linear cuts (they
strengthen SCIP's LP relaxation; they never cut off a feasible point since
tangents under-estimate the convex ``g_i``).  One solve; the certificate is
SCIP's dual bound and the exact value of the rounded profile.

The budget on equilibrium payments ``Σ v_i z_i ≤ B`` is exact here (``z_i`` is
then at least the true payment ``g_i``), up to SCIP's feasibility tolerance; the
returned profile is verified with :meth:`SideConstraints.feasible` and a
violation is reported as a solver failure rather than silently accepted.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import SolverFailed
from ..result import Termination
from .base import Backend, RawSolution, register
from .milp import BINARY_TOL, DEFAULT_CUTS, DEFAULT_TANGENTS, build_model, gaussian_side_constraints


def optimize_interruptible(m) -> bool:
    """``m.optimize()`` where Ctrl-C stops SCIP at its next node or LP (status
    ``"userinterrupt"``, incumbent and bound kept) instead of after the solve.

    SCIP's own Ctrl-C catching is switched off (it prints on stdout); a Python
    SIGINT handler sets a flag and an event handler on node/LP events calls
    ``interruptSolve``; the previous SIGINT handler is restored.  Returns whether
    Ctrl-C arrived.  Outside the main thread: plain ``optimize``.
    """
    import signal
    import threading

    import pyscipopt as ps

    if threading.current_thread() is not threading.main_thread():
        m.optimize()
        return False
    hit = [False]
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


def solve_scip(market, objective, *, constraints=None, time_limit=None, tol=0.0,
               n_tangents=DEFAULT_TANGENTS, cuts=DEFAULT_CUTS, threads=None) -> RawSolution:
    import pyscipopt as ps

    t0 = time.perf_counter()
    n = market.n
    model = build_model(market, objective, constraints, n_tangents=n_tangents, symmetric=True, cuts=cuts)
    m = ps.Model()
    m.hideOutput()
    m.setParam("randomization/randomseedshift", 0)
    m.setParam("limits/gap", 1e-9)
    m.setParam("numerics/feastol", 1e-8)
    x = []
    for j in range(model.num_col):
        lo = model.col_lo[j]
        hi = model.col_hi[j]
        x.append(m.addVar(name=model.col_names[j], vtype="B" if model.integer[j] else "C",
                          lb=None if lo == -np.inf else float(lo), ub=None if hi == np.inf else float(hi)))
    A = model.A
    for r in range(A.shape[0]):
        s, e = A.indptr[r], A.indptr[r + 1]
        expr = ps.quicksum(float(v) * x[c] for c, v in zip(A.indices[s:e], A.data[s:e]))
        lo, hi = model.row_lo[r], model.row_hi[r]
        if lo == hi:
            m.addCons(expr == float(lo))
        else:
            if lo > -np.inf:
                m.addCons(expr >= float(lo))
            if hi < np.inf:
                m.addCons(expr <= float(hi))
    t2 = market.noise_var
    for i in np.flatnonzero(model.col_z >= 0):
        R = x[model.col_R[i, i]]
        a = x[model.col_a[i]]
        z = x[model.col_z[i]]
        m.addCons(R * R <= z * (float(t2[i]) * a - R), name=f"cone[{i}]")
    # SCIP maximises a linear objective; the constant offset is added back
    m.setObjective(ps.quicksum(float(cst) * x[j] for j, cst in enumerate(model.cost) if cst != 0.0)
                   + model.offset, sense="maximize")
    if time_limit is not None:
        m.setParam("limits/time", max(float(time_limit) - (time.perf_counter() - t0), 0.01))
    if threads is not None:
        m.setParam("parallel/maxnthreads", int(threads))
    build_seconds = time.perf_counter() - t0
    ts = time.perf_counter()
    optimize_interruptible(m)
    solve_seconds = time.perf_counter() - ts
    st = m.getStatus()
    nodes = int(m.getNNodes())
    extra = {"rows": int(A.shape[0]), "cols": int(model.num_col), "cones": int(np.sum(model.col_z >= 0))}
    if st == "infeasible":
        return RawSolution(None, Termination.INFEASIBLE, float("-inf"), nodes=nodes,
                           build_seconds=build_seconds, solve_seconds=solve_seconds,
                           message="no profile satisfies the side constraints", extra=extra)
    if st not in ("optimal", "timelimit", "userinterrupt", "gaplimit", "nodelimit"):
        raise SolverFailed(f"SCIP stopped with status '{st}'")
    bound = float(m.getDualbound())
    # SCIP catches Ctrl-C itself (status "userinterrupt") and keeps its incumbent and bound
    stopped = {"userinterrupt": Termination.INTERRUPTED, "nodelimit": Termination.NODE_LIMIT}.get(
        st, Termination.TIME_LIMIT)
    if m.getNSols() == 0:
        return RawSolution(None, stopped, bound, nodes=nodes, build_seconds=build_seconds,
                           solve_seconds=solve_seconds, message=f"SCIP status '{st}' before a first solution", extra=extra)
    sol = m.getBestSol()
    av = np.array([m.getSolVal(sol, x[j]) for j in model.col_a])
    r = np.rint(av)
    if np.any(np.abs(av - r) > BINARY_TOL):
        raise SolverFailed(f"SCIP returned a binary farther than {BINARY_TOL:g} from 0/1")
    prof = np.clip(r, 0, 1).astype(np.int8)
    if constraints is not None and not constraints.feasible(market, objective.name, prof):
        raise SolverFailed("SCIP's profile violates the side constraints when checked exactly "
                           "(budget within the solver's feasibility tolerance); use method='milp'")
    status = Termination.OPTIMAL if st in ("optimal", "gaplimit") else stopped
    if status is Termination.OPTIMAL:
        # SCIP's bound carries its tolerances; keep the larger of the two
        bound = max(bound, market.evaluate(objective, prof))
    return RawSolution(prof, status, bound, nodes=nodes, build_seconds=build_seconds,
                       solve_seconds=solve_seconds, message="" if status is Termination.OPTIMAL
                       else f"SCIP status '{st}'", extra=extra)


@register
class MilpScip(Backend):
    """SCIP MISOCP (rotated cone for the own-signal term) — optional extra ``scip``."""

    name = "milp-scip"
    supports_constraints = True
    requires = "pyscipopt"
    OPTIONS = ("n_tangents", "cuts", "threads")

    def run(self, market, objective, *, all_optima, time_limit, constraints, tol, progress, options):
        self.check_options(options)
        sc = gaussian_side_constraints(market, objective, constraints)
        return solve_scip(market, objective, constraints=sc, time_limit=time_limit, tol=tol, **options)
