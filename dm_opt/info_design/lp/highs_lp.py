"""``P_q`` with general payoff matrices by row-and-column generation in one live highspy model.

With a general merchant payoff ``π`` the obedience rows of ``P_q`` are dense: ``|A|(|A|−1)`` rows
of ``|Ω|`` nonzeros each (8·10⁶ at ``|Ω| = |A| = 200``), and one cold solve of the full LP takes
tens of seconds.  At an optimum few of them matter (at ``|Ω| = |A| = 200`` with random payoffs:
~90 recommended fees, ~570 positive ``y(a, ω)``, ~700 binding obedience rows), so
:class:`GeneralPlatformHighs` solves a *restricted* LP — the record-count rows, a set ``S`` of
obedience rows and a set ``K`` of ``y`` columns — held in one ``highspy.Highs`` model built from
arrays (``passModel`` once, then ``addRows``/``addCols`` with CSR/CSC arrays), and grows it:

* a row ``(a, a')`` of ``S``'s complement violated by the restricted optimum ``y`` (``y π'`` gives
  all ``|A|²`` obedience slacks in one matrix product) is added — the basis stays dual feasible,
  so the next run is warm dual simplex;
* otherwise a column ``(a, ω) ∉ K`` with a positive reduced cost
  ``v(a,ω) − λ(ω) + Σ_{a'} μ(a,a')(π(a,ω) − π(a',ω))`` (``μ = 0`` off ``S``) is added (per type the
  best :data:`COLS_PER_TYPE` by a score that also charges the obedience a column would violate,
  :data:`DEFICIT_WEIGHT`) — the basis stays primal feasible, so the next run is warm primal simplex
  (:data:`COLUMN_ROUND_STRATEGY`);
* when neither exists, ``y`` (zero off ``K``) is feasible for the full ``P_q`` and ``(λ, μ)``
  (zero off ``S``) is feasible for its dual, with equal objectives: both are optimal for the full
  LP (weak duality).  This certificate is checked in numpy against the full payoff matrices, not
  taken from HiGHS: the returned ``value`` is ``Σ v y`` re-evaluated at the returned ``y`` and
  the proven ``bound`` is ``Σ_ω q(ω)(λ(ω) + max(0, max_a r(a,ω)))`` (``λ`` raised by the largest
  positive reduced cost ``r`` of its type is exactly dual feasible).

The restricted LP starts from the merchant's best fee under ``q`` for every type (obedient, so
every restricted LP is feasible) and each type's best fee for the platform; a new ``q`` only
moves the record-count bounds and re-uses ``S``, ``K`` and the basis (warm dual simplex).

The ranges of ``∂V(q)`` come from the optimal basis (see :meth:`GeneralPlatformHighs.ranges`).
"""

from __future__ import annotations

import time

import highspy
import numpy as np
import scipy.sparse as sp

from dm_opt.core.errors import SolverFailed
from dm_opt.core.highs import silence_banner
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Termination
from dm_opt.info_design.common import (
    DENSE_WARM_MAX_NNZ,
    VALUE_TOL,
    HighsModel,
    _scale,
    _threshold_form,
    no_information,
)
from dm_opt.info_design.lp.platform import (
    RANGING_MIN_STEP,
    RANGING_PIVOT_TOL,
    _DualFace,
    _finish_platform,
    _partial_platform,
)
from dm_opt.info_design.market import InfoDesignMarket
from dm_opt.info_design.results import PlatformSolution

