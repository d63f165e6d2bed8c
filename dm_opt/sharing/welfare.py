"""Unilateral sharing with prices (RJ §4; per-query extension §6).

With additive costs (RJ eq. 4 / eq. 35) social welfare decomposes per buyer
(RJ eq. 11):

    max_G Σ_i V_i(G) = Σ_i max_{x_i} φ_i(x_i),   φ_i(x) = U_i(x) − Σ_j x_j c_j(i),

where ``x_i[j]`` is the number of units (0/1 data sets, or queries in §6) that
buyer ``i`` receives from seller ``j``.  Each buyer problem is solved by

* ``enumerate`` — every bundle (table family: every subset via the tabulated
  row; power family: every integer vector, up to :data:`MAX_ENUMERATE_BUNDLES`);
* ``bnb`` — branch and bound for the power family with the exact continuous
  relaxation as bound (:func:`dm_opt.sharing.kernels.buyer_bnb`);
* ``milp`` — HiGHS (matrix API) with integer ``x`` and an outer approximation
  of the concave value by tangent cuts, refined at the incumbent until the
  cut value equals the true value (exact: the MILP is a relaxation, and at
  termination its optimum is attained by the incumbent).

:func:`competitive_prices` gives the prices of RJ Prop 4.1 (seller ``i``
charges ``c_i(j)`` per unit), the payments of eq. 6, the price range of
Prop 4.2 and an independent check that each buyer's demand at those prices
reproduces the welfare-maximising graph.

**Limits and interruption.**  :func:`welfare_max` and :func:`competitive_prices`
take a global ``time_limit`` (seconds) shared by every buyer problem and stop
cleanly on Ctrl-C (``KeyboardInterrupt``): the buyers solved so far keep their
exact optimum; the others get a feasible bundle and the proven bound of
:func:`buyer_relaxation`, so the result always carries a feasible graph, a
proven ``bound``, ``gap`` and an honest ``status`` (``time_limit``,
``interrupted``; never ``optimal`` unless every buyer was solved exactly).
Deadlines are absolute :func:`time.perf_counter` values (:func:`make_deadline`)
so that one limit can be shared by several calls (mechanisms, the CLI).  After a
stop the relaxation bounds are computed for blocks of buyers at once for at most
:data:`RELAXATION_GRACE_SECONDS`, the remaining buyers get the cruder bound of
:func:`buyer_cap`, and HiGHS runs return within two grace periods of
:data:`dm_opt.core.limits.STOP_GRACE_SECONDS` (:func:`dm_opt.core.limits.run_highs`), so a
stopped call returns within its limit plus well under a second — beyond the
``O(N²)`` it takes to assemble an ``N × N`` result at large ``N``.
"""

from __future__ import annotations

import itertools
import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from dm_opt.core.errors import LimitExceeded, ProblemError, SolverFailed
from dm_opt.core.limits import Deadline, adapt_chunk, check_time_limit
from dm_opt.core.result import Termination, relative_gap
from dm_opt.sharing import kernels as K
from dm_opt.sharing.market import MAX_TABLE_AGENTS, SharingMarket

METHODS = ("auto", "enumerate", "bnb", "milp")
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
#: ``deadline`` value meaning "already expired" (stop before solving anything).
EXPIRED = -math.inf
#: After a stop at a deadline, buyers left unsolved still get the bound of
#: :func:`buyer_relaxation` (``O(N log N)`` each, computed for blocks of buyers at once) for
#: this long; the later ones get the cruder ``O(N)`` bound of :func:`buyer_cap`, so that a
#: stopped run returns promptly even for thousands of buyers.
RELAXATION_GRACE_SECONDS = 0.3


# ------------------------------------------------------------------ limits
def make_deadline(time_limit=None, deadline=None, start: float | None = None) -> float | None:
    """Absolute deadline (a :func:`time.perf_counter` value) from a ``time_limit`` in
    seconds counted from ``start`` (default now) and/or an inherited ``deadline``
    (the earlier wins); None when neither is given.  A shared
    :class:`dm_opt.core.limits.Deadline` passed as ``time_limit`` keeps its own clock."""
    if isinstance(time_limit, Deadline):
        ends = [e for e in (time_limit.end, deadline) if e is not None]
        time_limit, deadline = None, (min(ends) if ends else None)
    tl = check_time_limit(time_limit)
    if deadline is not None:
        if isinstance(deadline, (bool, np.bool_)) or not isinstance(deadline, (numbers.Real, np.number)) \
                or math.isnan(deadline):
            raise ProblemError(f"deadline must be a time.perf_counter() value or None, got {deadline!r}")
        deadline = float(deadline)
    if tl is None:
        return deadline
    end = (time.perf_counter() if start is None else start) + tl
    return end if deadline is None else min(end, deadline)


