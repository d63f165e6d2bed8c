"""The ``milp`` backend: the outer-approximation loop around HiGHS, its certificate and
the attempts (layouts and HiGHS settings) tried until one is certified (model: :mod:`.model`)."""

from __future__ import annotations

import time

import numpy as np

from dm_opt.core.errors import ProblemError, SolverFailed
from dm_opt.core.registry import Backend, RawSolution, register
from dm_opt.core.result import Termination
from dm_opt.gaussian.backends.milp.model import (
    BINARY_TOL,
    DEFAULT_CUTS,
    DEFAULT_TANGENTS,
    HIGHS_FEASIBILITY,
    HIGHS_OPTIONS,
    POSTERIOR_FORMS,
    STRONGEST_CUTS,
    MilpModel,
    _stack_rows,
    _tangent_rows,
    build_model,
    check_range,
    condition_number,
    correlation_and_ratios,
    exact_terms,
    model_value,
    to_highs,
)
from dm_opt.gaussian.constraints import SideConstraints
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.objectives import LeakageObjective


def _round_profile(x: np.ndarray) -> np.ndarray:
    r = np.rint(x)
    bad = np.abs(x - r) > BINARY_TOL
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SolverFailed(f"MILP returned a[{i}] = {x[i]:.9g}, farther than {BINARY_TOL:g} from 0/1")
    return np.clip(r, 0, 1).astype(np.int8)


def trivial_bound(obj: LeakageObjective) -> float:
    """``Σ max(c,0) + Σ max(0, max(d,0) − k)``: valid in model units (``I ∈ [0, 1]``, ``e g ≥ 0``)."""
    return float(np.sum(np.maximum(obj.c, 0.0)) + np.sum(np.maximum(0.0, np.maximum(obj.d, 0.0) - obj.k)))


def certify(market, objective, profile, bound_model: float, scale: float, tol: float,
            deficit: float = 0.0) -> tuple[bool, float, str]:
    """The honest-status check shared by the MIP backends.

    Returns ``(optimal, bound, message)`` in the caller's units: ``optimal`` only if the
    bound exceeds ``market.evaluate(objective, profile)`` by at most ``tol`` and no round's
    bound fell more than ``tol`` below the exact value of a profile that round had to cover
    (``deficit``, model units: the largest such shortfall) — that would prove the LP
    under-valued a profile by more than ``tol``, so its bounds cannot be trusted to ``tol``.
    """
    value = market.evaluate(objective, profile)
    bound = bound_model * scale
    if not np.isfinite(value):
        return False, bound, f"the exact objective at the solver's profile is {value} (numerical trouble)"
    if bound - value > tol:
        return False, bound, (f"numerical trouble: the proven bound {bound:.17g} exceeds the exact objective "
                              f"{value:.17g} at the returned profile by {bound - value:.3g} > tol = {tol:.3g}")
    if deficit * scale > tol:
        return False, max(bound, value), (
            f"numerical trouble: a MILP round's bound fell {deficit * scale:.3g} below the exact value of a "
            f"profile it covers, more than tol = {tol:.3g}; the certificate is not reliable")
    return True, bound, ""


#: ``posterior_form="auto"`` tries the plain ``"precision"`` layout first when every noise ratio lies
#: in ``[1e-3, 1e2]`` and ``κ(C) ≤ 1e4`` (its LP relaxation is tighter — symmetric ``P`` — and it
#: solved 1.5–3× faster at n = 12–15, benchmarks/mip_root_gap.py --solve), then ``"mixed"``.
PRECISION_SAFE = (1e-3, 1e2, 1e4)
#: HiGHS settings tried in turn for a layout until an attempt is certified (:func:`certify`):
#: the default, tighter feasibility, presolve off.  Each attempt is certified on its own, so a
#: retry can only turn an uncertified answer ("numerical trouble", status ``error``) into a
#: certified one.
RETRY_OPTIONS = ({}, {"primal_feasibility_tolerance": 1e-9, "mip_feasibility_tolerance": 1e-9},
                 {"presolve": "off"})


def _attempts(market: GaussianMarket, posterior_form: str) -> list:
    if posterior_form != "auto":
        return [(posterior_form, o) for o in RETRY_OPTIONS]
    C, rho = correlation_and_ratios(market)
    lo, hi, kmax = PRECISION_SAFE
    first = [("precision", {})] if (np.min(rho) >= lo and np.max(rho) <= hi
                                    and condition_number(C) <= kmax) else []
    return first + [("mixed", o) for o in RETRY_OPTIONS]


