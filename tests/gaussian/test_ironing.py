"""Myerson ironing when Assumption 2 fails (AMMO App. B, Thm B-2 with ironed virtual values).

Independent checks: the discrete ironed values are the weighted isotonic regression (pool
adjacent violators) of the raw ones; the ironed mechanism's expected payoff equals the best
*incentive-compatible* deterministic mechanism found by brute force over every allocation rule
(n = 2, three types each) and, for one user, the best posted price; payments agree with a
naive quadrature of ``∫ A_i``; incentive compatibility (in the rent, eq. B-17) holds on every
report vector / fine grids, while the un-ironed pointwise allocation violates it.
"""

import itertools

import numpy as np
import pytest
from scipy import integrate, optimize

import dm_opt
from dm_opt.gaussian import valuations as V


def pav(y, w):
    """Weighted isotonic regression (nondecreasing) by pool adjacent violators."""
    blocks = []                                  # [value, weight, count]
    for yi, wi in zip(y, w, strict=True):
        blocks.append([yi, wi, 1])
        while len(blocks) >= 2 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([[v] * c for v, _, c in blocks])


def bimodal():
    """0.45 U[0, .4] + 0.1 U[0, 1.6] + 0.45 U[.6, .9]: Φ crosses 1 three times (0.8 → 8 → 0.91 → 1.5)."""
    return V.mixture([V.uniform(0, .4), V.uniform(0, 1.6), V.uniform(.6, .9)], [.45, .1, .45])


# ------------------------------------------------------------------ discrete (exact)
def test_discrete_ironing_is_weighted_isotonic_regression():
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(40):
        K = int(rng.integers(2, 8))
        values = np.sort(rng.choice(np.arange(1, 60), K, replace=False)) / 20
        probs = rng.dirichlet(np.ones(K) * 0.5)
        d = V.discrete(values, probs)
        ironed = V.iron_discrete(values, probs)
        assert np.all(np.diff(ironed) >= -1e-12)
        np.testing.assert_allclose(ironed, pav(d.phi_table, d.probs), rtol=1e-12, atol=1e-12)
        # ∫ Φ dq = ∫ Φ̄ dq on every ironed block, and regular tables are unchanged
        assert np.dot(ironed, d.probs) == pytest.approx(np.dot(d.phi_table, d.probs), rel=1e-12)
        if np.all(np.diff(d.phi_table) >= 0):
            np.testing.assert_allclose(ironed, d.phi_table, rtol=1e-12)
        else:
            found += 1
    assert found >= 10
    ir = V.iron(V.discrete([0.2, 0.5, 1.0, 1.3], [0.4, 0.1, 0.1, 0.4]))
    np.testing.assert_allclose(ir.raw_phi_table, [0.2, 1.7, 3.5, 1.75])
    np.testing.assert_allclose(ir.phi_table, [0.2, 1.7, 2.1, 2.1])    # (1·1.3 − .5·.5) / .5
    assert ir.ironed_intervals == [(1.0, 1.3)]


def _two_user_market():
    m = dm_opt.GaussianMarket([[1.0, 0.6], [0.6, 1.2]], [0.2, 0.5])
    nonregular = V.discrete([0.2, 0.6, 0.7], [0.45, 0.1, 0.45])          # Φ = 0.2, 2.4, 0.822: fails
    regular = V.discrete([0.1, 0.5, 0.9], [0.3, 0.4, 0.3])
    return m, nonregular, regular


