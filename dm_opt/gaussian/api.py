"""``dm_opt.solve``: one entry point for every Gaussian-market problem and backend."""

from __future__ import annotations

import logging
import time

import numpy as np

from dm_opt.core.errors import BackendUnavailable, ProblemError
from dm_opt.core.limits import check_time_limit
from dm_opt.core.registry import RawSolution, get_backend, known_methods
from dm_opt.core.result import Termination, relative_gap
from dm_opt.gaussian.backends.enumeration import default_tol, with_compile_seconds
from dm_opt.gaussian.constraints import SideConstraints
from dm_opt.gaussian.kernels.posterior import compile_timer
from dm_opt.gaussian.leakage.base import missing_market_methods
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.objectives import PROBLEMS, LeakageObjective
from dm_opt.gaussian.result import SolveResult

log = logging.getLogger(__name__)

#: ``method="auto"`` enumerates up to this n and uses an exact search backend above.
AUTO_ENUMERATE_MAX_N = 20
#: Backends tried by ``auto`` above the enumeration size, in order of preference.
AUTO_LARGE_N = ("bnb", "milp")


def _resolve_auto(market, objective, constraints, all_optima: bool = False) -> tuple[str, str]:
    if getattr(market, "kind", None) == "community_market" and not constraints:
        # K×K count-vector search (docs/spec.md §1.4); exact at any n
        return "community", f"auto: community (n = {market.n}, K = {market.K})"
    if not constraints and market.n <= AUTO_ENUMERATE_MAX_N:
        return "enumerate", f"auto: enumeration (n = {market.n} <= {AUTO_ENUMERATE_MAX_N})"
    if all_optima:
        # only enumeration lists every optimum of a general market: use it up to its own limit
        from dm_opt.gaussian.backends.enumeration import DEFAULT_MAX_N

        if constraints:
            raise ProblemError("all_optima=True with side constraints: no method lists every optimum under "
                               "side constraints; drop all_optima or the constraints")
        if market.n <= DEFAULT_MAX_N:
            return "enumerate", (f"auto: enumeration (all optima requested; n = {market.n} <= {DEFAULT_MAX_N})")
        raise ProblemError(f"all_optima=True needs exhaustive enumeration, which stops at n = {DEFAULT_MAX_N} "
                           f"(n = {market.n}); drop all_optima, or pass method='enumerate' with options "
                           f"max_n=... to walk 2^n profiles")
    for name in AUTO_LARGE_N:
        if name in known_methods():
            try:
                cls = get_backend(name)
            except BackendUnavailable:      # only a missing optional dependency; a bug must surface
                continue
            if constraints and not cls.supports_constraints:
                continue
            return name, f"auto: {name} (n = {market.n}{', side constraints' if constraints else ''})"
    if constraints:
        raise ProblemError("no available backend supports side constraints")
    return "enumerate", f"auto: enumeration (no other exact backend available, n = {market.n})"


def solve(market, problem: str | LeakageObjective = "equilibrium", method: str = "auto", *,
          all_optima: bool = False, time_limit: float | None = None, constraints=None,
          tol: float | None = None, progress: bool = False, **options) -> SolveResult:
    """Solve a Gaussian data market problem exactly.

    Parameters
    ----------
    market : GaussianMarket
    problem : {"first_best", "equilibrium", "decorrelated"} or LeakageObjective
        First best (Prop 1), Stackelberg equilibrium (Thm 1, prices of Thm 2),
        equilibrium after de-correlation (Thm 6); or any weighted-leakage
        objective (:class:`~dm_opt.gaussian.objectives.LeakageObjective`).
    method : {"auto", "enumerate", "bnb", "milp", ...}
        Backend; ``auto`` enumerates for ``n ≤ 20`` and uses an exact search
        backend above (``result.method`` and ``result.message`` say which).
    all_optima : bool
        Also return every optimal profile (ties within ``tol``) in ``result.optima``.
    time_limit : float, optional
        Seconds; on expiry the best profile found is returned with its proven
        bound and gap and status ``time_limit``.
    constraints : optional
        Side constraints for backends that take them (see the backend docs).
    tol : float, optional
        Absolute tie tolerance (default ``1e-9`` × the objective's scale).
    progress : bool
        Show a progress bar on long runs.
    **options
        Backend-specific options (e.g. ``workers``, ``max_n`` for enumeration).
    """
    if not isinstance(market, GaussianMarket) and missing_market_methods(market):
        raise ProblemError(
            f"dm_opt.solve takes a GaussianMarket or a leakage-oracle market (dm_opt.gaussian.leakage), got "
            f"{type(market).__name__} (missing {', '.join(missing_market_methods(market))}; derive from "
            f"dm_opt.gaussian.leakage.OracleMarketMixin); other market families have their own solve functions"
        )
    if isinstance(problem, LeakageObjective):
        objective = problem
        if objective.n != market.n:
            raise ProblemError(f"objective has {objective.n} weights, market has {market.n} users")
    elif isinstance(problem, str):
        objective = market.objective(problem)
    else:
        raise ProblemError(f"problem must be one of {', '.join(PROBLEMS)} or a LeakageObjective")
    time_limit = check_time_limit(time_limit)
    if tol is not None and not (isinstance(tol, (int, float)) and tol >= 0 and np.isfinite(tol)):
        raise ProblemError(f"tol must be a finite number >= 0, got {tol!r}")
    if not isinstance(method, str):
        raise ProblemError(f"method must be a string, got {type(method).__name__}")

    # validated once here (one message naming the field); None when empty
    constraints = SideConstraints.from_any(constraints, market.n)
    if constraints is not None:
        constraints.check_problem(objective.name)

    note = ""
    chosen = method
    if method == "auto":
        chosen, note = _resolve_auto(market, objective, constraints, all_optima)
    backend_cls = get_backend(chosen)
    backend_cls.check_options(options)          # unknown options named before any work
    log.info("%s: method %s (%s), n = %d", objective.name, chosen, note or "as requested", market.n)
    if objective.name not in backend_cls.problems and not backend_cls.general_objectives:
        raise ProblemError(f"method '{chosen}' does not solve problem '{objective.name}'")
    if all_optima and not backend_cls.supports_all_optima:
        raise ProblemError(f"method '{chosen}' cannot list all optima; use method='enumerate'")
    if tol is None:
        tol = default_tol(market, objective)
    with compile_timer() as jit:       # numba compilation / cache loading, reported apart from solving
        raw = backend_cls().run(market, objective, all_optima=all_optima, time_limit=time_limit,
                                constraints=constraints, tol=tol, progress=progress, options=dict(options))
    raw = with_compile_seconds(raw, jit["seconds"])
    result = finish(market, objective, raw, method=chosen, tol=tol, note=note)
    log.info("%s by %s: status %s, objective %.10g, bound %.10g, gap %.3g, %.3f s", objective.name, chosen,
             result.status, result.objective, result.bound, result.gap, result.seconds)
    return result


