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
"""

from __future__ import annotations

import itertools
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import DmOptError, LimitExceeded, ProblemError
from ..markets.sharing import MAX_TABLE_AGENTS, SharingMarket, members
from . import sharing_kernels as K

#: Default absolute tolerance for strict preference in the §3 checks.
PREF_TOL = 1e-12
#: Largest N for the exhaustive stability check (power markets are tabulated up to this N;
#: memory ≈ 3·N·2^N floats, 0.5 GB at N = 20).
MAX_STABILITY_AGENTS = 20
#: Largest N for enumerating every graph in :func:`stable_outcomes` (2^(N(N−1)/2) graphs).
MAX_OUTCOME_AGENTS = 6


class AssumptionError(DmOptError):
    """Ordered match was asked to run on preferences violating its assumptions (RJ Prop 3.1)."""


@dataclass(frozen=True)
class PropertyCheck:
    """Result of checking an assumption of RJ Prop 3.1.

    ``holds`` is True/False, or None when it could not be decided (then
    ``message`` says why).  For a violation: ``agent`` is ``k`` (whose
    preferences break it), ``pair`` the agents compared (top agent: ``(i, j)``
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


def _table(market: SharingMarket, limit: int = MAX_TABLE_AGENTS) -> np.ndarray:
    if market.n > limit:
        raise LimitExceeded(f"exhaustive checks tabulate 2^N sets; N = {market.n} exceeds {limit}")
    return np.ascontiguousarray(market.bilateral_table(limit))


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


def _as_order(market, order) -> np.ndarray:
    if order is None:
        return candidate_order(market)
    o = np.asarray(order, dtype=np.int64)
    if o.shape != (market.n,) or sorted(o.tolist()) != list(range(market.n)):
        raise ProblemError(f"order must be a permutation of 0..{market.n - 1}")
    return o


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
    o = _as_order(market, order)
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
        f = lambda m: market.alpha[k] * (1.0 - m ** (-market.beta[k]))  # noqa: E731
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
    o = _as_order(market, order)
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
class OrderedMatchResult:
    """Outcome of ordered match (RJ Prop 3.1).

    ``edges`` (E, 2) undirected sharing graph; ``order`` the ranking used
    (most preferred first); ``oracle_calls`` preference comparisons made
    (≤ N(N−1)); ``checks`` the assumption checks run (empty when skipped);
    ``assumptions_hold`` True/False/None (unchecked or undecided).
    """

    edges: np.ndarray
    order: np.ndarray
    oracle_calls: int
    checks: tuple = ()
    assumptions_hold: bool | None = None
    seconds: float = 0.0

    def neighbours(self, N: int) -> list:
        out = [[] for _ in range(N)]
        for i, j in self.edges:
            out[int(i)].append(int(j))
            out[int(j)].append(int(i))
        return [sorted(x) for x in out]


def ordered_match(market: SharingMarket, order=None, *, on_violation: str = "raise",
                  check: bool = True, tol: float = PREF_TOL) -> OrderedMatchResult:
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
    """
    if on_violation not in ("raise", "warn", "ignore"):
        raise ProblemError(f"on_violation must be 'raise', 'warn' or 'ignore', got {on_violation!r}")
    t0 = time.perf_counter()
    o = _as_order(market, order)
    checks: tuple = ()
    holds = None
    if check:
        ta = check_top_agent(market, o, tol=tol)
        lc = check_limited_complementarity(market, o, tol=tol) if ta.holds else None
        checks = (ta,) if lc is None else (ta, lc)
        holds = all(c.holds for c in checks) if all(c.holds is not None for c in checks) else None
        if ta.holds is False:
            holds = False
        if not holds:
            bad = next(c for c in checks if not c.holds)
            msg = (f"ordered match assumptions (RJ Prop 3.1) fail: {bad.property} "
                   f"{'is violated' if bad.holds is False else 'could not be checked'}: {bad.message}")
            if on_violation == "raise":
                raise AssumptionError(msg + "; pass on_violation='warn' to run anyway (outcome may be unstable)")
            if on_violation == "warn":
                warnings.warn(msg, stacklevel=2)
    if market.family == "power":
        cost = market.cost_data
        is_mat = market.cost_kind == "matrix"
        cost2 = cost if is_mat else cost.reshape(-1, 1)
        edges, calls = K.ordered_match_power(o, market.samples.astype(float), market.query_samples.astype(float),
                                             market.alpha.astype(float), market.beta.astype(float),
                                             np.ascontiguousarray(cost2, dtype=float), is_mat)
        edges = np.sort(edges, axis=1)
        edges = edges[np.lexsort((edges[:, 1], edges[:, 0]))] if len(edges) else edges.reshape(0, 2)
    else:
        P = _table(market)
        N = market.n
        nbr = np.zeros(N, dtype=np.int64)
        calls = 0
        for a in range(N):
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
                              time.perf_counter() - t0)


# --------------------------------------------------------------- stability
@dataclass(frozen=True)
class StabilityResult:
    """Exhaustive strong-stability check (RJ Def 3.2).

    ``stable`` True when no coalition has a profitable deviation.  Otherwise
    ``coalition`` (agents), ``deviation`` (edges of the new graph) and
    ``gains`` (new − old value for each coalition member) give a witness:
    every gain ≥ −tol and one > tol.
    """

    stable: bool
    edges: np.ndarray
    coalition: tuple = ()
    deviation: np.ndarray | None = None
    gains: tuple = ()
    coalitions_examined: int = 0
    seconds: float = 0.0


def _coalitions(N: int) -> np.ndarray:
    masks = np.arange(1, 1 << N, dtype=np.int64)
    pop = np.zeros(masks.shape, dtype=np.int64)
    for b in range(N):
        pop += (masks >> b) & 1
    return masks[np.argsort(pop, kind="stable")]


def check_stability(market: SharingMarket, edges, *, tol: float = PREF_TOL, _P=None, _coal=None) -> StabilityResult:
    """Is the undirected graph ``edges`` strongly stable (RJ Def 3.2)?

    Exhaustive over all ``2^N − 1`` coalitions (smallest first) and, per
    coalition, a depth-first search over the graphs it can form (see
    :func:`dm_opt.solvers.sharing_kernels.find_deviation`).  ``N ≤``
    :data:`MAX_STABILITY_AGENTS`.
    """
    N = market.n
    if N > MAX_STABILITY_AGENTS:
        raise LimitExceeded(f"exhaustive stability check is limited to N <= {MAX_STABILITY_AGENTS}, got N = {N}")
    t0 = time.perf_counter()
    P = _table(market, MAX_STABILITY_AGENTS) if _P is None else _P
    coal = _coalitions(N) if _coal is None else _coal
    nbr = _masks_from_edges(N, edges)
    S, newnbr, examined = K.find_deviation(P, nbr, coal, tol)
    edges_arr = _edges_from_masks(nbr)
    if S < 0:
        return StabilityResult(True, edges_arr, coalitions_examined=int(examined), seconds=time.perf_counter() - t0)
    S = int(S)
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
    return StabilityResult(False, edges_arr, mem, _edges_from_masks(new), gains, int(examined),
                           time.perf_counter() - t0)


@dataclass(frozen=True)
class StableOutcomes:
    """Every strongly stable graph of a small instance (RJ Def 3.2)."""

    graphs: tuple
    graphs_checked: int
    seconds: float = 0.0


def stable_outcomes(market: SharingMarket, *, tol: float = PREF_TOL) -> StableOutcomes:
    """Enumerate all ``2^(N(N−1)/2)`` undirected graphs and keep the stable ones
    (``N ≤`` :data:`MAX_OUTCOME_AGENTS`).  RJ Example 3.5 has none."""
    N = market.n
    if N > MAX_OUTCOME_AGENTS:
        raise LimitExceeded(f"enumerating all graphs is limited to N <= {MAX_OUTCOME_AGENTS}, got N = {N}")
    t0 = time.perf_counter()
    P = _table(market)
    coal = _coalitions(N)
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    found = []
    for g in range(1 << len(pairs)):
        edges = [pairs[e] for e in range(len(pairs)) if (g >> e) & 1]
        nbr = _masks_from_edges(N, edges)
        S, _, _ = K.find_deviation(P, nbr, coal, tol)
        if S < 0:
            found.append(np.array(edges, dtype=np.int64).reshape(-1, 2))
    return StableOutcomes(tuple(found), 1 << len(pairs), time.perf_counter() - t0)


@dataclass(frozen=True)
class BilateralWelfare:
    """Welfare-maximising undirected graph: ``Σ_i value_i(S_i)`` (RJ Remark 3.4)."""

    edges: np.ndarray
    welfare: float
    graphs_checked: int


def bilateral_welfare(market: SharingMarket, edges) -> float:
    """``Σ_i`` :meth:`~SharingMarket.bilateral_value` ``(i, S_i)`` of an undirected graph."""
    nbr = _masks_from_edges(market.n, edges)
    return float(sum(market.bilateral_value(i, int(nbr[i])) for i in range(market.n)))


def bilateral_welfare_max(market: SharingMarket) -> BilateralWelfare:
    """Maximise ``Σ_i value_i(S_i)`` over all undirected graphs by enumeration (N ≤ 6)."""
    N = market.n
    if N > MAX_OUTCOME_AGENTS:
        raise LimitExceeded(f"enumerating all graphs is limited to N <= {MAX_OUTCOME_AGENTS}, got N = {N}")
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
    return BilateralWelfare(edges, best, 1 << len(pairs))


__all__ = ["PropertyCheck", "check_top_agent", "check_limited_complementarity", "candidate_order",
           "ordered_match", "OrderedMatchResult", "AssumptionError", "check_stability", "StabilityResult",
           "stable_outcomes", "StableOutcomes", "bilateral_welfare_max", "bilateral_welfare", "BilateralWelfare",
           "PREF_TOL"]
