"""Compiled depth-first branch-and-bound for the Gaussian market (numba).

The search state lives entirely in arrays owned by the caller (the stack, the
incumbent, the counters), and :func:`dfs_chunk` processes at most
``max_nodes`` nodes per call.  Between calls Python checks the time and node
limits, prints progress and can be interrupted (Ctrl-C); because the kernel
only ever writes consistent states into those arrays, the open nodes left on
the stack always describe exactly the part of the tree not yet explored, so
the proven bound at a stop is ``max(incumbent, bounds of the open nodes)``.

A node is a partial profile: ``state[i]`` is 0 (free), 1 (fixed in: ``IN``)
or 2 (fixed out).  It carries the posterior covariances at its two extreme
completions, ``P_lo = P(IN)`` and ``P_hi = P(IN ∪ FREE)`` — their diagonals and
only the columns of the free users (the only columns a later update reads).  Branching
on a free user ``u`` needs one rank-1 update per child (SPEC §1.1):
``u`` in: ``P_lo ← P_lo − P_{:u}P_{u:}/(τ_u² + P_uu)``; ``u`` out:
``P_hi ← P_hi + P_{:u}P_{u:}/(τ_u² − P_uu)``.  Along one root-to-leaf path each
matrix receives at most ``n`` updates (from a fresh Cholesky at the root), so
round-off stays at the level of a few ulps times ``n``.

Every profile that becomes an incumbent is re-evaluated from scratch
(:func:`~dm_opt.solvers.kernels.posterior_full`), both for its objective and,
with a budget, for its payments, so pruning compares against exact values.
The bounds are those of :mod:`dm_opt.solvers.bounds` (``gaussian_user_bounds``
documents why each is valid); they are written out again here in scalar
form because they run once per node.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .kernels import _objective, posterior_full, shared_users

#: state codes
FREE, IN, OUT = 0, 1, 2
#: price kinds for the budget constraint
NO_PRICES, EQ_PRICES, DECOR_PRICES = 0, 1, 2


@njit(cache=True, nogil=True)
def _g(x, t2):
    return x * x / (t2 - x)


@njit(cache=True, nogil=True)
def _share_max(cd, e, kk, s2, t2, x_min, x_max):
    """``max_{x∈[x_min,x_max]} cd·(σ²−x) − e·g(x) − k`` exactly.

    For ``e ≥ 0`` the function is concave (``g`` convex), so its maximum is at
    the clipped stationary point ``g'(x) = −cd/e`` with ``g'(x) = (τ²/(τ²−x))² − 1``,
    i.e. ``x* = τ²(1 − 1/√(1 − cd/e))``; for ``e < 0`` it is convex and the
    maximum is at an endpoint.
    """
    if x_min > x_max:
        x_min = x_max
    if e > 0.0:
        r = -cd / e
        if r <= 0.0:
            x = x_min
        else:
            x = t2 * (1.0 - 1.0 / np.sqrt(1.0 + r))
            if x < x_min:
                x = x_min
            if x > x_max:
                x = x_max
        return cd * (s2 - x) - e * _g(x, t2) - kk
    if e == 0.0:
        x = x_min if cd >= 0.0 else x_max
        return cd * (s2 - x) - kk
    v1 = cd * (s2 - x_min) - e * _g(x_min, t2) - kk
    v2 = cd * (s2 - x_max) - e * _g(x_max, t2) - kk
    return v1 if v1 > v2 else v2


@njit(cache=True, nogil=True)
def node_bound(state, x_lo, x_hi, sig2, tau2, c, d, e, k):
    """Upper bound on the objective over all completions of a node (sum of per-user maxima).

    ``x_lo = diag P(IN)``, ``x_hi = diag P(IN ∪ FREE)``.  Per user ``i``:

    * out: ``c_i I_i`` with ``I_i ∈ [σ²−x_lo, σ²−x_hi]``;
    * in: ``(c_i+d_i)(σ²−x) − e_i g(x) − k_i`` maximised exactly over
      ``x = P_ii ∈ [x_hi, x_lo]``;
    * free: the larger of the sharing case (as "in", with
      ``x ∈ [x_hi, x_lo τ²/(x_lo+τ²)]``: her own signal is then observed) and the
      non-sharing case ``c_i I_i`` with ``P_ii ∈ [x_hi τ²/(τ²−x_hi), x_lo]``
      (her own signal removed from the top completion).
    """
    total = 0.0
    for i in range(state.shape[0]):
        s2 = sig2[i]
        t2 = tau2[i]
        if state[i] == 2:
            if c[i] > 0.0:
                total += c[i] * (s2 - x_hi[i])
            else:
                total += c[i] * (s2 - x_lo[i])
        elif state[i] == 1:
            total += _share_max(c[i] + d[i], e[i], k[i], s2, t2, x_hi[i], x_lo[i])
        else:
            xs = x_lo[i] * t2 / (x_lo[i] + t2)
            share = _share_max(c[i] + d[i], e[i], k[i], s2, t2, x_hi[i], xs)
            if c[i] > 0.0:
                x_wo = x_hi[i] * t2 / (t2 - x_hi[i])
                if x_wo > x_lo[i]:
                    x_wo = x_lo[i]
                noshare = c[i] * (s2 - x_wo)
            else:
                noshare = c[i] * (s2 - x_lo[i])
            total += share if share > noshare else noshare
    return total


@njit(cache=True, nogil=True)
def _gprime(x, t2):
    """``g'(x) = (τ²/(τ² − x))² − 1``."""
    q = t2 / (t2 - x)
    return q * q - 1.0


