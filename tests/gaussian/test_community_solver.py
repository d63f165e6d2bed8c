"""method="community": count-vector search vs enumeration on the dense Σ (docs/spec.md §1.4)."""

import os

import numpy as np
import pytest

import dm_opt
from dm_opt import CommunityMarket, InstanceError, ProblemError, Termination
from dm_opt.gaussian.backends.community import CountModel, solve_counts, sorted_communities
from tests.support import naive
from tests.support.community_helpers import random_market

PROBLEMS = ("first_best", "equilibrium", "decorrelated")
TIED_VALUES = (0.3, 0.8, 1.0, 1.3, 2.0, 4.0)   # few distinct values: many ties within communities


def _instances(count, seed, max_n=12):
    rng = np.random.default_rng(seed)
    return [random_market(rng, max_n=max_n) for _ in range(count)]


@pytest.mark.parametrize("strategy", ["enumerate", "bnb", "bnb-blocks"])
def test_equals_enumeration_on_dense_sigma(strategy, monkeypatch):
    """Random community instances (n ≤ 12, K ≤ 3, tied values): same optimum as enumeration on
    ``to_gaussian()``, and the returned profile is one of enumeration's optimal profiles."""
    if strategy == "bnb-blocks":           # block bounds on every range longer than 2 counts
        import dm_opt.gaussian.backends.community as cs

        monkeypatch.setattr(cs, "SCAN_EXACT", 2)
        strategy = "bnb"
        seed = 13
    else:
        seed = 11 if strategy == "bnb" else 12
    for m in _instances(25, seed=seed):
        g = m.to_gaussian()
        for problem in PROBLEMS:
            e = dm_opt.solve(g, problem, method="enumerate", all_optima=True)
            r = dm_opt.solve(m, problem, method="community", strategy=strategy)
            assert r.status is Termination.OPTIMAL
            assert r.objective == pytest.approx(e.objective, abs=1e-9 * max(1.0, abs(e.objective)))
            assert any(np.array_equal(r.profile, o) for o in e.optima), (problem, r.profile)
            # the result's fields come from the K×K closed form and agree with the dense market
            assert np.allclose(r.leakage, e.leakage if np.array_equal(r.profile, e.profile)
                               else (g.decorrelated_leakage(r.profile) if problem == "decorrelated"
                                     else g.leakage(r.profile)), atol=1e-12)
            assert np.allclose(r.prices, g.prices(r.profile, problem), atol=1e-12)
            assert r.surplus == pytest.approx(
                g.decorrelated_surplus(r.profile) if problem == "decorrelated" else g.surplus(r.profile),
                abs=1e-12)


def test_n16_against_independent_oracle():
    """n = 16 (2^16 subsets), both search strategies, against enumeration on the dense Σ."""
    rng = np.random.default_rng(5)
    m = CommunityMarket([6, 5, 5], [1.0, 1.5, 0.7], [0.3, 0.1, 0.5],
                        [[1, 0.2, -0.1], [0.2, 1, 0.15], [-0.1, 0.15, 1]],
                        rng.choice(TIED_VALUES, 16), [1.0, 0.5, 2.0])
    g = m.to_gaussian()
    for problem in PROBLEMS:
        e = dm_opt.solve(g, problem, method="enumerate", all_optima=True)
        for strategy in ("enumerate", "bnb"):
            r = dm_opt.solve(m, problem, method="community", strategy=strategy)
            assert r.objective == pytest.approx(e.objective, abs=1e-9)
            assert any(np.array_equal(r.profile, o) for o in e.optima)


def test_all_optima_equal_enumeration_sets():
    """With ties (few distinct values; symmetric users), the community method's list of optimal
    profiles equals enumeration's, as sets, for all three problems."""
    sizes_seen = 0
    for m in _instances(25, seed=31):
        g = m.to_gaussian()
        for problem in PROBLEMS:
            e = dm_opt.solve(g, problem, method="enumerate", all_optima=True)
            c = dm_opt.solve(m, problem, method="community", all_optima=True)
            assert {tuple(o) for o in c.optima} == {tuple(o) for o in e.optima}, (problem, m.values)
            sizes_seen = max(sizes_seen, len(e.optima))
    assert sizes_seen >= 2          # the instances do have ties
    # v = 1 everywhere: first-best surplus is 0 for every profile, all 2^8 profiles are optimal
    m = CommunityMarket([4, 4], 1.0, 0.3, 0.2, [1.0] * 8)
    c = dm_opt.solve(m, "first_best", method="community", all_optima=True)
    e = dm_opt.solve(m.to_gaussian(), "first_best", method="enumerate", all_optima=True)
    assert len(c.optima) == len(e.optima) == 256
    assert {tuple(o) for o in c.optima} == {tuple(o) for o in e.optima}
    # Example 2 with identical users: C(10, k) ties are listed exactly
    m = CommunityMarket([3, 3], 1.0, 0.0, 0.0, [2.0, 2.0, 2.0, 0.5, 0.5, 0.5])
    r = dm_opt.solve(m, "first_best", method="community", all_optima=True)
    assert len(r.optima) == 1 and r.optima[0].tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(dm_opt.LimitExceeded):
        dm_opt.solve(CommunityMarket([14], 1.0, 0.0, 0.0, [1.0] * 14), "first_best", method="community",
                     all_optima=True, max_optima=100)


