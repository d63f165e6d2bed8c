"""One checker of the honesty rules shared by every GLP (information design) and RJ (data
sharing) result class.

:func:`check_result` dispatches on the result's class and asserts:

* ``bound`` (where the class has one) is never NaN and ``bound ≥ objective − tol``
  (every problem here is a maximisation);
* ``status == optimal`` ⇒ a finite objective, re-evaluated at the returned answer
  (allocation, mechanism, graph, prices), the answer present and finite, a finite bound
  with ``bound − objective ≤ tol`` and ``gap`` finite, and every requested part present
  (no NaN ranges, no unsolved buyers, decided checks);
* ``status`` not optimal ⇒ ``message`` says what is missing (non-empty).

``tol`` is the documented tolerance of the family: GLP ``VALUE_TOL × payoff scale × 10 ×
max(1, Σq̄)`` plus ``MILP_REL_GAP`` relative (:mod:`dm_opt.info_design.lp`), RJ
``VALUE_TOL`` per buyer plus ``MILP_GAP_TOL`` relative (:mod:`dm_opt.sharing.buyer`).
The checker shares no solver code: re-evaluations use the markets' own payoffs.
"""

from __future__ import annotations

import math

import numpy as np

from dm_opt.core.result import Termination
from dm_opt.info_design import lp
from dm_opt.info_design.market import InfoDesignMarket
from dm_opt.info_design.results import PlatformReport
from dm_opt.sharing import bilateral as B
from dm_opt.sharing import buyer as BUY
from dm_opt.sharing import mechanisms as M
from dm_opt.sharing import prices as P
from dm_opt.sharing import welfare as W
from dm_opt.sharing.market import SharingMarket

OPT = Termination.OPTIMAL


def _finite(name, a):
    a = np.asarray(a, float)
    assert np.all(np.isfinite(a)), f"{name} has non-finite entries: {a[~np.isfinite(a)][:5]}"


def _glp_tol(market: InfoDesignMarket, objective: float) -> float:
    scale = max(1.0, float(np.max(np.abs(market.v))), float(np.max(np.abs(market.u))), abs(market.reservation))
    return lp.VALUE_TOL * scale * 10 * max(1.0, float(market.prior.sum())) + lp.MILP_REL_GAP * abs(objective)


def _rj_tol(market: SharingMarket, objective: float) -> float:
    return BUY.VALUE_TOL * market.n + BUY.MILP_GAP_TOL * abs(objective)


def _bound_rules(name, status, objective, bound, gap, tol, message):
    assert bound is not None and not (isinstance(bound, float) and math.isnan(bound)), f"{name}: bound is NaN/None"
    assert not math.isnan(objective), f"{name}: objective is NaN"
    assert bound >= objective - tol, f"{name}: bound {bound!r} < objective {objective!r} (tol {tol:.1e})"
    if status is OPT:
        assert math.isfinite(objective) and math.isfinite(bound), \
            f"{name}: optimal with objective {objective}, bound {bound}"
        assert bound - objective <= tol, f"{name}: optimal but bound − objective = {bound - objective:.3g} > {tol:.1e}"
        if gap is not None:
            assert math.isfinite(gap), f"{name}: optimal with gap {gap}"
    else:
        assert message, f"{name}: status {status} but the message does not say what is missing"


def _obedient_feasible(market, y, q, tol, name):
    y = np.asarray(y, float)
    _finite(f"{name}.y", y)
    assert np.all(y >= -tol), f"{name}: negative y"
    assert np.allclose(y.sum(axis=0), q, atol=tol), f"{name}: Σ_a y ≠ q"
    assert lp._obedient(market, y, tol), f"{name}: y is not obedient"


# ------------------------------------------------------------------------------------ GLP
def _platform(r: lp.PlatformSolution, market):
    tol = _glp_tol(market, r.value) * max(1.0, float(np.sum(r.q)))
    _bound_rules("PlatformSolution", r.status, r.value, r.bound, r.gap, tol, r.message)
    _obedient_feasible(market, r.y, np.asarray(r.q), 1e-7 * max(1.0, float(np.sum(r.q))), "PlatformSolution")
    assert abs(float(np.sum(market.v * np.asarray(r.y))) - r.value) <= tol, "PlatformSolution: value ≠ Σ v y"
    _finite("PlatformSolution.x", r.x)
    if r.status is OPT:
        _finite("PlatformSolution.supergradient", r.supergradient)
        _finite("PlatformSolution.obedience_duals", r.obedience_duals)
        assert abs(float(np.asarray(r.supergradient) @ np.asarray(r.q)) - r.value) <= 1e-6 * max(1.0, abs(r.value)), \
            "PlatformSolution: λ·q ≠ V(q)"
        for part in ("lower", "upper"):
            arr = getattr(r, part)
            if arr is not None:                       # requested: every coordinate present
                assert not np.any(np.isnan(arr)), f"PlatformSolution: optimal but {part} has NaN (unfinished)"
        if r.lower is not None:
            _finite("PlatformSolution.lower", r.lower)


