"""Random linear side rows for the constraint tests (one home: the bnb, MIP and scip-check suites).

The kinds are the issue's test cases: conflict pairs, knapsacks, group quotas, fairness rows and
dense float rows around a random profile (often tight)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import LinearConstraint as LC

KINDS = ("conflict", "knapsack", "quota", "fair", "float")


def random_row(rng, n, kind):
    if kind == "conflict":                       # a_i + a_j ≤ 1
        i, j = rng.choice(n, 2, replace=False)
        A = np.zeros(n)
        A[[i, j]] = 1.0
        return LC(A, ub=1)
    if kind == "knapsack":                       # integer weights, capacity 20–70 % of the total
        w = rng.integers(1, 10, n).astype(float)
        return LC(w, ub=float(rng.uniform(0.2, 0.7) * w.sum()))
    if kind == "quota":                          # at least q sharers from a group
        g = rng.random(n) < 0.5
        return LC(g.astype(float), lb=int(rng.integers(0, max(1, int(g.sum())) + 1)))
    if kind == "fair":                           # |#sharers in G − #sharers outside G| ≤ 1
        g = rng.random(n) < 0.5
        return LC(np.where(g, 1.0, -1.0), lb=-1, ub=1)
    # two dense rows with float coefficients around a random profile (often tight)
    A = rng.normal(size=(2, n))
    r = A @ (rng.random(n) < 0.5)
    return LC(A, lb=r - rng.uniform(0, 1, 2), ub=r + rng.uniform(0, 1, 2))


def extra_constraints(rng, n) -> list:
    """Sometimes an infeasible pair of count rows, an infeasible row, a count or a forced user."""
    u = rng.random()
    if u < 0.12:                                   # infeasible: at most one and at least two sharers
        return [LC(np.ones(n), ub=1), LC(np.ones(n), lb=2)]
    if u < 0.18:                                   # infeasible in one row
        return [LC(np.ones(n), lb=n + 0.5)]
    if u < 0.35:
        return [{"max_sharers": int(rng.integers(1, n + 1))}]
    if u < 0.45:
        return [{"force_in": [int(rng.integers(n))]}]
    return []
