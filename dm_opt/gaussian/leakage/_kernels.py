"""Compiled block walk for Gaussian-based oracles (mutual information, mixtures).

:func:`posterior_diag_block` returns ``diag P(a)`` and ``h(a) = τ² − P_ii(a)`` (for
sharers; :mod:`dm_opt.gaussian.kernels.posterior`) for the ``2^b`` profiles whose mask lies in
``[hi, hi + 2^b)`` (``hi`` a multiple of ``2^b``): users ``0..b−1`` are walked
depth-first with add-only updates of the posterior state (binary counting: each
profile is its stored ancestor plus one signal), so no downdate ever cancels.
Results are stored by mask, so callers see the plain mask order.
"""

from __future__ import annotations

import numpy as np

from dm_opt.gaussian.kernels.enumeration import _ctz
from dm_opt.gaussian.kernels.posterior import add_signal, fresh_state, kernel


@kernel
def posterior_diag_block(S, tau2, hi, b):
    n = S.shape[0]
    a = np.zeros(n, dtype=np.int8)
    for i in range(b, n):
        if (hi >> i) & 1:
            a[i] = 1
    M0, h0, s0 = fresh_state(S, tau2, a)
    bM = np.empty((b + 1, n, n))
    bh = np.empty((b + 1, n))
    bs = np.empty((b + 1, n), dtype=np.bool_)
    bM[b] = M0
    bh[b] = h0
    bs[b] = s0
    ptr = np.full(b + 1, b, dtype=np.int64)
    out_x = np.empty((np.int64(1) << b, n))
    out_h = np.zeros((np.int64(1) << b, n))
    for g in range(np.int64(1) << b):
        if g > 0:
            j = _ctz(g)
            src = ptr[j + 1]
            bM[j] = bM[src]
            bh[j] = bh[src]
            bs[j] = bs[src]
            add_signal(bM[j], bh[j], bs[j], j, tau2)
            for i in range(j):
                ptr[i] = j
            ptr[j] = j
        cur = ptr[0]
        for i in range(n):
            out_x[g, i] = bM[cur, i, i]
            if bs[cur, i]:
                out_h[g, i] = bh[cur, i]
    return out_x, out_h


def diag_block(cov: np.ndarray, noise_var: np.ndarray, lo: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(diag P(a), h(a))`` for masks ``lo … lo+count−1``, shape (count, n) each.

    ``count`` must be a power of two and ``lo`` a multiple of it (the blocks
    oracle enumeration asks for); anything else falls back to one block per mask.
    """
    b = int(count).bit_length() - 1
    S = np.ascontiguousarray(cov, dtype=float)
    t2 = np.asarray(noise_var, dtype=float)
    if count == (1 << b) and lo % count == 0:
        return posterior_diag_block(S, t2, np.int64(lo), b)
    parts = [posterior_diag_block(S, t2, np.int64(m), 0) for m in range(lo, lo + count)]
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])