def _ordered_within_communities(m, a):
    """Every sharer's value ≤ every non-sharer's value, within each community."""
    for k in range(m.K):
        idx = np.flatnonzero(m.community == k)
        sh, no = m.values[idx][a[idx] == 1], m.values[idx][a[idx] == 0]
        if sh.size and no.size and sh.max() > no.min():
            return False
    return True


def test_lowest_value_sharers_structure_vs_enumeration():
    """Every optimal profile (all ties, from enumeration) shares with the lowest values in each
    community, and swapping a sharer for a higher-value non-sharer of her community is strictly
    worse (the structure is strict, not only weak; the converse — every lowest-value profile
    with an optimal count vector is optimal — is test_all_optima_equal_enumeration_sets)."""
    checked = 0
    for m in _instances(30, seed=21):
        g = m.to_gaussian()
        for problem in PROBLEMS:
            e = dm_opt.solve(g, problem, method="enumerate", all_optima=True)
            for o in e.optima:
                assert _ordered_within_communities(m, o), (problem, o, m.values)
                checked += 1
            # swapping: a non-sharer i in for a sharer j of the same community
            a = e.optima[0].copy()
            for k in range(m.K):
                idx = np.flatnonzero(m.community == k)
                for i in idx[a[idx] == 0]:
                    for j in idx[a[idx] == 1]:
                        b = a.copy()
                        b[i], b[j] = 1, 0
                        fb, fa = g.evaluate(problem, b), g.evaluate(problem, a)
                        if m.values[i] < m.values[j]:
                            assert fb >= fa - 1e-12
                        elif m.values[i] > m.values[j]:
                            assert fb < fa    # strict: the coefficient of the value sum is nonzero
    assert checked > 90


def test_prefix_objective_matches_naive_oracle():
    """f(m) of the count model equals the paper's definition (fresh dense solves) at prefix profiles."""
    rng = np.random.default_rng(8)
    for m in _instances(10, seed=8):
        S = m.cov_dense()
        sc = sorted_communities(m)
        for problem in PROBLEMS:
            model = CountModel(m, problem)
            M = np.stack([rng.integers(0, m.sizes + 1) for _ in range(6)])
            f = model.value(M)
            for row, val in zip(M, f):
                a = sc.profile(row, m.n)
                want = naive.objective(S, m.noise_var, m.values, np.flatnonzero(a), problem)
                assert val == pytest.approx(want, abs=1e-10)


@pytest.mark.parametrize("scan_exact", [512, 1, 2, 3])
def test_box_bounds_dominate_every_count_vector(scan_exact, monkeypatch):
    """The branch-and-bound box bound is ≥ f(m) for every m in the box, and = f at a point;
    small ``SCAN_EXACT`` forces the block bounds (used for wide boxes at large n)."""
    import dm_opt.gaussian.backends.community as cs

    monkeypatch.setattr(cs, "SCAN_EXACT", scan_exact)
    rng = np.random.default_rng(9 + scan_exact)
    for m in _instances(12, seed=9 + scan_exact, max_n=16):
        for problem in PROBLEMS:
            model = CountModel(m, problem)
            for _ in range(5):
                x = rng.integers(0, m.sizes + 1)
                y = rng.integers(0, m.sizes + 1)
                lo, hi = np.minimum(x, y), np.maximum(x, y)
                b, _ = model.bound(lo[None], hi[None])
                grid = np.stack(np.meshgrid(*[np.arange(l, h + 1) for l, h in zip(lo, hi)],
                                            indexing="ij"), -1).reshape(-1, m.K)
                assert b[0] >= model.value(grid).max() - 1e-12
                p, _ = model.bound(lo[None], lo[None])
                assert p[0] == pytest.approx(model.value(lo[None])[0], abs=1e-12)


