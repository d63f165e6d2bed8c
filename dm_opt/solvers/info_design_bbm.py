"""Closed-form ``P_q``, ``W(q)``, pieces of ``V`` and constrained efficiency for the
slides' merchant, from the Bergemann–Brooks–Morris surplus triangle.

GLP's platform is an information designer "as in BBM" (slides, "Info-design
problem"): Bergemann, Brooks & Morris (2015), *The Limits of Price
Discrimination*, AER 105(3), Theorem 1.  For the slides' payoffs
``u = max(ω − a, 0)``, ``π = a·1[ω ≥ a]`` this module applies when every type is
positive and every type is also a fee (``Ω ⊆ A``; the default ``A = Ω``).

**Derivation** (the tests check every step against the LP of
:mod:`.info_design_lp` on random instances, including extra fees ``A ⊋ Ω``).
Write ``TS(q) = Σ_ω ω q(ω)`` (total surplus when every type buys: ``u + π =
ω·1[ω ≥ a]``) and ``Π*(q) = max_{a∈A} a·Σ_{ω≥a} q(ω)`` (uniform-price profit;
attained at a type).  For any obedient ``y`` at ``q``, consumer surplus
``U = Σ u·y ≥ 0``, ``U + Π ≤ TS`` and ``Π ≥ Π*`` (the merchant may ignore
recommendations and charge ``a*``).  Both efficient vertices of this triangle
are attained: ``(0, TS)`` by full disclosure (recommend ``a = ω``) and
``(TS − Π*, Π*)`` by BBM's greedy extremal segmentation (:func:`segmentation`):
on the residual support ``S = {s_1 < … < s_k}`` take the market on which the
merchant is indifferent between all prices of ``S`` (``P(ω ≥ s_i) = s_1/s_i``),
scale it to the largest multiple the residual allows, recommend ``s_1``
(obedient: prices in ``S`` tie, a price between support points is beaten by the
next one above, negative prices lose money), subtract and repeat; every segment
sells to all its types, and ``a*`` stays optimal in every residual, so the
segments' profits add up to ``Π*``.  Since ``v = γ_u u + γ_π π`` with ``γ ≥ 0``::

    V(q) = max(γ_u, γ_π)·TS(q) − max(γ_u − γ_π, 0)·Π*(q)
    W(q) = (1+γ_u)·TS − (1+γ_u−γ_π)·Π*   if γ_u ≥ γ_π   (optimal face ∋ BBM segmentation)
         = γ_π·TS                           if γ_u < γ_π   (full disclosure is the only optimum)

(for ``γ_u = γ_π`` every efficient mechanism is optimal for the platform and
``W`` picks the consumer-best one, BBM's).  Hence ``V(q) = min_k λ^k·q`` with
``λ^k(ω) = γ_u ω − (γ_u−γ_π)·ω_k·1[ω ≥ ω_k]`` for ``γ_u > γ_π`` (one piece per
type ``ω_k``, the region where ``ω_k`` is an optimal uniform price) and the
single piece ``λ = γ_π ω`` otherwise.  An optimal dual of ``P_q`` (used for the
obedience duals) is ``λ = λ^{a*}``, ``μ(b, a*) = γ_u − γ_π`` for ``b ≠ a*``:
dual feasibility reads ``γ_u ω ≥ 0`` for ``ω < b`` and holds with equality for
``ω ≥ b``.  Constrained efficiency becomes the LP in ``(q, t)``::

    max Σ_ω q(ω)((1+γ_u)ω − r̄) − (1+γ_u−γ_π)·t   s.t.  t ≥ ω_k Σ_{j≥k} q_j ∀k,  0 ≤ q ≤ q̄

with ``n + 1`` variables and ``n`` rows (separable when ``γ_u < γ_π``).

Cost: ``P_q`` is ``O(n²)`` arithmetic (at most ``n`` greedy steps), against an
LP with ``|A|·|Ω|`` variables.  Ties between uniform prices (which decide the
set of supergradients) are decided at ``FACE_TOL × payoff scale × max(1, Σq)``,
the tolerance the LP path uses for its dual face.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ProblemError
from ..markets.info_design import InfoDesignMarket
from ..result import Termination, frozen_array
from .info_design_lp import (FACE_TOL, VALUE_TOL, EfficiencyResult, PlatformSolution, ValuePieces,
                             WelfareSolution, _scale, mechanism_from_y)

#: Above this |Ω| :func:`constrained_efficiency` skips the per-piece LPs (one per type)
#: that list every piece attaining ``W°``; the optimum itself comes from one LP.
PIECE_LPS_MAX_N = 60


def not_applicable(market: InfoDesignMarket) -> str | None:
    """Why the closed form does not apply to ``market`` (``None`` when it does)."""
    if market.is_general:
        return "the market has general payoff matrices (the closed form is for the slides' merchant)"
    if market.types[0] <= 0:
        return f"types must be positive for the closed form (smallest type {market.types[0]:g})"
    missing = ~np.isin(market.types, market.fees)
    if missing.any():
        return f"every type must also be a fee (Ω ⊆ A); type {market.types[np.argmax(missing)]:g} is not"
    return None


def applies(market: InfoDesignMarket) -> bool:
    return not_applicable(market) is None


def _require(market: InfoDesignMarket) -> None:
    why = not_applicable(market)
    if why is not None:
        raise ProblemError(f"method 'bbm' does not apply: {why}; use method 'lp'")


def uniform_profits(market: InfoDesignMarket, q: np.ndarray) -> np.ndarray:
    """Merchant's profit ``ω_k · Σ_{j ≥ k} q_j`` of each type used as a uniform price, shape (n,)."""
    tail = np.cumsum(q[::-1])[::-1]
    return market.types * tail


