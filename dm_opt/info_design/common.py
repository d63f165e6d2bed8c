"""The model layer shared by the closed form and the LPs of the GLP family.

Tolerances, payoff scale, proven bounds, ``P_q``'s constraint matrices (dense obedience rows or
the slides' merchant's suffix-sum form), the highspy model wrapper :class:`HighsModel` and the
mechanism/obedience helpers.  :mod:`dm_opt.info_design.bbm` and :mod:`dm_opt.info_design.lp`
both import from here; this module imports neither (dependency direction
``market → common/results → bbm → lp``).
"""

from __future__ import annotations

import weakref
from typing import Mapping

import highspy
import numpy as np
import scipy.sparse as sp

from dm_opt.core import limits as _limits
from dm_opt.core.highs import new_highs, pass_model, set_options
from dm_opt.core.status import Termination, highs_has_solution, highs_termination
from dm_opt.info_design.market import InfoDesignMarket

#: Relative tolerance (× payoff scale × mass) for comparing LP values.
VALUE_TOL = 1e-7
#: Relative slack on ``λ·q ≤ V(q)`` defining the optimal dual face numerically.
FACE_TOL = 1e-9
#: Reduced costs / obedience duals above this (× payoff scale) count as nonzero.
CS_TOL = 1e-9
#: Largest |Ω| for the exact piece enumeration (vertex enumeration in |Ω|−1 dimensions).
PIECES_MAX_N = 6


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

#: Memory per constraint-matrix nonzero (bytes, with a margin over what was measured) of a model
#: held by HiGHS through highspy (an LP: ~120 measured on P_q with dense obedience rows at
#: |Ω| = |A| = 60 and 100), by HiGHS' MIP solver, and by cvxpy (compilation: ~500 measured on
#: the KKT MILP at |Ω| = 100).  With :data:`dm_opt.core.limits.MEMORY_BUDGET` they decide which
#: models are refused before they are built (:func:`dm_opt.core.limits.check_model_size`).
HIGHS_LP_BYTES = 200
HIGHS_MILP_BYTES = 600
CVXPY_BYTES = 1000

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


_SCALES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # market -> payoff scale


def _scale(market: InfoDesignMarket) -> float:
    """Payoff scale ``max(1, |v|, |u|, |r̄|)`` (cached per market: two passes over |A|×|Ω| arrays)."""
    try:
        return _SCALES[market]
    except (KeyError, TypeError):
        pass
    sc = max(1.0, float(np.max(np.abs(market.v))), float(np.max(np.abs(market.u))), abs(market.reservation))
    try:
        _SCALES[market] = sc
    except TypeError:  # pragma: no cover - not weak-referenceable
        pass
    return sc

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


def _slides_merchant(market: InfoDesignMarket) -> bool:
    """True when ``π(a, ω) = fee_a · 1[ω ≥ fee_a]`` (the slides' merchant)."""
    return not market.is_general


def _jumps(market: InfoDesignMarket) -> np.ndarray:
    """``Δπ(a, k) = π(a, ω_k) − π(a, ω_{k−1})`` (``π(a, ω_{−1}) = 0``), shape (m, n): the
    coefficients of ``Σ_ω π(a', ω) y(a, ω) = Σ_k Δπ(a', k) T(a, k)`` (Abel summation with the
    suffix sums ``T(a, k) = Σ_{j ≥ k} y(a, j)``), exact for every payoff matrix."""
    pi = market.pi
    return np.diff(pi, axis=1, prepend=0.0)


#: The suffix-sum form is used for general payoffs when its obedience rows have at most this
#: fraction of the dense rows' nonzeros (it adds ``m(n+1)`` columns and rows of its own).
SUFFIX_FORM_RATIO = 0.5
_SUFFIX_NNZ: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()    # market -> obedience nonzeros


def _suffix_obedience_nnz(market: InfoDesignMarket) -> int:
    """Nonzeros of the suffix-sum obedience rows: ``Σ_{a≠a'} |supp Δπ(a) ∪ supp Δπ(a')|``."""
    try:
        return _SUFFIX_NNZ[market]
    except (KeyError, TypeError):
        pass
    if _slides_merchant(market):
        nnz = 2 * market.m * (market.m - 1)
    else:
        S = (_jumps(market) != 0).astype(np.float64)
        c = S.sum(axis=1)
        inter = S @ S.T                                   # |S_a ∩ S_a'|
        union = c[:, None] + c[None, :] - inter
        nnz = int(union.sum() - np.trace(union))
    try:
        _SUFFIX_NNZ[market] = nnz
    except TypeError:  # pragma: no cover - not weak-referenceable
        pass
    return nnz


