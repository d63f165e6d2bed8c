"""Search rules added to branch-and-bound for the hard instance families (symmetry chains, …).

Every rule is checked against exhaustive enumeration on seeded instances n ≤ 14 across
the families of ``benchmarks/frontier.py`` (equicorrelated, block, tridiagonal, low rank
plus diagonal, Wishart), the value ranges U[0.3, 2.5], U[0.9, 1.1], U[1.05, 2] (plus exact
ties) and the three problems: bnb's profile must be optimal within the tie tolerance.
The symmetry rule's lemma (swapping twins towards the dominating one never lowers the
objective) is also checked directly on random profiles.
"""

import itertools

import numpy as np
import pytest

import dm_opt
from dm_opt.core.result import Termination
from dm_opt.gaussian.backends.bnb import branch_and_bound, symmetry_chains, twin_classes
from dm_opt.gaussian.backends.bounds import tangent_planes
from dm_opt.gaussian.backends.enumeration import enumerate_market
from dm_opt.gaussian.kernels.bnb import tangent_bound
from dm_opt.gaussian.objectives import LeakageObjective

PROBLEMS = ("first_best", "equilibrium", "decorrelated")
VALUE_RANGES = ((0.3, 2.5), (0.9, 1.1), (1.05, 2.0))


def _unit(S):
    d = 1.0 / np.sqrt(np.diag(S))
    return 0.5 * (S * d[:, None] * d[None, :] + (S * d[:, None] * d[None, :]).T)


def family_cov(fam, n, rng):
    if fam == "equi":
        rho = float(rng.choice([0.3, 0.6, 0.9]))
        return (1 - rho) * np.eye(n) + rho * np.ones((n, n))
    if fam == "block":
        K = int(rng.integers(2, 5))
        labels = np.sort(rng.integers(0, K, n))
        S = np.where(labels[:, None] == labels[None, :], 0.3 + 0.5 * rng.random(), 0.05)
        np.fill_diagonal(S, 1.0)
        return S
    if fam == "tridiag":
        return np.eye(n) + 0.45 * (np.eye(n, k=1) + np.eye(n, k=-1))
    if fam == "lowrank":
        F = rng.standard_normal((n, 3))
        return _unit(F @ F.T + np.eye(n))
    G = rng.standard_normal((n, n + 2))
    return _unit(G @ G.T / (n + 2))


FAMILIES = ("equi", "block", "tridiag", "lowrank", "wishart")


