"""Enumeration vs the independent brute-force oracle (tests/support/naive.py), all three problems."""

import numpy as np
import pytest

import dm_opt
from dm_opt.core.generators import banded, block, equicorrelated, wishart
from dm_opt.gaussian.backends.enumeration import enumerate_market, merge_chunks, plan_chunks, run_chunk
from tests.support import naive

PROBLEMS = ("first_best", "equilibrium", "decorrelated")


def _random_market(rng, n):
    fam = rng.integers(4)
    seed = int(rng.integers(1 << 30))
    if fam == 0:
        S = wishart(n, seed)
    elif fam == 1:
        S = equicorrelated(n, rho=float(rng.uniform(-0.8 / max(n - 1, 1), 0.9)))
    elif fam == 2:
        S = banded(n, seed, bandwidth=2)
    else:
        S = block(n, sizes=[n // 2, n - n // 2], within=0.4, across=0.1)
    S = S * rng.uniform(0.3, 3.0)                      # heterogeneous scale
    v = rng.uniform(0.0, 2.5, size=n)
    tau2 = rng.uniform(0.3, 2.0, size=n) if rng.random() < 0.5 else np.ones(n)
    return dm_opt.GaussianMarket(S, v, tau2)


def _sets(profiles):
    return {tuple(int(x) for x in p) for p in profiles}


@pytest.mark.parametrize("seed", range(6))
def test_enumeration_matches_brute_force_random(seed):
    rng = np.random.default_rng(1000 + seed)
    for _ in range(8):
        n = int(rng.integers(1, 10))
        m = _random_market(rng, n)
        for problem in PROBLEMS:
            r = dm_opt.solve(m, problem, method="enumerate", all_optima=True)
            best, optima = naive.brute_force(m.cov, m.noise_var, m.values, problem, tol=r.tie_tol)
            assert r.is_optimal and r.gap == 0.0
            assert r.objective == pytest.approx(best, abs=1e-9 * (1 + abs(best)))
            assert _sets(r.optima) == _sets(optima), (n, problem)
            assert tuple(r.profile) in _sets(optima)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("n,rho,v", [(4, 0.3, 1.18), (5, 0.5, 1.0), (6, 0.2, 0.7), (5, 0.0, 1.0), (6, 0.6, 1.6)])
def test_enumeration_ties_symmetric(problem, n, rho, v):
    """Equicorrelated Σ with equal values: optima come in symmetric orbits; v = 1 and ρ = 0 give massive ties."""
    m = dm_opt.GaussianMarket(equicorrelated(n, rho=rho), [v] * n)
    r = dm_opt.solve(m, problem, method="enumerate", all_optima=True)
    best, optima = naive.brute_force(m.cov, m.noise_var, m.values, problem, tol=r.tie_tol)
    assert r.objective == pytest.approx(best, abs=1e-12)
    assert _sets(r.optima) == _sets(optima)
    # symmetry: the tie set is closed under permutations (same number of sharers => all of them)
    counts = {int(sum(p)) for p in r.optima}
    from math import comb
    assert len(r.optima) == sum(comb(n, k) for k in counts)
    # canonical choice: the smallest bit mask among the optima
    masks = [int(sum(int(x) << i for i, x in enumerate(p))) for p in r.optima]
    assert int(sum(int(x) << i for i, x in enumerate(r.profile))) == min(masks)


def test_chunked_equals_single_chunk_and_threads():
    """Splitting by leading bits, any chunk count and thread count, gives the same answer and tie set."""
    m = dm_opt.GaussianMarket(wishart(13, 5), np.linspace(0.2, 1.8, 13))
    ref = enumerate_market(m, m.objective("equilibrium"), all_optima=True, chunk_bits=0, workers=1)
    for bits in (1, 3, 7, 13):
        for workers in (1, 2):
            r = enumerate_market(m, m.objective("equilibrium"), all_optima=True, chunk_bits=bits, workers=workers)
            assert np.array_equal(r.profile, ref.profile)
            assert _sets(r.optima) == _sets(ref.optima)
            assert r.nodes == 2 ** 13


def test_chunk_api_merge():
    m = dm_opt.GaussianMarket(equicorrelated(8, rho=0.3), [1.18] * 8)
    obj = m.objective("equilibrium")
    plan = plan_chunks(8, chunk_bits=3)
    tol = 1e-9
    merged = merge_chunks([run_chunk(m, obj, plan, c, tol) for c in range(plan.n_chunks)], tol)
    assert merged.count == 256
    best, optima = naive.brute_force(m.cov, m.noise_var, m.values, "equilibrium", tol=tol)
    assert merged.best == pytest.approx(best, abs=1e-12)
    assert len(merged.masks) == len(optima)


def test_refresh_keeps_accuracy_n16():
    """Gray-code walk values vs fresh solves at sampled profiles (accumulated round-off stays tiny)."""
    m = dm_opt.GaussianMarket(wishart(16, 3), np.full(16, 1.3))
    obj = m.objective("equilibrium")
    r = enumerate_market(m, obj, all_optima=False)
    walk_best = r.extra["walk_best"]
    exact = m.evaluate(obj, r.profile)
    assert abs(walk_best - exact) <= 1e-10 * max(1.0, abs(exact))


def test_general_objective_with_k():
    rng = np.random.default_rng(7)
    n = 7
    m = dm_opt.GaussianMarket(wishart(n, 9), rng.uniform(0, 2, n))
    c, d, e, k = rng.normal(size=n), rng.normal(size=n), rng.uniform(0, 2, n), rng.uniform(-0.2, 0.3, n)
    obj = dm_opt.LeakageObjective("custom", c, d, e, k)
    r = dm_opt.solve(m, obj, method="enumerate")
    best = -np.inf
    for a in naive.subsets(n):
        A = np.flatnonzero(a)
        I = naive.leakage(m.cov, m.noise_var, A)
        val = float(c @ I)
        for i in A:
            I0 = naive.leakage(m.cov, m.noise_var, [j for j in A if j != i])[i]
            val += d[i] * I[i] - e[i] * (I[i] - I0) - k[i]
        best = max(best, val)
    assert r.objective == pytest.approx(best, abs=1e-10)


def test_size_limit_refuses_with_suggestion():
    m = dm_opt.GaussianMarket(np.eye(30), np.ones(30))
    with pytest.raises(dm_opt.LimitExceeded, match="bnb"):
        dm_opt.solve(m, "first_best", method="enumerate")
    with pytest.raises(dm_opt.LimitExceeded, match="max_n = 8"):
        dm_opt.solve(dm_opt.GaussianMarket(np.eye(9), np.ones(9)), "first_best", method="enumerate", max_n=8)


def test_time_limit_returns_incumbent_and_proven_bound():
    m = dm_opt.GaussianMarket(wishart(22, 1), np.linspace(0.1, 2.0, 22))
    obj = m.objective("first_best")
    r = dm_opt.solve(m, obj, method="enumerate", time_limit=1e-4, chunk_bits=10)
    # 1024 chunks of 4096 profiles cannot finish in 0.1 ms; the first chunk always runs
    assert r.status is dm_opt.Termination.TIME_LIMIT
    assert r.has_solution and not r.is_optimal
    assert 0 < r.extra["chunks_done"] < r.extra["chunks"]
    full = dm_opt.solve(m, obj, method="enumerate")
    assert r.objective <= full.objective + 1e-12
    assert r.bound >= full.objective - 1e-12
    assert r.gap > 0 or r.objective == pytest.approx(full.objective)
    with pytest.raises(dm_opt.SolverFailed):
        r.raise_for_status()


def test_too_many_ties_is_reported():
    m = dm_opt.GaussianMarket(np.eye(10), np.ones(10))   # v = 1, independent: every profile ties
    with pytest.raises(dm_opt.LimitExceeded, match="tie"):
        dm_opt.solve(m, "first_best", method="enumerate", all_optima=True, max_optima=100)
    r = dm_opt.solve(m, "first_best", method="enumerate", max_optima=100)
    assert r.is_optimal and r.objective == 0.0


def test_unknown_option_and_method():
    m = dm_opt.GaussianMarket(np.eye(2), [0.5, 2.0])
    with pytest.raises(dm_opt.ProblemError, match="unknown option"):
        dm_opt.solve(m, "first_best", method="enumerate", bogus=1)
    with pytest.raises(dm_opt.ProblemError, match="unknown method"):
        dm_opt.solve(m, "first_best", method="nope")
    with pytest.raises(dm_opt.ProblemError, match="unknown problem"):
        dm_opt.solve(m, "second_best")
    with pytest.raises(dm_opt.ProblemError, match="time_limit"):
        dm_opt.solve(m, "first_best", time_limit=-1)
