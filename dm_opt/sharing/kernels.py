"""Compiled kernels (numba) for the data-sharing network solvers (RJ §3–§5).

Sets of agents are int64 bit masks; preference tables ``P[i, mask]`` hold
agent ``i``'s value of partner set ``mask`` (bit ``i`` ignored).
"""

from __future__ import annotations

import numpy as np
from numba import njit


# ---------------------------------------------------------------- §3 checks
@njit(cache=True)
def top_agent_violation(P, order, tol):
    """First ``(k, i, j, S)`` with ``i`` ranked above ``j`` but not
    ``P[k, S∪{i}] > P[k, S∪{j}] + tol`` (RJ Def 3.3–3.4); ``k = -1`` if none."""
    N = P.shape[0]
    full = (1 << N) - 1
    for k in range(N):
        for a in range(N):
            i = order[a]
            if i == k:
                continue
            for b in range(a + 1, N):
                j = order[b]
                if j == k:
                    continue
                U = full & ~((1 << k) | (1 << i) | (1 << j))
                sub = U
                while True:
                    if not (P[k, sub | (1 << i)] - P[k, sub | (1 << j)] > tol):
                        return k, i, j, sub
                    if sub == 0:
                        break
                    sub = (sub - 1) & U
    return -1, -1, -1, 0


@njit(cache=True)
def limited_complementarity_violation(P, order, tol):
    """First ``(k, i, S)`` violating RJ Def 3.5: ``S ≻_k S∪{i}`` but some nonempty
    ``S' ⊆ {agents ranked ≥ i} \\ S`` has ``S∪S' ⪰_k S``; ``k = -1`` if none.

    ``best[S, r]`` = max of ``P[k, S∪T]`` over ``T`` ⊆ agents of rank ≥ r not
    in ``S`` (T may be empty), ``h[S, r]`` the same over nonempty ``T``; both
    by a DP over ranks, ``O(N 2^N)`` per agent.
    """
    N = P.shape[0]
    M = 1 << N
    best = np.empty((M, N + 1))
    h = np.empty((M, N + 1))
    for k in range(N):
        kb = 1 << k
        for S in range(M):
            best[S, N] = P[k, S]
            h[S, N] = -np.inf
        for r in range(N - 1, -1, -1):
            a = order[r]
            ab = 1 << a
            for S in range(M):
                if a == k or (S & ab) != 0:
                    best[S, r] = best[S, r + 1]
                    h[S, r] = h[S, r + 1]
                else:
                    with_a = best[S | ab, r + 1]
                    best[S, r] = max(best[S, r + 1], with_a)
                    h[S, r] = max(h[S, r + 1], with_a)
        for S in range(M):
            if (S & kb) != 0:
                continue
            for r in range(N):
                i = order[r]
                if i == k or (S >> i) & 1:
                    continue
                if P[k, S] - P[k, S | (1 << i)] > tol:          # premise S ≻_k S ∪ {i}
                    if not (P[k, S] - h[S, r] > tol):          # some S ∪ S' not strictly worse
                        return k, i, S
    return -1, -1, 0


# ------------------------------------------------------------ ordered match
@njit(cache=True)
def _grown(buf, E):
    """``buf`` (rows, 2), doubled when its ``E`` rows are all in use (the first ``E`` kept)."""
    if E < buf.shape[0]:
        return buf
    new = np.empty((2 * E, 2), dtype=buf.dtype)
    new[:E] = buf[:E]
    return new


@njit(cache=True)
def _link(edges, E, n, l, qs, beta, m, mp, x=1, y=1):
    """Both agents accept: record edge ``(n, l)`` as row ``E`` of ``edges`` (doubling the buffer
    when full) and add ``x`` of ``l``'s query blocks to ``n``'s total and ``y`` of ``n``'s to
    ``l``'s (``m``, and ``mp = m^(−β)``; ``x = y = 1`` outside §6, where ``1 · q`` is ``q`` exactly).
    Returns ``(edges, E + 1)``; ``edges`` is a new array when the buffer grew."""
    edges = _grown(edges, E)
    edges[E, 0] = n
    edges[E, 1] = l
    m[n] += x * qs[l]
    m[l] += y * qs[n]
    mp[n] = m[n] ** (-beta[n])
    mp[l] = m[l] ** (-beta[l])
    return edges, E + 1