@njit(cache=True, nogil=True)
def modular_bound(state, Qlo, Qhi, x_lo, x_hi, sig2, tau2, c, d, e, k, work):
    """A second valid bound from Woodbury: modular in the free users' choices.

    Removing a set ``R`` of signals from the top completion raises every
    ``P_ii`` by ``P_iR (D_τ,R − P_RR)⁻¹ P_Ri ≥ Σ_{j∈R} α_ij`` with
    ``α_ij = P_ij²/τ_j²`` (as ``D_τ − P_RR ⪯ D_τ``) and, for ``i ∈ R``,
    ``α_ii = P_ii²/(τ_i² − P_ii)`` (her own signal removed first, exactly).
    Adding a set ``A`` to ``IN`` lowers ``P_ii`` by
    ``P_iA (D_τ,A + P_AA)⁻¹ P_Ai ≥ Σ_{j∈A} β_ij``, ``β_ij = P_ij²/(τ_j² + r_j)``
    with ``r_j = Σ_{l∈FREE} |P_jl|`` (Gershgorin: ``P_AA ⪯ diag(r)``).

    Every term of ``f`` that is a concave function of ``x = P_ii`` and
    nonincreasing at ``P_ii(hi)`` (``c_i(σ²−x)`` with ``c_i > 0``; a fixed-in
    user's ``d_i(σ²−x) − e_i g(x)`` with ``e_i ≥ 0`` and slope ``≤ 0``) is at most
    its value at ``P_ii(hi)`` minus ``slope × Σ_{j∈R} α_ij`` (tangent of a concave
    function); symmetrically a term nondecreasing at ``P_ii(lo)`` loses
    ``slope × Σ_{j∈A} β_ij``.  So leaving free ``j`` out costs at least
    ``a_j = Σ_i s⁻_i α_ij`` and taking her in at least ``b_j = Σ_i s⁺_i β_ij``;
    with the free users' sharer terms ``s_j`` bounded as in :func:`node_bound`,
    every completion has
    ``f ≤ C₀ + Σ_{i∈IN} h_i^max + Σ_{j∈FREE} max(s_j − b_j, −a_j)``
    (``C₀``: interval bound of ``Σ c_i I_i``).  ``Q[j]`` is column ``j`` of ``P``
    (free ``j``); ``work`` is scratch of shape (3n,).
    """
    n = state.shape[0]
    r_work = work[:n]
    s_hi = work[n:2 * n]      # slope of the terms that fall as P_ii rises above P_ii(hi)
    s_lo = work[2 * n:]       # slope of the terms that fall as P_ii drops below P_ii(lo)
    total = 0.0
    for i in range(n):
        s_hi[i] = 0.0
        s_lo[i] = 0.0
        if c[i] > 0.0:
            total += c[i] * (sig2[i] - x_hi[i])
            s_hi[i] = c[i]
        else:
            total += c[i] * (sig2[i] - x_lo[i])
            s_lo[i] = -c[i]
        if state[i] == 1:
            total += _share_max(d[i], e[i], k[i], sig2[i], tau2[i], x_hi[i], x_lo[i])
            if e[i] >= 0.0:
                # h(x) = d(σ²−x) − e g(x) − k is concave; h' = −d − e g'(x)
                dh_hi = -d[i] - e[i] * _gprime(x_hi[i], tau2[i])
                dh_lo = -d[i] - e[i] * _gprime(x_lo[i], tau2[i])
                if dh_hi <= 0.0:
                    s_hi[i] += -dh_hi
                elif dh_lo >= 0.0:
                    s_lo[i] += dh_lo
    for j in range(n):
        if state[j] != 0:
            continue
        r = 0.0
        for l in range(n):
            if state[l] == 0:
                r += abs(Qlo[j, l])
        r_work[j] = r
    for j in range(n):
        if state[j] != 0:
            continue
        t2 = tau2[j]
        a = 0.0
        b = 0.0
        for i in range(n):
            if i == j:
                # j's own sharer terms are in s_j below; only her c-term moves with her choice here
                if c[j] > 0.0:
                    a += c[j] * x_hi[j] * x_hi[j] / (t2 - x_hi[j])
                elif c[j] < 0.0:
                    b -= c[j] * Qlo[j, j] * Qlo[j, j] / (t2 + r_work[j])
                continue
            if s_hi[i] > 0.0:
                a += s_hi[i] * Qhi[j, i] * Qhi[j, i] / t2
            if s_lo[i] > 0.0:
                b += s_lo[i] * Qlo[j, i] * Qlo[j, i] / (t2 + r_work[j])
        xs = x_lo[j] * t2 / (x_lo[j] + t2)
        sj = _share_max(d[j], e[j], k[j], sig2[j], t2, x_hi[j], xs)
        total += max(sj - b, -a)
    return total


