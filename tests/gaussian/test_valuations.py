"""Unknown valuations (AMMO §5.2, Appendix B): virtual values, Thm B-2 mechanism, Prop B-1/B-2, Lemma 3 analogue.

References are independent: ``tests/support/naive.py`` (fresh dense solves per subset) for every optimisation,
closed-form virtual values, and the exact upper envelope of all 2^n lines for the payment integrals.
"""

import itertools
import json
import math
import warnings

import numpy as np
import pytest
from scipy import optimize, stats

import dm_opt
from dm_opt.core.generators import wishart
from dm_opt.core.result import Result, SolutionStatus, Termination, check_protocol
from dm_opt.gaussian import parametric as PM
from dm_opt.gaussian import valuations as V
from tests.support import naive
from tests.support.limits_helpers import Budget


def market(n, seed, values, df=None):
    return dm_opt.GaussianMarket(wishart(n, seed, df=df or n), values)


def naive_virtual_best(m, phi):
    """max_a Σ I − Σ_A Φ g by brute force = naive 'equilibrium' objective with v := Φ."""
    return naive.brute_force(m.cov, m.noise_var, phi, "equilibrium")


def naive_lines(m, phi, i):
    """All 2^n lines b_a − φ s_a of user i's envelope, from naive leakage."""
    lines = []
    for a in naive.subsets(m.n):
        A = list(np.flatnonzero(a))
        I = naive.leakage(m.cov, m.noise_var, A)
        own = np.array([I[j] - naive.leakage(m.cov, m.noise_var, [k for k in A if k != j])[j] if a[j] else 0.0
                        for j in range(m.n)])
        b = I.sum() - sum(phi[j] * own[j] for j in range(m.n) if j != i)
        lines.append((b, own[i]))
    return lines


def naive_integral(m, phi, i, x_lo, x_hi, Phi, Phi_inv):
    """∫_{x_lo}^{x_hi} A_i(x) dx from the exact envelope of all lines (candidate breakpoints = pairwise
    intersections; slope on each sub-interval by direct max)."""
    lines = naive_lines(m, phi, i)
    p_lo, p_hi = Phi(x_lo), Phi(x_hi)
    cands = {p_lo, p_hi}
    for (b1, s1), (b2, s2) in itertools.combinations(lines, 2):
        if abs(s1 - s2) > 1e-14:
            t = (b1 - b2) / (s1 - s2)
            if p_lo < t < p_hi:
                cands.add(t)
    cands = sorted(cands)
    total = 0.0
    for lo, hi in zip(cands[:-1], cands[1:]):
        mid = 0.5 * (lo + hi)
        b, s = max(lines, key=lambda l: l[0] - mid * l[1])
        total += s * (Phi_inv(hi) - Phi_inv(lo))
    return total


# ----------------------------------------------------------------- virtual values / Assumption 2
def test_uniform_and_truncexp_virtual_values_closed_form():
    u = V.uniform(0.5, 2.0)
    x = np.linspace(0.5, 2.0, 7)
    assert np.allclose(u.virtual_value(x), 2 * x - 0.5, rtol=1e-13)
    te = V.truncated_exponential(scale=0.5, upper=2.0)
    assert np.allclose(te.virtual_value(x), x + 0.5 * np.expm1(x / 0.5), rtol=1e-12)
    for phi in (0.7, 1.3, 3.0):
        assert abs(u.virtual_value(u.inverse_virtual_value(phi)) - phi) < 1e-13


def test_discrete_virtual_value_formula_and_revenue_identity():
    vals, probs = np.array([0.2, 0.5, 1.1]), np.array([0.3, 0.5, 0.2])
    d = V.discrete(vals, probs)
    expect = [0.2, 0.5 + 0.3 * 0.3 / 0.5, 1.1 + 0.6 * 0.8 / 0.2]
    assert np.allclose(d.phi_table, expect, rtol=1e-14)
    # identity behind the formula: for any nonincreasing A, E[v A + rent] = E[Φ A] with rents from binding upward IC
    rng = np.random.default_rng(0)
    for _ in range(20):
        A = np.sort(rng.uniform(0, 1, 3))[::-1]
        rents = np.array([sum((vals[m] - vals[m - 1]) * A[m] for m in range(k + 1, 3)) for k in range(3)])
        assert math.isclose(np.dot(probs, vals * A + rents), np.dot(probs, d.phi_table * A), rel_tol=1e-12)


