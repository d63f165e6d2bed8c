"""The ``probing`` and ``convex`` cuts of the MIP model (issue 17) against an independent oracle.

* ``probing``: ``bnb``'s modular bound at the root's children ``a_j = 0 / 1``
  (:func:`~dm_opt.gaussian.backends.milp.probing_cut_terms`), one row per user with the products
  ``a_j a_l`` as McCormick variables ``w_jl``;
* ``convex``: gradient cuts of the convex ``Q_ii(a)`` and Woodbury upper bounds
  (:func:`~dm_opt.gaussian.backends.milp.convex_cut_terms`).

Oracle: :mod:`tests.support.naive` — fresh dense solves per subset straight from AMMO's
definitions (no posterior kernels, no standardisation).  Every cut must hold at every 0/1 profile of
random ``n ≤ 8`` instances against the exact objective, for every problem (the equilibrium's model
must stay a relaxation), and the MILP with the cuts must return the enumerated optimum.
"""

from __future__ import annotations

import numpy as np
import pytest

import dm_opt
from dm_opt.core import generators as G
from dm_opt.core.result import Termination
from dm_opt.gaussian.backends import milp as M
from dm_opt.gaussian.objectives import LeakageObjective
from tests.support import naive

PROBLEMS = ("first_best", "equilibrium", "decorrelated")
ALL_CUTS = ("sharer", "modular", "probing", "convex")


def market(k: int, n: int) -> dm_opt.GaussianMarket:
    """Instance ``k``: Wishart / equicorrelated / banded / block covariances, values straddling 1
    (negative first-best weights: the nonconvex part), unequal noise every other instance, and
    every fourth instance small noise (ρ = 1e-3) or noise above the variance (ρ up to 50)."""
    rng = np.random.default_rng(7000 + k)
    seed = int(rng.integers(0, 2**31))
    fam = k % 4
    if fam == 0:
        S = G.wishart(n, seed)
    elif fam == 1:
        S = G.equicorrelated(n, seed, rho=float(rng.uniform(0.1, 0.9)))
    elif fam == 2:
        S = G.banded(n, seed, bandwidth=2, strength=float(rng.uniform(0.3, 2.0)))
    else:
        S = G.block(n, seed, within=float(rng.uniform(0.3, 0.8)), across=float(rng.uniform(0.0, 0.3)))
    v = rng.uniform(0.0, 2.0, size=n)
    s2 = np.diag(S)
    if k % 8 == 3:
        noise = 1e-3 * s2 * rng.uniform(1.0, 3.0, size=n)
    elif k % 8 == 7:
        noise = s2 * rng.uniform(1.0, 50.0, size=n)
    else:
        noise = None if k % 2 else rng.uniform(0.3, 3.0, size=n)
    return dm_opt.GaussianMarket(S, v, noise)


def exact_values(m: dm_opt.GaussianMarket, objective: LeakageObjective, problem):
    """``(profiles, f, q)``: every 0/1 profile, its objective and ``diag P(a)/σ²`` by naive dense solves."""
    S, t2, s2 = m.cov, m.noise_var, m.sigma2
    profiles = list(naive.subsets(m.n))
    f, q = [], []
    for a in profiles:
        A = np.flatnonzero(a)
        P = naive.posterior_var(S, t2, A)
        q.append(P / s2)
        if problem is not None:
            f.append(naive.objective(S, t2, m.values, A, problem))
        else:   # a general weighted objective: Σ c I + Σ_{i∈A} (d I − e g − k), g = P_ii²/(τ² − P_ii)
            I = s2 - P
            g = np.where(a == 1, P * P / np.where(a == 1, t2 - P, 1.0), 0.0)
            f.append(float(objective.c @ I + np.sum(a * (objective.d * I - objective.e * g - objective.k))))
    return profiles, np.array(f), np.array(q)


def general_objective(m, k):
    rng = np.random.default_rng(100 + k)
    n = m.n
    return LeakageObjective("custom", rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.uniform(0, 1, n),
                            rng.uniform(-0.2, 0.2, n) * float(np.mean(m.sigma2)))


CASES = [(k, p) for k in range(16) for p in (*PROBLEMS, None)]