#: Obedience rows added per recommended fee and round (the most violated first): at |Ω| = |A| = 100,
#: 2/5/10 took 0.88/0.78/0.74 CPU s with 800/1090/1530 rows (5: fewer rows for about the same time).
ROWS_PER_FEE = 5
#: Columns added per type and round (the best scores first, :data:`DEFICIT_WEIGHT`): at |Ω| = |A| = 100
#: 1/2/5/10/25/100 took 1.37/0.91/0.78/0.67/0.59/0.61 CPU s (fewer rounds outweigh the larger restricted LP
#: up to ~25).  At |Ω| = |A| = 200 10 took fewer CPU s for P_q than 25 (see DEFICIT_WEIGHT for why it is not
#: the default).
COLS_PER_TYPE = 25
#: Pricing score of a candidate column (only for choosing among the columns of positive reduced cost):
#: ``r(a,ω) − κ·(max_b π(b,ω) − π(a,ω))`` with ``κ`` = this × the median of ``Σ_b μ(a,b)`` over the fees
#: with a positive obedience dual.  ``r`` counts no obedience dual off the model, so a fee without rows
#: looks better than it is; the deficit is what a point mass on ω would violate.  With 1.0 and
#: COLS_PER_TYPE = 10, P_q at |Ω| = |A| = 200 took 1.5× fewer CPU s on seed 0 (benchmarks/info_design.py
#: --general 200 --no-full), but on seeds 1 and 2 the optimal basis it ends at is primal degenerate in
#: most directions of q and the perturbed re-solves of the ranges ran for many minutes (seed 1 also with
#: COLS_PER_TYPE = 10 alone): off (0) until the degenerate ends are settled more cheaply.
DEFICIT_WEIGHT = 0.0
#: HiGHS simplex strategy after a column round (the basis stays primal feasible; 4 = primal): dual
#: simplex took fewer CPU s for P_q at |Ω| = |A| = 200 on seed 0 (4.02 against 4.63) but on seed 1 ended
#: at a basis primal degenerate in most directions of q, so that the perturbed re-solves of the ranges
#: took over a minute (scratch runs of one session): primal is kept.
COLUMN_ROUND_STRATEGY = 4
#: Rounds of generation before giving up (each adds at least one row or column, so the loop is
#: finite — at most |A|(|A|−1) + |A||Ω| rounds; this only guards against numerical cycling).
MAX_ROUNDS = 10_000
#: The row-and-column generation path is the default for general payoffs once the dense obedience
#: rows have more nonzeros than this: on random payoffs at |Ω| = |A| = 10/20/50 (P_q + ranges) it took
#: 0.03/0.06/0.19 CPU s against 0.01/0.05/0.82 for the full model (:class:`PlatformHighs`).
GENERATION_MIN_NNZ = DENSE_WARM_MAX_NNZ
#: First relative step (× max(1, Σq)) of the perturbed re-solves that settle degenerate ends of the
#: ranges of ∂V(q) (:meth:`GeneralPlatformHighs._perturbed`), and how many times it is cut by 100.
PERTURB_STEP = 1e-3
PERTURB_TRIES = 3
#: A basic variable may leave its bounds by at most this × t when the perturbed basis is moved back
#: to q (entries of B⁻¹e_ω below it are numerical noise, as RANGING_PIVOT_TOL for the ranging).
PERTURB_REL_TOL = 1e-7
#: HiGHS simplex strategies (HiGHS option ``simplex_strategy``).
_DUAL, _PRIMAL = 1, 4


def _unit(a: np.ndarray) -> float:
    """The power of two nearest below ``max |a|`` when that is below 1, else 1.

    :class:`GeneralPlatformHighs` divides ``π`` and ``v`` by it: HiGHS' feasibility and optimality
    tolerances are absolute (1e-7), so payoffs of order 1e-4 would be solved to 1e-3 relative (a
    wrong range end reported as optimal); a power of two rescales exactly (no rounding), and
    ``P_q`` is unchanged by scaling ``π`` (the obedience set) and homogeneous of degree one in ``v``."""
    mx = float(np.max(np.abs(a), initial=0.0))
    if not 0.0 < mx < 1.0:
        return 1.0
    return float(2.0 ** np.floor(np.log2(mx)))


