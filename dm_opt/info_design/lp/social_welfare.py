"""``W(q)``: the consumers' best mechanism on the platform's optimal face of ``P_q`` (GLP slides,
"social benefit"), and :func:`platform_report` (``P_q`` and ``W(q)`` from one solve)."""

from __future__ import annotations

import dataclasses

import highspy
import numpy as np
import scipy.sparse as sp

from dm_opt.core.errors import LimitExceeded, SolverFailed
from dm_opt.core.limits import Deadline, Stopped, check_time_limit
from dm_opt.core.result import Termination, frozen_array
from dm_opt.info_design import bbm
from dm_opt.info_design.common import (
    CS_TOL,
    HIGHS_LP_BYTES,
    VALUE_TOL,
    HighsModel,
    _check_size,
    _pq_blocks,
    _pq_nnz,
    _scale,
    _threshold_form,
    mechanism_from_y,
    reduced_costs,
)
from dm_opt.info_design.lp.highs_lp import ROWS_PER_FEE, GeneralPlatformHighs
from dm_opt.info_design.lp.platform import PlatformHighs, PlatformLP, _platform_method, platform_model
from dm_opt.info_design.market import InfoDesignMarket
from dm_opt.info_design.results import PlatformSolution, WelfareSolution


def _run_face(model, dl) -> None:
    """Solve a face LP of ``W(q)`` to optimality, or raise :class:`Stopped` (time limit, Ctrl-C) /
    :class:`SolverFailed` (any other status)."""
    try:
        st = model.run(dl)
    except KeyboardInterrupt:
        st = "interrupted"
    if st in ("time_limit", "interrupted"):
        raise Stopped(Termination(st), f"{'interrupted' if st == 'interrupted' else dl.message()} "
                      f"while solving the face LP of W(q)")
    if st != "optimal":  # pragma: no cover
        raise SolverFailed(f"W(q): status {st!r}")


