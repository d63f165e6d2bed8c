"""method="community", search="tighten": separable box bounds with domain tightening (issue 16).

Oracles: dense enumeration of ``to_gaussian()`` and the naive brute force of tests/support/naive.py
(small n), exhaustive completion of sampled count boxes (the bounds and cut-offs), direct K×K
solves (the algebraic facts the search uses), and the previous search (``search="boxes"``).
"""

import numpy as np
import pytest

import dm_opt
from dm_opt import CommunityMarket, Termination
from dm_opt.core import threads
from dm_opt.gaussian.backends import community as cs
from dm_opt.gaussian.backends.community import BoxScanner, CountModel, solve_counts
from tests.support import naive
from tests.support.community_helpers import random_market

PROBLEMS = ("first_best", "equilibrium", "decorrelated")
NEAR_ONE = (0.4, 1.0 - 1e-12, 1.0, 1.0 + 1e-12, 1.7)    # ties, and values within round-off of 1


def _markets(count, seed, max_n, near_one=False):
    rng = np.random.default_rng(seed)
    values = (lambda n: rng.choice(NEAR_ONE, n)) if near_one else None
    return [random_market(rng, max_n=max_n, max_K=4, values=values) for _ in range(count)]


def _tol(m, problem):
    return 1e-9 * m.objective(problem).scale(m.sigma2)


def _box_grid(lo, hi):
    return np.stack(np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi)], indexing="ij"),
                    -1).reshape(-1, lo.size)


@pytest.mark.parametrize("scan_exact", [512, 2])
@pytest.mark.parametrize("near_one", [False, True])
def test_small_markets_equal_dense_enumeration(scan_exact, near_one, monkeypatch):
    """n ≤ 14, K ≤ 4, tied values (and values within 1e-12 of 1): the tightening search (forced even
    where enumeration would be used; ``SCAN_EXACT = 2`` forces the block pass) is optimal, equals
    enumeration on the dense Σ, and returns one of enumeration's optimal profiles."""
    monkeypatch.setattr(cs, "SCAN_EXACT", scan_exact)
    for m in _markets(12, seed=31 + scan_exact + near_one, max_n=14, near_one=near_one):
        g = m.to_gaussian()
        for problem in PROBLEMS:
            e = dm_opt.solve(g, problem, method="enumerate", all_optima=True)
            r = dm_opt.solve(m, problem, method="community", strategy="bnb", search="tighten")
            assert r.status is Termination.OPTIMAL
            assert r.objective == pytest.approx(e.objective, abs=1e-9 * max(1.0, abs(e.objective)))
            assert any(np.array_equal(r.profile, o) for o in e.optima), (problem, r.profile)
            assert r.extra["proven_bound"] <= r.objective + r.tie_tol + 1e-12


def test_small_markets_equal_naive_brute_force():
    """n ≤ 8: the optimum equals the naive oracle's (fresh dense solves per subset, nothing shared)."""
    for m in _markets(6, seed=41, max_n=8) + _markets(4, seed=42, max_n=8, near_one=True):
        S = m.cov_dense()
        for problem in PROBLEMS:
            want, _ = naive.brute_force(S, m.noise_var, m.values, problem)
            r = dm_opt.solve(m, problem, method="community", strategy="bnb")
            assert r.status is Termination.OPTIMAL
            assert r.objective == pytest.approx(want, abs=1e-9 * max(1.0, abs(want)))
            got = naive.objective(S, m.noise_var, m.values, np.flatnonzero(r.profile), problem)
            assert got == pytest.approx(want, abs=1e-9 * max(1.0, abs(want)))


def _sampled_boxes(m, rng, count):
    for _ in range(count):
        x = rng.integers(0, m.sizes + 1)
        y = rng.integers(0, m.sizes + 1)
        yield np.minimum(x, y), np.maximum(x, y)