@njit(cache=True, nogil=True)
def choose_branch(state, Qlo, Qhi, x_lo, x_hi, sig2, tau2, c, d, e, k, work_x, work_s):
    """Strong branching on bounds: the free user whose two children have the lowest bounds.

    For every free ``j`` the children's diagonals follow from one column each
    (``P_ii − P_ij²/(τ_j² + P_jj)`` in, ``P_ii + P_ij²/(τ_j² − P_jj)`` out), so
    both child bounds cost ``O(n)`` and all of them ``O(n²)`` per node — the
    cost of one rank-1 update.  Score: ``(B − B_in + ε)(B − B_out + ε)`` (product
    rule); returns ``(j, B_in, B_out)`` (child bounds are valid bounds for the children).
    ``Q[j]`` is column ``j`` of the posterior (valid for free ``j``).
    """
    n = state.shape[0]
    best_j = -1
    best_score = -1.0
    best_in = np.inf
    best_out = np.inf
    parent = node_bound(state, x_lo, x_hi, sig2, tau2, c, d, e, k)
    eps = 1e-12 * (1.0 + abs(parent))
    for j in range(n):
        if state[j] != 0:
            continue
        work_s[:] = state
        work_s[j] = 1
        f = 1.0 / (tau2[j] + x_lo[j])
        for i in range(n):
            work_x[i] = x_lo[i] - Qlo[j, i] * Qlo[j, i] * f
        b_in = node_bound(work_s, work_x, x_hi, sig2, tau2, c, d, e, k)
        work_s[j] = 2
        f = 1.0 / (tau2[j] - x_hi[j])
        for i in range(n):
            work_x[i] = x_hi[i] + Qhi[j, i] * Qhi[j, i] * f
        b_out = node_bound(work_s, x_lo, work_x, sig2, tau2, c, d, e, k)
        if b_in > parent:
            b_in = parent
        if b_out > parent:
            b_out = parent
        score = (parent - b_in + eps) * (parent - b_out + eps)
        if score > best_score:
            best_score = score
            best_j = j
            best_in = b_in
            best_out = b_out
    return best_j, best_in, best_out


# Objective at a profile given its posterior variances ``x`` (``a_in[i]`` true for sharers):
# the same compiled evaluation the enumeration walk uses.
_value = _objective


@njit(cache=True, nogil=True)
def _payments(x, a_in, sig2, tau2, pv, price_kind):
    """Total payments ``Σ_{i∈A} p_i``: Thm 2 (``v_i g(P_ii)``) or Thm 6 (``v_i I_i``)."""
    tot = 0.0
    if price_kind == 0:
        return 0.0
    for i in range(x.shape[0]):
        if a_in[i]:
            if price_kind == 1:
                tot += pv[i] * _g(x[i], tau2[i])
            else:
                tot += pv[i] * (sig2[i] - x[i])
    return tot


