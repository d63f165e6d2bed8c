"""Mechanisms with private types: VCG, mixed-VCG and D-mixed-VCG (RJ §5, §6).

Agents report types (here: the market they report — utility and cost
parameters); the intermediary

1. computes ``G*`` (RJ eq. 18) and, for every agent ``i``, ``G*_{−i}``
   (eq. 20) — the welfare-maximising graph of the others *with ``i`` isolated*
   (see below) — and the Clarke payments
   ``t̃_i = Σ_{j≠i} V_j(G*_{−i}) − Σ_{j≠i} V_j(G*)`` (eq. 19);
2. the VCG imbalance ``Δ = Σ_i t̃_i`` (eq. 21);
3. splits ``t̃_i = t_i + t^d_i`` (eq. 22): data payments ``t^d`` by (23)–(26),
   money ``t = t̃ − t^d`` (27);
4. distorts the quality of the data each agent receives so that
   ``V(Ĝ*, θ_i) − t_i = V(G*, θ_i) − t̃_i`` (eq. 28), i.e. agent ``i``'s value
   of its received data falls by ``t^d_i`` (rises when ``t^d_i < 0``).

**Pivot (eq. 20).**  The paper writes ``argmax_{G∈𝒢} Σ_{j≠i} V_j``.  Read
literally over graphs that may still use ``i``, the others would take
``i``'s data at no counted cost and ``i``'s VCG utility could fall below its
stand-alone value (no ex-post IR).  With ``i`` isolated (the economy without
``i``), agent ``i``'s VCG utility is
``W(G*) − W_{−i}(G*_{−i}) ≥ W(G*_{−i} with i alone) − W_{−i}(G*_{−i}) = U_i(∅)``:
ex-post IR relative to its stand-alone value, as Prop 5.1 claims.  We use that reading.

**Redistribution (23)–(26).**  Literally, (24) gives
``t^d_n = min{t̃_n, R_n}`` with ``R_n`` the remaining surplus; once ``R``
reaches 0, an agent with ``t̃_n < 0`` gets ``t^d_n = t̃_n < 0`` and the
remainder becomes positive again, so ``Σ t^d ≠ Δ`` and the budget is not
balanced.  We convert only same-sign Clarke payments
(``t^d_n = min{max(t̃_n, 0), R_n}`` for ``Δ > 0``, symmetric for ``Δ < 0``),
which coincides with (23)–(26) whenever all ``t̃`` have the sign of ``Δ``
and always gives ``Σ t^d = Δ``, hence ``Σ t = 0``
(:func:`redistribute_literal` keeps the paper's formula for comparison).

**Distortion model.**  All edges into agent ``i`` carry one quality weight
``ω_i`` (RJ Def 5.1 weights; isolated impact, Assumption 5.4): the power
family receives ``ω_i Σ_j x_j q_j`` samples; the table family gets
``U_i(∅) + ω_i (U_i(S) − U_i(∅))`` (a fraction of the value of the data).
Mixed-VCG allows ``ω ∈ [0, ∞)`` (upward = adding data, Assumption 5.3);
D-mixed-VCG starts from the base weight ``w⁰`` (eq. 32–34) and may only lift
it up to 1 (the undistorted data).  Agents whose target is unreachable are
listed in ``unreachable``.

**Limits and interruption.**  :func:`mixed_vcg` takes one ``time_limit``
(seconds) for ``G*`` and all pivots, and stops cleanly on Ctrl-C.  Every
welfare value then comes as an interval: ``G*`` is the feasible graph found,
``welfare_bound`` bounds ``Σ V_i(G*)`` (RJ eq. 18), and each pivot lies in
``[pivot_welfare, pivot_bound]`` (see :func:`_pivots` for the proof), so the
Clarke payment of RJ eq. 19 *for the returned allocation* lies in
``[clarke, clarke_bound]``.  The redistribution, payments and distortion are
then computed from the lower ends (``clarke``) and are not the mechanism's
payments: only ``status == "optimal"`` results are VCG / mixed-VCG outcomes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Result, Termination, relative_gap
from dm_opt.sharing.buyer import (
    EXPIRED,
    BuyerProblem,
    allowed_upper,
    buyer_value,
    merge_options,
    past_grace,
    resolve_buyer_method,
    solve_buyer,
    stop_message,
)
from dm_opt.sharing.market import SharingMarket
from dm_opt.sharing.welfare import WelfareResult, welfare_max

#: Tolerance for feasibility of a distortion weight and for sign decisions on Δ.
MECH_TOL = 1e-9


def _order_desc(tilde_t) -> np.ndarray:
    """Agents by decreasing ``t̃`` (ties by index): the paper's ``t̃_1 > t̃_2 > …``."""
    return np.lexsort((np.arange(len(tilde_t)), -np.asarray(tilde_t)))


