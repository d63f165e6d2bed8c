"""Exact extreme Nash equilibria of bimatrix games by vertex enumeration (no solver needed).

Used for the user stage of two users (a 5×5 game, AMMO Thm B-1's first step) and for small
finite price games; pygambit (optional) is the reference for larger ones.
"""

from __future__ import annotations

import itertools

import numpy as np

from dm_opt.core.errors import LimitExceeded

#: Largest game for the own vertex enumeration (``C(m+k, m)`` vertex candidates per polytope).
MAX_ENUMERATION_STRATEGIES = 12


# ---------------------------------------------------------------------------
def _vertices(M: np.ndarray, tol: float):
    """Vertices of ``{x ≥ 0 : Mᵀ x ≤ 1}`` (M > 0, shape (m, k)), x ≠ 0, with their label bit masks.

    Labels ``0..m−1``: ``x_i = 0``; ``m + j``: ``(Mᵀx)_j = 1``.  Every choice of ``m`` tight
    constraints is solved (degenerate vertices are reached through each of their bases and
    deduplicated).  Returns (X (V, m), labels (V,) int).
    """
    m, k = M.shape
    rows = np.vstack([np.eye(m), M.T])
    rhs = np.concatenate([np.zeros(m), np.ones(k)])
    combos = np.array(list(itertools.combinations(range(m + k), m)))
    G = rows[combos]
    good = np.abs(np.linalg.det(G)) > 1e-12
    X = np.linalg.solve(G[good], rhs[combos[good]][..., None])[..., 0]
    slack = X @ M
    keep = np.all(X >= -tol, axis=1) & np.all(slack <= 1 + tol, axis=1) & (X.sum(axis=1) > tol)
    X = np.maximum(X[keep], 0.0)
    X = np.unique(np.round(X, 12), axis=0)
    slack = X @ M
    lab = ((X <= tol).astype(np.int64) * (1 << np.arange(m))).sum(axis=1) + \
        ((slack >= 1 - tol).astype(np.int64) * (1 << (m + np.arange(k)))).sum(axis=1)
    return X, lab


def bimatrix_equilibria(A, B, tol: float = 1e-9) -> list[tuple[np.ndarray, np.ndarray]]:
    """All extreme Nash equilibria ``(x, y)`` of the bimatrix game (row payoffs ``A``, column ``B``).

    Exact vertex enumeration (Avis–Rosenmüller–Savani–von Stengel): shift the
    payoffs positive, enumerate the vertices of ``P = {x ≥ 0: Bᵀx ≤ 1}`` and
    ``Q = {y ≥ 0: Ay ≤ 1}``, keep the completely labelled pairs, normalise.
    Every equilibrium of a (possibly degenerate) game is a convex combination
    within a maximal Nash subset of the extreme ones returned.  Each pair is
    re-verified (no pure deviation gains more than ``tol``).
    """
    A = np.asarray(A, float)
    B = np.asarray(B, float)
    m, k = A.shape
    if m > MAX_ENUMERATION_STRATEGIES or k > MAX_ENUMERATION_STRATEGIES:
        raise LimitExceeded(f"strategies: {m}x{k} game; own vertex enumeration is limited to "
                            f"{MAX_ENUMERATION_STRATEGIES} strategies per player (use solver='gambit')")
    sa = 1.0 - A.min()
    sb = 1.0 - B.min()
    Ap, Bp = A + sa, B + sb
    XP, lx = _vertices(Bp, 1e-9)                  # x ≥ 0, Bᵀx ≤ 1: labels x_i = 0 → i, column j tight → m + j
    YQ, ly = _vertices(Ap.T, 1e-9)                # y ≥ 0, A y ≤ 1: labels y_j = 0 → j, row i tight → k + i
    # translate y's labels to the common space: y_j = 0 → m + j; row i tight → i
    ly2 = ((ly & ((1 << k) - 1)) << m) | (ly >> k)
    full = (1 << (m + k)) - 1
    found = []
    for a, b in zip(*np.nonzero((lx[:, None] | ly2[None, :]) == full), strict=True):
        xs, ys = XP[a] / XP[a].sum(), YQ[b] / YQ[b].sum()
        ux, uy = A @ ys, xs @ B
        if ux.max() > xs @ ux + tol or uy.max() > uy @ ys + tol:
            continue
        found.append((xs, ys))
    return found
