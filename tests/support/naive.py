"""Independent brute-force oracle for the Gaussian data market (written separately from dm_opt).

Everything here is computed from the definitions with fresh dense solves per
subset (no rank-1 updates, no own-signal identity, nothing shared with the
package): ``Var(X_i | S_A) = σ_i² − Σ_{iA} (Σ_AA + diag τ_A²)⁻¹ Σ_{Ai}``.
"""

import itertools

import numpy as np


def posterior_var(S, tau2, A):
    A = list(A)
    if not A:
        return np.diag(S).copy()
    C = S[np.ix_(A, A)] + np.diag(np.asarray(tau2)[A])
    B = S[A, :]
    return np.diag(S) - np.einsum("ai,ai->i", B, np.linalg.solve(C, B))


def leakage(S, tau2, A):
    return np.diag(S) - posterior_var(S, tau2, A)


def objective(S, tau2, v, A, problem):
    """Objective of ``problem`` at sharing set ``A`` straight from AMMO's definitions."""
    A = sorted(A)
    I = leakage(S, tau2, A)
    v = np.asarray(v, dtype=float)
    if problem == "first_best":        # Prop 1 / §3.1: Σ (1 − v_i) I_i(a)
        return float(np.dot(1 - v, I))
    if problem == "equilibrium":       # Thm 1: Σ (1 − v_i) I_i(a) + v_i I_i(a_{−i}, 0)
        total = 0.0
        for i in range(len(v)):
            without = [j for j in A if j != i]
            total += (1 - v[i]) * I[i] + v[i] * leakage(S, tau2, without)[i]
        return float(total)
    if problem == "decorrelated":      # Thm 6: Σ_{i∈A} (1 − v_i) I_i(a)
        return float(sum((1 - v[i]) * I[i] for i in A))
    raise ValueError(problem)


def subsets(n):
    for bits in itertools.product((0, 1), repeat=n):
        yield np.array(bits[::-1], dtype=np.int8)


def brute_force(S, tau2, v, problem, tol=1e-9, feasible=None):
    """(best value, list of optimal 0/1 profiles within ``tol``·scale), by fresh solves per subset."""
    n = S.shape[0]
    vals = []
    for a in subsets(n):
        if feasible is not None and not feasible(a):
            continue
        vals.append((objective(S, tau2, v, np.flatnonzero(a), problem), a))
    if not vals:
        return None, []
    best = max(x for x, _ in vals)
    return best, [a for x, a in vals if x >= best - tol]


def completions(state):
    """Every 0/1 profile completing a node ``state`` (0 free, 1 in, 2 out; shape (n,)), as int8 arrays."""
    free = np.flatnonzero(state == 0)
    for bits in itertools.product((0, 1), repeat=free.size):
        a = (state == 1).astype(np.int8)
        a[free] = bits
        yield a
