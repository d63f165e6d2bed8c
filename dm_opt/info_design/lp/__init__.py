"""Linear programs of the GLP data economy (SPEC §2), with HiGHS (through cvxpy or highspy).

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

**Models, time limits, memory.**  ``P_q`` for one-off solves (:class:`PlatformLP`), the
piece LPs and the small equilibrium LPs are cvxpy models (compilation counted in the time
limit by :func:`_solve`); the models that grow with ``|A|·|Ω|`` — the live ``P_q``
(:class:`PlatformHighs`), the dual-face LPs of ``∂V(q)``, W(q)'s face LP, the KKT MILP of
constrained efficiency, complete markets — are passed to highspy directly from scipy
arrays (:class:`_HighsModel`), in the suffix-sum form for the slides' merchant
(:func:`_pq_blocks`), and run so that the caller gets control back within
``2 ×`` :data:`dm_opt.core.limits.STOP_GRACE_SECONDS` of the deadline
(:func:`dm_opt.core.limits.run_highs`).  Before building, the size of every such model is
estimated (nonzeros × :data:`HIGHS_LP_BYTES` / :data:`HIGHS_MILP_BYTES` /
:data:`CVXPY_BYTES`) and a model over :data:`dm_opt.core.limits.MEMORY_BUDGET` (2 GiB) is
refused with :class:`~dm_opt.core.errors.LimitExceeded`.  ``status == optimal`` means every
requested part is present; otherwise ``message`` says what is missing.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from dm_opt.core.errors import InstanceError, LimitExceeded, SolverFailed
from dm_opt.core.highs import silence_banner
from dm_opt.core.result import Termination, frozen_array
from dm_opt.info_design.market import InfoDesignMarket

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

#: Memory per constraint-matrix nonzero (bytes, with a margin over what was measured) of a model
#: held by HiGHS through highspy (an LP: ~120 measured on P_q with dense obedience rows at
#: |Ω| = |A| = 60 and 100), by HiGHS' MIP solver, and by cvxpy (compilation: ~500 measured on
#: the KKT MILP at |Ω| = 100).  With :data:`dm_opt.core.limits.MEMORY_BUDGET` they decide which
#: models are refused before they are built (:func:`dm_opt.core.limits.check_model_size`).
HIGHS_LP_BYTES = 200
HIGHS_MILP_BYTES = 600
CVXPY_BYTES = 1000


def _solve(prob, what: str, large: bool = False, time_limit=None):
    """Solve a cvxpy LP with HiGHS; returns cvxpy's status (``"user_limit"`` when the time ran
    out first).

    ``time_limit`` (seconds, or a :class:`~dm_opt.core.limits.Deadline`) covers cvxpy's
    compilation too: the problem is compiled first (cached for parametrised problems) and
    HiGHS gets what is left; nothing is solved when nothing is left.
    """
    from dm_opt.core.limits import Deadline

    cp = _cp()
    opts = dict(LARGE_LP_OPTIONS if large else LP_OPTIONS)
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # cvxpy's "may be inaccurate" at a time limit
            if time_limit is None:
                prob.solve(solver=cp.HIGHS, **opts)
                return prob.status
            dl = time_limit if isinstance(time_limit, Deadline) else Deadline(max(float(time_limit), 1e-9))
            if dl.expired():                  # not even the compilation
                return "user_limit"
            data, chain, inverse = prob.get_problem_data(cp.HIGHS, solver_opts=dict(opts))
            left = dl.remaining()
            if left is not None and left <= 0:
                return "user_limit"
            if left is not None:
                t = max(float(left), MIN_SOLVE_SECONDS)
                if "highs_options" in opts:
                    opts["highs_options"] = {**opts["highs_options"], "time_limit": t}
                else:
                    opts["time_limit"] = t
            solution = chain.solve_via_data(prob, data, False, False, opts)
            prob.unpack_results(solution, chain, inverse)
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


_SCALES = None        # weakref.WeakKeyDictionary: market -> payoff scale


def _scale(market: InfoDesignMarket) -> float:
    """Payoff scale ``max(1, |v|, |u|, |r̄|)`` (cached per market: two passes over |A|×|Ω| arrays)."""
    global _SCALES
    import weakref

    if _SCALES is None:
        _SCALES = weakref.WeakKeyDictionary()
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


def _threshold_form(market: InfoDesignMarket) -> bool:
    """True when ``π(a, ω) = fee_a · 1[ω ≥ fee_a]`` (the slides' merchant), which
    admits an O(m·n)-nonzero obedience formulation through suffix sums."""
    return not market.is_general


def _pq_blocks(market: InfoDesignMarket, compact: bool):
    """``P_q``'s constraint matrix by column block: ``(Ey, AT, Gy, GT, pairs)``.

    Columns are ``y`` (``m·n``, flat index ``a·n + ω``, ``≥ 0``) and, in the compact
    (suffix-sum) form of :class:`PlatformLP`, ``T`` (``m(n+1)``, free).  Equality rows
    ``Ey y + AT T = (q, 0)``: the first ``n`` are the record counts ``Σ_a y(a,ω) = q(ω)``,
    the others (compact form only) the definitions ``T(a,k) − T(a,k+1) − y(a,k) = 0``,
    ``T(a,n) = 0``.  Obedience rows ``Gy y + GT T ≥ 0``, one per pair ``(a, a')`` of
    ``pairs`` (row-major, ``a ≠ a'``), equal to ``Σ_ω (π(a,ω) − π(a',ω)) y(a,ω)``.
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
    kfirst = np.searchsorted(market.types, market.fees, side="left")      # first type ≥ fee
    rows, cols = np.nonzero(~np.eye(m, dtype=bool))
    R = len(rows)
    fee = market.fees
    Ob = sp.csr_matrix((np.r_[fee[rows], -fee[cols]],
                        (np.r_[np.arange(R), np.arange(R)],
                         np.r_[idx[rows, kfirst[rows]], idx[rows, kfirst[cols]]])), shape=(R, m * N1))
    Ey = sp.vstack([E, -Dy], format="csr")
    AT = sp.vstack([sp.csr_matrix((n, m * N1)), Dt], format="csr")
    return Ey, AT, sp.csr_matrix((R, m * n)), Ob, np.c_[rows, cols].astype(int).reshape(-1, 2)


def _pq_nnz(market: InfoDesignMarket, compact: bool) -> int:
    """Nonzeros (plus columns) of :func:`_pq_blocks` without building it (dense obedience
    rows counted as full: at most ``m(m−1)n``)."""
    m, n = market.m, market.n
    if compact:
        return m * n + 2 * m * n + 2 * m * (n + 1) + 2 * m * (m - 1) + 2 * m * (n + 1)
    return m * n + m * (m - 1) * n + m * n


def _check_size(market: InfoDesignMarket, what: str, nonzeros: int, bytes_per_nonzero: float) -> None:
    from dm_opt.core.limits import check_model_size

    check_model_size(f"{what} (|Ω| = {market.n}, |A| = {market.m})", nonzeros, bytes_per_nonzero,
                     hint="the slides' merchant (gamma_u/gamma_pi payoffs) uses O(|A|·|Ω|) suffix-sum "
                     "obedience rows; general payoff matrices need |A|(|A|−1)|Ω| — use fewer fees or types")


#: HiGHS model statuses (by name) mapped to the statuses used here.
_HIGHS_STATUS = {"kOptimal": "optimal", "kTimeLimit": "time_limit", "kInterrupt": "interrupted",
                 "kInfeasible": "infeasible", "kUnbounded": "unbounded", "kUnboundedOrInfeasible": "unbounded"}

class _HighsModel:
    """An LP/MILP passed to highspy directly from scipy arrays (no cvxpy compilation, so a
    time limit covers the whole solve), run in a worker thread under a
    :class:`~dm_opt.core.limits.Deadline`: the caller waits at most until the deadline plus
    ``2 ×`` :data:`dm_opt.core.limits.STOP_GRACE_SECONDS`, and Ctrl-C (or the deadline) becomes HiGHS' own
    interrupt at its next callback (simplex, IPM, MIP)."""

    def __init__(self, A, row_lo, row_hi, cost, col_lo, col_hi, *, integer=None, maximize: bool = True,
                 options: Mapping | None = None):
        import highspy

        from dm_opt.core.highs import new_highs, pass_model, set_options

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
        self._highspy = highspy
        self.ncol, self.nrow = ncol, nrow
        self.abandoned = False
        self.ran = False                 # HiGHS' info is meaningless before a run

    def busy(self, deadline=None) -> bool:
        """Wait (until ``deadline``) for a run left in the background; True if it is still going."""
        from dm_opt.core.limits import highs_busy

        if not self.abandoned:
            return False
        if highs_busy(self.h, None if deadline is None else deadline.end):
            return True
        self.abandoned = False
        return False

    def run(self, deadline=None) -> str:
        """Solve; returns ``"optimal"``, ``"time_limit"``, ``"interrupted"``, ``"infeasible"``,
        ``"unbounded"`` or HiGHS' own status name.  Nothing is run when the deadline has passed;
        the call returns within :data:`dm_opt.core.limits.STOP_GRACE_SECONDS` × 2 of the deadline
        (:func:`dm_opt.core.limits.run_highs`)."""
        from dm_opt.core.limits import run_highs

        left = None if deadline is None else deadline.remaining()
        if left is not None and left <= 0:
            return "time_limit"
        if self.busy(deadline):
            return "time_limit"
        self.h.setOptionValue("time_limit", self._highspy.kHighsInf if left is None
                              else max(float(left), MIN_SOLVE_SECONDS))
        self.ran = True
        why, self.abandoned = run_highs(self.h, None if left is None else deadline.end)
        if self.abandoned:
            return why
        ms = self.h.getModelStatus()
        st = _HIGHS_STATUS.get(ms.name, self.h.modelStatusToString(ms))
        if why == "interrupted":
            return "interrupted"
        if st == "interrupted":            # our deadline request, not Ctrl-C
            return "time_limit"
        return st

    @property
    def has_solution(self) -> bool:
        if not self.ran or self.abandoned:
            return False
        info = self.h.getInfo()           # not valid when HiGHS was interrupted before solving anything
        return bool(info.valid) and info.primal_solution_status == 2          # 2 = feasible

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
                         ``interrupted`` and ``P_q`` itself was stopped, ``y``/``x`` are
                         the best obedient mechanism known (at worst
                         :func:`no_information`), ``bound`` is :func:`relaxation_bound`,
                         and the dual fields are NaN.  When ``P_q`` was solved but the
                         requested ranges of ``∂V(q)`` were not finished, ``value`` is
                         ``V(q)`` (``bound = value``, ``gap = 0``), the unfinished
                         coordinates of ``lower``/``upper`` are NaN and the status is
                         still ``time_limit``/``interrupted``: ``status == optimal``
                         means every requested part is present.
    message : str        what is missing when the status is not optimal ("" otherwise)
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
    message: str = ""

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
    x = np.clip(np.asarray(y, float), 0.0, None)
    pos = np.asarray(q) > 0
    x /= np.maximum(x.sum(axis=0), 1e-300)[None, :]            # in place: few passes over (m, n)
    free = np.flatnonzero(~pos)
    if free.size:
        x[:, free] = 0.0
        x[np.argmin(market.u[:, free], axis=0), free] = 1.0
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

        ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`): when
        HiGHS runs out of time, or on Ctrl-C, the best obedient mechanism known is
        returned with status ``time_limit``/``interrupted`` and the proven
        :func:`relaxation_bound` (see :class:`PlatformSolution`).  When ``P_q`` was
        solved but the interval LPs were not all finished, ``V(q)`` and the optimal
        mechanism are returned with the unfinished coordinates NaN and status
        ``time_limit``/``interrupted`` (``message`` says how many were finished).
        """
        from dm_opt.core.limits import Deadline

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
        status=status, q=_frozen(q), value=value, y=_frozen(y), x=_frozen(x),
        supergradient=_frozen(lam), obedience_duals=_frozen(mu),
        consumer_utility=_frozen(market.consumer_utility(x)),
        lower=None if lower is None else _frozen(lower), upper=None if upper is None else _frozen(upper),
        supergradients=None if pts is None else _frozen(pts),
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
        self.model = _HighsModel(
            A, np.r_[market.v.ravel(), np.zeros(kT), -inf], np.r_[np.full(Ey.shape[1], inf), np.zeros(kT), inf],
            np.zeros(n_eq + R), np.r_[np.full(n_eq, -inf), np.zeros(R)], np.full(n_eq + R, inf), maximize=False)
        self.market, self.n, self.face_row = market, n, A.shape[0] - 1

    def ranges(self, q, value, deadline=None):
        from dm_opt.core.limits import Deadline

        h = self.model.h
        n = self.n
        dl = deadline if deadline is not None else Deadline(None)
        if self.model.busy(dl):
            self.interrupted = False
            return np.full(n, np.nan), np.full(n, np.nan), np.zeros((0, n))
        tol = FACE_TOL * _scale(self.market) * max(1.0, float(np.sum(q)))
        for w in range(n):
            h.changeCoeff(self.face_row, w, float(q[w]))
        h.changeRowBounds(self.face_row, -np.inf, float(value + tol))
        lower, upper, pts = np.full(n, np.nan), np.full(n, np.nan), []
        cost = np.zeros(n)
        self.interrupted = False
        try:
            for w in range(n):
                if dl.expired():
                    break
                for sign in (1.0, -1.0):
                    cost[:] = 0.0
                    cost[w] = sign
                    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
                    st = self.model.run(dl)
                    if st in ("time_limit", "interrupted"):
                        val = np.nan
                        self.interrupted |= st == "interrupted"
                    elif st == "unbounded":
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
    from dm_opt.core.result import relative_gap

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
        status=status, q=_frozen(q), value=value, y=_frozen(y), x=_frozen(x), supergradient=_frozen(nan_n),
        obedience_duals=_frozen(nan_m), consumer_utility=_frozen(market.consumer_utility(x)),
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

    def __init__(self, market: InfoDesignMarket, *, compact: bool | None = None):
        import highspy

        silence_banner()
        self.market = market
        m, n = market.m, market.n
        if compact is None:
            compact = _threshold_form(market) and m * (m - 1) * n > DENSE_WARM_MAX_NNZ
        if compact and not _threshold_form(market):
            raise InstanceError("payoffs", "the compact obedience form needs the slides' merchant payoff")
        self.compact = compact
        _check_size(market, "P_q", _pq_nnz(market, compact), HIGHS_LP_BYTES)
        Ey, AT, Gy, GT, pairs = _pq_blocks(market, compact)
        n_eq, R, ncol_T = Ey.shape[0], Gy.shape[0], AT.shape[1]
        A = sp.bmat([[Ey, AT], [Gy, GT]], format="csc")
        inf = np.inf
        self._model = _HighsModel(
            A, np.zeros(n_eq + R), np.r_[np.zeros(n_eq), np.full(R, inf)],
            np.r_[market.v.ravel(), np.zeros(ncol_T)], np.r_[np.zeros(m * n), np.full(ncol_T, -inf)],
            np.full(m * n + ncol_T, inf), options={"simplex_strategy": LP_OPTIONS["simplex_strategy"]})
        self.h = self._model.h
        self._obe_rows = np.arange(n_eq, n_eq + R)
        self._pairs = pairs
        self._rec = np.arange(n, dtype=np.int32)
        self._solved = False
        self._face = None
        self._highspy = highspy

    def solve(self, q, *, intervals: bool = False, time_limit=None) -> PlatformSolution:
        """``P_q`` at ``q`` (warm-started from the previous solve).  ``intervals`` and
        ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`) as in
        :meth:`PlatformLP.solve`: a stopped solve returns the best obedient mechanism
        known with :func:`relaxation_bound` and status ``time_limit``/``interrupted``."""
        from dm_opt.core.limits import Deadline

        market = self.market
        q = market.database(q)
        dl = Deadline.of(time_limit)
        t0 = time.perf_counter()
        if self._model.busy(dl):            # the previous solve is still stopping (see STOP_GRACE_SECONDS)
            return _partial_platform(market, q, Termination.TIME_LIMIT, None, t0)
        self.h.changeRowsBounds(len(self._rec), self._rec, q, q)
        cold = not self._solved and market.m * market.n > LARGE_LP
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
        return _finish_platform(self, market, q, self._model.objective, y, lam, mu, intervals, dl, t0)

    def dual_face_ranges(self, q, value, *, deadline=None):
        """As :meth:`PlatformLP.dual_face_ranges`."""
        if self._face is None:
            self._face = _DualFace(self.market)
        return self._face.ranges(q, value, deadline)


#: Methods for ``P_q`` / ``W(q)``: the closed form needs the slides' merchant with ``Ω ⊆ A``.
PLATFORM_METHODS = ("auto", "bbm", "lp")


def _platform_method(market: InfoDesignMarket, method: str) -> str:
    from dm_opt.core.errors import ProblemError
    from dm_opt.info_design import bbm

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
    ``method="lp"`` builds the LP (a :class:`PlatformHighs`; keep one of those, or a
    :class:`PlatformLP`, to re-solve it for many ``q``).  ``time_limit``: see
    :meth:`PlatformLP.solve` and :func:`.info_design_bbm.platform`.
    """
    from dm_opt.core.limits import check_time_limit

    check_time_limit(time_limit)
    if _platform_method(market, method) == "bbm":
        from dm_opt.info_design import bbm

        return bbm.platform(market, q, intervals=intervals, time_limit=time_limit)
    # highspy directly: the time limit covers the build, Ctrl-C stops HiGHS itself (a cvxpy solve
    # only sees Ctrl-C when HiGHS returns: 40 s at |Ω| = |A| = 200)
    return PlatformHighs(market).solve(q, intervals=intervals, time_limit=time_limit)


