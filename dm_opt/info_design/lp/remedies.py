"""The slides' three remedies: the data union (:func:`data_union`), data taxes
(:func:`data_taxes`) and more-complete markets with use-contingent prices
(:func:`complete_markets`)."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from dm_opt.core.errors import LimitExceeded, ProblemError, SolverFailed
from dm_opt.core.limits import Deadline, Stopped
from dm_opt.core.result import Termination, frozen_array, relative_gap
from dm_opt.info_design import bbm
from dm_opt.info_design.common import (
    HIGHS_LP_BYTES,
    HighsModel,
    _check_size,
    _obedient,
    _pq_blocks,
    _pq_nnz,
    _scale,
    _threshold_form,
    mechanism_from_y,
    planner_bound,
    reduced_costs,
)
from dm_opt.info_design.lp.efficiency import PieceLP, constrained_efficiency
from dm_opt.info_design.lp.pieces import value_pieces
from dm_opt.info_design.lp.platform import _partial_platform, _platform_method, solve_platform
from dm_opt.info_design.market import InfoDesignMarket
from dm_opt.info_design.results import (
    CompleteMarketResult,
    EfficiencyResult,
    TaxResult,
    UnionResult,
    ValuePieces,
)


def data_union(market: InfoDesignMarket, *, pieces: ValuePieces | None = None, time_limit=None,
               method: str = "auto") -> UnionResult:
    """Solve the slides' data-union problem exactly: one LP per piece of V with
    the payments ``P(ω) = p(ω) q̄(ω)`` as variables, budget ``Σ P = V(q)`` and
    participation ``P(ω) + Σ_a u(a,ω) y(a,ω) − r̄ q(ω) ≥ 0`` (the slides'
    constraint multiplied by ``q̄(ω)``).  ``time_limit`` (seconds or a shared
    Deadline) and Ctrl-C return the best piece solved so far (no trade if none)
    with the bound of :class:`UnionResult`.  ``method="bbm"`` (auto when it
    applies and no ``pieces`` are given): the closed form of
    :func:`dm_opt.info_design.bbm.data_union` (value ``W° + r̄``)."""
    if method not in ("auto", "bbm", "pieces"):
        raise ProblemError(f"unknown method {method!r} for the data union; use auto, bbm or pieces")
    if method == "bbm" or (method == "auto" and pieces is None and bbm.applies(market)):
        return bbm.data_union(market, time_limit=time_limit)

    dl = Deadline.of(time_limit)
    t0 = time.perf_counter()
    pieces = pieces or value_pieces(market, time_limit=dl)
    status = pieces.status
    best = None
    done = 0
    if status is Termination.OPTIMAL:
        try:
            lp = PieceLP(market, union=True)
            for lam in pieces.gradients:
                dl.check()
                r = lp.solve(lam, time_limit=dl)
                done += 1
                if r is not None and (best is None or r[0] > best[0]):
                    best = r
        except Stopped as stop:
            status = stop.status
        except KeyboardInterrupt:
            status = Termination.INTERRUPTED
    if best is None:      # nobody sells: members keep r̄, no payments
        n = market.n
        best = (market.reservation * float(market.prior.sum()), np.zeros(n), np.zeros((market.m, n)), np.zeros(n))
    val, q, y, P = best
    with np.errstate(divide="ignore", invalid="ignore"):
        prices = np.where(market.prior > 0, P / np.where(market.prior > 0, market.prior, 1), 0.0)
    x = mechanism_from_y(market, y, q)
    bound = val if status is Termination.OPTIMAL else max(val, planner_bound(market) + market.reservation)
    message = "" if status is Termination.OPTIMAL else (
        f"stopped ({status}) after {done} of {len(pieces.gradients)} piece LPs"
        + ("" if pieces.status is Termination.OPTIMAL else " (piece list of V incomplete)")
        + "; best union allocation found, bound planner_bound + r̄")
    return UnionResult(val, val - market.reservation * float(market.prior.sum()), frozen_array(q), frozen_array(x),
                       frozen_array(prices), float(np.sum(market.v * y)), time.perf_counter() - t0,
                       status, bound, relative_gap(val, bound), message)


def data_taxes(market: InfoDesignMarket, *, efficiency: EfficiencyResult | None = None,
               time_limit=None) -> TaxResult:
    """Taxes implementing a constrained-efficient allocation, with the checks.

    ``time_limit`` (seconds or a shared Deadline) and Ctrl-C apply to the
    constrained-efficiency solve; if it stops early the taxes implement the best
    allocation found, ``status`` says so and ``efficient_welfare`` is that
    allocation's welfare (not a proven ``W°``); if ``P_q°`` (an LP, or the closed
    form) is stopped, the prices are unknown (NaN), the checks are not run (False) and
    ``status``/``message`` say so.
    """
    dl = Deadline.of(time_limit)
    t0 = time.perf_counter()
    eff = efficiency or constrained_efficiency(market, time_limit=dl)
    q, x = np.asarray(eff.q), np.asarray(eff.x)
    if dl.expired() and _platform_method(market, "auto") == "lp":    # no time left to build P_q°
        sol = _partial_platform(market, q, Termination.TIME_LIMIT, None, time.perf_counter())
    else:
        sol = solve_platform(market, q, intervals=False, time_limit=dl)
    p = np.asarray(sol.supergradient)
    U = market.consumer_utility(x)
    tau = p + U - market.reservation
    revenue = float(np.sum(tau * q))
    scale = _scale(market)
    tol = 1e-6 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        zeta = np.where(market.prior > 0, q / np.where(market.prior > 0, market.prior, 1), 0.0)
    notes = []
    if eff.status is not Termination.OPTIMAL:
        notes.append(f"constrained efficiency stopped ({eff.status}): the taxes implement the best allocation "
                     f"found, not a proven W°")
    if not np.all(np.isfinite(p)):
        notes.append(f"P_q° was not solved ({sol.status}): prices and taxes unknown (NaN), checks not run")
        checks = {"price_is_supergradient": False, "mechanism_optimal": False, "consumers_optimal": False,
                  "market_clears": False}
        status = eff.status if eff.status is not Termination.OPTIMAL else sol.status
        return TaxResult(frozen_array(tau), frozen_array(p), frozen_array(q), frozen_array(x), frozen_array(zeta),
                         revenue, False, float("nan"), eff.welfare, False, checks, status, "; ".join(notes),
                         time.perf_counter() - t0)
    # (a) p ∈ ∂V(q°): zero profit and p in proj D (dual feasibility, checked by LP)
    zero_profit = abs(float(p @ q) - sol.value) <= tol
    # the solve's own obedience duals certify p ∈ proj D directly; otherwise ask an LP
    in_D = bool(reduced_costs(market, sol).min() >= -tol) or _in_dual_polyhedron(market, p, tol, deadline=dl)
    if in_D is None:
        notes.append("time limit reached while checking p ∈ ∂V(q°): that check is not done (False)")
    # (b) x° optimal in P_q°
    y = x * q[None, :]
    x_opt = abs(float(np.sum(market.v * y)) - sol.value) <= tol and _obedient(market, y, tol)
    # (c) consumers indifferent: p + U − τ = r̄, so ζ* = q°/q̄ is optimal
    consumers = bool(np.all(np.abs(p + U - tau - market.reservation) <= tol))
    # (d) market clearing with ζ ∈ [0, 1]
    clearing = bool(np.all(zeta >= -tol) and np.all(zeta <= 1 + tol))
    consumers_welfare = float(np.sum(q * (p + U - tau)) + np.sum((market.prior - q) * market.reservation))
    profit = sol.value - float(p @ q)
    welfare = consumers_welfare + profit + revenue - market.reservation * float(market.prior.sum())
    checks = {"price_is_supergradient": bool(zero_profit and in_D), "mechanism_optimal": bool(x_opt),
              "consumers_optimal": consumers, "market_clears": clearing}
    if eff.status is not Termination.OPTIMAL:
        status = eff.status
    elif sol.status is not Termination.OPTIMAL:
        status = sol.status
    elif in_D is None:
        status = Termination.TIME_LIMIT
    else:
        status = Termination.OPTIMAL
    return TaxResult(frozen_array(tau), frozen_array(p), frozen_array(q), frozen_array(x), frozen_array(zeta), revenue,
                     revenue >= -tol, welfare, eff.welfare, all(checks.values()), checks, status, "; ".join(notes),
                     time.perf_counter() - t0)


def _in_dual_polyhedron(market, lam, tol, deadline=None) -> bool | None:
    """Is ``λ ∈ proj_λ D``, i.e. ∃ μ ≥ 0 with λ(ω) ≥ v(a,ω) + Σ_a' μ(a,a')(π(a,ω) − π(a',ω))?
    ``None`` when ``deadline`` stopped the LP first.  The LP is :class:`~dm_opt.info_design.lp.platform._DualFace`'s
    polyhedron (suffix-sum form for the slides' merchant) with ``λ`` fixed."""
    lam = np.asarray(lam, float)
    if not np.all(np.isfinite(lam)):
        return False
    compact = _threshold_form(market)
    _check_size(market, "dual feasibility LP", _pq_nnz(market, compact), HIGHS_LP_BYTES)
    Ey, AT, Gy, GT, _ = _pq_blocks(market, compact)
    n = market.n
    n_eq, R, kT = Ey.shape[0], Gy.shape[0], AT.shape[1]
    A = sp.vstack([sp.hstack([Ey.T, -Gy.T]), sp.hstack([AT.T, -GT.T])], format="csc")
    inf = np.inf
    # λ fixed (bounds), the v rows relaxed by tol
    model = HighsModel(A, np.r_[market.v.ravel() - tol, np.zeros(kT)], np.r_[np.full(Ey.shape[1], inf), np.zeros(kT)],
                        np.zeros(n_eq + R), np.r_[lam, np.full(n_eq - n, -inf), np.zeros(R)],
                        np.r_[lam, np.full(n_eq - n, inf), np.full(R, inf)], maximize=False)
    st = model.run(deadline)
    if st in ("time_limit", "interrupted"):
        return None
    return st == "optimal"


def complete_markets(market: InfoDesignMarket, *, time_limit=None) -> CompleteMarketResult:
    """Equilibrium with use-contingent prices ``p(a, ω)``.

    Derivation (the slides state the result, not the construction): the
    unconstrained-efficiency LP ``max Σ(v+u−r̄) y`` s.t. obedience (μ ≥ 0) and
    ``Σ_a y(a,ω) ≤ q̄(ω)`` (β(ω) ≥ 0) has dual feasibility
    ``v + u − r̄ − β(ω) + Σ_a' μ(a,a')Δπ ≤ 0`` with equality where ``y > 0``.
    With ``p(a,ω) = r̄ + β(ω) − u(a,ω)`` the platform's problem
    ``max_{y obedient} Σ (v − p) y`` is a cone program whose value is 0 (by the
    same duals) and is attained at ``y*``; every consumer gets
    ``p + u = r̄ + β(ω) ≥ r̄`` from any use, with β(ω) > 0 only if all of type
    ω sell — so ``y*`` clears every market.  Both conditions are re-checked
    numerically here.  Both LPs use ``P_q``'s rows (:func:`_pq_blocks`: suffix-sum
    obedience for the slides' merchant) in highspy; an equivalent formulation of the
    same LP has the same set of optimal ``β`` (the superdifferential of its value in
    ``q̄``), and the checks are independent of the formulation.

    ``time_limit`` (seconds or a shared Deadline): prices need the optimal
    duals, so there is no partial answer — a stopped LP raises
    :class:`~dm_opt.core.errors.LimitExceeded` (Ctrl-C: ``KeyboardInterrupt``); a model
    over :data:`dm_opt.core.limits.MEMORY_BUDGET` is refused before it is built.
    """
    dl = Deadline.of(time_limit)
    t0 = time.perf_counter()
    m, n = market.m, market.n
    compact = _threshold_form(market)
    _check_size(market, "complete-markets LP", 2 * _pq_nnz(market, compact), HIGHS_LP_BYTES)
    Ey, AT, Gy, GT, pairs = _pq_blocks(market, compact)
    n_eq, R, kT = Ey.shape[0], Gy.shape[0], AT.shape[1]
    inf = np.inf
    A = sp.bmat([[Ey, AT], [Gy, GT]], format="csc")
    col_lo = np.r_[np.zeros(m * n), np.full(kT, -inf)]
    col_hi = np.full(m * n + kT, inf)

    def run(model, what):
        try:
            st = model.run(dl)
        except KeyboardInterrupt:
            st = "interrupted"
        if st == "interrupted":
            raise KeyboardInterrupt
        if st == "time_limit":
            raise LimitExceeded(f"complete markets: the {what} did not finish ({dl.message()}); prices need "
                                f"its optimal duals, so there is no partial answer")
        if st != "optimal":  # pragma: no cover
            raise SolverFailed(f"complete markets: {what}: HiGHS status {st!r}")

    lp1 = HighsModel(A, np.r_[np.full(n, -inf), np.zeros(n_eq - n), np.zeros(R)],
                      np.r_[market.prior, np.zeros(n_eq - n), np.full(R, inf)],
                      np.r_[(market.v + market.u - market.reservation).ravel(), np.zeros(kT)], col_lo, col_hi)
    run(lp1, "efficiency LP")
    yv = np.clip(lp1.x[: m * n].reshape(m, n), 0, None)
    beta = np.clip(lp1.row_dual[:n], 0, None)
    value = lp1.objective
    prices = market.reservation + beta[None, :] - market.u
    q = yv.sum(axis=0)
    tol = 1e-6 * _scale(market)
    # platform: max Σ (v − p) y over obedient y with Σ y ≤ 1 (a cone: value must be 0)
    total = sp.csr_matrix(np.r_[np.ones(m * n), np.zeros(kT)][None, :])
    A2 = sp.vstack([A, total], format="csc")
    lp2 = HighsModel(A2, np.r_[np.full(n, -inf), np.zeros(n_eq - n), np.zeros(R), -inf],
                      np.r_[np.full(n, inf), np.zeros(n_eq - n), np.full(R, inf), 1.0],
                      np.r_[(market.v - prices).ravel(), np.zeros(kT)], col_lo, col_hi)
    run(lp2, "platform check LP")
    profit = float(np.sum((market.v - prices) * yv))
    checks = {
        "platform_optimal": bool(lp2.objective <= tol and abs(profit) <= tol),
        "consumers_optimal": bool(np.all(prices + market.u >= market.reservation - tol)
                                  and np.all((beta <= tol) | (q >= market.prior - tol))),
        "mechanism_obedient": _obedient(market, yv, tol),
    }
    x = mechanism_from_y(market, yv, q)
    failed = [k for k, ok in checks.items() if not ok]
    # the construction makes every check hold (docstring); a failed one is a numerical failure, never optimal
    status = Termination.ERROR if failed else Termination.OPTIMAL
    message = f"equilibrium check(s) failed numerically: {', '.join(failed)}" if failed else ""
    return CompleteMarketResult(frozen_array(prices), frozen_array(yv), frozen_array(q), frozen_array(x), value, profit,
                                checks, status, time.perf_counter() - t0, message)


__all__ = ["data_union", "data_taxes", "complete_markets"]