class FaceLP:
    """``max Σ u·y`` over the optimal face of ``P_q``.

    The face is written exactly by complementary slackness with one optimal
    dual ``(λ, μ)`` of ``P_q`` (any optimal dual characterises the whole primal
    optimal set): ``y(a,ω) = 0`` where the reduced cost
    ``λ(ω) − v(a,ω) − Σ_a' μ(a,a')(π(a,ω) − π(a',ω))`` exceeds ``CS_TOL``, and
    obedience ``(a,a')`` tight where ``μ(a,a') > CS_TOL``.  (A relaxed face
    ``Σ v y ≥ V(q) − ε`` would let ``Σ u y`` grow by ``O(ε)`` times an
    arbitrarily steep trade-off slope.)  The face LP is ``P_q``'s own rows
    (:func:`_pq_blocks`, suffix-sum obedience for the slides' merchant) in one live
    highspy model: the masks become column and row bounds, so the time limit
    covers the whole solve and the memory stays that of ``P_q``.  ``base`` (default a
    :class:`PlatformLP`) solves ``P_q`` when no solution is given.
    """

    def __init__(self, market: InfoDesignMarket, base=None):
        self.market = market
        self._base = base
        m, n = market.m, market.n
        compact = _threshold_form(market)
        _check_size(market, "W(q) face LP", _pq_nnz(market, compact), HIGHS_LP_BYTES)
        Ey, AT, Gy, GT, pairs = _pq_blocks(market, compact)
        n_eq, R, kT = Ey.shape[0], Gy.shape[0], AT.shape[1]
        A = sp.bmat([[Ey, AT], [Gy, GT]], format="csc")
        inf = np.inf
        self._model = HighsModel(
            A, np.zeros(n_eq + R), np.r_[np.zeros(n_eq), np.full(R, inf)],
            np.r_[market.u.ravel(), np.zeros(kT)], np.r_[np.zeros(m * n), np.full(kT, -inf)],
            np.full(m * n + kT, inf))
        self._pairs = pairs
        self._n_eq, self._R = n_eq, R

    @property
    def base(self):
        """The ``P_q`` model used when no solution is given (built on first use)."""
        if self._base is None:
            self._base = PlatformLP(self.market)
        return self._base

    def reduced_costs(self, sol: "PlatformSolution") -> np.ndarray:
        return reduced_costs(self.market, sol)

    def solve(self, q, solution: "PlatformSolution | None" = None, *,
              time_limit=None) -> tuple["PlatformSolution", np.ndarray]:
        """``(P_q solution, y)`` with ``y`` consumer-best on the optimal face; pass the
        ``solution`` of ``self.base`` at this ``q`` when it is already known (saves a solve).
        ``time_limit`` (seconds or a shared Deadline): W(q) has no partial answer, so a
        stop raises :class:`~dm_opt.core.errors.LimitExceeded` (Ctrl-C: ``KeyboardInterrupt``)."""
        try:
            return self._solve(q, solution, time_limit)
        except Stopped as stop:
            if stop.status is Termination.INTERRUPTED:
                raise KeyboardInterrupt from None
            raise LimitExceeded(f"W(q): {stop.message}; W(q) has no partial answer") from None

    def _face_costs(self, sol: "PlatformSolution") -> tuple[np.ndarray, float]:
        """``(reduced costs, tolerance)`` of ``P_q``'s columns at ``sol``: the face is where they are ≤ tol.
        Raises :class:`Stopped` when ``P_q`` was not solved (the face is then unknown)."""
        if sol.status is not Termination.OPTIMAL and not np.all(np.isfinite(sol.supergradient)):
            raise Stopped(sol.status, f"P_q was not solved ({sol.status}); the optimal face is unknown")
        rc = self.reduced_costs(sol)
        tol = CS_TOL * _scale(self.market)
        if rc.min() < -1e3 * tol:  # pragma: no cover - would mean an inaccurate dual
            raise SolverFailed(f"P_q dual infeasible by {-rc.min():.3g}")
        return rc, tol

    def _solve(self, q, solution, deadline):
        """:meth:`solve` raising :class:`~dm_opt.core.limits.Stopped` on a stop (internal)."""
        dl = Deadline.of(deadline)
        market = self.market
        m, n = market.m, market.n
        q = market.database(q)
        if solution is None:
            solution = (self.base.solve(q, time_limit=dl) if dl.end is not None else self.base.solve(q))
        sol = solution
        rc, tol = self._face_costs(sol)
        if self._model.busy(dl):
            raise Stopped(Termination.TIME_LIMIT, dl.message() + " (the previous face LP is still stopping)")
        h = self._model.h
        h.changeRowsBounds(n, np.arange(n, dtype=np.int32), q, q)
        upper = np.where(rc.ravel() > tol, 0.0, np.inf)
        h.changeColsBounds(m * n, np.arange(m * n, dtype=np.int32), np.zeros(m * n), upper)
        if self._R:
            mu = np.asarray(sol.obedience_duals)[self._pairs[:, 0], self._pairs[:, 1]]
            hi = np.where(mu > tol, 0.0, np.inf)
            rows = np.arange(self._n_eq, self._n_eq + self._R, dtype=np.int32)
            h.changeRowsBounds(self._R, rows, np.zeros(self._R), hi)
        _run_face(self._model, dl)
        return sol, np.clip(self._model.x[: m * n].reshape(m, n), 0.0, None)


