"""Constrained efficiency (GLP Definition "constrained efficient"): ``W°`` and ``(q°, x°)`` by
one LP per piece of ``V`` (:class:`PieceLP`), or by the KKT MILP of ``P_q``
(:func:`constrained_efficiency_milp`); the closed form when it applies."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from dm_opt.core.errors import ProblemError, SolverFailed
from dm_opt.core.limits import Deadline, Stopped
from dm_opt.core.result import Termination, frozen_array, relative_gap
from dm_opt.info_design import bbm
from dm_opt.info_design.common import (
    HIGHS_MILP_BYTES,
    PIECES_MAX_N,
    VALUE_TOL,
    HighsModel,
    _check_size,
    _pq_blocks,
    _pq_nnz,
    _scale,
    _threshold_form,
    mechanism_from_y,
    planner_bound,
)
from dm_opt.info_design.lp._cvxpy import _cp, _solve, _stopped_status
from dm_opt.info_design.lp.pieces import value_pieces
from dm_opt.info_design.lp.platform import PlatformLP
from dm_opt.info_design.lp.social_welfare import _welfare
from dm_opt.info_design.market import InfoDesignMarket
from dm_opt.info_design.results import EfficiencyResult, ValuePieces


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

    def solve(self, lam, time_limit=None):
        """``(value, q, y, P)`` of the piece LP, ``None`` if infeasible; raises
        :class:`~dm_opt.core.limits.Stopped` when ``time_limit`` (seconds or a shared Deadline) runs out."""
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


def constrained_efficiency(market: InfoDesignMarket, *, method: str = "auto",
                           pieces: ValuePieces | None = None, time_limit=None) -> EfficiencyResult:
    """Exact ``W°`` and a constrained-efficient allocation ``(q°, x°)``.

    ``method="bbm"`` (auto whenever it applies: slides' payoffs, positive
    types, ``Ω ⊆ A``; any ``|Ω|``): the closed form of
    :func:`dm_opt.info_design.bbm.constrained_efficiency` — exact, one small LP.
    ``method="pieces"`` (auto otherwise for ``|Ω| ≤`` :data:`PIECES_MAX_N`, or
    when ``pieces`` is given): one LP per piece of V (module docstring) —
    exact.  ``method="milp"``: the KKT reformulation in
    :func:`constrained_efficiency_milp`.  ``time_limit`` (seconds or a shared
    :class:`~dm_opt.core.limits.Deadline`) and Ctrl-C: the MILP and the piece method
    return the best allocation found (no trade if none) with a proven bound and
    gap and status ``time_limit``/``interrupted``; the closed form needs no limit.
    """
    if method == "auto":
        if pieces is None and bbm.applies(market):
            method = "bbm"
        else:
            method = "pieces" if market.n <= PIECES_MAX_N or pieces is not None else "milp"
    dl = Deadline.of(time_limit)
    if method == "bbm":
        return bbm.constrained_efficiency(market, time_limit=dl)
    if method == "milp":
        return constrained_efficiency_milp(market, time_limit=dl)
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
                sols.append(lp.solve(lam, time_limit=dl))
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
    allocs = tuple((frozen_array(sols[j][1]), frozen_array(mechanism_from_y(market, sols[j][2], sols[j][1])))
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
        q=frozen_array(q), x=frozen_array(x), y=frozen_array(y), platform_value=float(np.sum(market.v * y)),
        consumer_utility=frozen_array(market.consumer_utility(x)), pieces=pieces.gradients,
        optimal_pieces=winners, allocations=allocs, seconds=time.perf_counter() - t0,
        message=msg, piece_values=frozen_array(vals))


#: Default bound on the KKT multipliers in the MILP, × payoff scale.
MILP_DUAL_BOUND = 100.0
#: Relative MIP gap at which HiGHS may stop and call the MILP optimal.
MILP_REL_GAP = 1e-9


def _milp_nnz(market: InfoDesignMarket, compact: bool) -> int:
    """Nonzeros plus columns of the KKT MILP of :func:`constrained_efficiency_milp` (upper estimate)."""
    m, n = market.m, market.n
    mn, R = m * n, m * (m - 1)
    pq = _pq_nnz(market, compact)
    # P_q rows, their transposes (stationarity), slacks and the big-M rows, q, z, w, μ, λ columns
    return 2 * pq + 8 * mn + 6 * R + 2 * n + (2 * m * (n + 1) if compact else 0)


def constrained_efficiency_milp(market: InfoDesignMarket, *, dual_bound: float | None = None,
                                time_limit=None, compact: bool | None = None) -> EfficiencyResult:
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
    is HiGHS' MILP bound for the bounded-dual formulation (after a stop the smaller
    of it and the proven :func:`planner_bound`).  The tests compare this method with
    the exact piece method.

    For the slides' merchant (``compact``, the default there) ``P_q`` is written with
    the suffix sums of :class:`PlatformLP` (:func:`_pq_blocks`): the KKT system of that
    equivalent LP has the same ``(q, y, λ, μ)`` solutions (its extra duals are
    ``ν(a,ω) = Σ_a' μ(a,a')(π(a,ω) − π(a',ω))``) with ``O(|A|·|Ω| + |A|²)`` nonzeros
    instead of ``|A|²|Ω|``.  The model is built directly in highspy (no cvxpy
    compilation), its size is checked against :data:`dm_opt.core.limits.MEMORY_BUDGET`
    first (:class:`~dm_opt.core.errors.LimitExceeded` when it does not fit), and
    ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`) covers the
    build, the MILP and the re-evaluation: a stopped run returns the best re-evaluated
    allocation (no trade if none could be re-evaluated in time) with status
    ``time_limit``/``interrupted`` and a ``message`` saying what is missing.
    """
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    m, n = market.m, market.n
    scale = _scale(market)
    B = (MILP_DUAL_BOUND if dual_bound is None else float(dual_bound)) * scale
    if compact is None:
        compact = _threshold_form(market)
    _check_size(market, "KKT MILP of constrained efficiency", _milp_nnz(market, compact), HIGHS_MILP_BYTES)
    model = None
    status, message = Termination.OPTIMAL, ""
    try:
        dl.check()
        model, layout = _efficiency_milp_model(market, compact, B)
        dl.check()
        st = model.run(dl)
    except Stopped as stop:
        st = str(stop.status)
    except KeyboardInterrupt:
        st = "interrupted"
    build_solve = time.perf_counter() - t0
    if st not in ("optimal", "time_limit", "interrupted"):
        raise SolverFailed(f"efficiency MILP: HiGHS status {st!r}")
    if st != "optimal":
        status = Termination(st)
        message = f"MILP stopped ({'interrupted' if st == 'interrupted' else dl.message()})"
    qv = np.zeros(n)
    mip_bound = np.inf
    if model is not None and st in ("optimal", "time_limit", "interrupted"):
        mip_bound = model.mip_bound
        if model.has_solution:
            qv = np.clip(model.x[layout["q"]], 0.0, market.prior)
    qv[qv < 1e-12] = 0.0
    # exact re-evaluation of the allocation: best x on the optimal face of P_q° (no trade is
    # always bilevel-feasible, welfare 0, when there is no incumbent or no time to re-evaluate)
    try:
        ws = _welfare(market, qv, deadline=dl if dl.end is not None else None)
    except Stopped as stop:
        if status is Termination.OPTIMAL or stop.status is Termination.INTERRUPTED:
            status = stop.status
        message = "; ".join(x for x in (message, f"the MILP's allocation was not re-evaluated ({stop.message}): "
                                        "no trade reported instead") if x)
        qv = np.zeros(n)
        ws = _welfare(market, qv)
    except KeyboardInterrupt:
        status = Termination.INTERRUPTED
        message = "; ".join(x for x in (message, "interrupted while re-evaluating the MILP's allocation: "
                                        "no trade reported instead") if x)
        qv = np.zeros(n)
        ws = _welfare(market, qv)
    value = ws.value - market.reservation * float(qv.sum())
    if status is Termination.OPTIMAL:
        bound = max(mip_bound, value)
        tol = VALUE_TOL * scale * 10 * max(1.0, float(market.prior.sum()))
        if bound - value > tol + MILP_REL_GAP * abs(bound):
            # the MILP's allocation re-evaluates below its own bound: not a proven optimum
            status = Termination.ERROR
            message = (f"the MILP's allocation re-evaluates to {value:.10g}, below the MILP bound {bound:.10g} "
                       f"by more than the tolerance {tol:.1e}: not proven optimal")
    else:
        bound = max(min(mip_bound, planner_bound(market)), value)
        message += ("; bound: " + ("the MILP's dual bound" if mip_bound <= planner_bound(market)
                                   else "planner_bound (obedience dropped)"))
    gap = relative_gap(value, bound)
    return EfficiencyResult(
        status=status, method="milp", welfare=value, bound=bound, gap=gap,
        q=frozen_array(qv), x=ws.x, y=ws.y, platform_value=ws.platform_value,
        consumer_utility=ws.consumer_utility, pieces=frozen_array(np.zeros((0, n))), optimal_pieces=(),
        allocations=((frozen_array(qv), ws.x),), seconds=time.perf_counter() - t0,
        message="; ".join(x for x in (
            f"KKT MILP with dual bound B = {B:g} ({m * n + m * (m - 1)} binaries, "
            f"{'suffix-sum' if compact else 'dense'} obedience rows, {build_solve:.2f}s)", message) if x))


