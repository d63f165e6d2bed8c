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

Duals: cvxpy's HiGHS interface (cvxpy 1.9, HiGHS 1.16) returns duals for both
equality and inequality constraints of these LPs (``constraint.dual_value``);
for a maximisation the dual of ``Σ_a y = q`` is ``∂V/∂q`` with the sign used
here, and the obedience duals are ``μ ≥ 0``.  This is checked by the tests
(supergradient inequality against an independent scipy oracle, and every
reported λ verified to lie in ``proj D``), so highspy is not called directly.

Tolerances: HiGHS' primal/dual feasibility tolerance is 1e-7; values are
compared with :data:`VALUE_TOL` relative to the instance's payoff scale.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from .highs import silence_banner
from ..errors import InstanceError, LimitExceeded, SolverFailed
from ..markets.info_design import InfoDesignMarket
from ..result import Termination, frozen_array

#: Relative tolerance (× payoff scale × mass) for comparing LP values.
VALUE_TOL = 1e-7
#: Relative slack on ``λ·q ≤ V(q)`` defining the optimal dual face numerically.
FACE_TOL = 1e-9
#: Reduced costs / obedience duals above this (× payoff scale) count as nonzero.
CS_TOL = 1e-9
#: Largest |Ω| for the exact piece enumeration (vertex enumeration in |Ω|−1 dimensions).
PIECES_MAX_N = 6

def _cp():
    import cvxpy as cp

    silence_banner()
    return cp


_STATUS = {"optimal": Termination.OPTIMAL, "infeasible": Termination.INFEASIBLE}


#: HiGHS options for every LP here: primal simplex was 5–10× faster than HiGHS' default
#: (dual simplex) on P_q at |Ω| = 40 in benchmarks/info_design.py, and gives basic duals.
LP_OPTIONS = {"simplex_strategy": 4}
#: Above this many ``y`` variables a cold P_q is solved by HiGHS' interior point method
#: (with crossover, so duals stay basic): at |Ω| = |A| = 200 it took 61 s against 178 s
#: for primal simplex on the same (loaded) machine; warm re-solves stay on simplex.
LARGE_LP = 2500
#: HiGHS simplex strategy for warm re-solves of a live model after a change of q (dual).
WARM_SIMPLEX_STRATEGY = 1
#: A live (warm-started) model uses the dense obedience rows up to this many nonzeros
#: ``m(m−1)n``: warm dual simplex was faster on them than on the suffix-sum form at
#: |Ω| = |A| = 10, 20, 40 (0.52/2.8/38 ms against 0.65/3.5/42 ms per random q).
DENSE_WARM_MAX_NNZ = 100_000
LARGE_LP_OPTIONS = {"highs_options": {"solver": "ipm"}}


#: HiGHS is given at least this many seconds when a deadline is nearly spent.
MIN_SOLVE_SECONDS = 1e-3


def _solve(prob, what: str, large: bool = False, time_limit: float | None = None):
    """Solve a cvxpy LP with HiGHS; returns cvxpy's status (``"user_limit"`` when
    ``time_limit`` seconds ran out first)."""
    cp = _cp()
    opts = dict(LARGE_LP_OPTIONS if large else LP_OPTIONS)
    if time_limit is not None:
        t = max(float(time_limit), MIN_SOLVE_SECONDS)
        if "highs_options" in opts:
            opts["highs_options"] = {**opts["highs_options"], "time_limit": t}
        else:
            opts["time_limit"] = t
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # cvxpy's "may be inaccurate" at a time limit
            prob.solve(solver=cp.HIGHS, **opts)
    except cp.error.SolverError as exc:  # pragma: no cover - backend failure
        raise SolverFailed(f"HiGHS failed on {what}: {exc}") from None
    return prob.status


def _stopped_status(status: str) -> bool:
    return status in ("user_limit", "optimal_inaccurate", "infeasible_inaccurate", "unbounded_inaccurate")


def relaxation_bound(market: InfoDesignMarket, q) -> float:
    """Proven upper bound on ``V(q)`` without obedience: ``Σ_ω q(ω) max_a v(a,ω)``."""
    return float(np.asarray(q, float) @ market.v.max(axis=0))


def no_information(market: InfoDesignMarket, q) -> np.ndarray:
    """An obedient ``y`` (m, n) at every ``q``: recommend to everybody the merchant's best
    action under the prior ``q`` (``argmax_a Σ_ω π(a,ω) q(ω)``, ties to the platform's
    best), which is obedient because it is the merchant's own optimum."""
    q = np.asarray(q, float)
    prof = market.pi @ q
    best = np.flatnonzero(prof >= prof.max() - 1e-12 * max(1.0, abs(prof.max())))
    a0 = int(best[np.argmax(market.v[best] @ q)])
    y = np.zeros((market.m, market.n))
    y[a0] = q
    return y


