"""The per-buyer problem of unilateral sharing (RJ eq. 9 / eq. 11) and its algorithms.

With additive costs (RJ eq. 4 / eq. 35) social welfare decomposes per buyer (RJ eq. 11):

    max_G Σ_i V_i(G) = Σ_i max_{x_i} φ_i(x_i),   φ_i(x) = U_i(x) − Σ_j x_j c_j(i),

where ``x_i[j]`` is the number of units (0/1 data sets, or queries in §6) that buyer
``i`` receives from seller ``j``.  One buyer problem (:class:`BuyerProblem`) is solved
exactly by a *buyer method* (``buyer_method=``; these are not the Gaussian backends):

* ``enumerate`` — every bundle (table family: every subset via the tabulated row; power
  family: every integer vector, up to :data:`MAX_ENUMERATE_BUNDLES`);
* ``bnb`` — branch and bound for the power family with the exact continuous relaxation
  as bound (:func:`dm_opt.sharing.kernels.buyer_bnb_run`);
* ``milp`` — HiGHS (matrix API) with integer ``x`` and an outer approximation of the
  concave value by tangent cuts, refined at the incumbent until the cut value equals the
  true value (exact: the MILP is a relaxation, and at termination its optimum is attained
  by the incumbent).

**Limits.**  Every search takes one :class:`dm_opt.core.limits.Deadline` (``time_limit``:
seconds or a Deadline shared with the caller) and stops cleanly on it and on Ctrl-C,
returning its best bundle with a proven bound (:func:`buyer_relaxation` tightens it).
``node_limit`` (bnb) stops with status ``node_limit``; ``max_rounds`` outer-approximation
rounds (milp) with ``iteration_limit``; a MILP whose final gap stays above
:data:`MILP_GAP_TOL` ends ``feasible`` (with its true gap).  Buyers left unsolved by a
stop get the relaxation bound for :data:`RELAXATION_GRACE_SECONDS`, then the cruder
:func:`buyer_cap` (:func:`stopped_bounds`).
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import numbers
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import LimitExceeded, ProblemError, SolverFailed
from dm_opt.core.highs import silence_banner
from dm_opt.core.limits import Deadline, adapt_chunk, run_highs
from dm_opt.core.result import Result, Termination, relative_gap
from dm_opt.core.status import highs_has_solution, highs_termination
from dm_opt.sharing import kernels as K
from dm_opt.sharing.market import MAX_TABLE_AGENTS, SharingMarket

#: The per-buyer algorithms (``buyer_method=``); ``auto`` = ``enumerate`` for tables, ``bnb`` for the power family.
BUYER_METHODS = ("auto", "enumerate", "bnb", "milp")
#: Largest number of bundles one buyer problem may enumerate (power family).
MAX_ENUMERATE_BUNDLES = 1 << 20
#: Absolute tolerance deciding welfare ties and demand checks.
VALUE_TOL = 1e-9
#: Relative gap under which a MILP buyer solution counts as optimal (HiGHS tolerances are ~1e-9).
MILP_GAP_TOL = 1e-7
#: Node limit of the branch and bound per buyer problem.
BNB_NODE_LIMIT = 50_000_000
#: Nodes of the first compiled branch-and-bound call of a buyer problem; later calls adapt so that
#: one call takes about :data:`BNB_CHUNK_SECONDS` (the time limit and Ctrl-C are checked between calls).
BNB_CHUNK_NODES = 1 << 15
BNB_CHUNK_SECONDS = 0.05
#: Outer-approximation rounds of one buyer MILP (``max_rounds``).
MILP_MAX_ROUNDS = 200
#: After a stop at a deadline, buyers left unsolved still get the bound of
#: :func:`buyer_relaxation` (``O(N log N)`` each, computed for blocks of buyers at once) for
#: this long; the later ones get the cruder ``O(N)`` bound of :func:`buyer_cap`, so that a
#: stopped run returns promptly even for thousands of buyers.
RELAXATION_GRACE_SECONDS = 0.3
#: Buyers per vectorised block of :func:`_relaxations` (the grace period is checked between blocks).
RELAXATION_BLOCK = 128
#: Options of a buyer search (``options=`` / keywords of the welfare, price and mechanism functions).
BUYER_OPTIONS = ("node_limit", "max_rounds")


def _expired_deadline() -> Deadline:
    d = Deadline(None)
    d.time_limit, d.end = 0.0, -math.inf
    return d


#: A :class:`~dm_opt.core.limits.Deadline` that has already passed (stop before solving anything).
EXPIRED = _expired_deadline()


# ------------------------------------------------------------------ limits
def stop_message(status: Termination, what: str) -> str:
    """One phrase saying why a run stopped (``what`` = the progress made)."""
    why = "interrupted by the user" if status is Termination.INTERRUPTED else "time limit reached"
    return f"{why} after {what}"


def past_grace(dl: Deadline) -> bool:
    """True when :data:`RELAXATION_GRACE_SECONDS` have passed since the end of ``dl``."""
    return dl.end is not None and time.perf_counter() >= dl.end + RELAXATION_GRACE_SECONDS


def resolve_buyer_method(market: SharingMarket, method, buyer_method) -> str:
    """The buyer method to use from the registry-style ``method`` and ``buyer_method``.

    The sharing family has one exact method per problem (``method="auto"``, the
    per-buyer decomposition of RJ eq. 11); the per-buyer algorithm is ``buyer_method``.
    A per-buyer algorithm given as ``method`` (the spelling of ``dm-opt solve --method``
    and of earlier versions) is accepted as ``buyer_method``."""
    if method is None:
        method = "auto"
    if method != "auto":
        if method not in BUYER_METHODS:
            raise ProblemError(f"unknown method {method!r} for kind sharing_network; choose 'auto' (the per-buyer "
                               f"algorithm is buyer_method=, one of {', '.join(BUYER_METHODS)})")
        if buyer_method not in (None, "auto", method):
            raise ProblemError(f"method {method!r} and buyer_method {buyer_method!r} disagree")
        buyer_method = method
    return check_buyer_method(market, "auto" if buyer_method is None else buyer_method)


def available_buyer_methods(market: SharingMarket) -> list:
    """The buyer methods that run on ``market`` here (``milp`` needs highspy)."""
    if market.family == "table":
        return ["enumerate"]
    out = ["enumerate", "bnb"]
    if importlib.util.find_spec("highspy") is not None:
        out.append("milp")
    return out


def merge_options(options, kw: dict) -> dict:
    """``options`` (a dict) and keyword options together, checked (:data:`BUYER_OPTIONS`)."""
    if options is not None and not isinstance(options, dict):
        raise ProblemError(f"options must be a dict, got {type(options).__name__}")
    merged = dict(options or {})
    for k, v in kw.items():
        if k in merged and merged[k] != v:
            raise ProblemError(f"option {k!r} given twice with different values")
        merged[k] = v
    check_options(merged, BUYER_OPTIONS)
    return {k: v for k, v in merged.items() if v is not None}


@dataclass(frozen=True)
class BuyerProblem:
    """One buyer's problem ``max_x U_i(x) − Σ_j x_j p_j`` (RJ eq. 9).

    ``prices[j]`` per unit from seller ``j`` (welfare: ``c_j(i)``),
    ``upper[j]`` the largest number of units (0 excludes ``j``), ``quality``
    scales the samples delivered (D-mixed-VCG base distortion; the table
    family interpolates ``U(∅) + quality·(U(S) − U(∅))``), ``fixed`` maps a
    seller to a forced number of units.
    """

    buyer: int
    prices: np.ndarray
    upper: np.ndarray
    quality: float = 1.0
    fixed: tuple = ()


@dataclass(frozen=True)
class BuyerSolution(Result):
    """A solved (or stopped) buyer problem: ``units`` (N,) received from each seller, ``value``
    (also ``objective``) φ at ``units`` evaluated exactly, ``bound`` a proven upper bound on the
    optimum, ``status`` why it stopped, ``nodes`` nodes (bnb) / rounds (milp) / bundles (enumerate)."""

    family: ClassVar[str] = "sharing"

    units: np.ndarray
    value: float
    bound: float
    status: Termination
    nodes: int = 0

    @property
    def objective(self) -> float:
        return self.value

    @property
    def message(self) -> str:
        return "" if self.status is Termination.OPTIMAL else f"buyer problem stopped: {self.status}"


def allowed_upper(market: SharingMarket, i: int, exclude=()) -> np.ndarray:
    ub = market.max_queries.astype(np.int64).copy()
    ub[i] = 0
    for j in exclude:
        ub[int(j)] = 0
    return ub


def buyer_value(market: SharingMarket, i: int, units, prices, quality: float = 1.0) -> float:
    """``U_i(units; quality) − Σ_j units_j prices_j`` evaluated directly."""
    units = np.asarray(units, dtype=np.int64)
    pay = float(units @ np.asarray(prices, dtype=float))
    if market.family == "table":
        mask = 0
        for j in np.flatnonzero(units):
            mask |= 1 << int(j)
        u0 = market.value(i, 0)
        return u0 + quality * (market.value(i, mask) - u0) - pay
    w = units.astype(float) * quality
    w[i] = 0.0
    return market.power_value(i, float(w @ market.query_samples)) - pay


def buyer_relaxation(market: SharingMarket, prob: BuyerProblem,
                     status: Termination = Termination.TIME_LIMIT) -> BuyerSolution:
    """A proven upper bound of one buyer problem and a feasible bundle, without search.

    Used for the buyers a time limit or Ctrl-C left unsolved (and to tighten a
    stopped search).  ``bound`` is proven as follows.

    * Power family: the continuous relaxation ``max f(m0 + Σ_j s_j y_j) − Σ_j p_j y_j``
      over ``0 ≤ y_j ≤ ub_j`` (``f(m) = α_i (1 − m^(−β_i))``, ``s_j = q_j × quality``),
      solved exactly.  For a total ``z = Σ s_j y_j`` the cheapest ``y`` is the
      fractional knapsack in increasing ``p_j / s_j``, whose cost ``c(z)`` is convex
      piecewise linear; ``f(m0 + z) − c(z)`` is concave, so the optimum fills
      sellers in that order while the marginal value ``α β m^(−β−1)`` exceeds the
      ratio, the crossing seller fractionally.  Every integer bundle is feasible for
      the relaxation, hence ``bound ≥`` the optimum (the same relaxation bounds the
      nodes of the branch and bound).
    * Table family: ``U_i(∅) + quality·(max_S U_i(S) − U_i(∅)) + Σ_j max(−p_j, 0) ub_j − (fixed
      payments)`` with the maximum over the partner sets allowed by ``upper`` and
      ``fixed``: the value of a bundle is at most its utility, and its payment is at
      least the payment to sellers with negative prices (non-negative costs in RJ
      eq. 4, so for welfare it is just the best utility of the row).

    The bundle is the better (exactly evaluated) of the empty bundle and the
    relaxation rounded down and up (power family) or the best-utility set (table).
    """
    i, N = prob.buyer, market.n
    fixed = dict(prob.fixed)
    if market.family == "table":
        U = market.utility_table()[i]
        u0 = float(U[0])
        allowed = 0
        fin = 0
        for j in range(N):
            if prob.upper[j] > 0 and j not in fixed and j != i:
                allowed |= 1 << j
        for j, k in fixed.items():
            if k:
                fin |= 1 << int(j)
        masks = np.arange(1 << N, dtype=np.int64)
        ok = ((masks & ~(allowed | fin)) == 0) & ((masks & fin) == fin)
        cand = masks[ok]
        best_mask = int(cand[int(np.argmax(U[cand]))])
        c0 = sum(float(prob.prices[j]) * k for j, k in fixed.items())
        neg = sum(max(-float(prob.prices[j]), 0.0) * int(prob.upper[j]) for j in members_of(allowed))
        bound = u0 + prob.quality * (float(U[best_mask]) - u0) + neg - c0
        bundles = []
        for m in (fin, best_mask):
            units = np.zeros(N, dtype=np.int64)
            for j in members_of(m):
                units[j] = 1
            for j, k in fixed.items():
                units[j] = k
            bundles.append(units)
    else:
        free, ub, m0, c0, fixed = _power_reduced(market, prob)
        a, b = float(market.alpha[i]), float(market.beta[i])
        s = market.query_samples[free] * prob.quality
        p = prob.prices[free].astype(float)
        u = ub[free].astype(np.int64)
        ratio = p / s
        take = np.zeros(len(free), dtype=np.int64)
        val = a * (1.0 - m0 ** (-b)) - c0
        crossing = None
        # the greedy fill in increasing p_j/s_j, vectorised: M[t] is the total before item t
        order = np.lexsort((np.arange(len(free)), ratio))
        order = order[u[order] > 0]
        rr = ratio[order]
        M = np.cumsum(np.r_[m0, u[order] * s[order]])
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            mstar = np.where(rr > 0, (a * b / np.where(rr > 0, rr, 1.0)) ** (1.0 / (b + 1.0)), np.inf)
        stop_here = a * b * M[:-1] ** (-b - 1.0) <= rr           # marginal value no longer above the price
        partial = mstar < M[1:]                                  # the optimum falls inside this block
        ev = stop_here | partial
        T = int(np.argmax(ev)) if ev.any() else len(order)
        full = order[:T]
        take[full] = u[full]
        incs = a * (M[:T] ** (-b) - M[1:T + 1] ** (-b)) - p[full] * u[full]
        val = float(np.cumsum(np.r_[val, incs])[-1])
        if T < len(order) and not stop_here[T]:
            k, r, mcur = int(order[T]), float(rr[T]), float(M[T])
            val += a * (mcur ** (-b) - float(mstar[T]) ** (-b)) - r * (float(mstar[T]) - mcur)
            crossing = (k, (float(mstar[T]) - mcur) / s[k])
        bound = float(val)
        bundles = []
        options = [take]
        if crossing is not None:
            k, y = crossing
            lo = take.copy()
            lo[k] = min(int(np.floor(y)), u[k])
            hi = take.copy()
            hi[k] = min(int(np.ceil(y)), u[k])
            options = [lo, hi]
        for opt in [np.zeros(len(free), dtype=np.int64)] + options:
            units = np.zeros(N, dtype=np.int64)
            units[free] = opt
            for j, k in fixed.items():
                units[j] = k
            bundles.append(units)
    vals = [buyer_value(market, i, x, prob.prices, prob.quality) for x in bundles]
    best = int(np.argmax(vals))
    v = float(vals[best])
    return BuyerSolution(bundles[best], v, max(v, float(bound)), Termination(status), 0)


def buyer_cap(market: SharingMarket, prob: BuyerProblem,
              status: Termination = Termination.TIME_LIMIT) -> BuyerSolution:
    """A cruder proven bound than :func:`buyer_relaxation`, in ``O(N)``, with the bundle of the
    forced (``fixed``) units only.

    Power family: the value of a bundle is at most the utility of every allowed unit,
    ``α_i (1 − (m0 + Σ_j s_j ub_j)^(−β_i))`` (``U`` increases in the samples), and its
    payment at least ``Σ_j min(p_j, 0) ub_j`` plus the fixed payments; the table family
    uses :func:`buyer_relaxation` (already ``O(2^N)`` with ``N ≤ 16``)."""
    if market.family == "table":
        return buyer_relaxation(market, prob, status)
    i, N = prob.buyer, market.n
    free, ub, m0, c0, fixed = _power_reduced(market, prob)
    s = market.query_samples[free] * prob.quality
    u = ub[free].astype(float)
    p = prob.prices[free].astype(float)
    bound = market.alpha[i] * (1.0 - (m0 + float(s @ u)) ** (-market.beta[i])) - c0 + float(np.maximum(-p, 0.0) @ u)
    units = np.zeros(N, dtype=np.int64)
    for j, k in fixed.items():
        units[j] = k
    v = buyer_value(market, i, units, prob.prices, prob.quality)
    return BuyerSolution(units, v, max(v, float(bound)), Termination(status), 0)


def stopped_bound(market: SharingMarket, prob: BuyerProblem, status: Termination, dl: Deadline) -> BuyerSolution:
    """The bound of a buyer left unsolved by a stop: :func:`buyer_relaxation` until
    :data:`RELAXATION_GRACE_SECONDS` after the end of ``dl`` (always, without a limit),
    :func:`buyer_cap` afterwards."""
    if not past_grace(dl):
        return buyer_relaxation(market, prob, status)
    return buyer_cap(market, prob, status)


def stopped_bounds(market: SharingMarket, probs: dict, buyers, status: Termination, dl: Deadline) -> dict:
    """:func:`stopped_bound` for many buyers after a stop, fast: the power family's relaxations
    are computed for blocks of buyers at once (:func:`_relaxations`, the same greedy fill
    vectorised over buyers) while the grace period :data:`RELAXATION_GRACE_SECONDS` lasts;
    buyers left after it get :func:`buyer_cap` (one vectorised pass)."""
    out = {}
    buyers = list(buyers)
    if not buyers:
        return out
    batch = market.family == "power" and not any(probs[i].fixed for i in buyers)
    pos = 0
    # the grace period runs from now (the stop may have been noticed after the deadline)
    grace_end = None if dl.end is None else time.perf_counter() + RELAXATION_GRACE_SECONDS
    while pos < len(buyers) and (grace_end is None or time.perf_counter() < grace_end):
        if batch:
            block = buyers[pos:pos + RELAXATION_BLOCK]
            out.update(_relaxations(market, [probs[i] for i in block], status))
            pos += len(block)
        else:
            out[buyers[pos]] = buyer_relaxation(market, probs[buyers[pos]], status)
            pos += 1
    rest = buyers[pos:]
    if not rest:
        return out
    if not batch:
        out.update({i: buyer_cap(market, probs[i], status) for i in rest})
        return out
    idx = np.array(rest)
    U = np.stack([probs[i].upper for i in rest], axis=1).astype(float)        # (N, k): units allowed from j
    P = np.stack([probs[i].prices for i in rest], axis=1).astype(float)
    qual = np.array([probs[i].quality for i in rest], float)
    most = (market.query_samples @ U) * qual
    a, b, n0 = market.alpha[idx], market.beta[idx], market.samples[idx]
    bound = a * (1.0 - (n0 + most) ** (-b)) + np.sum(np.maximum(-P, 0.0) * U, axis=0)
    empty = a * (1.0 - n0 ** (-b))                                               # the empty bundle, exactly
    st = Termination(status)
    for r, i in enumerate(rest):
        out[i] = BuyerSolution(np.zeros(market.n, dtype=np.int64), float(empty[r]),
                               max(float(empty[r]), float(bound[r])), st, 0)
    return out


def _relaxations(market: SharingMarket, probs: list, status: Termination) -> dict:
    """:func:`buyer_relaxation` for several power-family buyer problems without ``fixed``
    units at once: the greedy fill in increasing ``p_j/s_j`` (ties by seller index) as
    array operations over an (N, k) block, then the same candidate bundles (empty, the
    filled sellers, the crossing seller rounded down and up) evaluated exactly by
    :func:`buyer_value`.  Same bound and bundle as one call per buyer (checked in the tests)."""
    N = market.n
    k = len(probs)
    buyer = np.array([p.buyer for p in probs])
    qual = np.array([p.quality for p in probs], float)
    U = np.stack([p.upper for p in probs], axis=1).astype(np.int64)          # (N, k)
    U[buyer, np.arange(k)] = 0
    Pm = np.stack([p.prices for p in probs], axis=1).astype(float)
    S = market.query_samples[:, None] * qual[None, :]
    a, b, m0 = market.alpha[buyer], market.beta[buyer], market.samples[buyer].astype(float)
    valid = U > 0
    ratio = np.where(valid, Pm / S, np.inf)
    order = np.argsort(ratio, axis=0, kind="stable")                          # ties by seller index
    cols = np.arange(k)[None, :]
    rr, Us, Ss, Ps, ok = ratio[order, cols], U[order, cols], S[order, cols], Pm[order, cols], valid[order, cols]
    M = np.cumsum(np.vstack([m0[None, :], np.where(ok, Us * Ss, 0.0)]), axis=0)   # (N+1, k): total before item t
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        mstar = np.where(rr > 0, (a * b / np.where(rr > 0, rr, 1.0)) ** (1.0 / (b + 1.0)), np.inf)
        stop_here = ~ok | (a * b * M[:-1] ** (-b - 1.0) <= rr)
        partial = mstar < M[1:]
    ev = stop_here | partial
    T = np.where(ev.any(axis=0), np.argmax(ev, axis=0), N)
    t = np.arange(N)[:, None]
    full = t < T[None, :]
    with np.errstate(over="ignore", invalid="ignore"):
        incs = np.where(full, a * (M[:-1] ** (-b) - M[1:] ** (-b)) - Ps * Us, 0.0)
    val = np.cumsum(np.vstack([(a * (1.0 - m0 ** (-b)))[None, :], incs]), axis=0)[-1]
    # the candidate bundles: empty, the filled sellers, and the crossing seller rounded down/up
    take = np.zeros((N, k), dtype=np.int64)
    take[order, cols] = np.where(full, Us, 0)
    cross = (T < N) & ~stop_here[np.minimum(T, N - 1), np.arange(k)]
    Tc = np.minimum(T, N - 1)
    kk = order[Tc, np.arange(k)]
    mcur, ms, rc = M[Tc, np.arange(k)], mstar[Tc, np.arange(k)], rr[Tc, np.arange(k)]
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        y = np.where(cross, (ms - mcur) / S[kk, np.arange(k)], 0.0)
        bound = np.where(cross, val + a * (mcur ** (-b) - ms ** (-b)) - rc * (ms - mcur), val)
    ucap = U[kk, np.arange(k)]
    lo_k = np.where(cross, np.minimum(np.floor(y), ucap), 0).astype(np.int64)
    hi_k = np.where(cross, np.minimum(np.ceil(y), ucap), 0).astype(np.int64)
    recv = market.query_samples @ (take * qual[None, :])
    pay = np.sum(take * Pm, axis=0)
    s_k, p_k = S[kk, np.arange(k)], Pm[kk, np.arange(k)]

    def value(extra):
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return a * (1.0 - (m0 + recv + extra * s_k) ** (-b)) - (pay + extra * p_k)

    cand = np.vstack([a * (1.0 - m0 ** (-b)), np.where(cross, value(lo_k), value(0)),
                      np.where(cross, value(hi_k), -np.inf)])
    pick = np.argmax(cand, axis=0)                         # the best candidate (re-evaluated exactly below)
    st = Termination(status)
    out = {}
    for c, prob in enumerate(probs):
        units = np.zeros(N, dtype=np.int64)
        if pick[c] > 0:
            units[:] = take[:, c]
            if cross[c]:
                units[kk[c]] = lo_k[c] if pick[c] == 1 else hi_k[c]
        v = buyer_value(market, prob.buyer, units, prob.prices, prob.quality)
        out[prob.buyer] = BuyerSolution(units, v, max(v, float(bound[c])), st, 0)
    return out


def members_of(mask: int):
    """Agents in the bit mask ``mask``, ascending."""
    j = 0
    while mask:
        if mask & 1:
            yield j
        mask >>= 1
        j += 1


def _improve(market, prob: BuyerProblem, sol: BuyerSolution) -> BuyerSolution:
    """A stopped buyer search, tightened with :func:`buyer_relaxation`: the better bundle,
    the smaller of the two proven bounds."""
    r = buyer_relaxation(market, prob, sol.status)
    units, v = (sol.units, sol.value) if sol.value >= r.value else (r.units, r.value)
    return BuyerSolution(units, v, max(v, min(sol.bound, r.bound)), sol.status, sol.nodes)


def _solve_enumerate(market, prob: BuyerProblem) -> BuyerSolution:
    i, N = prob.buyer, market.n
    ub = prob.upper.copy()
    fixed = dict(prob.fixed)
    for j in fixed:
        ub[j] = 0
    if market.family == "table":
        if N > MAX_TABLE_AGENTS:
            raise LimitExceeded(f"enumeration needs N <= {MAX_TABLE_AGENTS}")
        free = [j for j in range(N) if ub[j] > 0]
        fmask = 0
        for j, k in fixed.items():
            if k:
                fmask |= 1 << j
        U = market.utility_table()[i]
        # all subsets of the free sellers, vectorised
        sub = np.zeros(1, dtype=np.int64)
        for j in free:
            sub = np.concatenate([sub, sub | (1 << j)])
        bits = ((sub[:, None] >> np.arange(N)[None, :]) & 1).astype(float)
        masks = sub | fmask
        u0 = U[0]
        c0 = sum(prob.prices[j] * k for j, k in fixed.items())
        val = u0 + prob.quality * (U[masks] - u0) - bits @ prob.prices - c0
        b = int(np.argmax(val))
        units = bits[b].astype(np.int64)
        for j, k in fixed.items():
            units[j] = k
        v = buyer_value(market, i, units, prob.prices, prob.quality)
        return BuyerSolution(units, v, v, Termination.OPTIMAL, len(sub))
    free = [j for j in range(N) if ub[j] > 0]
    count = int(np.prod([ub[j] + 1 for j in free], dtype=float)) if free else 1
    if count > MAX_ENUMERATE_BUNDLES:
        raise LimitExceeded(f"buyer {i}: {count} bundles exceed the enumeration limit {MAX_ENUMERATE_BUNDLES}; "
                            "use method 'bnb' or 'milp'")
    grids = np.array(list(itertools.product(*[range(ub[j] + 1) for j in free])), dtype=np.int64).reshape(-1, len(free))
    q = market.query_samples[free] * prob.quality
    m0 = market.samples[i] + sum(k * market.query_samples[j] * prob.quality for j, k in fixed.items())
    c0 = sum(k * prob.prices[j] for j, k in fixed.items())
    val = market.alpha[i] * (1.0 - (m0 + grids @ q) ** (-market.beta[i])) - grids @ prob.prices[free] - c0
    b = int(np.argmax(val))
    units = np.zeros(N, dtype=np.int64)
    units[free] = grids[b]
    for j, k in fixed.items():
        units[j] = k
    v = buyer_value(market, i, units, prob.prices, prob.quality)
    return BuyerSolution(units, v, v, Termination.OPTIMAL, len(grids))


def _power_reduced(market, prob: BuyerProblem):
    i = prob.buyer
    ub = prob.upper.copy()
    fixed = dict(prob.fixed)
    for j in fixed:
        ub[j] = 0
    free = np.flatnonzero(ub > 0)
    m0 = market.samples[i] + sum(k * market.query_samples[j] * prob.quality for j, k in fixed.items())
    c0 = sum(k * prob.prices[j] for j, k in fixed.items())
    return free, ub, float(m0), float(c0), fixed


def _solve_bnb(market, prob: BuyerProblem, node_limit: int = BNB_NODE_LIMIT,
               dl: Deadline | None = None) -> BuyerSolution:
    """Branch and bound (:func:`~dm_opt.sharing.kernels.buyer_bnb_run`) in compiled
    calls of adaptive size; between calls the node limit, the deadline ``dl`` and Ctrl-C are
    honoured (the first call always runs).  When stopped, the bound is the larger of the
    incumbent and the relaxation bounds of the open nodes
    (:func:`~dm_opt.sharing.kernels.buyer_bnb_open_bound`)."""
    if market.family != "power":
        raise ProblemError("method 'bnb' needs the power family; use 'enumerate' for tables")
    i, N = prob.buyer, market.n
    free, ub, m0, c0, fixed = _power_reduced(market, prob)
    if np.any(prob.prices[free] < 0):
        raise ProblemError("method 'bnb' needs non-negative prices")
    alpha, beta = float(market.alpha[i]), float(market.beta[i])
    it_s, it_c, it_k, ratio = K.buyer_bnb_items(
        np.ascontiguousarray(market.query_samples[free] * prob.quality, dtype=float),
        np.ascontiguousarray(prob.prices[free], dtype=float), np.ascontiguousarray(ub[free], dtype=np.int64))
    n = it_s.shape[0]
    x, best_x, state, mm, cc, bnd, ctl, fl = K.buyer_bnb_state(n, float(m0), alpha, beta)
    status = Termination.OPTIMAL
    chunk = max(1, int(BNB_CHUNK_NODES))
    try:
        while ctl[0] >= 0:
            left = int(node_limit) - int(ctl[1])
            if left <= 0:
                status = Termination.NODE_LIMIT
                break
            if ctl[1] > 0 and dl is not None and dl.expired():
                status = Termination.TIME_LIMIT
                break
            t = time.perf_counter()
            K.buyer_bnb_run(m0, alpha, beta, it_s, it_c, ratio, x, best_x, state, mm, cc, bnd, ctl, fl,
                            min(chunk, left))
            chunk = adapt_chunk(chunk, time.perf_counter() - t, BNB_CHUNK_SECONDS, lo=64, hi=1 << 24)
    except KeyboardInterrupt:
        # the kernel updates its state only when a call returns: what is left is consistent
        status = Termination.INTERRUPTED
    units = np.zeros(N, dtype=np.int64)
    np.add.at(units, free[it_k[best_x]], 1)
    for j, k in fixed.items():
        units[j] = k
    v = buyer_value(market, i, units, prob.prices, prob.quality)
    if status is Termination.OPTIMAL:
        return BuyerSolution(units, v, v, status, int(ctl[1]))
    bound = float(K.buyer_bnb_open_bound(state, bnd, ctl, fl[0])) - c0
    return BuyerSolution(units, v, max(v, bound), status, int(ctl[1]))


def _solve_milp(market, prob: BuyerProblem, max_rounds: int = MILP_MAX_ROUNDS,
                dl: Deadline | None = None) -> BuyerSolution:
    """Outer approximation with HiGHS: ``max y − Σ p_j x_j``, ``y ≤ f(z_t) + f'(z_t)(z − z_t)``
    for tangent points ``z_t``, ``z = Σ q_j x_j``; add a tangent at the incumbent until tight.

    Each HiGHS run gets what is left of ``dl``; when stopped (time, Ctrl-C) the last
    integer-feasible incumbent is returned (the empty bundle if there is none) with HiGHS'
    dual bound of the last finished MILP, which bounds the true problem because the
    tangent cuts only over-estimate the concave value (a relaxation).  ``max_rounds``
    exhausted: status ``iteration_limit``; a final gap above :data:`MILP_GAP_TOL`: ``feasible``."""
    if market.family != "power":
        raise ProblemError("method 'milp' needs the power family; use 'enumerate' for tables")
    import highspy  # heavy: loaded only when a MILP is solved

    silence_banner()
    i, N = prob.buyer, market.n
    free, ub, m0, c0, fixed = _power_reduced(market, prob)
    a, b = float(market.alpha[i]), float(market.beta[i])
    q = market.query_samples[free] * prob.quality
    n = len(free)

    def f(z):
        return a * (1.0 - (m0 + z) ** (-b))

    def fp(z):
        return a * b * (m0 + z) ** (-b - 1.0)

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-12)
    # tight feasibility so the tangent cuts bind to ~1e-9 (defaults 1e-7/1e-6 leave y above f(z))
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)
    inf = highspy.kHighsInf
    # columns: x_0..x_{n-1} (integer), y (free above, value of data)
    cost = np.concatenate([-prob.prices[free], [1.0]])
    lo = np.zeros(n + 1)
    hi = np.concatenate([ub[free].astype(float), [a]])
    h.addCols(n + 1, cost, lo, hi, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    if n:
        h.changeColsIntegrality(n, np.arange(n, dtype=np.int32),
                                np.array([highspy.HighsVarType.kInteger] * n))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    zmax = float(q @ ub[free]) if n else 0.0

    def add_tangent(zt):
        # y − f'(zt) Σ q_j x_j ≤ f(zt) − f'(zt) zt
        g = fp(zt)
        idx = np.concatenate([np.arange(n), [n]]).astype(np.int32)
        val = np.concatenate([-g * q, [1.0]])
        h.addRows(1, np.array([-inf]), np.array([f(zt) - g * zt]), n + 1, np.array([0], np.int32), idx, val)

    for zt in np.unique(np.linspace(0.0, zmax, 5)):
        add_tangent(float(zt))
    tried = set()
    status = Termination.OPTIMAL
    x = np.zeros(n)
    rounds = 0
    bound = np.inf
    if dl is None:
        dl = Deadline(None)
    try:
        while True:
            left = dl.remaining()
            if left is not None:
                if left <= 0:
                    status = Termination.TIME_LIMIT
                    break
                h.setOptionValue("time_limit", float(left))
            rounds += 1
            # in a worker thread: Ctrl-C and the deadline become HiGHS' own interrupt, and the call
            # returns soon after the deadline even when HiGHS is in a phase without clock checks
            why, abandoned = run_highs(h, dl.end)
            if abandoned:              # h may not be read: keep the last finished round's x and bound
                status = Termination.INTERRUPTED if why == "interrupted" else Termination.TIME_LIMIT
                break
            term = highs_termination(h.getModelStatus())
            if why == "interrupted":
                status = Termination.INTERRUPTED
            elif why == "time_limit" and term is not Termination.OPTIMAL:
                status = Termination.TIME_LIMIT          # the deadline asked HiGHS to stop
            elif term is not Termination.OPTIMAL:
                if not term.is_limit:
                    raise SolverFailed(f"HiGHS stopped with status {h.modelStatusToString(h.getModelStatus())} "
                                       f"on buyer {i}")
                status = term
            info = h.getInfo()
            if not info.valid:       # stopped before HiGHS solved anything: its fields read 0, not a bound
                break
            if status is Termination.OPTIMAL or highs_has_solution(h):
                sol = np.asarray(h.getSolution().col_value)
                x = np.clip(np.round(sol[:n]), 0, ub[free])
                y = sol[n]
            else:
                x, y = np.zeros(n), -np.inf                # no incumbent: the empty bundle
            z = float(q @ x) if n else 0.0
            bound = min(bound, float(info.mip_dual_bound))
            if status is not Termination.OPTIMAL:
                break
            if y <= f(z) + 1e-10 * max(1.0, abs(a)) or z in tried or rounds >= max_rounds:
                if rounds >= max_rounds and y > f(z) + 1e-10 * max(1.0, abs(a)):
                    status = Termination.ITERATION_LIMIT         # outer-approximation rounds exhausted
                break
            tried.add(z)
            add_tangent(z)
    except KeyboardInterrupt:
        # x and bound are those of the last finished round: feasible, and a valid bound
        status = Termination.INTERRUPTED
    units = np.zeros(N, dtype=np.int64)
    units[free] = x.astype(np.int64)
    for j, k in fixed.items():
        units[j] = k
    v = buyer_value(market, i, units, prob.prices, prob.quality)
    # HiGHS' dual bound of the last (relaxed, tangent-cut) MILP bounds the true optimum up to
    # its tolerances; report it rather than claiming the incumbent is exact.  (Every round's
    # MILP is a relaxation of the true problem, so the smallest dual bound seen is valid.)
    bound = max(v, bound - c0)
    if status is Termination.OPTIMAL and relative_gap(v, bound) > MILP_GAP_TOL:
        status = Termination.FEASIBLE                            # finished, gap above the tolerance
    return BuyerSolution(units, v, bound, status, rounds)


def check_buyer_method(market, buyer_method: str) -> str:
    """``buyer_method`` checked against the market (``auto`` resolved)."""
    if buyer_method not in BUYER_METHODS:
        raise ProblemError(f"unknown method {buyer_method!r}; choose one of {', '.join(BUYER_METHODS)}")
    if buyer_method == "auto":
        buyer_method = "enumerate" if market.family == "table" else "bnb"
    if buyer_method in ("bnb", "milp") and market.family != "power":
        raise ProblemError(f"method '{buyer_method}' needs the power family; use 'enumerate' for tables")
    return buyer_method


def check_options(kw: dict, allowed) -> None:
    for key in kw:
        if key not in allowed:
            raise ProblemError(f"unknown option {key!r}; options: {', '.join(allowed)}")
    nl = kw.get("node_limit")
    if nl is not None and (isinstance(nl, (bool, np.bool_)) or not isinstance(nl, (numbers.Integral, np.integer))
                           or nl < 1):
        raise ProblemError(f"node_limit must be a positive integer, got {nl!r}")
    mr = kw.get("max_rounds")
    if mr is not None and (isinstance(mr, (bool, np.bool_)) or not isinstance(mr, (numbers.Integral, np.integer))
                           or mr < 1):
        raise ProblemError(f"max_rounds must be a positive integer, got {mr!r}")


def solve_buyer(market: SharingMarket, prob: BuyerProblem, buyer_method: str = "auto", *,
                time_limit: float | Deadline | None = None, node_limit: int | None = None,
                max_rounds: int | None = None) -> BuyerSolution:
    """Solve one buyer problem exactly with ``buyer_method`` (see the module docstring).

    Limits: ``time_limit`` (seconds, or a :class:`~dm_opt.core.limits.Deadline` shared with
    the caller; bnb and milp — the vectorised enumeration runs to the end), ``node_limit``
    (bnb), ``max_rounds`` (milp).  When a limit is hit, or on Ctrl-C inside the bnb/milp
    search, the best bundle is returned with a proven bound (tightened with
    :func:`buyer_relaxation`) and a non-optimal status.
    """
    buyer_method = check_buyer_method(market, buyer_method)
    check_options({"node_limit": node_limit, "max_rounds": max_rounds}, BUYER_OPTIONS)
    dl = Deadline.of(time_limit)
    if buyer_method == "enumerate":
        sol = _solve_enumerate(market, prob)
    elif buyer_method == "bnb":
        sol = _solve_bnb(market, prob, BNB_NODE_LIMIT if node_limit is None else node_limit, dl)
    else:
        sol = _solve_milp(market, prob, MILP_MAX_ROUNDS if max_rounds is None else max_rounds, dl)
    if sol.status is not Termination.OPTIMAL:
        sol = _improve(market, prob, sol)
    return sol


__all__ = ["BuyerProblem", "BuyerSolution", "solve_buyer", "buyer_value", "buyer_relaxation", "buyer_cap",
           "stopped_bound", "stopped_bounds", "BUYER_METHODS", "BUYER_OPTIONS", "VALUE_TOL", "MILP_GAP_TOL",
           "EXPIRED", "available_buyer_methods", "resolve_buyer_method", "check_buyer_method"]
