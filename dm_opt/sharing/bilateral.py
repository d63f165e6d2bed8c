"""Bilateral data sharing as network formation (RJ §3).

* :func:`check_top_agent` — RJ Defs 3.3–3.4 (a common strict ranking of partners);
* :func:`check_limited_complementarity` — RJ Def 3.5;
* :func:`ordered_match` — the ordered-match algorithm of RJ Prop 3.1, ``O(N²)``
  oracle calls;
* :func:`check_stability` — exhaustive strong-stability check (RJ Def 3.2);
* :func:`stable_outcomes` — every stable graph of a small instance (RJ Example 3.5 has none);
* :func:`bilateral_welfare_max` — the welfare-maximising undirected graph (RJ Remark 3.4).

Undirected graphs are returned as ``edges``: an int array of shape (E, 2) with
``i < j`` per row, sorted.  Preference comparisons use the absolute tolerance
``tol`` (default :data:`PREF_TOL`): ``A ≻ B`` means ``value(A) > value(B) + tol``.

**Limits and interruption.**  :func:`check_stability`, :func:`stable_outcomes`
and :func:`ordered_match` take ``time_limit`` (seconds, or a
:class:`dm_opt.core.limits.Deadline` shared with a caller).  The compiled
searches run in chunks and the clock and Ctrl-C are checked between chunks.  A
stability check that stops says *undecided* (``stable=None``), never stable; a
deviation found before the stop is a proven "not stable".  An enumeration of
outcomes that stops returns the stable graphs found so far, with a
non-optimal status.  A partial ordered match is not an outcome, so a time limit
raises :class:`~dm_opt.core.errors.LimitExceeded` and Ctrl-C propagates.
"""

from __future__ import annotations

import itertools
import time
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import AssumptionError, LimitExceeded, ProblemError
from dm_opt.core.limits import Deadline, adapt_chunk
from dm_opt.core.result import Result, Termination
from dm_opt.core.validate import as_array
from dm_opt.sharing import kernels as K
from dm_opt.sharing.buyer import stop_message
from dm_opt.sharing.market import MAX_TABLE_AGENTS, SharingMarket, members

#: Default absolute tolerance for strict preference in the §3 checks.
PREF_TOL = 1e-12
#: Largest N for the exhaustive stability check (power markets are tabulated up to this N;
#: memory ≈ 3·N·2^N floats, 0.5 GB at N = 20).
MAX_STABILITY_AGENTS = 20
#: Largest N for enumerating every graph in :func:`stable_outcomes` (2^(N(N−1)/2) graphs).
MAX_OUTCOME_AGENTS = 6
#: Coalitions in the first compiled call of :func:`check_stability`; later calls adapt to take
#: about :data:`CHUNK_SECONDS` (the time limit and Ctrl-C are checked between calls).
STABILITY_CHUNK = 256
#: Oracle calls per compiled call of the power-family ordered match (about 0.1 s).
ORDERED_MATCH_CHUNK_CALLS = 2_000_000
CHUNK_SECONDS = 0.05


@dataclass(frozen=True)
class PropertyCheck(Result):
    """Result of checking an assumption of RJ Prop 3.1.

    ``holds`` is True/False, or None when it could not be decided (then
    ``message`` says why; ``status`` is ``optimal`` when decided, ``unknown`` when the
    check is beyond its limits, ``time_limit`` when a deadline stopped it).  For a
    violation: ``agent`` is ``k`` (whose preferences break it), ``pair`` the agents compared (top agent: ``(i, j)``
    with ``i`` ranked above ``j``; limited complementarity: ``(i,)``),
    ``base_set`` the set ``S`` (partners of ``k``), ``added_set`` the set ``S'``
    (limited complementarity), ``values`` the preference values compared.
    """

    property: str
    holds: bool | None
    order: tuple
    method: str
    agent: int | None = None
    pair: tuple = ()
    base_set: tuple = ()
    added_set: tuple = ()
    values: tuple = ()
    message: str = ""
    status: Termination | None = None

    family: ClassVar[str] = "sharing"

    def __post_init__(self):
        st = self.status
        if st is None:
            st = Termination.OPTIMAL if self.holds is not None else Termination.UNKNOWN
        object.__setattr__(self, "status", Termination(st))

    def _has_answer(self) -> bool:
        return self.holds is not None


@dataclass(frozen=True)
class AssumptionChecks(Result):
    """The assumptions of RJ Prop 3.1 checked for the ranking ``order``: ``checks`` the
    :class:`PropertyCheck` results (top agent, then limited complementarity), ``holds``
    True/False, or None when undecided; ``status`` ``optimal`` when every check was
    decided (``unknown`` beyond the checks' limits, ``time_limit`` when stopped)."""

    family: ClassVar[str] = "sharing"

    checks: tuple
    order: tuple
    holds: bool | None
    status: Termination = Termination.OPTIMAL
    message: str = ""
    seconds: float = 0.0
    time_limit: float | None = None

    def _has_answer(self) -> bool:
        return self.holds is not None


def _edges_from_masks(nbr) -> np.ndarray:
    out = [(i, j) for i in range(len(nbr)) for j in members(int(nbr[i])) if i < j]
    return np.array(sorted(out), dtype=np.int64).reshape(-1, 2)


