"""The dense GLP ``P_q`` constraints written from the definitions, for independent LP oracles."""

import numpy as np
from scipy.optimize import linprog


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


def oracle_V(market, q):
    """``(V(q), y)`` by a fresh dense ``linprog`` over :func:`dense_rows` (``y`` shape (m, n))."""
    E, G = dense_rows(market)
    r = linprog(-market.v.ravel(), A_ub=-G if len(G) else None, b_ub=np.zeros(len(G)) if len(G) else None,
                A_eq=E, b_eq=q, bounds=(0, None), method="highs")
    assert r.status == 0
    return -r.fun, r.x.reshape(market.m, market.n)
