"""The Gaussian data market (AMMO): the paper's examples with the paper's numbers, and its structural results."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dm_opt
from dm_opt.core.generators import wishart
from tests.support import naive


def two_users(rho, v):
    return dm_opt.GaussianMarket([[1.0, rho], [rho, 1.0]], [v, v])


# ----------------------------------------------------------------- Example 1
@pytest.mark.parametrize("rho", [0.1, 0.5, 0.8, 0.95])
def test_example1_equilibrium_prices(rho):
    """Example 1 (v = 1): unique equilibrium, both share at p = (2 − ρ²)² / (2(4 − ρ²))."""
    r = dm_opt.solve(two_users(rho, 1.0), "equilibrium", method="enumerate", all_optima=True)
    expected = (2 - rho**2) ** 2 / (2 * (4 - rho**2))
    assert len(r.optima) == 1
    assert r.profile.tolist() == [1, 1]
    np.testing.assert_allclose(r.prices, [expected, expected], rtol=1e-12)


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_figure1_multiplicity_of_user_equilibria(rho):
    """Figure 1: for p1, p2 in [(2−ρ²)²/(2(4−ρ²)), 1/2] both all-0 and all-1 are user equilibria."""
    m = two_users(rho, 1.0)
    lo, hi = (2 - rho**2) ** 2 / (2 * (4 - rho**2)), 0.5
    for p1 in np.linspace(lo + 1e-9, hi - 1e-9, 4):
        for p2 in np.linspace(lo + 1e-9, hi - 1e-9, 4):
            eq = m.user_equilibria([p1, p2], all=True)
            assert eq.least.tolist() == [0, 0] and eq.greatest.tolist() == [1, 1]
            assert {tuple(a) for a in eq.all} == {(0, 0), (1, 1)}
    # just outside the square the equilibrium is unique
    eq = m.user_equilibria([hi + 1e-3, hi + 1e-3], all=True)
    assert [tuple(a) for a in eq.all] == [(1, 1)]
    eq = m.user_equilibria([lo - 1e-3, lo - 1e-3], all=True)
    assert [tuple(a) for a in eq.all] == [(0, 0)]


# ------------------------------------------------------------ Section 3.4
@pytest.mark.parametrize("rho", [0.2, 0.7, 0.85, 0.95])
@pytest.mark.parametrize("v", [0.5, 1.0, 1.3])
def test_section_3_4_total_payments(rho, v):
    """§3.4: both sharing costs v(2−ρ²)²/(4−ρ²); user 1 alone costs v/2; both is cheaper iff ρ² ≥ (7−√17)/4."""
    m = two_users(rho, v)
    both = m.prices([1, 1]).sum()
    one = m.prices([1, 0]).sum()
    assert both == pytest.approx(v * (2 - rho**2) ** 2 / (4 - rho**2), rel=1e-12)
    assert one == pytest.approx(v / 2, rel=1e-12)
    threshold = (7 - math.sqrt(17)) / 4
    assert threshold == pytest.approx(0.71922, abs=1e-5)   # "≈ 0.71" in the paper
    assert (both <= one) == (rho**2 >= threshold)


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_section_3_4_surplus_negative_exactly_between_1_and_threshold(rho):
    """Fig 2: equilibrium surplus > 0 for v < 1, < 0 for v in (1, 4/(2−ρ²)²), and no sharing above."""
    thr = 4 / (2 - rho**2) ** 2
    for v in np.concatenate([np.linspace(0.05, 0.99, 5), np.linspace(1.001, thr * 0.999, 6),
                             np.linspace(thr * 1.001, thr * 3, 4)]):
        r = dm_opt.solve(two_users(rho, v), "equilibrium", method="enumerate")
        if v < 1:
            assert r.profile.tolist() == [1, 1] and r.surplus > 0
        elif v < thr:
            assert r.profile.tolist() == [1, 1] and r.surplus < 0
        else:
            assert r.profile.tolist() == [0, 0] and r.surplus == 0.0
    # the first best never shares when v > 1 (and always when v < 1)
    assert dm_opt.solve(two_users(rho, 1.1), "first_best").profile.tolist() == [0, 0]
    assert dm_opt.solve(two_users(rho, 0.9), "first_best").profile.tolist() == [1, 1]


def test_section_3_4_threshold_is_where_platform_profit_changes_sign():
    """At v = 4/(2−ρ²)² the platform is indifferent between both sharing and nobody (derivation).

    Both sharing: the other's signal leaves posterior variance s = 1 − ρ²/2, her own signal
    brings it to P_ii = s/(s+1), so I = 1/(s+1) and the price is v s²/(s+1) (eq. 5).  Profit
    per user I − p = (1 − v s²)/(s+1) vanishes iff v = 1/s² = 4/(2−ρ²)².  One user alone
    costs v/2 > 1/2 while leaking less than 1/2 + ρ²/2 in total, so it is unprofitable there.
    """
    rho = 0.6
    thr = 4 / (2 - rho**2) ** 2
    m = two_users(rho, thr)
    assert m.platform_profit([1, 1]) == pytest.approx(0.0, abs=1e-12)
    assert m.platform_profit([1, 0]) < 0 and m.platform_profit([0, 1]) < 0


# ------------------------------------------------------ three-user example
def test_three_user_example_equilibrium_set_and_prices():
    """v = 1.18, correlations 0.3: every profile with exactly two sharers is an equilibrium (three of them)."""
    S = np.full((3, 3), 0.3) + 0.7 * np.eye(3)
    m = dm_opt.GaussianMarket(S, [1.18] * 3)
    r = dm_opt.solve(m, "equilibrium", method="enumerate", all_optima=True)
    assert {tuple(a) for a in r.optima} == {(1, 1, 0), (1, 0, 1), (0, 1, 1)}
    # same platform payoff at each, and the Thm 2 prices from the closed form of eq. (5)
    profits = [m.platform_profit(a) for a in r.optima]
    assert max(profits) - min(profits) < 1e-12
    assert r.objective == pytest.approx(profits[0], abs=1e-12)
    # closed form: other sharer alone leaves s = 1 − 0.3²/2 about the sharer; price = v s²/(s + 1)
    s = 1 - 0.09 / 2
    np.testing.assert_allclose(sorted(r.prices), [0.0, 1.18 * s**2 / (s + 1), 1.18 * s**2 / (s + 1)], rtol=1e-12)
    # and the equilibrium payoff beats every other profile strictly
    others = [a for a in naive.subsets(3) if a.sum() != 2]
    assert all(m.evaluate("equilibrium", a) < r.objective - 1e-6 for a in others)


# --------------------------------------------------- leakage fundamentals
def test_posterior_precision_form_equals_covariance_form():
    """P(a) = (Σ⁻¹ + T diag a)⁻¹ (docs/spec.md §1.1) equals the Schur-complement form we evaluate."""
    rng = np.random.default_rng(3)
    S = wishart(7, 2) * 1.7
    tau2 = rng.uniform(0.5, 2.0, 7)
    m = dm_opt.GaussianMarket(S, np.ones(7), tau2)
    for a in naive.subsets(7):
        P = np.linalg.inv(np.linalg.inv(S) + np.diag(a / tau2))
        np.testing.assert_allclose(m.posterior_cov(a), P, atol=1e-11)
        np.testing.assert_allclose(m.leakage(a), np.diag(S) - np.diag(P), atol=1e-11)


def test_theorem2_decomposition_and_slides_formula():
    """Thm 2 eq. (5) and I_i(0, a−i) = d_iᵀ (I + D_i)⁻¹ d_i, with fresh solves per subset (τ² = 1)."""
    S = wishart(6, 11)
    m = dm_opt.GaussianMarket(S, np.ones(6))
    for a in naive.subsets(6):
        A = np.flatnonzero(a)
        for i in A:
            others = [j for j in A if j != i]
            D = S[np.ix_(others, others)]
            d = S[i, others]
            I0 = float(d @ np.linalg.solve(np.eye(len(others)) + D, d)) if others else 0.0
            s2 = S[i, i]
            I1 = m.leakage(a)[i]
            assert I1 == pytest.approx(I0 + (s2 - I0) ** 2 / ((s2 + 1) - I0), abs=1e-12)
            assert m.leakage_without(a)[i] == pytest.approx(I0, abs=1e-12)
            assert m.prices(a)[i] == pytest.approx((s2 - I0) ** 2 / ((s2 + 1) - I0), abs=1e-12)


# ------------------------------------------------- structural (hypothesis)
@st.composite
def markets(draw, max_n=7):
    n = draw(st.integers(1, max_n))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, n + draw(st.integers(0, 3))))
    S = G @ G.T / n + draw(st.floats(1e-3, 1.0)) * np.eye(n)
    v = rng.uniform(0, draw(st.floats(0.5, 4.0)), n)
    tau2 = rng.uniform(0.2, 3.0, n)
    return dm_opt.GaussianMarket(S, v, tau2)


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(markets(), st.data())
def test_lemma1_monotone_and_submodular(m, data):
    """Lemma 1: I(a) ≥ I(a') for a ≥ a'; I_i(1,a−i) − I_i(0,a−i) decreasing in a−i."""
    n = m.n
    a_small = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int8)
    extra = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int8)
    a_big = np.maximum(a_small, extra)
    assert np.all(m.leakage(a_big) >= m.leakage(a_small) - 1e-12)
    for i in range(n):
        lo, hi = a_small.copy(), a_big.copy()
        lo[i] = hi[i] = 1
        assert m.own_leakage(lo)[i] >= m.own_leakage(hi)[i] - 1e-12
    # Prop 2: prices nonincreasing in the sharing set
    p_lo, p_hi = m.prices(np.where(a_small == 1, 1, 0)), m.prices(a_big)
    assert np.all(p_hi[a_small == 1] <= p_lo[a_small == 1] + 1e-12)


@FAST
@given(markets())
def test_lemma3_low_value_users_share_in_every_equilibrium(m):
    r = dm_opt.solve(m, "equilibrium", method="enumerate", all_optima=True)
    low = m.values < 1 - 1e-9
    for a in r.optima:
        assert np.all(a[low] == 1)


@FAST
@given(markets())
def test_theorem6_decorrelation_improves_surplus(m):
    """Thm 6: surplus(ã^E) ≥ max(surplus(a^E), 0) (surplus after de-correlation uses Ĩ of Lemma 5)."""
    eq = dm_opt.solve(m, "equilibrium", method="enumerate")
    dec = dm_opt.solve(m, "decorrelated", method="enumerate")
    assert dec.surplus >= max(eq.surplus, 0.0) - 1e-10
    # Thm 6 prices: v_i I_i(ã) for sharers
    np.testing.assert_allclose(dec.prices, np.where(dec.profile == 1, m.values * m.leakage(dec.profile), 0))


@FAST
@given(markets())
def test_proposition3_bound(m):
    """Prop 3: surplus(a^E) ≤ Σ_l (1−v) I_i(V) − Σ_h (v−1) I_i(V^l)."""
    eq = dm_opt.solve(m, "equilibrium", method="enumerate")
    low = (m.values <= 1).astype(np.int8)
    all_ = np.ones(m.n, dtype=np.int8)
    bound = np.sum(((1 - m.values) * m.leakage(all_))[low == 1]) \
        - np.sum(((m.values - 1) * m.leakage(low))[low == 0])
    assert eq.surplus <= bound + 1e-10


def _prop4_condition(m):
    low = m.values <= 1
    S = m.cov
    if not low.any():
        return False
    norm1 = np.max(np.sum(np.abs(S[np.ix_(low, low)]), axis=1))
    lhs = sum((m.values[i] - 1) * np.sum(S[i, low] ** 2) / (norm1 + 1) for i in np.flatnonzero(~low))
    rhs = np.sum(np.diag(S)[low] * (1 - m.values[low]))
    return lhs > rhs


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 7), st.integers(0, 2**31 - 1), st.floats(0.3, 0.95), st.floats(2.0, 30.0))
def test_proposition4_condition_implies_negative_surplus(n, seed, rho, vh):
    """Prop 4: condition (7) ⇒ equilibrium surplus < 0 (instances built so (7) often holds)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, n))                  # number of low-value users
    S = (1 - rho) * np.eye(n) + rho * np.ones((n, n))
    v = np.concatenate([rng.uniform(0.8, 1.0, k), rng.uniform(vh, 2 * vh, n - k)])
    m = dm_opt.GaussianMarket(S, v)
    if _prop4_condition(m):
        assert dm_opt.solve(m, "equilibrium", method="enumerate").surplus < 0