def _masks_from_edges(N: int, edges) -> np.ndarray:
    nbr = np.zeros(N, dtype=np.int64)
    for i, j in np.asarray(edges, dtype=np.int64).reshape(-1, 2):
        if i == j or not (0 <= i < N and 0 <= j < N):
            raise ProblemError(f"edge ({i}, {j}) is not an edge between two distinct agents of 0..{N - 1}")
        nbr[i] |= 1 << int(j)
        nbr[j] |= 1 << int(i)
    return nbr


def _table(market: SharingMarket, limit: int = MAX_TABLE_AGENTS, dl: Deadline | None = None) -> np.ndarray:
    """``P[i, mask]`` = :meth:`~SharingMarket.bilateral_value` for every mask (N, 2^N).

    The power family is tabulated one agent row at a time (the same arithmetic as
    :meth:`SharingMarket.bilateral_table`: ``bits @ q`` with ``q_i`` zeroed instead of a copy
    of ``bits`` with column ``i`` zeroed, so the values are identical), and the deadline
    ``dl`` is checked between rows: raises
    :class:`_OutOfTime` when it has passed (a table takes seconds at N = 20)."""
    if market.n > limit:
        raise LimitExceeded(f"exhaustive checks tabulate 2^N sets; N = {market.n} exceeds {limit}")
    if market.family != "power":
        return np.ascontiguousarray(market.bilateral_table(limit))
    N = market.n
    masks = np.arange(1 << N)
    bits = ((masks[:, None] >> np.arange(N)[None, :]) & 1).astype(float)      # (2^N, N)
    if dl is not None and dl.expired():
        raise _OutOfTime
    P = np.empty((N, 1 << N))
    qs = market.query_samples.astype(float)
    cost = bits @ market.cost_matrix().T                  # cost[mask, i] = Σ_{j∈mask} c_i(j), as _pair_cost_table
    for i in range(N):
        if dl is not None and dl.expired():
            raise _OutOfTime
        qi = qs.copy()
        qi[i] = 0.0
        P[i] = market.alpha[i] * (1.0 - (market.samples[i] + bits @ qi) ** (-market.beta[i]))
        P[i] -= cost[:, i]
    return P


class _OutOfTime(Exception):
    """Internal: a deadline passed while tabulating (see :func:`_table`)."""


# ------------------------------------------------------------------ ranking
def candidate_order(market: SharingMarket) -> np.ndarray:
    """The common ranking implied by singleton comparisons (most preferred first).

    Power family with recipient-independent costs: decreasing samples per unit
    ``q_j`` (RJ Corollary 3.1.1).  Otherwise agent 0's ranking of the others
    by the Copeland score of the singleton comparisons ``value({a})`` vs ``value({b})``.  Only a
    candidate: the checks below verify it against every set.
    """
    N = market.n
    if market.family == "power" and market.cost_kind != "matrix":
        return np.argsort(-market.query_samples, kind="stable").astype(np.int64)
    # Copeland score of the singleton comparisons: a beats b when more agents k ∉ {a, b}
    # strictly prefer {a} to {b} than the reverse.
    P1 = np.array([[market.bilateral_value(k, [j]) if j != k else np.nan for j in range(N)] for k in range(N)])
    score = np.zeros(N)
    for a in range(N):
        for b in range(N):
            if a == b:
                continue
            ks = [k for k in range(N) if k not in (a, b)]
            wins = sum(P1[k, a] > P1[k, b] for k in ks) - sum(P1[k, b] > P1[k, a] for k in ks)
            score[a] += wins > 0
    return np.argsort(-score, kind="stable").astype(np.int64)


def as_order(market, order) -> np.ndarray:
    if order is None:
        return candidate_order(market)
    # as_array first: np.asarray(order, dtype=np.int64) raised its own ValueError on strings and NaN
    # and truncated 1.5 (a float is accepted only when whole: the permutation test compares values)
    o = as_array("order", order, max_abs=2.0 ** 53)
    if o.shape != (market.n,) or sorted(o.tolist()) != list(range(market.n)):
        raise ProblemError(f"order must be a permutation of 0..{market.n - 1}")
    return o.astype(np.int64)


