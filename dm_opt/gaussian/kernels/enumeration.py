"""Compiled kernels (numba) for exhaustive enumeration of sharing profiles.

The walk is depth-first and *add only*: a profile's posterior state is its
parent's state with one more signal added (:func:`dm_opt.gaussian.kernels.posterior.add_signal`),
never a downdate, so every state is as accurate as a fresh one (docs/spec.md
§1.1; removing a signal by Sherman–Morrison cancels catastrophically when noise
is small relative to variance).  Profiles are visited in binary counting order:
going from ``g − 1`` to ``g`` sets bit ``j = ctz(g)`` and clears the bits below it,
so the new state is the stored state of "bits ≥ j+1 as now, bits below zero"
plus user ``j`` — one copy and one O(n²) add per profile.

The walk has two levels: the *high* users are walked with full ``n×n`` states;
for every high state, the ``b`` *low* users are walked on a slab (their ``b``
rows of the state, ``diag M`` and ``h``), which costs ``O(n b)`` per profile
instead of ``O(n²)``.

A *chunk* fixes the first ``k`` users of the walk order (the "leading bits")
to a pattern; chunks are independent, so they run on threads (the kernels
release the GIL) or on a cluster.

The kernels are compiled on first use (:class:`dm_opt.gaussian.kernels.posterior.Kernel`):
importing this module does not import numba.  Small markets (``n ≤``
:data:`~dm_opt.gaussian.kernels.posterior.SMALL_N`) are walked in NumPy instead
(:func:`~dm_opt.gaussian.kernels.posterior.all_profile_states`), with the same arithmetic.
"""

from __future__ import annotations

import numpy as np

from dm_opt.gaussian.kernels.posterior import (
    SMALL_N,
    add_signal,
    add_signal_rows,
    all_profile_states,
    fresh_state,
    kernel,
    objective_value,
    share_threshold,
)


@kernel
def _ctz(g):
    j = 0
    while (g >> j) & 1 == 0:
        j += 1
    return j


@kernel
def _record(val, mask, best, best_mask, cand_vals, cand_masks, n_cand, tol, overflow):
    """Keep the best value and every candidate within ``tol`` of it (compacting the buffer)."""
    capacity = cand_vals.shape[0]
    if val > best:
        best = val
        best_mask = mask
    if val >= best - tol:
        if n_cand == capacity:
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
    return best, best_mask, n_cand, overflow


