"""Closed-form ``P_q``, ``W(q)``, pieces of ``V`` and constrained efficiency for the
slides' merchant, from the Bergemann–Brooks–Morris surplus triangle.

GLP's platform is an information designer "as in BBM" (slides, "Info-design
problem"): Bergemann, Brooks & Morris (2015), *The Limits of Price
Discrimination*, AER 105(3), Theorem 1.  For the slides' payoffs
``u = max(ω − a, 0)``, ``π = a·1[ω ≥ a]`` this module applies when every type is
positive and every type is also a fee (``Ω ⊆ A``; the default ``A = Ω``).

**Derivation** (the tests check every step against the LP of
:mod:`dm_opt.info_design.lp` on random instances, including extra fees ``A ⊋ Ω``).
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

with ``n + 1`` variables and ``n`` rows (separable when ``γ_u < γ_π``), written with
the suffix sums ``S_k = Σ_{j≥k} q_j`` (``S_k = q_k + S_{k+1}``, ``t ≥ ω_k S_k``) so it
has ``O(n)`` nonzeros.

Cost: ``V(q)`` and a supergradient are ``O(n)``; the optimal mechanism is ``O(n²)``
arithmetic (at most ``n`` greedy steps), against an LP with ``|A|·|Ω|`` variables.
Ties between uniform prices (which decide the set of supergradients) are decided at
``FACE_TOL × payoff scale × max(1, Σq)``, the tolerance the LP path uses for its dual face.

Limits: every function takes ``time_limit`` (seconds or a shared
:class:`~dm_opt.core.limits.Deadline`), checked between greedy steps and passed to the
planner LP; a stopped run returns an honest non-optimal result (see each function).
The results hold ``|A|×|Ω|`` matrices, so a market whose dense arrays would exceed
:data:`dm_opt.core.limits.MEMORY_BUDGET` is refused up front
(:class:`~dm_opt.core.errors.LimitExceeded`).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from dm_opt.core.errors import LimitExceeded, ProblemError, SolverFailed
from dm_opt.core.limits import Deadline, Stopped, check_model_size
from dm_opt.core.result import Termination, frozen_array, relative_gap
from dm_opt.info_design.common import (
    FACE_TOL,
    VALUE_TOL,
    HighsModel,
    _scale,
    mechanism_from_y,
    planner_bound,
)
from dm_opt.info_design.market import InfoDesignMarket
from dm_opt.info_design.results import (
    EfficiencyResult,
    PlatformSolution,
    UnionResult,
    ValuePieces,
    WelfareSolution,
)

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


#: Dense ``|A|×|Ω|`` (or ``|Ω|×|Ω|``) float arrays alive at once in :func:`platform` (the
#: segmentation, ``y``, ``x`` and their temporaries), for the memory estimate.
DENSE_ARRAYS = 6


#: Seconds reserved per ``|A|·|Ω|`` entry, before a deadline, for packaging a result after a
#: stop (a handful of passes over dense arrays: ~10–50 ns each measured at |Ω| = 2000–4000,
#: more on a loaded machine), so that the call returns within its time limit.
PACK_SECONDS_PER_ENTRY = 1e-7


def _pack_reserve(market: InfoDesignMarket) -> float:
    return PACK_SECONDS_PER_ENTRY * max(market.m, market.n) * market.n


def _owned(a: np.ndarray) -> np.ndarray:
    """``a`` made read-only in place (a fresh array this module owns: no defensive copy)."""
    a.setflags(write=False)
    return a


def _check_dense(market: InfoDesignMarket, what: str) -> None:
    """Refuse a market whose dense result arrays would exceed :data:`dm_opt.core.limits.MEMORY_BUDGET`."""
    check_model_size(f"{what} (|Ω| = {market.n}, |A| = {market.m}: {DENSE_ARRAYS} dense "
                     f"{max(market.m, market.n)}×{market.n} arrays)", max(market.m, market.n) * market.n,
                     8 * DENSE_ARRAYS, hint="the mechanism x(a|ω) alone is a dense |A|×|Ω| array")


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
    n = market.n
    # L[k, j] = γ_u ω_j − c ω_k 1[ω_j ≥ ω_k]; types sorted and distinct: ω_j ≥ ω_k ⇔ j ≥ k
    L = np.triu(np.broadcast_to((-c * w)[:, None], (n, n)))
    L += (market.gamma_u * w)[None, :]
    return L, np.arange(n)


def _sorted_pieces(market: InfoDesignMarket) -> tuple[np.ndarray, np.ndarray]:
    """:func:`piece_gradients` in the order :func:`~dm_opt.info_design.lp.value_pieces` uses
    (lexicographically increasing rows).  That order is the type order already: rows
    ``k < j`` agree on the coordinates ``i < k`` (``γ_u ω_i``, no indicator fires since
    ``ω_i < ω_k < ω_j``) and first differ at ``i = k``, where ``λ^k(ω_k) = γ_u ω_k −
    c ω_k < γ_u ω_k = λ^j(ω_k)`` (``c > 0``, types positive); so no ``O(n² log n)`` sort."""
    return piece_gradients(market)


def value_pieces(market: InfoDesignMarket) -> ValuePieces:
    """The pieces of V in closed form, in the order :func:`~dm_opt.info_design.lp.value_pieces` uses."""
    _check_dense(market, "closed-form pieces of V")
    t0 = time.perf_counter()
    L, _ = _sorted_pieces(market)
    return ValuePieces(frozen_array(L), 0, time.perf_counter() - t0)


def segmentation(types: np.ndarray, q: np.ndarray, *, deadline=None) -> np.ndarray:
    """BBM's greedy extremal segmentation of the market ``q`` (module docstring).

    Returns ``Y`` (n, n): ``Y[k, j]`` is the mass of type ``j`` in the segment whose
    recommended (uniform) price is type ``k``; columns sum to ``q``.  Every segment
    is obedient, sells to all its types and earns the merchant exactly what ``a*``
    would; at most ``n`` steps.  ``deadline`` (a :class:`~dm_opt.core.limits.Deadline`) is
    checked every 64 steps (raises :class:`~dm_opt.core.limits.Stopped`).
    """
    n = len(q)
    r = np.array(q, float)
    Y = np.zeros((n, n))
    eps = 1e-14 * max(float(r.max(initial=0.0)), 1e-300)
    r[r <= eps] = 0.0
    steps = 0
    while True:
        steps += 1
        if deadline is not None and steps % 64 == 0:
            deadline.check()
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


def _mechanism(market: InfoDesignMarket, q: np.ndarray, deadline=None) -> np.ndarray:
    """An optimal ``y`` (m, n) of ``P_q`` that is also consumer-best on the optimal face."""
    m, n = market.m, market.n
    fidx = np.searchsorted(market.fees, market.types)          # fee index of each type (Ω ⊆ A)
    if market.gamma_u < market.gamma_pi:
        y = np.zeros((m, n))
        y[fidx, np.arange(n)] = q                             # full disclosure
        return y
    Y = segmentation(market.types, q, deadline=deadline)
    if m == n:                                                 # A = Ω: fidx is the identity
        return Y
    y = np.zeros((m, n))
    y[fidx, :] = Y
    return y


def _no_information(market: InfoDesignMarket, q: np.ndarray):
    """``(y, x, value)`` of :func:`~dm_opt.info_design.lp.no_information` with O(n) work beyond
    allocating ``y`` and ``x`` (one recommended fee ``a0``; types with ``q = 0`` get the
    consumer-worst fee, as :func:`~dm_opt.info_design.lp.mechanism_from_y` does)."""
    prof = market.pi @ q
    best = np.flatnonzero(prof >= prof.max() - 1e-12 * max(1.0, abs(prof.max())))
    a0 = int(best[np.argmax(market.v[best] @ q)])
    y = np.zeros((market.m, market.n))
    y[a0] = q
    x = np.zeros((market.m, market.n))
    pos = q > 0
    x[a0, pos] = 1.0
    free = np.flatnonzero(~pos)
    if free.size:
        x[np.argmin(market.u[:, free], axis=0), free] = 1.0
    return y, x, float(market.v[a0] @ q)


def _piece_rows(market: InfoDesignMarket, ks) -> np.ndarray:
    """Rows ``λ^k`` of :func:`piece_gradients` for the type indices ``ks`` only, shape (len(ks), n)."""
    w = market.types
    a, c = _weights(market)
    ks = np.asarray(ks, int)
    if c == 0.0:
        return np.repeat((a * w)[None, :], len(ks), axis=0)
    wk = w[ks][:, None]
    return market.gamma_u * w[None, :] - c * np.where(w[None, :] >= wk, wk, 0.0)


def platform(market: InfoDesignMarket, q, *, intervals: bool = True, time_limit=None) -> PlatformSolution:
    """``P_q`` in closed form: ``V(q)``, an optimal mechanism (BBM segmentation, or full
    disclosure when ``γ_u < γ_π``), a supergradient with its obedience duals and, with
    ``intervals``, the exact per-coordinate range of ``∂V(q)``::

        ∂V(q) = conv{λ^k : ω_k an optimal uniform price at q} + cone{e_ω : q(ω) = 0}.

    ``V(q)``, the supergradient and the ranges take ``O(n·|ties|)``; only the mechanism
    (the segmentation) is ``O(n²)``.  ``time_limit`` (seconds or a shared Deadline) or
    Ctrl-C during the segmentation: status ``time_limit``/``interrupted``, ``y``/``x`` the
    :func:`~dm_opt.info_design.lp.no_information` mechanism with its value, ``bound`` the exact
    ``V(q)`` (closed form), the duals and ranges exact, and ``message`` saying so.
    """
    _require(market)
    _check_dense(market, "closed-form P_q")
    q = market.database(q)
    dl = Deadline.of(time_limit)
    t0 = time.perf_counter()
    m = market.m
    TS = float(market.types @ q)
    prof = uniform_profits(market, q)
    k_star = int(np.argmax(prof))
    a, c = _weights(market)
    value = a * TS - c * float(prof[k_star])
    mu = np.zeros((m, m))
    if c > 0:
        lam = _piece_rows(market, [k_star])[0]
        f_star = int(np.searchsorted(market.fees, market.types[k_star]))
        mu[:, f_star] = c
        mu[f_star, f_star] = 0.0
        tol = FACE_TOL * _scale(market) * max(1.0, float(q.sum()))
        active = _piece_rows(market, np.flatnonzero(prof >= prof[k_star] - tol))
    else:
        lam = _piece_rows(market, [0])[0]
        active = lam[None, :]
    lower = upper = pts = None
    if intervals:
        lower = active.min(axis=0)
        upper = np.where(q > 0, active.max(axis=0), np.inf)
        pts = np.unique(active, axis=0)
    status, message, bound = Termination.OPTIMAL, "", None
    try:
        y = _mechanism(market, q, dl.reserve(_pack_reserve(market)))
        x = mechanism_from_y(market, y, q)
    except (Stopped, KeyboardInterrupt) as exc:
        status = exc.status if isinstance(exc, Stopped) else Termination.INTERRUPTED
        y, x, bound = None, None, value
        y, x, value = _no_information(market, q)
        why = "interrupted" if status is Termination.INTERRUPTED else dl.message()
        message = (f"{why} while building BBM's segmentation: bound = V(q) is exact (closed form) and so are "
                   f"the duals and ranges, but the optimal mechanism is missing; y/x are the no-information "
                   f"mechanism")
    return PlatformSolution(
        status=status, q=frozen_array(q), value=value, y=_owned(y), x=_owned(x),
        supergradient=frozen_array(lam), obedience_duals=_owned(mu),
        consumer_utility=_owned(market.consumer_utility(x)),
        lower=None if lower is None else frozen_array(lower), upper=None if upper is None else frozen_array(upper),
        supergradients=None if pts is None else frozen_array(pts), seconds=time.perf_counter() - t0,
        bound=bound, gap=0.0 if bound is None else relative_gap(value, bound), message=message)


def welfare(market: InfoDesignMarket, q, *, time_limit=None) -> WelfareSolution:
    """``W(q) = V(q) + Σ_ω q(ω) U(ω, x)`` with the consumer-best optimal ``x`` (closed form).
    ``time_limit``: W(q) has no partial answer; a stop raises
    :class:`~dm_opt.core.limits.Stopped` internally, :class:`~dm_opt.core.errors.LimitExceeded` here."""
    try:
        return _welfare(market, q, Deadline.of(time_limit))
    except Stopped as stop:
        if stop.status is Termination.INTERRUPTED:
            raise KeyboardInterrupt from None
        raise LimitExceeded(f"W(q): {stop.message}; W(q) has no partial answer") from None


def _welfare(market: InfoDesignMarket, q, deadline: Deadline) -> WelfareSolution:
    """:func:`welfare` raising :class:`~dm_opt.core.limits.Stopped` (internal)."""
    sol = platform(market, q, intervals=False, time_limit=deadline)
    if sol.status is not Termination.OPTIMAL:
        raise Stopped(sol.status, sol.message)
    y = np.asarray(sol.y)
    w = sol.value + float(np.sum(market.u * y))
    return WelfareSolution(sol.q, w, sol.value, sol.y, sol.x, sol.consumer_utility)


def _planner_lp(market: InfoDesignMarket, piece: int | None, deadline=None):
    """``max g·q − C·t`` over ``0 ≤ q ≤ q̄`` (module docstring); with ``piece = k``
    restricted to the region where type ``k`` is an optimal uniform price (then
    ``t = ω_k Σ_{j≥k} q_j``).  Returns ``(value, q)`` or ``None`` if infeasible; raises
    :class:`~dm_opt.core.limits.Stopped` when ``deadline`` stops HiGHS.

    Columns ``q (n) | S (n) | t``, ``S_k = Σ_{j≥k} q_j`` through ``S_k − S_{k+1} − q_k = 0``;
    profits ``ω_k S_k``: ``O(n)`` nonzeros (a dense triangular ``T q`` has ``n²/2``)."""
    n, w = market.n, market.types
    g = (1.0 + market.gamma_u) * w - market.reservation
    C = 1.0 + market.gamma_u - market.gamma_pi
    k = np.arange(n)
    # S_k − S_{k+1} − q_k = 0
    D = sp.csr_matrix((np.r_[np.ones(n), -np.ones(n - 1), -np.ones(n)],
                       (np.r_[k, k[:-1], k], np.r_[n + k, n + k[1:], k])), shape=(n, 2 * n + 1))
    inf = np.inf
    if piece is None:
        P = sp.csr_matrix((np.r_[w, -np.ones(n)], (np.r_[k, k], np.r_[n + k, np.full(n, 2 * n)])),
                          shape=(n, 2 * n + 1))                                   # ω_k S_k − t ≤ 0
        cost = np.r_[g, np.zeros(n), -C]
        col_hi = np.r_[market.prior, np.full(n, inf), inf]
    else:
        P = sp.csr_matrix((np.r_[w, np.full(n, -w[piece])], (np.r_[k, k], np.r_[n + k, np.full(n, n + piece)])),
                          shape=(n, 2 * n + 1))                                   # ω_j S_j − ω_k S_k ≤ 0
        cost = np.r_[g, np.zeros(n), 0.0]
        cost[n + piece] -= C * w[piece]
        col_hi = np.r_[market.prior, np.full(n, inf), 0.0]
    A = sp.vstack([D, P], format="csc")
    model = HighsModel(A, np.r_[np.zeros(n), np.full(n, -inf)], np.zeros(2 * n), cost, np.zeros(2 * n + 1),
                        col_hi)
    st = model.run(deadline)
    if st in ("time_limit", "interrupted"):
        raise Stopped(Termination(st), "planner LP stopped" if st == "time_limit" else "interrupted")
    if st == "infeasible":  # pragma: no cover - q = 0 is always feasible
        return None
    if st != "optimal":  # pragma: no cover
        raise SolverFailed(f"planner LP: HiGHS status {st!r}")
    return model.objective, np.asarray(model.x[:n])


def constrained_efficiency(market: InfoDesignMarket, *, piece_lps: bool | None = None,
                           time_limit=None) -> EfficiencyResult:
    """Exact constrained efficiency (GLP Definition) through the closed form of ``W``.

    ``W° = max_{0 ≤ q ≤ q̄} W(q) − r̄ Σ q``: an LP with ``n + 1`` variables when
    ``γ_u ≥ γ_π`` (module docstring), separable otherwise (all of type ω sell iff
    ``γ_π ω > r̄``; on ties ``γ_π ω = r̄`` none is chosen).  The welfare is
    re-evaluated in closed form at the LP's ``q°`` (clipped to ``[0, q̄]``).
    With ``piece_lps`` (default: ``|Ω| ≤`` :data:`PIECE_LPS_MAX_N`) one LP per
    piece of V gives ``piece_values`` and every piece attaining ``W°``, as the
    piece method of :mod:`dm_opt.info_design.lp` reports them; otherwise
    ``optimal_pieces`` lists the pieces active at ``q°``.

    ``time_limit`` (seconds or a shared Deadline) and Ctrl-C: a stopped run reports the
    best allocation whose mechanism was built (no trade, welfare 0, if none) with status
    ``time_limit``/``interrupted``, ``bound`` the planner LP's exact ``W°`` if it finished
    (else :func:`~dm_opt.info_design.lp.planner_bound`), unfinished ``piece_values`` NaN, and
    ``message`` saying what is missing.
    """
    _require(market)
    _check_dense(market, "closed-form constrained efficiency")
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    n = market.n
    L, piece_type = _sorted_pieces(market)
    tol = VALUE_TOL * _scale(market) * 10
    if piece_lps is None:
        piece_lps = n <= PIECE_LPS_MAX_N
    lp_value = None
    status, notes = Termination.OPTIMAL, []
    inner = dl.reserve(_pack_reserve(market))
    try:
        if market.gamma_u < market.gamma_pi:
            q = np.where(market.gamma_pi * market.types > market.reservation, market.prior, 0.0)
        else:
            inner.check()
            lp_value, q = _planner_lp(market, None, inner)
            q = np.clip(q, 0.0, market.prior)
            q[q < 1e-12] = 0.0
        ws = _welfare(market, q, inner)
    except (Stopped, KeyboardInterrupt) as exc:
        status = exc.status if isinstance(exc, Stopped) else Termination.INTERRUPTED
        notes.append(("planner LP" if lp_value is None and market.gamma_u >= market.gamma_pi
                      else "the mechanism x° (segmentation)") + f" not finished ({status})"
                     + ("" if lp_value is None else f"; W° = {lp_value:.10g} (the bound) is exact but its allocation "
                        "was not built") + "; no trade reported")
        q = np.zeros(n)
        y0, x0, _ = _no_information(market, q)
        ws = WelfareSolution(frozen_array(q), 0.0, 0.0, _owned(y0), _owned(x0),
                             _owned(market.consumer_utility(x0)))
    value = ws.value - market.reservation * float(q.sum())
    if status is Termination.OPTIMAL:
        bound = value if lp_value is None else max(value, lp_value)
    else:
        bound = max(value, lp_value if lp_value is not None else planner_bound(market))
    piece_values = None
    if L.shape[0] == 1:
        piece_values = np.array([value]) if status is Termination.OPTIMAL else np.array([np.nan])
        winners = (0,) if status is Termination.OPTIMAL else ()
    elif piece_lps and status is Termination.OPTIMAL:
        # piece k of the sorted list is the uniform price whose gradient it is
        vals = np.full(len(piece_type), np.nan)
        try:
            for i, k in enumerate(piece_type):
                r = _planner_lp(market, int(k), inner)
                vals[i] = -np.inf if r is None else r[0]
        except (Stopped, KeyboardInterrupt) as exc:
            status = exc.status if isinstance(exc, Stopped) else Termination.INTERRUPTED
            notes.append(f"piece LPs stopped ({status}) after {int(np.sum(~np.isnan(vals)))} of {len(vals)}: "
                         "the list of optimal pieces is incomplete")
        piece_values = vals
        if np.any(np.isfinite(vals)):
            bound = max(bound, float(np.nanmax(vals)))
        winners = tuple(int(k) for k in np.flatnonzero(np.nan_to_num(vals, nan=-np.inf) >= bound - tol))
    elif status is Termination.OPTIMAL:
        winners = tuple(int(k) for k in np.flatnonzero(np.abs(L @ q - ws.platform_value) <= tol))
    else:
        winners = ()
    msg = f"closed form (BBM surplus triangle): {L.shape[0]} pieces of V, planner LP with {n + 1} variables"
    return EfficiencyResult(
        status=status, method="bbm", welfare=value, bound=bound, gap=relative_gap(value, bound),
        q=frozen_array(q), x=ws.x, y=ws.y, platform_value=ws.platform_value,
        consumer_utility=ws.consumer_utility, pieces=_owned(L), optimal_pieces=winners,
        allocations=((frozen_array(q), ws.x),), seconds=time.perf_counter() - t0,
        message="; ".join([msg] + notes),
        piece_values=None if piece_values is None else frozen_array(piece_values))


def data_union(market: InfoDesignMarket, *, time_limit=None):
    """The slides' data-union problem in closed form.

    The union's objective is the planner's ``Σ(v+u)y − r̄Σq`` plus ``r̄`` (use
    ``Σ P = V(q) = Σ v y``), over the planner's feasible set with the extra
    participation rows ``P(ω) + U(ω)q(ω) − r̄q(ω) ≥ 0``.  So its value is at most
    ``W° + r̄``, and the efficient allocation ``(q°, x°)`` attains it with
    ``P(ω) = (r̄ − U(ω, x°)) q°(ω) + W° q̄(ω)``: the budget holds because the
    shares ``q̄`` sum to one, participation because ``W° ≥ 0`` (no trade is
    feasible).  Each member keeps ``r̄`` plus an equal share ``W°`` of the
    surplus; other payment splits are optimal too (the LP picks a vertex).
    ``time_limit``: as :func:`constrained_efficiency` (bound ``eff.bound + r̄``).
    """
    t0 = time.perf_counter()
    eff = constrained_efficiency(market, piece_lps=False, time_limit=time_limit)
    q, U = np.asarray(eff.q), np.asarray(eff.consumer_utility)
    P = (market.reservation - U) * q + eff.welfare * market.prior
    with np.errstate(divide="ignore", invalid="ignore"):
        prices = np.where(market.prior > 0, P / np.where(market.prior > 0, market.prior, 1.0), 0.0)
    mass = market.reservation * float(market.prior.sum())
    value = eff.welfare + mass
    bound = eff.bound + mass
    return UnionResult(value, eff.welfare, eff.q, eff.x, frozen_array(prices), eff.platform_value,
                       time.perf_counter() - t0, eff.status, max(bound, value), relative_gap(value, max(bound, value)),
                       "" if eff.status is Termination.OPTIMAL else eff.message)


__all__ = ["data_union", "not_applicable", "applies", "uniform_profits", "piece_gradients", "value_pieces",
           "segmentation", "platform", "welfare", "constrained_efficiency", "PIECE_LPS_MAX_N"]