def check_top_agent(market: SharingMarket, order=None, *, tol: float = PREF_TOL) -> PropertyCheck:
    """Top agent property (RJ Def 3.4): every agent ``k`` strictly prefers
    ``S ∪ {i}`` to ``S ∪ {j}`` for every ``S`` avoiding ``i, j`` whenever ``i``
    is ranked above ``j`` in one common order (Def 3.3).

    Exhaustive over sets for tables and tabulated power markets (``N ≤ 16``).
    For the power family with recipient-independent costs it is decided
    exactly in closed form: ``S∪{i}`` vs ``S∪{j}`` differ only through
    ``α_k (1 − (m+q)^(−β_k))`` with ``α_k > 0``, strictly increasing in ``q``,
    so the property holds iff the ``q_j`` are distinct and ``α_k > 0`` for all
    ``k`` (RJ Corollary 3.1.1).
    """
    o = as_order(market, order)
    if market.family == "power" and market.cost_kind != "matrix":
        q = market.query_samples[o]
        if np.any(market.alpha <= 0):
            k = int(np.argmax(market.alpha <= 0))
            return PropertyCheck("top_agent", False, tuple(o.tolist()), "closed form", agent=k,
                                 message=f"agent {k} has alpha = 0: indifferent between all partners")
        bad = np.flatnonzero(~(q[:-1] > q[1:]))
        if bad.size:
            a = int(bad[0])
            i, j = int(o[a]), int(o[a + 1])
            k = 0 if 0 not in (i, j) else (1 if 1 not in (i, j) else 2)
            return PropertyCheck("top_agent", False, tuple(o.tolist()), "closed form", agent=k, pair=(i, j),
                                 base_set=(), message=f"agent {i} (q = {market.query_samples[i]:g}) is not strictly "
                                 f"preferred to agent {j} (q = {market.query_samples[j]:g})")
        return PropertyCheck("top_agent", True, tuple(o.tolist()), "closed form",
                             message="power family, recipient-independent costs, distinct sample sizes")
    if market.family == "power" and market.n > MAX_TABLE_AGENTS:
        return _top_agent_power_pairs(market, o, tol)
    P = _table(market)
    k, i, j, S = K.top_agent_violation(P, o, tol)
    if k < 0:
        return PropertyCheck("top_agent", True, tuple(o.tolist()), "exhaustive")
    k, i, j, S = int(k), int(i), int(j), int(S)
    vi, vj = float(P[k, S | (1 << i)]), float(P[k, S | (1 << j)])
    return PropertyCheck("top_agent", False, tuple(o.tolist()), "exhaustive", agent=k, pair=(i, j),
                         base_set=members(S), values=(vi, vj),
                         message=f"agent {k} does not strictly prefer {sorted(members(S) + (i,))} "
                         f"({vi:.6g}) to {sorted(members(S) + (j,))} ({vj:.6g}), although agent {i} is "
                         f"ranked above agent {j}")


#: Largest N for the O(N³) closed-form top-agent check with pair-specific costs.
MAX_PAIR_CHECK_AGENTS = 400


def _top_agent_power_pairs(market: SharingMarket, o: np.ndarray, tol: float) -> PropertyCheck:
    """Top agent property for the power family with pair costs, exactly, in ``O(N³)``.

    For agent ``k`` and ``i`` ranked above ``j``:
    ``D(m) = f_k(m + q_i) − f_k(m + q_j) − (c_k(i) − c_k(j))`` with ``f_k`` concave,
    where ``m = n_k + Σ_{l∈S} q_l`` over sets ``S`` avoiding ``k, i, j``.  ``D`` is
    monotone in ``m`` (its derivative ``f'(m+q_i) − f'(m+q_j)`` has the sign of
    ``q_j − q_i`` since ``f'`` decreases), so its minimum over the achievable
    ``m`` is at ``S = ∅`` or ``S`` = all the others; checking both is exact.
    """
    N = market.n
    if N > MAX_PAIR_CHECK_AGENTS:
        return PropertyCheck("top_agent", None, tuple(o.tolist()), "none",
                             message=f"pair-specific costs at N = {N} > {MAX_PAIR_CHECK_AGENTS}: not checked")
    C = market.cost_matrix()
    q = market.query_samples
    total = float(q.sum())
    a_idx, b_idx = np.triu_indices(N, 1)
    I, J = o[a_idx], o[b_idx]
    for k in range(N):
        keep = (I != k) & (J != k)
        i, j = I[keep], J[keep]
        lo = market.samples[k]
        hi = lo + total - q[k] - q[i] - q[j]
        f = lambda m, k=k: market.alpha[k] * (1.0 - m ** (-market.beta[k]))  # noqa: E731
        for m0, S_all in ((lo, False), (hi, True)):
            D = f(m0 + q[i]) - f(m0 + q[j]) - (C[k, i] - C[k, j])
            bad = np.flatnonzero(~(D > tol))
            if bad.size:
                b = int(bad[0])
                ii, jj = int(i[b]), int(j[b])
                S = tuple(x for x in range(N) if x not in (k, ii, jj)) if S_all else ()
                return PropertyCheck("top_agent", False, tuple(o.tolist()), "closed form (pairs)", agent=k,
                                     pair=(ii, jj), base_set=S,
                                     message=f"agent {k} does not strictly prefer adding {ii} to adding {jj} "
                                     f"to {'all other agents' if S_all else 'the empty set'}, although {ii} is "
                                     f"ranked above {jj}")
    return PropertyCheck("top_agent", True, tuple(o.tolist()), "closed form (pairs)")


