"""The literal de-correlation S̃ = Σ⁻¹S (AMMO §6.2) against Lemma 5's idealised leakage and Thm 6."""

import itertools

import numpy as np
import pytest

import dm_opt
from dm_opt.gaussian.leakage import LiteralDecorrelatedMarket


def _fresh_literal_leakage(cov, noise, a):
    """Var(X_j) − Var(X_j | Y_A) with Y_A = rows A of Σ⁻¹ times S, from the explicit joint covariance."""
    n = len(noise)
    A = [i for i in range(n) if a[i]]
    if not A:
        return np.zeros(n)
    W = np.linalg.inv(cov)[A, :]
    cxy = cov @ W.T                                   # Cov(X, Y_A)
    cyy = W @ (cov + np.diag(noise)) @ W.T            # Cov(Y_A)
    return np.einsum("ja,ja->j", cxy, np.linalg.solve(cyy, cxy.T).T)


def test_lemma5_fails_for_the_literal_transform_two_users():
    """Two users, ρ = 0.6, τ² = 1, a = (1, 0): user 1 leaks (1 − ρ²)²/2 = 0.2048, not Lemma 5's 1/2."""
    rho = 0.6
    m = LiteralDecorrelatedMarket([[1, rho], [rho, 1]], [1.0, 1.0])
    assert m.leakage([1, 0]) == pytest.approx([(1 - rho ** 2) ** 2 / 2, 0.0], abs=1e-15)
    assert m.leakage([1, 0])[0] == pytest.approx(0.2048, abs=1e-15)
    assert m.idealised_leakage([1, 0]) == pytest.approx([0.5, 0.0], abs=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_literal_leakage_matches_fresh_solves_and_lemma5_when_everyone_shares(seed):
    rng = np.random.default_rng(seed)
    for _ in range(10):
        n = int(rng.integers(2, 6))
        G = rng.normal(size=(n, n))
        cov = G @ G.T / n + 0.2 * np.eye(n)
        noise = rng.uniform(0.5, 2.0, n)
        m = LiteralDecorrelatedMarket(cov, rng.uniform(0.3, 2.5, n), noise)
        for bits in itertools.product((0, 1), repeat=n):
            a = np.array(bits, dtype=np.int8)
            lit = m.leakage(a)
            assert lit == pytest.approx(_fresh_literal_leakage(cov, noise, a), abs=1e-10)
            assert np.all(lit[a == 0] == 0.0)           # non-sharers leak nothing
            assert np.array_equal(m.own_leakage(a), lit)
        full = np.ones(n, dtype=np.int8)
        assert m.leakage(full) == pytest.approx(m.gaussian.leakage(full), abs=1e-10)   # Lemma 5 holds here


def test_solvers_take_the_literal_market_and_its_problems_coincide():
    rng = np.random.default_rng(5)
    n = 6
    G = rng.normal(size=(n, n))
    m = LiteralDecorrelatedMarket(G @ G.T / n + 0.2 * np.eye(n), rng.uniform(0.3, 2.5, n))
    brute = max(float(np.dot(1 - m.values, m.leakage(np.array(b, np.int8))))
                for b in itertools.product((0, 1), repeat=n))
    for problem in ("first_best", "equilibrium", "decorrelated"):
        r = dm_opt.solve(m, problem, method="enumerate")
        assert r.status == "optimal"
        assert r.objective == pytest.approx(brute, abs=r.tie_tol)
        # equilibrium prices compensate a sharer's whole leakage (nothing leaks without sharing)
        if problem == "equilibrium":
            assert r.prices == pytest.approx(m.values * m.leakage(r.profile), abs=1e-12)


def test_thm6_holds_for_the_idealised_and_fails_for_the_literal_transform():
    """Thm 6: surplus(ã^E) ≥ max(surplus(a^E), 0).  With Lemma 5's idealised leakage it holds on
    every instance; with the literal transform the de-correlated equilibrium (which maximises
    Σ_{i∈A}(1 − v_i) Ĩ_i) can fall short of the original equilibrium's surplus."""
    rng = np.random.default_rng(0)
    literal_fails = 0
    for _ in range(120):
        n = int(rng.integers(2, 6))
        G = rng.normal(size=(n, n))
        cov = G @ G.T / n + 0.2 * np.eye(n)
        v = rng.uniform(0.3, 2.5, n)
        lit = LiteralDecorrelatedMarket(cov, v)
        g = lit.gaussian
        s_eq = g.surplus(dm_opt.solve(g, "equilibrium").profile)
        s_ideal = dm_opt.solve(g, "decorrelated").surplus
        assert s_ideal >= max(s_eq, 0.0) - 1e-12
        s_lit = dm_opt.solve(lit, "decorrelated", method="enumerate").objective
        assert s_lit >= -1e-15                           # a = 0 is available
        literal_fails += s_lit < max(s_eq, 0.0) - 1e-9
    assert literal_fails >= 1