def test_discrete_ironed_mechanism_is_the_best_ic_mechanism():
    m, bad, good = _two_user_market()
    with pytest.warns(dm_opt.AssumptionWarning, match="iron"):
        vm = V.ValuationMarket(m, [bad, good])
    with pytest.raises(dm_opt.ProblemError, match="ironed_market"):
        V.mechanism(vm, [0.2, 0.5])                 # refuses without ironing (user 0 shares)
    iv = V.ironed_market(vm)
    assert not iv.assumption2_failures
    assert isinstance(iv.valuations[0], V.IronedDiscreteValuation) and iv.valuations[1] is good
    exp = V.expected_platform_payoff(iv)
    assert exp.method == "exact"
    # revenue identity: E[Σ I − Σ p] over every report vector equals E[ironed virtual objective]
    types = [d.values for d in vm.valuations]
    probs = [d.probs for d in vm.valuations]
    realised = 0.0
    for k in itertools.product(range(3), range(3)):
        v = np.array([types[0][k[0]], types[1][k[1]]])
        out = V.mechanism(iv, v)
        realised += probs[0][k[0]] * probs[1][k[1]] * out.platform_payoff
    assert realised == pytest.approx(exp.mean, abs=1e-12)
    # IC in the rent at every report vector, for every user and every misreport
    for i in range(2):
        for k in itertools.product(range(3), range(3)):
            v = np.array([types[0][k[0]], types[1][k[1]]])
            assert V.ic_violations(iv, i, v).rent_gain <= 1e-12
    # brute force over every deterministic allocation rule (4^9): the best IC one pays exactly that
    prof = np.array(list(itertools.product([0, 1], repeat=2)), dtype=np.int8)      # a ∈ {0,1}²
    Ia = np.array([m.leakage(a) for a in prof])                                     # (4, 2)
    I0 = np.array([[m.leakage(np.where(np.arange(2) == i, 0, a))[i] for i in range(2)] for a in prof])
    Aa = Ia - I0                                                                    # A_i(a)
    raw_phi = [d.phi_table for d in vm.valuations]
    cells = list(itertools.product(range(3), range(3)))
    w = np.array([[probs[0][a] * probs[1][b] * (Ia[r].sum() - raw_phi[0][a] * Aa[r, 0] - raw_phi[1][b] * Aa[r, 1])
                   for r in range(4)] for a, b in cells])                           # (9, 4)
    rules = np.array(list(itertools.product(range(4), repeat=9)), dtype=np.int8)   # (262144, 9)
    value = w[np.arange(9)[None, :], rules].sum(axis=1)
    A = Aa[rules]                                                                   # (R, 9, 2)
    A = A.reshape(-1, 3, 3, 2)                                                      # [rule, type0, type1, user]
    mono = np.all(np.diff(A[..., 0], axis=1) <= 1e-15, axis=(1, 2)) & np.all(np.diff(A[..., 1], axis=2) <= 1e-15,
                                                                              axis=(1, 2))
    best_ic = value[mono].max()
    assert exp.mean == pytest.approx(best_ic, abs=1e-12)
    assert value.max() > best_ic + 1e-3            # the unconstrained (pointwise raw Φ) rule is not IC


def test_unironed_pointwise_allocation_violates_ic():
    """The raw-Φ allocation with the B-18 payments: a type gains by misreporting (independent sums)."""
    _, bad, _ = _two_user_market()
    g = dm_opt.GaussianMarket([[1.0]], [0.2])
    share = float(g.leakage([1])[0])
    vals, raw = bad.values, bad.phi_table                 # raw Φ = 0.2, 2.4, 0.822
    # "share iff Φ ≤ 1.5" (the allocation when the others make the threshold 1.5) shares at the
    # first and third type but not the second: not monotone
    A = np.array([share if r <= 1.5 else 0.0 for r in raw])
    assert A.tolist() == [share, 0.0, share]
    pay = np.array([vals[k] * A[k] + np.dot(np.diff(vals)[k:], A[k + 1:]) for k in range(3)])
    rent = lambda t, k: pay[k] - vals[t] * A[k]           # noqa: E731
    assert max(rent(t, k) - rent(t, t) for t in range(3) for k in range(3)) > 0.01   # type 3 claims type 2
    ir = V.iron(bad)
    A2 = np.array([share if r <= 1.5 else 0.0 for r in ir.phi_table])
    assert np.all(np.diff(A2) <= 0)                       # monotone after ironing
    pay2 = np.array([vals[k] * A2[k] + np.dot(np.diff(vals)[k:], A2[k + 1:]) for k in range(3)])
    for t in range(3):
        assert max(pay2[k] - vals[t] * A2[k] for k in range(3)) <= pay2[t] - vals[t] * A2[t] + 1e-15