@pytest.mark.parametrize("k,problem", CASES)
def test_probing_terms_bound_every_profile(k, problem):
    """``f(a) ≤ K[a_j, j] + Σ_l D[a_j, j, l] a_l`` for every user ``j`` and profile ``a`` (exact ``f``),
    and the forms are not vacuous: each child's form is attained within a fraction of the scale."""
    n = 4 + k % 5
    m = market(k, n)
    obj = m.objective(problem) if problem else general_objective(m, k)
    K, D = M.probing_cut_terms(m, obj)
    assert K.shape == (2, n) and D.shape == (2, n, n)
    assert np.all(np.diagonal(D, axis1=1, axis2=2) == 0.0)
    profiles, f, _ = exact_values(m, obj, problem)
    scale = obj.scale(m.sigma2)
    tol = 1e-9 * scale
    A = np.array(profiles, dtype=float)                   # (2^n, n)
    for j in range(n):
        for b in (0, 1):
            sel = A[:, j] == b
            form = K[b, j] + A[sel] @ D[b, j]
            slack = form - f[sel]
            assert np.min(slack) >= -tol, (j, b, np.min(slack))
            # a cut that could never bind would pass trivially: it comes within a quarter of the scale
            # (measured: at most 0.12 over these cases)
            assert np.min(slack) <= 0.25 * scale, (j, b, np.min(slack), scale)


def test_oracle_catches_an_invalid_probing_cut():
    """The check above can fail: child 0's form used for every profile (no ``a_j`` products, an
    invalid cut) is violated at some profile of most cases."""
    caught = 0
    for k, problem in CASES[:24]:
        m = market(k, 4 + k % 5)
        obj = m.objective(problem) if problem else general_objective(m, k)
        K, D = M.probing_cut_terms(m, obj)
        profiles, f, _ = exact_values(m, obj, problem)
        A = np.array(profiles, dtype=float)
        caught += any(np.min(K[0, j] + A @ D[0, j] - f) < -1e-9 * obj.scale(m.sigma2) for j in range(m.n))
    assert caught >= 12, caught


@pytest.mark.parametrize("k", range(16))
def test_convex_terms_bound_every_profile(k):
    """``g0[q,i] − Σ_j G[q,i,j] a_j ≤ Q_ii(a) ≤ 1 − Σ_j B[i,j] a_j`` at every profile (naive ``Q_ii``);
    the tangent at ``t = 1`` is tight at the full profile and the one at the 0/1 point ``1[w > 0]``
    at that profile (the oracle can tell a wrong gradient or point)."""
    n = 4 + k % 5
    m = market(k, n)
    C, rho = M.correlation_and_ratios(m)
    obj = general_objective(m, k)
    G_, g0, B = M.convex_cut_terms(C, rho, M.convex_points(obj, n))
    assert g0.shape == (len(M.CONVEX_POINTS) + 3, n)
    profiles, _, q = exact_values(m, obj, None)
    A = np.array(profiles, dtype=float)
    tol = 1e-12
    for p in range(g0.shape[0]):
        low = g0[p][None, :] - A @ G_[p].T                 # (2^n, n)
        assert np.all(low <= q + tol), (p, np.max(low - q))
    up = 1.0 - A @ B.T
    assert np.all(q <= up + tol), np.max(q - up)
    # tight up to the cut's own slack (BOUND_RTOL times its terms: Σ_j G_ij is ~1/ρ for small noise)
    for p, row in ((0, np.flatnonzero(A.sum(axis=1) == n)[0]),
                   (len(M.CONVEX_POINTS), np.flatnonzero(np.all(A == M.convex_points(obj, n)[len(M.CONVEX_POINTS)],
                                                                axis=1))[0])):
        gap = q[row] - (g0[p] - G_[p] @ A[row])
        assert np.all(gap <= 3e-9 * (1.0 + G_[p].sum(axis=1)) + 1e-12), (p, gap)