def redistribute(tilde_t, delta: float | None = None, *, tol: float = MECH_TOL) -> np.ndarray:
    """Data payments ``t^d`` of RJ (23)–(26), converting only same-sign Clarke payments.

    ``Δ > 0``: from the largest ``t̃`` down, ``t^d_n = min{max(t̃_n, 0), Δ − Σ_{earlier} t^d}``;
    ``Δ < 0``: from the smallest up, ``t^d_n = max{min(t̃_n, 0), Δ − Σ_{later} t^d}``.
    Always ``Σ t^d = Δ``.
    """
    t = np.asarray(tilde_t, dtype=float)
    delta = float(t.sum()) if delta is None else float(delta)
    td = np.zeros_like(t)
    order = _order_desc(t)
    if delta > tol:
        rem = delta
        for n in order:
            td[n] = min(max(t[n], 0.0), rem)
            rem -= td[n]
    elif delta < -tol:
        rem = delta
        for n in order[::-1]:
            td[n] = max(min(t[n], 0.0), rem)
            rem -= td[n]
    return td


def redistribute_literal(tilde_t) -> np.ndarray:
    """RJ (23)–(26) exactly as printed (may break budget balance; see module docstring)."""
    t = np.asarray(tilde_t, dtype=float)
    delta = float(t.sum())
    td = np.zeros_like(t)
    order = _order_desc(t)
    if delta > 0:
        rem = delta
        for n in order:
            td[n] = min(t[n], rem)
            rem -= td[n]
    elif delta < 0:
        rem = delta
        for n in order[::-1]:
            td[n] = max(t[n], rem)
            rem -= td[n]
    return td