# ------------------------------------------------------------------ continuous (bimodal mixtures)
def test_continuous_ironing_intervals_and_monotone_phi():
    d = bimodal()
    assert V.check_assumption2([d], warn=False)
    di = V.iron(d)
    assert not V.check_assumption2([di], warn=False)
    assert len(di.intervals) == 1 and max(di.residuals) <= 1e-9
    (x1, x2, phibar), = di.intervals
    # ∫_{q1}^{q2} Φ dq = C(q2) − C(q1) = φ̄ (q2 − q1): the chord of C, with C ≥ chord inside
    F = d.dist.cdf
    assert phibar == pytest.approx((F(x2) * x2 - F(x1) * x1) / (F(x2) - F(x1)), rel=1e-12)
    xs = np.linspace(x1, x2, 2001)
    assert np.all(F(xs) * xs >= F(x1) * x1 + phibar * (F(xs) - F(x1)) - 1e-12)
    # ∫ Φ dF over the interval equals φ̄ (F(x2) − F(x1)) (independent quadrature, split at the density jumps)
    pts = sorted({x1, x2, 0.4, 0.6, 0.9} & set(np.clip([x1, x2, 0.4, 0.6, 0.9], x1, x2)))
    tot = sum(integrate.quad(lambda x: float(d.virtual_value(x)) * float(d.dist.pdf(x)), a, b, epsabs=1e-13)[0]
              for a, b in zip(pts[:-1], pts[1:], strict=True))
    assert tot == pytest.approx(phibar * (F(x2) - F(x1)), rel=1e-8)


def test_continuous_one_user_ironed_payoff_is_the_best_posted_price():
    d = bimodal()
    g = dm_opt.GaussianMarket([[1.0]], [0.3])
    with pytest.warns(dm_opt.AssumptionWarning):
        vm = V.ValuationMarket(g, [d])
    iv = V.ironed_market(vm)
    di = iv.valuations[0]
    s = float(g.leakage([1])[0])
    # ironed optimum: E[max(0, 1 − Φ̄(v)) s]  (one user shares iff Φ̄ ≤ 1)
    x_star = di.inverse_virtual_value(1.0)
    brk = sorted({0.0, 0.4, 0.6, 0.9, x_star} | {x for iv_ in di.intervals for x in iv_[:2]})
    brk = [b for b in brk if b <= x_star]
    ironed = sum(integrate.quad(lambda x: (1 - float(di.virtual_value(x))) * float(d.dist.pdf(x)), a, b,
                                epsabs=1e-13)[0] for a, b in zip(brk[:-1], brk[1:], strict=True)) * s
    # independent: the best posted price p = x s (one buyer: posted prices are optimal)
    xs = np.linspace(0, 1.6, 160001)
    post = s * np.max(d.dist.cdf(xs) * (1 - xs))
    k = int(np.argmax(d.dist.cdf(xs) * (1 - xs)))
    res = optimize.minimize_scalar(lambda x: -d.dist.cdf(x) * (1 - x), bounds=(xs[max(k - 1, 0)], xs[k + 1]),
                                   method="bounded", options={"xatol": 1e-12})
    post = max(post, -res.fun * s)
    assert ironed == pytest.approx(post, abs=1e-9)
    # the un-ironed pointwise rule "share iff Φ ≤ 1" promises more than any IC mechanism can pay
    raw = integrate.quad(lambda x: max(0.0, 1 - float(d.virtual_value(x))) * float(d.dist.pdf(x)), 0, 1.6,
                         points=[0.4, 0.6, 0.9], limit=200)[0] * s
    assert raw > post + 1e-3
    # the mechanism at a report: payment = ∫ A + v A computed from the exact steps; IC in the rent
    out = V.mechanism(iv, [0.3])
    assert out.profile.tolist() == [1]
    assert out.payments[0] == pytest.approx(x_star * s, abs=1e-12)        # posted price x* s
    grid = np.concatenate([np.linspace(0, 1.6, 9), [x_star - 1e-7, x_star + 1e-7]])
    for v in (0.3, 0.7):
        assert V.ic_violations(iv, 0, [v], grid=grid).rent_gain <= 1e-12