def _efficiency(r: lp.EfficiencyResult, market):
    tol = _glp_tol(market, r.welfare)
    _bound_rules("EfficiencyResult", r.status, r.welfare, r.bound, r.gap, tol, r.message)
    q = np.asarray(r.q)
    _finite("EfficiencyResult.q", q)
    assert np.all(q >= -1e-12) and np.all(q <= market.prior + 1e-9), "EfficiencyResult: q outside [0, q̄]"
    y = np.asarray(r.y)
    _obedient_feasible(market, y, q, 1e-7, "EfficiencyResult")
    w = float(np.sum((market.v + market.u) * y)) - market.reservation * float(q.sum())
    assert abs(w - r.welfare) <= 1e-6 * max(1.0, abs(w)), f"EfficiencyResult: welfare {r.welfare} ≠ Σ(v+u)y − r̄Σq = {w}"
    assert abs(float(np.sum(market.v * y)) - r.platform_value) <= 1e-6 * max(1.0, abs(r.platform_value))
    if r.status is OPT and r.piece_values is not None:
        assert not np.any(np.isnan(r.piece_values)), "EfficiencyResult: optimal but piece values missing"


def _union(r: lp.UnionResult, market):
    tol = _glp_tol(market, r.value)
    _bound_rules("UnionResult", r.status, r.value, r.bound, r.gap, tol, r.message)
    _finite("UnionResult.q", r.q)
    _finite("UnionResult.x", r.x)
    assert abs(r.value - r.welfare - market.reservation * float(market.prior.sum())) <= 1e-9 * max(1.0, abs(r.value))
    if r.status is OPT:
        _finite("UnionResult.prices", r.prices)


def _taxes(r: lp.TaxResult, market):
    assert isinstance(r.checks, dict) or hasattr(r.checks, "items")
    if r.status is OPT:
        for name in ("taxes", "prices", "q", "x", "zeta"):
            _finite(f"TaxResult.{name}", getattr(r, name))
        assert math.isfinite(r.welfare) and math.isfinite(r.efficient_welfare) and math.isfinite(r.revenue)
    else:
        assert r.message, f"TaxResult: status {r.status} without a message"


def _equilibria(r: lp.EquilibriaResult, market):
    if r.status is OPT:
        assert math.isfinite(r.efficient_welfare), "EquilibriaResult: optimal with non-finite W°"
        assert r.complete or len(r.undecided) > 0, "EquilibriaResult: incomplete without saying which"
        for p in r.pieces:
            for name in ("q", "zeta", "x", "price"):
                _finite(f"EquilibriumPiece.{name}", getattr(p, name))
            assert math.isfinite(p.welfare) and p.welfare_min <= p.welfare + 1e-6 and p.welfare <= p.welfare_max + 1e-6
    else:
        assert r.message and not r.complete, "EquilibriaResult: stopped without a message / claimed complete"


def _complete(r: lp.CompleteMarketResult, market):
    for name in ("prices", "y", "q", "x"):
        _finite(f"CompleteMarketResult.{name}", getattr(r, name))
    y = np.asarray(r.y)
    w = float(np.sum((market.v + market.u - market.reservation) * y))
    assert abs(w - r.welfare) <= 1e-6 * max(1.0, abs(w)), "CompleteMarketResult: welfare ≠ Σ(v+u−r̄)y"
    assert np.all(y.sum(axis=0) <= market.prior + 1e-7)


def _pieces(r: lp.ValuePieces, market):
    if r.status is OPT:
        assert len(r.gradients) > 0
        _finite("ValuePieces.gradients", r.gradients)


def _welfare_solution(r: lp.WelfareSolution, market):
    assert math.isfinite(r.value) and math.isfinite(r.platform_value)
    _finite("WelfareSolution.x", r.x)