def _threshold_form(market: InfoDesignMarket) -> bool:
    """Whether the suffix-sum (compact) obedience form is the default: always for the slides'
    merchant (``O(|A|·|Ω| + |A|²)`` nonzeros); for general payoffs when ``π``'s rows are piecewise
    constant in ``ω`` (few jumps ``Δπ``), so that its rows have at most :data:`SUFFIX_FORM_RATIO`
    of the dense rows' ``|A|(|A|−1)|Ω|`` nonzeros.  Either form is exact for every payoff matrix."""
    if _slides_merchant(market):
        return True
    m, n = market.m, market.n
    return _suffix_obedience_nnz(market) + 3 * m * (n + 1) <= SUFFIX_FORM_RATIO * m * (m - 1) * n


def _suffix_rows(market: InfoDesignMarket, idx: np.ndarray):
    """The suffix-sum obedience rows ``(Ob, pairs)``: ``Ob`` (m(m−1), m(n+1)) over the ``T``
    columns (flat index ``idx[a, k]``), row ``(a, a')`` = ``Σ_k (Δπ(a,k) − Δπ(a',k)) T(a,k)``."""
    m, n = market.m, market.n
    rows, cols = np.nonzero(~np.eye(m, dtype=bool))
    R = len(rows)
    pairs = np.c_[rows, cols].astype(int).reshape(-1, 2)
    if _slides_merchant(market):
        kfirst = np.searchsorted(market.types, market.fees, side="left")      # first type ≥ fee
        fee = market.fees
        Ob = sp.csr_matrix((np.r_[fee[rows], -fee[cols]],
                            (np.r_[np.arange(R), np.arange(R)],
                             np.r_[idx[rows, kfirst[rows]], idx[rows, kfirst[cols]]])), shape=(R, m * (n + 1)))
        return Ob, pairs
    D = _jumps(market)
    r_i, c_i, v_i = [], [], []
    for a in range(m):                    # rows a(m−1) … a(m−1)+m−2: pairs (a, a') for a' ≠ a
        others = np.r_[0:a, a + 1:m]
        block = D[a][None, :] - D[others]                                   # (m−1, n)
        rr, kk = np.nonzero(block)
        r_i.append(a * (m - 1) + rr)
        c_i.append(idx[a, kk])
        v_i.append(block[rr, kk])
    Ob = sp.csr_matrix((np.concatenate(v_i), (np.concatenate(r_i), np.concatenate(c_i))), shape=(R, m * (n + 1)))
    return Ob, pairs


def _pq_blocks(market: InfoDesignMarket, compact: bool):
    """``P_q``'s constraint matrix by column block: ``(Ey, AT, Gy, GT, pairs)``.

    Columns are ``y`` (``m·n``, flat index ``a·n + ω``, ``≥ 0``) and, in the compact
    (suffix-sum) form of :class:`PlatformLP`, ``T`` (``m(n+1)``, free).  Equality rows
    ``Ey y + AT T = (q, 0)``: the first ``n`` are the record counts ``Σ_a y(a,ω) = q(ω)``,
    the others (compact form only) the definitions ``T(a,k) − T(a,k+1) − y(a,k) = 0``,
    ``T(a,n) = 0``.  Obedience rows ``Gy y + GT T ≥ 0``, one per pair ``(a, a')`` of
    ``pairs`` (row-major, ``a ≠ a'``), equal to ``Σ_ω (π(a,ω) − π(a',ω)) y(a,ω)`` — in the
    compact form ``Σ_k (Δπ(a,k) − Δπ(a',k)) T(a,k)`` (:func:`_jumps`, any payoff matrix).
    """
    m, n = market.m, market.n
    E = record_matrix(market)
    if not compact:
        G, pairs = obedience_matrix(market)
        return E, sp.csr_matrix((n, 0)), G, sp.csr_matrix((G.shape[0], 0)), pairs
    N1 = n + 1
    idx = np.arange(m * N1).reshape(m, N1)
    r_ = idx[:, :n].ravel()
    Dt = sp.csr_matrix((np.r_[np.ones(m * N1), -np.ones(m * n)],
                        (np.r_[np.arange(m * N1), r_], np.r_[np.arange(m * N1), idx[:, 1:].ravel()])),
                       shape=(m * N1, m * N1))
    Dy = sp.csr_matrix((np.ones(m * n), (r_, np.arange(m * n))), shape=(m * N1, m * n))
    Ob, pairs = _suffix_rows(market, idx)
    R = Ob.shape[0]
    Ey = sp.vstack([E, -Dy], format="csr")
    AT = sp.vstack([sp.csr_matrix((n, m * N1)), Dt], format="csr")
    return Ey, AT, sp.csr_matrix((R, m * n)), Ob, pairs


