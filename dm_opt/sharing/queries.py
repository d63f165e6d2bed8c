"""Bilateral sharing with query weights (RJ §6 applied to §3): ordered match with weights.

In RJ §6 the unit of trade is the answer of one query on an agent's data (differential
privacy).  The sharing graph of §3 gets integer weights: an edge ``{i, j}`` carries
``w̃_{i,j}`` — the number of queries ``i`` runs on ``j``'s data, ``1 ≤ w̃_{i,j} ≤ Q_j``
(``max_queries`` of the data owner) — and ``w̃_{j,i}``.  Agent ``i``'s value is

    V_i(G̃) = U_i(n_i + Σ_j w̃_{i,j} q_j) − Σ_j w̃_{j,i} c_i(j)          (eq. 35 costs per query)

(power family; with ``Q ≡ 1`` it is :meth:`SharingMarket.bilateral_value`).  The paper updates
ordered match as follows: when ``n`` swipes ``ℓ`` it proposes the set of weight pairs
``(w̃_{n,ℓ}, w̃_{ℓ,n})`` acceptable to it (benefits greater than costs); ``ℓ`` accepts by
choosing one from this set, or rejects (:func:`ordered_match_queries`; ``ℓ`` chooses its best
pair, ties broken towards ``n``'s gain, then fewer queries).

**What holds (tests/sharing/test_queries.py).**  With ``max_queries = 1`` the procedure is the
ordered match of Prop 3.1 (same edges; stable).  The paper states, without proof, that a core
stable outcome exists and is found by this procedure.  Existence holds on every seeded
three-agent instance we enumerated (:func:`stable_weighted_outcomes`), but the procedure's
outcome is **not** always core stable (nor strongly stable): ``ℓ``'s choice is made at its state
when ``n`` swipes, and with weights an early partner may contribute less data than a later one,
so a pair of agents can block with other weights, or an agent can regret an edge
(:func:`check_weighted_stability` returns the witness).  The assumptions of Prop 3.1 are checked
on the single-query preferences (as for :func:`~dm_opt.sharing.bilateral.ordered_match`); they
do not restore stability with weights.

**Limits.**  Power family only (the table family has ``max_queries = 1``: use
:func:`~dm_opt.sharing.bilateral.ordered_match`); ``max_queries ≤`` :data:`MAX_MATCH_QUERIES`
(each swipe examines ``Q_ℓ × Q_n`` pairs); the exhaustive stability checks enumerate weighted
graphs and refuse beyond :data:`MAX_WEIGHTED_AGENTS` agents or :data:`MAX_WEIGHTED_GRAPHS`
graphs (:class:`~dm_opt.core.errors.LimitExceeded`).  ``time_limit`` as for ordered match: a
partial pass is not an outcome, so expiry raises ``LimitExceeded``; the stability checks stop
undecided.
"""

from __future__ import annotations

import itertools
import math
import numbers
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import LimitExceeded, ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Result, Termination
from dm_opt.core.validate import as_array, describe
from dm_opt.sharing import kernels as K
from dm_opt.sharing.bilateral import PREF_TOL, _enforce_assumptions, as_order
from dm_opt.sharing.buyer import stop_message
from dm_opt.sharing.market import SharingMarket

#: Largest ``max_queries`` of the ordered match with weights (a swipe examines ``Q_ℓ · Q_n`` pairs).
MAX_MATCH_QUERIES = 64
#: Largest N of the exhaustive stability checks with weights.
MAX_WEIGHTED_AGENTS = 5
#: Largest number of weighted graphs one exhaustive check may enumerate (over all coalitions).
MAX_WEIGHTED_GRAPHS = 2_000_000
#: Rows per compiled call of the ordered match with weights (the time limit is checked between calls).
MATCH_CHUNK_ROWS = 64
NOTIONS = ("strong", "core")


def _check_power(market: SharingMarket, what: str) -> None:
    if market.family != "power":
        raise ProblemError(f"{what} needs the power family (the table family has max_queries = 1: use "
                           "bilateral.ordered_match / check_stability)")


def _integers(field: str, x, shape=None) -> np.ndarray:
    """``x`` as an int64 array of whole numbers (``shape`` if given), else one error naming ``field``:
    ``np.asarray(x, dtype=np.int64)`` truncated 1.5 and True silently and raised its own errors on
    strings, NaN and huge numbers."""
    arr = as_array(field, x, shape=shape, max_abs=2.0 ** 53)
    frac = arr != np.floor(arr)
    if np.any(frac):
        idx = ",".join(str(int(i)) for i in np.argwhere(frac)[0])
        raise ProblemError(f"{field}[{idx}] must be a whole number, got {arr[frac][0]}")
    return arr.astype(np.int64)