def finish(market: GaussianMarket, objective: LeakageObjective, raw: RawSolution, *,
           method: str, tol: float, note: str = "") -> SolveResult:
    """Complete a backend's raw answer: exact objective, prices, leakage, surplus, gap."""
    t0 = time.perf_counter()
    message = "; ".join(m for m in (note, raw.message) if m)
    n = market.n
    if raw.profile is None:
        status = raw.status
        if status is Termination.OPTIMAL:        # a backend bug: never "optimal" without a profile
            status = Termination.ERROR
            message = "; ".join(m for m in (message, "the backend returned no profile") if m)
        return SolveResult(
            problem=objective.name, method=method, status=status, profile=np.empty(0, np.int8),
            objective=float("-inf") if raw.status is not Termination.INFEASIBLE else float("nan"),
            bound=raw.bound, gap=float("inf"), prices=np.zeros(n), leakage=np.zeros(n),
            surplus=float("nan"), optima=None, tie_tol=tol, nodes=raw.nodes,
            build_seconds=raw.build_seconds, solve_seconds=raw.solve_seconds, message=message,
            extra=raw.extra,
        )
    a = np.asarray(raw.profile, dtype=np.int8)
    name = objective.name
    if hasattr(market, "result_arrays"):
        # the same four from one posterior (CommunityMarket: at n = 10⁷ the n-length passes dominate)
        value, leakage, surplus, prices = market.result_arrays(objective, a)
    else:
        value = market.evaluate(objective, a)
        if name == "decorrelated":
            leakage = market.decorrelated_leakage(a)
            surplus = market.decorrelated_surplus(a)
        else:
            leakage = market.leakage(a)
            surplus = market.surplus(a)
        if name in ("equilibrium", "decorrelated"):
            prices = market.prices(a, name)
        else:
            prices = np.zeros(n)
    status = raw.status
    finite = (np.isfinite(value) and np.all(np.isfinite(leakage)) and np.all(np.isfinite(prices))
              and np.isfinite(surplus))
    bound = max(raw.bound, value) if np.isfinite(value) else raw.bound
    if status is Termination.OPTIMAL:
        if not finite:
            # never "optimal" without a finite, re-evaluated answer
            status = Termination.ERROR
            message = "; ".join(m for m in (message, "the returned profile evaluates to a non-finite objective, "
                                            "prices or leakage") if m)
        elif not np.isfinite(raw.bound) or raw.bound - value > tol:
            # the backend's bound does not certify the exact value within the tie tolerance
            status = Termination.FEASIBLE
            message = "; ".join(m for m in (message, (
                f"not proven optimal: the backend's bound {raw.bound:.12g} exceeds the objective "
                f"{value:.12g} re-evaluated at the returned profile by {raw.bound - value:.3g} > tie_tol "
                f"{tol:.3g}")) if m)
        else:
            # proven optimal within the tie tolerance: the bound is the optimum (a backend's own
            # bound differs from the exact re-evaluation by round-off only)
            bound = value
    optima = None if raw.optima is None or status is not Termination.OPTIMAL else tuple(raw.optima)
    return SolveResult(
        problem=name, method=method, status=status, profile=a, objective=value, bound=bound,
        gap=relative_gap(value, bound), prices=prices, leakage=leakage, surplus=surplus,
        optima=optima, tie_tol=tol, nodes=raw.nodes, build_seconds=raw.build_seconds,
        solve_seconds=raw.solve_seconds + (time.perf_counter() - t0), message=message,
        extra=raw.extra,
    )