def _efficiency_milp_model(market: InfoDesignMarket, compact: bool, B: float):
    """The KKT MILP of :func:`constrained_efficiency_milp` as a :class:`~dm_opt.info_design.common.HighsModel`;
    returns ``(model, layout)`` with ``layout[name]`` the column slice of each block.

    Columns ``q | y | T | π = (λ, ν) | μ | s | rc | z | w`` and rows::

        Ey y + AT T − [I; 0] q = 0          (record counts, suffix-sum definitions)
        Gy y + GT T − s = 0,  s + M_o w ≤ M_o,  0 ≤ s          (obedience and its CS)
        y − q̄ z ≤ 0
        Ey'π − Gy'μ − rc = v,  rc + M_rc z ≤ M_rc,  0 ≤ rc    (dual feasibility and CS)
        AT'π − GT'μ = 0                     (stationarity in the free T)
        μ − B w ≤ 0
    """
    m, n = market.m, market.n
    mn = m * n
    Ey, AT, Gy, GT, pairs = _pq_blocks(market, compact)
    n_eq, R, kT = Ey.shape[0], Gy.shape[0], AT.shape[1]
    # |π(a,ω) − π(a',ω)| summed over ω (weighted by q̄) and over a', one fee at a time
    M_o = np.zeros(R)
    S_abs = np.zeros((m, n))
    for a in range(m):
        D = np.abs(market.pi[a][None, :] - market.pi)          # (m, n), row a is zero
        S_abs[a] = D.sum(axis=0)
        sel = pairs[:, 0] == a
        M_o[sel] = (D @ market.prior)[pairs[sel, 1]]
    M_rc = B + np.abs(market.v.ravel()) + B * S_abs.ravel()
    qbar_flat = np.tile(market.prior, m)
    I_n = sp.vstack([sp.identity(n, format="csr"), sp.csr_matrix((n_eq - n, n))], format="csr")
    Imn, IR = sp.identity(mn, format="csr"), sp.identity(R, format="csr")
    # column blocks: q, y, T, pi, mu, s, rc, z, w
    sizes = [n, mn, kT, n_eq, R, R, mn, mn, R]
    names = ["q", "y", "T", "pi", "mu", "s", "rc", "z", "w"]
    Z = None
    rows = [
        [-I_n, Ey, AT, Z, Z, Z, Z, Z, Z],
        [Z, Gy, GT, Z, Z, -IR, Z, Z, Z],
        [Z, Z, Z, Z, Z, IR, Z, Z, sp.diags(M_o, format="csr")],
        [Z, Imn, Z, Z, Z, Z, Z, -sp.diags(qbar_flat, format="csr"), Z],
        [Z, Z, Z, Ey.T.tocsr(), -Gy.T.tocsr(), Z, -Imn, Z, Z],
        [Z, Z, Z, Z, Z, Z, Imn, sp.diags(M_rc, format="csr"), Z],
        [Z, Z, Z, AT.T.tocsr(), -GT.T.tocsr(), Z, Z, Z, Z],
        [Z, Z, Z, Z, IR, Z, Z, Z, -B * IR],
    ]
    # sp.bmat needs each block row/column to have a known size: give empty blocks explicitly
    row_sizes = [n_eq, R, R, mn, mn, mn, kT, R]
    blocks = [[b if b is not None else sp.csr_matrix((row_sizes[i], sizes[j])) for j, b in enumerate(r)]
              for i, r in enumerate(rows)]
    A = sp.bmat(blocks, format="csc")
    inf = np.inf
    row_lo = np.r_[np.zeros(n_eq), np.zeros(R), np.full(R, -inf), np.full(mn, -inf), market.v.ravel(),
                   np.full(mn, -inf), np.zeros(kT), np.full(R, -inf)]
    row_hi = np.r_[np.zeros(n_eq), np.zeros(R), M_o, np.zeros(mn), market.v.ravel(), M_rc, np.zeros(kT),
                   np.zeros(R)]
    col_lo = np.r_[np.zeros(n), np.zeros(mn), np.full(kT, -inf), np.full(n, -B), np.full(n_eq - n, -inf),
                   np.zeros(R), np.zeros(R), np.zeros(mn), np.zeros(mn), np.zeros(R)]
    col_hi = np.r_[market.prior, np.full(mn, inf), np.full(kT, inf), np.full(n, B), np.full(n_eq - n, inf),
                   np.full(R, B), M_o, M_rc, np.ones(mn), np.ones(R)]
    cost = np.r_[np.full(n, -market.reservation), (market.v + market.u).ravel(), np.zeros(sum(sizes[2:]))]
    integer = np.r_[np.zeros(sum(sizes[:7]), bool), np.ones(mn + R, bool)]
    # HiGHS' default MIP gaps (1e-4 relative, 1e-6 absolute) would stop short of an exact optimum
    model = HighsModel(A, row_lo, row_hi, cost, col_lo, col_hi, integer=integer,
                        options={"mip_rel_gap": MILP_REL_GAP, "mip_abs_gap": 0.0})
    offs = np.cumsum([0] + sizes)
    layout = {nm: slice(int(offs[i]), int(offs[i + 1])) for i, nm in enumerate(names)}
    return model, layout


__all__ = ["PieceLP", "constrained_efficiency", "constrained_efficiency_milp", "MILP_DUAL_BOUND", "MILP_REL_GAP"]