@njit(cache=True)
def ordered_match_power_range(order, qs, alpha, beta, cost, cost_is_matrix, m, mp, a0, a1):
    """Rows ``a0 ≤ a < a1`` of ordered match (RJ Prop 3.1) for the power family.

    Agent ``n = order[a]`` swipes the lower-ranked agents; its gain from adding
    partner ``ℓ`` is ``α_n (m_n^(−β_n) − (m_n + q_ℓ)^(−β_n)) − c_n(ℓ)`` with ``m_n``
    its current total samples; (1) and (2) are strict (``> 0``).  ``m`` (total
    samples) and ``mp`` (``m^(−β)``) carry the state between calls and are
    updated in place, so consecutive ranges give exactly the one-call result
    (the Python caller checks its time limit between ranges).
    Returns (edges (E, 2) in agent indices, oracle calls).
    """
    N = order.shape[0]
    edges = np.empty((1024, 2), dtype=np.int64)
    E = 0
    calls = 0
    for a in range(a0, a1):
        n = order[a]
        for b in range(a + 1, N):
            l = order[b]
            calls += 1
            cn = cost[n, l] if cost_is_matrix else cost[n, 0]
            gain_n = alpha[n] * (mp[n] - (m[n] + qs[l]) ** (-beta[n])) - cn
            if gain_n > 0.0:
                calls += 1
                cl = cost[l, n] if cost_is_matrix else cost[l, 0]
                gain_l = alpha[l] * (mp[l] - (m[l] + qs[n]) ** (-beta[l])) - cl
                if gain_l > 0.0:
                    edges, E = _link(edges, E, n, l, qs, beta, m, mp)
    return edges[:E].copy(), calls


@njit(cache=True)
def _find_alive(parent, p):
    """First alive position ``≥ p`` (``parent[p] == p`` when alive; path halving)."""
    while parent[p] != p:
        parent[p] = parent[parent[p]]
        p = parent[p]
    return p


@njit(cache=True)
def _first_refusal(order, qs, alpha, beta, cost, m, mp, n, lo, hi):
    """Smallest position ``p`` in ``(lo, hi]`` where agent ``n`` (state ``m[n]``, ``mp[n]``)
    does not propose, assuming it fails at ``hi`` (or ``hi = N``: no known failure; returns
    ``N`` when it proposes everywhere).  Proposals are monotone in the position because
    ``q`` does not increase along ``order`` (binary search, ``O(log N)`` oracle calls)."""
    a, b = lo + 1, hi
    while a < b:
        mid = (a + b) // 2
        l = order[mid]
        if alpha[n] * (mp[n] - (m[n] + qs[l]) ** (-beta[n])) - cost[n, 0] > 0.0:
            a = mid + 1
        else:
            b = mid
    return a