def platform_report(market: InfoDesignMarket, q, *, method: str = "auto", intervals: bool = True,
                    time_limit=None) -> tuple[PlatformSolution, "WelfareSolution | None"]:
    """``P_q`` and ``W(q)`` together (``dm-opt solve --problem platform``): one ``P_q`` solve,
    whose duals define ``W(q)``'s face (LP path), under one ``time_limit``.

    Returns ``(solution, welfare)``; ``welfare`` is None when it was not computed (``P_q``
    or W(q)'s face LP stopped), and then ``solution.status`` is not optimal and
    ``solution.message`` says what is missing.
    """
    import dataclasses

    from dm_opt.core.limits import Deadline, Stopped

    pm = _platform_method(market, method)
    dl = Deadline.of(time_limit)
    if pm == "bbm":
        from dm_opt.info_design import bbm

        sol = bbm.platform(market, q, intervals=intervals, time_limit=dl)
        if sol.status is not Termination.OPTIMAL:
            return sol, None
        y = np.asarray(sol.y)      # consumer-best on the optimal face: W(q) from the same mechanism
        return sol, WelfareSolution(sol.q, sol.value + float(np.sum(market.u * y)), sol.value, sol.y, sol.x,
                                    sol.consumer_utility)
    P = PlatformHighs(market)
    sol = P.solve(q, intervals=intervals, time_limit=dl)
    if not np.all(np.isfinite(sol.supergradient)):      # P_q itself stopped: no face, no W(q)
        return sol, None
    try:
        w = _welfare(market, q, face=FaceLP(market, P), solution=sol, deadline=dl if dl.end is not None else None)
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