def _pq_nnz(market: InfoDesignMarket, compact: bool) -> int:
    """Nonzeros (plus columns) of :func:`_pq_blocks` without building it (dense obedience
    rows counted as full: at most ``m(m−1)n``)."""
    m, n = market.m, market.n
    if compact:
        return m * n + 2 * m * n + 2 * m * (n + 1) + _suffix_obedience_nnz(market) + 2 * m * (n + 1)
    return m * n + m * (m - 1) * n + m * n


def _check_size(market: InfoDesignMarket, what: str, nonzeros: int, bytes_per_nonzero: float) -> None:
    _limits.check_model_size(f"{what} (|Ω| = {market.n}, |A| = {market.m})", nonzeros, bytes_per_nonzero,
                     hint="the slides' merchant (gamma_u/gamma_pi payoffs), and payoffs π piecewise constant "
                     "in ω, use O(|A|·|Ω|) suffix-sum obedience rows; other payoff matrices need "
                     "|A|(|A|−1)|Ω| — use fewer fees or types")


class HighsModel:
    """An LP/MILP passed to highspy directly from scipy arrays (no cvxpy compilation, so a
    time limit covers the whole solve), run in a worker thread under a
    :class:`~dm_opt.core.limits.Deadline`: the caller waits at most until the deadline plus
    ``2 ×`` :data:`dm_opt.core.limits.STOP_GRACE_SECONDS`, and Ctrl-C (or the deadline) becomes HiGHS' own
    interrupt at its next callback (simplex, IPM, MIP)."""

    def __init__(self, A, row_lo, row_hi, cost, col_lo, col_hi, *, integer=None, maximize: bool = True,
                 options: Mapping | None = None):
        A = sp.csc_matrix(A)
        ncol, nrow = A.shape[1], A.shape[0]
        inf = highspy.kHighsInf
        lp_ = highspy.HighsLp()
        lp_.num_col_, lp_.num_row_ = ncol, nrow
        lp_.col_cost_ = np.asarray(cost, float)
        lp_.col_lower_ = np.nan_to_num(np.asarray(col_lo, float), neginf=-inf, posinf=inf)
        lp_.col_upper_ = np.nan_to_num(np.asarray(col_hi, float), neginf=-inf, posinf=inf)
        lp_.row_lower_ = np.nan_to_num(np.asarray(row_lo, float), neginf=-inf, posinf=inf)
        lp_.row_upper_ = np.nan_to_num(np.asarray(row_hi, float), neginf=-inf, posinf=inf)
        lp_.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
        lp_.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp_.a_matrix_.start_ = A.indptr
        lp_.a_matrix_.index_ = A.indices
        lp_.a_matrix_.value_ = A.data
        lp_.a_matrix_.num_col_, lp_.a_matrix_.num_row_ = ncol, nrow
        if integer is not None and np.any(integer):
            kinds = np.where(np.asarray(integer, bool), highspy.HighsVarType.kInteger,
                             highspy.HighsVarType.kContinuous)
            lp_.integrality_ = list(kinds)
        self.h = new_highs()
        pass_model(self.h, lp_)
        if options:
            set_options(self.h, **options)
        self.ncol, self.nrow = ncol, nrow
        self.abandoned = False
        self.unbounded = False
        self.ran = False                 # HiGHS' info is meaningless before a run

    def busy(self, deadline=None) -> bool:
        """Wait (until ``deadline``) for a run left in the background; True if it is still going."""
        if not self.abandoned:
            return False
        if _limits.highs_busy(self.h, None if deadline is None else deadline.end):
            return True
        self.abandoned = False
        return False

    def run(self, deadline=None) -> Termination:
        """Solve; returns a :class:`~dm_opt.core.status.Termination` (HiGHS' model status through
        :func:`~dm_opt.core.status.highs_termination`; it compares equal to its string value, e.g.
        ``"optimal"``); :attr:`unbounded` says whether HiGHS proved the LP unbounded (status
        ``error`` then).  Nothing is run when the deadline has passed; the call returns within
        :data:`dm_opt.core.limits.STOP_GRACE_SECONDS` × 2 of the deadline
        (:func:`dm_opt.core.limits.run_highs`)."""
        self.unbounded = False
        left = None if deadline is None else deadline.remaining()
        if left is not None and left <= 0:
            return Termination.TIME_LIMIT
        if self.busy(deadline):
            return Termination.TIME_LIMIT
        # HiGHS compares its time_limit with its run clock, which accumulates over every run of this
        # instance (live models are re-run many times): the limit is that clock plus what is left
        self.h.setOptionValue("time_limit", highspy.kHighsInf if left is None
                              else self.h.getRunTime() + max(float(left), MIN_SOLVE_SECONDS))
        self.ran = True
        why, self.abandoned = _limits.run_highs(self.h, None if left is None else deadline.end)
        if self.abandoned:
            return Termination(why)
        ms = self.h.getModelStatus()
        self.unbounded = ms in (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible)
        st = highs_termination(ms)
        if why == "interrupted":
            return Termination.INTERRUPTED
        if st is Termination.INTERRUPTED:  # our deadline request, not Ctrl-C
            return Termination.TIME_LIMIT
        return st

    @property
    def has_solution(self) -> bool:
        if not self.ran or self.abandoned:
            return False
        return highs_has_solution(self.h)

    @property
    def x(self) -> np.ndarray:
        return np.asarray(self.h.getSolution().col_value, float)

    @property
    def row_dual(self) -> np.ndarray:
        return np.asarray(self.h.getSolution().row_dual, float)

    @property
    def objective(self) -> float:
        return float(self.h.getInfo().objective_function_value)

    @property
    def mip_bound(self) -> float:
        if self.abandoned or not self.ran:
            return np.inf
        info = self.h.getInfo()
        if not info.valid:                # interrupted before the MIP started: the field reads 0
            return np.inf
        b = float(info.mip_dual_bound)
        return b if np.isfinite(b) and abs(b) < 1e30 else np.inf