def test_proposition4_condition_holds_on_example2_like_instance():
    """The (7) check is not vacuous: Example 2's structure with large v_h satisfies it."""
    from dm_opt.core.generators import block
    S = block(20, sizes=[10, 10], within=0.05, across=0.14)
    m = dm_opt.GaussianMarket(S, [0.9] * 10 + [40.0] * 10)
    assert _prop4_condition(m)
    assert dm_opt.solve(m, "equilibrium").surplus < 0


# --------------------------------------------------------- user equilibria
@FAST
@given(markets(max_n=6), st.data())
def test_user_equilibria_lattice(m, data):
    """Lemma 2: least/greatest from best-response iteration are the meet/join of the enumerated set."""
    p = np.array(data.draw(st.lists(st.floats(0, 2), min_size=m.n, max_size=m.n)))
    eq = m.user_equilibria(p, all=True)
    assert len(eq.all) >= 1
    arr = np.array(eq.all)
    assert tuple(eq.least) in {tuple(a) for a in eq.all}
    assert tuple(eq.greatest) in {tuple(a) for a in eq.all}
    assert np.array_equal(arr.min(axis=0), eq.least)
    assert np.array_equal(arr.max(axis=0), eq.greatest)
    # each listed profile really is a user equilibrium (definition 1, fresh solves)
    for a in eq.all:
        A = np.flatnonzero(a)
        for i in range(m.n):
            with_i = naive.leakage(m.cov, m.noise_var, sorted(set(A) | {i}))[i]
            without_i = naive.leakage(m.cov, m.noise_var, [j for j in A if j != i])[i]
            gain = p[i] - m.values[i] * (with_i - without_i)
            assert (gain >= -1e-9) if a[i] else (gain <= 1e-9)