@dataclass(frozen=True)
class MechanismResult(Result):
    """Outcome of VCG / mixed-VCG / D-mixed-VCG (RJ §5), per agent arrays of shape (N,).

    ``share`` is ``G*`` (units ``share[j, i]`` from ``j`` to ``i``);
    ``clarke`` ``t̃`` (eq. 19/33); ``pivot_welfare[i]`` = ``Σ_{j≠i} V_j(G*_{−i})``;
    ``delta`` ``Δ`` (eq. 21); ``data_payment`` ``t^d``; ``payment`` ``t`` (27);
    ``quality`` the weight ``ω_i`` on all edges into ``i`` after distortion;
    ``values_star`` ``V_i(G*)`` (at the base quality), ``values`` ``V_i(Ĝ*)``
    re-evaluated from ``quality``.  ``sw_total`` = ``SW^T = Σ V_i(Ĝ*)`` (eq. 17),
    ``sw_agents`` = ``SW^A = Σ (V_i(Ĝ*) − t_i)`` (eq. 15); ``vcg_sw_total`` =
    ``Σ V_i(G*)``, ``vcg_sw_agents`` = ``Σ V_i(G*) − Δ`` (standard VCG).
    ``unreachable`` lists agents whose distortion target cannot be met.

    ``status`` is ``optimal`` only when ``G*`` and every pivot were solved
    exactly.  Otherwise (limits, Ctrl-C; ``message`` says what was done):
    ``welfare_bound`` ≥ the optimal ``Σ V_i(G*)`` (``gap`` relative to
    ``vcg_sw_total``), ``pivot_welfare[i] ≤ Σ_{j≠i} V_j(G*_{−i}) ≤
    pivot_bound[i]``, and for the returned allocation ``share`` the Clarke
    payment ``Σ_{j≠i} V_j(G*_{−i}) − Σ_{j≠i} V_j(share)`` lies in
    ``[clarke[i], clarke_bound[i]]``; the later fields are computed from
    ``clarke`` and are not the mechanism's payments.  For an optimal result
    ``pivot_bound = pivot_welfare``, ``clarke_bound = clarke`` and
    ``welfare_bound = vcg_sw_total``.

    Result protocol: ``objective`` is ``vcg_sw_total`` (``Σ V_i(G*)``, the objective of RJ
    eq. 18 that ``bound`` = ``welfare_bound`` and ``gap`` refer to); ``SW^T`` and ``SW^A``
    are ``sw_total`` and ``sw_agents``.
    """

    family: ClassVar[str] = "sharing"

    mechanism: str
    share: np.ndarray
    base_quality: float
    clarke: np.ndarray
    pivot_welfare: np.ndarray
    delta: float
    data_payment: np.ndarray
    payment: np.ndarray
    quality: np.ndarray
    values_star: np.ndarray
    values: np.ndarray
    sw_total: float
    sw_agents: float
    vcg_sw_total: float
    vcg_sw_agents: float
    unreachable: tuple
    status: Termination
    welfare_solves: int
    buyer_solves: int
    seconds: float
    pivot_bound: np.ndarray | None = None
    clarke_bound: np.ndarray | None = None
    welfare_bound: float | None = None
    message: str = ""
    buyer_method: str = ""
    time_limit: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.pivot_bound is None:
            object.__setattr__(self, "pivot_bound", np.array(self.pivot_welfare, dtype=float, copy=True))
        if self.clarke_bound is None:
            object.__setattr__(self, "clarke_bound", np.array(self.clarke, dtype=float, copy=True))
        if self.welfare_bound is None:
            object.__setattr__(self, "welfare_bound", float(self.vcg_sw_total))

    @property
    def feasible(self) -> bool:
        return not self.unreachable

    @property
    def objective(self) -> float:
        """``Σ_i V_i(G*)`` (RJ eq. 18 at the returned allocation)."""
        return self.vcg_sw_total

    @property
    def bound(self) -> float:
        return self.welfare_bound

    @property
    def extra(self) -> dict:
        return {"welfare_solves": int(self.welfare_solves), "buyer_solves": int(self.buyer_solves)}

    @property
    def is_optimal(self) -> bool:
        return self.status is Termination.OPTIMAL

    @property
    def gap(self) -> float:
        """Relative gap between ``Σ V_i(share)`` (``vcg_sw_total``) and ``welfare_bound``."""
        return relative_gap(self.vcg_sw_total, self.welfare_bound)


def _received_units_value(market, i, units, omega):
    """``U_i`` of the bundle ``units`` received at quality ``omega``."""
    return buyer_value(market, i, units, np.zeros(market.n), omega)


def _received_values(market, share, omega) -> np.ndarray:
    """``U_i`` of the bundle ``share[:, i]`` received at quality ``omega[i]`` for every ``i``
    (:func:`_received_units_value` per agent; one vectorised pass for the power family)."""
    N = market.n
    if market.family != "power":
        return np.array([_received_units_value(market, i, share[:, i], omega[i]) for i in range(N)])
    w = np.asarray(share, float) * np.asarray(omega, float)[None, :]      # w[j, i] = units_j · ω_i
    np.fill_diagonal(w, 0.0)
    recv = market.query_samples @ w
    return market.alpha * (1.0 - (market.samples + recv) ** (-market.beta))


def _solve_quality(market, i, units, base: float, target: float, omega_max: float) -> float | None:
    """``ω`` with ``U_i(units; ω) = target``; None if unreachable within ``[0, omega_max]``."""
    cur = _received_units_value(market, i, units, base)
    if abs(target - cur) <= MECH_TOL * max(1.0, abs(cur)):
        return base
    if market.family == "table":
        u0 = market.value(i, 0)
        full = _received_units_value(market, i, units, 1.0)
        span = full - u0
        if abs(span) <= MECH_TOL:
            return None
        w = (target - u0) / span
    else:
        s = float(np.asarray(units, dtype=float) @ market.query_samples) - float(units[i]) * market.query_samples[i]
        a, b, n = market.alpha[i], market.beta[i], market.samples[i]
        if s <= 0 or a <= 0 or target >= a:
            return None
        r = (1.0 - target / a) ** (-1.0 / b) - n
        w = r / s
    if w < -MECH_TOL or w > omega_max + MECH_TOL:
        return None
    return float(min(max(w, 0.0), omega_max))