def solve_milp(market: GaussianMarket, objective, *, constraints: SideConstraints | None = None,
               time_limit: float | None = None, tol: float = 0.0, posterior_form: str = "auto",
               user_highs: dict | None = None, **options) -> RawSolution:
    """The ``milp`` backend: :func:`solve_milp_once` for each attempt of :func:`_attempts` until one
    is certified (status not ``error``), within the (shared) time limit.

    An attempt that raises :class:`SolverFailed` (HiGHS "Solve error", a wrong infeasibility
    claim …) or returns status ``error`` is followed by the next; if none is certified the last
    ``error`` result is returned (message: every attempt's reason), or ``SolverFailed`` raised.
    ``extra["attempts"]`` lists the attempts made, ``extra["posterior_form"]`` the last one.
    Without ``cuts=``, ``"precision"`` attempts use :data:`STRONGEST_CUTS` and the others
    :data:`DEFAULT_CUTS`.
    """
    if posterior_form != "auto" and posterior_form not in POSTERIOR_FORMS:
        raise ProblemError(f"posterior_form must be 'auto' or one of {', '.join(map(repr, POSTERIOR_FORMS))}, "
                           f"got {posterior_form!r}")
    t0 = time.perf_counter()
    reasons, last, build, solve = [], None, 0.0, 0.0
    plans = _attempts(market, posterior_form)
    # default cuts per layout: the strongest on the plain "precision" layout (measured faster full
    # solves, docs/exact_solvers_milp.md "Root gaps"), the small-coefficient set on "mixed"
    cuts = options.pop("cuts", None)
    for k, (form, opts) in enumerate(plans):
        left = None
        if time_limit is not None:
            left = float(time_limit) - (time.perf_counter() - t0)
            if left <= 0 and last is not None:
                break
            left = max(left, 1e-3)
        label = form + ("" if not opts else " " + ",".join(f"{q}={v}" for q, v in opts.items()))
        try:
            raw = solve_milp_once(market, objective, constraints=constraints, time_limit=left, tol=tol,
                                  posterior_form=form, highs_options={**opts, **(user_highs or {})},
                                  cuts=(STRONGEST_CUTS if form == "precision" else DEFAULT_CUTS)
                                  if cuts is None else cuts, **options)
        except SolverFailed as exc:
            reasons.append(f"[{label}] {exc}")
            if k == len(plans) - 1 and last is None:
                raise SolverFailed("; ".join(reasons)) from None
            continue
        build += raw.build_seconds
        solve += raw.solve_seconds
        raw.build_seconds, raw.solve_seconds = build, solve
        raw.extra["attempts"] = [r.split("]")[0][1:] for r in reasons] + [label]
        raw.extra["posterior_form"] = form
        if raw.status is not Termination.ERROR:
            if reasons:
                raw.extra["failed_attempts"] = list(reasons)
            return raw
        reasons.append(f"[{label}] {raw.message}")
        last = raw
    if last is None:
        raise SolverFailed("; ".join(reasons) or "no MILP attempt ran")
    last.message = "no attempt was certified: " + "; ".join(reasons)
    return last