def expired(deadline: float | None) -> bool:
    """True when ``deadline`` (from :func:`make_deadline`) has passed."""
    return deadline is not None and time.perf_counter() >= deadline


def remaining(deadline: float | None) -> float | None:
    """Seconds left before ``deadline`` (None = no limit; may be ≤ 0)."""
    return None if deadline is None else deadline - time.perf_counter()


def stop_message(status: Termination, what: str) -> str:
    """One phrase saying why a run stopped (``what`` = the progress made)."""
    why = "interrupted by the user" if status is Termination.INTERRUPTED else "time limit reached"
    return f"{why} after {what}"


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
class BuyerSolution:
    units: np.ndarray         # (N,) int units received from each seller
    value: float              # φ at ``units`` (evaluated exactly)
    bound: float              # proven upper bound on the optimum
    status: Termination
    nodes: int = 0


def _allowed_upper(market: SharingMarket, i: int, exclude=()) -> np.ndarray:
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


def stopped_bound(market: SharingMarket, prob: BuyerProblem, status: Termination,
                  deadline: float | None) -> BuyerSolution:
    """The bound of a buyer left unsolved by a stop: :func:`buyer_relaxation` until
    :data:`RELAXATION_GRACE_SECONDS` after ``deadline`` (always, without a deadline),
    :func:`buyer_cap` afterwards."""
    if deadline is None or time.perf_counter() < deadline + RELAXATION_GRACE_SECONDS:
        return buyer_relaxation(market, prob, status)
    return buyer_cap(market, prob, status)


def _stopped_bounds(market: SharingMarket, probs: dict, buyers, status: Termination,
                    deadline: float | None) -> dict:
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
    grace_end = None if deadline is None else time.perf_counter() + RELAXATION_GRACE_SECONDS
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