@njit(cache=True)
def ordered_match_power_sorted_range(order, qs, alpha, beta, cost, m, mp, parent, a0, a1):
    """Rows ``a0 ≤ a < a1`` of ordered match (RJ Prop 3.1) for the power family with
    recipient-independent costs (``cost`` (N, 1)) and ``q`` non-increasing along ``order``:
    the same edges, in the same sequence, and the same oracle-call count as
    :func:`ordered_match_power_range`, in ``O((N + E) log N)`` instead of ``N(N−1)/2`` calls.

    Why it is the same computation: agent ``n``'s gain from ``ℓ`` at a fixed state increases
    with ``q_ℓ``, so along its swipe (``q`` non-increasing) ``n`` proposes to a prefix of the
    positions and never again after its first refusal (its state changes only by accepted
    proposals).  A target ``ℓ`` that rejects ``n`` rejects every later swiper too (their
    ``q`` are not larger and ``ℓ``'s state is unchanged until it accepts), so it is removed
    from the targets (``parent``: next-alive pointers).  The swipe visits the remaining
    targets only, and the end of ``n``'s proposals among removed targets is found by binary
    search, which gives the old count ``(N−a−1) + #proposals``.  The gains are the same
    floating-point expressions as the full scan, evaluated on the same states (monotone in
    ``q`` as long as ``pow`` is monotone).  ``m``, ``mp`` and ``parent`` (length N + 1,
    ``parent[p] = p`` alive) carry the state between calls.  Returns (edges (E, 2), calls).
    """
    N = order.shape[0]
    edges = np.empty((1024, 2), dtype=np.int64)
    E = 0
    calls = 0
    for a in range(a0, a1):
        n = order[a]
        calls += N - a - 1
        last = a
        stop = N
        b = _find_alive(parent, a + 1)
        while b < N:
            l = order[b]
            gain_n = alpha[n] * (mp[n] - (m[n] + qs[l]) ** (-beta[n])) - cost[n, 0]
            if not gain_n > 0.0:
                stop = _first_refusal(order, qs, alpha, beta, cost, m, mp, n, last, b)
                break
            gain_l = alpha[l] * (mp[l] - (m[l] + qs[n]) ** (-beta[l])) - cost[l, 0]
            if gain_l > 0.0:
                edges, E = _link(edges, E, n, l, qs, beta, m, mp)
            else:
                parent[b] = b + 1                      # rejects every later swiper too
            last = b
            b = _find_alive(parent, b + 1)
        if b >= N and last < N - 1:
            stop = _first_refusal(order, qs, alpha, beta, cost, m, mp, n, last, N)
        calls += stop - a - 1
    return edges[:E].copy(), calls


@njit(cache=True)
def ordered_match_power_state(samples, beta):
    """Initial state ``(m, mp)`` of :func:`ordered_match_power_range`: total samples and
    the cached ``m_k^(−β_k)`` (one power per oracle call instead of two)."""
    N = samples.shape[0]
    m = samples.copy()
    mp = np.empty(N)
    for k in range(N):
        mp[k] = m[k] ** (-beta[k])
    return m, mp


@njit(cache=True)
def ordered_match_power(order, samples, qs, alpha, beta, cost, cost_is_matrix):
    """Ordered match (RJ Prop 3.1) for the power family in one call, ``O(N²)`` oracle calls
    (:func:`ordered_match_power_range` over all rows).  Returns (edges (E, 2), oracle calls)."""
    m, mp = ordered_match_power_state(samples, beta)
    return ordered_match_power_range(order, qs, alpha, beta, cost, cost_is_matrix, m, mp, 0, order.shape[0])


# ------------------------------------------------------------ stability
@njit(cache=True)
def find_deviation(P, nbr, coalitions, tol):
    """Exhaustive strong-stability check (RJ Def 3.2) over every coalition in
    ``coalitions`` in one call (:func:`find_deviation_range` with its own workspace).
    Returns (coalition mask or -1, new neighbour masks (N,), coalitions examined)."""
    N = P.shape[0]
    M = 1 << N
    best = np.empty((N, M))
    sup = np.empty((N, M))
    return find_deviation_range(P, nbr, coalitions, 0, coalitions.shape[0], tol, best, sup)


