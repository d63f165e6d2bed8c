"""Independent brute-force references for the leakage tests (dense solves, no dm_opt posterior code)."""

import numpy as np


def posterior_var_dense(S, tau2, A):
    """Var(X_i | S_A) by the textbook conditional-Gaussian formula (np.linalg.solve)."""
    A = list(A)
    if not A:
        return np.diag(S).copy()
    C = S[np.ix_(A, A)] + np.diag(np.asarray(tau2)[A])
    B = S[:, A]
    return np.diag(S) - np.einsum("ij,ji->i", B, np.linalg.solve(C, B.T))


def random_cov(rng, n, zero_rows=()):
    A = rng.normal(size=(n, n))
    S = A @ A.T / n + 0.3 * np.eye(n)
    for i in zero_rows:
        d = S[i, i]
        S[i, :] = 0.0
        S[:, i] = 0.0
        S[i, i] = d
    return S


def profiles(n):
    for m in range(1 << n):
        yield m, ((m >> np.arange(n)) & 1).astype(np.int8)


def brute_force(n, value, tol):
    """Best value and sorted list of optimal masks of ``value(a)`` over all profiles."""
    vals = np.array([value(a) for _, a in profiles(n)])
    best = vals.max()
    return best, [m for m in range(1 << n) if vals[m] >= best - tol]
