import numpy as np
import pytest

import dm_opt
from dm_opt.gaussian.leakage import MixtureMarket, check_properties
from tests.support.leakage_helpers import brute_force, posterior_var_dense, random_cov


def mixture_value(problem, mus, covs, tau2, v, a):
    """μ-expected objective from fresh dense solves per Σ and subset (independent of dm_opt)."""
    n = a.shape[0]
    A = list(np.flatnonzero(a))
    I = np.zeros(n)
    I_without = np.zeros(n)
    for mu, S in zip(mus, covs):
        I += mu * (np.diag(S) - posterior_var_dense(S, tau2, A))
        for i in range(n):
            others = [j for j in A if j != i]
            I_without[i] += mu * (S[i, i] - posterior_var_dense(S, tau2, others)[i])
    if problem == "first_best":
        return np.dot(1 - v, I)
    if problem == "decorrelated":
        return np.dot((1 - v) * a, I)
    return np.dot(1 - v, I) + np.dot(v, I_without)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("problem", ["first_best", "equilibrium", "decorrelated"])
def test_mixture_solve_equals_enumeration_of_the_mixture(seed, problem):
    rng = np.random.default_rng(seed)
    n, K = 6, 3
    covs = [random_cov(rng, n) for _ in range(K)]
    mus = rng.dirichlet(np.ones(K))
    tau2 = rng.uniform(0.5, 1.5, n)
    v = rng.uniform(0, 2.5, n)
    m = MixtureMarket(mus, covs, v, tau2)
    r = dm_opt.solve(m, problem, "enumerate", all_optima=True)
    best, masks = brute_force(n, lambda a: mixture_value(problem, mus, covs, tau2, v, a), r.tie_tol)
    assert r.objective == pytest.approx(best, rel=1e-9, abs=1e-12)
    got = sorted(int(np.dot(o.astype(np.int64), 1 << np.arange(n))) for o in r.optima)
    assert got == masks
    if problem == "equilibrium":
        a = r.profile
        # Thm 2 in expectation: p_i = v_i (E I_i(a) − E I_i(a_{−i}, 0)) for sharers
        for i in np.flatnonzero(a):
            b = a.copy()
            b[i] = 0
            gain = sum(mu * (posterior_var_dense(S, tau2, np.flatnonzero(b))[i]
                             - posterior_var_dense(S, tau2, np.flatnonzero(a))[i]) for mu, S in zip(mus, covs))
            assert r.prices[i] == pytest.approx(v[i] * gain, rel=1e-8)


def test_single_component_mixture_is_the_gaussian_market():
    rng = np.random.default_rng(5)
    S = random_cov(rng, 7)
    v = rng.uniform(0, 2, 7)
    g = dm_opt.GaussianMarket(S, v)
    m = MixtureMarket([1.0], [S], v)
    for problem in ("first_best", "equilibrium", "decorrelated"):
        rg, rm = dm_opt.solve(g, problem, "enumerate"), dm_opt.solve(m, problem, "enumerate")
        assert rm.objective == pytest.approx(rg.objective, rel=1e-9)
        assert rm.profile.tolist() == rg.profile.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_thm5_part1_high_value_users_uncorrelated_almost_surely_is_efficient(seed):
    rng = np.random.default_rng(50 + seed)
    n, K = 6, 2
    high = [0, 3]
    v = rng.uniform(0, 1, n)
    v[high] = rng.uniform(1.5, 4, len(high))
    covs = []
    for _ in range(K):
        S = random_cov(rng, n)
        for h in high:   # Σ_hj = 0 for every other user j, in every component
            d = S[h, h]
            S[h, :] = 0
            S[:, h] = 0
            S[h, h] = d
        covs.append(S)
    m = MixtureMarket([0.4, 0.6], covs, v)
    eq = dm_opt.solve(m, "equilibrium", "enumerate", all_optima=True)
    fb = dm_opt.solve(m, "first_best", "enumerate")
    for a in eq.optima:
        assert m.surplus(a) == pytest.approx(fb.objective, rel=1e-9, abs=1e-12)
        assert a[high].sum() == 0 and a.sum() == n - len(high)


def test_mixture_satisfies_properties_with_dependence_from_mu():
    rng = np.random.default_rng(9)
    covs = [random_cov(rng, 5, zero_rows=[1]), random_cov(rng, 5, zero_rows=[1])]
    m = MixtureMarket([0.5, 0.5], covs, np.ones(5))
    dep = m.dependence()
    assert not dep[1].any() and dep[0, 2]
    rep = check_properties(m)
    assert rep.ok and rep.holds[1] is True


@pytest.mark.parametrize("kwargs, field, text", [
    (dict(probabilities=[0.5, 0.4]), "probabilities", "sum to 1"),
    (dict(probabilities=[1.2, -0.2]), "probabilities[1]", ">= 0"),
    (dict(probabilities=[1.0]), "covariances", "one matrix per probability"),
    (dict(covariances=[np.eye(2), [[1.0, 2.0], [2.0, 1.0]]]), "covariances[1]", "positive definite"),
    (dict(covariances=[np.eye(2), np.eye(3)]), "covariances[1]", "same users"),
    (dict(covariances=[np.eye(2), [[1.0, 0.1], [0.3, 1.0]]]), "covariances[1]", "symmetric"),
    (dict(values=[1.0, 1.0, 1.0]), "values", "length 2"),
    (dict(noise_var=[1.0, 0.0]), "noise_var[1]", "> 0"),
])
def test_mixture_validation_names_the_offending_component(kwargs, field, text):
    args = dict(probabilities=[0.5, 0.5], covariances=[np.eye(2), np.eye(2)], values=[1.0, 1.0])
    args.update(kwargs)
    with pytest.raises(dm_opt.InstanceError) as exc:
        MixtureMarket(**args)
    assert exc.value.field == field and text in str(exc.value)


@pytest.mark.parametrize("v_high", [5.0, 20.0])
def test_thm5_part2_high_low_correlation_with_positive_probability_is_inefficient(v_high):
    # user 0 high-value; user 1 low-value and correlated with user 0 only in the first component
    S1 = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]])
    S2 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.3], [0.0, 0.3, 1.0]])
    m = MixtureMarket([0.5, 0.5], [S1, S2], [v_high, 0.2, 0.2])
    eq = dm_opt.solve(m, "equilibrium", "enumerate", all_optima=True)
    fb = dm_opt.solve(m, "first_best", "enumerate")
    assert all(a[1] == 1 and a[2] == 1 for a in eq.optima)      # Lemma 3: low-value users share
    assert fb.profile[1] == 0                                   # the planner keeps user 1's data out
    assert max(m.surplus(a) for a in eq.optima) < fb.objective - 0.05