@pytest.mark.parametrize("scan_exact", [512, 3])
def test_bounds_and_cutoffs_never_cut_an_optimum(scan_exact, monkeypatch):
    """On sampled count boxes, against exhaustive completion (every count vector of the box):
    Σ_k ψ_k(m_k) ≥ f(m) everywhere; the exact and block maxima bound the box; every count vector
    with f > thr-level survives the exact and block cut-offs (thresholds from incumbents at and
    below the box maximum); and each cut-off's recorded bound dominates what it removed."""
    monkeypatch.setattr(cs, "SCAN_EXACT", scan_exact)
    rng = np.random.default_rng(50 + scan_exact)
    checked = 0
    markets = _markets(8, seed=51 + scan_exact, max_n=16) + _markets(4, seed=52, max_n=16, near_one=True)
    markets.append(CommunityMarket([9, 7, 6], [1.0, 1.5, 0.7], [0.3, -0.1, 0.5],
                                   [[1, 0.1, -0.05], [0.1, 1, 0.1], [-0.05, 0.1, 1]],
                                   {"family": "uniform", "low": 0.0, "high": 2.5, "seed": 3}, [1.0, 0.5, 2.0]))
    for m in markets:
        for problem in PROBLEMS:
            model = CountModel(m, problem)
            scan = BoxScanner(model)
            for lo, hi in _sampled_boxes(m, rng, 4):
                grid = _box_grid(lo, hi)
                f = model.value(grid)
                xs, xl = scan.x_range(lo, hi)
                mx, arg = scan.exact(lo, hi, xs, xl)
                # ψ at every count of every community (a one-count box scans exactly that count)
                psi = np.zeros(grid.shape[0])
                for k in range(m.K):
                    table = {}
                    for c in range(lo[k], hi[k] + 1):
                        one_lo, one_hi = lo.copy(), hi.copy()
                        one_lo[k] = one_hi[k] = c
                        table[c] = scan.exact(one_lo, one_hi, xs, xl)[0][k]
                    psi += np.array([table[c] for c in grid[:, k]])
                assert np.all(psi >= f - 1e-12 * max(1.0, np.abs(f).max()))
                S = float(mx.sum())
                assert S >= f.max() - 1e-12
                bl = scan.blocks(lo, hi, xs, xl)
                mxb = np.array([ub.max() for _, _, ub in bl])
                assert np.all(mxb >= mx - 1e-12)
                for level in (f.max(), np.quantile(f, 0.5), f.min() - 1.0):
                    tol = _tol(m, problem)
                    keep = grid[f > level + tol]
                    for kind, MX in (("exact", mx), ("blocks", mxb)):
                        Sk = float(MX.sum())
                        if Sk <= level + tol:
                            continue
                        thr = level + tol - (Sk - MX)
                        if kind == "exact":
                            nlo, nhi, cut = scan.tighten(lo, hi, xs, xl, thr)
                        else:
                            nlo, nhi, cut = scan.tighten_blocks(lo, hi, bl, thr)
                        assert np.all(nlo >= lo) and np.all(nhi <= hi) and np.all(nlo <= nhi)
                        assert np.all((keep >= nlo) & (keep <= nhi)), (kind, problem, lo, hi, nlo, nhi)
                        removed = ~np.all((grid >= nlo) & (grid <= nhi), axis=1)
                        if removed.any():
                            c = cut > -np.inf
                            assert c.any()
                            rec = float(np.max(cut[c] + (Sk - MX[c])))
                            assert rec >= f[removed].max() - 1e-12
                            assert rec <= level + tol + 1e-9
                        checked += 1
    assert checked > 200


def test_facts_used_by_the_search():
    """Checked on direct K×K solves, including negative within-community correlation:
    u_k is nonincreasing in every count; u_k = x_k/(1 + m_k x_k/d_k) exactly; the one-community
    update of the incumbent heuristic equals a fresh solve."""
    rng = np.random.default_rng(61)
    markets = _markets(10, seed=61, max_n=30)
    markets.append(CommunityMarket([6, 5, 8], [1.0, 2.0, 0.5], [-0.1, 0.4, 0.1], [[1, -0.05, 0.03], [-0.05, 1, 0.1],
                                   [0.03, 0.1, 1]], np.ones(19), [0.5, 1.0, 2.0]))
    for m in markets:
        model = CountModel(m, "first_best")
        d = model.d
        for _ in range(10):
            M = rng.integers(0, m.sizes + 1)
            u = model.u(M[None])[0]
            for l in range(m.K):
                if M[l] < m.sizes[l]:
                    up = M.copy()
                    up[l] += 1
                    assert np.all(model.u(up[None])[0] <= u + 1e-14 * np.abs(np.diag(m.B)).max())
            x = model.u_without(M[None])[0]
            for k in range(m.K):
                z = M.copy()
                z[k] = 0
                assert x[k] == pytest.approx(model.u(z[None])[0][k], rel=1e-12, abs=1e-15)
            assert np.allclose(x / (1 + M * x / d), u, rtol=1e-12, atol=1e-15)
            k = int(rng.integers(m.K))
            base = M.copy()
            base[k] = 0
            P = m.common_posterior(base[None])[0]
            for t in range(m.sizes[k] + 1):
                Mt = base.copy()
                Mt[k] = t
                ut = np.diag(P) - t * P[k] ** 2 / (t * P[k, k] + d[k])
                assert np.allclose(ut, model.u(Mt[None])[0], rtol=1e-11, atol=1e-14)