def solve_milp_once(market: GaussianMarket, objective, *, constraints: SideConstraints | None = None,
                    time_limit: float | None = None, tol: float = 0.0, n_tangents: int = DEFAULT_TANGENTS,
                    symmetric: bool = True, cuts=DEFAULT_CUTS, tangent_form: str = "perspective",
                    posterior_form: str = "mixed", max_rounds: int = 200,
                    polish: bool = True, threads: int | None = None,
                    highs_options: dict | None = None) -> RawSolution:
    """Outer-approximation loop around HiGHS (see the module docstring for the certificate)."""
    import highspy

    from dm_opt.core.highs import interruptible, set_options
    from dm_opt.core.status import highs_has_solution

    t0 = time.perf_counter()
    n = market.n
    empty, start = infeasible_result(market, objective, constraints)
    if empty is not None:
        return empty
    model = build_model(market, objective, constraints, n_tangents=n_tangents, symmetric=symmetric,
                        cuts=cuts, tangent_form=tangent_form, posterior_form=posterior_form)
    std = model.std
    S = std.scale
    tol = float(tol)
    tol_m = tol / S                                   # the tie tolerance in model units
    h = to_highs(model)
    set_options(h, **{"mip_rel_gap": 0.0, "mip_abs_gap": 0.5 * tol_m,
                      "mip_feasibility_tolerance": HIGHS_FEASIBILITY,
                      "primal_feasibility_tolerance": HIGHS_FEASIBILITY, "random_seed": 0,
                      **HIGHS_OPTIONS, **(highs_options or {})})
    if threads is not None:
        set_options(h, threads=int(threads))
    build_seconds = time.perf_counter() - t0
    deadline = None if time_limit is None else t0 + float(time_limit)
    problem = objective.name

    def feasible(a):
        return constraints is None or constraints.feasible(market, problem, a)

    seen: dict[bytes, float] = {}                       # profile -> exact value, model units (-inf: violates)
    best_val, best_a = -np.inf, None

    def consider(a):
        nonlocal best_val, best_a
        key = a.tobytes()
        if key in seen:
            return seen[key]
        val = model_value(std, a) if feasible(a) else -np.inf
        seen[key] = val
        if val > best_val:
            best_val, best_a = val, a.copy()
        return val

    # starting incumbents (cheap; they give HiGHS a primal bound and the time-limit path a profile)
    w = std.objective.c + std.objective.d
    starts = [np.zeros(n, np.int8), np.ones(n, np.int8), (w > 0).astype(np.int8)]
    if start is not None:
        starts.append(start)
    for a0 in starts:
        if constraints is not None:
            a0 = a0.copy()
            a0[list(constraints.force_in)] = 1
            a0[list(constraints.force_out)] = 0
        consider(a0)

    bound = trivial_bound(std.objective)              # valid before any MILP round
    deficit = 0.0                                     # largest (exact value − round bound) over covered profiles
    excluded: set[bytes] = set()                      # profiles cut off by a no-good
    nodes = 0
    rounds = 0
    status = Termination.OPTIMAL
    message = ""
    nogoods = 0
    excluded_best = -np.inf
    solve_seconds = 0.0
    # Ctrl-C inside h.run() is turned into HiGHS' own interrupt (solvers/highs.interruptible);
    # elsewhere in the loop it arrives as KeyboardInterrupt: both keep the incumbent and bound
    try:
        while True:
            if deadline is not None:
                left = deadline - time.perf_counter()
                if left <= 0:
                    status = Termination.TIME_LIMIT
                    break
                set_options(h, time_limit=max(left, 1e-3))
            if best_a is not None and np.isfinite(best_val):
                x0 = model.point(best_a)
                h.setSolution(model.num_col, np.arange(model.num_col, dtype=np.int32), x0)
            ts = time.perf_counter()
            with interruptible(h, deadline) as ctrl_c:
                h.run()
            solve_seconds += time.perf_counter() - ts
            rounds += 1
            ms = h.getModelStatus()
            info = h.getInfo()
            nodes += int(max(info.mip_node_count, 0))
            if ms == highspy.HighsModelStatus.kInfeasible:
                # the model is a relaxation of the profiles not yet excluded, so every feasible
                # profile is excluded and the optimum is the best excluded one
                if best_val > excluded_best + tol_m:
                    raise SolverFailed("HiGHS reports the MILP infeasible although a profile satisfying the "
                                       "side constraints is known (numerical trouble)")
                bound = min(bound, excluded_best)
                break
            if ms not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit,
                          highspy.HighsModelStatus.kInterrupt, highspy.HighsModelStatus.kSolutionLimit):
                raise SolverFailed(f"HiGHS stopped with model status {h.modelStatusToString(ms)}")
            # HiGHS' dual bound: a bound on the profiles not yet excluded (the model relaxes them)
            round_bound = float(info.mip_dual_bound)
            if np.isfinite(round_bound):
                bound = min(bound, max(round_bound, excluded_best))
            has_sol = highs_has_solution(h)
            new_rows = []
            if has_sol:
                x = np.asarray(h.getSolution().col_value)
                a = _round_profile(x[model.col_a])
                repeat = a.tobytes() in seen
                val = consider(a)
                if polish:
                    _polish(a, consider)
            if np.isfinite(round_bound):
                # every profile not excluded before this round is covered by its bound
                covered = max((v for kk, v in seen.items() if kk not in excluded), default=-np.inf)
                deficit = max(deficit, covered - round_bound)
            if has_sol:
                tangent_rows = _new_tangents(model, a)
                if val == -np.inf or ((repeat or not tangent_rows) and bound - best_val > tol_m):
                    # infeasible for the exact side constraints, or already valued exactly by the
                    # model with the gap still open: exclude it (its exact value, if feasible, is
                    # kept as excluded_best)
                    ones = np.flatnonzero(a == 1)
                    zeros = np.flatnonzero(a == 0)
                    new_rows.append((list(model.col_a[ones]) + list(model.col_a[zeros]),
                                     [-1.0] * ones.size + [1.0] * zeros.size, 1.0 - ones.size))
                    nogoods += 1
                    excluded.add(a.tobytes())
                    if val > -np.inf:
                        excluded_best = max(excluded_best, val)
                new_rows.extend(tangent_rows)
            if ms != highspy.HighsModelStatus.kOptimal:
                # kInterrupt from the deadline callback (ctrl_c.timed_out) is the time limit
                status = Termination.INTERRUPTED if ctrl_c.hit else Termination.TIME_LIMIT
                if ctrl_c.hit:
                    message = "interrupted by the user (Ctrl-C) during the MILP"
                break
            if bound - best_val <= tol_m:
                break
            if ctrl_c.hit:      # HiGHS finished this round before its next interrupt check
                status, message = Termination.INTERRUPTED, "interrupted by the user (Ctrl-C) between MILP rounds"
                break
            if rounds >= max_rounds:
                status = Termination.ITERATION_LIMIT
                message = f"stopped after max_rounds = {max_rounds} MILP rounds"
                break
            if not new_rows:
                raise SolverFailed("outer approximation made no progress (no new cut) with an open gap "
                                   f"{(bound - best_val) * S:.3g}")
            starts, idx, val_, lo = _stack_rows(new_rows)
            h.addRows(len(new_rows), lo, np.full(lo.size, np.inf), idx.size, starts[:-1].astype(np.int32),
                      idx, val_)
    except KeyboardInterrupt:
        status, message = Termination.INTERRUPTED, "interrupted by the user (Ctrl-C)"
    if status is Termination.TIME_LIMIT and not message:
        message = f"time limit {time_limit}s reached after {rounds} MILP round(s)"
    extra = {"oa_rounds": rounds, "nogood_cuts": nogoods,
             "tangents": int(sum(len(t) for t in model.tangents)),
             "rows": int(model.A.shape[0]), "cols": int(model.num_col), "nonzeros": int(model.A.nnz),
             "model_scale": S}
    if model.notes:
        extra["notes"] = list(model.notes)
    if not np.isfinite(best_val):
        best_a = None
    return finish_rounds(market, objective, best_a, best_val, status, bound, S, tol, deficit, nodes=nodes,
                         build_seconds=build_seconds, solve_seconds=solve_seconds, message=message, extra=extra)