@njit(cache=True)
def find_deviation_range(P, nbr, coalitions, start, stop, tol, best, sup):
    """Strong-stability check (RJ Def 3.2) of the graph with neighbour masks
    ``nbr`` over the coalitions ``coalitions[start:stop]``; ``best`` and ``sup``
    are (N, 2^N) float workspaces owned by the caller (reused between ranges,
    so a time-limited caller can check its clock between calls).

    A coalition ``S`` may add or delete any edge inside ``S`` and delete edges
    from its members to outsiders; the other edges stay.  Each member's new
    partner set is ``T ∪ K`` with ``T`` its neighbours inside ``S`` in the new
    graph and ``K ⊆`` its current outside neighbours — chosen by that member
    alone, so it takes the best ``K``.  A deviation needs every member weakly
    better (``≥ cur − tol``) and one strictly (``> cur + tol``).

    Reduction: a member whose partner set does not change can be dropped from
    the coalition (it changed no edge, and the strict improver is someone
    else), so it suffices to look, over *all* coalitions, for deviations in
    which every member's set changes: ``best_i(T) = max {P[i, T ∪ K] : T ∪ K ≠
    current set}``.  Depth-first over members, each choosing its edges to later
    members; a branch is cut when a member is worse off, or when a later
    member cannot be made weakly better by any superset of the edges already
    fixed to it (superset-max table ``sup``).

    Returns (coalition mask or -1, new neighbour masks of the members (N,),
    coalitions examined in this range).
    """
    N = P.shape[0]
    cur = np.empty(N)
    for i in range(N):
        cur[i] = P[i, nbr[i]]
    mem = np.empty(N, dtype=np.int64)
    full_ = np.empty(N, dtype=np.int64)
    sub_ = np.empty(N, dtype=np.int64)
    exhausted = np.zeros(N, dtype=np.bool_)
    chosen = np.zeros(N, dtype=np.int64)
    incoming = np.zeros(N, dtype=np.int64)
    newnbr = np.zeros(N, dtype=np.int64)
    examined = 0
    for ci in range(start, stop):
        S = coalitions[ci]
        examined += 1
        m = 0
        for i in range(N):
            if (S >> i) & 1:
                mem[m] = i
                m += 1
        feasible = True
        any_strict = False
        for p in range(m):
            i = mem[p]
            inside = S & ~(1 << i)
            out = nbr[i] & ~S
            T = inside
            while True:
                b = -np.inf
                K = out
                while True:
                    X = T | K
                    if X != nbr[i]:
                        v = P[i, X]
                        if v > b:
                            b = v
                    if K == 0:
                        break
                    K = (K - 1) & out
                best[p, T] = b
                sup[p, T] = b
                if T == 0:
                    break
                T = (T - 1) & inside
            # superset maxima over subsets of ``inside``
            for q in range(m):
                bit = 1 << mem[q]
                if (inside & bit) == 0:
                    continue
                T = inside
                while True:
                    if (T & bit) == 0:
                        v = sup[p, T | bit]
                        if v > sup[p, T]:
                            sup[p, T] = v
                    if T == 0:
                        break
                    T = (T - 1) & inside
            top = sup[p, 0]
            if top < cur[i] - tol:
                feasible = False
                break
            if top > cur[i] + tol:
                any_strict = True
        if not feasible or not any_strict:
            continue
        # depth-first over members
        p = 0
        later = 0
        for q in range(1, m):
            later |= 1 << mem[q]
        full_[0] = later
        sub_[0] = later
        exhausted[0] = False
        incoming[0] = 0
        while p >= 0:
            if exhausted[p]:
                p -= 1
                if p >= 0:
                    if sub_[p] == 0:
                        exhausted[p] = True
                    else:
                        sub_[p] = (sub_[p] - 1) & full_[p]
                continue
            R = sub_[p]
            T = incoming[p] | R
            i = mem[p]
            ok = best[p, T] >= cur[i] - tol
            if ok and p < m - 1:
                # look ahead: every later member must still be able to reach its current value
                chosen[p] = R
                for q in range(p + 1, m):
                    bitq = 1 << mem[q]
                    D = 0
                    for r in range(p + 1):
                        if chosen[r] & bitq:
                            D |= 1 << mem[r]
                    if sup[q, D] < cur[mem[q]] - tol:
                        ok = False
                        break
            if ok:
                chosen[p] = R
                if p == m - 1:
                    strict = False
                    for q in range(m):
                        Tq = incoming[q] | chosen[q]
                        if best[q, Tq] > cur[mem[q]] + tol:
                            strict = True
                            break
                    if strict:
                        for q in range(N):
                            newnbr[q] = -1
                        for q in range(m):
                            ii = mem[q]
                            Tq = incoming[q] | chosen[q]
                            # recover the member's best K
                            out = nbr[ii] & ~S
                            bK = 0
                            bv = -np.inf
                            K = out
                            while True:
                                X = Tq | K
                                if X != nbr[ii]:
                                    v = P[ii, X]
                                    if v > bv:
                                        bv = v
                                        bK = K
                                if K == 0:
                                    break
                                K = (K - 1) & out
                            newnbr[ii] = Tq | bK
                        return S, newnbr, examined
                    if sub_[p] == 0:
                        exhausted[p] = True
                    else:
                        sub_[p] = (sub_[p] - 1) & full_[p]
                else:
                    p += 1
                    lat = 0
                    for q in range(p + 1, m):
                        lat |= 1 << mem[q]
                    full_[p] = lat
                    sub_[p] = lat
                    exhausted[p] = False
                    inc = 0
                    bitp = 1 << mem[p]
                    for q in range(p):
                        if chosen[q] & bitp:
                            inc |= 1 << mem[q]
                    incoming[p] = inc
            else:
                if sub_[p] == 0:
                    exhausted[p] = True
                else:
                    sub_[p] = (sub_[p] - 1) & full_[p]
    return -1, newnbr, examined