def _pairs(field: str, x) -> np.ndarray:
    """An (E, 2) integer array (a flat list of 2·E numbers is read row by row, as before)."""
    arr = _integers(field, x)
    if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[1] != 2) or arr.size % 2:
        raise ProblemError(f"{field} must have shape (E, 2), got {arr.shape}")
    return arr.reshape(-1, 2)


def _check_tol(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0.0 <= float(tol) < math.inf:
        raise ProblemError(f"tol must be a finite number >= 0, got {describe(tol)}")
    return float(tol)


def query_matrix(market: SharingMarket, edges, weights) -> np.ndarray:
    """``W[i, j]`` = queries ``i`` runs on ``j``'s data from an edge list (E, 2) and its weights
    (E, 2) (``weights[e] = (w̃_{i,j}, w̃_{j,i})`` for ``edges[e] = (i, j)``); validated."""
    N = market.n
    E = _pairs("edges", edges)
    Wt = _pairs("weights", weights)
    if E.shape != Wt.shape:
        raise ProblemError(f"edges {E.shape} and weights {Wt.shape} differ in shape")
    W = np.zeros((N, N), dtype=np.int64)
    for (i, j), (x, y) in zip(E, Wt):
        if i == j or not (0 <= i < N and 0 <= j < N):
            raise ProblemError(f"edge ({i}, {j}) is not an edge between two distinct agents of 0..{N - 1}")
        if W[i, j] or W[j, i]:
            raise ProblemError(f"edge ({i}, {j}) is given twice")
        if not (1 <= x <= market.max_queries[j] and 1 <= y <= market.max_queries[i]):
            raise ProblemError(f"weights ({x}, {y}) of edge ({i}, {j}) must lie in [1, max_queries] "
                               f"([1, {market.max_queries[j]}] x [1, {market.max_queries[i]}])")
        W[i, j], W[j, i] = x, y
    return W


def edges_of(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(edges (E, 2) with i < j, sorted; weights (E, 2) = (W[i, j], W[j, i]))`` of a query matrix."""
    i, j = np.nonzero(np.triu(W, 1))
    e = np.stack([i, j], axis=1).astype(np.int64).reshape(-1, 2)
    return e, np.stack([W[i, j], W[j, i]], axis=1).astype(np.int64).reshape(-1, 2)


def weighted_values(market: SharingMarket, W) -> np.ndarray:
    """``V_i = U_i(n_i + Σ_j W[i, j] q_j) − Σ_j W[j, i] c_i(j)`` for every agent, shape (N,)."""
    W = _integers("W", W, shape=(market.n, market.n)).astype(float)
    recv = W @ market.query_samples
    paid = np.sum(W.T * market.cost_matrix(), axis=1)          # Σ_j W[j, i] c_i(j)
    return market.alpha * (1.0 - (market.samples + recv) ** (-market.beta)) - paid


# ------------------------------------------------------------------ ordered match
@dataclass(frozen=True)
class WeightedMatchResult(Result):
    """Outcome of the ordered match with query weights (RJ §6).

    ``edges`` (E, 2) with ``i < j`` (sorted), ``weights`` (E, 2) = ``(w̃_{i,j}, w̃_{j,i})``;
    ``order`` the ranking used; ``pairs`` swipes examined (N(N−1)/2), ``proposals`` swipes in
    which the swiper proposed; ``values`` ``V_i`` at the outcome; ``checks`` /
    ``assumptions_hold`` as for :class:`~dm_opt.sharing.bilateral.OrderedMatchResult` (the
    single-query premises of Prop 3.1).  ``status`` optimal (exact procedure; no partial pass is
    returned); ``objective`` is ``Σ V_i``, with no bound (the procedure does not maximise it).
    """

    family: ClassVar[str] = "sharing"

    edges: np.ndarray
    weights: np.ndarray
    order: np.ndarray
    pairs: int
    proposals: int
    values: np.ndarray
    checks: tuple = ()
    assumptions_hold: bool | None = None
    seconds: float = 0.0
    status: Termination = Termination.OPTIMAL
    message: str = ""
    time_limit: float | None = None

    @property
    def objective(self) -> float:
        return float(np.sum(self.values))

    def query_matrix(self, N: int) -> np.ndarray:
        W = np.zeros((N, N), dtype=np.int64)
        for (i, j), (x, y) in zip(self.edges, self.weights):
            W[i, j], W[j, i] = x, y
        return W


def ordered_match_queries(market: SharingMarket, order=None, *, on_violation: str = "raise", check: bool = True,
                          tol: float = PREF_TOL, time_limit: float | Deadline | None = None) -> WeightedMatchResult:
    """Ordered match with query weights (RJ §6; see the module docstring for the procedure and
    what it guarantees).  ``order``, ``on_violation``, ``check`` and ``time_limit`` as for
    :func:`~dm_opt.sharing.bilateral.ordered_match` (the checks are those of Prop 3.1 on the
    single-query preferences).  Power family, ``max_queries ≤`` :data:`MAX_MATCH_QUERIES`."""
    _check_power(market, "ordered match with query weights")
    tol = _check_tol(tol)
    if on_violation not in ("raise", "warn", "ignore"):
        raise ProblemError(f"on_violation must be 'raise', 'warn' or 'ignore', got {on_violation!r}")
    Qmax = int(np.max(market.max_queries))
    if Qmax > MAX_MATCH_QUERIES:
        raise LimitExceeded(f"ordered match with query weights examines Q_l x Q_n weight pairs per swipe; "
                            f"max_queries = {Qmax} exceeds the limit {MAX_MATCH_QUERIES}")
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    o = as_order(market, order)
    N = market.n

    def out_of_time(done: str):
        if dl.expired():
            raise LimitExceeded(f"time limit reached {done}; a partial ordered match is not an outcome "
                                "(every agent must swipe): give more time")

    checks, holds = _enforce_assumptions(market, o, tol, on_violation, dl, out_of_time, check=check)
    cost = market.cost_data
    is_mat = market.cost_kind == "matrix"
    cost2 = np.ascontiguousarray(cost if is_mat else cost.reshape(-1, 1), dtype=float)
    qs, al, be = (np.ascontiguousarray(x, dtype=float) for x in (market.query_samples, market.alpha, market.beta))
    Q = np.ascontiguousarray(market.max_queries, dtype=np.int64)
    m, mp = K.ordered_match_power_state(market.samples.astype(float), be)
    parts_e, parts_w, pairs, props, a = [], [], 0, 0, 0
    while a < N:
        out_of_time(f"during ordered match after {a} of {N} agents")
        b = min(N, a + max(1, int(MATCH_CHUNK_ROWS)))
        e, w, p, pr = K.ordered_match_queries_range(o, qs, al, be, cost2, is_mat, Q, m, mp, a, b)
        parts_e.append(e)
        parts_w.append(w)
        pairs += int(p)
        props += int(pr)
        a = b
    E = np.concatenate(parts_e) if parts_e else np.zeros((0, 2), dtype=np.int64)
    Wt = np.concatenate(parts_w) if parts_w else np.zeros((0, 2), dtype=np.int64)
    W = np.zeros((N, N), dtype=np.int64)
    for (n, l), (x, y) in zip(E, Wt):
        W[n, l], W[l, n] = x, y
    edges, weights = edges_of(W)
    return WeightedMatchResult(edges, weights, o, pairs, props, weighted_values(market, W), checks, holds,
                               time.perf_counter() - t0, time_limit=dl.time_limit)


# ------------------------------------------------------------------ stability
@dataclass(frozen=True)
class WeightedStability(Result):
    """Exhaustive stability check of a weighted graph (RJ Def 3.2 with §6 weights).

    ``notion`` ``strong``: a coalition may set any weights on its inside pairs (or drop them)
    and keep or drop each of its edges to outsiders; a deviation leaves every member weakly
    better (``≥ −tol``) and one strictly (``> tol``).  ``core``: the coalition keeps only a graph
    among itself and every member is strictly better.  ``stable`` True/False, None when stopped
    (``status`` time_limit / interrupted); a witness ``coalition``, ``deviation`` (its query
    matrix) and ``gains`` when False."""

    family: ClassVar[str] = "sharing"

    stable: bool | None
    notion: str
    coalition: tuple = ()
    deviation: np.ndarray | None = None
    gains: tuple = ()
    graphs_examined: int = 0
    graphs_total: int = 0
    seconds: float = 0.0
    status: Termination = Termination.OPTIMAL
    message: str = ""

    def _has_answer(self) -> bool:
        return self.stable is not None


def _pair_options(market, i, j):
    """Weights of pair (i, j), i < j: none, or (W[i, j], W[j, i]) in [1, Q_j] x [1, Q_i]."""
    return [None] + [(x, y) for x in range(1, int(market.max_queries[j]) + 1)
                     for y in range(1, int(market.max_queries[i]) + 1)]


def _count_graphs(market, W, notion) -> int:
    N = market.n
    total = 0
    for r in range(1, N + 1):
        for S in itertools.combinations(range(N), r):
            k = 1
            for i, j in itertools.combinations(S, 2):
                k *= 1 + int(market.max_queries[i]) * int(market.max_queries[j])
            if notion == "strong":
                inS = np.zeros(N, dtype=bool)
                inS[list(S)] = True
                cut = int(np.count_nonzero(np.triu((W > 0) & (inS[:, None] != inS[None, :]), 1)))
                k <<= cut
            total += k
    return total


def _check_size(market, W, notion) -> int:
    if notion not in NOTIONS:
        raise ProblemError(f"notion must be one of {', '.join(NOTIONS)}, got {notion!r}")
    if market.n > MAX_WEIGHTED_AGENTS:
        raise LimitExceeded(f"exhaustive weighted stability checks are limited to N <= {MAX_WEIGHTED_AGENTS}, "
                            f"got N = {market.n}")
    total = _count_graphs(market, W, notion)
    if total > MAX_WEIGHTED_GRAPHS:
        raise LimitExceeded(f"the {notion} stability check would enumerate {total} weighted graphs, more than "
                            f"the limit {MAX_WEIGHTED_GRAPHS}")
    return total


def _find_deviation(market, W, notion, tol, dl, counter):
    """First deviation ``(S, W', gains)`` from ``W`` or None; ``counter[0]`` counts graphs; raises
    :class:`_Stop` at the deadline."""
    N = market.n
    cur = weighted_values(market, W)
    for r in range(1, N + 1):
        for S in itertools.combinations(range(N), r):
            inS = np.zeros(N, dtype=bool)
            inS[list(S)] = True
            inside = list(itertools.combinations(S, 2))
            cut = [(i, j) for i in range(N) for j in range(i + 1, N) if W[i, j] and inS[i] != inS[j]]
            base = W.copy()
            for i, j in inside + cut:
                base[i, j] = base[j, i] = 0
            cut_opts = [(False, True)] * len(cut) if notion == "strong" else [(False,)] * len(cut)
            idx = list(S)
            for choice in itertools.product(*[_pair_options(market, i, j) for i, j in inside]):
                if dl.expired():
                    raise _Stop
                G = base.copy()
                for (i, j), w in zip(inside, choice):
                    if w is not None:
                        G[i, j], G[j, i] = w
                for keep in itertools.product(*cut_opts):
                    H = G.copy() if cut else G
                    for (i, j), k in zip(cut, keep):
                        if k:
                            H[i, j], H[j, i] = W[i, j], W[j, i]
                    counter[0] += 1
                    d = weighted_values(market, H)[idx] - cur[idx]
                    if notion == "strong":
                        if d.min() >= -tol and d.max() > tol:
                            return S, H, tuple(float(x) for x in d)
                    elif d.min() > tol:
                        return S, H, tuple(float(x) for x in d)
    return None


class _Stop(Exception):
    """Internal: the deadline passed during an exhaustive weighted check."""


def check_weighted_stability(market: SharingMarket, W, *, notion: str = "strong", tol: float = PREF_TOL,
                             time_limit: float | Deadline | None = None) -> WeightedStability:
    """Is the weighted graph with query matrix ``W`` (``W[i, j]`` queries ``i`` runs on ``j``;
    :func:`query_matrix` from edges and weights) ``strong``- or ``core``-stable?  Exhaustive over
    coalitions and the weighted graphs they can form (``N ≤`` :data:`MAX_WEIGHTED_AGENTS`, at most
    :data:`MAX_WEIGHTED_GRAPHS` graphs).  A time limit or Ctrl-C leaves it undecided."""
    _check_power(market, "the weighted stability check")
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    tol = _check_tol(tol)
    W = _integers("W", W, shape=(market.n, market.n))
    if W.shape != (market.n, market.n) or np.any((W > 0) != (W.T > 0)) or np.any(np.diag(W) != 0):
        raise ProblemError("W must be an N x N query matrix with W[i, j] > 0 exactly when W[j, i] > 0")
    e, w = edges_of(W)
    query_matrix(market, e, w)                       # validates the weights against max_queries
    total = _check_size(market, W, notion)
    counter = [0]
    try:
        found = _find_deviation(market, W, notion, tol, dl, counter)
    except (_Stop, KeyboardInterrupt) as exc:
        st = Termination.TIME_LIMIT if isinstance(exc, _Stop) else Termination.INTERRUPTED
        return WeightedStability(None, notion, graphs_examined=counter[0], graphs_total=total,
                                 seconds=time.perf_counter() - t0, status=st,
                                 message=stop_message(st, f"{counter[0]} of {total} weighted graphs without a "
                                                      "deviation: stability undecided"))
    if found is None:
        return WeightedStability(True, notion, graphs_examined=counter[0], graphs_total=total,
                                 seconds=time.perf_counter() - t0)
    S, H, gains = found
    return WeightedStability(False, notion, tuple(int(i) for i in S), H, gains, counter[0], total,
                             time.perf_counter() - t0)


@dataclass(frozen=True)
class WeightedOutcomes(Result):
    """Every ``notion``-stable weighted graph of a small instance (``graphs``: query matrices),
    complete when ``status`` is optimal."""

    family: ClassVar[str] = "sharing"

    graphs: tuple
    notion: str
    graphs_checked: int
    graphs_total: int
    seconds: float = 0.0
    status: Termination = Termination.OPTIMAL
    message: str = ""

    def _has_answer(self) -> bool:
        return True


def stable_weighted_outcomes(market: SharingMarket, *, notion: str = "core", tol: float = PREF_TOL,
                             time_limit: float | Deadline | None = None) -> WeightedOutcomes:
    """Enumerate every weighted graph and keep the ``notion``-stable ones (the existence statement
    of RJ §6).  Refuses (LimitExceeded) when the graphs times the checks exceed
    :data:`MAX_WEIGHTED_GRAPHS` or ``N >`` :data:`MAX_WEIGHTED_AGENTS`."""
    _check_power(market, "stable_weighted_outcomes")
    tol = _check_tol(tol)
    if not isinstance(notion, str) or notion not in NOTIONS:
        raise ProblemError(f"notion must be one of {', '.join(NOTIONS)}, got {notion!r}")
    N = market.n
    if N > MAX_WEIGHTED_AGENTS:
        raise LimitExceeded(f"enumerating weighted graphs is limited to N <= {MAX_WEIGHTED_AGENTS}, got N = {N}")
    pairs = list(itertools.combinations(range(N), 2))
    opts = [_pair_options(market, i, j) for i, j in pairs]
    n_graphs = math.prod(len(x) for x in opts)
    per_check = _count_graphs(market, np.zeros((N, N), dtype=np.int64), "core")
    if n_graphs * per_check > MAX_WEIGHTED_GRAPHS:
        raise LimitExceeded(f"{n_graphs} weighted graphs x {per_check} deviations each exceed the limit "
                            f"{MAX_WEIGHTED_GRAPHS}")
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    found, checked, stop = [], 0, None
    try:
        for choice in itertools.product(*opts):
            if dl.expired():
                stop = Termination.TIME_LIMIT
                break
            W = np.zeros((N, N), dtype=np.int64)
            for (i, j), w in zip(pairs, choice):
                if w is not None:
                    W[i, j], W[j, i] = w
            if _find_deviation(market, W, notion, tol, dl, [0]) is None:
                found.append(W)
            checked += 1
    except _Stop:
        stop = Termination.TIME_LIMIT
    except KeyboardInterrupt:
        stop = Termination.INTERRUPTED
    msg = "" if stop is None else stop_message(stop, f"{checked} of {n_graphs} weighted graphs: incomplete")
    return WeightedOutcomes(tuple(found), notion, checked, n_graphs, time.perf_counter() - t0,
                            stop or Termination.OPTIMAL, msg)


__all__ = ["ordered_match_queries", "WeightedMatchResult", "check_weighted_stability", "WeightedStability",
           "stable_weighted_outcomes", "WeightedOutcomes", "weighted_values", "query_matrix", "edges_of",
           "MAX_MATCH_QUERIES", "MAX_WEIGHTED_AGENTS", "MAX_WEIGHTED_GRAPHS"]