def platform_sweep(market: InfoDesignMarket, databases, *, method: str = "auto",
                   intervals: bool = False) -> list[PlatformSolution]:
    """``P_q`` for every row of ``databases`` (shape (k, n)), re-using one model.

    ``method="bbm"`` (auto when it applies) evaluates the closed form per row;
    ``"lp"`` keeps one live :class:`PlatformHighs` model and warm-starts each
    solve from the previous optimal basis (order the rows along a path when you
    can: neighbouring databases share bases).  ``intervals`` (closed form only)
    adds the exact ranges of ``∂V(q)``.
    """
    from dm_opt.core.errors import ProblemError
    from dm_opt.core.validate import as_array

    Q = as_array("databases", databases, ndim=2)
    if Q.shape[1] != market.n:
        raise InstanceError("databases", f"expected shape (k, {market.n}) (one column per type), got {Q.shape}")
    if _platform_method(market, method) == "bbm":
        from dm_opt.info_design import bbm

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
    # μ is sparse (the closed form has one nonzero column): a dense μ @ π would be O(|A|²|Ω|)
    return (np.asarray(sol.supergradient)[None, :] - market.v
            - (mu.sum(axis=1)[:, None] * market.pi - sp.csr_matrix(mu) @ market.pi))


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
        self._model = _HighsModel(
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
        from dm_opt.core.limits import Stopped

        try:
            return self._solve(q, solution, time_limit)
        except Stopped as stop:
            if stop.status is Termination.INTERRUPTED:
                raise KeyboardInterrupt from None
            raise LimitExceeded(f"W(q): {stop.message}; W(q) has no partial answer") from None

    def _solve(self, q, solution, deadline):
        """:meth:`solve` raising :class:`~dm_opt.core.limits.Stopped` on a stop (internal)."""
        from dm_opt.core.limits import Deadline, Stopped

        dl = Deadline.of(deadline)
        market = self.market
        m, n = market.m, market.n
        q = market.database(q)
        if solution is None:
            solution = (self.base.solve(q, time_limit=dl) if dl.end is not None else self.base.solve(q))
        sol = solution
        if sol.status is not Termination.OPTIMAL and not np.all(np.isfinite(sol.supergradient)):
            raise Stopped(sol.status, f"P_q was not solved ({sol.status}); the optimal face is unknown")
        rc = self.reduced_costs(sol)
        tol = CS_TOL * _scale(market)
        if rc.min() < -1e3 * tol:  # pragma: no cover - would mean an inaccurate dual
            raise SolverFailed(f"P_q dual infeasible by {-rc.min():.3g}")
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
        try:
            st = self._model.run(dl)
        except KeyboardInterrupt:
            st = "interrupted"
        if st in ("time_limit", "interrupted"):
            raise Stopped(Termination(st), f"{'interrupted' if st == 'interrupted' else dl.message()} "
                          f"while solving the face LP of W(q)")
        if st != "optimal":  # pragma: no cover
            raise SolverFailed(f"W(q): status {st!r}")
        return sol, np.clip(self._model.x[: m * n].reshape(m, n), 0.0, None)


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
            solution: PlatformSolution | None = None, time_limit=None) -> WelfareSolution:
    """``W(q)``: solve ``P_q``, then maximise ``Σ u y`` over its optimal face (:class:`FaceLP`);
    ``method`` as in :func:`solve_platform` (a given ``face`` means the LP).  ``solution``:
    an optimal solution of ``face.base`` at ``q`` already computed (its duals define the face).
    ``time_limit`` (seconds or a shared Deadline; the closed form needs none): W(q) has no
    partial answer, so a stop raises :class:`~dm_opt.core.errors.LimitExceeded`."""
    from dm_opt.core.limits import Stopped

    try:
        return _welfare(market, q, face=face, method=method, solution=solution, deadline=time_limit)
    except Stopped as stop:
        if stop.status is Termination.INTERRUPTED:
            raise KeyboardInterrupt from None
        raise LimitExceeded(f"W(q): {stop.message}; W(q) has no partial answer") from None