@kernel
def enumerate_chunk(S, tau2, c, d, e, k, order, n_fixed, pattern, n_low, tol, capacity, refresh):
    """Maximise the weighted-leakage objective over one chunk of profiles.

    Parameters
    ----------
    S : (n, n) covariance; tau2 : (n,) noise variances; c, d, e, k : (n,) weights.
    order : (n,) walk order of users; ``order[:n_fixed]`` are fixed to the bits
        of ``pattern`` (bit t ↔ user ``order[t]``), ``order[n - n_low:]`` are
        the low (slab) users, the rest the high users.
    tol : absolute tie tolerance; capacity : size of the tie buffer;
    refresh : unused (kept for the chunk protocol: the add-only walk needs no refresh).

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
    a0 = np.zeros(n, dtype=np.int8)
    mask0 = np.int64(0)
    for t in range(n_fixed):
        if (pattern >> t) & 1:
            a0[order[t]] = 1
            mask0 |= np.int64(1) << order[t]
    n_hi = n - n_fixed - n_low
    hi_users = order[n_fixed:n_fixed + n_hi]
    lo_users = order[n - n_low:]

    M0, h0, sh0 = fresh_state(S, tau2, a0)
    # high level: buffer j holds the state "bits >= j as now, bits below j zero";
    # ptr[i] is the buffer holding that state for level i (shared while the low bits are zero)
    hM = np.empty((n_hi + 1, n, n))
    hh = np.empty((n_hi + 1, n))
    hs = np.empty((n_hi + 1, n), dtype=np.bool_)
    hmask = np.empty(n_hi + 1, dtype=np.int64)
    hM[n_hi] = M0
    hh[n_hi] = h0
    hs[n_hi] = sh0
    hmask[n_hi] = mask0
    ptr = np.full(n_hi + 1, n_hi, dtype=np.int64)
    # low level: the same scheme on slabs (rows of the low users), diag M and h
    lR = np.empty((n_low + 1, n_low, n))
    lD = np.empty((n_low + 1, n))
    lh = np.empty((n_low + 1, n))
    ls = np.empty((n_low + 1, n), dtype=np.bool_)
    lmask = np.empty(n_low + 1, dtype=np.int64)
    lptr = np.empty(n_low + 1, dtype=np.int64)
    slab_rows = np.arange(n_low)
    scratch = np.empty(n)

    best = -np.inf
    best_mask = np.int64(-1)
    cand_vals = np.empty(capacity)
    cand_masks = np.empty(capacity, dtype=np.int64)
    n_cand = 0
    overflow = False
    count = np.int64(0)

    for g in range(np.int64(1) << n_hi):
        if g > 0:
            j = _ctz(g)
            src = ptr[j + 1]
            hM[j] = hM[src]
            hh[j] = hh[src]
            hs[j] = hs[src]
            u = hi_users[j]
            add_signal(hM[j], hh[j], hs[j], u, tau2)
            hmask[j] = hmask[src] | (np.int64(1) << u)
            for i in range(j):
                ptr[i] = j
            ptr[j] = j
        top = ptr[0]
        M = hM[top]
        # the low walk starts from this high state
        for jj in range(n_low):
            for r in range(n):
                lR[n_low, jj, r] = M[lo_users[jj], r]
        for r in range(n):
            lD[n_low, r] = M[r, r]
            lh[n_low, r] = hh[top, r]
            ls[n_low, r] = hs[top, r]
        lmask[n_low] = hmask[top]
        for i in range(n_low + 1):
            lptr[i] = n_low
        for l in range(np.int64(1) << n_low):
            if l > 0:
                j = _ctz(l)
                src = lptr[j + 1]
                # below this state only the low users before j are added: rows 0..j-1, plus row j
                # (the input column) are all the slab this state needs
                for q in range(j + 1):
                    for r in range(n):
                        lR[j, q, r] = lR[src, q, r]
                for r in range(n):
                    lD[j, r] = lD[src, r]
                    lh[j, r] = lh[src, r]
                    ls[j, r] = ls[src, r]
                u = lo_users[j]
                add_signal_rows(lD[j], lh[j], lR[j], slab_rows, j, lo_users, ls[j], u, j, tau2, scratch)
                lmask[j] = lmask[src] | (np.int64(1) << u)
                for i in range(j):
                    lptr[i] = j
                lptr[j] = j
            cur = lptr[0]
            val = objective_value(lD[cur], lh[cur], ls[cur], sig2, c, d, e, k)
            count += 1
            best, best_mask, n_cand, overflow = _record(val, lmask[cur], best, best_mask, cand_vals, cand_masks,
                                                        n_cand, tol, overflow)
    keep = 0
    for q in range(n_cand):
        if cand_vals[q] >= best - tol:
            cand_vals[keep] = cand_vals[q]
            cand_masks[keep] = cand_masks[q]
            keep += 1
    return best, best_mask, cand_vals[:keep].copy(), cand_masks[:keep].copy(), overflow, count


@kernel
def _user_eq_walk(S, tau2, v, p, tol):
    """Every user equilibrium at prices ``p``: each profile's state from a fresh add-only build."""
    n = S.shape[0]
    out = np.empty(1 << n, dtype=np.int64)
    n_out = 0
    a = np.zeros(n, dtype=np.int8)
    for mask in range(np.int64(1) << n):
        for i in range(n):
            a[i] = (mask >> i) & 1
        M, h, shared = fresh_state(S, tau2, a)
        ok = True
        for i in range(n):
            thr = v[i] * share_threshold(M[i, i], h[i], shared[i], tau2[i])
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


def _np_user_equilibria(S, tau2, v, p, tol):
    """:func:`_user_eq_walk` in NumPy for ``n ≤ SMALL_N`` (all fresh states at once, same arithmetic)."""
    n = S.shape[0]
    M, h, shared = all_profile_states(S, tau2)
    x = np.diagonal(M, axis1=1, axis2=2)
    pos = h > 0.0
    own = np.where(pos, x * x / np.where(pos, h, 1.0), 0.0)
    thr = v[None, :] * np.where(shared, own, x * x / (x + tau2[None, :]))
    a = ((np.arange(1 << n)[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
    bad = (a & (p[None, :] < thr - tol)) | (~a & (p[None, :] > thr + tol))
    return np.flatnonzero(~bad.any(axis=1)).astype(np.int64)


def enumerate_user_equilibria(S, tau2, v, p, tol):
    """Bit masks of every user equilibrium at prices ``p`` (indifference within ``tol`` allowed both ways)."""
    S = np.ascontiguousarray(S, dtype=float)
    if S.shape[0] <= SMALL_N:
        return _np_user_equilibria(S, np.asarray(tau2, float), np.asarray(v, float), np.asarray(p, float),
                                   float(tol))
    return _user_eq_walk(np.ascontiguousarray(S, dtype=float), np.asarray(tau2, float),
                         np.asarray(v, float), np.asarray(p, float), float(tol))