# ------------------------------------------------------------------------------------ RJ
def _rj_welfare(r: W.WelfareResult, market):
    tol = _rj_tol(market, r.welfare)
    _bound_rules("WelfareResult", r.status, r.welfare, r.bound, r.gap, tol, r.message)
    share = market.as_share_matrix(r.share)            # a feasible graph (raises otherwise)
    if r.exclude_agent is not None:
        assert not share[r.exclude_agent].any() and not share[:, r.exclude_agent].any()
    assert abs(float(np.sum(r.buyer_values)) - r.welfare) <= tol
    if r.exclude_agent is None and r.quality == 1.0:
        assert abs(market.welfare(share) - r.welfare) <= tol, "WelfareResult: welfare not re-evaluated at share"
    assert np.all(np.asarray(r.buyer_bounds) >= np.asarray(r.buyer_values) - tol)
    if r.status is OPT:
        assert not r.unsolved, "WelfareResult: optimal with unsolved buyers"
        _finite("WelfareResult.buyer_bounds", r.buyer_bounds)
    else:
        assert r.bound >= float(np.sum(r.buyer_values)) - tol


def _rj_prices(r: P.PriceResult, market):
    market.as_share_matrix(r.share)
    _finite("PriceResult.prices", r.prices)
    _finite("PriceResult.payments", r.payments)
    if r.status is OPT:
        assert r.demand_ok is True, f"PriceResult: optimal but demand_ok = {r.demand_ok}"
        off = ~np.eye(market.n, dtype=bool)
        assert not np.any(np.isnan(np.asarray(r.price_max)[off])), "PriceResult: optimal with price maxima missing"
        _finite("PriceResult.demand_values", r.demand_values)
    else:
        assert r.message, f"PriceResult: status {r.status} without a message"


def _rj_mechanism(r: M.MechanismResult, market):
    tol = _rj_tol(market, r.vcg_sw_total)
    _bound_rules("MechanismResult", r.status, r.vcg_sw_total, r.welfare_bound, r.gap, tol, r.message)
    share = market.as_share_matrix(r.share)
    assert abs(market.welfare(share) - r.vcg_sw_total) <= tol or r.base_quality != 1.0
    assert np.all(np.asarray(r.pivot_bound) >= np.asarray(r.pivot_welfare) - tol)
    assert np.all(np.asarray(r.clarke_bound) >= np.asarray(r.clarke) - tol)
    if r.status is OPT:
        for name in ("clarke", "pivot_welfare", "data_payment", "payment", "values"):
            _finite(f"MechanismResult.{name}", getattr(r, name))
        assert np.allclose(r.pivot_bound, r.pivot_welfare, atol=tol) and np.allclose(r.clarke_bound, r.clarke, atol=tol)


def _rj_stability(r: B.StabilityResult, market):
    if r.status is OPT:
        assert r.stable is not None, "StabilityResult: optimal but undecided"
    else:
        assert r.stable is not True and r.message, "StabilityResult: stopped, claimed stable or no message"


def _rj_outcomes(r: B.StableOutcomes, market):
    if r.status is OPT:
        assert r.graphs_checked == r.graphs_total, "StableOutcomes: optimal but not every graph checked"
    else:
        assert r.message


def _rj_bilateral(r: B.BilateralWelfare, market):
    assert math.isfinite(r.welfare)
    assert abs(B.bilateral_welfare(market, r.edges) - r.welfare) <= 1e-9 * max(1.0, abs(r.welfare))


_CHECKS = [
    (lp.PlatformSolution, _platform), (lp.EfficiencyResult, _efficiency), (lp.UnionResult, _union),
    (lp.TaxResult, _taxes), (lp.EquilibriaResult, _equilibria), (lp.CompleteMarketResult, _complete),
    (lp.ValuePieces, _pieces), (lp.WelfareSolution, _welfare_solution),
    (W.WelfareResult, _rj_welfare), (P.PriceResult, _rj_prices), (M.MechanismResult, _rj_mechanism),
    (B.StabilityResult, _rj_stability), (B.StableOutcomes, _rj_outcomes), (B.BilateralWelfare, _rj_bilateral),
]


def check_result(result, market):
    """Assert the honesty rules for one GLP/RJ ``result`` of ``market``; returns ``result``.
    ``result`` may be a ``(solution, welfare)`` pair (:func:`~dm_opt.info_design.lp.platform_report`)
    or a :class:`~dm_opt.info_design.results.PlatformReport` holding both."""
    if isinstance(result, PlatformReport):
        check_result(result.solution, market)
        if result.welfare is not None:
            check_result(result.welfare, market)
        assert result.status == result.solution.status and result.objective == result.solution.value
        return result
    if isinstance(result, tuple):
        for part in result:
            if part is not None:
                check_result(part, market)
        return result
    for cls, fn in _CHECKS:
        if isinstance(result, cls):
            fn(result, market)
            return result
    raise AssertionError(f"no invariants known for {type(result).__name__}")


__all__ = ["check_result"]