class SupportFaceLP(FaceLP):
    """:class:`FaceLP` built per solve on the face's support only, for dense general payoffs.

    Complementary slackness fixes ``y(a,ω) = 0`` wherever the reduced cost exceeds ``CS_TOL``, so
    the face LP only has the columns ``K = {(a,ω) : rc(a,ω) ≤ CS_TOL}`` (a few per type at an
    optimum) and, of the obedience rows, those of fees with a column in ``K``, over ``K``'s
    columns: ``Σ_{ω:(a,ω)∈K} (π(a,ω) − π(b,ω)) y(a,ω) ≥ 0`` (``= 0`` where ``μ(a,b) > CS_TOL``).
    The other rows read ``0 ≥ 0`` (or ``0 = 0``) on the face, so this is the same LP as
    :class:`FaceLP`'s.  Its obedience rows are generated as in
    :class:`~dm_opt.info_design.lp.highs_lp.GeneralPlatformHighs`: the tight ones first, then per
    round the most violated of the current optimum (all ``|A|²`` slacks from one product ``y πᵀ``),
    until none is violated by more than ``VALUE_TOL`` (relative): the optimum of a relaxation that
    is feasible for the full face LP is its optimum.  Needs the solution of ``P_q`` (no ``base``)."""

    def __init__(self, market: InfoDesignMarket):
        self.market = market
        self._base = None

    @property
    def base(self):  # pragma: no cover - platform_report always passes the solution
        raise SolverFailed("SupportFaceLP needs the P_q solution (solution=...)")

    def _solve(self, q, solution, deadline):
        dl = Deadline.of(deadline)
        market = self.market
        m, n = market.m, market.n
        q = market.database(q)
        sol = solution
        rc, tol = self._face_costs(sol)
        ka, kw = np.nonzero(rc <= tol)                  # the face's columns, fee-major
        k = ka.size
        pi = np.asarray(market.pi, float)
        mu = np.asarray(sol.obedience_duals)
        col = np.full((m, n), -1, dtype=np.int64)
        col[ka, kw] = np.arange(k)
        _check_size(market, "W(q) face LP (support)", m * k, HIGHS_LP_BYTES)     # ≤ k + (m − 1)·k nonzeros
        # record rows Σ_a y(a, ω) = q(ω) over the face's columns; obedience rows are generated below
        A = sp.csc_matrix((np.ones(k), (kw, np.arange(k))), shape=(n, k))
        model = HighsModel(A, q, q, np.asarray(market.u, float)[ka, kw], np.zeros(k), np.full(k, np.inf),
                           options={"simplex_strategy": 1})
        h = model.h
        have = np.zeros((m, m), bool)
        np.fill_diagonal(have, True)
        row_tol = VALUE_TOL * _scale(market) * max(1.0, float(np.sum(q)))
        # start with the rows the face makes tight (μ > CS_TOL: equalities), then add violated ones
        ta, tb = np.nonzero((mu > tol) & (col >= 0).any(axis=1)[:, None] & ~have)
        while True:
            if ta.size:
                self._add_rows(h, pi, col, ta, tb, mu[ta, tb] > tol)
                have[ta, tb] = True
            _run_face(model, dl)
            y = np.zeros((m, n))
            y[ka, kw] = np.clip(model.x, 0.0, None)
            # every obedience slack of the face's fees in one product; stop when none is violated
            act = np.flatnonzero(y.any(axis=1))
            P = y[act] @ pi.T
            S = P[np.arange(act.size), act][:, None] - P
            S[have[act]] = np.inf
            bad = S < -row_tol
            if not bad.any():
                return sol, y
            ra, tb = GeneralPlatformHighs._pick(S, bad, ROWS_PER_FEE)      # the most violated per fee
            ta = act[ra]

    @staticmethod
    def _add_rows(h, pi, col, a, b, tight):
        """Obedience rows ``Σ_{ω:(a,ω)∈K} (π(a,ω) − π(b,ω)) y(a,ω) ≥ 0`` (``= 0`` where ``tight``)."""
        r_i, c_i, v_i = [], [], []
        for i, (ai, bi) in enumerate(zip(a, b)):
            ws = np.flatnonzero(col[ai] >= 0)
            r_i.append(np.full(ws.size, i))
            c_i.append(col[ai, ws])
            v_i.append(pi[ai, ws] - pi[bi, ws])
        R = sp.csr_matrix((np.concatenate(v_i), (np.concatenate(r_i), np.concatenate(c_i))),
                          shape=(a.size, int(col.max()) + 1))
        st = h.addRows(a.size, np.zeros(a.size), np.where(tight, 0.0, highspy.kHighsInf), R.nnz,
                       R.indptr[:-1].astype(np.int32), R.indices.astype(np.int32), R.data)
        if st == highspy.HighsStatus.kError:  # pragma: no cover
            raise SolverFailed("HiGHS rejected the obedience rows of W(q)'s face LP")


def welfare(market: InfoDesignMarket, q, *, face: FaceLP | None = None, method: str = "auto",
            solution: PlatformSolution | None = None, time_limit=None) -> WelfareSolution:
    """``W(q)``: solve ``P_q``, then maximise ``Σ u y`` over its optimal face (:class:`FaceLP`);
    ``method`` as in :func:`solve_platform` (a given ``face`` means the LP).  ``solution``:
    an optimal solution of ``face.base`` at ``q`` already computed (its duals define the face).
    ``time_limit`` (seconds or a shared Deadline; the closed form needs none): W(q) has no
    partial answer, so a stop raises :class:`~dm_opt.core.errors.LimitExceeded`."""
    try:
        return _welfare(market, q, face=face, method=method, solution=solution, deadline=time_limit)
    except Stopped as stop:
        if stop.status is Termination.INTERRUPTED:
            raise KeyboardInterrupt from None
        raise LimitExceeded(f"W(q): {stop.message}; W(q) has no partial answer") from None