def test_equilibrium_profile_is_user_equilibrium_at_its_prices():
    """Thm 1: a^E ∈ 𝒜(p^E), and the platform cannot do better at any price (checked on a grid of profiles)."""
    m = dm_opt.GaussianMarket(wishart(6, 4), np.linspace(0.3, 2.5, 6))
    r = dm_opt.solve(m, "equilibrium", method="enumerate")
    eq = m.user_equilibria(r.prices, all=True)
    assert tuple(r.profile) in {tuple(a) for a in eq.all}
    assert m.platform_profit(r.profile, r.prices) == pytest.approx(r.objective, abs=1e-12)
    for a in naive.subsets(6):
        assert m.platform_profit(a) <= r.objective + 1e-12
    # user payoffs at the least prices: sharers indifferent, u_i = −v_i I_i(a−i, 0)
    np.testing.assert_allclose(m.user_payoffs(r.profile), -m.values * m.leakage_without(r.profile), atol=1e-12)


def test_user_equilibria_size_limit():
    m = dm_opt.GaussianMarket(np.eye(17), np.ones(17))
    eq = m.user_equilibria(np.zeros(17))
    assert eq.least.sum() == 0 and eq.all is None
    with pytest.raises(dm_opt.LimitExceeded):
        m.user_equilibria(np.zeros(17), all=True)