MEDIUM = [
    (dict(sizes=[40, 35, 30, 25, 30], cross=0.05, seed=1), PROBLEMS),
    (dict(sizes=[25, 20, 30, 15, 20, 25, 30, 20], cross=0.03, seed=2), PROBLEMS),
]


def _medium(sizes, cross, seed):
    rng = np.random.default_rng(seed)
    K = len(sizes)
    return CommunityMarket(sizes, rng.uniform(0.5, 2.0, K), rng.uniform(0.05, 0.2, K), cross,
                           {"family": "uniform", "low": rng.uniform(0.0, 0.8, K).tolist(),
                            "high": rng.uniform(1.2, 3.0, K).tolist(), "seed": seed})


@pytest.mark.parametrize("spec,problems", MEDIUM)
def test_medium_markets_equal_previous_search(spec, problems):
    """K = 5 and 8: both searches optimal with the same objective (within the tie tolerance),
    each bound certifying the other's answer."""
    m = _medium(**spec)
    for problem in problems:
        tol = _tol(m, problem)
        new = solve_counts(m, problem, tol=tol, strategy="bnb", search="tighten")
        old = solve_counts(m, problem, tol=tol, strategy="bnb", search="boxes")
        assert new["status"] is Termination.OPTIMAL and old["status"] is Termination.OPTIMAL
        assert abs(new["value"] - old["value"]) <= tol
        assert new["bound"] >= old["value"] - 1e-12 and old["bound"] >= new["value"] - 1e-12
        assert new["bound"] <= new["value"] + tol + 1e-12


@pytest.mark.slow
def test_k10_equals_previous_search():
    """K = 10, n = 20 000 (slow): the same objective as the previous search for every problem."""
    m = _medium([2000] * 10, 0.05, 3)
    for problem in PROBLEMS:
        tol = _tol(m, problem)
        new = solve_counts(m, problem, tol=tol, search="tighten")
        old = solve_counts(m, problem, tol=tol, search="boxes")
        assert new["status"] is Termination.OPTIMAL and old["status"] is Termination.OPTIMAL
        assert abs(new["value"] - old["value"]) <= tol


def test_limits_are_honest():
    """An instance that needs branching: node and time limits return the incumbent with a bound
    that is at least the optimum and a nonnegative gap; never ``optimal`` without the certificate."""
    m = _medium([300] * 5, 0.03, 5)
    tol = _tol(m, "first_best")
    full = solve_counts(m, "first_best", tol=tol, strategy="bnb")
    assert full["status"] is Termination.OPTIMAL and full["nodes"] > 3
    lim = solve_counts(m, "first_best", tol=tol, strategy="bnb", max_nodes=2)
    assert lim["status"] is Termination.NODE_LIMIT
    assert lim["bound"] >= full["value"] - tol and lim["value"] <= full["value"] + tol
    assert lim["bound"] - lim["value"] > tol       # not certified: that is why it is not optimal
    r = dm_opt.solve(m, "first_best", method="community", time_limit=1e-9, local_search=False)
    assert r.status is Termination.TIME_LIMIT
    assert r.bound >= full["value"] - tol and r.gap >= 0


def test_search_option_validated():
    m = _medium([5, 6], 0.05, 5)
    with pytest.raises(dm_opt.ProblemError, match="search"):
        dm_opt.solve(m, "first_best", method="community", search="nope")


def test_blas_threads_helper(monkeypatch):
    """The pools are limited inside the block and restored after (also on an exception); a no-op
    without threadpoolctl or with ``None``; a bad limit is refused."""
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info

    def sizes():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = sizes()
    with threads.blas_threads(1):
        assert all(s == 1 for s in sizes())
    assert sizes() == before
    with pytest.raises(RuntimeError):
        with threads.blas_threads(1):
            raise RuntimeError("boom")
    assert sizes() == before
    with threads.blas_threads(None):
        assert sizes() == before
    with pytest.raises(ValueError, match="limit"):
        with threads.blas_threads(0):
            pass
    monkeypatch.setattr(threads, "_controller", False)     # as if threadpoolctl were missing
    assert not threads.available()
    with threads.blas_threads(1):
        assert sizes() == before