def _welfare(market, q, *, face=None, method="auto", solution=None, deadline=None) -> WelfareSolution:
    """:func:`welfare` raising :class:`~dm_opt.core.limits.Stopped` on a stop (internal)."""
    check_time_limit(deadline)
    if face is None and _platform_method(market, method) == "bbm":
        return bbm._welfare(market, q, Deadline.of(deadline))
    q = market.database(q)
    if not np.any(q > 0):                         # nobody in the database: W(0) = V(0) = 0
        y = np.zeros((market.m, market.n))
        x = mechanism_from_y(market, y, q)
        return WelfareSolution(frozen_array(q), 0.0, 0.0, frozen_array(y), frozen_array(x),
                               frozen_array(market.consumer_utility(x)))
    dl = Deadline.of(deadline)
    if face is None:
        base = PlatformHighs(market) if solution is None else None
        if dl.expired():
            raise Stopped(Termination.TIME_LIMIT, dl.message() + " before W(q)")
        face = FaceLP(market, base)
    sol, y = face._solve(q, solution, dl)
    if sol.status is not Termination.OPTIMAL and not np.all(np.isfinite(sol.supergradient)):  # pragma: no cover
        raise Stopped(sol.status, "P_q was not solved")
    x = mechanism_from_y(market, y, q)
    w = sol.value + float(np.sum(market.u * y))
    return WelfareSolution(frozen_array(q), w, sol.value, frozen_array(y), frozen_array(x),
                           frozen_array(market.consumer_utility(x)))



def platform_report(market: InfoDesignMarket, q, *, method: str = "auto", intervals: bool = True,
                    time_limit=None) -> tuple[PlatformSolution, "WelfareSolution | None"]:
    """``P_q`` and ``W(q)`` together (``dm-opt solve --problem platform``): one ``P_q`` solve,
    whose duals define ``W(q)``'s face (LP path), under one ``time_limit``.

    Returns ``(solution, welfare)``; ``welfare`` is None when it was not computed (``P_q``
    or W(q)'s face LP stopped), and then ``solution.status`` is not optimal and
    ``solution.message`` says what is missing.
    """
    pm = _platform_method(market, method)
    dl = Deadline.of(time_limit)
    if pm == "bbm":
        sol = bbm.platform(market, q, intervals=intervals, time_limit=dl)
        if sol.status is not Termination.OPTIMAL:
            return sol, None
        y = np.asarray(sol.y)      # consumer-best on the optimal face: W(q) from the same mechanism
        return sol, WelfareSolution(sol.q, sol.value + float(np.sum(market.u * y)), sol.value, sol.y, sol.x,
                                    sol.consumer_utility)
    # the same model choice as solve_platform: row-and-column generation for large dense general payoffs
    P = platform_model(market)
    sol = P.solve(q, intervals=intervals, time_limit=dl)
    if not np.all(np.isfinite(sol.supergradient)):      # P_q itself stopped: no face, no W(q)
        return sol, None
    # the generation model never holds the full rows: W(q)'s face LP is then built on its support only
    face = SupportFaceLP(market) if isinstance(P, GeneralPlatformHighs) else FaceLP(market, P)
    try:
        w = _welfare(market, q, face=face, solution=sol, deadline=dl if dl.end is not None else None)
    except Stopped as stop:
        note = f"W(q) not computed ({stop.message})"
        status = sol.status if sol.status is not Termination.OPTIMAL else stop.status
        return dataclasses.replace(sol, status=status,
                                   message="; ".join(x for x in (sol.message, note) if x)), None
    except KeyboardInterrupt:
        return dataclasses.replace(sol, status=Termination.INTERRUPTED,
                                   message="; ".join(x for x in (sol.message, "W(q) not computed (interrupted)")
                                                     if x)), None
    return sol, w


__all__ = ["FaceLP", "SupportFaceLP", "welfare", "platform_report"]
