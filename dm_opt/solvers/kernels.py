"""Compiled kernels (numba) for exhaustive enumeration of sharing profiles.

Walking all ``2^n`` profiles in Gray-code order changes one user per step, a
rank-1 (Sherman–Morrison) update of the posterior covariance ``P`` (SPEC §1.1):

    user k starts sharing:  P ← P − P_{:k} P_{k:} / (τ_k² + P_kk)
    user k stops sharing:   P ← P + P_{:k} P_{k:} / (τ_k² − P_kk)

Only ``diag P`` enters the objective (:mod:`dm_opt.markets.objectives`), so the
walk is split in two levels: the *high* users are walked with full ``n×n``
updates of ``P``; for every high state, the ``b`` *low* users are walked on a
slab ``Q = P[low, :]`` (``b×n``) plus ``diag P``, which costs ``O(n b)`` per
step instead of ``O(n²)``.  Every low block starts from a copy of the high
state's ``P``, so round-off accumulates over at most ``2^b`` steps there, and
the high state's ``P`` is recomputed from scratch (Cholesky) every
``refresh`` high steps.

A *chunk* fixes the first ``k`` users of the walk order (the "leading bits")
to a pattern; chunks are independent, so they run on threads (the kernels
release the GIL) or on a cluster.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def posterior_full(S, tau2, shared):
    """``P = Σ − Σ_{:A}(Σ_AA + diag τ²_A)⁻¹Σ_{A:}`` for the users in ``shared`` (int array)."""
    n = S.shape[0]
    m = shared.shape[0]
    P = S.copy()
    if m == 0:
        return P
    C = np.empty((m, m))
    for a in range(m):
        for b in range(m):
            C[a, b] = S[shared[a], shared[b]]
        C[a, a] += tau2[shared[a]]
    L = np.linalg.cholesky(C)
    W = np.empty((m, n))
    for j in range(n):
        for a in range(m):
            s = S[shared[a], j]
            for b in range(a):
                s -= L[a, b] * W[b, j]
            W[a, j] = s / L[a, a]
    for i in range(n):
        for j in range(i, n):
            s = 0.0
            for a in range(m):
                s += W[a, i] * W[a, j]
            P[i, j] = S[i, j] - s
            P[j, i] = P[i, j]
    return P


@njit(cache=True, nogil=True)
def shared_users(a):
    """Indices ``i`` with ``a[i] == 1``."""
    cnt = 0
    for i in range(a.shape[0]):
        cnt += a[i]
    idx = np.empty(cnt, dtype=np.int64)
    cnt = 0
    for i in range(a.shape[0]):
        if a[i]:
            idx[cnt] = i
            cnt += 1
    return idx


@njit(cache=True, nogil=True)
def _ctz(g):
    j = 0
    while (g >> j) & 1 == 0:
        j += 1
    return j


@njit(cache=True, nogil=True)
def _objective(D, a, sig2, tau2, c, d, e, k):
    val = 0.0
    for i in range(D.shape[0]):
        leak = sig2[i] - D[i]
        val += c[i] * leak
        if a[i]:
            val += d[i] * leak - e[i] * D[i] * D[i] / (tau2[i] - D[i]) - k[i]
    return val


@njit(cache=True, nogil=True)
def _rank1_full(P, k, tau2, sharing_now):
    """Toggle user ``k`` in the full posterior ``P`` (in place)."""
    n = P.shape[0]
    col = P[:, k].copy()
    if sharing_now:  # k was not sharing and starts
        f = -1.0 / (tau2[k] + col[k])
    else:            # k was sharing and stops
        f = 1.0 / (tau2[k] - col[k])
    for i in range(n):
        ci = col[i] * f
        for j in range(i, n):
            P[i, j] += ci * col[j]
            P[j, i] = P[i, j]


@njit(cache=True, nogil=True)
def enumerate_chunk(S, tau2, c, d, e, k, order, n_fixed, pattern, n_low, tol, capacity, refresh):
    """Maximise the weighted-leakage objective over one chunk of profiles.

    Parameters
    ----------
    S : (n, n) covariance; tau2 : (n,) noise variances; c, d, e, k : (n,) weights.
    order : (n,) walk order of users; ``order[:n_fixed]`` are fixed to the bits
        of ``pattern`` (bit t ↔ user ``order[t]``), ``order[n - n_low:]`` are
        the low (slab) users, the rest the high users.
    tol : absolute tie tolerance; capacity : size of the tie buffer;
    refresh : recompute the high-level ``P`` from scratch every this many steps.

    Returns
    -------
    best_val, best_mask, cand_vals, cand_masks, overflow, count
        ``best_mask`` encodes the profile with bit ``i`` ↔ user ``i``;
        candidates are every profile with value ≥ ``best_val − tol`` (for ties).
    """
    n = S.shape[0]
    sig2 = np.empty(n)
    for i in range(n):
        sig2[i] = S[i, i]
    a = np.zeros(n, dtype=np.int8)
    mask = np.int64(0)
    for t in range(n_fixed):
        if (pattern >> t) & 1:
            a[order[t]] = 1
            mask |= np.int64(1) << order[t]
    n_hi = n - n_fixed - n_low
    hi_users = order[n_fixed:n_fixed + n_hi]
    lo_users = order[n - n_low:]

    P = posterior_full(S, tau2, shared_users(a))
    # slab stored transposed (b × n) so the inner loops run over contiguous rows
    Qt = np.empty((n_low, n))
    D = np.empty(n)
    tmp = np.empty(n)
    rowk = np.empty(n_low)

    best = -np.inf
    best_mask = np.int64(-1)
    cand_vals = np.empty(capacity)
    cand_masks = np.empty(capacity, dtype=np.int64)
    n_cand = 0
    overflow = False
    count = np.int64(0)
    since_refresh = 0

    for g in range(np.int64(1) << n_hi):
        if g > 0:
            u = hi_users[_ctz(g)]
            a[u] = 1 - a[u]
            mask ^= np.int64(1) << u
            since_refresh += 1
            if since_refresh >= refresh:
                P = posterior_full(S, tau2, shared_users(a))
                since_refresh = 0
            else:
                _rank1_full(P, u, tau2, a[u] == 1)
        for jj in range(n_low):
            lu = lo_users[jj]
            for r in range(n):
                Qt[jj, r] = P[lu, r]
        for r in range(n):
            D[r] = P[r, r]
        for l in range(np.int64(1) << n_low):
            if l > 0:
                jj = _ctz(l)
                u = lo_users[jj]
                for r in range(n):
                    tmp[r] = Qt[jj, r]
                pk = tmp[u]
                if a[u] == 0:
                    f = -1.0 / (tau2[u] + pk)
                    a[u] = 1
                else:
                    f = 1.0 / (tau2[u] - pk)
                    a[u] = 0
                mask ^= np.int64(1) << u
                for j2 in range(n_low):
                    rowk[j2] = tmp[lo_users[j2]] * f
                for r in range(n):
                    D[r] += f * tmp[r] * tmp[r]
                for j2 in range(n_low):
                    fr = rowk[j2]
                    for r in range(n):
                        Qt[j2, r] += fr * tmp[r]
            val = _objective(D, a, sig2, tau2, c, d, e, k)
            count += 1
            if val > best:
                best = val
                best_mask = mask
            if val >= best - tol:
                if n_cand == capacity:
                    # compact: drop candidates no longer within tol of the best
                    keep = 0
                    for q in range(n_cand):
                        if cand_vals[q] >= best - tol:
                            cand_vals[keep] = cand_vals[q]
                            cand_masks[keep] = cand_masks[q]
                            keep += 1
                    n_cand = keep
                if n_cand < capacity:
                    cand_vals[n_cand] = val
                    cand_masks[n_cand] = mask
                    n_cand += 1
                else:
                    overflow = True
        # reset the low users: the next block starts from the high state again
        for jj in range(n_low):
            u = lo_users[jj]
            if a[u]:
                a[u] = 0
                mask ^= np.int64(1) << u
    keep = 0
    for q in range(n_cand):
        if cand_vals[q] >= best - tol:
            cand_vals[keep] = cand_vals[q]
            cand_masks[keep] = cand_masks[q]
            keep += 1
    return best, best_mask, cand_vals[:keep].copy(), cand_masks[:keep].copy(), overflow, count


@njit(cache=True, nogil=True)
def _user_eq_walk(S, tau2, v, p, tol):
    n = S.shape[0]
    a = np.zeros(n, dtype=np.int8)
    P = S.copy()
    out = np.empty(1 << n, dtype=np.int64)
    n_out = 0
    mask = np.int64(0)
    for g in range(np.int64(1) << n):
        if g > 0:
            u = _ctz(g)
            a[u] = 1 - a[u]
            mask ^= np.int64(1) << u
            if g % 64 == 0:
                idx = shared_users(a)
                P = posterior_full(S, tau2, idx)
            else:
                _rank1_full(P, u, tau2, a[u] == 1)
        ok = True
        for i in range(n):
            x = P[i, i]
            if a[i]:
                s = x * tau2[i] / (tau2[i] - x)
            else:
                s = x
            thr = v[i] * s * s / (s + tau2[i])
            if a[i] and p[i] < thr - tol:
                ok = False
                break
            if (not a[i]) and p[i] > thr + tol:
                ok = False
                break
        if ok:
            out[n_out] = mask
            n_out += 1
    return out[:n_out].copy()


def enumerate_user_equilibria(S, tau2, v, p, tol):
    """Bit masks of every user equilibrium at prices ``p`` (indifference within ``tol`` allowed both ways)."""
    return _user_eq_walk(np.ascontiguousarray(S, dtype=float), np.asarray(tau2, float),
                         np.asarray(v, float), np.asarray(p, float), float(tol))
