"""``P_q``, the platform's information-design LP (GLP slides, "Info-design problem"), at one database.

:class:`PlatformLP` (cvxpy, ``q`` a Parameter) for one-off solves and :class:`PlatformHighs` (one
live highspy model, warm-started dual simplex) for sweeps; the ranges of ``∂V(q)`` over the
optimal dual face (:class:`_DualFace`); :func:`solve_platform` / :func:`platform_sweep` choose the
closed form (:mod:`dm_opt.info_design.bbm`) when it applies, and for dense general payoffs the
row-and-column generation model of :mod:`dm_opt.info_design.lp.highs_lp` (:func:`platform_model`).
"""

from __future__ import annotations

import time

import highspy
import numpy as np
import scipy.sparse as sp

from dm_opt.core.errors import InstanceError, ProblemError, SolverFailed
from dm_opt.core.highs import silence_banner
from dm_opt.core.limits import Deadline, check_time_limit
from dm_opt.core.result import Termination, frozen_array, relative_gap
from dm_opt.core.validate import as_array
from dm_opt.info_design import bbm
from dm_opt.info_design.common import (
    CVXPY_BYTES,
    DENSE_WARM_MAX_NNZ,
    FACE_TOL,
    HIGHS_LP_BYTES,
    LARGE_LP,
    LP_OPTIONS,
    VALUE_TOL,
    WARM_SIMPLEX_STRATEGY,
    HighsModel,
    _check_size,
    _obedient,
    _pq_blocks,
    _pq_nnz,
    _scale,
    _suffix_rows,
    _threshold_form,
    mechanism_from_y,
    no_information,
    obedience_matrix,
    relaxation_bound,
)
from dm_opt.info_design.lp._cvxpy import _cp, _solve, _stopped_status
from dm_opt.info_design.market import InfoDesignMarket
from dm_opt.info_design.results import PlatformSolution


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
        self.compact = compact
        _check_size(market, "P_q (cvxpy model)", _pq_nnz(market, compact), CVXPY_BYTES)
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
            # Σ_ω (π(a,ω) − π(a',ω)) y(a,ω) = Σ_k (Δπ(a,k) − Δπ(a',k)) T[a, k]  (slides' merchant:
            # fee_a T[a, k(a)] − fee_{a'} T[a, k(a')] with k(·) the first type ≥ the fee)
            Ob, self._pairs = _suffix_rows(market, idx)
            if m > 1:
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

        ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`): when
        HiGHS runs out of time, or on Ctrl-C, the best obedient mechanism known is
        returned with status ``time_limit``/``interrupted`` and the proven
        :func:`relaxation_bound` (see :class:`PlatformSolution`).  When ``P_q`` was
        solved but the interval LPs were not all finished, ``V(q)`` and the optimal
        mechanism are returned with the unfinished coordinates NaN and status
        ``time_limit``/``interrupted`` (``message`` says how many were finished).
        """
        market = self.market
        q = market.database(q)
        dl = Deadline.of(time_limit)
        t0 = time.perf_counter()
        self.q.value = q
        try:
            status = _solve(self.problem, "P_q", large=market.m * market.n > LARGE_LP,
                            time_limit=None if dl.end is None else dl)
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
        return _finish_platform(self, market, q, value, y, lam, mu, intervals, dl, t0)

    # -- the dual face ------------------------------------------------------
    def dual_face_ranges(self, q, value, *, deadline=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``min``/``max`` of each ``λ(ω)`` over ``{(λ,μ) ∈ D : λ·q ≤ V(q) + tol}``.

        ``tol = FACE_TOL × scale × max(1, Σq)`` absorbs the error of ``V(q)``.
        Returns ``(lower, upper, points)``; ``upper[ω] = inf`` when the LP is
        unbounded (always when ``q(ω) = 0``); ``points`` are the distinct
        optimal λ's found (each an element of ∂V(q) up to ``tol``).  Coordinates not
        reached before ``deadline`` (a :class:`~dm_opt.core.limits.Deadline`) are NaN; so
        are those left by Ctrl-C, which stops the loop.
        The LPs are held by one :class:`_DualFace` (highspy, warm-started).
        """
        if self._face is None:
            self._face = _DualFace(self.market)
        return self._face.ranges(q, value, deadline)



def _finish_platform(owner, market, q, value, y, lam, mu, intervals, dl, t0) -> PlatformSolution:
    """An optimal ``P_q`` solution with, if requested, the ranges of ``∂V(q)``; a status
    other than optimal (and a message) when the ranges were not all finished."""
    x = mechanism_from_y(market, y, q)
    lower = upper = pts = None
    status, message = Termination.OPTIMAL, ""
    if intervals:
        lower, upper, pts = owner.dual_face_ranges(q, value, deadline=dl)
        missing = int(np.count_nonzero(np.isnan(lower) | np.isnan(upper)))
        if missing:
            interrupted = bool(getattr(owner._face, "interrupted", False))
            status = Termination.INTERRUPTED if interrupted else Termination.TIME_LIMIT
            why = "interrupted" if interrupted else "time limit reached"
            message = (f"{why}: V(q) and the mechanism are optimal, but the range of ∂V(q) is missing "
                       f"(NaN) for {missing} of {market.n} types")
    return PlatformSolution(
        status=status, q=frozen_array(q), value=value, y=frozen_array(y), x=frozen_array(x),
        supergradient=frozen_array(lam), obedience_duals=frozen_array(mu),
        consumer_utility=frozen_array(market.consumer_utility(x)),
        lower=None if lower is None else frozen_array(lower), upper=None if upper is None else frozen_array(upper),
        supergradients=None if pts is None else frozen_array(pts),
        seconds=time.perf_counter() - t0, message=message)


class _DualFace:
    """The LPs ``min ±λ(ω)`` over the optimal dual face of ``P_q``, in one live highspy model.

    Dual of ``P_q`` in the block form of :func:`_pq_blocks` (``π = (λ, ν)`` for the equality
    rows, ``μ ≥ 0`` for obedience): ``Ey'π − Gy'μ ≥ v`` (one row per ``y`` column),
    ``AT'π − GT'μ = 0`` (one per ``T`` column) and the face row ``q·λ ≤ V(q) + tol``.
    For the slides' merchant above :data:`DENSE_WARM_MAX_NNZ` dense nonzeros the suffix-sum
    form is used: ``ν(a,ω) = Σ_{a'} μ(a,a')(π(a,ω) − π(a',ω))`` is then implied, so the
    ``λ``-projection is the same polyhedron as with the dense rows, with
    ``O(|A|·|Ω| + |A|²)`` nonzeros instead of ``|A|²|Ω|``.
    """

    def __init__(self, market: InfoDesignMarket):
        m, n = market.m, market.n
        # the dense rows are faster for HiGHS while small (as in PlatformHighs)
        compact = _threshold_form(market) and m * (m - 1) * n > DENSE_WARM_MAX_NNZ
        _check_size(market, "dual-face LPs of ∂V(q)", _pq_nnz(market, compact), HIGHS_LP_BYTES)
        Ey, AT, Gy, GT, _ = _pq_blocks(market, compact)
        n = market.n
        n_eq, R = Ey.shape[0], Gy.shape[0]
        kT = AT.shape[1]
        face_row = sp.csr_matrix((np.ones(n), (np.zeros(n, int), np.arange(n))), shape=(1, n_eq + R))
        A = sp.vstack([sp.hstack([Ey.T, -Gy.T]), sp.hstack([AT.T, -GT.T]), face_row], format="csc")
        inf = np.inf
        self.model = HighsModel(
            A, np.r_[market.v.ravel(), np.zeros(kT), -inf], np.r_[np.full(Ey.shape[1], inf), np.zeros(kT), inf],
            np.zeros(n_eq + R), np.r_[np.full(n_eq, -inf), np.zeros(R)], np.full(n_eq + R, inf), maximize=False)
        self.market, self.n, self.face_row = market, n, A.shape[0] - 1

    def ranges(self, q, value, deadline=None, known=None):
        """``(lower, upper, points)`` as :meth:`PlatformLP.dual_face_ranges`; ``known`` =
        ``(lower, upper, points)`` already proven (NaN where not): only the NaN entries are
        solved for (one LP each)."""
        h = self.model.h
        n = self.n
        dl = Deadline.of(deadline)
        if known is not None:
            lower, upper = np.array(known[0], float), np.array(known[1], float)
            pts = [np.asarray(p, float) for p in known[2]]
        else:
            lower, upper, pts = np.full(n, np.nan), np.full(n, np.nan), []
        if self.model.busy(dl):
            self.interrupted = False
            return lower, upper, np.unique(np.round(np.array(pts), 9), axis=0) if pts else np.zeros((0, n))
        tol = FACE_TOL * _scale(self.market) * max(1.0, float(np.sum(q)))
        for w in range(n):
            h.changeCoeff(self.face_row, w, float(q[w]))
        h.changeRowBounds(self.face_row, -np.inf, float(value + tol))
        cost = np.zeros(n)
        self.interrupted = False
        self.lps = 0
        try:
            for w in range(n):
                if dl.expired():
                    break
                for sign in (1.0, -1.0):
                    if not np.isnan(lower[w] if sign > 0 else upper[w]):
                        continue
                    self.lps += 1
                    cost[:] = 0.0
                    cost[w] = sign
                    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
                    st = self.model.run(dl)
                    if st in ("time_limit", "interrupted"):
                        val = np.nan
                        self.interrupted |= st == "interrupted"
                    elif self.model.unbounded:
                        val = -np.inf
                    elif st == "optimal":
                        val = self.model.objective
                        pts.append(self.model.x[:n].copy())
                    else:  # pragma: no cover
                        raise SolverFailed(f"dual-face LP: status {st!r}")
                    if sign > 0:
                        lower[w] = val
                    else:
                        upper[w] = -val
                if self.interrupted:
                    break
        except KeyboardInterrupt:          # between two HiGHS runs: keep what is finished
            self.interrupted = True
        P = np.unique(np.round(np.array(pts), 9), axis=0) if pts else np.zeros((0, n))
        return lower, upper, P


def _partial_platform(market: InfoDesignMarket, q: np.ndarray, status: Termination, y_candidate,
                      t0: float) -> PlatformSolution:
    """The best obedient mechanism known when ``P_q`` was stopped early, with its proven bound."""
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
    why = "interrupted" if status is Termination.INTERRUPTED else "time limit reached"
    return PlatformSolution(
        status=status, q=frozen_array(q), value=value, y=frozen_array(y), x=frozen_array(x),
        supergradient=frozen_array(nan_n),
        obedience_duals=frozen_array(nan_m), consumer_utility=frozen_array(market.consumer_utility(x)),
        seconds=time.perf_counter() - t0, bound=bound, gap=relative_gap(value, bound),
        message=f"{why} before P_q was solved: the mechanism is the best obedient one known, the bound "
        f"drops obedience (relaxation_bound); V(q), its duals and ∂V(q) are unknown (NaN)")


class PlatformHighs:
    """``P_q`` held in one live ``highspy.Highs`` model for long sweeps: a new ``q``
    only changes the bounds of the record-count rows, and HiGHS re-optimises from
    the previous optimal basis (warm start), which cvxpy's interface does not do
    (it builds a new ``Highs`` object per solve).  Formulation: the dense
    obedience rows up to :data:`DENSE_WARM_MAX_NNZ` nonzeros, the suffix-sum
    form of :class:`PlatformLP` above (slides' merchant only; ``compact``
    overrides).  The row duals of HiGHS for this maximisation are ``∂V/∂q`` directly
    (checked against :class:`PlatformLP` in the tests).  A model whose estimated size
    exceeds :data:`dm_opt.core.limits.MEMORY_BUDGET` is refused
    (:class:`~dm_opt.core.errors.LimitExceeded`) before it is built.
    """

    def __init__(self, market: InfoDesignMarket, *, compact: bool | None = None, ranging: bool = True):
        silence_banner()
        #: prove the ranges of ∂V(q) by HiGHS' ranging where the basis allows (False: 2n dual-face LPs)
        self.ranging = ranging
        #: solve the first (cold) P_q by IPM with crossover (None: by size, LARGE_LP / COLD_IPM_NNZ)
        self.cold_ipm: bool | None = None
        self._ipm_basis = False
        self.market = market
        m, n = market.m, market.n
        if compact is None:
            compact = _threshold_form(market) and m * (m - 1) * n > DENSE_WARM_MAX_NNZ
        self.compact = compact
        _check_size(market, "P_q", _pq_nnz(market, compact), HIGHS_LP_BYTES)
        Ey, AT, Gy, GT, pairs = _pq_blocks(market, compact)
        n_eq, R, ncol_T = Ey.shape[0], Gy.shape[0], AT.shape[1]
        A = sp.bmat([[Ey, AT], [Gy, GT]], format="csc")
        self._nnz = A.nnz
        inf = np.inf
        self._model = HighsModel(
            A, np.zeros(n_eq + R), np.r_[np.zeros(n_eq), np.full(R, inf)],
            np.r_[market.v.ravel(), np.zeros(ncol_T)], np.r_[np.zeros(m * n), np.full(ncol_T, -inf)],
            np.full(m * n + ncol_T, inf), options={"simplex_strategy": LP_OPTIONS["simplex_strategy"]})
        self.h = self._model.h
        self._obe_rows = np.arange(n_eq, n_eq + R)
        self._pairs = pairs
        self._rec = np.arange(n, dtype=np.int32)
        self._solved = False
        self._face = None

    def solve(self, q, *, intervals: bool = False, time_limit=None) -> PlatformSolution:
        """``P_q`` at ``q`` (warm-started from the previous solve).  ``intervals`` and
        ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`) as in
        :meth:`PlatformLP.solve`: a stopped solve returns the best obedient mechanism
        known with :func:`relaxation_bound` and status ``time_limit``/``interrupted``."""
        market = self.market
        q = market.database(q)
        dl = Deadline.of(time_limit)
        t0 = time.perf_counter()
        if self._model.busy(dl):            # the previous solve is still stopping (see STOP_GRACE_SECONDS)
            return _partial_platform(market, q, Termination.TIME_LIMIT, None, t0)
        self.h.changeRowsBounds(len(self._rec), self._rec, q, q)
        cold = not self._solved and (self.cold_ipm if self.cold_ipm is not None else
                                     market.m * market.n > LARGE_LP or self._nnz > COLD_IPM_NNZ)
        self._ipm_basis = cold
        if cold:
            self.h.setOptionValue("solver", "ipm")
        try:
            st = self._model.run(dl)
        except KeyboardInterrupt:
            st = "interrupted"
        finally:
            if cold and not self._model.abandoned:
                self.h.setOptionValue("solver", "simplex")     # later solves warm-start from this basis
        m, n = market.m, market.n
        if st in ("time_limit", "interrupted"):
            y_cand = self._model.x[: m * n].reshape(m, n) if self._model.has_solution else None
            return _partial_platform(market, q, Termination(st), y_cand, t0)
        if st != "optimal":
            raise SolverFailed(f"P_q (highspy): {st}")
        if not self._solved:
            # a new q only moves row bounds, so the previous optimal basis stays dual feasible:
            # dual simplex is the warm-start method (1.2–1.3x fewer seconds and 2–3x fewer
            # iterations than primal at |Ω| = 20–100 on random q, benchmarks/info_design.py)
            self.h.setOptionValue("simplex_strategy", WARM_SIMPLEX_STRATEGY)
        self._solved = True
        col = self._model.x
        y = np.clip(col[: m * n].reshape(m, n), 0.0, None)
        rd = self._model.row_dual
        lam = rd[:n].copy()
        mu = np.zeros((m, m))
        if len(self._pairs):
            mu[self._pairs[:, 0], self._pairs[:, 1]] = np.clip(-rd[self._obe_rows], 0.0, None)
        self._known = self._ranged(q, lam) if intervals and self.ranging else None
        return _finish_platform(self, market, q, self._model.objective, y, lam, mu, intervals, dl, t0)

    def _ranged(self, q, lam):
        """The one-sided derivatives of ``V`` at ``q`` proven by the optimal basis (ranging of the
        record-count rows): when the basis stays primal feasible for ``q ± t·e_ω``, ``t ∈ [0, t̄]``,
        ``t̄ > 0``, its dual ``λ_B`` stays optimal there, so ``V`` is linear with slope ``λ_B(ω)`` and
        ``min_{∂V} λ(ω) = V'(q; e_ω) = λ_B(ω)`` (resp. ``max_{∂V} λ(ω) = −V'(q; −e_ω) = λ_B(ω)``).
        ``t̄`` is the primal ratio test along ``B⁻¹e_ω`` (one solve with HiGHS' factorisation per
        type; HiGHS' own ``getRanging`` ranges every row and column, ~1 s at |Ω| = |A| = 60, and gives
        the same ``t̄``).  Returns ``(lower, upper, points)`` with NaN where the basis is primal
        degenerate in that direction (``t̄`` below :data:`RANGING_MIN_STEP`; a dual-face LP decides
        it); ``upper = inf`` where ``q(ω) = 0`` (module docstring of :mod:`~dm_opt.info_design.lp`)."""
        n = self.market.n
        lower, upper = np.full(n, np.nan), np.full(n, np.nan)
        upper[q <= 0] = np.inf
        h = self.h
        if not h.getInfo().basis_validity:        # no basis (e.g. stopped crossover): every coordinate by LP
            return lower, upper, []
        if self._ipm_basis:
            # after IPM + crossover HiGHS keeps the optimal basis but not its factorisation (and
            # getBasicVariables/getBasisSolve then crash): a simplex run from that basis rebuilds it
            h.setOptionValue("solver", "simplex")
            h.run()
            self._ipm_basis = False
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # pragma: no cover
                return lower, upper, []
            lam_b = np.asarray(h.getSolution().row_dual[:n], float)
            if np.max(np.abs(lam_b - lam), initial=0.0) > FACE_TOL * _scale(self.market):
                return lower, upper, []              # simplex moved to another basis: the LPs decide
        st, basic = h.getBasicVariables()
        if st != highspy.HighsStatus.kOk:  # pragma: no cover
            return lower, upper, []
        basic = np.asarray(basic)
        lp_, sol = h.getLp(), h.getSolution()
        isc = basic >= 0                          # a column, else row −1−index (HiGHS' logical: −activity)
        ci, ri = np.where(isc, basic, 0), np.where(isc, 0, -1 - basic)
        val = np.where(isc, np.asarray(sol.col_value)[ci], np.asarray(sol.row_value)[ri])
        lo = np.where(isc, np.asarray(lp_.col_lower_)[ci], np.asarray(lp_.row_lower_)[ri])
        hi = np.where(isc, np.asarray(lp_.col_upper_)[ci], np.asarray(lp_.row_upper_)[ri])
        sgn = np.where(isc, 1.0, -1.0)
        e = np.zeros(lp_.num_row_)
        for w in range(n):
            e[w] = 1.0
            st, d = h.getBasisSolve(e)
            e[w] = 0.0
            if st != highspy.HighsStatus.kOk:  # pragma: no cover
                continue
            d = sgn * np.asarray(d)
            for sign in (1.0, -1.0):
                if sign < 0 and q[w] <= 0:
                    continue
                dd = sign * d
                with np.errstate(divide="ignore", invalid="ignore"):
                    lim = np.where(dd > RANGING_PIVOT_TOL, (hi - val) / dd,
                                   np.where(dd < -RANGING_PIVOT_TOL, (lo - val) / dd, np.inf))
                if lim.min(initial=np.inf) >= RANGING_MIN_STEP * max(1.0, q[w]):
                    if sign > 0:
                        lower[w] = lam[w]
                    else:
                        upper[w] = lam[w]
        return lower, upper, [lam.copy()]

    def dual_face_ranges(self, q, value, *, deadline=None):
        """As :meth:`PlatformLP.dual_face_ranges`; coordinates proven by HiGHS' ranging at the optimal
        basis (:meth:`_ranged`) take no LP, only the primal-degenerate ones do (:class:`_DualFace`,
        built on first need)."""
        known = getattr(self, "_known", None)
        n = self.market.n
        if known is not None and not (np.isnan(known[0]).any() or np.isnan(known[1]).any()):
            self.face_lps = 0
            return known[0], known[1], np.unique(np.round(np.array(known[2]), 9), axis=0)
        if self._face is None:
            self._face = _DualFace(self.market)
        out = self._face.ranges(q, value, deadline, known=known)
        self.face_lps = getattr(self._face, "lps", 2 * n)
        return out


#: A cold P_q with more constraint-matrix nonzeros than this is solved by HiGHS' interior point
#: method (with crossover: the duals stay basic, the basis is kept for warm starts and ranging):
#: on general payoffs with dense obedience rows IPM took 0.07/0.21/3.1 s against 0.19/1.1/50 s for
#: primal simplex at |Ω| = |A| = 20/30/50 (benchmarks/info_design.py --only general).
COLD_IPM_NNZ = 5000

#: Smallest range (× max(1, q(ω))) over which the optimal basis must stay primal feasible for
#: HiGHS' ranging to prove a one-sided derivative of V (below it the direction is treated as
#: degenerate and decided by a dual-face LP).
RANGING_MIN_STEP = 1e-9
#: Entries of ``B⁻¹e_ω`` below this are treated as zero in the ratio test.
RANGING_PIVOT_TOL = 1e-12

#: Methods for ``P_q`` / ``W(q)``: the closed form needs the slides' merchant with ``Ω ⊆ A``.
PLATFORM_METHODS = ("auto", "bbm", "lp")


def _platform_method(market: InfoDesignMarket, method: str) -> str:
    if method not in PLATFORM_METHODS:
        raise ProblemError(f"unknown method {method!r} for P_q; use one of {', '.join(PLATFORM_METHODS)}")
    if method == "auto":
        return "bbm" if bbm.applies(market) else "lp"
    return method


#: LP models of ``P_q`` behind ``method="lp"`` (the ``lp_model`` argument): ``"auto"`` picks
#: ``"generation"`` (:class:`~dm_opt.info_design.lp.highs_lp.GeneralPlatformHighs`, row-and-column
#: generation) for general payoffs with large dense obedience rows
#: (:func:`~dm_opt.info_design.lp.highs_lp.general_generation`), else ``"highs"`` (:class:`PlatformHighs`,
#: the full model); ``"cvxpy"`` is :class:`PlatformLP`.  All are exact; they differ in speed only.
LP_MODELS = ("auto", "generation", "highs", "cvxpy")


def platform_model(market: InfoDesignMarket, lp_model: str = "auto"):
    """A live ``P_q`` model of ``market`` (a :class:`PlatformHighs`,
    :class:`~dm_opt.info_design.lp.highs_lp.GeneralPlatformHighs` or :class:`PlatformLP`; see
    :data:`LP_MODELS`), re-solvable for many ``q`` by ``.solve(q, intervals=..., time_limit=...)``."""
    # highs_lp builds on this module (_finish_platform, _DualFace): imported here, not at the top
    from dm_opt.info_design.lp.highs_lp import GeneralPlatformHighs, general_generation

    if not isinstance(lp_model, str) or lp_model not in LP_MODELS:
        raise ProblemError(f"unknown lp_model {lp_model!r} for P_q; use one of {', '.join(LP_MODELS)}")
    if lp_model == "auto":
        lp_model = "generation" if general_generation(market) else "highs"
    if lp_model == "generation":
        return GeneralPlatformHighs(market)
    return PlatformHighs(market) if lp_model == "highs" else PlatformLP(market)


def solve_platform(market: InfoDesignMarket, q, *, intervals: bool = True, method: str = "auto",
                   time_limit=None, lp_model: str = "auto") -> PlatformSolution:
    """One-off ``P_q``.

    ``method="bbm"`` (auto when it applies: slides' payoffs, positive types,
    ``Ω ⊆ A``) is the exact closed form of :mod:`dm_opt.info_design.bbm`, O(n²);
    ``method="lp"`` builds the LP (:func:`platform_model` with ``lp_model``, see
    :data:`LP_MODELS`; keep one of those to re-solve it for many ``q``).  ``time_limit``: see
    :meth:`PlatformLP.solve` and :func:`dm_opt.info_design.bbm.platform`.
    """
    check_time_limit(time_limit)
    if _platform_method(market, method) == "bbm":
        return bbm.platform(market, q, intervals=intervals, time_limit=time_limit)
    # highspy directly: the time limit covers the build, Ctrl-C stops HiGHS itself (a cvxpy solve
    # only sees Ctrl-C when HiGHS returns: 40 s at |Ω| = |A| = 200)
    return platform_model(market, lp_model).solve(q, intervals=intervals, time_limit=time_limit)


def platform_sweep(market: InfoDesignMarket, databases, *, method: str = "auto",
                   intervals: bool = False, lp_model: str = "auto") -> list[PlatformSolution]:
    """``P_q`` for every row of ``databases`` (shape (k, n)), re-using one model.

    ``method="bbm"`` (auto when it applies) evaluates the closed form per row;
    ``"lp"`` keeps one live model (:func:`platform_model` with ``lp_model``) and warm-starts each
    solve from the previous optimal basis (order the rows along a path when you
    can: neighbouring databases share bases).  ``intervals`` (closed form only)
    adds the exact ranges of ``∂V(q)``.
    """
    Q = as_array("databases", databases, ndim=2)
    if Q.shape[1] != market.n:
        raise InstanceError("databases", f"expected shape (k, {market.n}) (one column per type), got {Q.shape}")
    if _platform_method(market, method) == "bbm":
        return [bbm.platform(market, q, intervals=intervals) for q in Q]
    if intervals:
        raise ProblemError("intervals=True needs the closed form; the LP sweep does not compute ∂V ranges "
                           "(use platform_model(market).solve(q, intervals=True))")
    H = platform_model(market, lp_model)
    return [H.solve(q) for q in Q]


__all__ = ["PlatformLP", "PlatformHighs", "PLATFORM_METHODS", "LP_MODELS", "platform_model", "solve_platform",
           "platform_sweep"]