def check_limited_complementarity(market: SharingMarket, order=None, *, tol: float = PREF_TOL) -> PropertyCheck:
    """Limited complementarity (RJ Def 3.5) for the ranking ``order``: whenever
    ``S ≻_k S ∪ {i}`` then ``S ≻_k S ∪ S'`` for every nonempty ``S'`` of agents
    ranked at or below ``i`` (and not in ``S``, not ``k``).

    Exhaustive (``O(N² 2^N)``) for ``N ≤ 16``.  For the power family with
    recipient-independent costs ``κ_k`` and the ranking by decreasing ``q``
    it holds exactly: concavity gives
    ``f(m + Σ_{S'} q) − f(m) ≤ Σ_{j∈S'} (f(m + q_j) − f(m)) ≤ |S'| (f(m + q_i) − f(m)) < |S'| κ_k``.
    """
    o = as_order(market, order)
    if market.family == "power" and market.cost_kind != "matrix":
        q = market.query_samples[o]
        if np.all(q[:-1] >= q[1:]):
            return PropertyCheck("limited_complementarity", True, tuple(o.tolist()), "closed form",
                                 message="power family: concave value, recipient-independent costs, "
                                 "order by decreasing samples")
        if market.n > MAX_TABLE_AGENTS:
            return PropertyCheck("limited_complementarity", None, tuple(o.tolist()), "none",
                                 message=f"order is not by decreasing samples and N = {market.n} is too "
                                 "large for the exhaustive check")
    elif market.n > MAX_TABLE_AGENTS:
        return PropertyCheck("limited_complementarity", None, tuple(o.tolist()), "none",
                             message=f"N = {market.n} with pair-specific costs: exhaustive check limited to "
                             f"N <= {MAX_TABLE_AGENTS}")
    P = _table(market)
    k, i, S = K.limited_complementarity_violation(P, o, tol)
    if k < 0:
        return PropertyCheck("limited_complementarity", True, tuple(o.tolist()), "exhaustive")
    k, i, S = int(k), int(i), int(S)
    rank = {int(a): r for r, a in enumerate(o)}
    pool = [a for a in range(market.n) if rank[a] >= rank[i] and a != k and not (S >> a) & 1]
    witness = None
    for r in range(1, len(pool) + 1):
        for sub in itertools.combinations(pool, r):
            m = S
            for a in sub:
                m |= 1 << a
            if not (P[k, S] - P[k, m] > tol):
                witness = sub
                break
        if witness:
            break
    m = S
    for a in witness:
        m |= 1 << a
    return PropertyCheck("limited_complementarity", False, tuple(o.tolist()), "exhaustive", agent=k, pair=(i,),
                         base_set=members(S), added_set=tuple(witness),
                         values=(float(P[k, S]), float(P[k, S | (1 << i)]), float(P[k, m])),
                         message=f"agent {k}: {sorted(members(S))} is strictly preferred to adding agent {i} "
                         f"but not to adding {sorted(witness)} (agents ranked at or below {i})")


# ------------------------------------------------------------ ordered match
@dataclass(frozen=True)
class OrderedMatchResult(Result):
    """Outcome of ordered match (RJ Prop 3.1).

    ``edges`` (E, 2) undirected sharing graph; ``order`` the ranking used
    (most preferred first); ``oracle_calls`` preference comparisons the algorithm
    of the paper makes (≤ N(N−1); the fast path for sorted power markets evaluates
    far fewer and reports this count); ``checks`` the assumption checks run (empty
    when skipped); ``assumptions_hold`` True/False/None (unchecked or undecided).
    ``status`` is ``optimal`` (the algorithm is exact: a partial pass is never
    returned); ``objective`` is nan (the outcome is a graph, not a value).
    """

    family: ClassVar[str] = "sharing"

    edges: np.ndarray
    order: np.ndarray
    oracle_calls: int
    checks: tuple = ()
    assumptions_hold: bool | None = None
    seconds: float = 0.0
    status: Termination = Termination.OPTIMAL
    message: str = ""
    time_limit: float | None = None

    def _has_answer(self) -> bool:
        return True

    def neighbours(self, N: int) -> list:
        out = [[] for _ in range(N)]
        for i, j in self.edges:
            out[int(i)].append(int(j))
            out[int(j)].append(int(i))
        return [sorted(x) for x in out]


def check_assumptions(market: SharingMarket, order=None, *, tol: float = PREF_TOL,
                      time_limit: float | Deadline | None = None, both: bool = True) -> AssumptionChecks:
    """The assumptions of RJ Prop 3.1 — top agent (Defs 3.3–3.4) and limited complementarity
    (Def 3.5) — for ``order`` (default :func:`candidate_order`).  ``both=False`` skips limited
    complementarity when the top agent property fails (what :func:`ordered_match` needs).
    A deadline passed before the second check leaves it undecided (status ``time_limit``)."""
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    o = as_order(market, order)
    ta = check_top_agent(market, o, tol=tol)
    checks = [ta]
    status, message = Termination.OPTIMAL, ""
    if both or ta.holds:
        if dl.expired():
            status, message = Termination.TIME_LIMIT, "time limit reached before the limited complementarity check"
            checks.append(PropertyCheck("limited_complementarity", None, ta.order, "none",
                                        message="not checked: time limit reached", status=Termination.TIME_LIMIT))
        else:
            checks.append(check_limited_complementarity(market, o, tol=tol))
    holds = all(c.holds for c in checks) if all(c.holds is not None for c in checks) else None
    if any(c.holds is False for c in checks):
        holds = False
    if status is Termination.OPTIMAL and any(c.holds is None for c in checks):
        status = Termination.UNKNOWN
        message = "; ".join(f"{c.property}: {c.message}" for c in checks if c.holds is None)
    return AssumptionChecks(tuple(checks), tuple(o.tolist()), holds, status, message, time.perf_counter() - t0,
                            dl.time_limit)


#: Rows (swiping agents) in the first compiled call of the fast ordered match; later calls adapt
#: so that one takes about :data:`CHUNK_SECONDS` (the time limit and Ctrl-C are checked between calls).
ORDERED_MATCH_FAST_ROWS = 4096


def sorted_power_order(market: SharingMarket, o: np.ndarray) -> bool:
    """Whether the fast ordered match applies: power family, recipient-independent costs and
    ``q`` non-increasing along ``o`` (the default order :func:`candidate_order` of such markets)."""
    if market.family != "power" or market.cost_kind == "matrix":
        return False
    q = market.query_samples[o]
    return bool(np.all(q[:-1] >= q[1:]))