def test_assumption2_warning_names_user_and_place():
    bad = V.discrete([0.0, 1.0, 1.1], [0.8, 0.1, 0.1])        # Φ = 0, 9, 2: decreasing
    assert np.allclose(bad.phi_table, [0.0, 9.0, 2.0])
    with pytest.warns(V.AssumptionWarning, match=r"user 1 .*decreases from Φ\(1\) = 9"):
        vm = V.ValuationMarket(market(2, 0, [0.5, 0.0]), [V.uniform(0, 1), bad])
    assert len(vm.assumption2_failures) == 1
    with pytest.warns(V.AssumptionWarning, match="user 0"):
        V.check_assumption2([V.ContinuousValuation(stats.beta(5, 0.3))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert V.check_assumption2([V.uniform(0, 1), V.truncated_exponential(1.0, 3.0),
                                    V.discrete([0, 1], [0.5, 0.5])]) == []


# ----------------------------------------------------------------- Thm B-2: allocation and payments
@pytest.mark.parametrize("seed", range(4))
def test_allocation_is_naive_virtual_equilibrium_and_lemma3_analogue(seed):
    rng = np.random.default_rng(seed)
    n = 4
    m = market(n, seed, rng.uniform(0, 1.2, n))
    vm = V.ValuationMarket(m, [V.uniform(0, 1.2)] * n)
    out = V.mechanism(vm)
    phi = 2 * m.values
    best, optima = naive_virtual_best(m, phi)
    assert math.isclose(out.virtual_objective, best, rel_tol=1e-9, abs_tol=1e-12)
    assert any(np.array_equal(out.profile, o) for o in optima)
    assert np.all(out.profile[phi <= 1] == 1)                # Lemma 3 analogue: Φ_i(v_i) ≤ 1 ⇒ shares
    assert np.all(out.rents >= -1e-12)                        # information rents are nonnegative
    assert np.all(out.payments[out.profile == 0] == 0)


@pytest.mark.parametrize("seed", range(3))
def test_payments_match_exact_envelope_oracle(seed):
    rng = np.random.default_rng(10 + seed)
    n = 3
    m = market(n, seed + 5, rng.uniform(0, 0.8, n))
    te = V.truncated_exponential(scale=0.6, upper=2.0)
    vm = V.ValuationMarket(m, [V.uniform(0, 2.0), te, V.uniform(0, 2.0)])
    out = V.mechanism(vm)
    phi = out.virtual_values
    Phis = [lambda x: 2 * x, lambda x: x + 0.6 * np.expm1(x / 0.6), lambda x: 2 * x]
    for i in range(n):
        if out.profile[i] == 0:
            continue
        Phi = Phis[i]
        Phi_inv = (lambda p: p / 2) if i != 1 else \
            (lambda p, Phi=Phi: optimize.brentq(lambda x: Phi(x) - p, 0, 2.0, xtol=1e-15))
        integral = naive_integral(m, phi, i, m.values[i], 2.0, Phi, Phi_inv)
        assert math.isclose(out.payments[i], integral + m.values[i] * out.allocation[i], rel_tol=1e-9, abs_tol=1e-12)


def test_uniform_payment_envelope_identity():
    """Φ(x) = 2x ⇒ ∫ A dx = (F(Φ(v)) − F(Φ(v_max))) / 2 with F the optimal virtual objective (envelope theorem)."""
    m = market(5, 3, [0.3, 0.6, 0.9, 0.5, 0.7])
    vm = V.ValuationMarket(m, [V.uniform(0, 1.5)] * 5)
    out = V.mechanism(vm)
    for st in out.steps:
        if st is None:
            continue
        i = st.user

        def F(p, i=i):
            phi = out.virtual_values.copy()
            phi[i] = p
            return naive_virtual_best(m, phi)[0]
        assert math.isclose(st.integral(), (F(2 * st.edges[0]) - F(2 * st.edges[-1])) / 2, rel_tol=1e-9)
        assert np.all(np.diff(st.A) <= 1e-15)                 # A_i nonincreasing in x
        assert st(st.edges[0]) == st.A[0] and st(st.edges[-1] + 1.0) == 0.0
        with pytest.raises(dm_opt.ProblemError):
            st(st.edges[0] - 1e-3)


@pytest.mark.parametrize("seed", range(3))
def test_incentive_compatibility_rent_on_fine_grid(seed):
    rng = np.random.default_rng(20 + seed)
    n = 3
    m = market(n, seed, rng.uniform(0, 1.5, n))
    vm = V.ValuationMarket(m, [V.uniform(0, 1.5)] * n)
    for i in range(n):
        truth = V.mechanism(vm)
        grid = np.linspace(0, 1.5, 31)
        extra = [e + d for s in truth.steps if s is not None and s.user == i for e in s.edges for d in (-1e-7, 1e-7)]
        rep = V.ic_violations(vm, i, grid=np.clip(np.concatenate([grid, extra]), 0, 1.5))
        assert rep.rent_gain <= 1e-10, rep


def test_incentive_compatibility_discrete():
    n = 3
    m = market(n, 2, [0.2, 0.6, 1.4])
    table = V.discrete([0.2, 0.6, 1.4], [0.5, 0.3, 0.2])
    vm = V.ValuationMarket(m, [table] * n)
    for truth in itertools.product(table.values, repeat=n):
        for i in range(n):
            assert V.ic_violations(vm, i, reported=np.array(truth)).rent_gain <= 1e-10


def test_full_utility_ic_gap_in_paper_is_real():
    """The IC proof of Thm B-2 uses the rent p − v A (B-17).  A misreport can change the others' sharing
    decisions and so the externality v I_i(a_{−i}, 0): with the full payoff of §2.2 some user gains."""
    rng = np.random.default_rng(0)
    found = None
    for trial in range(8):
        m = market(3, trial, rng.uniform(0, 2, 3))
        vm = V.ValuationMarket(m, [V.uniform(0, 2)] * 3)
        for i in range(3):
            rep = V.ic_violations(vm, i, grid=np.linspace(0, 2, 21))
            assert rep.rent_gain <= 1e-10
            if rep.full_gain > 1e-6:
                found = rep
                break
        if found:
            break
    assert found is not None and found.full_gain > 1e-6


def test_expected_payoff_discrete_exact_equals_naive_and_revenue():
    m = market(3, 4, [0.2, 0.6, 1.4])
    table = V.discrete([0.2, 0.6, 1.4], [0.5, 0.3, 0.2])
    vm = V.ValuationMarket(m, [table] * 3)
    e = V.expected_platform_payoff(vm)
    assert e.method == "exact" and e.samples == 27
    ref = revenue = 0.0
    for idx in itertools.product(range(3), repeat=3):
        prob = np.prod(table.probs[list(idx)])
        ref += prob * naive_virtual_best(m, table.phi_table[list(idx)])[0]
        revenue += prob * V.mechanism(vm, table.values[list(idx)]).platform_payoff
    assert math.isclose(e.mean, ref, rel_tol=1e-10)
    assert math.isclose(e.mean, revenue, rel_tol=1e-10)     # E[Σ I − Σ p] = E[virtual objective] (Thm B-2)


def test_expected_payoff_monte_carlo_covers_closed_form():
    """n = 1, v ~ U[0, 1]: payoff = L · E[(1 − 2v)^+] = L/4 with L = σ⁴/(σ²+τ²)."""
    m = dm_opt.GaussianMarket([[2.0]], [0.3])
    vm = V.ValuationMarket(m, V.uniform(0, 1))
    e = V.expected_platform_payoff(vm, samples=400, seed=3)
    exact = (4.0 / 3.0) / 4
    assert e.method == "monte_carlo" and e.ci_low <= exact <= e.ci_high
    again = V.expected_platform_payoff(vm, samples=400, seed=3)
    assert again.mean == e.mean                                  # deterministic for a seed


@pytest.mark.parametrize("seed", range(4))
def test_prop_b2_bound(seed):
    rng = np.random.default_rng(30 + seed)
    n = 5
    m = market(n, seed, rng.uniform(0, 2, n))
    vm = V.ValuationMarket(m, [V.uniform(0, 2)] * n)
    out = V.mechanism(vm)
    assert out.surplus <= V.prop_b2_bound(vm) + 1e-10


# ----------------------------------------------------------------- Prop B-1 (VCG)
@pytest.mark.parametrize("seed", range(3))
def test_vcg_nonnegative_truthful_and_first_best(seed):
    rng = np.random.default_rng(40 + seed)
    n = 4
    v = rng.uniform(0, 2, n)
    m = market(n, seed, v)
    out = V.vcg(m)
    assert np.all(out.prices >= -1e-12)
    best, optima = naive.brute_force(m.cov, m.noise_var, v, "first_best")
    assert math.isclose(out.surplus, best, rel_tol=1e-9, abs_tol=1e-12)   # second best = first best
    for i in range(n):
        # h_min by brute force
        w = 1 - v.copy()
        w[i] = 1
        hmin = min(np.dot(w, naive.leakage(m.cov, m.noise_var, np.flatnonzero(a))) for a in naive.subsets(n))
        assert math.isclose(out.h_min[i], hmin, rel_tol=1e-9, abs_tol=1e-12)
        u_true = out.utility(m, i, v[i])
        for x in np.linspace(0, 2.5, 26):
            rep = v.copy()
            rep[i] = x
            assert V.vcg(m, rep).utility(m, i, v[i]) <= u_true + 1e-10


# ----------------------------------------------------------------- validation and files
def test_validation_errors():
    m = market(2, 0, [0.5, 0.5])
    with pytest.raises(dm_opt.InstanceError, match="probs: must sum to 1"):
        V.discrete([0.1, 0.2], [0.5, 0.6])
    with pytest.raises(dm_opt.InstanceError, match="strictly increasing"):
        V.discrete([0.2, 0.1], [0.5, 0.5])
    with pytest.raises(dm_opt.InstanceError, match="uniform needs"):
        V.uniform(1.0, 0.5)
    with pytest.raises(dm_opt.InstanceError, match=r"support must lie in \[0, inf\)"):
        V.ContinuousValuation(stats.norm())
    with pytest.raises(dm_opt.InstanceError, match="expected 2 distributions"):
        V.ValuationMarket(m, [V.uniform(0, 1)] * 3)
    with pytest.raises(dm_opt.InstanceError, match=r"values\[1\]: 0.5 is outside the support"):
        V.ValuationMarket(m, [V.uniform(0, 1), V.uniform(0.6, 1)])
    with pytest.raises(dm_opt.InstanceError, match=r"reported\[0\]"):
        V.mechanism(V.ValuationMarket(m, V.uniform(0, 1)), [1.5, 0.2])
    with pytest.raises(dm_opt.InstanceError, match="unknown distribution"):
        V.as_valuation({"dist": "pareto"})
    with pytest.raises(dm_opt.InstanceError, match=r"valuation\.high: missing"):
        V.as_valuation({"dist": "uniform", "low": 0})
    vm = V.ValuationMarket(m, V.uniform(0, 1))
    with pytest.raises(dm_opt.ProblemError, match="samples"):
        V.expected_platform_payoff(vm, samples=1)


def test_instance_files_and_cli(tmp_path):
    vm = dm_opt.load("models/ammo/valuations_discrete.toml")
    assert isinstance(vm, V.ValuationMarket) and vm.n == 3
    vm = dm_opt.load("models/ammo/valuations_mixed.toml")
    assert [d.is_discrete for d in vm.valuations] == [False, False, True] and vm.samples == 200
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "gaussian_valuations"\ncov = [[1.0]]\nvalues = [0.5]\n'
                   'valuations = {dist = "discrete", values = [0.5, 1.0], probs = [0.5, 0.4]}\n')
    with pytest.raises(dm_opt.InstanceError, match=r"bad.toml: valuations.*probs: must sum to 1"):
        dm_opt.load(bad)
    bad.write_text('kind = "gaussian_valuations"\ncov = [[1.0]]\nvalues = [0.5]\n')
    with pytest.raises(dm_opt.InstanceError, match="valuations: missing"):
        dm_opt.load(bad)
    bad.write_text('kind = "gaussian_valuations"\ncov = [[1.0]]\nvalues = [0.5]\nsamples = 0\n'
                   'valuations = {dist = "uniform", low = 0.0, high = 1.0}\n')
    with pytest.raises(dm_opt.InstanceError, match="samples: must be an integer >= 2"):
        dm_opt.load(bad)
    from dm_opt.cli import main
    assert main(["solve", "models/ammo/valuations_discrete.toml", "--problem", "expected_payoff", "--json"]) == 0
    assert main(["solve", str(bad)]) == 2


def test_cli_report_valuation_section(capsys):
    from dm_opt.cli import main
    assert main(["report", "models/ammo/valuations_discrete.toml", "--json"]) == 0
    d = __import__("json").loads(capsys.readouterr().out)["valuations"]
    vm = dm_opt.load("models/ammo/valuations_discrete.toml")
    m = vm.market
    fb, _ = naive.brute_force(m.cov, m.noise_var, m.values, "first_best")
    best, optima = naive_virtual_best(m, vm.virtual_values())
    assert d["mechanism_profile"] in [o.tolist() for o in optima]
    assert math.isclose(d["first_best_surplus"], fb, rel_tol=1e-9)
    assert d["mechanism_surplus"] <= d["prop_b2_bound"] + 1e-12 and d["thm_b3_case"] == "part2"


# ----------------------------------------------------------------- Thm B-3 on constructed instances
def mech_vs_first_best(vm):
    out = V.mechanism(vm)
    m = vm.market
    fb, _ = naive.brute_force(m.cov, m.noise_var, m.values, "first_best")
    return out, fb


def test_thm_b3_part1_efficient_and_uncorrelated_low_user_with_high_phi_inefficient():
    S = np.eye(5)
    S[:3, :3] = wishart(3, 7)
    lows = [V.uniform(0, 1)] * 3
    highs = [V.uniform(1, 60)] * 2
    vm = V.ValuationMarket(dm_opt.GaussianMarket(S, [0.1, 0.3, 0.45, 3.0, 7.0]), lows + highs)
    case = V.thm_b3_case(vm)
    assert case.case == "part1" and case.predicts_efficient
    out, fb = mech_vs_first_best(vm)
    assert math.isclose(out.surplus, fb, rel_tol=1e-9)
    # low-value user 2 with Φ = 2·0.8 > 1, uncorrelated with everybody: the mechanism does not buy her data
    S2 = np.eye(5)
    S2[:2, :2] = wishart(2, 7)
    vm2 = V.ValuationMarket(dm_opt.GaussianMarket(S2, [0.1, 0.3, 0.8, 3.0, 7.0]), lows + highs)
    case2 = V.thm_b3_case(vm2)
    assert case2.case == "none" and 2 in case2.low and 2 not in case2.low_phi
    out2, fb2 = mech_vs_first_best(vm2)
    assert out2.profile[2] == 0 and out2.surplus < fb2 - 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_thm_b3_part2_and_part4_inefficient(seed):
    rng = np.random.default_rng(60 + seed)
    # part 2: high users correlated with V_Φ^(l); values above the proof's threshold
    m0 = market(5, seed, np.concatenate([rng.uniform(0, 0.45, 3), [2.0, 2.0]]))
    dists = [V.uniform(0, 1)] * 3 + [V.uniform(1, 1e4)] * 2
    case = V.thm_b3_case(V.ValuationMarket(m0, dists))
    assert case.case == "part2"
    v = m0.values.copy()
    for j, t in case.part2_thresholds.items():
        v[j] = 1.05 * t
    vm = V.ValuationMarket(dm_opt.GaussianMarket(m0.cov, v), dists)
    assert V.thm_b3_case(vm).predicts_inefficient
    out, fb = mech_vs_first_best(vm)
    assert out.surplus < 0 <= fb and out.surplus <= V.prop_b2_bound(vm) + 1e-12
    # part 4: high users correlated only among themselves, Φ_i below v̄_i for one of them
    S = np.eye(5)
    S[:2, :2] = wishart(2, seed)
    S[2:, 2:] = wishart(3, seed + 9)
    dists = [V.uniform(0, 1)] * 2 + [V.uniform(1, 50)] * 3
    base = np.array([0.2, 0.3, 40.0, 40.0, 40.0])
    case = V.thm_b3_case(V.ValuationMarket(dm_opt.GaussianMarket(S, base), dists))
    assert case.case == "part4"
    i = max(case.part4_thresholds, key=case.part4_thresholds.get)
    target_phi = 1 + 0.5 * (case.part4_thresholds[i] - 1)
    base[i] = (target_phi + 1) / 2                    # Φ(v) = 2v − 1 on U[1, 50]
    vm = V.ValuationMarket(dm_opt.GaussianMarket(S, base), dists)
    assert V.thm_b3_case(vm).predicts_inefficient
    out, fb = mech_vs_first_best(vm)
    assert out.profile[2:].any() and out.surplus < fb - 1e-12


@pytest.mark.slow   # first call JIT-compiles the bnb kernels (~10 s when the numba cache is cold)
def test_other_exact_backend_agrees_with_enumeration():
    rng = np.random.default_rng(77)
    m = market(8, 77, rng.uniform(0, 2, 8))
    vm = V.ValuationMarket(m, [V.uniform(0, 2)] * 8)
    a, b = V.mechanism(vm, method="enumerate"), V.mechanism(vm, method="bnb")
    assert np.array_equal(a.profile, b.profile) and np.allclose(a.payments, b.payments, rtol=1e-9, atol=1e-12)
    assert np.allclose(V.vcg(m, method="enumerate").prices, V.vcg(m, method="bnb").prices, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------- limits and interruption


def mixed_market():
    m = market(4, 11, [0.3, 0.5, 0.6, 0.2])
    return V.ValuationMarket(m, [V.uniform(0, 1.5), V.truncated_exponential(scale=0.6, upper=2.0),
                                 V.discrete([0.2, 0.6, 0.9, 1.4], [0.3, 0.3, 0.2, 0.2]), V.uniform(0, 1.2)])


def check_partial_mechanism(full, out, status):
    assert out.status is status and not out.complete and out.message
    assert np.array_equal(out.profile, full.profile) and out.virtual_objective == full.virtual_objective
    assert not out.payments_exact.all()
    for i in range(len(full.payments)):
        lo, hi = out.payment_bounds[i]
        assert lo <= full.payments[i] + 1e-12 and full.payments[i] <= hi + 1e-12, (i, lo, full.payments[i], hi)
        if out.payments_exact[i]:
            assert out.payments[i] == full.payments[i] and lo == hi
        else:
            assert math.isnan(out.payments[i]) and math.isnan(out.rents[i])
    lo, hi = out.platform_payoff_bounds
    assert math.isnan(out.platform_payoff) and lo - 1e-12 <= full.platform_payoff <= hi + 1e-12
    d = out.to_dict()
    json.dumps(d, allow_nan=False)                     # NaN is written as null, never as invalid JSON
    assert d["status"] == str(status) and None in d["payments"]


def test_mechanism_limit_at_every_solve_gives_proven_payment_bounds(monkeypatch):
    """Stop after k solves for every k: the allocation is exact, payments are exact for the users done
    and every bound contains the exact payment; without the limit nothing changes."""
    vm = mixed_market()
    full = V.mechanism(vm)
    assert full.complete and full.payments_exact.all() and full.profile.sum() >= 3
    budget = Budget(monkeypatch)
    V.mechanism(vm, time_limit=1e6)
    total = budget.calls
    assert total > 5
    assert all(np.array_equal(getattr(V.mechanism(vm, time_limit=1e6), f), getattr(full, f))
               for f in ("payments", "rents", "profile"))
    seen_gap = False
    for k in range(1, total):
        out = V.mechanism(vm, time_limit=10.0) if budget.expire_after(k) else None
        check_partial_mechanism(full, out, Termination.TIME_LIMIT)
        seen_gap |= any(s is not None and not s.complete and np.isnan(s.A).any() for s in out.steps)
    assert seen_gap                                     # some stops fell inside an envelope search
    budget.expire_after(0)
    with pytest.raises(dm_opt.LimitExceeded, match="allocation not proven optimal"):
        V.mechanism(vm, time_limit=10.0)


@pytest.mark.parametrize("caught", [False, True])
def test_mechanism_ctrl_c_returns_partial_interrupted(monkeypatch, caught):
    vm = mixed_market()
    full = V.mechanism(vm)
    budget = Budget(monkeypatch)
    for k in (2, 4, 7):
        budget.interrupt_at(k, caught)
        check_partial_mechanism(full, V.mechanism(vm), Termination.INTERRUPTED)
    budget.interrupt_at(1, caught)                      # Ctrl-C during the allocation: nothing to report
    with pytest.raises(KeyboardInterrupt):
        V.mechanism(vm)


def test_allocation_steps_partial_bounds_contain_exact_integral(monkeypatch):
    vm = mixed_market()
    full = V.allocation_steps(vm, 0, vm.market.values)
    budget = Budget(monkeypatch)
    for k in range(1, full.solver_calls):
        st = V.allocation_steps(vm, 0, vm.market.values, time_limit=5.0) if budget.expire_after(k) else None
        assert st.status is Termination.TIME_LIMIT and not st.complete
        lo, hi = st.integral_bounds()
        assert lo - 1e-12 <= full.integral() <= hi + 1e-12
        assert np.all(st.A_lower <= st.A_upper + 1e-15) and st.edges[0] == full.edges[0]
        assert st.edges[-1] == pytest.approx(full.edges[-1], rel=1e-12)
        with pytest.raises(dm_opt.ProblemError, match="integral_bounds"):
            st.integral()
        x_gap = 0.5 * (st.edges[-2] + st.edges[-1])
        if np.isnan(st.A[-1]) and st.edges[-2] < st.edges[-1]:
            with pytest.raises(dm_opt.ProblemError, match="not resolved"):
                st(x_gap)
    budget.expire_after(0)
    with pytest.raises(dm_opt.LimitExceeded):
        V.allocation_steps(vm, 0, vm.market.values, time_limit=5.0)


def test_envelope_search_stops_with_proven_prefix_and_gaps():
    """Unit test of the partial envelope: pieces are exact on a prefix, gaps bound F on the rest."""
    rng = np.random.default_rng(3)
    knots = np.sort(rng.uniform(0, 5, 25))        # tangents of the convex (t − 2)² / 3 + a dominated line
    lines = [(4 / 3 - k * k / 3, -(2 * k - 4) / 3) for k in knots] + [(-1.0, 0.0)]
    F = lambda t: max(b - t * s for b, s in lines)                       # noqa: E731
    assert all(abs(F(k) - (k - 2) ** 2 / 3) < 1e-12 for k in knots)

    def evaluate(t):
        b, s = max(lines, key=lambda l: (l[0] - t * l[1], -l[1]))
        return PM.Line(b, s)

    full = PM.envelope_search(evaluate, 0.0, 5.0, 1e-12)
    assert full.complete and not full.gaps and full.covered_hi == 5.0 and len(full.pieces) == 25
    assert [(p.lo, p.hi) for p in full.pieces] == [(p.lo, p.hi) for p in PM.envelope_pieces(evaluate, 0.0, 5.0, 1e-12)]
    for k in range(1, full.evaluations):
        count = [0]

        def limited(t, count=count, k=k):
            count[0] += 1
            if count[0] > k:
                raise PM.Stopped(Termination.TIME_LIMIT, "limit")
            return evaluate(t)

        env = PM.envelope_search(limited, 0.0, 5.0, 1e-12)
        assert env.status is Termination.TIME_LIMIT and env.evaluations == k + 1
        if k == 1:
            assert not env.pieces and len(env.gaps) == 1 and env.gaps[0].right is None
        cuts = [env.lo] + [p.hi for p in env.pieces]
        assert all(p.lo == c for p, c in zip(env.pieces, cuts))        # pieces tile a prefix ...
        ends = [env.covered_hi] + [g.hi for g in env.gaps]
        assert all(g.lo == e for g, e in zip(env.gaps, ends)) and ends[-1] == 5.0   # ... gaps the rest
        for p in env.pieces:
            for t in np.linspace(p.lo, p.hi, 5):
                assert p.line.value(t) == pytest.approx(F(t), abs=1e-12)
        for g in env.gaps:
            for t in np.linspace(g.lo, g.hi, 7):
                lo = g.left.value(t) if g.right is None else max(g.left.value(t), g.right.value(t))
                assert lo <= F(t) + 1e-12
                if g.right is not None:
                    chord = g.left.value(g.lo) + (g.right.value(g.hi) - g.left.value(g.lo)) * (t - g.lo) / (g.hi - g.lo)
                    assert F(t) <= chord + 1e-12
    with pytest.raises(dm_opt.LimitExceeded):
        PM.envelope_pieces(lambda t: (_ for _ in ()).throw(PM.Stopped("time_limit", "x")), 0.0, 1.0, 1e-9)


def test_vcg_limit_and_ctrl_c_give_proven_price_bounds(monkeypatch):
    m = market(5, 4, [0.3, 1.4, 0.8, 1.9, 0.5])
    full = V.vcg(m)
    budget = Budget(monkeypatch)
    for k in range(1, 6):
        for out in (V.vcg(m, time_limit=5.0) if budget.expire_after(k) else None,
                    V.vcg(m) if budget.interrupt_at(k + 1, caught=bool(k % 2)) else None):
            assert out.status in (Termination.TIME_LIMIT, Termination.INTERRUPTED) and not out.complete
            assert np.array_equal(out.profile, full.profile)
            done = np.isfinite(out.prices)
            # a caught Ctrl-C hands back the incumbent and its bound, which may already prove the price
            assert (not done.all() or out.status is Termination.INTERRUPTED) and \
                np.allclose(out.prices[done], full.prices[done], rtol=1e-12, atol=1e-12)
            assert np.all(out.price_bounds[:, 0] <= full.prices + 1e-12)
            assert np.all(full.prices <= out.price_bounds[:, 1] + 1e-12)
            json.dumps(out.to_dict(), allow_nan=False)
    budget.expire_after(0)
    with pytest.raises(dm_opt.LimitExceeded, match="first best"):
        V.vcg(m, time_limit=5.0)


def test_expected_payoff_limits(monkeypatch):
    m = market(3, 4, [0.2, 0.6, 1.4])
    table = V.discrete([0.2, 0.6, 1.4], [0.5, 0.3, 0.2])
    vm = V.ValuationMarket(m, [table] * 3)
    exact = V.expected_platform_payoff(vm)
    assert exact.status is Termination.OPTIMAL and exact.lower == exact.upper == exact.mean
    mc_vm = V.ValuationMarket(m, [V.uniform(0, 1.5)] * 3)
    mc = V.expected_platform_payoff(mc_vm, samples=30, seed=2)
    budget = Budget(monkeypatch)
    for k in (1, 5, 26):
        e = V.expected_platform_payoff(vm, time_limit=5.0) if budget.expire_after(k) else None
        assert e.status is Termination.TIME_LIMIT and e.samples == k and e.requested == 27
        assert math.isnan(e.mean) and e.lower <= exact.mean + 1e-12 and exact.mean <= e.upper + 1e-12
        assert (e.ci_low, e.ci_high) == (e.lower, e.upper)
        json.dumps(e.to_dict(), allow_nan=False)
    budget.interrupt_at(10)
    e = V.expected_platform_payoff(mc_vm, samples=30, seed=2)
    assert e.status is Termination.INTERRUPTED and e.samples == 9 and e.requested == 30
    assert e.ci_low <= e.mean <= e.ci_high and e.mean != mc.mean
    budget.expire_after(1)
    with pytest.raises(dm_opt.LimitExceeded, match="need 2"):
        V.expected_platform_payoff(mc_vm, samples=30, seed=2, time_limit=5.0)
    budget.expire_after(None)
    assert V.expected_platform_payoff(mc_vm, samples=30, seed=2, time_limit=100.0) == mc   # unchanged


def test_ic_violations_partial_grid(monkeypatch):
    vm = V.ValuationMarket(market(3, 1, [0.3, 0.6, 0.9]), [V.uniform(0, 1.5)] * 3)
    full = V.ic_violations(vm, 0, grid=np.linspace(0, 1.5, 6))
    assert full.status is Termination.OPTIMAL and full.checked == full.grid_size == 6
    budget = Budget(monkeypatch)
    V.ic_violations(vm, 0, grid=np.linspace(0, 1.5, 6))
    budget.interrupt_at(budget.calls // 2)
    rep = V.ic_violations(vm, 0, grid=np.linspace(0, 1.5, 6))
    assert rep.status is Termination.INTERRUPTED and 0 < rep.checked < 6 and "grid points" in rep.message
    assert rep.rent_gain <= full.rent_gain and rep.full_gain <= full.full_gain


def test_time_limit_validation_names_the_field():
    vm = mixed_market()
    for bad in (-1.0, 0, float("nan"), float("inf"), "5", True):
        with pytest.raises(dm_opt.ProblemError, match="time_limit must be a positive number"):
            V.mechanism(vm, time_limit=bad)
    with pytest.raises(dm_opt.ProblemError, match="time_limit"):
        V.vcg(vm, time_limit=-2)
    with pytest.raises(dm_opt.ProblemError, match="time_limit"):
        V.expected_platform_payoff(vm, time_limit=-2)


def test_real_clock_limit_is_honest():
    """A real (tiny) time limit: whatever the machine's speed, the answer is exact or labelled partial."""
    vm = mixed_market()
    full = V.mechanism(vm)
    try:
        out = V.mechanism(vm, time_limit=0.002)
    except dm_opt.LimitExceeded:
        return
    if out.complete:
        assert np.array_equal(out.payments, full.payments)
    else:
        check_partial_mechanism(full, out, Termination.TIME_LIMIT)


def test_cli_time_limit_json_and_ctrl_c(monkeypatch, capsys):
    from dm_opt.cli import main
    path = "models/ammo/valuations_uniform.toml"
    assert main(["solve", path, "--time-limit", "60", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "optimal" and all(d["payments_exact"])
    budget = Budget(monkeypatch)
    budget.expire_after(3)
    assert main(["solve", path, "--time-limit", "60", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "time_limit" and not all(d["payments_exact"])
    assert all(lo <= hi for lo, hi in d["payment_bounds"])
    budget.interrupt_at(3)
    assert main(["solve", path]) == 130                  # partial result printed, exit like Ctrl-C
    out = capsys.readouterr().out
    assert "status: interrupted -- PARTIAL RESULT" in out and "payment bounds" in out
    budget.interrupt_at(2)
    assert main(["solve", path, "--problem", "vcg", "--json"]) == 130
    assert json.loads(capsys.readouterr().out)["status"] == "interrupted"
    budget.expire_after(0)
    assert main(["solve", path, "--time-limit", "60"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "allocation not proven optimal" in err
    assert main(["solve", path, "--time-limit", "-1"]) == 2


# ----------------------------------------------------------------- result protocol
def valuation_results(monkeypatch):
    """(result, complete?) for every public result class of the package, finished and stopped."""
    vm = V.ValuationMarket(market(3, 1, [0.3, 0.6, 0.9]), [V.uniform(0, 1.5)] * 3)
    table = V.ValuationMarket(market(3, 4, [0.2, 0.6, 1.4]), [V.discrete([0.2, 0.6, 1.4], [0.5, 0.3, 0.2])] * 3)
    grid = np.linspace(0, 1.5, 6)
    out = [(V.mechanism(vm), True), (V.allocation_steps(vm, 0, vm.market.values), True),
           (V.ic_violations(vm, 0, grid=grid), True), (V.expected_platform_payoff(table), True),
           (V.expected_platform_payoff(vm, samples=5, seed=1), True), (V.vcg(vm.market), True),
           (V.thm_b3_case(vm), True)]
    budget = Budget(monkeypatch)
    V.ic_violations(vm, 0, grid=grid)
    ic_calls = budget.calls
    mixed = mixed_market()
    out += [(V.mechanism(mixed, time_limit=10.0) if budget.expire_after(3) else None, False),
            (V.allocation_steps(mixed, 0, mixed.market.values, time_limit=10.0) if budget.expire_after(2) else None,
             False),
            (V.ic_violations(vm, 0, grid=grid) if budget.interrupt_at(ic_calls // 2) else None, False),
            (V.expected_platform_payoff(table, time_limit=10.0) if budget.expire_after(5) else None, False),
            (V.expected_platform_payoff(vm, samples=5, seed=1) if budget.interrupt_at(4) else None, False),
            (V.vcg(vm.market, time_limit=10.0) if budget.expire_after(2) else None, False)]
    budget.expire_after(None)
    return out


def test_every_result_satisfies_the_result_protocol(monkeypatch):
    results = valuation_results(monkeypatch)
    ours = {c for c in Result.subclasses if c.__module__.startswith("dm_opt.gaussian.valuations")}
    assert {type(r) for r, _ in results} == ours                 # every public result class is constructed
    for r, complete in results:
        name = type(r).__name__
        assert isinstance(r, Result) and type(r).family == "gaussian", name
        assert check_protocol(r) == [], (name, check_protocol(r))
        d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
        assert {"status", "solution_status", "objective", "bound", "gap", "seconds", "message"} <= set(d), name
        assert r.seconds >= 0.0 and isinstance(r.extra, dict), name
        if complete:
            assert r.status is Termination.OPTIMAL and r.solution_status is SolutionStatus.OPTIMAL, name
            assert r.raise_for_status() is r
        else:
            assert r.status in (Termination.TIME_LIMIT, Termination.INTERRUPTED) and r.message, name
            assert r.solution_status is not SolutionStatus.OPTIMAL, name
            with pytest.raises(dm_opt.NoOptimalSolution):
                r.raise_for_status()


def test_result_protocol_objective_and_bound(monkeypatch):
    """objective/bound are those :mod:`dm_opt.gaussian.problems` reports: platform payoff (Thm B-2),
    first-best surplus (Prop B-1), expected payoff (upper end proven only by an exact sum)."""
    for r, complete in valuation_results(monkeypatch):
        if isinstance(r, V.MechanismOutcome):
            assert math.isnan(r.objective) != complete and r.bound == r.platform_payoff_bounds[1]
            if complete:
                assert r.objective == r.platform_payoff == r.bound and r.gap == 0.0
            else:
                assert r.solution_status is SolutionStatus.FEASIBLE      # the allocation is proven
        elif isinstance(r, V.VCGOutcome):
            assert r.objective == r.bound == r.surplus
        elif isinstance(r, V.ExpectedPayoff):
            assert r.objective == r.mean or (math.isnan(r.objective) and math.isnan(r.mean))
            if r.method == "exact":
                assert r.bound == r.upper and (not complete or r.bound == r.mean)
            else:
                assert math.isnan(r.bound)
        else:                                       # step functions, gains, a classification: no scalar
            assert math.isnan(r.objective) and math.isnan(r.bound)