def finish_rounds(market, objective, best_a, best_val, status, bound, S, tol, deficit, *, nodes, build_seconds,
                  solve_seconds, message, extra) -> RawSolution:
    """The raw solution at the end of a MIP backend's rounds (``milp`` and ``misocp-scip``): no
    profile -> ``infeasible`` (when the rounds finished) or the stop status with its bound; a
    finished run -> the honest status of :func:`certify`; a stopped one -> its bound, at least the
    incumbent's value.  ``bound``, ``best_val`` and ``deficit`` are in model units (scale ``S``)."""
    if best_a is None:
        if status is Termination.OPTIMAL:
            return RawSolution(None, Termination.INFEASIBLE, float("-inf"), nodes=nodes,
                               build_seconds=build_seconds, solve_seconds=solve_seconds,
                               message="no profile satisfies the side constraints", extra=extra)
        return RawSolution(None, status, float(bound * S), nodes=nodes, build_seconds=build_seconds,
                           solve_seconds=solve_seconds, message=message or "no feasible profile found",
                           extra=extra)
    if status is Termination.OPTIMAL:
        # honest status: the round bound against the exact value of the profile
        ok, bound_out, why = certify(market, objective, best_a, bound, S, tol, deficit)
        if not ok:
            status, message = Termination.ERROR, why
    else:
        bound_out = max(bound, best_val) * S
    return RawSolution(best_a, status, float(bound_out), nodes=nodes, build_seconds=build_seconds,
                       solve_seconds=solve_seconds, message=message, extra=extra)