def _weights(market: InfoDesignMarket) -> tuple[float, float]:
    """``(a, c)`` with ``V = a·TS − c·Π*``."""
    gu, gp = market.gamma_u, market.gamma_pi
    return max(gu, gp), max(gu - gp, 0.0)


def piece_gradients(market: InfoDesignMarket) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``λ^k`` of the linear pieces of V, shape (K, n), and the type index
    (uniform price) of each piece, shape (K,); ``K = n`` if ``γ_u > γ_π`` else 1."""
    _require(market)
    w = market.types
    a, c = _weights(market)
    if c == 0.0:
        return (a * w)[None, :], np.array([-1])
    L = market.gamma_u * w[None, :] - c * np.where(w[None, :] >= w[:, None], w[:, None], 0.0)
    return L, np.arange(market.n)


def _sorted_pieces(market: InfoDesignMarket) -> tuple[np.ndarray, np.ndarray]:
    """:func:`piece_gradients` in the order :func:`.info_design_lp.value_pieces` uses."""
    L, piece_type = piece_gradients(market)
    order = np.lexsort(L.T[::-1])
    return L[order], piece_type[order]


def value_pieces(market: InfoDesignMarket) -> ValuePieces:
    """The pieces of V in closed form, in the order :func:`.info_design_lp.value_pieces` uses."""
    t0 = time.perf_counter()
    L, _ = _sorted_pieces(market)
    return ValuePieces(frozen_array(L), 0, time.perf_counter() - t0)


def segmentation(types: np.ndarray, q: np.ndarray) -> np.ndarray:
    """BBM's greedy extremal segmentation of the market ``q`` (module docstring).

    Returns ``Y`` (n, n): ``Y[k, j]`` is the mass of type ``j`` in the segment whose
    recommended (uniform) price is type ``k``; columns sum to ``q``.  Every segment
    is obedient, sells to all its types and earns the merchant exactly what ``a*``
    would; at most ``n`` steps.
    """
    n = len(q)
    r = np.array(q, float)
    Y = np.zeros((n, n))
    eps = 1e-14 * max(float(r.max(initial=0.0)), 1e-300)
    r[r <= eps] = 0.0
    while True:
        S = np.flatnonzero(r > 0)
        if S.size == 0:
            break
        s = types[S]
        P = s[0] / s                                 # P(ω ≥ s_i): s_i P_i = s_1 for all i
        xs = P - np.r_[P[1:], 0.0]                   # point masses of the extremal market (> 0)
        ratio = r[S] / xs
        i = int(np.argmin(ratio))
        alpha = ratio[i]
        Y[S[0], S] += alpha * xs
        rs = r[S] - alpha * xs
        rs[i] = 0.0
        rs[rs <= eps] = 0.0                          # rounding residue of exact ties
        r[S] = rs
    col = Y.sum(axis=0)
    pos = col > 0
    Y[:, pos] *= (np.asarray(q, float)[pos] / col[pos])[None, :]   # restore Σ_k Y[k, j] = q_j exactly
    return Y


def _mechanism(market: InfoDesignMarket, q: np.ndarray) -> np.ndarray:
    """An optimal ``y`` (m, n) of ``P_q`` that is also consumer-best on the optimal face."""
    m, n = market.m, market.n
    fidx = np.searchsorted(market.fees, market.types)          # fee index of each type (Ω ⊆ A)
    y = np.zeros((m, n))
    if market.gamma_u < market.gamma_pi:
        y[fidx, np.arange(n)] = q                             # full disclosure
    else:
        y[fidx, :] = segmentation(market.types, q)
    return y


def platform(market: InfoDesignMarket, q, *, intervals: bool = True) -> PlatformSolution:
    """``P_q`` in closed form: ``V(q)``, an optimal mechanism (BBM segmentation, or full
    disclosure when ``γ_u < γ_π``), a supergradient with its obedience duals and, with
    ``intervals``, the exact per-coordinate range of ``∂V(q)``::

        ∂V(q) = conv{λ^k : ω_k an optimal uniform price at q} + cone{e_ω : q(ω) = 0}.
    """
    _require(market)
    q = market.database(q)
    t0 = time.perf_counter()
    m = market.m
    TS = float(market.types @ q)
    prof = uniform_profits(market, q)
    k_star = int(np.argmax(prof))
    a, c = _weights(market)
    value = a * TS - c * float(prof[k_star])
    y = _mechanism(market, q)
    x = mechanism_from_y(market, y, q)
    L, piece_type = piece_gradients(market)
    mu = np.zeros((m, m))
    if c > 0:
        lam = L[k_star]
        f_star = int(np.searchsorted(market.fees, market.types[k_star]))
        mu[:, f_star] = c
        mu[f_star, f_star] = 0.0
        tol = FACE_TOL * _scale(market) * max(1.0, float(q.sum()))
        active = L[prof >= prof[k_star] - tol]
    else:
        lam = L[0]
        active = L
    lower = upper = pts = None
    if intervals:
        lower = active.min(axis=0)
        upper = np.where(q > 0, active.max(axis=0), np.inf)
        pts = np.unique(active, axis=0)
    return PlatformSolution(
        status=Termination.OPTIMAL, q=frozen_array(q), value=value, y=frozen_array(y), x=frozen_array(x),
        supergradient=frozen_array(lam), obedience_duals=frozen_array(mu),
        consumer_utility=frozen_array(market.consumer_utility(x)),
        lower=None if lower is None else frozen_array(lower), upper=None if upper is None else frozen_array(upper),
        supergradients=None if pts is None else frozen_array(pts), seconds=time.perf_counter() - t0)


def welfare(market: InfoDesignMarket, q) -> WelfareSolution:
    """``W(q) = V(q) + Σ_ω q(ω) U(ω, x)`` with the consumer-best optimal ``x`` (closed form)."""
    sol = platform(market, q, intervals=False)
    y = np.asarray(sol.y)
    w = sol.value + float(np.sum(market.u * y))
    return WelfareSolution(sol.q, w, sol.value, sol.y, sol.x, sol.consumer_utility)


def _planner_lp(market: InfoDesignMarket, piece: int | None):
    """``max g·q − C·t`` over ``0 ≤ q ≤ q̄`` (module docstring); with ``piece = k``
    restricted to the region where type ``k`` is an optimal uniform price (then
    ``t = ω_k Σ_{j≥k} q_j``).  Returns ``(value, q)`` or ``None`` if infeasible."""
    from scipy.optimize import linprog

    n, w = market.n, market.types
    g = (1.0 + market.gamma_u) * w - market.reservation
    C = 1.0 + market.gamma_u - market.gamma_pi
    T = np.where(np.arange(n)[None, :] >= np.arange(n)[:, None], w[:, None], 0.0)   # T q = profits
    if piece is None:
        A_ub = np.c_[T, -np.ones(n)]
        res = linprog(np.r_[-g, C], A_ub=A_ub, b_ub=np.zeros(n),
                      bounds=[(0.0, float(b)) for b in market.prior] + [(0.0, None)], method="highs")
        return (-float(res.fun), np.asarray(res.x[:n])) if res.status == 0 else None
    A_ub = T - T[piece][None, :]                                 # profit_j − profit_k ≤ 0
    res = linprog(-(g - C * T[piece]), A_ub=A_ub, b_ub=np.zeros(n),
                  bounds=[(0.0, float(b)) for b in market.prior], method="highs")
    if res.status != 0:  # pragma: no cover - q = 0 is always feasible
        return None
    return -float(res.fun), np.asarray(res.x)


def constrained_efficiency(market: InfoDesignMarket, *, piece_lps: bool | None = None) -> EfficiencyResult:
    """Exact constrained efficiency (GLP Definition) through the closed form of ``W``.

    ``W° = max_{0 ≤ q ≤ q̄} W(q) − r̄ Σ q``: an LP with ``n + 1`` variables when
    ``γ_u ≥ γ_π`` (module docstring), separable otherwise (all of type ω sell iff
    ``γ_π ω > r̄``; on ties ``γ_π ω = r̄`` none is chosen).  The welfare is
    re-evaluated in closed form at the LP's ``q°`` (clipped to ``[0, q̄]``).
    With ``piece_lps`` (default: ``|Ω| ≤`` :data:`PIECE_LPS_MAX_N`) one LP per
    piece of V gives ``piece_values`` and every piece attaining ``W°``, as the
    piece method of :mod:`.info_design_lp` reports them; otherwise
    ``optimal_pieces`` lists the pieces active at ``q°``.
    """
    _require(market)
    t0 = time.perf_counter()
    n = market.n
    L, piece_type = _sorted_pieces(market)
    if market.gamma_u < market.gamma_pi:
        q = np.where(market.gamma_pi * market.types > market.reservation, market.prior, 0.0)
        lp_value = None
    else:
        lp_value, q = _planner_lp(market, None)
        q = np.clip(q, 0.0, market.prior)
        q[q < 1e-12] = 0.0
    ws = welfare(market, q)
    value = ws.value - market.reservation * float(q.sum())
    tol = VALUE_TOL * _scale(market) * 10
    bound = value if lp_value is None else max(value, lp_value)
    piece_values = None
    if piece_lps is None:
        piece_lps = n <= PIECE_LPS_MAX_N
    if L.shape[0] == 1:
        piece_values = np.array([value])
        winners = (0,)
    elif piece_lps:
        # piece k of the sorted list is the uniform price whose gradient it is
        vals = []
        for k in piece_type:
            r = _planner_lp(market, int(k))
            vals.append(-np.inf if r is None else r[0])
        piece_values = np.array(vals)
        bound = max(bound, float(piece_values.max()))
        winners = tuple(int(k) for k in np.flatnonzero(piece_values >= bound - tol))
    else:
        winners = tuple(int(k) for k in np.flatnonzero(np.abs(L @ q - ws.platform_value) <= tol))
    from ..result import relative_gap

    return EfficiencyResult(
        status=Termination.OPTIMAL, method="bbm", welfare=value, bound=bound, gap=relative_gap(value, bound),
        q=frozen_array(q), x=ws.x, y=ws.y, platform_value=ws.platform_value,
        consumer_utility=ws.consumer_utility, pieces=frozen_array(L), optimal_pieces=winners,
        allocations=((frozen_array(q), ws.x),), seconds=time.perf_counter() - t0,
        message=f"closed form (BBM surplus triangle): {L.shape[0]} pieces of V, planner LP with {n + 1} variables",
        piece_values=None if piece_values is None else frozen_array(piece_values))


def data_union(market: InfoDesignMarket):
    """The slides' data-union problem in closed form.

    The union's objective is the planner's ``Σ(v+u)y − r̄Σq`` plus ``r̄`` (use
    ``Σ P = V(q) = Σ v y``), over the planner's feasible set with the extra
    participation rows ``P(ω) + U(ω)q(ω) − r̄q(ω) ≥ 0``.  So its value is at most
    ``W° + r̄``, and the efficient allocation ``(q°, x°)`` attains it with
    ``P(ω) = (r̄ − U(ω, x°)) q°(ω) + W° q̄(ω)``: the budget holds because the
    shares ``q̄`` sum to one, participation because ``W° ≥ 0`` (no trade is
    feasible).  Each member keeps ``r̄`` plus an equal share ``W°`` of the
    surplus; other payment splits are optimal too (the LP picks a vertex).
    """
    from .info_design_lp import UnionResult

    t0 = time.perf_counter()
    eff = constrained_efficiency(market, piece_lps=False)
    q, U = np.asarray(eff.q), np.asarray(eff.consumer_utility)
    P = (market.reservation - U) * q + eff.welfare * market.prior
    with np.errstate(divide="ignore", invalid="ignore"):
        prices = np.where(market.prior > 0, P / np.where(market.prior > 0, market.prior, 1.0), 0.0)
    value = eff.welfare + market.reservation * float(market.prior.sum())
    return UnionResult(value, eff.welfare, eff.q, eff.x, frozen_array(prices), eff.platform_value,
                       time.perf_counter() - t0)


__all__ = ["data_union", "not_applicable", "applies", "uniform_profits", "piece_gradients", "value_pieces", "segmentation",
           "platform", "welfare", "constrained_efficiency", "PIECE_LPS_MAX_N"]
