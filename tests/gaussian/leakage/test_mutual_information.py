import numpy as np
import pytest

import dm_opt
from dm_opt.gaussian.leakage import MutualInformationMarket, check_properties
from tests.support.leakage_helpers import brute_force, posterior_var_dense, profiles, random_cov


def mi_by_determinants(S, tau2, i, A):
    """I(X_i; S_A) = ½ log(det Var(X_i) det Var(S_A) / det Var(X_i, S_A)) — entropy form, independent of P."""
    A = list(A)
    if not A:
        return 0.0
    CA = S[np.ix_(A, A)] + np.diag(tau2[A])
    joint = np.block([[S[i:i + 1, i:i + 1], S[i:i + 1, A]], [S[A, i:i + 1], CA]])
    return 0.5 * (np.log(S[i, i]) + np.linalg.slogdet(CA)[1] - np.linalg.slogdet(joint)[1])


@pytest.mark.parametrize("seed", range(4))
def test_mi_matches_entropy_formula_and_own_term(seed):
    rng = np.random.default_rng(seed)
    n = 5
    S = random_cov(rng, n)
    tau2 = rng.uniform(0.3, 2.0, n)
    m = MutualInformationMarket(S, rng.uniform(0, 2, n), tau2)
    for _mask, a in profiles(n):
        A = np.flatnonzero(a)
        ref = np.array([mi_by_determinants(S, tau2, i, A) for i in range(n)])
        np.testing.assert_allclose(m.leakage(a), ref, rtol=1e-9, atol=1e-12)
        own = m.own_leakage(a)
        for i in range(n):
            if a[i]:
                without = [j for j in A if j != i]
                assert own[i] == pytest.approx(ref[i] - mi_by_determinants(S, tau2, i, without), rel=1e-8, abs=1e-12)
            else:
                assert own[i] == 0.0
    # the compiled block walk agrees with the per-profile oracle
    leak, own = m.leakage_block(0, 1 << n)
    for mask, a in profiles(n):
        np.testing.assert_allclose(leak[mask], m.leakage(a), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(own[mask], m.own_leakage(a), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_mi_satisfies_properties_1_to_4(seed):
    rng = np.random.default_rng(100 + seed)
    n = 6
    S = random_cov(rng, n, zero_rows=[seed % n])   # one independent user makes Property 1 non-vacuous
    m = MutualInformationMarket(S, rng.uniform(0, 2, n), rng.uniform(0.2, 2.0, n))
    rep = check_properties(m)
    assert rep.ok and all(rep.holds[p] is True for p in (1, 2, 3, 4)), str(rep)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("problem", ["first_best", "equilibrium", "decorrelated"])
def test_mi_solve_equals_brute_force(seed, problem):
    rng = np.random.default_rng(200 + seed)
    n = 6
    S = random_cov(rng, n)
    tau2 = np.ones(n)
    v = rng.uniform(0, 2.5, n)
    m = MutualInformationMarket(S, v)

    def value(a):
        A = np.flatnonzero(a)
        x = posterior_var_dense(S, tau2, A)
        I = 0.5 * np.log(np.diag(S) / x)
        if problem == "first_best":
            return np.dot(1 - v, I)
        if problem == "decorrelated":
            return np.dot((1 - v) * a, I)
        without = np.array([0.5 * np.log(S[i, i] / posterior_var_dense(S, tau2, [j for j in A if j != i])[i])
                            for i in range(n)])
        return np.dot(1 - v, I) + np.dot(v, np.where(a == 1, without, I))

    r = dm_opt.solve(m, problem, "enumerate", all_optima=True)
    best, masks = brute_force(n, value, r.tie_tol)
    assert r.objective == pytest.approx(best, rel=1e-9, abs=1e-12)
    got = sorted(int(np.dot(o.astype(np.int64), 1 << np.arange(n))) for o in r.optima)
    assert got == masks
    if problem == "equilibrium":
        np.testing.assert_allclose(r.prices, v * m.own_leakage(r.profile))


def test_mi_rejects_bad_covariance():
    with pytest.raises(dm_opt.InstanceError, match="cov"):
        MutualInformationMarket([[1.0, 2.0], [2.0, 1.0]], [1, 1])


def test_unaligned_blocks_fall_back_to_per_profile_walks():
    rng = np.random.default_rng(8)
    m = MutualInformationMarket(random_cov(rng, 5), np.ones(5))
    leak, own = m.leakage_block(3, 5)      # not a power-of-two aligned block
    for r, mask in enumerate(range(3, 8)):
        a = ((mask >> np.arange(5)) & 1).astype(np.int8)
        np.testing.assert_allclose(leak[r], m.leakage(a), rtol=1e-10)
        np.testing.assert_allclose(own[r], m.own_leakage(a), rtol=1e-10, atol=1e-14)