def _pivots(market, G: WelfareResult, method: str, base: float, reuse: bool, dl=None, **kw):
    """``Σ_{j≠i} V_j(G*_{−i})`` for every ``i`` as proven intervals ``[lo, hi]``; re-solve only
    buyers that used ``i`` when ``reuse``.

    Buyer ``j``'s problem in the economy without ``i`` is its problem with seller
    ``i`` removed.  If ``j``'s bundle in ``G`` does not use ``i`` it stays feasible,
    so ``G.buyer_values[j]`` is a lower bound, and removing a seller cannot raise an
    optimum, so ``G.buyer_bounds[j]`` is an upper bound (both exact when ``G`` is
    optimal: excluding a seller ``j`` does not use cannot change ``j``'s optimum).
    Otherwise the re-solved problem gives ``[value, bound]`` (``bound`` also capped
    by ``G.buyer_bounds[j]``); a problem not reached before the deadline or Ctrl-C
    gets ``G``'s bundle without ``i`` (feasible) and ``G.buyer_bounds[j]``, and agents not
    reached within the grace period after it get :func:`_pivots_without` (the same,
    vectorised).  Summing the independent buyer intervals (RJ eq. 11) bounds the pivot.
    ``dl`` is the :class:`~dm_opt.core.limits.Deadline` (or seconds) of the caller.
    """
    dl = Deadline.of(dl)
    N = market.n
    C = market.cost_matrix()
    lo = np.zeros(N)
    hi = np.zeros(N)
    buyer_solves = 0
    welfare_solves = 0
    stop = None
    limited = None
    done = 0
    left_over = []              # agents not reached before the stop (reuse): bounded in one vectorised pass
    share = np.asarray(G.share)
    vals_G, bnds_G = np.asarray(G.buyer_values, float), np.asarray(G.buyer_bounds, float)
    for i in range(N):
        if not reuse:
            if stop is None:
                try:
                    r = welfare_max(market, buyer_method=method, exclude_agent=i, quality=base, time_limit=dl, **kw)
                except KeyboardInterrupt:
                    stop = Termination.INTERRUPTED
            if stop is not None:
                if past_grace(dl):
                    left_over.append(i)
                    continue
                r = welfare_max(market, buyer_method=method, exclude_agent=i, quality=base, time_limit=EXPIRED, **kw)
            else:
                welfare_solves += 1
                buyer_solves += N - 1
                if r.status in (Termination.TIME_LIMIT, Termination.INTERRUPTED):
                    stop = r.status
                elif r.status is not Termination.OPTIMAL:
                    limited = r.status
                else:
                    done += 1
            lo[i], hi[i] = r.welfare, r.bound
            continue
        if stop is None and dl.expired():
            stop = Termination.TIME_LIMIT
        if stop is not None and past_grace(dl):
            left_over.append(i)
            continue
        users = np.flatnonzero(share[i] > 0)          # buyers whose bundle in G uses i
        keep = np.ones(N, dtype=bool)
        keep[i] = False
        keep[users] = False
        tot_lo, tot_hi = float(vals_G[keep].sum()), float(bnds_G[keep].sum())
        exact = bool(np.all(bnds_G[keep] == vals_G[keep]))
        for j in users:
            j = int(j)
            prob = BuyerProblem(j, C[:, j].copy(), allowed_upper(market, j, (i,)), base)
            sol = None
            if stop is None and dl.expired():
                stop = Termination.TIME_LIMIT
            if stop is None:
                try:
                    sol = solve_buyer(market, prob, method, time_limit=dl, **kw)
                    buyer_solves += 1
                except KeyboardInterrupt:
                    stop = Termination.INTERRUPTED
            if sol is None:                  # after the stop: G's bundle without i, and G's bound
                units = share[:, j].copy()
                units[i] = 0
                tot_lo += buyer_value(market, j, units, C[:, j], base)
                tot_hi += bnds_G[j]
                exact = False
                continue
            if sol.status in (Termination.TIME_LIMIT, Termination.INTERRUPTED):
                stop = sol.status
            elif sol.status is not Termination.OPTIMAL:
                limited = sol.status
            exact = exact and sol.status is Termination.OPTIMAL
            tot_lo += sol.value
            tot_hi += min(sol.bound, bnds_G[j])
        lo[i], hi[i] = tot_lo, max(tot_lo, tot_hi)
        done += exact
    if left_over:
        idx = np.array(left_over)
        lo[idx], hi[idx] = _pivots_without(market, G, base, idx)
    status = stop or limited or Termination.OPTIMAL
    message = "" if stop is None else stop_message(stop, f"{done} of {N} pivots (RJ eq. 20) solved exactly")
    return lo, hi, status, message, welfare_solves, buyer_solves