def mechanism_from_y(market: InfoDesignMarket, y: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``x(a|ω) = y(a,ω)/q(ω)``; for ``q(ω) = 0`` the column is free in ``P_q`` and
    we put mass 1 on the fee worst for the consumer (``argmin_a u(a,ω)``; for the
    slides' payoffs the highest fee, ``U = 0``).  This is the convention used for
    the consumer condition of types that do not sell (see :func:`equilibria`)."""
    x = np.clip(np.asarray(y, float), 0.0, None)
    pos = np.asarray(q) > 0
    x /= np.maximum(x.sum(axis=0), 1e-300)[None, :]            # in place: few passes over (m, n)
    free = np.flatnonzero(~pos)
    if free.size:
        x[:, free] = 0.0
        x[np.argmin(market.u[:, free], axis=0), free] = 1.0
    return x


def reduced_costs(market: InfoDesignMarket, sol) -> np.ndarray:
    """``λ(ω) − v(a,ω) − Σ_a' μ(a,a')(π(a,ω) − π(a',ω))`` (m, n) for the dual ``(λ, μ)`` of
    ``sol``: all ≥ 0 certifies ``λ ∈ proj_λ D`` (dual feasibility)."""
    mu = np.asarray(sol.obedience_duals)
    # μ is sparse (the closed form has one nonzero column): a dense μ @ π would be O(|A|²|Ω|)
    return (np.asarray(sol.supergradient)[None, :] - market.v
            - (mu.sum(axis=1)[:, None] * market.pi - sp.csr_matrix(mu) @ market.pi))

def obedience_slacks(market: InfoDesignMarket, y) -> np.ndarray:
    """``S[a, a'] = Σ_ω (π(a,ω) − π(a',ω)) y(a,ω)`` (m, m); obedient iff all ≥ 0.

    For the slides' merchant in ``O(m·n + m²)`` through suffix sums (the merchant's
    profit of fee ``a'`` on segment ``a`` is ``fee_{a'}·Σ_{ω ≥ fee_{a'}} y(a,ω)``),
    otherwise from the payoff matrix."""
    y = np.asarray(y, float)
    if _slides_merchant(market):
        tail = np.c_[np.cumsum(y[:, ::-1], axis=1)[:, ::-1], np.zeros(market.m)]
        profit = tail[:, np.searchsorted(market.types, market.fees, side="left")] * market.fees[None, :]
    else:
        profit = y @ market.pi.T
    return np.diag(profit)[:, None] - profit


def _obedient(market, y, tol) -> bool:
    return bool(np.all(obedience_slacks(market, y) >= -tol))


#: The old private name (tests and callers patch ``lp._HighsModel.run``).
_HighsModel = HighsModel
#: Payoff scale ``max(1, |v|, |u|, |r̄|)`` of a market (public name of :func:`_scale`).
payoff_scale = _scale

__all__ = ["VALUE_TOL", "FACE_TOL", "CS_TOL", "PIECES_MAX_N", "LP_OPTIONS", "LARGE_LP", "WARM_SIMPLEX_STRATEGY",
           "DENSE_WARM_MAX_NNZ", "MIN_SOLVE_SECONDS", "HIGHS_LP_BYTES", "HIGHS_MILP_BYTES", "CVXPY_BYTES",
           "relaxation_bound", "no_information", "planner_bound", "payoff_scale", "record_matrix",
           "obedience_matrix", "HighsModel", "mechanism_from_y", "reduced_costs", "obedience_slacks"]