def infeasible_result(market, objective, constraints: SideConstraints | None):
    """``(result, start)``: ``result`` is an ``infeasible`` RawSolution when the side constraints
    alone admit no profile (:meth:`SideConstraints.empty_reason`, then, with linear rows,
    :meth:`SideConstraints.search_profile` on a model without the posterior block), else ``None``;
    ``start`` is a profile satisfying the counts, forced users and linear rows (not necessarily
    a budget), maximising ``Σ (c+d−k) a`` as a proxy, or ``None``."""
    if constraints is None:
        return None, None
    reason = constraints.empty_reason(market.n)
    start = None
    if not reason and constraints.linear is not None:
        w = np.asarray(objective.c) + np.asarray(objective.d) - np.asarray(objective.k)
        found, start = constraints.search_profile(market.n, w)
        if found == "infeasible":
            reason = ("the linear rows, counts and forced users admit no 0/1 profile "
                      "(HiGHS on the constraint rows alone)")
    if not reason:
        return None, start
    return RawSolution(None, Termination.INFEASIBLE, float("-inf"),
                       message=f"infeasible side constraints: {reason}", extra={}), None


def _new_tangents(model: MilpModel, a: np.ndarray) -> list:
    """Tangent rows at ``a``'s exact leave-own-out variances for every sharer that has a ``z`` column."""
    std = model.std
    _, s = exact_terms(std.corr, std.rho, a)
    rows = []
    for i in np.flatnonzero((a == 1) & (model.col_z >= 0)):
        si = float(np.clip(s[i], model.s_lo[i], 1.0))
        if si <= 0 or any(abs(si - q) <= 1e-12 * max(1.0, si) for q in model.tangents[i]):
            continue
        model.tangents[i].append(si)
        rows.extend(_tangent_rows(model, i, np.array([si])))
    return rows


def _polish(a, consider):
    """One pass of single flips around ``a`` (exact evaluations; improves the incumbent only)."""
    for i in range(a.size):
        b = a.copy()
        b[i] ^= 1
        consider(b)


@register
class Milp(Backend):
    """HiGHS MILP of docs/spec.md §1.2 with an outer-approximation loop for the equilibrium."""

    name = "milp"
    supports_constraints = True
    requires = "highspy"
    OPTIONS = ("n_tangents", "symmetric", "cuts", "tangent_form", "posterior_form", "max_rounds",
               "polish", "threads", "highs_options", "verbose")

    def run(self, market, objective, *, all_optima, time_limit, constraints, tol, progress, options):
        options = dict(options)
        user = check_highs_options(options.pop("highs_options", None))
        if options.pop("verbose", False):
            user = {**user, "output_flag": True, "log_to_console": True}
        sc = gaussian_side_constraints(market, objective, constraints)
        check_range(market, objective, self.name)
        return solve_milp(market, objective, constraints=sc, time_limit=time_limit, tol=tol, user_highs=user,
                          **options)


def check_highs_options(highs_options) -> dict:
    """``options={"highs_options": {...}}``: HiGHS option names and values passed through to every
    HiGHS run of the backend (after its own settings, so they win), checked here before any work:
    an unknown name or a value HiGHS rejects raises :class:`ProblemError` naming it.  A looser gap
    or tolerance can only make the answer less certain, never wrong: the certificate check still
    decides the status (``feasible`` with the true gap when it fails)."""
    if highs_options is None:
        return {}
    if not isinstance(highs_options, dict):
        raise ProblemError(f"highs_options must be a dict of HiGHS option names and values, "
                           f"got {type(highs_options).__name__}")
    import highspy

    from dm_opt.core.highs import new_highs

    h = new_highs()
    for name, value in highs_options.items():
        if not isinstance(name, str) or h.setOptionValue(name, value) == highspy.HighsStatus.kError:
            raise ProblemError(f"highs_options: HiGHS rejected {name!r} = {value!r} (unknown option or bad "
                               f"value; see the HiGHS option list)")
    return dict(highs_options)


def gaussian_side_constraints(market, objective, constraints):
    """The MILP/MISOCP backends' shared entry check: Gaussian MSE markets only (the
    formulation is the posterior-precision one of docs/spec.md §1.2), side constraints validated."""
    if not isinstance(market, GaussianMarket):
        raise ProblemError(f"MILP backend is Gaussian-MSE-only (GaussianMarket); got {type(market).__name__}")
    sc = SideConstraints.from_any(constraints, market.n)
    if sc is not None:
        sc.check_problem(objective.name)
    return sc