def _pivots_without(market, G: WelfareResult, base: float, agents: np.ndarray):
    """Proven pivot intervals for ``agents`` without solving anything (after a stop).

    Buyer ``j``'s bundle in ``G`` with ``i``'s units removed stays feasible without ``i``,
    so its exactly evaluated value is a lower bound; removing a seller cannot raise an
    optimum, so ``G.buyer_bounds[j]`` is an upper bound.  One vectorised pass (power
    family; a loop over the ``N ≤ 16`` agents of a table)."""
    N = market.n
    share = np.asarray(G.share)
    bounds = np.asarray(G.buyer_bounds, float)
    vals_G = np.asarray(G.buyer_values, float)
    lo = np.empty(len(agents))
    hi = np.empty(len(agents))
    C = market.cost_matrix()
    if market.family == "power":
        qs = market.query_samples * base
        recv = qs @ share                                   # samples received by each buyer j (own row is 0)
        pay = (share * C).sum(axis=0)                       # Σ_k share[k,j] c_k(j)
        S = share[agents]                                   # (k, N): row r = units agent agents[r] sells
        rec = recv[None, :] - S * qs[agents][:, None]
        V = market.alpha[None, :] * (1.0 - (market.samples[None, :] + rec) ** (-market.beta[None, :]))
        V -= pay[None, :] - S * C[agents]
        V = np.where(S > 0, V, vals_G[None, :])
        V[np.arange(len(agents)), agents] = 0.0             # buyer i itself is left out of its pivot
        lo[:] = V.sum(axis=1)
        hi[:] = np.maximum(lo, bounds.sum() - bounds[agents])
        return lo, hi
    for r, i in enumerate(agents):
        tot_lo = tot_hi = 0.0
        for j in range(N):
            if j == i:
                continue
            units = share[:, j].copy()
            units[i] = 0
            tot_lo += buyer_value(market, j, units, C[:, j], base) if share[i, j] else vals_G[j]
            tot_hi += bounds[j]
        lo[r], hi[r] = tot_lo, max(tot_lo, tot_hi)
    return lo, hi