# ------------------------------------------------------- per-buyer problems
@njit(cache=True)
def buyer_bnb_items(sizes, costs, ub):
    """Unit copies of the items of the per-buyer problem, sorted by cost per sample.

    Returns (sizes, costs, seller index, ratio) of the ``Σ ub_k`` unit items in
    increasing ``c_k / s_k`` (stable: ties keep the seller order).
    """
    K = sizes.shape[0]
    total = 0
    for k in range(K):
        total += ub[k]
    it_s = np.empty(total)
    it_c = np.empty(total)
    it_k = np.empty(total, dtype=np.int64)
    t = 0
    for k in range(K):
        for _ in range(ub[k]):
            it_s[t] = sizes[k]
            it_c[t] = costs[k]
            it_k[t] = k
            t += 1
    ratio = it_c / it_s
    perm = np.argsort(ratio, kind="mergesort")
    return it_s[perm].copy(), it_c[perm].copy(), it_k[perm].copy(), ratio[perm].copy()


@njit(cache=True)
def buyer_bnb_run(m0, alpha, beta, it_s, it_c, ratio, x, best_x, state, mm, cc, bnd, ctl, fl, max_nodes):
    """Resume the depth-first branch and bound of the per-buyer problem (RJ eq. 9/11),
    power family, for at most ``max_nodes`` nodes:

        max_x  α (1 − (m0 + Σ_t s_t x_t)^(−β)) − Σ_t c_t x_t,   x_t ∈ {0, 1} (unit items).

    The bound at a node is the continuous relaxation over the remaining items,
    solved exactly: concave objective over a box, so the optimum takes items in
    increasing ratio while the marginal value ``αβ m^(−β−1)`` exceeds the
    ratio, and the crossing item fractionally.

    State (all updated in place; start with ``ctl = [0, 0]``, ``state = 0``,
    ``mm[0] = m0``, ``cc[0] = 0``, ``fl[0] = α (1 − m0^(−β))``, ``best_x = x = False``):
    ``ctl = [depth d, nodes evaluated]`` (``d = −1`` when the search is
    complete), ``fl[0]`` the incumbent value, ``best_x`` its items;
    ``state[d]`` 0 = node not evaluated yet, 1 = take branch open (skip branch
    pending), 2 = skip branch open; ``bnd[d]`` the relaxation bound of the node
    at depth ``d`` on the current path.  The search pauses only before
    evaluating a node, so the open part of the tree is exactly the current node
    and the skip branches of the path nodes in state 1
    (:func:`buyer_bnb_open_bound`).
    """
    n = it_s.shape[0]
    d = ctl[0]
    nodes = ctl[1]
    best_val = fl[0]
    done = 0
    while d >= 0:
        if d == n:
            v = alpha * (1.0 - mm[d] ** (-beta)) - cc[d]
            if v > best_val:
                best_val = v
                best_x[:] = x
            d -= 1
            continue
        if state[d] == 0:
            if done >= max_nodes:
                break
            done += 1
            nodes += 1
            # bound: continuous relaxation over items d..n-1 from (mm[d], cc[d])
            mcur = mm[d]
            val = alpha * (1.0 - mcur ** (-beta)) - cc[d]
            for r in range(d, n):
                marg = alpha * beta * mcur ** (-beta - 1.0)
                if marg <= ratio[r]:
                    break
                # take item r fully or up to the point where the marginal value equals the ratio
                mstar = (alpha * beta / ratio[r]) ** (1.0 / (beta + 1.0)) if ratio[r] > 0 else np.inf
                if mstar >= mcur + it_s[r]:
                    val += alpha * (mcur ** (-beta) - (mcur + it_s[r]) ** (-beta)) - it_c[r]
                    mcur += it_s[r]
                else:
                    val += alpha * (mcur ** (-beta) - mstar ** (-beta)) - ratio[r] * (mstar - mcur)
                    mcur = mstar
                    break
            bnd[d] = val
            # also the incumbent at this node with no more items
            v0 = alpha * (1.0 - mm[d] ** (-beta)) - cc[d]
            if v0 > best_val:
                best_val = v0
                best_x[:] = x
                best_x[d:] = False
            if val <= best_val + 1e-12 * max(1.0, abs(best_val)):
                state[d] = 0
                d -= 1
                continue
            state[d] = 1
            x[d] = True
            mm[d + 1] = mm[d] + it_s[d]
            cc[d + 1] = cc[d] + it_c[d]
            state[d + 1] = 0
            d += 1
        elif state[d] == 1:
            state[d] = 2
            x[d] = False
            mm[d + 1] = mm[d]
            cc[d + 1] = cc[d]
            state[d + 1] = 0
            d += 1
        else:
            state[d] = 0
            x[d] = False
            d -= 1
    ctl[0] = d
    ctl[1] = nodes
    fl[0] = best_val