def planner_bound(market: InfoDesignMarket) -> float:
    """Proven upper bound on ``W°`` (drop obedience and the platform's optimality):
    ``Σ_ω q̄(ω) max(0, max_a (v + u)(a,ω) − r̄)``."""
    return float(market.prior @ np.maximum(0.0, (market.v + market.u).max(axis=0) - market.reservation))


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
    return frozen_array(a, dtype)


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
    bound, gap : float   proven upper bound on ``V(q)`` (= ``value`` when optimal) and
                         relative gap.  When ``status`` is ``time_limit`` or
                         ``interrupted``, ``y``/``x`` are the best obedient mechanism
                         known (at worst :func:`no_information`), ``bound`` is
                         :func:`relaxation_bound`, and the dual fields are NaN.
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
    bound: float | None = None
    gap: float = 0.0

    def __post_init__(self):
        if self.bound is None:
            object.__setattr__(self, "bound", self.value)

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
            # T[a, k] = Σ_{j ≥ k} y[a, j] (flat index a(n+1)+k), T[a, n] = 0; built from
            # sparse matrices (cvxpy fancy indexing is slow to canonicalise)
            N1 = n + 1
            T = cp.Variable(m * N1, name="T")
            idx = np.arange(m * N1).reshape(m, N1)
            r_ = idx[:, :n].ravel()
            Dt = sp.csr_matrix((np.r_[np.ones(m * N1), -np.ones(m * n)],
                                (np.r_[np.arange(m * N1), r_], np.r_[np.arange(m * N1), idx[:, 1:].ravel()])),
                               shape=(m * N1, m * N1))
            Dy = sp.csr_matrix((np.ones(m * n), (r_, np.arange(m * n))), shape=(m * N1, m * n))
            yflat = cp.reshape(self.y, (m * n,), order="C")
            defs = [Dt @ T - Dy @ yflat == 0]
            kfirst = np.searchsorted(market.types, market.fees, side="left")    # first type ≥ fee
            rows, cols = np.nonzero(~np.eye(m, dtype=bool))
            self._pairs = np.c_[rows, cols]
            fee = market.fees
            # Σ_ω (π(a,ω) − π(a',ω)) y(a,ω) = fee_a T[a, k(a)] − fee_{a'} T[a, k(a')]
            if m > 1:
                R = len(rows)
                Ob = sp.csr_matrix((np.r_[fee[rows], -fee[cols]],
                                    (np.r_[np.arange(R), np.arange(R)],
                                     np.r_[idx[rows, kfirst[rows]], idx[rows, kfirst[cols]]])),
                                   shape=(R, m * N1))
                self.obedience = Ob @ T >= 0
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

    def solve(self, q, *, intervals: bool = False, time_limit=None) -> PlatformSolution:
        """Solve ``P_q``; with ``intervals=True`` also the per-coordinate range of
        ``∂V(q)`` from 2n LPs over the optimal dual face.

        ``time_limit`` (seconds or a shared :class:`~dm_opt.limits.Deadline`): when
        HiGHS runs out of time, or on Ctrl-C, the best obedient mechanism known is
        returned with status ``time_limit``/``interrupted`` and the proven
        :func:`relaxation_bound` (see :class:`PlatformSolution`); interval LPs not
        finished in time are left NaN.
        """
        from ..limits import Deadline

        market = self.market
        q = market.database(q)
        dl = Deadline.of(time_limit)
        t0 = time.perf_counter()
        self.q.value = q
        try:
            status = _solve(self.problem, "P_q", large=market.m * market.n > LARGE_LP, time_limit=dl.remaining())
        except KeyboardInterrupt:
            return _partial_platform(market, q, Termination.INTERRUPTED, None, t0)
        if _stopped_status(status):
            return _partial_platform(market, q, Termination.TIME_LIMIT, self.y.value, t0)
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
            lower, upper, pts = self.dual_face_ranges(q, value, deadline=dl)
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
        n = market.n
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

    def dual_face_ranges(self, q, value, *, deadline=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``min``/``max`` of each ``λ(ω)`` over ``{(λ,μ) ∈ D : λ·q ≤ V(q) + tol}``.

        ``tol = FACE_TOL × scale × max(1, Σq)`` absorbs the error of ``V(q)``.
        Returns ``(lower, upper, points)``; ``upper[ω] = inf`` when the LP is
        unbounded (always when ``q(ω) = 0``); ``points`` are the distinct
        optimal λ's found (each an element of ∂V(q) up to ``tol``).  Coordinates not
        reached before ``deadline`` (a :class:`~dm_opt.limits.Deadline`) are NaN.
        """
        if self._face is None:
            self._build_face()
            self._face = True
        n = self.market.n
        tol = FACE_TOL * _scale(self.market) * max(1.0, float(np.sum(q)))
        self._fq.value = q
        self._fV.value = value + tol
        lower, upper, pts = np.full(n, np.nan), np.full(n, np.nan), []
        for w in range(n):
            if deadline is not None and deadline.expired():
                break
            for sign in (1.0, -1.0):
                c = np.zeros(n)
                c[w] = sign
                self._fc.value = c
                st = _solve(self._fprob, "dual face",
                            time_limit=None if deadline is None else deadline.remaining())
                if _stopped_status(st):
                    val = np.nan
                elif st in ("unbounded", "unbounded_inaccurate", "infeasible_or_unbounded"):
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


def _partial_platform(market: InfoDesignMarket, q: np.ndarray, status: Termination, y_candidate,
                      t0: float) -> PlatformSolution:
    """The best obedient mechanism known when ``P_q`` was stopped early, with its proven bound."""
    from ..result import relative_gap

    tol = VALUE_TOL * _scale(market) * max(1.0, float(q.sum()))
    y = no_information(market, q)
    if y_candidate is not None:
        yc = np.clip(np.asarray(y_candidate, float), 0.0, None)
        feasible = (np.all(np.abs(yc.sum(axis=0) - q) <= tol) and _obedient(market, yc, tol))
        if feasible and float(np.sum(market.v * yc)) > float(np.sum(market.v * y)):
            y = yc
    value = float(np.sum(market.v * y))
    bound = max(relaxation_bound(market, q), value)
    x = mechanism_from_y(market, y, q)
    nan_n, nan_m = np.full(market.n, np.nan), np.full((market.m, market.m), np.nan)
    return PlatformSolution(
        status=status, q=_frozen(q), value=value, y=_frozen(y), x=_frozen(x), supergradient=_frozen(nan_n),
        obedience_duals=_frozen(nan_m), consumer_utility=_frozen(market.consumer_utility(x)),
        seconds=time.perf_counter() - t0, bound=bound, gap=relative_gap(value, bound))


class PlatformHighs:
    """``P_q`` held in one live ``highspy.Highs`` model for long sweeps: a new ``q``
    only changes the bounds of the record-count rows, and HiGHS re-optimises from
    the previous optimal basis (warm start), which cvxpy's interface does not do
    (it builds a new ``Highs`` object per solve).  Formulation: the dense
    obedience rows up to :data:`DENSE_WARM_MAX_NNZ` nonzeros, the suffix-sum
    form of :class:`PlatformLP` above (slides' merchant only; ``compact``
    overrides); returns :class:`PlatformSolution` without intervals.
    The row duals of HiGHS for this maximisation are ``∂V/∂q`` directly
    (checked against :class:`PlatformLP` in the tests).
    """

    def __init__(self, market: InfoDesignMarket, *, compact: bool | None = None):
        import highspy

        silence_banner()
        self.market = market
        m, n = market.m, market.n
        E = record_matrix(market)
        if compact is None:
            compact = _threshold_form(market) and m * (m - 1) * n > DENSE_WARM_MAX_NNZ
        if compact and not _threshold_form(market):
            raise InstanceError("payoffs", "the compact obedience form needs the slides' merchant payoff")
        self.compact = compact
        if compact:
            N1 = n + 1
            idx = np.arange(m * N1).reshape(m, N1)
            r_ = idx[:, :n].ravel()
            Dt = sp.csr_matrix((np.r_[np.ones(m * N1), -np.ones(m * n)],
                                (np.r_[np.arange(m * N1), r_], np.r_[np.arange(m * N1), idx[:, 1:].ravel()])),
                               shape=(m * N1, m * N1))
            Dy = sp.csr_matrix((np.ones(m * n), (r_, np.arange(m * n))), shape=(m * N1, m * n))
            kfirst = np.searchsorted(market.types, market.fees, side="left")
            rows, cols = np.nonzero(~np.eye(m, dtype=bool))
            R = len(rows)
            fee = market.fees
            Ob = sp.csr_matrix((np.r_[fee[rows], -fee[cols]],
                                (np.r_[np.arange(R), np.arange(R)],
                                 np.r_[idx[rows, kfirst[rows]], idx[rows, kfirst[cols]]])), shape=(R, m * N1))
            A = sp.bmat([[E, None], [-Dy, Dt], [None, Ob]], format="csc")
            ncol_T = m * N1
            row_lo = np.r_[np.zeros(n), np.zeros(m * N1), np.zeros(R)]
            row_hi = np.r_[np.zeros(n), np.zeros(m * N1), np.full(R, highspy.kHighsInf)]
        else:
            G, pairs = obedience_matrix(market)
            rows, cols = pairs[:, 0], pairs[:, 1]
            R = G.shape[0]
            A = sp.vstack([E, G], format="csc")
            ncol_T = 0
            row_lo = np.r_[np.zeros(n), np.zeros(R)]
            row_hi = np.r_[np.zeros(n), np.full(R, highspy.kHighsInf)]
        self._obe_rows = np.arange(A.shape[0] - R, A.shape[0])
        self._pairs = np.c_[rows, cols] if R else np.zeros((0, 2), int)
        ncol = m * n + ncol_T
        lp_ = highspy.HighsLp()
        lp_.num_col_, lp_.num_row_ = ncol, A.shape[0]
        lp_.col_cost_ = np.r_[market.v.ravel(), np.zeros(ncol_T)]
        lp_.col_lower_ = np.r_[np.zeros(m * n), np.full(ncol_T, -highspy.kHighsInf)]
        lp_.col_upper_ = np.full(ncol, highspy.kHighsInf)
        lp_.row_lower_, lp_.row_upper_ = row_lo, row_hi
        lp_.sense_ = highspy.ObjSense.kMaximize
        lp_.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp_.a_matrix_.start_ = A.indptr
        lp_.a_matrix_.index_ = A.indices
        lp_.a_matrix_.value_ = A.data
        lp_.a_matrix_.num_col_, lp_.a_matrix_.num_row_ = ncol, A.shape[0]
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("simplex_strategy", LP_OPTIONS["simplex_strategy"])
        self.h.passModel(lp_)
        self._rec = np.arange(n, dtype=np.int32)
        self._solved = False
        self._highspy = highspy

    def solve(self, q) -> PlatformSolution:
        market = self.market
        q = market.database(q)
        t0 = time.perf_counter()
        self.h.changeRowsBounds(len(self._rec), self._rec, q, q)
        cold = not self._solved and market.m * market.n > LARGE_LP
        if cold:
            self.h.setOptionValue("solver", "ipm")
        self.h.run()
        if cold:
            self.h.setOptionValue("solver", "simplex")     # later solves warm-start from this basis
        if not self._solved:
            # a new q only moves row bounds, so the previous optimal basis stays dual feasible:
            # dual simplex is the warm-start method (1.2–1.3x fewer seconds and 2–3x fewer
            # iterations than primal at |Ω| = 20–100 on random q, benchmarks/info_design.py)
            self.h.setOptionValue("simplex_strategy", WARM_SIMPLEX_STRATEGY)
        self._solved = True
        if self.h.getModelStatus() != self._highspy.HighsModelStatus.kOptimal:
            raise SolverFailed(f"P_q (highspy): {self.h.modelStatusToString(self.h.getModelStatus())}")
        sol = self.h.getSolution()
        m, n = market.m, market.n
        col = np.asarray(sol.col_value)
        y = np.clip(col[: m * n].reshape(m, n), 0.0, None)
        rd = np.asarray(sol.row_dual)
        lam = rd[:n].copy()
        mu = np.zeros((m, m))
        if len(self._pairs):
            mu[self._pairs[:, 0], self._pairs[:, 1]] = np.clip(-rd[self._obe_rows], 0.0, None)
        value = float(self.h.getInfo().objective_function_value)
        x = mechanism_from_y(market, y, q)
        return PlatformSolution(
            status=Termination.OPTIMAL, q=_frozen(q), value=value, y=_frozen(y), x=_frozen(x),
            supergradient=_frozen(lam), obedience_duals=_frozen(mu),
            consumer_utility=_frozen(market.consumer_utility(x)), seconds=time.perf_counter() - t0)


#: Methods for ``P_q`` / ``W(q)``: the closed form needs the slides' merchant with ``Ω ⊆ A``.
PLATFORM_METHODS = ("auto", "bbm", "lp")


def _platform_method(market: InfoDesignMarket, method: str) -> str:
    from ..errors import ProblemError
    from . import info_design_bbm as bbm

    if method not in PLATFORM_METHODS:
        raise ProblemError(f"unknown method {method!r} for P_q; use one of {', '.join(PLATFORM_METHODS)}")
    if method == "auto":
        return "bbm" if bbm.applies(market) else "lp"
    return method


def solve_platform(market: InfoDesignMarket, q, *, intervals: bool = True, method: str = "auto",
                   time_limit=None) -> PlatformSolution:
    """One-off ``P_q``.

    ``method="bbm"`` (auto when it applies: slides' payoffs, positive types,
    ``Ω ⊆ A``) is the exact closed form of :mod:`.info_design_bbm`, O(n²);
    ``method="lp"`` builds the LP (use :class:`PlatformLP` or
    :class:`PlatformHighs` to re-solve it for many ``q``).  ``time_limit``: see
    :meth:`PlatformLP.solve` (the closed form needs no limit).
    """
    from ..limits import check_time_limit

    check_time_limit(time_limit)
    if _platform_method(market, method) == "bbm":
        from . import info_design_bbm as bbm

        return bbm.platform(market, q, intervals=intervals)
    return PlatformLP(market).solve(q, intervals=intervals, time_limit=time_limit)


def platform_sweep(market: InfoDesignMarket, databases, *, method: str = "auto",
                   intervals: bool = False) -> list[PlatformSolution]:
    """``P_q`` for every row of ``databases`` (shape (k, n)), re-using one model.

    ``method="bbm"`` (auto when it applies) evaluates the closed form per row;
    ``"lp"`` keeps one live :class:`PlatformHighs` model and warm-starts each
    solve from the previous optimal basis (order the rows along a path when you
    can: neighbouring databases share bases).  ``intervals`` (closed form only)
    adds the exact ranges of ``∂V(q)``.
    """
    from ..errors import ProblemError
    from ..validate import as_array

    Q = as_array("databases", databases, ndim=2)
    if Q.shape[1] != market.n:
        raise InstanceError("databases", f"expected shape (k, {market.n}) (one column per type), got {Q.shape}")
    if _platform_method(market, method) == "bbm":
        from . import info_design_bbm as bbm

        return [bbm.platform(market, q, intervals=intervals) for q in Q]
    if intervals:
        raise ProblemError("intervals=True needs the closed form; the LP sweep does not compute ∂V ranges "
                           "(use PlatformLP.solve(q, intervals=True))")
    H = PlatformHighs(market)
    return [H.solve(q) for q in Q]


# ---------------------------------------------------------------------------
# W(q): consumers' best on the platform's optimal face

def reduced_costs(market: InfoDesignMarket, sol: PlatformSolution) -> np.ndarray:
    """``λ(ω) − v(a,ω) − Σ_a' μ(a,a')(π(a,ω) − π(a',ω))`` (m, n) for the dual ``(λ, μ)`` of
    ``sol``: all ≥ 0 certifies ``λ ∈ proj_λ D`` (dual feasibility)."""
    mu = np.asarray(sol.obedience_duals)
    return (np.asarray(sol.supergradient)[None, :] - market.v
            - (mu.sum(axis=1)[:, None] * market.pi - mu @ market.pi))


class FaceLP:
    """``max Σ u·y`` over the optimal face of ``P_q``.

    The face is written exactly by complementary slackness with one optimal
    dual ``(λ, μ)`` of ``P_q`` (any optimal dual characterises the whole primal
    optimal set): ``y(a,ω) = 0`` where the reduced cost
    ``λ(ω) − v(a,ω) − Σ_a' μ(a,a')(π(a,ω) − π(a',ω))`` exceeds ``CS_TOL``, and
    obedience ``(a,a')`` tight where ``μ(a,a') > CS_TOL``.  (A relaxed face
    ``Σ v y ≥ V(q) − ε`` would let ``Σ u y`` grow by ``O(ε)`` times an
    arbitrarily steep trade-off slope.)  Both masks are cvxpy Parameters.
    """

    def __init__(self, market: InfoDesignMarket, base: PlatformLP | None = None):
        cp = _cp()
        self.market = market
        self.base = base or PlatformLP(market)
        m, n = market.m, market.n
        self.block = cp.Parameter((m, n), nonneg=True, name="block")
        cons = list(self.base.problem.constraints) + [cp.multiply(self.block, self.base.y) == 0]
        if self.base.obedience is not None:
            self.tight = cp.Parameter(len(self.base._pairs), nonneg=True, name="tight")
            cons.append(cp.multiply(self.tight, self.base.obedience.expr) == 0)
        else:
            self.tight = None
        self.problem = cp.Problem(cp.Maximize(cp.sum(cp.multiply(market.u, self.base.y))), cons)

    def reduced_costs(self, sol: "PlatformSolution") -> np.ndarray:
        return reduced_costs(self.market, sol)

    def solve(self, q, solution: "PlatformSolution | None" = None) -> tuple["PlatformSolution", np.ndarray]:
        """``(P_q solution, y)`` with ``y`` consumer-best on the optimal face; pass the
        ``solution`` of ``self.base`` at this ``q`` when it is already known (saves a solve)."""
        sol = self.base.solve(q) if solution is None else solution
        rc = self.reduced_costs(sol)
        tol = CS_TOL * _scale(self.market)
        if rc.min() < -1e3 * tol:  # pragma: no cover - would mean an inaccurate dual
            raise SolverFailed(f"P_q dual infeasible by {-rc.min():.3g}")
        self.block.value = (rc > tol).astype(float)
        if self.tight is not None:
            mu = np.asarray(sol.obedience_duals)[self.base._pairs[:, 0], self.base._pairs[:, 1]]
            self.tight.value = (mu > tol).astype(float)
        st = _solve(self.problem, "W(q)")
        if st != "optimal":  # pragma: no cover
            raise SolverFailed(f"W(q): status {st!r}")
        return sol, np.clip(np.asarray(self.base.y.value, float), 0.0, None)


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


def welfare(market: InfoDesignMarket, q, *, face: FaceLP | None = None, method: str = "auto",
            solution: PlatformSolution | None = None) -> WelfareSolution:
    """``W(q)``: solve ``P_q``, then maximise ``Σ u y`` over its optimal face (:class:`FaceLP`);
    ``method`` as in :func:`solve_platform` (a given ``face`` means the LP).  ``solution``:
    an optimal solution of ``face.base`` at ``q`` already computed (its duals define the face)."""
    if face is None and _platform_method(market, method) == "bbm":
        from . import info_design_bbm as bbm

        return bbm.welfare(market, q)
    face = face or FaceLP(market)
    q = market.database(q)
    sol, y = face.solve(q, solution)
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
    full-dimensional region); ``lp_solves`` counts P_q solves used.  A
    ``status`` other than optimal (time limit, Ctrl-C) means the list may be
    incomplete: every listed gradient is still an optimal LP dual somewhere
    (an element of ``proj_λ D``), so ``V ≤ min_k gradients[k]·q`` holds, but
    not necessarily with equality.
    """

    gradients: np.ndarray
    lp_solves: int
    seconds: float
    status: Termination = Termination.OPTIMAL

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
    from scipy.spatial import QhullError

    try:
        hs = HalfspaceIntersection(np.c_[A, -b], res.x[:-1])
    except QhullError:
        # degenerate arrangements (many halfspaces through one vertex): joggled input;
        # vertices move by ~1e-11, far below the 1e-6 test tolerance used on V
        hs = HalfspaceIntersection(np.c_[A, -b], res.x[:-1], qhull_options="QJ")
    Z = hs.intersections
    Q = np.c_[Z, 1 - Z.sum(axis=1)]
    return np.clip(Q, 0.0, None)


def value_pieces(market: InfoDesignMarket, *, platform: PlatformLP | None = None,
                 max_n: int = PIECES_MAX_N, max_rounds: int = 10_000, method: str = "auto",
                 time_limit=None) -> ValuePieces:
    """Every linear piece of ``V`` (exact up to LP tolerances), for ``|Ω| ≤ max_n``.

    ``method="bbm"`` (auto when it applies and no ``platform`` is given) returns
    the closed-form pieces (:func:`.info_design_bbm.value_pieces`) for any ``|Ω|``.
    Otherwise (``"lp"``), the algorithm of the module docstring: start from the
    duals at the simplex vertices and barycentre; repeatedly enumerate the
    vertices of each region of ``V_Λ = min_{λ∈Λ} λ·q`` on the simplex and add
    the LP dual wherever ``V < V_Λ``.  Terminates because LP duals are basic
    (finitely many).  ``time_limit`` (seconds or a shared Deadline) and Ctrl-C
    stop the search with the pieces found so far (``status`` says why).
    """
    if _platform_method(market, method if platform is None else "lp") == "bbm":
        from . import info_design_bbm as bbm

        return bbm.value_pieces(market)
    if market.n > max_n:
        raise LimitExceeded(f"piece enumeration is for |Ω| ≤ {max_n} (got {market.n}); "
                            f"use method='milp' for constrained efficiency")
    from ..limits import Deadline, Stopped

    dl = Deadline.of(time_limit)
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
            dl.check()
            s = plat.solve(q, time_limit=dl)
            if s.status is not Termination.OPTIMAL:
                raise Stopped(s.status, "P_q stopped")
            cache[key] = s
            solves += 1
        return cache[key]

    L: list[np.ndarray] = []

    def add(lam) -> bool:
        for l in L:
            if np.max(np.abs(l - lam)) <= tol:
                return False
        L.append(np.asarray(lam, float))
        return True

    status = Termination.OPTIMAL
    try:
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
    except Stopped as stop:
        status = stop.status
    except KeyboardInterrupt:
        status = Termination.INTERRUPTED
    if not L:
        return ValuePieces(_frozen(np.zeros((0, n))), solves, time.perf_counter() - t0, status)
    Lm = np.array(L)
    if status is not Termination.OPTIMAL:     # no time for the pruning below: keep every dual found
        order = np.lexsort(Lm.T[::-1])
        return ValuePieces(_frozen(Lm[order]), solves, time.perf_counter() - t0, status)
    keep = [k for k in range(len(Lm)) if _region_vertices(Lm, k, 1e-9) is not None]
    G = Lm[keep]
    order = np.lexsort(G.T[::-1])
    return ValuePieces(_frozen(G[order]), solves, time.perf_counter() - t0, status)


# ---------------------------------------------------------------------------
# constrained efficiency

class PieceLP:
    """The planner LP on one piece ``k`` (module docstring), compiled once with
    ``λ^k`` (and optionally extra linear terms) as Parameters."""

    def __init__(self, market: InfoDesignMarket, *, union: bool = False):
        cp = _cp()
        self.market = market
        n = market.n
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

    def solve(self, lam, time_limit: float | None = None):
        """``(value, q, y, P)`` of the piece LP, ``None`` if infeasible; raises
        :class:`~dm_opt.limits.Stopped` when ``time_limit`` seconds run out."""
        from ..limits import Stopped

        self.lam.value = np.asarray(lam, float)
        st = _solve(self.problem, "planner piece LP", time_limit=time_limit)
        if _stopped_status(st):
            raise Stopped(Termination.TIME_LIMIT, "planner piece LP stopped by the time limit")
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
    piece_values: np.ndarray | None = None   # (K,) optimum of each planner piece LP


def constrained_efficiency(market: InfoDesignMarket, *, method: str = "auto",
                           pieces: ValuePieces | None = None, time_limit=None) -> EfficiencyResult:
    """Exact ``W°`` and a constrained-efficient allocation ``(q°, x°)``.

    ``method="bbm"`` (auto whenever it applies: slides' payoffs, positive
    types, ``Ω ⊆ A``; any ``|Ω|``): the closed form of
    :func:`.info_design_bbm.constrained_efficiency` — exact, one small LP.
    ``method="pieces"`` (auto otherwise for ``|Ω| ≤`` :data:`PIECES_MAX_N`, or
    when ``pieces`` is given): one LP per piece of V (module docstring) —
    exact.  ``method="milp"``: the KKT reformulation in
    :func:`constrained_efficiency_milp`.  ``time_limit`` (seconds or a shared
    :class:`~dm_opt.limits.Deadline`) and Ctrl-C: the MILP and the piece method
    return the best allocation found (no trade if none) with a proven bound and
    gap and status ``time_limit``/``interrupted``; the closed form needs no limit.
    """
    from ..errors import ProblemError
    from . import info_design_bbm as bbm

    if method == "auto":
        if pieces is None and bbm.applies(market):
            method = "bbm"
        else:
            method = "pieces" if market.n <= PIECES_MAX_N or pieces is not None else "milp"
    from ..limits import Deadline, Stopped
    from ..result import relative_gap

    dl = Deadline.of(time_limit)
    if method == "bbm":
        return bbm.constrained_efficiency(market)
    if method == "milp":
        left = dl.remaining()
        return constrained_efficiency_milp(market, time_limit=None if left is None else max(left, MIN_SOLVE_SECONDS))
    if method != "pieces":
        raise ProblemError(f"unknown method {method!r} for constrained efficiency; use 'bbm', 'pieces' or 'milp'")
    t0 = time.perf_counter()
    pieces = pieces or value_pieces(market, time_limit=dl)
    status = pieces.status
    sols: list = []
    if status is Termination.OPTIMAL:
        try:
            lp = PieceLP(market)
            for lam in pieces.gradients:
                dl.check()
                sols.append(lp.solve(lam, time_limit=dl.remaining()))
        except Stopped as stop:
            status = stop.status
        except KeyboardInterrupt:
            status = Termination.INTERRUPTED
    K = len(pieces.gradients)
    vals = np.array([s[0] if s is not None else -np.inf for s in sols] + [np.nan] * (K - len(sols)))
    solved = np.isfinite(vals)
    tol = VALUE_TOL * _scale(market) * 10
    if solved.any():
        best = float(np.nanmax(np.where(solved, vals, -np.inf)))
        winners = tuple(int(k) for k in np.flatnonzero(solved & (vals >= best - tol)))
        _, q, y, _ = sols[winners[0]]
    else:                              # stopped before any piece: no trade is bilevel-feasible
        best, winners = 0.0, ()
        q, y = np.zeros(market.n), np.zeros((market.m, market.n))
    x = mechanism_from_y(market, y, q)
    allocs = tuple((_frozen(sols[j][1]), _frozen(mechanism_from_y(market, sols[j][2], sols[j][1])))
                   for j in winners)
    optimal = status is Termination.OPTIMAL
    bound = best if optimal else max(best, planner_bound(market))
    msg = f"{K} pieces of V, {pieces.lp_solves} P_q solves"
    if not optimal:
        msg += (f"; stopped ({status}) after {len(sols)} of {K} piece LPs"
                + ("" if pieces.status is Termination.OPTIMAL else " (piece list incomplete)")
                + "; bound from dropping obedience (planner_bound)")
    return EfficiencyResult(
        status=status, method="pieces", welfare=best, bound=bound, gap=relative_gap(best, bound),
        q=_frozen(q), x=_frozen(x), y=_frozen(y), platform_value=float(np.sum(market.v * y)),
        consumer_utility=_frozen(market.consumer_utility(x)), pieces=pieces.gradients,
        optimal_pieces=winners, allocations=allocs, seconds=time.perf_counter() - t0,
        message=msg, piece_values=_frozen(vals))


#: Default bound on the KKT multipliers in the MILP, × payoff scale.
MILP_DUAL_BOUND = 100.0
#: Relative MIP gap at which HiGHS may stop and call the MILP optimal.
MILP_REL_GAP = 1e-9


def constrained_efficiency_milp(market: InfoDesignMarket, *, dual_bound: float | None = None,
                                time_limit: float | None = None) -> EfficiencyResult:
    """Constrained efficiency through the KKT conditions of ``P_q`` with binaries.

    Variables ``q, y`` (primal), ``λ, μ`` (dual of ``P_q``) and binaries
    ``z(a,ω)`` (``y(a,ω)`` may be positive) and ``w(a,a')`` (``μ(a,a')`` may be
    positive); complementary slackness by big-M::

        y(a,ω) ≤ q̄(ω) z(a,ω),           rc(a,ω) ≤ M_rc(a,ω) (1 − z(a,ω)),
        (G y)_(a,a') ≤ M_o (1 − w),      μ(a,a') ≤ B w(a,a'),
        rc = λ(ω) − v(a,ω) − Σ_a' μ(a,a')(π(a,ω) − π(a',ω)) ≥ 0,   |λ| ≤ B.

    The primal big-Ms are exact (``y ≤ q ≤ q̄``); the dual bound ``B``
    (default :data:`MILP_DUAL_BOUND` × payoff scale) is an *assumption*: the
    answer is exact whenever some optimal dual of ``P_{q°}`` at the true
    optimum has entries within ``B`` (no a-priori bound on LP dual vertices is
    used).  The returned allocation is always re-evaluated exactly — ``P_{q°}``
    and ``W(q°)`` are re-solved as LPs — so ``welfare`` is attained; ``bound``
    is HiGHS' MILP bound for the bounded-dual formulation.  The tests compare
    this method with the exact piece method.
    """
    cp = _cp()
    t0 = time.perf_counter()
    m, n = market.m, market.n
    scale = _scale(market)
    B = (MILP_DUAL_BOUND if dual_bound is None else float(dual_bound)) * scale
    G, pairs = obedience_matrix(market)
    R = G.shape[0]
    q = cp.Variable(n, nonneg=True)
    y = cp.Variable(m * n, nonneg=True)
    lam = cp.Variable(n)
    z = cp.Variable(m * n, boolean=True)
    E = record_matrix(market)
    qbar_flat = np.tile(market.prior, m)
    cons = [E @ y == q, q <= market.prior, lam <= B, lam >= -B, y <= cp.multiply(qbar_flat, z)]
    absG = abs(G)
    if R:
        mu = cp.Variable(R, nonneg=True)
        w = cp.Variable(R, boolean=True)
        rc = E.T @ lam - market.v.ravel() - G.T @ mu
        M_rc = B + np.abs(market.v.ravel()) + B * np.asarray(absG.sum(axis=0)).ravel()
        M_o = np.asarray(absG @ qbar_flat).ravel()
        cons += [G @ y >= 0, G @ y <= cp.multiply(M_o, 1 - w), mu <= B * w]
    else:
        rc = E.T @ lam - market.v.ravel()
        M_rc = B + np.abs(market.v.ravel())
    cons += [rc >= 0, rc <= cp.multiply(M_rc, 1 - z)]
    obj = (market.v + market.u).ravel() @ y - market.reservation * cp.sum(q)
    prob = cp.Problem(cp.Maximize(obj), cons)
    # HiGHS' default MIP gaps (1e-4 relative, 1e-6 absolute) would stop short of an exact optimum
    opts = {"mip_rel_gap": MILP_REL_GAP, "mip_abs_gap": 0.0}
    if time_limit:
        opts["time_limit"] = float(time_limit)
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # cvxpy's "may be inaccurate" at a time limit
            prob.solve(solver=cp.HIGHS, **opts)
    except cp.error.SolverError as exc:  # pragma: no cover
        raise SolverFailed(f"HiGHS failed on the efficiency MILP: {exc}") from None
    build_solve = time.perf_counter() - t0
    if q.value is None and prob.status not in ("user_limit", "optimal_inaccurate"):
        raise SolverFailed(f"efficiency MILP: no solution (status {prob.status!r})")
    # at a time limit without incumbent, q = 0 (no trade, welfare 0) is always bilevel-feasible
    qv = np.zeros(n) if q.value is None else np.clip(np.asarray(q.value, float), 0.0, market.prior)
    qv[qv < 1e-12] = 0.0
    # exact re-evaluation of the allocation: best x on the optimal face of P_q°
    ws = welfare(market, qv)
    value = ws.value - market.reservation * float(qv.sum())
    from ..result import relative_gap

    info = getattr(prob.solver_stats, "extra_stats", None)
    # cvxpy hands HiGHS min(−objective): its MIP dual bound is the negated upper bound
    mip_bound = -float(info.mip_dual_bound) if info is not None and hasattr(info, "mip_dual_bound") else np.inf
    status = Termination.OPTIMAL if prob.status == "optimal" else Termination.TIME_LIMIT
    bound = max(mip_bound if np.isfinite(mip_bound) else np.inf, value)
    gap = relative_gap(value, bound)
    return EfficiencyResult(
        status=status, method="milp", welfare=value, bound=bound, gap=gap,
        q=_frozen(qv), x=ws.x, y=ws.y, platform_value=ws.platform_value,
        consumer_utility=ws.consumer_utility, pieces=_frozen(np.zeros((0, n))), optimal_pieces=(),
        allocations=((_frozen(qv), ws.x),), seconds=time.perf_counter() - t0,
        message=f"KKT MILP with dual bound B = {B:g} ({m * n + R} binaries, {build_solve:.2f}s)")


# ---------------------------------------------------------------------------
# competitive equilibria

#: Largest |Ω| for :func:`equilibria` (3^|Ω| supply patterns × faces of V).
EQUILIBRIA_MAX_N = 4
#: A bilinear family whose largest interior slack (SCIP, feasibility tolerance 1e-6)
#: is below this is treated as empty.
SCIP_SLACK_TOL = 1e-5

ZERO, MID, FULL = 0, 1, 2
_PATTERN_NAMES = {ZERO: "none", MID: "some", FULL: "all"}


@dataclass(frozen=True)
class EquilibriumPiece:
    """One family of competitive equilibria ``(p*, ζ*, q*, x*)`` (GLP Definition).

    ``pattern`` (n,) says which consumers sell: 0 none (``q = 0``), 1 some
    (``0 < q < q̄``, so ``p + U = r̄``), 2 all (``q = q̄``).  ``active`` are the
    indices (into ``pieces``) of the gradients of V spanning the price:
    ``p* ∈ conv{λ^k : k ∈ active}``, every one of them optimal at ``q*``.
    ``q``, ``zeta``, ``price`` (n,), ``x`` (m, n) are one equilibrium of the
    family (relative-interior witness).  ``welfare_min``/``welfare_max`` are
    the infimum/supremum of ``Σ(v+u)y − r̄Σq`` over the family; ``efficient``
    says whether the witness attains ``W°``; ``all_efficient`` whether every
    member does (``welfare_min ≥ W° − tol``).  ``kkt`` is the slides'
    supergradient characterisation at the witness (Proposition "constrained
    efficient iff x solves P_q and ∃ψ ∈ Ψ_q ..."), with ``Ψ_q`` the
    supergradients of the concave piece ``W_k`` of ``W`` for a gradient ``λ^k``
    optimal at ``q``: ``W_k(q') = max{Σ(v+u)y : y feasible at q', Σvy ≥ λ^k·q'}``
    is concave and equals ``W`` wherever ``λ^k ∈ ∂V``, and KKT for
    ``max W_k(q) − r̄Σq`` over ``0 ≤ q ≤ q̄`` (the sign conditions on ψ) holds iff
    ``q`` solves the planner's piece LP ``k``.  ``W = max_k W_k`` need not be
    concave, so ``kkt`` is necessary for ``efficient``; the two are reported
    separately.  ``kind`` records which exact
    linear reformulation described the family (``"fixed-price"``,
    ``"fixed-database"``, ``"ray"``).
    """

    pattern: tuple
    active: tuple
    kind: str
    q: np.ndarray
    zeta: np.ndarray
    x: np.ndarray
    price: np.ndarray
    welfare: float
    welfare_min: float
    welfare_max: float
    efficient: bool
    all_efficient: bool
    kkt: bool = False

    @property
    def no_trade(self) -> bool:
        return all(s == ZERO for s in self.pattern)


@dataclass(frozen=True)
class EquilibriaResult:
    """All competitive equilibria of a small economy, as families.

    ``complete`` is False when some (face, pattern) combination needed a
    bilinear (price weight × database) description that is not solved exactly
    here; those combinations are listed in ``undecided`` as
    ``(pattern, active)``.  ``efficient_welfare`` is ``W°``.  ``status`` is
    ``time_limit``/``interrupted`` when the enumeration was stopped: the
    families listed are genuine equilibria but the list is incomplete
    (``complete`` is False and ``message`` says how far it got).
    """

    pieces: tuple
    efficient_welfare: float
    complete: bool
    undecided: tuple
    gradients: np.ndarray
    seconds: float
    status: Termination = Termination.OPTIMAL
    message: str = ""

    @property
    def all_efficient(self) -> bool:
        return all(p.all_efficient for p in self.pieces)

    @property
    def all_no_trade(self) -> bool:
        return all(p.no_trade for p in self.pieces)


def _faces(L: np.ndarray, tol: float) -> list[tuple]:
    """Subsets ``S`` of gradients all optimal at a common ``q`` in the simplex."""
    from scipy.optimize import linprog

    K, n = L.shape
    out = []

    def feasible(S):
        k0 = S[0]
        A_eq = [np.ones(n)] + [L[k] - L[k0] for k in S[1:]]
        b_eq = [1.0] + [0.0] * (len(S) - 1)
        A_ub = np.array([L[k0] - L[l] for l in range(K) if l not in S]) if K > len(S) else None
        b_ub = np.zeros(K - len(S)) if K > len(S) else None
        r = linprog(np.zeros(n), A_ub=A_ub, b_ub=b_ub, A_eq=np.array(A_eq), b_eq=b_eq,
                    bounds=[(0, None)] * n, method="highs")
        return r.status == 0

    level = [(k,) for k in range(K)]
    while level:
        ok = [S for S in level if feasible(list(S))]
        out.extend(ok)
        nxt = set()
        for S in ok:
            for k in range(S[-1] + 1, K):
                nxt.add(S + (k,))
        level = sorted(nxt)
    return out


def equilibria(market: InfoDesignMarket, *, pieces: ValuePieces | None = None,
               efficiency: EfficiencyResult | None = None,
               max_n: int = EQUILIBRIA_MAX_N, bilinear: str = "auto", time_limit=None) -> EquilibriaResult:
    """Every competitive equilibrium of a small economy (GLP Definition (a)–(d)).

    An equilibrium is ``q* = ζ* q̄``, ``x*`` optimal in ``P_{q*}``,
    ``p* ∈ ∂V(q*)`` (zero profit and optimality of ``q*`` for the platform,
    module docstring) and consumers' optimality: ``p*(ω) + U(ω,x*) ≥ r̄`` if
    ``q*(ω) > 0`` and ``≤ r̄`` if ``q*(ω) < q̄(ω)``.

    ``∂V(q) = conv{λ^k optimal at q} + cone{e_ω : q(ω) = 0}``.  We enumerate
    the faces ``S`` (sets of gradients jointly optimal somewhere) and the
    supply patterns (none/some/all per type), and describe each combination
    exactly by one LP when it is linear: the price is fixed on every selling
    type (``|S| = 1`` or the gradients agree there), or the database is
    pinned down by the pattern, or the database moves on a ray (homogeneity of
    degree one lets us divide by its length).  Other combinations (only
    possible for ``|Ω| ≥ 3``) have bilinear terms ``θ_k q(ω)`` (price weights ×
    database); with ``bilinear="scip"`` (``"auto"``: when pyscipopt is
    installed) they are decided by SCIP's spatial branch-and-bound (global
    optimum of the interior slack, so emptiness is decided up to SCIP's
    feasibility tolerance 1e-6; their welfare range is over the closure of the
    family); otherwise they are reported as ``undecided``.

    Convention for non-selling types (``q*(ω) = 0``): ``P_{q*}`` leaves
    ``x*(·|ω)`` free, so the consumer condition uses the most favourable
    choice for not selling, ``U = min_a u(a,ω)`` (the slides use ``U*(2) = 0``
    in the no-trade equilibrium of the two-type example), and the smallest
    price in ``∂V`` for that coordinate (raising ``p(ω)`` along ``e_ω`` only
    attracts sellers).

    ``time_limit`` (seconds or a shared :class:`~dm_opt.limits.Deadline`) and
    Ctrl-C stop the enumeration between (pattern, face) combinations; the
    families found so far are returned with ``complete=False`` and the status.
    """
    from ..limits import Deadline, Stopped

    cp = _cp()
    if market.n > max_n:
        raise LimitExceeded(f"equilibrium enumeration is for |Ω| ≤ {max_n} (got {market.n})")
    dl = Deadline.of(time_limit)
    t0 = time.perf_counter()
    pieces = pieces or value_pieces(market, time_limit=dl)
    eff = efficiency or (constrained_efficiency(market, pieces=pieces, time_limit=dl)
                         if pieces.status is Termination.OPTIMAL else None)
    if eff is None or eff.status is not Termination.OPTIMAL:
        st = pieces.status if eff is None else eff.status
        return EquilibriaResult((), np.nan if eff is None else eff.welfare, False, (),
                                np.asarray(pieces.gradients), time.perf_counter() - t0, st,
                                "stopped before W° was known (pieces of V / constrained efficiency)")
    L = np.asarray(pieces.gradients)
    K = L.shape[0]
    n = market.n
    qbar = market.prior
    scale = _scale(market)
    tol = 1e-7 * scale
    umin = market.u.min(axis=0)
    G, _ = obedience_matrix(market)
    faces = _faces(L, 1e-9)
    if bilinear == "auto":
        try:
            import pyscipopt  # noqa: F401
            use_scip = True
        except ImportError:
            use_scip = False
    else:
        use_scip = bilinear in ("scip", "scip-all")
    # the origin: every gradient is optimal at q = 0
    faces_all = tuple(range(K))
    found, undecided = [], []
    choices = [(ZERO,) if qbar[w] <= 0 else (ZERO, MID, FULL) for w in range(n)]
    status, done, total = Termination.OPTIMAL, [0], int(np.prod([len(c) for c in choices]))
    try:
        _equilibria_loop(market, choices, faces, faces_all, L, qbar, G, umin, tol, eff, bilinear, use_scip,
                         cp, found, undecided, dl, done)
    except Stopped as stop:
        status = stop.status
    except KeyboardInterrupt:
        status = Termination.INTERRUPTED
    # the same equilibria can be found from a face and its sub-faces; keep distinct families
    uniq = []
    for p in found:
        if not any(p.pattern == o.pattern and np.allclose(p.q, o.q, atol=1e-7) and np.allclose(p.price, o.price, atol=1e-7)
                   and abs(p.welfare_min - o.welfare_min) <= tol and abs(p.welfare_max - o.welfare_max) <= tol
                   for o in uniq):
            uniq.append(p)
    stopped = status is not Termination.OPTIMAL
    msg = f"stopped ({status}) after {done[0]} of {total} supply patterns" if stopped else ""
    return EquilibriaResult(tuple(uniq), eff.welfare, not undecided and not stopped, tuple(undecided), L,
                            time.perf_counter() - t0, status, msg)


def _equilibria_loop(market, choices, faces, faces_all, L, qbar, G, umin, tol, eff, bilinear, use_scip,
                     cp, found, undecided, dl, done) -> None:
    """The (supply pattern × face) enumeration of :func:`equilibria`; appends to
    ``found``/``undecided`` (and counts patterns in ``done[0]``) so a stop keeps
    everything decided so far."""
    n = market.n
    for pattern in itertools.product(*choices):
        dl.check()
        done[0] += 1
        pat = np.array(pattern)
        Z, F = pat == ZERO, pat == FULL
        pos = ~Z
        face_list = [faces_all] if not pos.any() else faces
        for S in face_list:
            LS = L[list(S)]
            # linear-algebra view of the database set: q_Z = 0, q_F = q̄_F, (λ^k − λ^k0)·q = 0
            rows = [np.eye(n)[w] for w in np.flatnonzero(Z | F)] + [LS[i] - LS[0] for i in range(1, len(S))]
            rhs = [0.0 if Z[w] else qbar[w] for w in np.flatnonzero(Z | F)] + [0.0] * (len(S) - 1)
            price_fixed = bool(np.all(np.ptp(LS[:, pos], axis=0) <= tol)) if pos.any() else True
            Amat = np.array(rows) if rows else np.zeros((0, n))
            rank = np.linalg.matrix_rank(Amat, tol=1e-9) if len(rows) else 0
            dim = n - rank
            if price_fixed:
                kind = "fixed-price"
            elif bilinear == "scip-all":     # testing: decide every non-fixed-price family by SCIP
                kind = "bilinear"
                found_p = _equilibrium_scip(market, G, LS, S, pat, Amat, np.array(rhs), umin, eff.welfare,
                                            L, eff.piece_values)
                if found_p is not False:
                    found.append(found_p)
                continue
            elif dim == 0:
                kind = "fixed-database"
            elif dim == 1 and not F.any():
                kind = "ray"
            else:
                piece = _equilibrium_scip(market, G, LS, S, pat, Amat, np.array(rhs), umin, eff.welfare,
                                          L, eff.piece_values) if use_scip else None
                if piece is None and not use_scip:
                    undecided.append((pattern, S))
                elif piece is not False:
                    found.append(piece)
                continue
            piece = _equilibrium_lp(cp, market, G, LS, S, pat, kind, Amat, np.array(rhs), umin, tol, eff.welfare,
                                    L, eff.piece_values)
            if piece is not None:
                found.append(piece)


def _equilibrium_lp(cp, market, G, LS, S, pat, kind, Amat, rhs, umin, tol, W0, L=None, piece_values=None,
                    price=None):
    """One (face, pattern) family as an LP; None if it is empty.

    ``fixed-price``: variables (q, y), price ``λ^S(ω)`` constant on sellers.
    ``fixed-database``: q is the unique solution of ``Amat q = rhs``; variables (θ, y).
    ``ray``: q = t·d (no type sells out), variables (θ, ŷ) with ``Σ_a ŷ = d``;
    every condition is homogeneous of degree one in t, so t ∈ (0, t_max) is free.
    """
    n, m = market.n, market.m
    qbar, rbar = market.prior, market.reservation
    Z, M_, F = pat == ZERO, pat == MID, pat == FULL
    theta = cp.Variable(len(S), nonneg=True)
    y = cp.Variable((m, n), nonneg=True)
    slack = cp.Variable()
    p = LS.T @ theta if price is None else price            # a price on the face
    cons = [cp.sum(theta) == 1, slack <= 1.0]
    if G.shape[0]:
        cons.append(G @ cp.reshape(y, (m * n,), order="C") >= 0)
    Uy = cp.sum(cp.multiply(market.u, y), axis=0)             # Σ_a u(a,ω) y(a,ω)
    for w in np.flatnonzero(Z):                               # non-sellers (convention in docstring)
        cons.append(p[w] + umin[w] <= rbar)
    tmax = 1.0
    if kind == "fixed-price":
        q = cp.Variable(n, nonneg=True)
        cons += [q <= qbar]
        if len(Amat):
            cons.append(Amat @ q == rhs)
        for w in np.flatnonzero(M_):
            cons += [slack <= q[w], slack <= qbar[w] - q[w]]
        qconst = None
    else:
        if kind == "fixed-database":
            qconst = np.linalg.lstsq(Amat, rhs, rcond=None)[0]
            if np.max(np.abs(Amat @ qconst - rhs)) > 1e-9 * max(1.0, np.max(np.abs(rhs))):
                return None
            qconst[np.abs(qconst) < 1e-13] = 0.0
            if np.any(qconst < -1e-12) or np.any(qconst > qbar + 1e-12):
                return None
            if np.any(qconst[M_] <= 1e-12) or np.any(qconst[M_] >= qbar[M_] - 1e-12):
                return None
        else:
            qconst = _null_direction(Amat)
            if qconst is None or np.any(qconst[M_] <= 1e-12) or np.any(qconst[F] > 0):
                return None
            tmax = float(np.min(qbar[M_] / qconst[M_])) if M_.any() else 1.0
        q = qconst
    cons.append(cp.sum(y, axis=0) == q)
    for k in range(len(S)):                                   # every λ^k (k ∈ S) optimal at q
        cons.append(cp.sum(cp.multiply(market.v, y)) >= LS[k] @ q)
    for w in np.flatnonzero(~Z):
        if kind == "fixed-price":
            pw = float(LS[0, w]) if price is None else float(price[w])
            lhs = pw * q[w] + Uy[w] - rbar * q[w]
        else:
            lhs = p[w] * float(q[w]) + Uy[w] - rbar * float(q[w])
        cons.append(lhs == 0 if pat[w] == MID else lhs >= 0)
    prob = cp.Problem(cp.Maximize(slack), cons)
    st = _solve(prob, "equilibrium LP")
    if st != "optimal" or prob.value <= 1e-9:
        return None
    smax = float(prob.value)
    wexpr = cp.sum(cp.multiply(market.v + market.u, y)) - rbar * cp.sum(q)
    rng = {}
    for sense in ("min", "max"):
        pr = cp.Problem(cp.Minimize(wexpr) if sense == "min" else cp.Maximize(wexpr), cons)
        st = _solve(pr, "equilibrium welfare range")
        rng[sense] = float(pr.value) if st == "optimal" else np.nan
    prw = cp.Problem(cp.Maximize(wexpr), cons + [slack >= 0.5 * smax])
    _solve(prw, "equilibrium witness")
    yv = np.clip(np.asarray(y.value, float), 0, None)
    pv = np.asarray(LS.T @ np.asarray(theta.value, float), float) if price is None else np.asarray(price, float)
    if kind == "ray":
        t = 0.5 * tmax
        qv, yv = t * qconst, t * yv
        wmin, wmax = min(0.0, tmax * rng["min"]), max(0.0, tmax * rng["max"])
    else:
        qv = np.clip(np.asarray(q.value, float), 0, None) if qconst is None else qconst
        wmin, wmax = rng["min"], rng["max"]
    witness_w = float(np.sum((market.v + market.u) * yv) - rbar * qv.sum())
    x = mechanism_from_y(market, yv, qv)
    zeta = np.where(qbar > 0, qv / np.where(qbar > 0, qbar, 1.0), 0.0)
    efftol = 1e-6 * max(1.0, abs(W0)) * _scale(market)
    kkt = False
    if L is not None and piece_values is not None:
        Vq = float(np.sum(market.v * yv))
        opt_k = np.flatnonzero(L @ qv <= Vq + efftol)          # gradients optimal at the witness
        kkt = bool(np.any(np.asarray(piece_values)[opt_k] <= witness_w + efftol))
    return EquilibriumPiece(
        pattern=tuple(int(s) for s in pat), active=tuple(int(k) for k in S), kind=kind, q=_frozen(qv),
        zeta=_frozen(zeta), x=_frozen(x), price=_frozen(pv), welfare=witness_w,
        welfare_min=float(wmin), welfare_max=float(wmax),
        efficient=bool(witness_w >= W0 - efftol), all_efficient=bool(wmin >= W0 - efftol), kkt=kkt)


def _equilibrium_scip(market, G, LS, S, pat, Amat, rhs, umin, W0, L, piece_values):
    """A bilinear (face, pattern) family decided by SCIP (nonconvex QCP, global).

    Same constraints as :func:`_equilibrium_lp` with the price ``p = Σ_k θ_k λ^k``
    multiplying the database on sellers.  Returns an :class:`EquilibriumPiece`
    (kind ``"bilinear"``), or ``False`` when the family is empty."""
    import pyscipopt as ps

    n, m = market.n, market.m
    qbar, rbar = market.prior, market.reservation
    Z, M_, F = pat == ZERO, pat == MID, pat == FULL
    Gd = G.toarray() if G.shape[0] else np.zeros((0, m * n))

    def build(objective: str, smin: float | None):
        mdl = ps.Model()
        mdl.hideOutput()
        mdl.setParam("limits/time", 60.0)
        th = [mdl.addVar(lb=0, ub=1) for _ in S]
        q = [mdl.addVar(lb=0, ub=float(qbar[w])) for w in range(n)]
        y = [[mdl.addVar(lb=0, ub=float(qbar[w])) for w in range(n)] for _ in range(m)]
        sl = mdl.addVar(lb=-1, ub=1)
        mdl.addCons(ps.quicksum(th) == 1)
        for w in range(n):
            mdl.addCons(ps.quicksum(y[a][w] for a in range(m)) == q[w])
        for r in range(Gd.shape[0]):
            nz = np.flatnonzero(Gd[r])
            mdl.addCons(ps.quicksum(float(Gd[r, j]) * y[j // n][j % n] for j in nz) >= 0)
        for r in range(len(Amat)):
            mdl.addCons(ps.quicksum(float(Amat[r, w]) * q[w] for w in range(n) if Amat[r, w] != 0) == float(rhs[r]))
        vy = ps.quicksum(float(market.v[a, w]) * y[a][w] for a in range(m) for w in range(n))
        for k in range(len(S)):
            mdl.addCons(vy >= ps.quicksum(float(LS[k, w]) * q[w] for w in range(n)))
        for w in np.flatnonzero(Z):
            mdl.addCons(ps.quicksum(float(LS[k, w]) * th[k] for k in range(len(S))) + float(umin[w]) <= rbar)
        for w in np.flatnonzero(~Z):
            lhs = (ps.quicksum(float(LS[k, w]) * th[k] * q[w] for k in range(len(S)))
                   + ps.quicksum(float(market.u[a, w]) * y[a][w] for a in range(m)) - rbar * q[w])
            mdl.addCons(lhs == 0 if pat[w] == MID else lhs >= 0)
        for w in np.flatnonzero(M_):
            mdl.addCons(sl <= q[w])
            mdl.addCons(sl <= float(qbar[w]) - q[w])
        if smin is not None:
            mdl.addCons(sl >= smin)
        wel = ps.quicksum(float(market.v[a, w] + market.u[a, w]) * y[a][w] for a in range(m) for w in range(n)) \
            - rbar * ps.quicksum(q)
        if objective == "slack":
            mdl.setObjective(sl, "maximize")
        else:
            mdl.setObjective(wel, "maximize" if objective == "max" else "minimize")
        mdl.optimize()
        if mdl.getStatus() not in ("optimal",) or mdl.getNSols() == 0:
            return None
        sol = mdl.getBestSol()
        return (mdl.getObjVal(), np.array([sol[t] for t in th]), np.array([sol[v] for v in q]),
                np.array([[sol[y[a][w]] for w in range(n)] for a in range(m)]))

    r = build("slack", None)
    if r is None or r[0] <= SCIP_SLACK_TOL:
        return False
    smax = r[0]
    lo, hi, wit = build("min", 0.0), build("max", 0.0), build("max", 0.5 * smax)
    if wit is None or lo is None or hi is None:  # pragma: no cover
        return False
    # polish: with the price weights θ fixed the family is linear; the witness comes from HiGHS
    pol = _equilibrium_lp(_cp(), market, G, LS, S, pat, "fixed-price", Amat, rhs, umin, 1e-7, W0, L,
                          piece_values, price=LS.T @ wit[1])
    if pol is None:
        return False
    return EquilibriumPiece(
        pattern=pol.pattern, active=pol.active, kind="bilinear", q=pol.q, zeta=pol.zeta, x=pol.x,
        price=pol.price, welfare=pol.welfare, welfare_min=min(float(lo[0]), pol.welfare),
        welfare_max=max(float(hi[0]), pol.welfare), efficient=pol.efficient,
        all_efficient=bool(min(float(lo[0]), pol.welfare) >= W0 - 1e-6 * max(1.0, abs(W0)) * _scale(market)),
        kkt=pol.kkt)


def _null_direction(A: np.ndarray) -> np.ndarray | None:
    """The nonnegative unit-sum direction spanning ``ker A`` (dim 1), or None."""
    n = A.shape[1]
    if len(A) == 0:
        return None if n != 1 else np.ones(1)
    _, sv, Vt = np.linalg.svd(A)
    d = Vt[-1]
    if np.sum(d) < 0:
        d = -d
    d[np.abs(d) < 1e-12] = 0.0
    if np.any(d < 0) or d.sum() <= 0:
        return None
    return d / d.sum()


# ---------------------------------------------------------------------------
# remedies

@dataclass(frozen=True)
class UnionResult:
    """Data-union problem (GLP slides, "Formally, the data union problem is").

    ``value`` is the union's objective (participating consumers' welfare,
    ``Σ p q̄ + Σ u y + Σ (q̄ − q) r̄``); ``prices`` (n,) the per-member payments
    ``p(ω)`` (``Σ p q̄ = V(q)``); ``welfare`` = ``value − r̄`` is the
    constrained-efficiency objective of the union's allocation.  ``bound`` is a
    proven upper bound on ``value`` (= ``value`` when ``status`` is optimal;
    after a time limit or Ctrl-C, ``planner_bound + r̄``: the union's objective
    is the planner's plus ``r̄`` under extra constraints).
    """

    value: float
    welfare: float
    q: np.ndarray
    x: np.ndarray
    prices: np.ndarray
    platform_value: float
    seconds: float
    status: Termination = Termination.OPTIMAL
    bound: float | None = None
    gap: float = 0.0

    def __post_init__(self):
        if self.bound is None:
            object.__setattr__(self, "bound", self.value)


def data_union(market: InfoDesignMarket, *, pieces: ValuePieces | None = None, time_limit=None,
               method: str = "auto") -> UnionResult:
    """Solve the slides' data-union problem exactly: one LP per piece of V with
    the payments ``P(ω) = p(ω) q̄(ω)`` as variables, budget ``Σ P = V(q)`` and
    participation ``P(ω) + Σ_a u(a,ω) y(a,ω) − r̄ q(ω) ≥ 0`` (the slides'
    constraint multiplied by ``q̄(ω)``).  ``time_limit`` (seconds or a shared
    Deadline) and Ctrl-C return the best piece solved so far (no trade if none)
    with the bound of :class:`UnionResult`.  ``method="bbm"`` (auto when it
    applies and no ``pieces`` are given): the closed form of
    :func:`.info_design_bbm.data_union` (value ``W° + r̄``)."""
    from ..errors import ProblemError
    from ..limits import Deadline, Stopped
    from ..result import relative_gap
    from . import info_design_bbm as bbm

    if method not in ("auto", "bbm", "pieces"):
        raise ProblemError(f"unknown method {method!r} for the data union; use auto, bbm or pieces")
    if method == "bbm" or (method == "auto" and pieces is None and bbm.applies(market)):
        return bbm.data_union(market)

    dl = Deadline.of(time_limit)
    t0 = time.perf_counter()
    pieces = pieces or value_pieces(market, time_limit=dl)
    status = pieces.status
    best = None
    if status is Termination.OPTIMAL:
        try:
            lp = PieceLP(market, union=True)
            for lam in pieces.gradients:
                dl.check()
                r = lp.solve(lam, time_limit=dl.remaining())
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
    return UnionResult(val, val - market.reservation * float(market.prior.sum()), _frozen(q), _frozen(x),
                       _frozen(prices), float(np.sum(market.v * y)), time.perf_counter() - t0,
                       status, bound, relative_gap(val, bound))


@dataclass(frozen=True)
class TaxResult:
    """Data taxes (GLP slides, Proposition on data taxes).

    ``taxes`` τ*(ω) = p*(ω) + U(ω, x°) − r̄ (n,), ``prices`` p* ∈ ∂V(q°),
    ``zeta`` ζ* = q°/q̄.  ``revenue`` = Σ τ* q° (no deficit iff ≥ 0);
    ``welfare`` = consumers + platform + government − r̄ = W° when the taxed
    economy implements (q°, x°); ``is_equilibrium`` records the check of every
    equilibrium condition of the taxed economy at (p*, ζ*, q°, x°).
    """

    taxes: np.ndarray
    prices: np.ndarray
    q: np.ndarray
    x: np.ndarray
    zeta: np.ndarray
    revenue: float
    no_deficit: bool
    welfare: float
    efficient_welfare: float
    is_equilibrium: bool
    checks: Mapping[str, bool]
    status: Termination = Termination.OPTIMAL


def data_taxes(market: InfoDesignMarket, *, efficiency: EfficiencyResult | None = None,
               time_limit=None) -> TaxResult:
    """Taxes implementing a constrained-efficient allocation, with the checks.

    ``time_limit`` (seconds or a shared Deadline) and Ctrl-C apply to the
    constrained-efficiency solve; if it stops early the taxes implement the best
    allocation found, ``status`` says so and ``efficient_welfare`` is that
    allocation's welfare (not a proven ``W°``); if ``P_q°`` (an LP, or the closed
    form) is stopped, the prices are unknown (NaN) and ``status`` says so.
    """
    from ..limits import Deadline

    dl = Deadline.of(time_limit)
    eff = efficiency or constrained_efficiency(market, time_limit=dl)
    q, x = np.asarray(eff.q), np.asarray(eff.x)
    sol = solve_platform(market, q, intervals=False, time_limit=dl)
    p = np.asarray(sol.supergradient)
    U = market.consumer_utility(x)
    tau = p + U - market.reservation
    revenue = float(np.sum(tau * q))
    scale = _scale(market)
    tol = 1e-6 * scale
    # (a) p ∈ ∂V(q°): zero profit and p in proj D (dual feasibility, checked by LP)
    zero_profit = abs(float(p @ q) - sol.value) <= tol
    # the solve's own obedience duals certify p ∈ proj D directly; otherwise ask an LP
    in_D = bool(reduced_costs(market, sol).min() >= -tol) or _in_dual_polyhedron(market, p, tol)
    # (b) x° optimal in P_q°
    y = x * q[None, :]
    x_opt = abs(float(np.sum(market.v * y)) - sol.value) <= tol and _obedient(market, y, tol)
    # (c) consumers indifferent: p + U − τ = r̄, so ζ* = q°/q̄ is optimal
    consumers = bool(np.all(np.abs(p + U - tau - market.reservation) <= tol))
    # (d) market clearing with ζ ∈ [0, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        zeta = np.where(market.prior > 0, q / np.where(market.prior > 0, market.prior, 1), 0.0)
    clearing = bool(np.all(zeta >= -tol) and np.all(zeta <= 1 + tol))
    consumers_welfare = float(np.sum(q * (p + U - tau)) + np.sum((market.prior - q) * market.reservation))
    profit = sol.value - float(p @ q)
    welfare = consumers_welfare + profit + revenue - market.reservation * float(market.prior.sum())
    checks = {"price_is_supergradient": bool(zero_profit and in_D), "mechanism_optimal": bool(x_opt),
              "consumers_optimal": consumers, "market_clears": clearing}
    return TaxResult(_frozen(tau), _frozen(p), _frozen(q), _frozen(x), _frozen(zeta), revenue,
                     revenue >= -tol, welfare, eff.welfare, all(checks.values()), checks,
                     eff.status if eff.status is not Termination.OPTIMAL else sol.status)


def obedience_slacks(market: InfoDesignMarket, y) -> np.ndarray:
    """``S[a, a'] = Σ_ω (π(a,ω) − π(a',ω)) y(a,ω)`` (m, m); obedient iff all ≥ 0.

    For the slides' merchant in ``O(m·n + m²)`` through suffix sums (the merchant's
    profit of fee ``a'`` on segment ``a`` is ``fee_{a'}·Σ_{ω ≥ fee_{a'}} y(a,ω)``),
    otherwise from the payoff matrix."""
    y = np.asarray(y, float)
    if _threshold_form(market):
        tail = np.c_[np.cumsum(y[:, ::-1], axis=1)[:, ::-1], np.zeros(market.m)]
        profit = tail[:, np.searchsorted(market.types, market.fees, side="left")] * market.fees[None, :]
    else:
        profit = y @ market.pi.T
    return np.diag(profit)[:, None] - profit


def _obedient(market, y, tol) -> bool:
    return bool(np.all(obedience_slacks(market, y) >= -tol))


def _in_dual_polyhedron(market, lam, tol) -> bool:
    """Is ``λ ∈ proj_λ D``, i.e. ∃ μ ≥ 0 with λ(ω) ≥ v(a,ω) + Σ_a' μ(a,a')(π(a,ω) − π(a',ω))?"""
    from scipy.optimize import linprog

    G, _ = obedience_matrix(market)
    E = record_matrix(market)
    rhs = E.T @ lam - market.v.ravel() + tol          # need G^T μ ≤ E^T λ − v
    if G.shape[0] == 0:
        return bool(np.all(rhs >= 0))
    r = linprog(np.zeros(G.shape[0]), A_ub=G.T.toarray() if G.shape[0] * G.shape[1] < 4e6 else G.T,
                b_ub=rhs, bounds=[(0, None)] * G.shape[0], method="highs")
    return r.status == 0


@dataclass(frozen=True)
class CompleteMarketResult:
    """More-complete markets (GLP slides): a price ``p(a, ω)`` per (use, type).

    ``prices`` (m, n) with ``p(a,ω) = r̄ + β(ω) − u(a,ω)``; ``y`` (m, n)
    records traded per use; ``q`` (n,) = Σ_a y; ``welfare`` the
    (unconstrained) efficiency objective ``Σ (v+u) y − r̄ Σ q`` — its maximum
    over obedient ``y`` with ``Σ_a y ≤ q̄``; ``checks`` the equilibrium
    conditions verified at those prices.
    """

    prices: np.ndarray
    y: np.ndarray
    q: np.ndarray
    x: np.ndarray
    welfare: float
    platform_profit: float
    checks: Mapping[str, bool]

    @property
    def is_equilibrium(self) -> bool:
        return all(self.checks.values())


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
    numerically here.

    ``time_limit`` (seconds or a shared Deadline): prices need the optimal
    duals, so there is no partial answer — a stopped LP raises
    :class:`~dm_opt.errors.LimitExceeded`.
    """
    from ..limits import Deadline

    dl = Deadline.of(time_limit)
    cp = _cp()
    m, n = market.m, market.n
    y = cp.Variable((m, n), nonneg=True)
    G, pairs = obedience_matrix(market)
    cons = [cp.sum(y, axis=0) <= market.prior]
    if G.shape[0]:
        cons.append(G @ cp.reshape(y, (m * n,), order="C") >= 0)
    prob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(market.v + market.u - market.reservation, y))), cons)
    if _stopped_status(_solve(prob, "complete markets", time_limit=dl.remaining())):
        raise LimitExceeded(f"complete markets: the LP did not finish ({dl.message()}); prices need its "
                            f"optimal duals, so there is no partial answer")
    yv = np.clip(np.asarray(y.value, float), 0, None)
    beta = np.clip(np.asarray(cons[0].dual_value, float), 0, None)
    prices = market.reservation + beta[None, :] - market.u
    q = yv.sum(axis=0)
    tol = 1e-6 * _scale(market)
    # platform: max Σ (v − p) y over obedient y with Σ y ≤ 1 (a cone: value must be 0)
    z = cp.Variable((m, n), nonneg=True)
    pc = [cp.sum(z) <= 1]
    if G.shape[0]:
        pc.append(G @ cp.reshape(z, (m * n,), order="C") >= 0)
    pp = cp.Problem(cp.Maximize(cp.sum(cp.multiply(market.v - prices, z))), pc)
    if _stopped_status(_solve(pp, "complete-market platform", time_limit=dl.remaining())):
        raise LimitExceeded(f"complete markets: the platform check did not finish ({dl.message()})")
    profit = float(np.sum((market.v - prices) * yv))
    checks = {
        "platform_optimal": bool(pp.value <= tol and abs(profit) <= tol),
        "consumers_optimal": bool(np.all(prices + market.u >= market.reservation - tol)
                                  and np.all((beta <= tol) | (q >= market.prior - tol))),
        "mechanism_obedient": _obedient(market, yv, tol),
    }
    x = mechanism_from_y(market, yv, q)
    return CompleteMarketResult(_frozen(prices), _frozen(yv), _frozen(q), _frozen(x),
                                float(prob.value), profit, checks)


__all__ = [
    "PlatformLP", "PlatformHighs", "PlatformSolution", "solve_platform", "PLATFORM_METHODS", "platform_sweep", "FaceLP", "WelfareSolution", "welfare",
    "ValuePieces", "value_pieces", "PieceLP", "EfficiencyResult", "constrained_efficiency",
    "record_matrix", "obedience_matrix", "mechanism_from_y", "VALUE_TOL", "PIECES_MAX_N",
    "EquilibriumPiece", "EquilibriaResult", "equilibria", "UnionResult", "data_union",
    "TaxResult", "data_taxes", "CompleteMarketResult", "complete_markets", "EQUILIBRIA_MAX_N",
    "relaxation_bound", "planner_bound", "no_information",
]
