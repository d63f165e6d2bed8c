"""Linear programs of the GLP data economy (SPEC §2), in cvxpy with HiGHS.

Everything here rests on one LP, the platform's information-design problem
``P_q`` (GLP slides, "Info-design problem equiv to platform choosing
mechanism"), written in the variables ``y(a, ω) = x(a|ω) q(ω) ≥ 0``::

    V(q) = max  Σ_{a,ω} v(a,ω) y(a,ω)
           s.t. Σ_a y(a,ω) = q(ω)                         ∀ω   (record counts, dual λ(ω))
                Σ_ω (π(a,ω) − π(a',ω)) y(a,ω) ≥ 0         ∀a≠a' (obedience, dual μ(a,a') ≥ 0)

``q`` enters only the right-hand side, so ``V(q) = min_{(λ,μ)∈D} λ·q`` with the
dual polyhedron ``D = {λ(ω) ≥ v(a,ω) + Σ_{a'} μ(a,a')(π(a,ω) − π(a',ω)), μ ≥ 0}``
independent of ``q``: V is concave, piecewise linear and homogeneous of degree
one, and ``∂V(q)`` (supergradients relative to ``q ≥ 0``, which is what the
platform's first-period problem ``max_{q≥0} V(q) − p·q`` needs) is the
λ-projection of the optimal dual face ``{(λ,μ) ∈ D : λ·q = V(q)}``.  Proof of
the last claim: an optimal dual gives ``V(q') ≤ λ·q' = V(q) + λ·(q'−q)``;
conversely a supergradient ``p`` satisfies ``p·q = V(q)`` (take ``q' = tq``)
and ``p·q' ≥ V(q')`` for all ``q' ≥ 0``, which by LP duality puts ``p`` in the
(upward-closed) projection of ``D``.  Coordinates with ``q(ω) = 0`` are
therefore unbounded above.

**Pieces of V.**  The vertices ``λ^k`` of ``proj_λ D`` are exactly the
gradients of V on its full-dimensional linear pieces, and ``V(q) = min_k λ^k·q``.
For ``y`` feasible at ``q``, ``Σ v y ≥ λ^k·q`` already implies that ``y`` is
optimal and ``λ^k ∈ ∂V(q)`` (weak duality), so the bilevel planner problem
(constrained efficiency) splits into one LP per piece::

    W° = max_k max { Σ (v+u)·y − r̄ Σ q : y feasible at q, 0 ≤ q ≤ q̄, Σ v y ≥ λ^k·q }.

:func:`value_pieces` finds every ``λ^k`` exactly for small ``|Ω|`` (adaptive:
``V_Λ = min_{λ∈Λ} λ·q ≥ V`` is linear on each region of the current list, V is
concave, so ``V = V_Λ`` on a region iff it holds at the region's vertices;
a vertex where ``V < V_Λ`` yields a new dual vertex).

Tolerances: HiGHS' primal/dual feasibility tolerance is 1e-7; values are
compared with :data:`VALUE_TOL` relative to the instance's payoff scale.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from ..errors import InstanceError, LimitExceeded, SolverFailed
from ..markets.info_design import InfoDesignMarket
from ..result import Termination

#: Relative tolerance (× payoff scale × mass) for comparing LP values.
VALUE_TOL = 1e-7
#: Relative slack on ``λ·q ≤ V(q)`` defining the optimal dual face numerically.
FACE_TOL = 1e-9
#: Largest |Ω| for the exact piece enumeration (vertex enumeration in |Ω|−1 dimensions).
PIECES_MAX_N = 6

_BANNER_SILENCED = False


def _silence_highs_banner() -> None:
    """HiGHS prints a copyright banner to fd 1 when the first ``Highs()`` is built,
    which would corrupt ``dm-opt solve --json`` output; build one with fd 1 muted."""
    global _BANNER_SILENCED
    if _BANNER_SILENCED:
        return
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _BANNER_SILENCED = True


def _cp():
    import cvxpy as cp

    _silence_highs_banner()
    return cp


_STATUS = {"optimal": Termination.OPTIMAL, "infeasible": Termination.INFEASIBLE}


def _solve(prob, what: str):
    cp = _cp()
    try:
        prob.solve(solver=cp.HIGHS)
    except cp.error.SolverError as exc:  # pragma: no cover - backend failure
        raise SolverFailed(f"HiGHS failed on {what}: {exc}") from None
    return prob.status


def _scale(market: InfoDesignMarket) -> float:
    return max(1.0, float(np.max(np.abs(market.v))), float(np.max(np.abs(market.u))),
               abs(market.reservation))


# ---------------------------------------------------------------------------
# constraint matrices (flattened y, index a*n + ω)

def record_matrix(market: InfoDesignMarket) -> sp.csr_matrix:
    """``E`` (n, m·n): ``(E y)(ω) = Σ_a y(a, ω)``."""
    m, n = market.m, market.n
    cols = np.arange(m * n)
    return sp.csr_matrix((np.ones(m * n), (cols % n, cols)), shape=(n, m * n))


def obedience_matrix(market: InfoDesignMarket) -> tuple[sp.csr_matrix, np.ndarray]:
    """``G`` (m(m−1), m·n): row ``(a, a')`` is ``Σ_ω (π(a,ω) − π(a',ω)) y(a,ω)``.

    Returns ``(G, pairs)`` with ``pairs`` (m(m−1), 2) the ``(a, a')`` of each row.
    """
    m, n = market.m, market.n
    pi = market.pi
    pairs = np.array([(a, b) for a in range(m) for b in range(m) if a != b], dtype=int).reshape(-1, 2)
    if pairs.size == 0:
        return sp.csr_matrix((0, m * n)), pairs
    vals = pi[pairs[:, 0]] - pi[pairs[:, 1]]                       # (R, n)
    rows = np.repeat(np.arange(len(pairs)), n)
    cols = (pairs[:, 0][:, None] * n + np.arange(n)[None, :]).ravel()
    G = sp.csr_matrix((vals.ravel(), (rows, cols)), shape=(len(pairs), m * n))
    G.eliminate_zeros()
    return G, pairs


def _threshold_form(market: InfoDesignMarket) -> bool:
    """True when ``π(a, ω) = fee_a · 1[ω ≥ fee_a]`` (the slides' merchant), which
    admits an O(m·n)-nonzero obedience formulation through suffix sums."""
    return not market.is_general


# ---------------------------------------------------------------------------
# results

def _frozen(a, dtype=float):
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class PlatformSolution:
    """Solution of ``P_q`` at one database ``q``.

    Attributes
    ----------
    status : Termination
    q : (n,)             the database
    value : float        ``V(q)``
    y : (m, n)           optimal ``y(a, ω) = x(a|ω) q(ω)``
    x : (m, n)           optimal mechanism ``x(a|ω)``; columns of types with
                         ``q(ω) = 0`` (not pinned down by ``P_q``) put mass 1 on
                         ``argmin_a u(a, ω)`` (see :func:`mechanism_from_y`)
    supergradient : (n,) one ``λ ∈ ∂V(q)`` (HiGHS dual of the record counts)
    obedience_duals : (m, m)  ``μ(a, a')`` of that dual solution (0 on the diagonal)
    lower, upper : (n,) or None   per-coordinate ``min/max λ(ω)`` over ``∂V(q)``
                         (``upper = inf`` where ``q(ω) = 0``); ``None`` unless requested
    supergradients : (k, n) or None   genuine elements of ``∂V(q)``: the
                         optimal duals attaining each bound above (distinct rows)
    consumer_utility : (n,)   ``U(ω, x)``
    """

    status: Termination
    q: np.ndarray
    value: float
    y: np.ndarray
    x: np.ndarray
    supergradient: np.ndarray
    obedience_duals: np.ndarray
    consumer_utility: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    supergradients: np.ndarray | None = None
    seconds: float = 0.0

    @property
    def unique_supergradient(self) -> bool | None:
        if self.lower is None:
            return None
        return bool(np.all(np.isfinite(self.upper)) and np.allclose(self.lower, self.upper, atol=1e-7))


def mechanism_from_y(market: InfoDesignMarket, y: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``x(a|ω) = y(a,ω)/q(ω)``; for ``q(ω) = 0`` the column is free in ``P_q`` and
    we put mass 1 on the fee worst for the consumer (``argmin_a u(a,ω)``; for the
    slides' payoffs the highest fee, ``U = 0``).  This is the convention used for
    the consumer condition of types that do not sell (see :func:`equilibria`)."""
    y = np.clip(np.asarray(y, float), 0.0, None)
    x = np.zeros_like(y)
    pos = q > 0
    x[:, pos] = y[:, pos] / np.maximum(y[:, pos].sum(axis=0), 1e-300)
    worst = np.argmin(market.u, axis=0)
    for w in np.flatnonzero(~pos):
        x[worst[w], w] = 1.0
    return x


# ---------------------------------------------------------------------------
# P_q, compiled once with q as a cvxpy Parameter

class PlatformLP:
    """``P_q`` compiled once; :meth:`solve` re-solves for a new ``q`` by changing the
    ``cp.Parameter`` only (cvxpy caches the canonicalised problem).

    For the slides' merchant (``π(a,ω) = a·1[ω ≥ a]``) the obedience constraints
    are written through suffix sums ``T(a,k) = Σ_{ω ≥ ω_k} y(a,ω)``:
    ``Σ_ω π(a',ω) y(a,ω) = a'·T(a, k(a'))`` with ``k(a')`` the first type ``≥ a'``,
    so the model has O(m·n + m²) nonzeros instead of O(m²·n).  General payoffs
    use the dense matrix of :func:`obedience_matrix`.
    """

    def __init__(self, market: InfoDesignMarket, *, compact: bool | None = None):
        cp = _cp()
        self.market = market
        m, n = market.m, market.n
        t0 = time.perf_counter()
        self.q = cp.Parameter(n, nonneg=True, name="q")
        self.y = cp.Variable((m, n), nonneg=True, name="y")
        self.record = cp.sum(self.y, axis=0) == self.q
        compact = _threshold_form(market) if compact is None else compact
        if compact and not _threshold_form(market):
            raise InstanceError("payoffs", "the compact obedience form needs the slides' merchant payoff")
        self.compact = compact
        if compact:
            # T[:, k] = Σ_{j ≥ k} y[:, j], T[:, n] = 0
            T = cp.Variable((m, n + 1), name="T")
            defs = [T[:, n] == 0, T[:, :n] == self.y + T[:, 1:]]
            kfirst = np.searchsorted(market.types, market.fees, side="left")    # (m,)
            rows, cols = np.nonzero(~np.eye(m, dtype=bool))
            self._pairs = np.c_[rows, cols]
            fee = market.fees
            # Σ_ω (π(a,ω) − π(a',ω)) y(a,ω) = fee_a T[a, k(a)] − fee_{a'} T[a, k(a')]
            if m > 1:
                self.obedience = (cp.multiply(fee[rows], T[rows, kfirst[rows]])
                                  - cp.multiply(fee[cols], T[rows, kfirst[cols]])) >= 0
            else:
                self.obedience = None
            cons = [self.record] + defs + ([self.obedience] if m > 1 else [])
        else:
            G, pairs = obedience_matrix(market)
            self._pairs = pairs
            yflat = cp.reshape(self.y, (m * n,), order="C")
            self.obedience = G @ yflat >= 0 if G.shape[0] else None
            cons = [self.record] + ([self.obedience] if self.obedience is not None else [])
        self.objective = cp.sum(cp.multiply(market.v, self.y))
        self.problem = cp.Problem(cp.Maximize(self.objective), cons)
        self.build_seconds = time.perf_counter() - t0
        self._face = None

    def solve(self, q, *, intervals: bool = False) -> PlatformSolution:
        """Solve ``P_q``; with ``intervals=True`` also the per-coordinate range of
        ``∂V(q)`` from 2n LPs over the optimal dual face."""
        market = self.market
        q = market.database(q)
        t0 = time.perf_counter()
        self.q.value = q
        status = _solve(self.problem, "P_q")
        if status != "optimal":
            raise SolverFailed(f"P_q: HiGHS returned status {status!r}")
        y = np.clip(np.asarray(self.y.value, float), 0.0, None)
        value = float(self.problem.value)
        lam = np.asarray(self.record.dual_value, float).reshape(-1)
        mu = np.zeros((market.m, market.m))
        if self.obedience is not None:
            d = np.asarray(self.obedience.dual_value, float).reshape(-1)
            mu[self._pairs[:, 0], self._pairs[:, 1]] = np.clip(d, 0.0, None)
        x = mechanism_from_y(market, y, q)
        lower = upper = pts = None
        if intervals:
            lower, upper, pts = self.dual_face_ranges(q, value)
        return PlatformSolution(
            status=Termination.OPTIMAL, q=_frozen(q), value=value, y=_frozen(y), x=_frozen(x),
            supergradient=_frozen(lam), obedience_duals=_frozen(mu),
            consumer_utility=_frozen(market.consumer_utility(x)),
            lower=None if lower is None else _frozen(lower), upper=None if upper is None else _frozen(upper),
            supergradients=None if pts is None else _frozen(pts),
            seconds=time.perf_counter() - t0)

    # -- the dual face ------------------------------------------------------
    def _build_face(self):
        cp = _cp()
        market = self.market
        m, n = market.m, market.n
        E = record_matrix(market)
        G, pairs = obedience_matrix(market)
        self._fq = cp.Parameter(n, nonneg=True)
        self._fV = cp.Parameter()
        self._fc = cp.Parameter(n)
        lam = cp.Variable(n)
        cons = []
        if G.shape[0]:
            mu = cp.Variable(G.shape[0], nonneg=True)
            cons.append(E.T @ lam - G.T @ mu >= market.v.ravel())
        else:
            cons.append(E.T @ lam >= market.v.ravel())
        cons.append(self._fq @ lam <= self._fV)
        self._flam = lam
        self._fprob = cp.Problem(cp.Minimize(self._fc @ lam), cons)

    def dual_face_ranges(self, q, value) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``min``/``max`` of each ``λ(ω)`` over ``{(λ,μ) ∈ D : λ·q ≤ V(q) + tol}``.

        ``tol = FACE_TOL × scale × max(1, Σq)`` absorbs the error of ``V(q)``.
        Returns ``(lower, upper, points)``; ``upper[ω] = inf`` when the LP is
        unbounded (always when ``q(ω) = 0``); ``points`` are the distinct
        optimal λ's found (each an element of ∂V(q) up to ``tol``).
        """
        if self._face is None:
            self._build_face()
            self._face = True
        n = self.market.n
        tol = FACE_TOL * _scale(self.market) * max(1.0, float(np.sum(q)))
        self._fq.value = q
        self._fV.value = value + tol
        lower, upper, pts = np.empty(n), np.empty(n), []
        for w in range(n):
            for sign in (1.0, -1.0):
                c = np.zeros(n)
                c[w] = sign
                self._fc.value = c
                st = _solve(self._fprob, "dual face")
                if st in ("unbounded", "unbounded_inaccurate", "infeasible_or_unbounded"):
                    val = -np.inf
                elif st == "optimal":
                    val = float(self._fprob.value)
                    pts.append(np.asarray(self._flam.value, float).copy())
                else:  # pragma: no cover
                    raise SolverFailed(f"dual-face LP: status {st!r}")
                if sign > 0:
                    lower[w] = val
                else:
                    upper[w] = -val
        P = np.unique(np.round(np.array(pts), 9), axis=0) if pts else np.zeros((0, n))
        return lower, upper, P


def solve_platform(market: InfoDesignMarket, q, *, intervals: bool = True) -> PlatformSolution:
    """One-off ``P_q`` (builds the model; use :class:`PlatformLP` for sweeps)."""
    return PlatformLP(market).solve(q, intervals=intervals)


# ---------------------------------------------------------------------------
# W(q): consumers' best on the platform's optimal face

class FaceLP:
    """``max Σ (v+u)·y`` over the optimal face of ``P_q``, written as
    ``y`` feasible at ``q`` and ``Σ v y ≥ bound`` with ``bound`` a Parameter
    (``V(q) − tol`` for W(q); ``λ^k·q`` inside the piece LPs)."""

    def __init__(self, market: InfoDesignMarket, base: PlatformLP | None = None):
        cp = _cp()
        self.market = market
        self.base = base or PlatformLP(market)
        self.bound = cp.Parameter(name="vbound")
        cons = list(self.base.problem.constraints) + [self.base.objective >= self.bound]
        self.problem = cp.Problem(cp.Maximize(cp.sum(cp.multiply(market.v + market.u, self.base.y))), cons)


@dataclass(frozen=True)
class WelfareSolution:
    """``W(q) = V(q) + Σ_ω q(ω) U(ω, x)`` maximised over ``x`` solving ``P_q``
    (GLP slides, "social benefit"); ``y``, ``x`` shapes (m, n)."""

    q: np.ndarray
    value: float           # W(q)
    platform_value: float  # V(q)
    y: np.ndarray
    x: np.ndarray
    consumer_utility: np.ndarray


def welfare(market: InfoDesignMarket, q, *, face: FaceLP | None = None) -> WelfareSolution:
    """``W(q)``: solve ``P_q``, then maximise ``Σ (v+u) y`` subject to
    ``Σ v y ≥ V(q) − tol`` (``tol = VALUE_TOL × scale × max(1, Σq)``)."""
    face = face or FaceLP(market)
    q = market.database(q)
    sol = face.base.solve(q)
    tol = VALUE_TOL * _scale(market) * max(1.0, float(q.sum()))
    face.bound.value = sol.value - tol
    st = _solve(face.problem, "W(q)")
    if st != "optimal":  # pragma: no cover
        raise SolverFailed(f"W(q): status {st!r}")
    y = np.clip(np.asarray(face.base.y.value, float), 0.0, None)
    x = mechanism_from_y(market, y, q)
    w = sol.value + float(np.sum(market.u * y))
    return WelfareSolution(_frozen(q), w, sol.value, _frozen(y), _frozen(x),
                           _frozen(market.consumer_utility(x)))


# ---------------------------------------------------------------------------
# pieces of V

@dataclass(frozen=True)
class ValuePieces:
    """The linear pieces of ``V``: ``V(q) = min_k gradients[k]·q`` on ``q ≥ 0``.

    ``gradients`` (K, n) are the vertices of ``proj_λ D`` (each has a
    full-dimensional region); ``lp_solves`` counts P_q solves used.
    """

    gradients: np.ndarray
    lp_solves: int
    seconds: float

    def value(self, q) -> float:
        return float(np.min(self.gradients @ np.asarray(q, float)))


def _region_vertices(L: np.ndarray, k: int, tol: float) -> np.ndarray | None:
    """Vertices of ``{q ∈ simplex : (λ^k − λ^j)·q ≤ 0 ∀j}`` (None if not full-dimensional)."""
    from scipy.optimize import linprog
    from scipy.spatial import HalfspaceIntersection

    n = L.shape[1]
    others = np.delete(L, k, axis=0) - L[k]            # rows: (λ^j − λ^k); need ≥ 0 at q
    if n == 1:
        return np.ones((1, 1))
    # coordinates z = q[:n-1], q[n-1] = 1 − Σ z;  constraint  c·q ≥ 0 → −c[:-1]·z + c[-1]Σz ≤ c[-1]... write A z ≤ b
    A_list, b_list = [], []
    # q_i ≥ 0
    A_list.append(-np.eye(n - 1)); b_list.append(np.zeros(n - 1))
    A_list.append(np.ones((1, n - 1))); b_list.append(np.ones(1))
    if len(others):
        # c·q = c[:-1]·z + c[-1](1 − Σz) ≥ 0  ⇔  −(c[:-1] − c[-1])·z ≤ c[-1]
        A_list.append(-(others[:, :-1] - others[:, -1:])); b_list.append(others[:, -1])
    A = np.vstack(A_list)
    b = np.concatenate(b_list)
    norms = np.linalg.norm(A, axis=1)
    keep = norms > 1e-14
    if np.any(~keep & (b < -tol)):
        return None
    A, b, norms = A[keep], b[keep], norms[keep]
    if n == 2:
        lo, hi = 0.0, 1.0
        for a_, b_ in zip(A[:, 0], b):
            if a_ > 0:
                hi = min(hi, b_ / a_)
            elif a_ < 0:
                lo = max(lo, b_ / a_)
        if hi - lo <= tol:
            return None
        return np.array([[lo, 1 - lo], [hi, 1 - hi]])
    # Chebyshev centre for an interior point
    res = linprog(np.r_[np.zeros(n - 1), -1.0], A_ub=np.c_[A, norms], b_ub=b,
                  bounds=[(None, None)] * (n - 1) + [(0, 1)], method="highs")
    if res.status != 0 or res.x[-1] <= tol:
        return None
    hs = HalfspaceIntersection(np.c_[A, -b], res.x[:-1])
    Z = hs.intersections
    Q = np.c_[Z, 1 - Z.sum(axis=1)]
    return np.clip(Q, 0.0, None)


def value_pieces(market: InfoDesignMarket, *, platform: PlatformLP | None = None,
                 max_n: int = PIECES_MAX_N, max_rounds: int = 10_000) -> ValuePieces:
    """Every linear piece of ``V`` (exact up to LP tolerances), for ``|Ω| ≤ max_n``.

    Algorithm (module docstring): start from the duals at the simplex vertices
    and barycentre; repeatedly enumerate the vertices of each region of
    ``V_Λ = min_{λ∈Λ} λ·q`` on the simplex and add the LP dual wherever
    ``V < V_Λ``.  Terminates because LP duals are basic (finitely many).
    """
    if market.n > max_n:
        raise LimitExceeded(f"piece enumeration is for |Ω| ≤ {max_n} (got {market.n}); "
                            f"use method='milp' for constrained efficiency")
    t0 = time.perf_counter()
    plat = platform or PlatformLP(market)
    n = market.n
    tol = 1e-6 * _scale(market)
    cache: dict[bytes, PlatformSolution] = {}
    solves = 0

    def solve_at(q):
        nonlocal solves
        key = np.round(q, 12).tobytes()
        if key not in cache:
            cache[key] = plat.solve(q)
            solves += 1
        return cache[key]

    L: list[np.ndarray] = []

    def add(lam) -> bool:
        for l in L:
            if np.max(np.abs(l - lam)) <= tol:
                return False
        L.append(np.asarray(lam, float))
        return True

    for q in list(np.eye(n)) + [np.full(n, 1.0 / n)]:
        add(solve_at(q).supergradient)
    for _ in range(max_rounds):
        changed = False
        Lm = np.array(L)
        for k in range(len(Lm)):
            verts = _region_vertices(Lm, k, 1e-10)
            if verts is None:
                continue
            for qv in verts:
                s = solve_at(qv)
                if s.value < float(Lm[k] @ qv) - tol:
                    changed |= add(s.supergradient)
        if not changed:
            break
    else:  # pragma: no cover
        raise SolverFailed("value_pieces: no convergence")
    Lm = np.array(L)
    keep = [k for k in range(len(Lm)) if _region_vertices(Lm, k, 1e-9) is not None]
    G = Lm[keep]
    order = np.lexsort(G.T[::-1])
    return ValuePieces(_frozen(G[order]), solves, time.perf_counter() - t0)


# ---------------------------------------------------------------------------
# constrained efficiency

class PieceLP:
    """The planner LP on one piece ``k`` (module docstring), compiled once with
    ``λ^k`` (and optionally extra linear terms) as Parameters."""

    def __init__(self, market: InfoDesignMarket, *, union: bool = False):
        cp = _cp()
        self.market = market
        m, n = market.m, market.n
        self.base = PlatformLP(market)
        self.qv = cp.Variable(n, nonneg=True, name="q")
        self.lam = cp.Parameter(n, name="lambda_k")
        y = self.base.y
        cons = [c for c in self.base.problem.constraints if c is not self.base.record]
        cons += [cp.sum(y, axis=0) == self.qv, self.qv <= market.prior,
                 self.base.objective >= self.lam @ self.qv]
        cu = cp.sum(cp.multiply(market.u, y))
        welfare_expr = self.base.objective + cu - market.reservation * cp.sum(self.qv)
        self.P = None
        if union:
            # slides' data-union problem: payments P(ω) = p(ω) q̄(ω), Σ P = V(q), participation
            self.P = cp.Variable(n, name="P")
            cons += [cp.sum(self.P) == self.base.objective,
                     self.P + cp.sum(cp.multiply(market.u, y), axis=0) - market.reservation * self.qv >= 0]
            obj = cp.sum(self.P) + cu + market.reservation * (1.0 - cp.sum(self.qv))
        else:
            obj = welfare_expr
        self.problem = cp.Problem(cp.Maximize(obj), cons)

    def solve(self, lam):
        self.lam.value = np.asarray(lam, float)
        st = _solve(self.problem, "planner piece LP")
        if st not in ("optimal", "infeasible", "infeasible_inaccurate"):  # pragma: no cover
            raise SolverFailed(f"planner piece LP: status {st!r}")
        if st != "optimal":
            return None
        return (float(self.problem.value), np.clip(np.asarray(self.qv.value, float), 0, None),
                np.clip(np.asarray(self.base.y.value, float), 0, None),
                None if self.P is None else np.asarray(self.P.value, float))


@dataclass(frozen=True)
class EfficiencyResult:
    """Constrained efficiency (GLP slides, Definition "constrained efficient").

    ``welfare`` is ``W° = V(q°) + Σ q°(ω)(U(ω,x°) − r̄)``; ``q`` (n,), ``x`` and
    ``y`` (m, n); ``optimal_pieces`` lists every piece index whose LP attains
    ``W°`` (within tolerance) and ``allocations`` the (q, x) of each, for ties.
    ``bound`` is a proven upper bound (equal to ``welfare`` for the exact
    methods) and ``gap`` their relative gap.
    """

    status: Termination
    method: str
    welfare: float
    bound: float
    gap: float
    q: np.ndarray
    x: np.ndarray
    y: np.ndarray
    platform_value: float
    consumer_utility: np.ndarray
    pieces: np.ndarray
    optimal_pieces: tuple
    allocations: tuple
    seconds: float
    message: str = ""


def constrained_efficiency(market: InfoDesignMarket, *, method: str = "auto",
                           pieces: ValuePieces | None = None) -> EfficiencyResult:
    """Exact ``W°`` and a constrained-efficient allocation ``(q°, x°)``.

    ``method="pieces"`` (auto for ``|Ω| ≤`` :data:`PIECES_MAX_N`): one LP per
    piece of V (module docstring) — exact.  ``method="milp"``: the KKT
    reformulation in :func:`constrained_efficiency_milp`.
    """
    from ..errors import ProblemError

    if method == "auto":
        method = "pieces" if market.n <= PIECES_MAX_N else "milp"
    if method == "milp":
        return constrained_efficiency_milp(market)
    if method != "pieces":
        raise ProblemError(f"unknown method {method!r} for constrained efficiency; use 'pieces' or 'milp'")
    t0 = time.perf_counter()
    pieces = pieces or value_pieces(market)
    lp = PieceLP(market)
    sols = [lp.solve(lam) for lam in pieces.gradients]
    vals = np.array([s[0] if s is not None else -np.inf for s in sols])
    best = float(np.max(vals))
    tol = VALUE_TOL * _scale(market) * 10
    winners = tuple(int(k) for k in np.flatnonzero(vals >= best - tol))
    k = int(np.argmax(vals))
    _, q, y, _ = sols[k]
    x = mechanism_from_y(market, y, q)
    allocs = tuple((_frozen(sols[j][1]), _frozen(mechanism_from_y(market, sols[j][2], sols[j][1])))
                   for j in winners)
    return EfficiencyResult(
        status=Termination.OPTIMAL, method="pieces", welfare=best, bound=best, gap=0.0,
        q=_frozen(q), x=_frozen(x), y=_frozen(y), platform_value=float(np.sum(market.v * y)),
        consumer_utility=_frozen(market.consumer_utility(x)), pieces=pieces.gradients,
        optimal_pieces=winners, allocations=allocs, seconds=time.perf_counter() - t0,
        message=f"{len(pieces.gradients)} pieces of V, {pieces.lp_solves} P_q solves")


def constrained_efficiency_milp(market: InfoDesignMarket, **kw) -> EfficiencyResult:  # pragma: no cover
    raise LimitExceeded("the MILP formulation of constrained efficiency is not available yet; "
                        f"use method='pieces' (|Ω| ≤ {PIECES_MAX_N})")


__all__ = [
    "PlatformLP", "PlatformSolution", "solve_platform", "FaceLP", "WelfareSolution", "welfare",
    "ValuePieces", "value_pieces", "PieceLP", "EfficiencyResult", "constrained_efficiency",
    "record_matrix", "obedience_matrix", "mechanism_from_y", "VALUE_TOL", "PIECES_MAX_N",
]