def naive_payment(m, phis, i, v, di, h=2e-5):
    """∫_{v_i}^{max} A_i dx + v_i A_i by the midpoint rule, the allocation solved by enumerating the
    2^n profiles at every point; returns (payment, error bound = (jumps + 2) · h · max A)."""
    n = m.n
    prof = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int8)
    Ia = np.array([m.leakage(a) for a in prof])
    I0 = np.array([[m.leakage(np.where(np.arange(n) == j, 0, a))[j] for j in range(n)] for a in prof])

    def A(xs):
        ph = np.tile(phis, (xs.size, 1))
        ph[:, i] = di.virtual_value(xs)
        obj = ((1 - ph)[:, None, :] * Ia[None] + ph[:, None, :] * I0[None]).sum(axis=2)   # (X, profiles)
        r = np.argmax(obj >= obj.max(axis=1, keepdims=True) - 1e-12, axis=1)
        return Ia[r, i] - I0[r, i]

    xs = np.arange(v[i] + h / 2, di.upper, h)
    vals = A(xs)
    jumps = int(np.sum(np.abs(np.diff(vals)) > 0)) + 2
    return float(vals.sum() * h + v[i] * A(np.array([v[i]]))[0]), jumps * h * float(Ia.max())


@pytest.mark.slow
def test_continuous_two_users_payments_ic_and_expected_payoff():
    m = dm_opt.GaussianMarket([[1.0, 0.7], [0.7, 1.0]], [0.3, 0.5])
    with pytest.warns(dm_opt.AssumptionWarning):
        vm = V.ValuationMarket(m, [bimodal(), V.uniform(0, 1.2)])
    iv = V.ironed_market(vm)
    for v in ([0.3, 0.5], [0.65, 0.2], [0.1, 0.9]):
        v = np.array(v)
        out = V.mechanism(iv, v)
        phis = iv.virtual_values(v)
        for i in np.flatnonzero(out.profile):
            ref, err = naive_payment(m, phis, int(i), v, iv.valuations[i])
            assert abs(out.payments[i] - ref) <= err
        for i in range(2):
            grid = np.linspace(0, iv.valuations[i].upper, 11)
            assert V.ic_violations(iv, i, v, grid=grid).rent_gain <= 1e-12
    # E[Σ I − Σ p] (Monte Carlo over the same seeded draws) agrees with E[ironed virtual objective]
    exp = V.expected_platform_payoff(iv, samples=100, seed=3)
    rng = np.random.default_rng(3)
    draws = np.column_stack([d.sample(rng, 100) for d in iv.valuations])
    real = np.array([V.mechanism(iv, v).platform_payoff for v in draws])
    diff_se = np.sqrt(exp.std_error ** 2 + real.std(ddof=1) ** 2 / real.size)
    assert abs(real.mean() - exp.mean) <= 4 * diff_se


# ------------------------------------------------------------------ limits
def test_ironing_refuses_cleanly():
    from scipy import stats

    with pytest.raises(dm_opt.ProblemError, match="bounded support"):
        V.iron(stats.expon())
    gap = V.mixture([V.uniform(0, .4), V.uniform(1.2, 1.6)], [.5, .5])
    with pytest.raises(dm_opt.ProblemError, match="valuation: ironing needs a density > 0"):
        V.iron(gap)
    with pytest.raises(dm_opt.InstanceError, match="weights"):
        V.mixture([V.uniform(0, 1)], [0.5])
    # a regular distribution is left unchanged
    u = V.iron(V.uniform(0, 2))
    assert u.intervals == [] and float(u.virtual_value(1.3)) == pytest.approx(2.6)