def ordered_match_power_arrays(order, samples, query_samples, alpha, beta, cost, *, fast: bool | None = None,
                               time_limit: float | Deadline | None = None) -> tuple[np.ndarray, int]:
    """Ordered match (RJ Prop 3.1) of a power-family market given as arrays, for sizes beyond
    :data:`~dm_opt.sharing.market.MAX_POWER_AGENTS` (no ``N × N`` matrix is built with a
    vector ``cost`` (N,)); ``cost`` (N, N) for pair-specific costs.  ``fast`` (default: when it
    applies) uses :func:`~dm_opt.sharing.kernels.ordered_match_power_sorted_range`, else the
    full scan :func:`~dm_opt.sharing.kernels.ordered_match_power_range` — the same edges and
    oracle calls.  No assumption check.  Returns (edges as found (E, 2), oracle calls); a time
    limit raises :class:`~dm_opt.core.errors.LimitExceeded` (a partial pass is not an outcome)."""
    dl = Deadline.of(time_limit)
    o = np.ascontiguousarray(order, dtype=np.int64)
    N = o.shape[0]
    qs = np.ascontiguousarray(query_samples, dtype=float)
    al = np.ascontiguousarray(alpha, dtype=float)
    be = np.ascontiguousarray(beta, dtype=float)
    c = np.asarray(cost, dtype=float)
    n0 = np.asarray(samples, dtype=float)
    if o.ndim != 1 or not np.array_equal(np.sort(o), np.arange(N)):
        raise ProblemError(f"order must be a permutation of 0..{N - 1}")
    for name, v in (("samples", n0), ("query_samples", qs), ("alpha", al), ("beta", be)):
        if v.shape != (N,) or not np.all(np.isfinite(v)):
            raise ProblemError(f"{name} must be {N} finite numbers, got shape {v.shape}")
    if np.any(n0 <= 0) or np.any(qs <= 0) or np.any(be <= 0) or np.any(al < 0):
        raise ProblemError("samples, query_samples and beta must be > 0 and alpha >= 0")
    if c.shape not in ((N,), (N, 1), (N, N)) or not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ProblemError(f"cost must be {N} (per sender) or {N}x{N} finite non-negative numbers, got shape {c.shape}")
    is_mat = c.ndim == 2 and c.shape == (N, N) and N > 1
    cost2 = np.ascontiguousarray(c if is_mat else c.reshape(-1, 1), dtype=float)
    sorted_q = bool(np.all(qs[o][:-1] >= qs[o][1:]))
    if fast is None:
        fast = sorted_q and not is_mat
    if fast and (is_mat or not sorted_q):
        raise ProblemError("the fast ordered match needs recipient-independent costs and q non-increasing "
                           "along the order")

    def out_of_time(a: int):
        if dl.expired():
            raise LimitExceeded(f"time limit reached during ordered match after {a} of {N} agents; a partial "
                                "ordered match is not an outcome of RJ Prop 3.1 (every agent must swipe): "
                                "give more time")

    m, mp = K.ordered_match_power_state(np.ascontiguousarray(n0), be)
    parts, calls, a = [], 0, 0
    if fast:
        parent = np.arange(N + 1, dtype=np.int64)
        rows = max(1, int(ORDERED_MATCH_FAST_ROWS))
        while a < N:
            out_of_time(a)
            t = time.perf_counter()
            e, cnt = K.ordered_match_power_sorted_range(o, qs, al, be, cost2, m, mp, parent, a, min(N, a + rows))
            a = min(N, a + rows)
            parts.append(e)
            calls += int(cnt)
            rows = adapt_chunk(rows, time.perf_counter() - t, CHUNK_SECONDS, lo=1, hi=1 << 22)
    else:
        while a < N:
            out_of_time(a)
            rows, work = 0, 0
            while a + rows < N and (rows == 0 or work < ORDERED_MATCH_CHUNK_CALLS):
                work += N - (a + rows) - 1
                rows += 1
            e, cnt = K.ordered_match_power_range(o, qs, al, be, cost2, is_mat, m, mp, a, a + rows)
            parts.append(e)
            calls += int(cnt)
            a += rows
    edges = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)
    return edges.reshape(-1, 2), calls


def _enforce_assumptions(market, o, tol, on_violation: str, dl: Deadline, out_of_time, *, check: bool = True,
                         hint: str = "") -> tuple[tuple, bool | None]:
    """:func:`check_assumptions` (limited complementarity only if the top agent property holds)
    for ordered match in order ``o``, then what ``on_violation`` says: raise
    :class:`AssumptionError` (``"raise"``, the message ending with ``hint``), warn (``"warn"``)
    or go on (``"ignore"``).  Returns ``(checks, holds)``; ``out_of_time(stage)`` raises once
    the caller's deadline ``dl`` has passed."""
    if not check:
        return (), None
    r = check_assumptions(market, o, tol=tol, time_limit=dl, both=False)
    if r.status is Termination.TIME_LIMIT:
        out_of_time("while checking the top agent property")
    out_of_time("while checking limited complementarity")
    if not r.holds:
        bad = next(c for c in r.checks if not c.holds)
        msg = (f"ordered match assumptions (RJ Prop 3.1) fail: {bad.property} "
               f"{'is violated' if bad.holds is False else 'could not be checked'}: {bad.message}")
        if on_violation == "raise":
            raise AssumptionError(msg + "; pass on_violation='warn' to run anyway" + hint)
        if on_violation == "warn":
            warnings.warn(msg, stacklevel=3)
    return r.checks, r.holds


