"""Compiled block walk for Gaussian-based oracles (mutual information, mixtures).

:func:`posterior_diag_block` returns ``diag P(a)`` for the ``2^b`` profiles
whose mask lies in ``[hi, hi + 2^b)`` (``hi`` a multiple of ``2^b``): users
``0..b−1`` are walked in Gray-code order with rank-1 (Sherman–Morrison)
updates of the full posterior ``P`` (SPEC §1.1), recomputed from scratch
every ``refresh`` steps to bound round-off.  Results are stored by mask, so
callers see the plain mask order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..solvers.kernels import _ctz, _rank1_full, posterior_full, shared_users


@njit(cache=True, nogil=True)
def posterior_diag_block(S, tau2, hi, b, refresh):
    n = S.shape[0]
    a = np.zeros(n, dtype=np.int8)
    for i in range(b, n):
        if (hi >> i) & 1:
            a[i] = 1
    P = posterior_full(S, tau2, shared_users(a))
    out = np.empty((np.int64(1) << b, n))
    off = np.int64(0)
    since = 0
    for g in range(np.int64(1) << b):
        if g > 0:
            u = _ctz(g)
            a[u] = 1 - a[u]
            off ^= np.int64(1) << u
            since += 1
            if since >= refresh:
                P = posterior_full(S, tau2, shared_users(a))
                since = 0
            else:
                _rank1_full(P, u, tau2, a[u] == 1)
        for i in range(n):
            out[off, i] = P[i, i]
    return out


def diag_block(cov: np.ndarray, noise_var: np.ndarray, lo: int, count: int, refresh: int = 32) -> np.ndarray:
    """``diag P(a)`` for masks ``lo … lo+count−1``, shape (count, n).

    ``count`` must be a power of two and ``lo`` a multiple of it (the blocks
    oracle enumeration asks for); anything else falls back to one block per mask.
    """
    b = int(count).bit_length() - 1
    S = np.ascontiguousarray(cov, dtype=float)
    t2 = np.asarray(noise_var, dtype=float)
    if count == (1 << b) and lo % count == 0:
        return posterior_diag_block(S, t2, np.int64(lo), b, refresh)
    return np.vstack([posterior_diag_block(S, t2, np.int64(m), 0, refresh) for m in range(lo, lo + count)])