def mixed_vcg(market: SharingMarket, *, method: str = "auto", buyer_method: str | None = None,
              mechanism: str = "mixed_vcg", base_quality: float = 1.0, reuse: bool = True,
              time_limit: float | Deadline | None = None, options: dict | None = None, **kw) -> MechanismResult:
    """Run VCG, mixed-VCG (RJ Def 5.3) or D-mixed-VCG (eqs. 32–34) on the reported types ``market``.

    Parameters
    ----------
    mechanism : {"vcg", "mixed_vcg", "d_mixed_vcg"}
        ``vcg``: Clarke payments only (no distortion).  ``d_mixed_vcg`` needs
        ``base_quality`` ``w⁰ < 1`` (the fixed ex-ante distortion) and only
        lifts it up to 1.
    method, buyer_method : ``method`` is ``"auto"``; ``buyer_method`` the per-buyer algorithm
        of every welfare problem (:data:`~dm_opt.sharing.buyer.BUYER_METHODS`; accepted as
        ``method`` too).
    reuse : bool
        Compute ``G*_{−i}`` by re-solving only the buyers whose bundle in
        ``G*`` contains ``i`` (exact); ``False`` runs all N + 1 welfare
        optimisations in full.
    time_limit : float or :class:`~dm_opt.core.limits.Deadline`, optional
        Seconds for ``G*`` and every pivot together (or a deadline shared with a caller).  On expiry or
        Ctrl-C the result has status ``time_limit`` / ``interrupted`` and
        proven intervals (see :class:`MechanismResult`) instead of payments.
    options / keywords : ``node_limit``, ``max_rounds`` per buyer problem
        (see :func:`~dm_opt.sharing.welfare.welfare_max`).
    """
    if mechanism not in ("vcg", "mixed_vcg", "d_mixed_vcg"):
        raise ProblemError(f"unknown mechanism {mechanism!r}; choose 'vcg', 'mixed_vcg' or 'd_mixed_vcg'")
    if not 0.0 < base_quality <= 1.0:
        raise ProblemError(f"base_quality must be in (0, 1], got {base_quality}")
    if mechanism != "d_mixed_vcg" and base_quality != 1.0:
        raise ProblemError("base_quality < 1 is the D-mixed-VCG base distortion; use mechanism='d_mixed_vcg'")
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    method = resolve_buyer_method(market, method, buyer_method)
    kw = merge_options(options, kw)
    N = market.n
    G = welfare_max(market, buyer_method=method, quality=base_quality, time_limit=dl, **kw)
    # after Ctrl-C in G*, the pivots are bounded without solving anything
    piv_dl = EXPIRED if G.status is Termination.INTERRUPTED else dl
    piv, piv_hi, status, message, wsolves, bsolves = _pivots(market, G, method, base_quality, reuse, piv_dl, **kw)
    if G.status is not Termination.OPTIMAL:
        status = G.status
        message = "; ".join(x for x in (f"G*: {G.message}" if G.message else f"G*: {G.status}", message) if x)
    C = market.cost_matrix()
    share = np.asarray(G.share)
    sold_cost = (share * C).sum(axis=1)
    u_star = _received_values(market, share, np.full(N, base_quality))
    v_star = u_star - sold_cost
    W = float(v_star.sum())
    clarke = piv - (W - v_star)                               # eq. 19 / 33
    clarke_hi = piv_hi - (W - v_star)
    delta = float(clarke.sum())                               # eq. 21
    if mechanism == "vcg":
        td = np.zeros(N)
    else:
        td = redistribute(clarke, delta)
    pay = clarke - td                                         # eq. 27
    omega_max = np.inf if mechanism == "mixed_vcg" else 1.0
    quality = np.full(N, base_quality)
    unreachable = []
    for i in range(N):
        if td[i] == 0.0:
            continue
        w = _solve_quality(market, i, share[:, i], base_quality, u_star[i] - td[i], omega_max)
        if w is None:
            unreachable.append(i)
        else:
            quality[i] = w
    values = _received_values(market, share, quality) - sold_cost
    if status is not Termination.OPTIMAL:
        message = (message + "; " if message else "") + (
            "payments, distortion and SW are computed from the lower ends of the Clarke intervals "
            "[clarke, clarke_bound]: not the mechanism's outcome")
    welfare_bound = W if G.status is Termination.OPTIMAL else max(W, float(G.bound))
    return MechanismResult(mechanism, share, base_quality, clarke, piv, delta, td, pay, quality, v_star, values,
                           float(values.sum()), float((values - pay).sum()), W, W - delta, tuple(unreachable),
                           status, wsolves + 1, bsolves + N, time.perf_counter() - t0, piv_hi, clarke_hi,
                           welfare_bound, message, method, dl.time_limit)


def realized_utilities(true_market: SharingMarket, outcome: MechanismResult) -> np.ndarray:
    """Each agent's true utility ``U_i(received at ω_i; θ_i) − C_i(S_i^O; θ_i) − t_i``
    for an outcome computed from (possibly mis-)reported types, shape (N,)."""
    N = true_market.n
    C = true_market.cost_matrix()
    share = np.asarray(outcome.share)
    u = np.array([_received_units_value(true_market, i, share[:, i], outcome.quality[i]) for i in range(N)])
    return u - (share * C).sum(axis=1) - outcome.payment


__all__ = ["mixed_vcg", "MechanismResult", "redistribute", "redistribute_literal", "realized_utilities"]