def ordered_match(market: SharingMarket, order=None, *, on_violation: str = "raise",
                  check: bool = True, tol: float = PREF_TOL,
                  time_limit: float | Deadline | None = None) -> OrderedMatchResult:
    """Ordered match (RJ Prop 3.1): agents in rank order, each swiping the
    lower-ranked agents; ``n`` proposes to ``ℓ`` iff ``S_n ∪ {ℓ} ≻_n S_n`` (1)
    and ``ℓ`` accepts iff ``S_ℓ ∪ {n} ≻_ℓ S_ℓ`` (2).

    Parameters
    ----------
    order : permutation, optional
        The common ranking (default :func:`candidate_order`).
    on_violation : {"raise", "warn", "ignore"}
        What to do when the top-agent or limited-complementarity check fails
        or cannot be decided: raise :class:`AssumptionError` (default), run
        with a warning, or run silently.  The outcome is only guaranteed
        stable when both hold.
    check : bool
        Run the assumption checks (exhaustive for N ≤ 16; closed form for the
        power family with recipient-independent costs).
    time_limit : float or :class:`~dm_opt.core.limits.Deadline`, optional
        The match proceeds agent by agent in compiled chunks; a partial pass is not
        an outcome (Prop 3.1 needs every agent to have swiped), so expiry raises
        :class:`~dm_opt.core.errors.LimitExceeded` and Ctrl-C propagates as
        ``KeyboardInterrupt``.

    The power family with recipient-independent costs and the ranking by decreasing ``q``
    (the default there) uses the fast kernel
    :func:`~dm_opt.sharing.kernels.ordered_match_power_sorted_range` (``O((N + E) log N)``,
    the same edges and oracle-call count as the full scan); other power markets scan every
    pair (:func:`~dm_opt.sharing.kernels.ordered_match_power_range`), tables use their rows.
    """
    if on_violation not in ("raise", "warn", "ignore"):
        raise ProblemError(f"on_violation must be 'raise', 'warn' or 'ignore', got {on_violation!r}")
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    o = as_order(market, order)

    def out_of_time(done: str):
        if dl.expired():
            raise LimitExceeded(f"time limit reached {done}; a partial ordered match is not an outcome of "
                                "RJ Prop 3.1 (every agent must swipe): give more time")

    checks, holds = _enforce_assumptions(market, o, tol, on_violation, dl, out_of_time, check=check,
                                         hint=" (outcome may be unstable)")
    if market.family == "power":
        edges, calls = ordered_match_power_arrays(o, market.samples, market.query_samples, market.alpha,
                                                  market.beta, market.cost_data,
                                                  fast=sorted_power_order(market, o), time_limit=dl)
        edges = np.sort(edges, axis=1)
        edges = edges[np.lexsort((edges[:, 1], edges[:, 0]))] if len(edges) else edges.reshape(0, 2)
    else:
        P = _table(market)
        N = market.n
        nbr = np.zeros(N, dtype=np.int64)
        calls = 0
        for a in range(N):
            out_of_time(f"during ordered match after {a} of {N} agents")
            n = int(o[a])
            for b in range(a + 1, N):
                l = int(o[b])
                calls += 1
                if P[n, nbr[n] | (1 << l)] > P[n, nbr[n]] + tol:
                    calls += 1
                    if P[l, nbr[l] | (1 << n)] > P[l, nbr[l]] + tol:
                        nbr[n] |= 1 << l
                        nbr[l] |= 1 << n
        edges = _edges_from_masks(nbr)
    return OrderedMatchResult(np.asarray(edges, dtype=np.int64).reshape(-1, 2), o, int(calls), checks, holds,
                              time.perf_counter() - t0, time_limit=dl.time_limit)


# --------------------------------------------------------------- stability
@dataclass(frozen=True)
class StabilityResult(Result):
    """Exhaustive strong-stability check (RJ Def 3.2).

    ``stable`` True when no coalition has a profitable deviation, False when
    one has (then ``coalition`` (agents), ``deviation`` (edges of the new graph)
    and ``gains`` (new − old value for each coalition member) give a witness:
    every gain ≥ −tol and one > tol), and None when a time limit or Ctrl-C
    stopped the check first (undecided: ``coalitions_examined`` of
    ``coalitions_total`` had no deviation).  ``status`` is ``optimal`` when
    decided, else ``time_limit`` / ``interrupted``; ``message`` says why.
    """

    stable: bool | None
    edges: np.ndarray
    coalition: tuple = ()
    deviation: np.ndarray | None = None
    gains: tuple = ()
    coalitions_examined: int = 0
    seconds: float = 0.0
    status: Termination = Termination.OPTIMAL
    coalitions_total: int = 0
    message: str = ""
    time_limit: float | None = None

    family: ClassVar[str] = "sharing"

    def _has_answer(self) -> bool:
        return self.stable is not None

    @property
    def decided(self) -> bool:
        return self.stable is not None