def instances(count, seed, n_range=(3, 15)):
    """``count`` seeded (market, problem) pairs cycling through families, value ranges and problems."""
    rng = np.random.default_rng(seed)
    for it in range(count):
        fam = FAMILIES[it % len(FAMILIES)]
        lo, hi = VALUE_RANGES[(it // len(FAMILIES)) % len(VALUE_RANGES)]
        problem = PROBLEMS[(it // (len(FAMILIES) * len(VALUE_RANGES))) % len(PROBLEMS)]
        n = int(rng.integers(*n_range))
        v = rng.uniform(lo, hi, n)
        if rng.random() < 0.2:          # exact ties among twins
            v = np.round(v, 1)
        tau2 = None if rng.random() < 0.8 else np.full(n, float(rng.uniform(0.5, 2.0)))
        yield dm_opt.GaussianMarket(family_cov(fam, n, rng), v, tau2), problem, fam


def _check_optimal(m, obj, raw):
    ref = enumerate_market(m, obj)
    tol = ref.extra.get("tol") if ref.extra and "tol" in ref.extra else None
    best = m.evaluate(obj, ref.profile)
    if tol is None:
        tol = 1e-9 * obj.scale(m.sigma2)
    assert raw.status is Termination.OPTIMAL
    got = m.evaluate(obj, raw.profile)
    assert abs(got - best) <= tol, (got, best, tol)


def test_twin_classes_of_structured_families():
    n = 9
    equi = (0.7 * np.eye(n) + 0.3)
    assert [list(c) for c in twin_classes(equi, np.ones(n))] == [list(range(n))]
    # different noise breaks exchangeability
    tau2 = np.ones(n)
    tau2[4] = 2.0
    assert [list(c) for c in twin_classes(equi, tau2)] == [[0, 1, 2, 3, 5, 6, 7, 8]]
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
    block = np.where(labels[:, None] == labels[None, :], 0.5, 0.1)
    np.fill_diagonal(block, 1.0)
    assert sorted(map(list, twin_classes(block, np.ones(n)))) == [[0, 1], [2, 3, 4], [5, 6, 7, 8]]
    # tridiagonal: only the two ends of a 2-chain are twins; n = 9 has none
    tri = np.eye(n) + 0.4 * (np.eye(n, k=1) + np.eye(n, k=-1))
    assert twin_classes(tri, np.ones(n)) == []
    assert [list(c) for c in twin_classes(tri[:2, :2], np.ones(2))] == [[0, 1]]
    # a perturbed entry (not exactly equal) is not a twin
    pert = equi.copy()
    pert[0, 5] = pert[5, 0] = 0.3 + 1e-15
    assert all(0 not in c or len(c) < n for c in twin_classes(pert, np.ones(n)))


def test_chains_follow_value_order():
    n = 6
    m = dm_opt.GaussianMarket(0.6 * np.eye(n) + 0.4, [1.5, 1.2, 1.9, 1.2, 1.05, 1.7])
    for problem in PROBLEMS:
        obj = LeakageObjective.for_problem(problem, m.values)
        prev, nxt = symmetry_chains(m, obj, None)
        # chain from the smallest value to the largest, ties by index
        start = int(np.flatnonzero((prev < 0) & (nxt >= 0))[0])
        order = [start]
        while nxt[order[-1]] >= 0:
            order.append(int(nxt[order[-1]]))
        assert order == [4, 1, 3, 0, 5, 2]


@pytest.mark.parametrize("seed", range(3))
def test_twin_swap_lemma_on_random_profiles(seed):
    """Swapping a sharing twin ``j`` with a dominating non-sharing twin ``i`` never lowers ``f``."""
    rng = np.random.default_rng(seed)
    checked = 0
    for m, problem, _ in instances(60, 100 + seed, (3, 12)):
        obj = LeakageObjective.for_problem(problem, m.values)
        prev, _ = symmetry_chains(m, obj, None)
        pairs = [(int(prev[j]), j) for j in range(m.n) if prev[j] >= 0]
        if not pairs:
            continue
        tol = 1e-10 * obj.scale(m.sigma2)
        for _ in range(10):
            i, j = pairs[int(rng.integers(len(pairs)))]
            a = rng.integers(0, 2, m.n).astype(np.int8)
            a[i], a[j] = 0, 1
            b = a.copy()
            b[i], b[j] = 1, 0
            assert m.evaluate(obj, b) >= m.evaluate(obj, a) - tol
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("part", range(4))
def test_bnb_with_symmetry_equals_enumeration(part):
    """300 seeded instances n ≤ 14 over families × value ranges × problems (75 per part)."""
    chained = 0
    for m, problem, _ in instances(75, 7 + part):
        obj = LeakageObjective.for_problem(problem, m.values)
        raw = branch_and_bound(m, obj)
        chained += raw.extra["symmetry_chained"]
        _check_optimal(m, obj, raw)
    assert chained > 0


def test_symmetry_with_cardinality_constraints_equals_brute_force():
    rng = np.random.default_rng(5)
    for m, problem, _ in instances(30, 11, (3, 10)):
        obj = LeakageObjective.for_problem(problem, m.values)
        lo = int(rng.integers(0, m.n))
        hi = int(rng.integers(lo, m.n + 1))
        best = -np.inf
        for bits in itertools.product((0, 1), repeat=m.n):
            if lo <= sum(bits) <= hi:
                best = max(best, m.evaluate(obj, np.array(bits, dtype=np.int8)))
        raw = branch_and_bound(m, obj, constraints={"min_sharers": lo, "max_sharers": hi})
        assert raw.status is Termination.OPTIMAL
        assert raw.extra["symmetry_chained"] > 0 or not twin_classes(m.cov, m.noise_var)
        got = m.evaluate(obj, raw.profile)
        assert lo <= int(raw.profile.sum()) <= hi
        assert abs(got - best) <= 1e-9 * obj.scale(m.sigma2)


def test_symmetry_off_with_forced_users():
    m = dm_opt.GaussianMarket(0.6 * np.eye(6) + 0.4, np.linspace(1.1, 1.9, 6))
    obj = LeakageObjective.for_problem("equilibrium", m.values)
    raw = branch_and_bound(m, obj, constraints={"force_in": [5]})
    assert raw.extra["symmetry_chained"] == 0
    assert raw.profile[5] == 1


def test_symmetry_option_off_same_optimum():
    m = dm_opt.GaussianMarket(0.7 * np.eye(12) + 0.3, np.random.default_rng(0).uniform(1.05, 2.0, 12))
    for problem in PROBLEMS:
        on = dm_opt.solve(m, problem, method="bnb")
        off = dm_opt.solve(m, problem, method="bnb", symmetry=False)
        assert on.is_optimal and off.is_optimal
        assert abs(on.objective - off.objective) <= on.tie_tol
        assert on.nodes <= off.nodes
    with pytest.raises(dm_opt.ProblemError):
        dm_opt.solve(m, "equilibrium", method="bnb", chain_split="middle")


# ---------------------------------------------------------------- tangent planes (option tangent=…)
def _terms(m, obj, a):
    leak, own = m.leakage_and_own(a)
    return obj.c * leak + a * (obj.d * leak - obj.e * own - obj.k)


@pytest.mark.parametrize("seed", range(2))
def test_tangent_planes_bound_every_term_of_every_profile(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for m, problem, _ in instances(45, 300 + seed, (2, 9)):
        obj = LeakageObjective.for_problem(problem, m.values)
        at = rng.choice([0.0, 0.5, 1.0, rng.random()], size=m.n) if rng.random() < 0.5 else rng.random(m.n)
        planes = tangent_planes(m.cov, m.noise_var, obj, at)
        if planes is None:     # not covered: some term not concave nonincreasing (c < 0, c + d < 0, …)
            assert problem != "equilibrium"
            continue
        A, B = planes
        slack = 1e-12 * obj.scale(m.sigma2)
        for bits in itertools.product((0, 1), repeat=m.n):
            a = np.array(bits, dtype=np.int8)
            lin = A[a, np.arange(m.n)] + np.einsum("ij,j->i", B[a, np.arange(m.n)], a)
            assert np.all(_terms(m, obj, a) <= lin + slack)
            checked += 1
    assert checked > 400


def test_tangent_node_bound_never_below_best_completion():
    rng = np.random.default_rng(9)
    checked = 0
    for m, problem, _ in instances(60, 400, (3, 10)):
        obj = LeakageObjective.for_problem(problem, m.values)
        planes = tangent_planes(m.cov, m.noise_var, obj, rng.random(m.n))
        if planes is None:
            continue
        A, B = planes
        Bmax = np.maximum(B[0], B[1])
        profiles = np.array(list(itertools.product((0, 1), repeat=m.n)), dtype=np.int8)
        values = np.array([m.evaluate(obj, a) for a in profiles])
        for _ in range(8):
            state = rng.choice(np.array([0, 1, 2], dtype=np.int8), size=m.n)
            ok = np.all((profiles == 1) | (state != 1), axis=1) & np.all((profiles == 0) | (state != 2), axis=1)
            best = values[ok].max()
            assert tangent_bound(state, A, B, Bmax) >= best - 1e-12 * obj.scale(m.sigma2)
            checked += 1
    assert checked > 100


def test_bnb_with_tangent_planes_equals_enumeration():
    for m, problem, _ in instances(45, 500, (3, 13)):
        obj = LeakageObjective.for_problem(problem, m.values)
        raw = branch_and_bound(m, obj, tangent="both")
        _check_optimal(m, obj, raw)


# ------------------------------------------------------------- incumbent local search
def test_bnb_with_local_search_from_the_start_equals_enumeration(monkeypatch):
    import dm_opt.gaussian.backends.bnb as bnb_mod

    monkeypatch.setattr(bnb_mod, "LOCAL_SEARCH_AFTER", 0.0)
    calls = []
    real = bnb_mod._local_search

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(bnb_mod, "_local_search", spy)
    for m, problem, _ in instances(45, 600, (3, 13)):
        obj = LeakageObjective.for_problem(problem, m.values)
        raw = branch_and_bound(m, obj)
        _check_optimal(m, obj, raw)
    assert calls


def test_local_search_moves_only_to_better_exact_values():
    import dm_opt.gaussian.backends.bnb as bnb_mod

    rng = np.random.default_rng(3)
    for m, problem, _ in instances(20, 700, (4, 12)):
        obj = LeakageObjective.for_problem(problem, m.values)
        a = rng.integers(0, 2, m.n).astype(np.int8)
        start = m.evaluate(obj, a)
        inc_val = np.array([start])
        f = [np.array(x, dtype=float) for x in (m.cov, m.noise_var, m.sigma2, obj.c, obj.d, obj.e, obj.k, m.values)]
        bnb_mod._local_search(*f[:7], f[7], np.zeros(m.n, dtype=np.int8), a, inc_val, 0.0, np.inf)
        assert inc_val[0] >= start
        assert abs(inc_val[0] - m.evaluate(obj, a)) <= 1e-12 * obj.scale(m.sigma2)
        for i in range(m.n):         # 1-flip local optimum
            b = a.copy()
            b[i] ^= 1
            assert m.evaluate(obj, b) <= inc_val[0] + 1e-12 * obj.scale(m.sigma2)


def test_chain_split_first_equals_enumeration():
    """The other chain branching rule (on the user the static order names) is exact too."""
    for m, problem, _ in instances(45, 800, (3, 13)):
        obj = LeakageObjective.for_problem(problem, m.values)
        for opts in ({"chain_split": "first"}, {"chain_split": "median", "order": "index"}):
            _check_optimal(m, obj, branch_and_bound(m, obj, **opts))