def _welfare(market, q, *, face=None, method="auto", solution=None, deadline=None) -> WelfareSolution:
    """:func:`welfare` raising :class:`~dm_opt.core.limits.Stopped` on a stop (internal)."""
    from dm_opt.core.limits import Deadline, Stopped, check_time_limit

    check_time_limit(deadline)
    if face is None and _platform_method(market, method) == "bbm":
        from dm_opt.info_design import bbm

        return bbm._welfare(market, q, Deadline.of(deadline))
    q = market.database(q)
    if not np.any(q > 0):                         # nobody in the database: W(0) = V(0) = 0
        y = np.zeros((market.m, market.n))
        x = mechanism_from_y(market, y, q)
        return WelfareSolution(_frozen(q), 0.0, 0.0, _frozen(y), _frozen(x), _frozen(market.consumer_utility(x)))
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
        for a_, b_ in zip(A[:, 0], b, strict=True):
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
        from dm_opt.info_design import bbm

        return bbm.value_pieces(market)
    if market.n > max_n:
        raise LimitExceeded(f"piece enumeration is for |Ω| ≤ {max_n} (got {market.n}); "
                            f"use method='milp' for constrained efficiency")
    from dm_opt.core.limits import Deadline, Stopped

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
        :class:`~dm_opt.core.limits.Stopped` when ``time_limit`` seconds run out."""
        from dm_opt.core.limits import Stopped

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
    :class:`~dm_opt.core.limits.Deadline`) and Ctrl-C: the MILP and the piece method
    return the best allocation found (no trade if none) with a proven bound and
    gap and status ``time_limit``/``interrupted``; the closed form needs no limit.
    """
    from dm_opt.core.errors import ProblemError
    from dm_opt.info_design import bbm

    if method == "auto":
        if pieces is None and bbm.applies(market):
            method = "bbm"
        else:
            method = "pieces" if market.n <= PIECES_MAX_N or pieces is not None else "milp"
    from dm_opt.core.limits import Deadline, Stopped
    from dm_opt.core.result import relative_gap

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
    from dm_opt.core.limits import Deadline, Stopped
    from dm_opt.core.result import relative_gap

    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    m, n = market.m, market.n
    scale = _scale(market)
    B = (MILP_DUAL_BOUND if dual_bound is None else float(dual_bound)) * scale
    if compact is None:
        compact = _threshold_form(market)
    if compact and not _threshold_form(market):
        raise InstanceError("payoffs", "the compact obedience form needs the slides' merchant payoff")
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
        q=_frozen(qv), x=ws.x, y=ws.y, platform_value=ws.platform_value,
        consumer_utility=ws.consumer_utility, pieces=_frozen(np.zeros((0, n))), optimal_pieces=(),
        allocations=((_frozen(qv), ws.x),), seconds=time.perf_counter() - t0,
        message="; ".join(x for x in (
            f"KKT MILP with dual bound B = {B:g} ({m * n + m * (m - 1)} binaries, "
            f"{'suffix-sum' if compact else 'dense'} obedience rows, {build_solve:.2f}s)", message) if x))