def _coalitions(N: int) -> np.ndarray:
    masks = np.arange(1, 1 << N, dtype=np.int64)
    pop = np.zeros(masks.shape, dtype=np.int64)
    for b in range(N):
        pop += (masks >> b) & 1
    return masks[np.argsort(pop, kind="stable")]


def check_stability(market: SharingMarket, edges, *, tol: float = PREF_TOL,
                    time_limit: float | Deadline | None = None, _P=None, _coal=None) -> StabilityResult:
    """Is the undirected graph ``edges`` strongly stable (RJ Def 3.2)?

    Exhaustive over all ``2^N − 1`` coalitions (smallest first) and, per
    coalition, a depth-first search over the graphs it can form (see
    :func:`dm_opt.sharing.kernels.find_deviation`).  ``N ≤``
    :data:`MAX_STABILITY_AGENTS`.

    ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`) and Ctrl-C
    stop the search between compiled chunks of coalitions;
    the answer is then ``stable=None`` (undecided) with status ``time_limit`` /
    ``interrupted`` — stability is only claimed after every coalition was
    examined.
    """
    N = market.n
    if N > MAX_STABILITY_AGENTS:
        raise LimitExceeded(f"exhaustive stability check is limited to N <= {MAX_STABILITY_AGENTS}, got N = {N}")
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    nbr = _masks_from_edges(N, edges)
    edges_arr = _edges_from_masks(nbr)
    total = (1 << N) - 1
    found = None               # (S, newnbr) of a deviation, committed only after a kernel call returned
    examined = 0
    stop = None
    P = _P
    try:
        if P is None:
            P = _table(market, MAX_STABILITY_AGENTS, dl)
        coal = _coalitions(N) if _coal is None else _coal
        best = np.empty((N, 1 << N))
        sup = np.empty((N, 1 << N))
        pos, chunk = 0, STABILITY_CHUNK
        while pos < len(coal):
            if dl.expired():
                stop = Termination.TIME_LIMIT
                break
            end = min(pos + chunk, len(coal))
            t = time.perf_counter()
            res = K.find_deviation_range(P, nbr, coal, pos, end, tol, best, sup)
            if res[0] >= 0:
                found = res
                examined += int(res[2])
                break
            examined += end - pos
            pos = end
            chunk = adapt_chunk(chunk, time.perf_counter() - t, CHUNK_SECONDS, lo=1, hi=1 << 20)
    except _OutOfTime:
        stop = Termination.TIME_LIMIT
    except KeyboardInterrupt:
        if found is None:
            stop = Termination.INTERRUPTED
    if found is None:
        if stop is None:
            return StabilityResult(True, edges_arr, coalitions_examined=examined, seconds=time.perf_counter() - t0,
                                   coalitions_total=total, time_limit=dl.time_limit)
        return StabilityResult(None, edges_arr, coalitions_examined=examined, seconds=time.perf_counter() - t0,
                               status=stop, coalitions_total=total, time_limit=dl.time_limit,
                               message=stop_message(stop, f"{examined} of {total} coalitions without a "
                                                    "profitable deviation: stability undecided"))
    S, newnbr = int(found[0]), found[1]
    mem = members(S)
    new = nbr.copy()
    # members' new neighbourhoods; keep consistency for outsiders
    for i in mem:
        new[i] = int(newnbr[i])
    for j in range(N):
        if (S >> j) & 1:
            continue
        m = 0
        for i in range(N):
            if (new[i] >> j) & 1 and (S >> i) & 1:
                m |= 1 << i
        new[j] = (nbr[j] & ~S) | m
    gains = tuple(float(P[i, new[i]] - P[i, nbr[i]]) for i in mem)
    return StabilityResult(False, edges_arr, mem, _edges_from_masks(new), gains, examined,
                           time.perf_counter() - t0, coalitions_total=total, time_limit=dl.time_limit)


def ordered_match_stability(market: SharingMarket, *, tol: float = PREF_TOL,
                            time_limit: float | Deadline | None = None) -> StabilityResult:
    """Run ordered match (assumptions not enforced) and check its graph exhaustively
    (``dm-opt solve --problem stability`` for ``N >`` :data:`MAX_OUTCOME_AGENTS`), under one
    deadline.  A time limit or Ctrl-C during the ordered match leaves no graph to check:
    the result is then undecided (``stable=None``, no edges) with status
    ``time_limit``/``interrupted`` and a message, instead of an error."""
    N = market.n
    if N > MAX_STABILITY_AGENTS:
        raise LimitExceeded(f"exhaustive stability check is limited to N <= {MAX_STABILITY_AGENTS}, got N = {N}")
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    total = (1 << N) - 1
    try:
        om = ordered_match(market, on_violation="ignore", time_limit=dl)
    except LimitExceeded as exc:
        if not dl.expired():
            raise
        return StabilityResult(None, np.zeros((0, 2), dtype=np.int64), seconds=time.perf_counter() - t0,
                               status=Termination.TIME_LIMIT, coalitions_total=total, time_limit=dl.time_limit,
                               message=f"{exc}: no graph to check, stability undecided")
    except KeyboardInterrupt:
        return StabilityResult(None, np.zeros((0, 2), dtype=np.int64), seconds=time.perf_counter() - t0,
                               status=Termination.INTERRUPTED, coalitions_total=total, time_limit=dl.time_limit,
                               message="interrupted by the user during ordered match: no graph to check, "
                               "stability undecided")
    return check_stability(market, om.edges, tol=tol, time_limit=dl)


