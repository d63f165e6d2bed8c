"""The dense GLP ``P_q`` constraints written from the definitions, for independent LP oracles."""

import numpy as np


def dense_rows(market):
    """``(E, G)`` of ``P_q`` over ``y`` flattened action-major (``y[a * n + ω]``): ``E y = q`` (n, m·n)
    records each type's mass, and ``G y ≥ 0`` (m(m−1), m·n) is obedience, one row per pair
    ``a ≠ b``: ``Σ_ω (π(a, ω) − π(b, ω)) y(a, ω) ≥ 0``."""
    m, n = market.m, market.n
    pi = np.asarray(market.pi, float)
    E = np.zeros((n, m * n))
    for a in range(m):
        E[np.arange(n), a * n + np.arange(n)] = 1.0
    rows = []
    for a in range(m):
        for b in range(m):
            if a != b:
                r = np.zeros(m * n)
                r[a * n:(a + 1) * n] = pi[a] - pi[b]
                rows.append(r)
    return E, (np.array(rows) if rows else np.zeros((0, m * n)))