@njit(cache=True, nogil=True)
def fresh_value(S, tau2, sig2, c, d, e, k, a, pv, price_kind):
    """(objective, payments) at profile ``a`` (int8) from a fresh Cholesky solve."""
    P = posterior_full(S, tau2, shared_users(a))
    n = a.shape[0]
    x = np.empty(n)
    a_in = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        x[i] = P[i, i]
        a_in[i] = a[i] == 1
    return _value(x, a_in, sig2, tau2, c, d, e, k), _payments(x, a_in, sig2, tau2, pv, price_kind)


@njit(cache=True, nogil=True)
def _rank1_slab(Q, D, u, t2u, add, free_rows, n_rows):
    """Add (``add``) or remove user ``u``'s signal: update ``diag P`` (``D``) and the columns
    of ``P`` kept for the free users (rows ``free_rows[:n_rows]`` of ``Q``), in place.

    Only those columns are ever needed again (to branch on those users), so the
    update costs ``O(n·|FREE|)`` instead of ``O(n²)`` (SPEC §1.1 "slab" idea).
    """
    n = D.shape[0]
    col = Q[u, :].copy()
    if add:
        f = -1.0 / (t2u + col[u])
    else:
        f = 1.0 / (t2u - col[u])
    for i in range(n):
        D[i] += f * col[i] * col[i]
    for jj in range(n_rows):
        j = free_rows[jj]
        cj = f * col[j]
        for i in range(n):
            Q[j, i] += cj * col[i]


@njit(cache=True, nogil=True)
def _try_incumbent(S, tau2, sig2, c, d, e, k, pv, price_kind, budget, budget_tol,
                   state, take_hi, inc_a, inc_val, tmp_a):
    """Re-evaluate the lo (``take_hi`` False) or hi completion exactly; update the incumbent.

    Returns the (possibly new) incumbent value.
    """
    n = state.shape[0]
    for i in range(n):
        if state[i] == 1 or (take_hi and state[i] == 0):
            tmp_a[i] = 1
        else:
            tmp_a[i] = 0
    val, pay = fresh_value(S, tau2, sig2, c, d, e, k, tmp_a, pv, price_kind)
    if pay > budget + budget_tol:
        return inc_val
    if val > inc_val:
        for i in range(n):
            inc_a[i] = tmp_a[i]
        return val
    return inc_val