def _general_case(n):
    rng = np.random.default_rng(5)
    m = CommunityMarket([n // 3, n // 3, n - 2 * (n // 3)], 1.0, [0.2, 0.3, 0.1], 0.1,
                        rng.choice([0.5, 0.9, 1.2, 2.0, 3.0], n))
    return m, m.to_gaussian()


@pytest.mark.slow
@pytest.mark.parametrize("n", [30, 60])
def test_matches_general_bnb_beyond_enumeration(n):
    """Larger n: the community solver agrees with the general exact branch-and-bound on Σ
    (slow: the general bnb's time on these instances varied from 0.1 s to 45 s between runs)."""
    m, g = _general_case(n)
    for problem in PROBLEMS:
        r = dm_opt.solve(g, problem, method="bnb", time_limit=60)
        assert r.status is Termination.OPTIMAL
        c = dm_opt.solve(m, problem, method="community", strategy="bnb")
        assert c.objective == pytest.approx(r.objective, abs=1e-9 * max(1, abs(r.objective)))
        assert c.objective == pytest.approx(g.evaluate(problem, c.profile), abs=1e-12)


def test_never_worse_than_general_bnb_n40():
    """n = 40: the community answer (re-evaluated on the dense Σ) is at least the general bnb's, and
    no single flip or within-community swap improves it on the dense market."""
    m, g = _general_case(40)
    for problem in PROBLEMS:
        r = dm_opt.solve(g, problem, method="bnb", time_limit=60)
        c = dm_opt.solve(m, problem, method="community")
        fc = g.evaluate(problem, c.profile)
        assert fc >= r.objective - 1e-12
        if r.status is Termination.OPTIMAL:
            assert fc == pytest.approx(r.objective, abs=1e-9 * max(1, abs(r.objective)))
        for i in range(m.n):
            b = c.profile.copy()
            b[i] ^= 1
            assert g.evaluate(problem, b) <= fc + 1e-12


def test_auto_routes_and_result_shape():
    m = CommunityMarket([10, 10], 1.0, 1 / 20, 0.1, [0.9] * 10 + [1.5] * 10)
    r = dm_opt.solve(m, "equilibrium")
    assert r.method == "community" and "auto: community" in r.message
    assert r.profile.shape == (20,) and r.prices.shape == (20,) and r.leakage.shape == (20,)
    assert r.status is Termination.OPTIMAL and r.gap == 0.0
    assert r.objective == pytest.approx(m.evaluate("equilibrium", r.profile))
    big = CommunityMarket([1000, 1000], 1.0, 0.05, 0.01, {"family": "constant", "value": [0.9, 1.5]})
    with pytest.raises(ProblemError, match="all_optima"):
        dm_opt.solve(big, "equilibrium", method="community", all_optima=True)
    with pytest.raises(ProblemError, match="unknown option"):
        dm_opt.solve(m, "equilibrium", method="community", foo=1)
    with pytest.raises(ProblemError, match="CommunityMarket"):
        dm_opt.solve(m.to_gaussian(), "equilibrium", method="community")
    with pytest.raises(ProblemError, match="does not solve problem .weighted."):
        dm_opt.solve(m, dm_opt.LeakageObjective.weighted(np.ones(20), np.zeros(20)), method="community")


def test_large_market_local_optimality_and_limits():
    """n = 10⁵, K = 4: optimal status, bound within tol, no ±1 move of any count improves, and the
    node limit returns the incumbent with a proven bound."""
    m = CommunityMarket([40_000, 30_000, 20_000, 10_000], 1.0, [0.1, 0.05, 0.15, 0.2], 0.01,
                        {"family": "uniform", "low": [0.0, 0.3, 0.5, 0.2], "high": [2.0, 2.5, 1.5, 3.0],
                         "seed": 4})
    for problem in PROBLEMS:
        r = dm_opt.solve(m, problem, method="community")
        assert r.status is Termination.OPTIMAL
        counts = np.array(r.extra["counts"])
        assert r.extra["proven_bound"] <= r.objective + r.tie_tol + 1e-9
        model = CountModel(m, problem)
        nb = []
        for k in range(m.K):
            for step in (-1, 1, -50, 50):
                x = counts.copy()
                x[k] = np.clip(x[k] + step, 0, m.sizes[k])
                nb.append(x)
        assert model.value(np.array(nb)).max() <= r.objective + r.tie_tol
        # the previous search (the tightening search may prove optimality at the root)
        limited = solve_counts(m, problem, tol=r.tie_tol, strategy="bnb", max_nodes=1, search="boxes")
        assert limited["status"] is Termination.NODE_LIMIT
        assert limited["bound"] >= r.objective - r.tie_tol >= limited["value"] - 2 * r.tie_tol
        timed = dm_opt.solve(m, problem, method="community", time_limit=1e-6)
        assert timed.status is Termination.TIME_LIMIT and "time_limit" in timed.message
        assert timed.bound >= r.objective - r.tie_tol and timed.gap >= 0


def test_paper_example2_negative_surplus_region():
    """Example 2: near v_h = 1 surplus is positive for every admissible ρ; for larger v_h and ρ
    it is negative (Figure 3); both checked against enumeration-free dense evaluation."""
    for rho in (0.02, 0.07, 0.14):
        m = CommunityMarket([10, 10], 1.0, 1 / 20, rho, [0.9] * 10 + [1.001] * 10)
        assert dm_opt.solve(m, "equilibrium").surplus > 0
    m = CommunityMarket([10, 10], 1.0, 1 / 20, 0.14, [0.9] * 10 + [3.0] * 10)
    r = dm_opt.solve(m, "equilibrium")
    assert r.surplus < 0
    assert r.surplus == pytest.approx(m.to_gaussian().surplus(r.profile), abs=1e-12)
    with pytest.raises(InstanceError):
        CommunityMarket([10, 10], 1.0, 1 / 20, 0.15, [0.9] * 10 + [3.0] * 10)


@pytest.mark.parametrize("scan_exact", [512, 16])
def test_bnb_equals_exhaustive_count_search_medium(scan_exact, monkeypatch):
    """Hundreds of users per community: branch-and-bound (with block bounds when ``SCAN_EXACT``
    is small) finds the same optimum as evaluating every count vector."""
    import dm_opt.gaussian.backends.community as cs

    monkeypatch.setattr(cs, "SCAN_EXACT", scan_exact)
    markets = [
        CommunityMarket([300, 250], [1.0, 1.5], [0.05, 0.1], 0.03,
                        {"family": "uniform", "low": [0.0, 0.5], "high": [2.0, 2.5], "seed": 1}),
        CommunityMarket([40, 50, 60], 1.0, [0.1, 0.2, 0.05], [[1, 0.05, -0.02], [0.05, 1, 0.04],
                                                             [-0.02, 0.04, 1]],
                        {"family": "lognormal", "mean": [-0.3, 0.0, 0.2], "sigma": 0.6, "seed": 2}),
    ]
    for m in markets:
        for problem in PROBLEMS:
            tol = 1e-9 * m.objective(problem).scale(m.sigma2)
            ex = solve_counts(m, problem, strategy="enumerate")
            bb = solve_counts(m, problem, strategy="bnb", tol=tol)
            assert bb["status"] is Termination.OPTIMAL
            assert bb["value"] >= ex["value"] - tol
            assert bb["bound"] >= ex["value"] - 1e-9


@pytest.mark.slow
def test_million_user_instance_file():
    """models/ammo/community_n1e6_k5.toml: every problem optimal, bound within tol, and no ±1/±100
    change of a count improves (checked with the count model)."""
    m = dm_opt.load(os.path.join(os.path.dirname(__file__), "..", "..", "models", "ammo",
                                 "community_n1e6_k5.toml"))
    for problem in PROBLEMS:
        r = dm_opt.solve(m, problem)
        assert r.status is Termination.OPTIMAL and r.method == "community"
        assert r.extra["proven_bound"] <= r.objective + r.tie_tol + 1e-9
        counts = np.array(r.extra["counts"])
        model = CountModel(m, problem)
        nb = []
        for k in range(m.K):
            for step in (-100, -1, 1, 100):
                x = counts.copy()
                x[k] = np.clip(x[k] + step, 0, m.sizes[k])
                nb.append(x)
        assert model.value(np.array(nb)).max() <= r.objective + r.tie_tol


@pytest.mark.parametrize("grid", [64, 3, 5])
def test_local_search_incumbent_is_feasible_and_improving(grid, monkeypatch):
    """The coordinate-ascent incumbent stays in the box, reports its exact value, never gets
    worse than its start, and (with the multi-level grid) the search still finds the optimum."""
    import dm_opt.gaussian.backends.community as cs

    monkeypatch.setattr(cs, "LOCAL_GRID", grid)
    m = CommunityMarket([40, 25, 12], [1.0, 1.5, 0.8], [0.05, 0.1, 0.2], 0.03,
                        {"family": "uniform", "low": [0.0, 0.5, 0.9], "high": [2.0, 2.5, 1.1], "seed": 3})
    for problem in PROBLEMS:
        model = CountModel(m, problem)
        lo = np.zeros(m.K, dtype=np.int64)
        hi = m.sizes.astype(np.int64)
        start = np.array([0, 25, 6])
        val, best = cs.local_search(model, start, lo, hi)
        assert np.all(best >= lo) and np.all(best <= hi)
        assert val == pytest.approx(float(model.value(best[None])[0]), abs=0)
        assert val >= float(model.value(start[None])[0])
        tol = 1e-9 * m.objective(problem).scale(m.sigma2)
        ex = solve_counts(m, problem, strategy="enumerate")
        bb = solve_counts(m, problem, strategy="bnb", tol=tol)
        assert bb["status"] is Termination.OPTIMAL
        assert bb["value"] >= ex["value"] - tol