@njit(cache=True)
def buyer_bnb_open_bound(state, bnd, ctl, best_val):
    """Proven upper bound of a paused :func:`buyer_bnb_run` search.

    Complete (``d = −1``): the incumbent.  Paused before evaluating the node at
    depth ``d ≥ 1``: the unexplored solutions lie in that node's subtree, bounded
    by its parent's relaxation ``bnd[d−1]`` (a child's relaxation is the
    parent's with one more variable fixed), or in the pending skip branch of a
    path node in state 1, bounded by that node's ``bnd``; everything else was
    explored or pruned (pruning within ``1e-12`` relative of the incumbent).
    ``+inf`` when the root was never evaluated.
    """
    d = ctl[0]
    if d < 0:
        return best_val
    if d == 0:
        return np.inf
    b = max(best_val, bnd[d - 1])
    for k in range(d):
        if state[k] == 1 and bnd[k] > b:
            b = bnd[k]
    return b


@njit(cache=True)
def buyer_bnb_state(n, m0, alpha, beta):
    """A fresh search state of :func:`buyer_bnb_run` for ``n`` items:
    ``(x, best_x, state, mm, cc, bnd, ctl, fl)`` (incumbent: the empty bundle)."""
    x = np.zeros(n, dtype=np.bool_)
    best_x = np.zeros(n, dtype=np.bool_)
    state = np.zeros(n + 1, dtype=np.int64)
    mm = np.empty(n + 1)
    cc = np.empty(n + 1)
    bnd = np.full(n + 1, np.inf)
    mm[0] = m0
    cc[0] = 0.0
    ctl = np.zeros(2, dtype=np.int64)
    fl = np.array([alpha * (1.0 - m0 ** (-beta))])
    return x, best_x, state, mm, cc, bnd, ctl, fl


@njit(cache=True)
def buyer_bnb(m0, alpha, beta, sizes, costs, ub, node_limit):
    """Exact per-buyer problem (RJ eq. 9/11) for the power family by branch and bound
    in one call (:func:`buyer_bnb_run` with at most ``node_limit`` nodes):

        max_x  α (1 − (m0 + Σ_k s_k x_k)^(−β)) − Σ_k c_k x_k,   x_k ∈ {0, …, ub_k}.

    Returns (x (K,), value, bound, nodes, complete); ``bound`` is the proven
    bound of :func:`buyer_bnb_open_bound` (the value when complete).
    """
    it_s, it_c, it_k, ratio = buyer_bnb_items(sizes, costs, ub)
    n = it_s.shape[0]
    x, best_x, state, mm, cc, bnd, ctl, fl = buyer_bnb_state(n, m0, alpha, beta)
    buyer_bnb_run(m0, alpha, beta, it_s, it_c, ratio, x, best_x, state, mm, cc, bnd, ctl, fl, node_limit)
    out = np.zeros(sizes.shape[0], dtype=np.int64)
    for t in range(n):
        if best_x[t]:
            out[it_k[t]] += 1
    return out, fl[0], buyer_bnb_open_bound(state, bnd, ctl, fl[0]), ctl[1], ctl[0] < 0