class GeneralPlatformHighs:
    """``P_q`` (module docstring) for any payoff matrices, by row-and-column generation.

    ``solve(q)`` returns a :class:`~dm_opt.info_design.results.PlatformSolution` whose status is
    ``optimal`` only with the certificate of the module docstring; ``solve(q, intervals=True)``
    adds the exact ranges of ``∂V(q)`` (:meth:`ranges`).  The model is kept between calls: a new
    ``q`` warm-starts from the previous basis and keeps every generated row and column.

    Attributes after a solve: ``rounds`` (HiGHS runs), ``rows`` / ``cols`` (generated obedience
    rows and ``y`` columns in the model), ``perturbed`` and ``face_lps`` (ends of the last ranges
    settled by a perturbed re-solve and by a dual-face LP: :meth:`ranges`).
    """

    def __init__(self, market: InfoDesignMarket):
        silence_banner()
        self.market = market
        m, n = market.m, market.n
        # no size check here: the model holds only what the generation adds (a few % of the dense rows
        # at |Ω| = |A| = 200); the dual-face fallback checks the full model's size when it is built
        # the model is built on π / s_π and v / s_v (:func:`_unit`, exact powers of two): every λ, μ,
        # value and range below is in those units until it leaves the class (``_sv``, ``_mu_unit``)
        self._sp, self._sv = _unit(market.pi), _unit(market.v)
        self._pi = np.ascontiguousarray(market.pi, float) / self._sp
        self._v = np.ascontiguousarray(market.v, float) / self._sv
        self._mu_unit = self._sv / self._sp
        # tolerances of the generation (obedience slack in π-units × mass; reduced cost in v-units):
        # VALUE_TOL relative to the payoff scale, above HiGHS' own feasibility tolerances (1e-7
        # absolute), so that generation cannot cycle on noise
        sc = _scale(market)
        self._row_scale = 1.0 if self._sp != 1.0 else sc
        self._cost_scale = 1.0 if self._sv != 1.0 else sc
        self._deficit = self._pi.max(axis=0)[None, :] - self._pi     # (m, n) ≥ 0: see DEFICIT_WEIGHT
        # the model starts with the n record-count rows Σ_a y(a, ω) = q(ω) and no column
        self._model = HighsModel(sp.csc_matrix((n, 0)), np.zeros(n), np.zeros(n), np.zeros(0), np.zeros(0),
                                 np.zeros(0), options={"simplex_strategy": _PRIMAL})
        self.h = self._model.h
        self._colid = np.full((m, n), -1, dtype=np.int64)     # model column of y(a, ω), −1 if not in K
        self._rowid = np.full((m, m), -1, dtype=np.int64)     # model row of obedience (a, a'), −1 if not in S
        self._col_a = np.zeros(0, dtype=np.int64)             # fee and type of each model column
        self._col_w = np.zeros(0, dtype=np.int64)
        self._row_a = np.zeros(0, dtype=np.int64)             # pair of each obedience row (row n + k)
        self._row_b = np.zeros(0, dtype=np.int64)
        self._rec = np.arange(n, dtype=np.int32)
        self._face = None
        self.rounds = 0
        self.face_lps = 0
        self.perturbed = 0

    # -- the restricted model ------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return int(self._row_a.size)

    @property
    def cols(self) -> int:
        return int(self._col_a.size)

    def _add_cols(self, a: np.ndarray, w: np.ndarray) -> None:
        """Add the columns ``y(a[i], w[i])``: entry 1 in record row ``w``, ``π(a,w) − π(b,w)`` in every
        obedience row ``(a, b)`` already in the model (assembled per fee, passed as CSC arrays)."""
        if a.size == 0:
            return
        k, first = a.size, self.cols
        pos = np.arange(k)
        r_i, c_i, v_i = [w], [pos], [np.ones(k)]
        for ai in np.unique(a):
            bs = np.flatnonzero(self._rowid[ai] >= 0)
            if bs.size:
                sel = pos[a == ai]
                blk = self._pi[ai, w[sel]][None, :] - self._pi[np.ix_(bs, w[sel])]      # (|bs|, |sel|)
                r_i.append(np.repeat(self._rowid[ai, bs], sel.size))
                c_i.append(np.tile(sel, bs.size))
                v_i.append(blk.ravel())
        C = sp.csc_matrix((np.concatenate(v_i), (np.concatenate(r_i), np.concatenate(c_i))),
                          shape=(self.market.n + self.rows, k))
        C.eliminate_zeros()
        st = self.h.addCols(k, self._v[a, w], np.zeros(k), np.full(k, highspy.kHighsInf), C.nnz,
                            C.indptr[:-1].astype(np.int32), C.indices.astype(np.int32), C.data)
        if st == highspy.HighsStatus.kError:  # pragma: no cover - HiGHS rejects only out-of-range data
            raise SolverFailed("HiGHS rejected generated columns of P_q")
        self._colid[a, w] = first + pos
        self._col_a, self._col_w = np.r_[self._col_a, a], np.r_[self._col_w, w]

    def _add_rows(self, a: np.ndarray, b: np.ndarray) -> None:
        """Add the obedience rows ``Σ_ω (π(a,ω) − π(b,ω)) y(a,ω) ≥ 0`` over the columns in ``K``
        (assembled per fee, passed as CSR arrays)."""
        if a.size == 0:
            return
        k, first = a.size, self.market.n + self.rows
        pos = np.arange(k)
        r_i, c_i, v_i = [], [], []
        for ai in np.unique(a):
            ws = np.flatnonzero(self._colid[ai] >= 0)
            sel = pos[a == ai]
            blk = self._pi[ai, ws][None, :] - self._pi[np.ix_(b[sel], ws)]           # (|sel|, |ws|)
            r_i.append(np.repeat(sel, ws.size))
            c_i.append(np.tile(self._colid[ai, ws], sel.size))
            v_i.append(blk.ravel())
        R = sp.csr_matrix((np.concatenate(v_i), (np.concatenate(r_i), np.concatenate(c_i))), shape=(k, self.cols))
        R.eliminate_zeros()
        st = self.h.addRows(k, np.zeros(k), np.full(k, highspy.kHighsInf), R.nnz,
                            R.indptr[:-1].astype(np.int32), R.indices.astype(np.int32), R.data)
        if st == highspy.HighsStatus.kError:  # pragma: no cover
            raise SolverFailed("HiGHS rejected generated obedience rows of P_q")
        self._rowid[a, b] = first + pos
        self._row_a, self._row_b = np.r_[self._row_a, a], np.r_[self._row_b, b]

    def _current(self):
        """``(y, λ, μ)`` of the restricted optimum, extended by zeros to the full LP."""
        m, n = self.market.m, self.market.n
        sol = self.h.getSolution()
        x = np.asarray(sol.col_value, float)
        y = np.zeros((m, n))
        y[self._col_a, self._col_w] = x
        rd = np.asarray(sol.row_dual, float)
        mu = np.zeros((m, m))
        if self.rows:
            mu[self._row_a, self._row_b] = np.clip(-rd[n:], 0.0, None)
        return y, rd[:n].copy(), mu

    def _reduced_costs(self, lam: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """``r(a,ω) = v(a,ω) − λ(ω) + Σ_{a'} μ(a,a')(π(a,ω) − π(a',ω))`` (m, n); ``≤ 0`` everywhere is
        dual feasibility of ``(λ, μ)`` for the full ``P_q``."""
        r = self._v - lam[None, :]
        act = np.flatnonzero(mu.any(axis=1))
        if act.size:             # μ has few nonzero rows: O(|rows| · m · n), not a dense m²n product
            M = sp.csr_matrix(mu[act])
            r[act] += M.sum(axis=1).A1[:, None] * self._pi[act] - M @ self._pi
        return r

    # -- solve ---------------------------------------------------------------------------------
    def solve(self, q, *, intervals: bool = False, time_limit=None) -> PlatformSolution:
        """``P_q`` at ``q`` (shape (n,), ``≥ 0``), warm-started from the previous solve.

        ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`) and Ctrl-C stop
        the generation: the best obedient mechanism known is returned with status
        ``time_limit``/``interrupted`` and the proven bound of :func:`relaxation_bound` (as
        :meth:`dm_opt.info_design.lp.PlatformLP.solve`).  ``intervals=True`` adds the ranges of
        ``∂V(q)`` (:meth:`ranges`); unfinished coordinates are NaN with a non-optimal status."""
        market = self.market
        q = market.database(q)
        dl = Deadline.of(time_limit)
        t0 = time.perf_counter()
        if self._model.busy(dl):
            return _partial_platform(market, q, Termination.TIME_LIMIT, None, t0)
        st, y, lam, mu = self._generate(q, dl)
        if st is not Termination.OPTIMAL:
            return _partial_platform(market, q, st, y, t0)
        row_tol, _ = self._tolerances(q)
        r = self._reduced_costs(lam, mu)
        y = np.clip(y, 0.0, None)
        value = float(np.sum(self._v * y))
        bound = float(q @ (lam + np.clip(r.max(axis=0), 0.0, None)))
        self.lam, self.mu, self.y, self._q = lam, mu, y, q
        if bound - value > row_tol:  # pragma: no cover - the generation only stops when they agree
            raise SolverFailed(f"P_q (generation): duality gap {bound - value:.3g} after convergence")
        # back to the market's units: V(q) and λ scale with v, μ with v / π
        return _finish_platform(self, market, q, float(np.sum(market.v * y)), y, lam * self._sv,
                                mu * self._mu_unit, intervals, dl, t0)

    def _tolerances(self, q: np.ndarray) -> tuple[float, float]:
        """``(row_tol, cost_tol)`` in the model's units: obedience slack (money × mass) and reduced
        cost (money) below which a row or column is not generated."""
        return VALUE_TOL * self._row_scale * max(1.0, float(np.sum(q))), VALUE_TOL * self._cost_scale

    def _generate(self, q: np.ndarray, dl: Deadline):
        """Grow and re-solve the restricted LP at ``q`` until the certificate of the module docstring
        holds; returns ``(status, y, λ, μ)`` (``y`` None when stopped before any solve)."""
        market = self.market
        m, n = market.m, market.n
        row_tol, cost_tol = self._tolerances(q)
        # the merchant's best fee under q for every type makes the restricted LP feasible
        a0 = int(np.flatnonzero(no_information(market, q).any(axis=1))[0]) if q.any() else 0
        want = np.zeros((m, n), bool)
        want[a0] = True
        want[np.argmax(self._v, axis=0), np.arange(n)] = True
        aa, ww = np.nonzero(want & (self._colid < 0))
        self._add_cols(aa, ww)
        self.h.changeRowsBounds(n, self._rec, q, q)
        self.h.setOptionValue("simplex_strategy", _DUAL if self.rounds else _PRIMAL)
        self.rounds_this = 0
        y = lam = mu = None
        while True:
            if self.rounds_this >= MAX_ROUNDS:  # pragma: no cover - numerical cycling
                raise SolverFailed(f"P_q (generation): no convergence in {MAX_ROUNDS} rounds")
            try:
                st = self._model.run(dl)
            except KeyboardInterrupt:
                st = Termination.INTERRUPTED
            self.rounds += 1
            self.rounds_this += 1
            if st in (Termination.TIME_LIMIT, Termination.INTERRUPTED):
                return Termination(st), y, lam, mu
            if st != Termination.OPTIMAL:
                raise SolverFailed(f"P_q (generation, highspy): restricted LP {st}")
            y, lam, mu = self._current()
            # obedience slacks of every pair: S[a, a'] = Σ_ω (π(a,ω) − π(a',ω)) y(a,ω)
            act = np.flatnonzero(y.any(axis=1))
            P = y[act] @ self._pi.T
            S = P[np.arange(act.size), act][:, None] - P
            S[self._rowid[act] >= 0] = np.inf
            bad = S < -row_tol
            if bad.any():
                ra, rb = self._pick(S, bad, ROWS_PER_FEE)
                self._add_rows(act[ra], rb)
                self.h.setOptionValue("simplex_strategy", _DUAL)
                continue
            r = self._reduced_costs(lam, mu)
            r[self._colid >= 0] = -np.inf
            good = r > cost_tol
            if good.any():
                score = r
                if DEFICIT_WEIGHT:
                    tot = mu.sum(axis=1)
                    if (tot > 0).any():
                        score = r - DEFICIT_WEIGHT * float(np.median(tot[tot > 0])) * self._deficit
                cw, ca = self._pick(-score.T, good.T, COLS_PER_TYPE)
                self._add_cols(ca, cw)
                self.h.setOptionValue("simplex_strategy", COLUMN_ROUND_STRATEGY)
                continue
            return Termination.OPTIMAL, y, lam, mu

    @staticmethod
    def _pick(S: np.ndarray, bad: np.ndarray, k: int):
        """Per row of ``S`` the (at most) ``k`` most negative entries among ``bad``: ``(rows, cols)``."""
        Sb = np.where(bad, S, np.inf)
        kk = min(k, S.shape[1])
        part = np.argpartition(Sb, kk - 1, axis=1)[:, :kk] if kk < S.shape[1] else np.tile(
            np.arange(S.shape[1]), (S.shape[0], 1))
        rows = np.repeat(np.arange(S.shape[0]), part.shape[1])
        cols = part.ravel()
        keep = bad[rows, cols]
        return rows[keep], cols[keep]

    # -- ranges of ∂V(q) -----------------------------------------------------------------------
    def dual_face_ranges(self, q, value, *, deadline=None):
        """``(lower, upper, points)``: :meth:`ranges` (the name :func:`_finish_platform` calls)."""
        return self.ranges(q, value, deadline=deadline)

    def ranges(self, q, value, *, deadline=None):
        """Per-coordinate ``min``/``max`` of ``λ(ω)`` over ``∂V(q)`` after :meth:`solve` at ``q``.

        Why HiGHS' ranging at the optimal basis gives exactly these numbers.  ``V`` is concave and
        piecewise linear, and ``min_{λ∈∂V(q)} λ(ω) = V'(q; e_ω)`` (one-sided derivative), ``max =
        −V'(q; −e_ω)`` (standard for concave functions; :mod:`dm_opt.info_design.lp` shows
        ``∂V(q)`` is the λ-projection of the optimal dual face).  Let ``B`` be the optimal basis of
        the restricted LP, ``(λ_B, μ_B)`` its dual and ``d = B⁻¹e_ω`` the change of the basic
        variables per unit of ``q(ω)`` (one solve with HiGHS' factorisation: ``getBasisSolve``).
        Along ``q + t·e_ω``, ``t ∈ [0, t̄]``, the basic solution ``y(t) = y + t·d`` keeps

        1. every variable of the restricted LP within its bounds for ``t̄`` up to the primal ratio
           test over the basic variables (HiGHS' ``getRanging`` of the record row gives the same
           ``t̄``, but ranges every row and column: ~1 s at |Ω| = |A| = 60);
        2. every obedience row *not* in the restricted model satisfied for ``t̄`` up to the ratio
           ``slack / (−G_r d)`` over those rows with ``G_r d < 0`` (a second ratio test, against
           the full payoff matrix: the restricted LP does not see those rows);
        3. complementary slackness with ``(λ_B, μ_B)``, which does not depend on ``t`` and is
           feasible for the *full* dual (the certificate of :meth:`solve`).

        So for ``t̄ > 0`` both stay optimal for the full ``P_{q + t e_ω}``, ``V`` is linear on the
        segment with slope ``λ_B(ω)``, and ``V'(q; e_ω) = λ_B(ω)`` exactly; the same with ``−d`` for
        ``−e_ω`` (only when ``q(ω) > 0``; where ``q(ω) = 0`` the upper end is ``+∞``).

        Degenerate cases: when a basic variable sits at its bound (or a row outside the model is
        tight) with the wrong sign of ``d``, ``t̄ = 0`` and the basis proves nothing — ``V`` may have
        a kink at ``q`` and ``∂V(q)`` be wider than ``λ_B``, or another optimal basis may prove the
        slope.  ``t̄`` below :data:`RANGING_MIN_STEP` × ``max(1, q(ω))`` (a pivot of ``d`` below
        :data:`RANGING_PIVOT_TOL` counts as zero) is treated as degenerate.  Fallback 1
        (:meth:`_perturbed`): re-solve at ``q ± t·e_ω`` for a small ``t`` (warm, a few pivots) and
        accept the new basis' ``λ(ω)`` when that basis is also primal feasible at ``q`` — then it is
        optimal on the whole segment, which is again exactly the one-sided derivative.  Fallback 2,
        for what is still open (a kink within ``t/10⁴`` of ``q``): the exact dual-face LP
        ``min ±λ(ω)`` over ``{(λ, μ) ∈ D : λ·q ≤ V(q) + tol}`` on the full model
        (:class:`dm_opt.info_design.lp.platform._DualFace`, built on first need; ``face_lps``
        counts them; slow for large dense models, but never wrong).  Returns ``(lower, upper, points)`` as
        :meth:`dm_opt.info_design.lp.PlatformLP.dual_face_ranges`.
        """
        market = self.market
        n = market.n
        q = np.asarray(q, float)
        lam = self.lam
        lower, upper = np.full(n, np.nan), np.full(n, np.nan)
        upper[q <= 0] = np.inf
        data = self._basis_data(self.y)
        if data is not None:
            for sign, res in ((1.0, lower), (-1.0, upper)):
                ok = self._step(data, sign) >= RANGING_MIN_STEP * np.maximum(1.0, q)
                if sign < 0:
                    ok &= q > 0
                res[ok] = lam[ok]
        pts = [lam.copy()]
        todo = ([(w, 1.0) for w in np.flatnonzero(np.isnan(lower))]
                + [(w, -1.0) for w in np.flatnonzero(np.isnan(upper))])
        self.perturbed = 0
        if todo:
            self._perturbed(q, todo, lower, upper, pts, Deadline.of(deadline))
        # back to the market's units (``value`` is in them): the dual-face LPs work on the market
        lower, upper, pts = lower * self._sv, upper * self._sv, [p * self._sv for p in pts]
        missing = np.isnan(lower) | np.isnan(upper)
        self.face_lps = 0
        if not missing.any():
            return lower, upper, np.unique(np.round(np.array(pts), 9), axis=0)
        if self._face is None:
            self._face = _DualFace(market)
        out = self._face.ranges(q, value, deadline, known=(lower, upper, pts))
        self.face_lps = getattr(self._face, "lps", 2 * int(missing.sum()))
        return out

    def _basis_data(self, y: np.ndarray, types=None):
        """At the current optimal basis: ``(D, val, lo, hi, blocks)`` with ``D[:, j] = B⁻¹e_ω`` for
        ``ω = types[j]`` (default every type; the change of the basic variables per unit of ``q(ω)``),
        their values and bounds (columns ``(k, 1)``), and per fee with a basic column the rows
        ``(a, b)`` outside the model as ``(G d, slack)``: ``G d`` (|types|, |rows|) their change per
        unit of each ``q(ω)``, ``slack`` their value at ``y``.  None without a valid basis."""
        h, n = self.h, self.market.n
        st, basic = h.getBasicVariables()
        if st != highspy.HighsStatus.kOk or not h.getInfo().basis_validity:  # pragma: no cover
            return None
        basic = np.asarray(basic)
        lp_, sol = h.getLp(), h.getSolution()
        isc = basic >= 0                      # a column, else row −1−index (HiGHS' logical: −activity)
        ci, ri = np.where(isc, basic, 0), np.where(isc, 0, -1 - basic)
        val = np.where(isc, np.asarray(sol.col_value)[ci], np.asarray(sol.row_value)[ri])[:, None]
        lo = np.where(isc, np.asarray(lp_.col_lower_)[ci], np.asarray(lp_.row_lower_)[ri])[:, None]
        hi = np.where(isc, np.asarray(lp_.col_upper_)[ci], np.asarray(lp_.row_upper_)[ri])[:, None]
        types = np.arange(n) if types is None else np.asarray(types)
        D = np.empty((basic.size, types.size))
        e = np.zeros(lp_.num_row_)
        for j, w in enumerate(types):
            e[w] = 1.0
            st, d = h.getBasisSolve(e)
            e[w] = 0.0
            D[:, j] = np.asarray(d) if st == highspy.HighsStatus.kOk else np.nan
        D *= np.where(isc, 1.0, -1.0)[:, None]
        # G_(a,b) d = Σ_{basic (a,ω')} d(a,ω') (π(a,ω') − π(b,ω')) for the rows (a, b) outside the model
        bc = ci[isc]
        ba, bw, Dc = self._col_a[bc], self._col_w[bc], D[isc]
        P = y @ self._pi.T
        slack = np.diag(P)[:, None] - P
        blocks = []
        for a in np.unique(ba):
            out = np.flatnonzero(self._rowid[a] < 0)
            out = out[out != a]
            if out.size:
                sel = ba == a
                g = self._pi[a, bw[sel]][:, None] - self._pi[np.ix_(out, bw[sel])].T     # (|sel|, |out|)
                blocks.append((Dc[sel].T @ g, slack[a, out]))
        return D, val, lo, hi, blocks

    @staticmethod
    def _step(data, sign: float) -> np.ndarray:
        """``t̄`` (n,): how far ``q + t·sign·e_ω`` keeps the basis primal feasible, the rows outside
        the model included (the two ratio tests of :meth:`ranges`)."""
        D, val, lo, hi, blocks = data
        dd = sign * D
        with np.errstate(divide="ignore", invalid="ignore"):
            lim = np.where(dd > RANGING_PIVOT_TOL, (hi - val) / dd,
                           np.where(dd < -RANGING_PIVOT_TOL, (lo - val) / dd, np.inf))
            tbar = lim.min(axis=0, initial=np.inf)
            for Gd, sl in blocks:
                g = sign * Gd
                tbar = np.minimum(tbar, np.where(g < -RANGING_PIVOT_TOL, np.maximum(sl, 0.0)[None, :] / -g,
                                                 np.inf).min(axis=1, initial=np.inf))
        tbar[np.isnan(D).any(axis=0)] = 0.0
        return tbar

    def _perturbed(self, q, todo, lower, upper, pts, dl: Deadline) -> None:
        """The degenerate ends of :meth:`ranges`: re-solve (warm, with generation) at
        ``q1 = q + sign·t·e_ω`` and accept ``λ_1(ω)`` when the new optimal basis, moved back to ``q``
        (``x_B − sign·t·B⁻¹e_ω``), is still primal feasible for the full LP within the tolerance:
        then one basis is optimal at both ends, so ``V`` is linear on ``[q, q1]`` with slope
        ``λ_1(ω)``.  ``t`` starts at :data:`PERTURB_STEP` × ``max(1, Σq)`` and is divided by 100 up
        to :data:`PERTURB_TRIES` times (a kink of ``V`` closer than ``t`` to ``q``); the model is
        re-solved at ``q`` afterwards.  What stays unproven is left NaN (the dual-face LPs)."""
        scale = self._row_scale
        saved = (self.lam, self.mu, self.y)
        for w, sign in todo:
            res = lower if sign > 0 else upper
            t = PERTURB_STEP * max(1.0, float(np.sum(q)))
            if sign < 0:
                t = min(t, 0.5 * q[w])
            for _ in range(PERTURB_TRIES):
                if dl.expired():
                    break
                q1 = q.copy()
                q1[w] += sign * t
                st, y1, lam1, _mu = self._generate(q1, dl)
                if st is not Termination.OPTIMAL:
                    break
                data = self._basis_data(y1, [w])       # B⁻¹e_ω of this type only
                if data is None:  # pragma: no cover
                    break
                D, val, lo, hi, blocks = data
                # feasible at q up to PERTURB_REL_TOL·t: a basic variable moving back by t·|d| with
                # |d| above PERTURB_REL_TOL (a pivot, not noise) is caught however small t is
                back = val[:, 0] - sign * t * D[:, 0]
                ptol = PERTURB_REL_TOL * t
                ok = np.all(back >= lo[:, 0] - ptol) and np.all(back <= hi[:, 0] + ptol)
                ok = ok and all(np.all(sl - sign * t * Gd[0] >= -ptol * scale) for Gd, sl in blocks)
                if ok:
                    res[w] = lam1[w]
                    pts.append(lam1.copy())
                    self.perturbed += 1
                    break
                t *= 1e-2
        if todo:
            self._generate(q, dl)
            self.lam, self.mu, self.y = saved

def general_generation(market: InfoDesignMarket) -> bool:
    """Whether ``P_q`` of ``market`` is solved by :class:`GeneralPlatformHighs` by default
    (``lp_model="auto"`` of :func:`dm_opt.info_design.lp.solve_platform`): general payoffs whose
    obedience rows are not in the suffix-sum form (``π`` not piecewise constant in ``ω``) and have
    more than :data:`GENERATION_MIN_NNZ` dense nonzeros."""
    m, n = market.m, market.n
    return market.is_general and not _threshold_form(market) and m * (m - 1) * n > GENERATION_MIN_NNZ


__all__ = ["GeneralPlatformHighs", "general_generation", "ROWS_PER_FEE", "COLS_PER_TYPE", "DEFICIT_WEIGHT",
           "COLUMN_ROUND_STRATEGY", "GENERATION_MIN_NNZ", "MAX_ROUNDS"]