def _efficiency_milp_model(market: InfoDesignMarket, compact: bool, B: float):
    """The KKT MILP of :func:`constrained_efficiency_milp` as a :class:`_HighsModel`;
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
    model = _HighsModel(A, row_lo, row_hi, cost, col_lo, col_hi, integer=integer,
                        options={"mip_rel_gap": MILP_REL_GAP, "mip_abs_gap": 0.0})
    offs = np.cumsum([0] + sizes)
    layout = {nm: slice(int(offs[i]), int(offs[i + 1])) for i, nm in enumerate(names)}
    return model, layout


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
    ``time_limit``/``interrupted`` when the enumeration was stopped, and
    ``feasible`` when it finished with undecided combinations: the families
    listed are genuine equilibria but the list is incomplete (``complete`` is
    False and ``message`` says what is missing).
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

    ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`) and
    Ctrl-C stop the enumeration between (pattern, face) combinations; the
    families found so far are returned with ``complete=False`` and the status.
    """
    from dm_opt.core.limits import Deadline, Stopped

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
    if undecided and not stopped:
        # finished, but the list is not proven complete: never "optimal" with pieces missing
        status = Termination.FEASIBLE
        msg = (f"{len(undecided)} (supply pattern, face) combinations need a bilinear description that is "
               f"not solved exactly here (listed in 'undecided'); the families listed are genuine equilibria")
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
            dl.check()
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
                                            L, eff.piece_values, dl)
                if found_p is None:
                    undecided.append((pattern, S))
                elif found_p is not False:
                    found.append(found_p)
                continue
            elif dim == 0:
                kind = "fixed-database"
            elif dim == 1 and not F.any():
                kind = "ray"
            else:
                piece = _equilibrium_scip(market, G, LS, S, pat, Amat, np.array(rhs), umin, eff.welfare,
                                          L, eff.piece_values, dl) if use_scip else None
                if piece is None:
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