# ------------------------------------------------- ordered match with query weights (§6)
@njit(cache=True)
def ordered_match_queries_range(order, qs, alpha, beta, cost, cost_is_matrix, Q, m, mp, a0, a1):
    """Rows ``a0 ≤ a < a1`` of the ordered match with query weights (RJ §6) for the power family.

    Agent ``n = order[a]`` swipes ``ℓ`` (lower ranked) and proposes the set of weight pairs
    ``(x, y)``, ``1 ≤ x ≤ Q_ℓ`` queries it runs on ``ℓ``'s data and ``1 ≤ y ≤ Q_n`` queries
    ``ℓ`` runs on its data, that it gains from: ``Δ_n = α_n (m_n^(−β_n) − (m_n + x q_ℓ)^(−β_n))
    − y c_n(ℓ) > 0`` (per-query costs, eq. 35).  ``ℓ`` chooses the pair of that set with the
    largest ``Δ_ℓ = α_ℓ (m_ℓ^(−β_ℓ) − (m_ℓ + y q_n)^(−β_ℓ)) − x c_ℓ(n)`` (ties: larger ``Δ_n``,
    then smaller ``x``, then smaller ``y``) and accepts iff ``Δ_ℓ > 0``.  With ``Q ≡ 1`` these
    are the tests (1)–(2) of :func:`ordered_match_power_range`, evaluated identically.
    ``m``, ``mp`` carry the state between calls.  Returns (edges (E, 2) as ``(n, ℓ)``,
    weights (E, 2) as ``(x, y)``, pairs examined, proposals made).
    """
    N = order.shape[0]
    qmax = 1
    for k in range(N):
        if Q[k] > qmax:
            qmax = Q[k]
    G = np.empty(qmax + 1)
    H = np.empty(qmax + 1)
    edges = np.empty((1024, 2), dtype=np.int64)
    wts = np.empty((1024, 2), dtype=np.int64)
    E = 0
    pairs = 0
    proposals = 0
    for a in range(a0, a1):
        n = order[a]
        for b in range(a + 1, N):
            l = order[b]
            pairs += 1
            cn = cost[n, l] if cost_is_matrix else cost[n, 0]
            cl = cost[l, n] if cost_is_matrix else cost[l, 0]
            best_g = -np.inf
            for x in range(1, Q[l] + 1):
                G[x] = alpha[n] * (mp[n] - (m[n] + x * qs[l]) ** (-beta[n]))
                if G[x] > best_g:
                    best_g = G[x]
            if not best_g - 1 * cn > 0.0:          # y = 1 is the cheapest: no acceptable pair
                continue
            proposals += 1
            for y in range(1, Q[n] + 1):
                H[y] = alpha[l] * (mp[l] - (m[l] + y * qs[n]) ** (-beta[l]))
            bx, by = 0, 0
            bdl, bdn = -np.inf, -np.inf
            for x in range(1, Q[l] + 1):
                for y in range(1, Q[n] + 1):
                    dn = G[x] - y * cn
                    if not dn > 0.0:
                        continue
                    dl = H[y] - x * cl
                    if dl > bdl or (dl == bdl and dn > bdn):
                        bdl, bdn, bx, by = dl, dn, x, y
            if bdl > 0.0:
                wts = _grown(wts, E)
                wts[E, 0] = bx
                wts[E, 1] = by
                edges, E = _link(edges, E, n, l, qs, beta, m, mp, bx, by)
    return edges[:E].copy(), wts[:E].copy(), pairs, proposals