#: Buyers per vectorised block of :func:`_relaxations` (the grace period is checked between blocks).
RELAXATION_BLOCK = 128


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
        val = u0 + prob.quality * (U[masks] - u0) - bits @ prob.prices - sum(prob.prices[j] * k for j, k in fixed.items())
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
               deadline: float | None = None) -> BuyerSolution:
    """Branch and bound (:func:`~dm_opt.sharing.kernels.buyer_bnb_run`) in compiled
    calls of adaptive size; between calls the node limit, the ``deadline`` and Ctrl-C are
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
            if ctl[1] > 0 and expired(deadline):
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


def _solve_milp(market, prob: BuyerProblem, max_rounds: int = 200, time_limit: float | None = None,
                deadline: float | None = None) -> BuyerSolution:
    """Outer approximation with HiGHS: ``max y − Σ p_j x_j``, ``y ≤ f(z_t) + f'(z_t)(z − z_t)``
    for tangent points ``z_t``, ``z = Σ q_j x_j``; add a tangent at the incumbent until tight.

    Each HiGHS run gets the smaller of ``time_limit`` (this buyer) and what is left
    before ``deadline``; when stopped (time, Ctrl-C) the last integer-feasible
    incumbent is returned (the empty bundle if there is none) with HiGHS' dual
    bound of the last finished MILP, which bounds the true problem because the
    tangent cuts only over-estimate the concave value (a relaxation)."""
    if market.family != "power":
        raise ProblemError("method 'milp' needs the power family; use 'enumerate' for tables")
    import highspy

    from dm_opt.core.highs import silence_banner
    from dm_opt.core.limits import run_highs

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
    t_start = time.perf_counter()
    try:
        while True:
            left = []
            if time_limit is not None:
                left.append(float(time_limit) - (time.perf_counter() - t_start))
            if deadline is not None:
                left.append(remaining(deadline))
            if left:
                if min(left) <= 0:
                    status = Termination.TIME_LIMIT
                    break
                h.setOptionValue("time_limit", float(min(left)))
            rounds += 1
            # in a worker thread: Ctrl-C and the deadline become HiGHS' own interrupt, and the call
            # returns soon after the deadline even when HiGHS is in a phase without clock checks
            why, abandoned = run_highs(h, None if not left else time.perf_counter() + min(left))
            if abandoned:              # h may not be read: keep the last finished round's x and bound
                status = Termination.INTERRUPTED if why == "interrupted" else Termination.TIME_LIMIT
                break
            ms = h.getModelStatus()
            if why == "interrupted":
                status = Termination.INTERRUPTED
            elif ms != highspy.HighsModelStatus.kOptimal:
                if ms in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt):
                    status = Termination.TIME_LIMIT
                else:
                    raise SolverFailed(f"HiGHS stopped with status {h.modelStatusToString(ms)} on buyer {i}")
            info = h.getInfo()
            if not info.valid:       # stopped before HiGHS solved anything: its fields read 0, not a bound
                break
            if status is Termination.OPTIMAL or info.primal_solution_status == 2:   # 2 = feasible
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
                    status = Termination.NODE_LIMIT
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
        status = Termination.NODE_LIMIT
    return BuyerSolution(units, v, bound, status, rounds)


def _auto(market) -> str:
    if market.family == "table":
        return "enumerate"
    return "bnb"


_BUYER_OPTIONS = ("node_limit", "time_limit", "max_rounds")


def _check_method(market, method: str) -> str:
    if method not in METHODS:
        raise ProblemError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "auto":
        method = _auto(market)
    if method in ("bnb", "milp") and market.family != "power":
        raise ProblemError(f"method '{method}' needs the power family; use 'enumerate' for tables")
    return method


def _check_options(kw: dict, allowed) -> None:
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
    if "time_limit" in kw:
        check_time_limit(kw["time_limit"])


def solve_buyer(market: SharingMarket, prob: BuyerProblem, method: str = "auto", *,
                deadline: float | None = None, **kw) -> BuyerSolution:
    """Solve one buyer problem exactly with ``method`` (see module docstring).

    Limits: ``node_limit`` (bnb), ``time_limit`` seconds / ``max_rounds`` (milp),
    ``deadline`` (absolute :func:`time.perf_counter` value, bnb and milp; the
    vectorised enumeration runs to the end).  When a limit is hit, or on Ctrl-C
    inside the bnb/milp search, the best bundle is returned with a proven bound
    (tightened with :func:`buyer_relaxation`) and a non-optimal status.
    """
    method = _check_method(market, method)
    _check_options(kw, _BUYER_OPTIONS)
    kw = {k: v for k, v in kw.items() if v is not None}
    if method == "enumerate":
        sol = _solve_enumerate(market, prob)
    elif method == "bnb":
        sol = _solve_bnb(market, prob, deadline=deadline, **{k: v for k, v in kw.items() if k == "node_limit"})
    else:
        sol = _solve_milp(market, prob, deadline=deadline,
                          **{k: v for k, v in kw.items() if k in ("max_rounds", "time_limit")})
    if sol.status is not Termination.OPTIMAL:
        sol = _improve(market, prob, sol)
    return sol


# ----------------------------------------------------------------- welfare
@dataclass(frozen=True)
class WelfareResult:
    """Welfare-maximising directed sharing graph (RJ eq. 11).

    ``share[j, i]`` units of ``j``'s data received by buyer ``i`` (``S_i^I`` =
    column ``i``); ``welfare`` (also ``objective``) = ``Σ_i V_i`` at ``share``
    (evaluated exactly with :func:`buyer_value`; equal to
    :meth:`SharingMarket.welfare`, or the sum without the excluded agent when
    ``exclude_agent`` is set); ``buyer_values[i]`` = ``φ_i`` at ``share``;
    ``buyer_bounds[i]`` a proven upper bound of buyer ``i``'s problem (its value
    when solved exactly); ``bound = Σ_i buyer_bounds[i]`` proven and ``gap`` the
    :func:`~dm_opt.core.result.relative_gap`; ``status`` why it stopped
    (``optimal`` only when every buyer problem was solved exactly);
    ``unsolved`` the buyers not solved exactly (limits, Ctrl-C); ``message``
    says why; ``exclude_agent`` the agent isolated and left out of the
    objective (``G*_{−i}`` of RJ eq. 20), or None.
    """

    share: np.ndarray
    welfare: float
    bound: float
    gap: float
    status: Termination
    method: str
    buyer_values: np.ndarray
    exclude_agent: int | None = None
    quality: float = 1.0
    nodes: int = 0
    seconds: float = 0.0
    buyer_bounds: np.ndarray | None = None
    unsolved: tuple = ()
    message: str = ""

    def __post_init__(self):
        if self.buyer_bounds is None:
            object.__setattr__(self, "buyer_bounds", self.buyer_values)
        for name in ("share", "buyer_values", "buyer_bounds"):
            arr = np.array(getattr(self, name), copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "status", Termination(self.status))
        object.__setattr__(self, "unsolved", tuple(int(i) for i in self.unsolved))

    @property
    def objective(self) -> float:
        """``welfare`` (the objective of RJ eq. 11 at ``share``)."""
        return self.welfare

    @property
    def is_optimal(self) -> bool:
        return self.status is Termination.OPTIMAL


def welfare_max(market: SharingMarket, method: str = "auto", *, exclude_agent: int | None = None,
                quality: float = 1.0, time_limit: float | None = None, deadline: float | None = None,
                **kw) -> WelfareResult:
    """Welfare-maximising directed graph by the per-buyer decomposition (RJ eq. 11).

    ``exclude_agent = i`` gives ``G*_{−i}`` of RJ eq. (20): agent ``i`` is
    isolated (neither buys nor sells) and its value is left out, so the
    objective is ``Σ_{j≠i} V_j``.  ``quality`` < 1 is the fixed base
    distortion ``w⁰`` of D-mixed-VCG (RJ eq. 32).

    Limits
    ------
    time_limit : seconds for the whole call (None = no limit); ``deadline`` an
        absolute :func:`time.perf_counter` value shared with a caller (the
        earlier wins).  Buyers are solved in turn; a buyer search that is
        running when the deadline passes stops at its best bundle (bnb, milp),
        and the buyers not reached are not solved.  Ctrl-C stops the same way
        (status ``interrupted``).
    node_limit : nodes per buyer problem (bnb); max_rounds : outer-approximation
        rounds per buyer (milp).

    A buyer not solved exactly keeps the better of its search incumbent and the
    bundles of :func:`buyer_relaxation`, and contributes the smaller of its
    search bound and the relaxation bound.  Since welfare is the sum of the
    independent buyer problems (eq. 11), ``bound = Σ_i buyer_bounds[i]`` is a
    proven upper bound on the optimal welfare; ``share`` is always a feasible
    graph (every bundle respects ``max_queries`` and the exclusion).
    """
    t0 = time.perf_counter()
    dl = make_deadline(time_limit, deadline, t0)
    N = market.n
    if not 0.0 < quality <= 1.0:
        raise ProblemError(f"quality must be in (0, 1], got {quality}")
    used = _check_method(market, method)
    _check_options(kw, ("node_limit", "max_rounds"))
    if exclude_agent is not None:
        exclude_agent = market._check_agent(exclude_agent)
    C = market.cost_matrix()
    excl = () if exclude_agent is None else (exclude_agent,)
    buyers = [i for i in range(N) if i not in excl]
    probs = {i: BuyerProblem(i, C[:, i].copy(), _allowed_upper(market, i, excl), quality) for i in buyers}
    sols: dict = {}
    stop = None
    try:
        for i in buyers:
            if expired(dl):
                stop = Termination.TIME_LIMIT
                break
            sol = solve_buyer(market, probs[i], used, deadline=dl, **kw)
            sols[i] = sol
            if sol.status in (Termination.TIME_LIMIT, Termination.INTERRUPTED):
                stop = sol.status
                break
    except KeyboardInterrupt:
        stop = Termination.INTERRUPTED
    solved = sum(1 for sol in sols.values() if sol.status is Termination.OPTIMAL)
    sols.update(_stopped_bounds(market, probs, [i for i in buyers if i not in sols], stop, dl))
    share = np.zeros((N, N), dtype=np.int64)
    vals = np.zeros(N)
    bounds = np.zeros(N)
    nodes = 0
    for i in buyers:
        share[:, i] = sols[i].units
        vals[i] = sols[i].value
        bounds[i] = sols[i].bound
        nodes += sols[i].nodes
    unsolved = tuple(i for i in buyers if sols[i].status is not Termination.OPTIMAL)
    if stop is not None:
        status = stop
        message = (stop_message(stop, f"{solved} of {len(buyers)} buyer problems solved exactly")
                   + "; the other buyers keep their best bundle, bounded by the continuous relaxation"
                   + " (or, past the grace period, by their utility of every allowed unit)")
    elif unsolved:
        status = next(sols[i].status for i in unsolved)
        message = f"buyer problems {list(unsolved)} stopped at a limit ({status}); their bounds are proven"
    else:
        status, message = Termination.OPTIMAL, ""
    welfare = float(vals.sum())
    bound = welfare if status is Termination.OPTIMAL else max(welfare, float(bounds.sum()))
    return WelfareResult(share, welfare, bound, relative_gap(welfare, bound), status, used, vals,
                         None if exclude_agent is None else int(exclude_agent), quality, nodes,
                         time.perf_counter() - t0, bounds, unsolved, message)


# ------------------------------------------------------------------ prices
@dataclass(frozen=True)
class PriceResult:
    """Competitive prices (RJ Prop 4.1) and their range (Prop 4.2).

    ``prices[j, i]`` = ``c_j(i)``: what seller ``j`` charges buyer ``i`` per
    unit; ``payments[i]`` = ``t_i`` of RJ eq. 6 (bought − sold);
    ``price_max[j, i]`` = ``p_j^max(i)``: the largest price ``j`` may charge
    ``i`` (others fixed) at which ``i`` still demands its bundle (``inf`` when
    ``i`` buys nothing from ``j``; ``nan`` when a limit stopped the run before it
    was computed exactly); ``demand_ok`` says every buyer's demand at
    ``prices`` (solved independently with ``demand_method``) attains the same
    value as its bundle in ``share`` — so ``share`` is a demand —
    ``demand_values`` being those optimal values (the best values found when
    stopped).  ``demand_ok`` is None when a limit stopped the check before it was
    decided (False is always proven: a strictly better bundle was found).
    ``status`` is ``optimal`` only when the welfare graph is optimal and every
    check finished; ``message`` says what was left undone.
    """

    share: np.ndarray
    prices: np.ndarray
    payments: np.ndarray
    price_max: np.ndarray
    demand_ok: bool | None
    demand_values: np.ndarray
    demand_method: str
    utilities: np.ndarray
    status: Termination = Termination.OPTIMAL
    message: str = ""


def competitive_prices(market: SharingMarket, welfare: WelfareResult | None = None, *, method: str = "auto",
                       demand_method: str | None = None, tol: float = VALUE_TOL,
                       time_limit: float | None = None, deadline: float | None = None) -> PriceResult:
    """Prices of RJ Prop 4.1 for the welfare-maximising graph, with the range of Prop 4.2.

    ``p_j^max(i)`` for a seller ``j`` whose ``w*_j ≥ 1`` units buyer ``i``
    takes: raising the per-unit price by ``δ`` lowers bundles with ``k`` units
    of ``j`` by ``δk``; the bundle stays optimal iff
    ``δ (w*_j − k) ≤ φ* − max_{x: x_j = k} φ(x)`` for every ``k < w*_j``, so
    ``p^max = c_j(i) + min_k (φ* − φ*_{x_j=k}) / (w*_j − k)``.

    ``time_limit`` (seconds) / ``deadline`` cover the whole call, including
    :func:`welfare_max` when ``welfare`` is not given; on expiry or Ctrl-C the
    result says what is proven: ``demand_ok`` False (a violation was found) or
    None (undecided), ``price_max`` ``nan`` where not computed exactly, and a
    non-optimal ``status``.  Prop 4.1's prices support the welfare-maximising
    graph; for a graph that is not proven optimal (``welfare.status``) the
    status says so.
    """
    t0 = time.perf_counter()
    dl = make_deadline(time_limit, deadline, t0)
    if welfare is None:
        welfare = welfare_max(market, method, deadline=dl)
    if welfare.exclude_agent is not None or welfare.quality != 1.0:
        raise ProblemError("competitive prices are defined for the undistorted welfare graph with every agent")
    method = _check_method(market, method)
    N = market.n
    C = market.cost_matrix()
    share = np.asarray(welfare.share)
    prices = C.copy()
    payments = (share * C).sum(axis=0) - (share * C).sum(axis=1)          # eq. 6
    if demand_method is None:
        demand_method = {"enumerate": "bnb" if market.family == "power" else "enumerate",
                         "bnb": "milp", "milp": "bnb"}.get(welfare.method, "enumerate")
    demand_method = _check_method(market, demand_method)
    dvals = np.full(N, np.nan)
    pmax = np.full((N, N), np.inf)
    np.fill_diagonal(pmax, np.nan)
    for i in range(N):
        pmax[np.flatnonzero(share[:, i]), i] = np.nan        # filled below when computed exactly
    violated = False
    decided = 0
    pmax_done = 0
    pmax_total = int(np.count_nonzero(share))
    stop = None
    if welfare.status is Termination.INTERRUPTED:
        stop = Termination.INTERRUPTED
    try:
        for i in range(N) if stop is None else ():
            if expired(dl):
                stop = Termination.TIME_LIMIT
                break
            d = solve_buyer(market, BuyerProblem(i, prices[:, i].copy(), _allowed_upper(market, i)), demand_method,
                            deadline=dl)
            dvals[i] = d.value
            mine = buyer_value(market, i, share[:, i], prices[:, i])
            if d.value > mine + tol * max(1.0, abs(mine)):
                violated = True                                   # a strictly better bundle: proven
                decided += 1
            elif d.status is Termination.OPTIMAL or d.bound <= mine + tol * max(1.0, abs(mine)):
                decided += 1
            if d.status in (Termination.TIME_LIMIT, Termination.INTERRUPTED):
                stop = d.status
                break
        for i in range(N) if stop is None else ():
            phi_star = buyer_value(market, i, share[:, i], prices[:, i])
            for j in np.flatnonzero(share[:, i]):
                w = int(share[j, i])
                best = np.inf
                exact = True
                for k in range(w):
                    if expired(dl):
                        stop = Termination.TIME_LIMIT
                        break
                    alt = solve_buyer(market, BuyerProblem(i, prices[:, i].copy(), _allowed_upper(market, i),
                                                           fixed=((int(j), k),)), method, deadline=dl)
                    if alt.status is not Termination.OPTIMAL:
                        exact = False
                        if alt.status in (Termination.TIME_LIMIT, Termination.INTERRUPTED):
                            stop = alt.status
                            break
                    best = min(best, (phi_star - alt.value) / (w - k))
                if stop is not None:
                    break
                if exact:
                    pmax[j, i] = C[j, i] + max(best, 0.0)
                    pmax_done += 1
            if stop is not None:
                break
    except KeyboardInterrupt:
        stop = Termination.INTERRUPTED
    ok = False if violated else (True if decided == N else None)
    util = market.agent_values(share) - payments
    notes = []
    if stop is not None:
        notes.append(stop_message(stop, f"{decided} of {N} demand checks and {pmax_done} of {pmax_total} "
                                  "price maxima (Prop 4.2)"))
    if welfare.status is not Termination.OPTIMAL:
        notes.append(f"the sharing graph is not proven welfare-maximising (welfare status {welfare.status})")
    if stop is None and pmax_done < pmax_total:
        notes.append("some price maxima are nan: a buyer problem stopped at a limit")
    if stop is not None:
        status = stop
    elif welfare.status is not Termination.OPTIMAL:
        status = welfare.status
    elif ok is None or pmax_done < pmax_total:
        status = Termination.NODE_LIMIT
    else:
        status = Termination.OPTIMAL
    return PriceResult(share, prices, payments, pmax, ok, dvals, demand_method, util, status, "; ".join(notes))


__all__ = ["welfare_max", "WelfareResult", "competitive_prices", "PriceResult", "solve_buyer", "BuyerProblem",
           "BuyerSolution", "buyer_value", "buyer_relaxation", "METHODS", "make_deadline", "check_time_limit",
           "expired"]