@njit(cache=True, nogil=True)
def dfs_chunk(S, tau2, sig2, c, d, e, k, order, prefer_in,
              pv, price_kind, budget, budget_tol, budget_slack, min_sh, max_sh,
              st_state, st_Qlo, st_Qhi, st_Dlo, st_Dhi, st_bound, st_pos,
              ctl, inc_a, inc_val_arr, prune_tol, cand_eps, max_nodes, dynamic, use_modular):
    """Process up to ``max_nodes`` nodes of the depth-first search (state in the arrays).

    ``st_Dlo/st_Dhi[j]`` hold ``diag P`` at the two extreme completions of open node
    ``j``, ``st_Qlo/st_Qhi[j, u]`` column ``u`` of those posteriors for its free users ``u``.
    ``ctl[0]`` is the stack size, ``ctl[1]`` the total node count; ``st_bound[j]``
    is a proven bound on every completion of open node ``j`` (its parent's bound).
    ``prune_tol``: nodes whose bound is ``≤ incumbent + prune_tol`` are pruned.
    ``cand_eps``: a completion is re-evaluated exactly as an incumbent
    candidate only when its rank-1 value exceeds the incumbent by more than this.
    ``budget_slack``: extra slack on the budget for the rank-1 screens (round-off);
    the final budget check of a candidate is exact (fresh solve, ``budget_tol``).
    """
    n = S.shape[0]
    x_lo = np.empty(n)
    x_hi = np.empty(n)
    in_lo = np.zeros(n, dtype=np.bool_)
    in_hi = np.zeros(n, dtype=np.bool_)
    tmp_a = np.zeros(n, dtype=np.int8)
    work_x = np.empty(n)
    work_s = np.empty(n, dtype=np.int8)
    r_work = np.empty(3 * n)
    free_rows = np.empty(n, dtype=np.int64)
    inc_val = inc_val_arr[0]
    processed = 0
    while ctl[0] > 0 and processed < max_nodes:
        sp = ctl[0] - 1
        processed += 1
        ctl[1] += 1
        state = st_state[sp]
        Qlo = st_Qlo[sp]
        Qhi = st_Qhi[sp]
        n_in = 0
        n_free = 0
        for i in range(n):
            x_lo[i] = st_Dlo[sp, i]
            x_hi[i] = st_Dhi[sp, i]
            in_lo[i] = state[i] == 1
            in_hi[i] = state[i] != 2
            if state[i] == 1:
                n_in += 1
            elif state[i] == 0:
                n_free += 1
        # the node is consumed now; children (if any) are written back at sp, sp+1
        ctl[0] = sp
        if n_in > max_sh or n_in + n_free < min_sh:
            continue
        if price_kind != 0:
            # payments of IN are smallest at the top completion (Prop 2: prices
            # nonincreasing in the sharing set) for Thm 2 prices, and at IN for Thm 6 prices
            lb = 0.0
            for i in range(n):
                if state[i] == 1:
                    if price_kind == 1:
                        lb += pv[i] * _g(x_hi[i], tau2[i])
                    else:
                        lb += pv[i] * (sig2[i] - x_lo[i])
            if lb > budget + budget_tol + budget_slack:
                continue
        only_lo = n_in == max_sh
        only_hi = n_in + n_free == min_sh
        # the two extreme completions are profiles: try them as incumbents
        if n_in >= min_sh and not only_hi:
            f_lo = _value(x_lo, in_lo, sig2, tau2, c, d, e, k)
            if f_lo > inc_val + cand_eps:
                if price_kind == 0 or _payments(x_lo, in_lo, sig2, tau2, pv, price_kind) <= budget + budget_tol + budget_slack:
                    inc_val = _try_incumbent(S, tau2, sig2, c, d, e, k, pv, price_kind, budget, budget_tol,
                                             state, False, inc_a, inc_val, tmp_a)
        if n_free > 0 and n_in + n_free <= max_sh and not only_lo:
            f_hi = _value(x_hi, in_hi, sig2, tau2, c, d, e, k)
            if f_hi > inc_val + cand_eps:
                if price_kind == 0 or _payments(x_hi, in_hi, sig2, tau2, pv, price_kind) <= budget + budget_tol + budget_slack:
                    inc_val = _try_incumbent(S, tau2, sig2, c, d, e, k, pv, price_kind, budget, budget_tol,
                                             state, True, inc_a, inc_val, tmp_a)
        if n_free == 0 or only_lo or only_hi:
            continue
        bound = node_bound(state, x_lo, x_hi, sig2, tau2, c, d, e, k)
        if bound <= inc_val + prune_tol:
            continue
        if use_modular:
            b2 = modular_bound(state, Qlo, Qhi, x_lo, x_hi, sig2, tau2, c, d, e, k, r_work)
            if b2 < bound:
                bound = b2
            if bound <= inc_val + prune_tol:
                continue
        if bound > st_bound[sp]:
            bound = st_bound[sp]        # the parent's bound is valid here too
        pos = st_pos[sp]
        b_in = bound
        b_out = bound
        if dynamic:
            u, b_in, b_out = choose_branch(state, Qlo, Qhi, x_lo, x_hi, sig2, tau2, c, d, e, k, work_x, work_s)
            first_in = b_in >= b_out
        else:
            while state[order[pos]] != 0:
                pos += 1
            u = order[pos]
            first_in = prefer_in[u]
        # child popped first goes on top (slot sp+1, a copy); the other reuses slot sp in place
        top = sp + 1
        n_rows = 0
        for i in range(n):
            st_state[top, i] = state[i]
            st_Dlo[top, i] = st_Dlo[sp, i]
            st_Dhi[top, i] = st_Dhi[sp, i]
            if state[i] == 0:
                st_Qlo[top, i, :] = Qlo[i, :]
                st_Qhi[top, i, :] = Qhi[i, :]
                if i != u:
                    free_rows[n_rows] = i
                    n_rows += 1
        if first_in:
            st_state[top, u] = 1
            _rank1_slab(st_Qlo[top], st_Dlo[top], u, tau2[u], True, free_rows, n_rows)
            state[u] = 2
            _rank1_slab(Qhi, st_Dhi[sp], u, tau2[u], False, free_rows, n_rows)
        else:
            st_state[top, u] = 2
            _rank1_slab(st_Qhi[top], st_Dhi[top], u, tau2[u], False, free_rows, n_rows)
            state[u] = 1
            _rank1_slab(Qlo, st_Dlo[sp], u, tau2[u], True, free_rows, n_rows)
        if first_in:
            st_bound[top] = b_in
            st_bound[sp] = b_out
        else:
            st_bound[top] = b_out
            st_bound[sp] = b_in
        st_pos[sp] = pos + 1
        st_pos[top] = pos + 1
        ctl[0] = sp + 2
    inc_val_arr[0] = inc_val
    return processed