@pytest.mark.parametrize("form", ["precision", "mixed"])
@pytest.mark.parametrize("k,problem", [(k, p) for k in range(8) for p in PROBLEMS])
def test_model_rows_hold_at_every_profile(k, problem, form):
    """With all cuts, the model's point at every profile satisfies every row, and its objective is the
    exact (naive) one: the model contains every profile at its value (for the equilibrium a relaxation,
    the tangent table only under-estimates the own-signal term)."""
    n = 4 + k % 4
    m = market(k, n)
    obj = m.objective(problem)
    model = M.build_model(m, obj, None, cuts=ALL_CUTS, posterior_form=form)
    assert {"probing", "convex_lower", "convex_upper"} <= {b.name for b in model.blocks}
    profiles, f, q = exact_values(m, obj, problem)
    diag_cols = [model.diag_q[i] for i in range(n)]
    for a, fa, qa in zip(profiles, f, q, strict=True):
        x = model.point(a)
        r = model.A @ x
        scale_r = 1e-9 * (1.0 + np.abs(model.row_lo).clip(max=1e300) * np.isfinite(model.row_lo)
                          + np.abs(model.row_hi).clip(max=1e300) * np.isfinite(model.row_hi))
        assert np.all(r >= model.row_lo - scale_r) and np.all(r <= model.row_hi + scale_r), a
        val = (model.cost @ x + model.offset) * model.scale
        assert abs(val - fa) <= 1e-9 * obj.scale(m.sigma2), (a, val, fa)
        qd = np.array([np.dot(x[c], v) for c, v in diag_cols])
        assert np.allclose(qd, qa, rtol=0, atol=1e-9)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("k", range(6))
def test_milp_with_all_cuts_equals_enumeration(k, problem):
    n = 5 + k % 4
    m = market(k, n)
    e = dm_opt.solve(m, problem, "enumerate", all_optima=True)
    r = dm_opt.solve(m, problem, "milp", cuts=ALL_CUTS)
    assert r.status is Termination.OPTIMAL, (r.status, r.message)
    assert abs(r.objective - e.objective) <= e.tie_tol, (r.objective, e.objective)
    assert any(np.array_equal(r.profile, o) for o in e.optima)


def test_probing_cuts_tighten_the_root():
    """The measured point of the cuts: the LP bound of the strongest model is below that of
    ``precision`` + ``modular`` alone (Wishart n = 12, first best)."""
    import highspy

    m = dm_opt.GaussianMarket(G.wishart(12, 0), G.uniform(12, 10_000, 0.0, 2.0))
    obj = m.objective("first_best")

    def lp(cuts):
        model = M.build_model(m, obj, None, posterior_form="precision", cuts=cuts)
        h = M.to_highs(model)
        nc = model.num_col
        h.changeColsIntegrality(nc, np.arange(nc, dtype=np.int32), np.array([highspy.HighsVarType.kContinuous] * nc))
        h.run()
        return h.getInfo().objective_function_value * model.scale

    opt = dm_opt.solve(m, "first_best", "bnb").objective
    base, strong = lp(("sharer", "modular")), lp(ALL_CUTS)
    assert opt - 1e-9 <= strong < base - 1e-6 * abs(opt)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("k", range(6))
def test_strongest_default_with_linear_rows_equals_brute_force(k, problem):
    """The ``milp`` default (strongest cuts on the precision attempt) and ``to_pyomo``'s default model
    under a conflict pair and a knapsack row: the cuts hold for every profile, so the constrained
    optimum is kept (oracle: naive brute force filtered by the same rows)."""
    from scipy.optimize import LinearConstraint

    n = 5 + k % 4
    m = market(k, n)
    rng = np.random.default_rng(50 + k)
    A = np.zeros((2, n))
    i, j = rng.choice(n, size=2, replace=False)
    A[0, [i, j]] = 1.0                                     # not both
    A[1] = rng.uniform(0.5, 2.0, size=n)                   # knapsack
    ub = np.array([1.0, 0.5 * A[1].sum()])
    rows = LinearConstraint(A, -np.inf, ub)
    best, _ = naive.brute_force(m.cov, m.noise_var, m.values, problem,
                                feasible=lambda a: bool(np.all(A @ a <= ub + 1e-12)))
    r = dm_opt.solve(m, problem, "milp", constraints=rows)
    assert r.status is Termination.OPTIMAL, (r.status, r.message)
    assert abs(r.objective - best) <= r.tie_tol, (r.objective, best)
    assert np.all(A @ r.profile <= ub + 1e-12)