@dataclass(frozen=True)
class StableOutcomes(Result):
    """Every strongly stable graph of a small instance (RJ Def 3.2).

    ``graphs`` the stable graphs among the first ``graphs_checked`` of
    ``graphs_total`` graphs (in the order of their edge bit masks); complete
    only when ``status`` is ``optimal``.  A time limit or Ctrl-C leaves status
    ``time_limit`` / ``interrupted``: every listed graph is proven stable, but
    the unchecked graphs may hold more (or, for an empty list, some).
    """

    graphs: tuple
    graphs_checked: int
    seconds: float = 0.0
    status: Termination = Termination.OPTIMAL
    graphs_total: int = 0
    message: str = ""
    time_limit: float | None = None

    family: ClassVar[str] = "sharing"

    def _has_answer(self) -> bool:
        return True


def stable_outcomes(market: SharingMarket, *, tol: float = PREF_TOL,
                    time_limit: float | Deadline | None = None) -> StableOutcomes:
    """Enumerate all ``2^(N(N−1)/2)`` undirected graphs and keep the stable ones
    (``N ≤`` :data:`MAX_OUTCOME_AGENTS`).  RJ Example 3.5 has none.

    ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`) and Ctrl-C
    are checked between graphs; see :class:`StableOutcomes`
    for what a stopped enumeration means."""
    N = market.n
    if N > MAX_OUTCOME_AGENTS:
        raise LimitExceeded(f"enumerating all graphs is limited to N <= {MAX_OUTCOME_AGENTS}, got N = {N}")
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    total = 1 << len(pairs)
    found = []
    checked = 0
    stop = None
    try:
        P = _table(market)
        coal = _coalitions(N)
        best = np.empty((N, 1 << N))
        sup = np.empty((N, 1 << N))
        for g in range(total):
            if dl.expired():
                stop = Termination.TIME_LIMIT
                break
            edges = [pairs[e] for e in range(len(pairs)) if (g >> e) & 1]
            nbr = _masks_from_edges(N, edges)
            res = K.find_deviation_range(P, nbr, coal, 0, len(coal), tol, best, sup)
            if res[0] < 0:
                found.append(np.array(edges, dtype=np.int64).reshape(-1, 2))
            checked += 1
    except KeyboardInterrupt:
        stop = Termination.INTERRUPTED
    msg = "" if stop is None else stop_message(stop, f"{checked} of {total} graphs: the list of stable graphs "
                                               "is incomplete")
    return StableOutcomes(tuple(found), checked, time.perf_counter() - t0, stop or Termination.OPTIMAL, total, msg,
                          dl.time_limit)


@dataclass(frozen=True)
class BilateralWelfare(Result):
    """Welfare-maximising undirected graph: ``Σ_i value_i(S_i)`` (RJ Remark 3.4), by enumeration
    (exact: ``status`` optimal, ``objective`` = ``bound`` = ``welfare``)."""

    family: ClassVar[str] = "sharing"

    edges: np.ndarray
    welfare: float
    graphs_checked: int
    seconds: float = 0.0
    status: Termination = Termination.OPTIMAL
    message: str = ""

    @property
    def objective(self) -> float:
        return self.welfare

    @property
    def bound(self) -> float:
        return self.welfare


def bilateral_welfare(market: SharingMarket, edges) -> float:
    """``Σ_i`` :meth:`~SharingMarket.bilateral_value` ``(i, S_i)`` of an undirected graph."""
    nbr = _masks_from_edges(market.n, edges)
    return float(sum(market.bilateral_value(i, int(nbr[i])) for i in range(market.n)))


def bilateral_welfare_max(market: SharingMarket) -> BilateralWelfare:
    """Maximise ``Σ_i value_i(S_i)`` over all undirected graphs by enumeration (N ≤ 6)."""
    N = market.n
    if N > MAX_OUTCOME_AGENTS:
        raise LimitExceeded(f"enumerating all graphs is limited to N <= {MAX_OUTCOME_AGENTS}, got N = {N}")
    t0 = time.perf_counter()
    P = _table(market)
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    best, best_g = -np.inf, 0
    for g in range(1 << len(pairs)):
        nbr = np.zeros(N, dtype=np.int64)
        for e, (i, j) in enumerate(pairs):
            if (g >> e) & 1:
                nbr[i] |= 1 << j
                nbr[j] |= 1 << i
        w = float(P[np.arange(N), nbr].sum())
        if w > best:
            best, best_g = w, g
    edges = np.array([pairs[e] for e in range(len(pairs)) if (best_g >> e) & 1], dtype=np.int64).reshape(-1, 2)
    return BilateralWelfare(edges, best, 1 << len(pairs), time.perf_counter() - t0)


__all__ = ["PropertyCheck", "AssumptionChecks", "check_assumptions", "ordered_match_power_arrays",
           "sorted_power_order", "check_top_agent", "check_limited_complementarity", "candidate_order",
           "ordered_match", "OrderedMatchResult", "AssumptionError", "check_stability", "StabilityResult",
           "ordered_match_stability",
           "stable_outcomes", "StableOutcomes", "bilateral_welfare_max", "bilateral_welfare", "BilateralWelfare",
           "PREF_TOL"]