#: Seconds SCIP may spend on one bilinear equilibrium family (a family not decided in time is
#: listed as undecided); a shorter time limit of the whole computation wins.
SCIP_FAMILY_SECONDS = 60.0


def _equilibrium_scip(market, G, LS, S, pat, Amat, rhs, umin, W0, L, piece_values, deadline=None):
    """A bilinear (face, pattern) family decided by SCIP (nonconvex QCP, global).

    Same constraints as :func:`_equilibrium_lp` with the price ``p = Σ_k θ_k λ^k``
    multiplying the database on sellers.  Returns an :class:`EquilibriumPiece`
    (kind ``"bilinear"``), ``False`` when the family is empty, ``None`` when SCIP did
    not decide it within :data:`SCIP_FAMILY_SECONDS`; raises
    :class:`~dm_opt.core.limits.Stopped` when ``deadline`` (or Ctrl-C) stopped SCIP."""
    import pyscipopt as ps

    from dm_opt.core.limits import Stopped

    class _Undecided(Exception):
        pass

    n, m = market.n, market.m
    qbar, rbar = market.prior, market.reservation
    Z, M_ = pat == ZERO, pat == MID
    Gd = G.toarray() if G.shape[0] else np.zeros((0, m * n))

    def build(objective: str, smin: float | None):
        mdl = ps.Model()
        mdl.hideOutput()
        left = None if deadline is None else deadline.remaining()
        if left is not None and left <= 0:
            raise Stopped(Termination.TIME_LIMIT, deadline.message())
        mdl.setParam("limits/time", SCIP_FAMILY_SECONDS if left is None else min(SCIP_FAMILY_SECONDS, left))
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
        st = mdl.getStatus()
        if st == "userinterrupt":
            raise Stopped(Termination.INTERRUPTED, "interrupted during SCIP")
        if st == "timelimit" and deadline is not None and deadline.expired():
            raise Stopped(Termination.TIME_LIMIT, deadline.message())
        if st in ("infeasible",):
            return None
        if st != "optimal" or mdl.getNSols() == 0:
            raise _Undecided(st)
        sol = mdl.getBestSol()
        return (mdl.getObjVal(), np.array([sol[t] for t in th]), np.array([sol[v] for v in q]),
                np.array([[sol[y[a][w]] for w in range(n)] for a in range(m)]))

    try:
        r = build("slack", None)
        if r is None or r[0] <= SCIP_SLACK_TOL:
            return False
        smax = r[0]
        lo, hi, wit = build("min", 0.0), build("max", 0.0), build("max", 0.5 * smax)
    except _Undecided:
        return None
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
    is the planner's plus ``r̄`` under extra constraints).  ``message`` says what is
    missing when the status is not optimal.
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
    message: str = ""

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
    from dm_opt.core.errors import ProblemError
    from dm_opt.core.limits import Deadline, Stopped
    from dm_opt.core.result import relative_gap
    from dm_opt.info_design import bbm

    if method not in ("auto", "bbm", "pieces"):
        raise ProblemError(f"unknown method {method!r} for the data union; use auto, bbm or pieces")
    if method == "bbm" or (method == "auto" and pieces is None and bbm.applies(market)):
        return bbm.data_union(market, time_limit=time_limit)

    dl = Deadline.of(time_limit)
    t0 = time.perf_counter()
    pieces = pieces or value_pieces(market, time_limit=dl)
    status = pieces.status
    best = None
    done = 0
    if status is Termination.OPTIMAL:
        try:
            lp = PieceLP(market, union=True)
            for lam in pieces.gradients:
                dl.check()
                r = lp.solve(lam, time_limit=dl.remaining())
                done += 1
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
    message = "" if status is Termination.OPTIMAL else (
        f"stopped ({status}) after {done} of {len(pieces.gradients)} piece LPs"
        + ("" if pieces.status is Termination.OPTIMAL else " (piece list of V incomplete)")
        + "; best union allocation found, bound planner_bound + r̄")
    return UnionResult(val, val - market.reservation * float(market.prior.sum()), _frozen(q), _frozen(x),
                       _frozen(prices), float(np.sum(market.v * y)), time.perf_counter() - t0,
                       status, bound, relative_gap(val, bound), message)


@dataclass(frozen=True)
class TaxResult:
    """Data taxes (GLP slides, Proposition on data taxes).

    ``taxes`` τ*(ω) = p*(ω) + U(ω, x°) − r̄ (n,), ``prices`` p* ∈ ∂V(q°),
    ``zeta`` ζ* = q°/q̄.  ``revenue`` = Σ τ* q° (no deficit iff ≥ 0);
    ``welfare`` = consumers + platform + government − r̄ = W° when the taxed
    economy implements (q°, x°); ``is_equilibrium`` records the check of every
    equilibrium condition of the taxed economy at (p*, ζ*, q°, x°).  ``status`` is
    optimal only when ``(q°, x°)`` is proven constrained-efficient and every check was
    run; otherwise ``message`` says what is missing (checks not run are False).
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
    message: str = ""


def data_taxes(market: InfoDesignMarket, *, efficiency: EfficiencyResult | None = None,
               time_limit=None) -> TaxResult:
    """Taxes implementing a constrained-efficient allocation, with the checks.

    ``time_limit`` (seconds or a shared Deadline) and Ctrl-C apply to the
    constrained-efficiency solve; if it stops early the taxes implement the best
    allocation found, ``status`` says so and ``efficient_welfare`` is that
    allocation's welfare (not a proven ``W°``); if ``P_q°`` (an LP, or the closed
    form) is stopped, the prices are unknown (NaN), the checks are not run (False) and
    ``status``/``message`` say so.
    """
    from dm_opt.core.limits import Deadline

    dl = Deadline.of(time_limit)
    eff = efficiency or constrained_efficiency(market, time_limit=dl)
    q, x = np.asarray(eff.q), np.asarray(eff.x)
    if dl.expired() and _platform_method(market, "auto") == "lp":    # no time left to build P_q°
        sol = _partial_platform(market, q, Termination.TIME_LIMIT, None, time.perf_counter())
    else:
        sol = solve_platform(market, q, intervals=False, time_limit=dl)
    p = np.asarray(sol.supergradient)
    U = market.consumer_utility(x)
    tau = p + U - market.reservation
    revenue = float(np.sum(tau * q))
    scale = _scale(market)
    tol = 1e-6 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        zeta = np.where(market.prior > 0, q / np.where(market.prior > 0, market.prior, 1), 0.0)
    notes = []
    if eff.status is not Termination.OPTIMAL:
        notes.append(f"constrained efficiency stopped ({eff.status}): the taxes implement the best allocation "
                     f"found, not a proven W°")
    if not np.all(np.isfinite(p)):
        notes.append(f"P_q° was not solved ({sol.status}): prices and taxes unknown (NaN), checks not run")
        checks = {"price_is_supergradient": False, "mechanism_optimal": False, "consumers_optimal": False,
                  "market_clears": False}
        status = eff.status if eff.status is not Termination.OPTIMAL else sol.status
        return TaxResult(_frozen(tau), _frozen(p), _frozen(q), _frozen(x), _frozen(zeta), revenue, False,
                         float("nan"), eff.welfare, False, checks, status, "; ".join(notes))
    # (a) p ∈ ∂V(q°): zero profit and p in proj D (dual feasibility, checked by LP)
    zero_profit = abs(float(p @ q) - sol.value) <= tol
    # the solve's own obedience duals certify p ∈ proj D directly; otherwise ask an LP
    in_D = bool(reduced_costs(market, sol).min() >= -tol) or _in_dual_polyhedron(market, p, tol, deadline=dl)
    if in_D is None:
        notes.append("time limit reached while checking p ∈ ∂V(q°): that check is not done (False)")
    # (b) x° optimal in P_q°
    y = x * q[None, :]
    x_opt = abs(float(np.sum(market.v * y)) - sol.value) <= tol and _obedient(market, y, tol)
    # (c) consumers indifferent: p + U − τ = r̄, so ζ* = q°/q̄ is optimal
    consumers = bool(np.all(np.abs(p + U - tau - market.reservation) <= tol))
    # (d) market clearing with ζ ∈ [0, 1]
    clearing = bool(np.all(zeta >= -tol) and np.all(zeta <= 1 + tol))
    consumers_welfare = float(np.sum(q * (p + U - tau)) + np.sum((market.prior - q) * market.reservation))
    profit = sol.value - float(p @ q)
    welfare = consumers_welfare + profit + revenue - market.reservation * float(market.prior.sum())
    checks = {"price_is_supergradient": bool(zero_profit and in_D), "mechanism_optimal": bool(x_opt),
              "consumers_optimal": consumers, "market_clears": clearing}
    if eff.status is not Termination.OPTIMAL:
        status = eff.status
    elif sol.status is not Termination.OPTIMAL:
        status = sol.status
    elif in_D is None:
        status = Termination.TIME_LIMIT
    else:
        status = Termination.OPTIMAL
    return TaxResult(_frozen(tau), _frozen(p), _frozen(q), _frozen(x), _frozen(zeta), revenue,
                     revenue >= -tol, welfare, eff.welfare, all(checks.values()), checks, status, "; ".join(notes))


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


def _in_dual_polyhedron(market, lam, tol, deadline=None) -> bool | None:
    """Is ``λ ∈ proj_λ D``, i.e. ∃ μ ≥ 0 with λ(ω) ≥ v(a,ω) + Σ_a' μ(a,a')(π(a,ω) − π(a',ω))?
    ``None`` when ``deadline`` stopped the LP first.  The LP is :class:`_DualFace`'s
    polyhedron (suffix-sum form for the slides' merchant) with ``λ`` fixed."""
    lam = np.asarray(lam, float)
    if not np.all(np.isfinite(lam)):
        return False
    compact = _threshold_form(market)
    _check_size(market, "dual feasibility LP", _pq_nnz(market, compact), HIGHS_LP_BYTES)
    Ey, AT, Gy, GT, _ = _pq_blocks(market, compact)
    n = market.n
    n_eq, R, kT = Ey.shape[0], Gy.shape[0], AT.shape[1]
    A = sp.vstack([sp.hstack([Ey.T, -Gy.T]), sp.hstack([AT.T, -GT.T])], format="csc")
    inf = np.inf
    # λ fixed (bounds), the v rows relaxed by tol
    model = _HighsModel(A, np.r_[market.v.ravel() - tol, np.zeros(kT)], np.r_[np.full(Ey.shape[1], inf), np.zeros(kT)],
                        np.zeros(n_eq + R), np.r_[lam, np.full(n_eq - n, -inf), np.zeros(R)],
                        np.r_[lam, np.full(n_eq - n, inf), np.full(R, inf)], maximize=False)
    st = model.run(deadline)
    if st in ("time_limit", "interrupted"):
        return None
    return st == "optimal"


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
    numerically here.  Both LPs use ``P_q``'s rows (:func:`_pq_blocks`: suffix-sum
    obedience for the slides' merchant) in highspy; an equivalent formulation of the
    same LP has the same set of optimal ``β`` (the superdifferential of its value in
    ``q̄``), and the checks are independent of the formulation.

    ``time_limit`` (seconds or a shared Deadline): prices need the optimal
    duals, so there is no partial answer — a stopped LP raises
    :class:`~dm_opt.core.errors.LimitExceeded` (Ctrl-C: ``KeyboardInterrupt``); a model
    over :data:`dm_opt.core.limits.MEMORY_BUDGET` is refused before it is built.
    """
    from dm_opt.core.limits import Deadline

    dl = Deadline.of(time_limit)
    m, n = market.m, market.n
    compact = _threshold_form(market)
    _check_size(market, "complete-markets LP", 2 * _pq_nnz(market, compact), HIGHS_LP_BYTES)
    Ey, AT, Gy, GT, pairs = _pq_blocks(market, compact)
    n_eq, R, kT = Ey.shape[0], Gy.shape[0], AT.shape[1]
    inf = np.inf
    A = sp.bmat([[Ey, AT], [Gy, GT]], format="csc")
    col_lo = np.r_[np.zeros(m * n), np.full(kT, -inf)]
    col_hi = np.full(m * n + kT, inf)

    def run(model, what):
        try:
            st = model.run(dl)
        except KeyboardInterrupt:
            st = "interrupted"
        if st == "interrupted":
            raise KeyboardInterrupt
        if st == "time_limit":
            raise LimitExceeded(f"complete markets: the {what} did not finish ({dl.message()}); prices need "
                                f"its optimal duals, so there is no partial answer")
        if st != "optimal":  # pragma: no cover
            raise SolverFailed(f"complete markets: {what}: HiGHS status {st!r}")

    lp1 = _HighsModel(A, np.r_[np.full(n, -inf), np.zeros(n_eq - n), np.zeros(R)],
                      np.r_[market.prior, np.zeros(n_eq - n), np.full(R, inf)],
                      np.r_[(market.v + market.u - market.reservation).ravel(), np.zeros(kT)], col_lo, col_hi)
    run(lp1, "efficiency LP")
    yv = np.clip(lp1.x[: m * n].reshape(m, n), 0, None)
    beta = np.clip(lp1.row_dual[:n], 0, None)
    value = lp1.objective
    prices = market.reservation + beta[None, :] - market.u
    q = yv.sum(axis=0)
    tol = 1e-6 * _scale(market)
    # platform: max Σ (v − p) y over obedient y with Σ y ≤ 1 (a cone: value must be 0)
    total = sp.csr_matrix(np.r_[np.ones(m * n), np.zeros(kT)][None, :])
    A2 = sp.vstack([A, total], format="csc")
    lp2 = _HighsModel(A2, np.r_[np.full(n, -inf), np.zeros(n_eq - n), np.zeros(R), -inf],
                      np.r_[np.full(n, inf), np.zeros(n_eq - n), np.full(R, inf), 1.0],
                      np.r_[(market.v - prices).ravel(), np.zeros(kT)], col_lo, col_hi)
    run(lp2, "platform check LP")
    profit = float(np.sum((market.v - prices) * yv))
    checks = {
        "platform_optimal": bool(lp2.objective <= tol and abs(profit) <= tol),
        "consumers_optimal": bool(np.all(prices + market.u >= market.reservation - tol)
                                  and np.all((beta <= tol) | (q >= market.prior - tol))),
        "mechanism_obedient": _obedient(market, yv, tol),
    }
    x = mechanism_from_y(market, yv, q)
    return CompleteMarketResult(_frozen(prices), _frozen(yv), _frozen(q), _frozen(x), value, profit, checks)


__all__ = [
    "PlatformLP", "PlatformHighs", "PlatformSolution", "solve_platform", "platform_report", "PLATFORM_METHODS", "platform_sweep", "FaceLP", "WelfareSolution", "welfare",
    "ValuePieces", "value_pieces", "PieceLP", "EfficiencyResult", "constrained_efficiency",
    "record_matrix", "obedience_matrix", "mechanism_from_y", "VALUE_TOL", "PIECES_MAX_N",
    "EquilibriumPiece", "EquilibriaResult", "equilibria", "UnionResult", "data_union",
    "TaxResult", "data_taxes", "CompleteMarketResult", "complete_markets", "EQUILIBRIA_MAX_N",
    "relaxation_bound", "planner_bound", "no_information",
]
