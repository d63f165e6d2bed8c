"""The O(n) result path of community markets: result arrays, profiles, prefix tables, objective weights.

Checked against independent oracles: fresh dense solves (tests/support/naive.py) for the value,
leakage, surplus and prices of a profile; a stable argsort for the lowest-value profile; plain
cumulative sums for the prefix tables.
"""

import math

import numpy as np
import pytest

import dm_opt
from dm_opt.core.errors import ProblemError
from dm_opt.core.result import frozen_array
from dm_opt.gaussian.backends.community import SortedCommunities
from dm_opt.gaussian.objectives import SCALE_BLOCK, LeakageObjective
from tests.support import naive
from tests.support.community_helpers import random_market

PROBLEMS = ("first_best", "equilibrium", "decorrelated")


def _dense_answer(m, objective, a):
    """(value, leakage, surplus, prices) of ``objective`` at ``a`` from fresh dense solves only."""
    S, tau2, v = m.cov_dense(), m.noise_var, np.asarray(m.values, float)
    A = np.flatnonzero(a)
    leak = naive.leakage(S, tau2, A)
    own = np.array([leak[i] - naive.leakage(S, tau2, A[A != i])[i] if a[i] else 0.0 for i in range(m.n)])
    value = math.fsum(objective.c * leak + a * (objective.d * leak - objective.e * own - objective.k))
    if objective.name == "decorrelated":
        leak = np.where(a == 1, leak, 0.0)
    surplus = math.fsum((1 - v) * leak)
    if objective.name == "equilibrium":
        prices = v * own
    elif objective.name == "decorrelated":
        prices = np.where(a == 1, v * leak, 0.0)
    else:
        prices = np.zeros(m.n)
    return value, leak, surplus, prices


@pytest.mark.parametrize("seed", range(60))
def test_result_arrays_match_dense_oracle(seed):
    """CommunityMarket.result_arrays equals fresh dense solves, for the named problems and a custom objective."""
    rng = np.random.default_rng(seed)
    m = random_market(rng)
    n = m.n
    objectives = [m.objective(p) for p in PROBLEMS]
    objectives.append(LeakageObjective("custom", rng.normal(size=n), rng.normal(size=n), rng.uniform(0, 2, n),
                                       rng.normal(size=n)))
    profiles = [np.zeros(n, np.int8), np.ones(n, np.int8)] + [rng.integers(0, 2, n).astype(np.int8)
                                                              for _ in range(3)]
    for obj in objectives:
        for a in profiles:
            value, leak, surplus, prices = m.result_arrays(obj, a)
            want = _dense_answer(m, obj, a)
            scale = 1.0 + obj.scale(m.sigma2)
            assert abs(value - want[0]) <= 1e-10 * scale
            assert np.allclose(leak, want[1], rtol=0, atol=1e-12)
            assert abs(surplus - want[2]) <= 1e-10 * scale
            assert np.allclose(prices, want[3], rtol=0, atol=1e-12)
            assert not leak.flags.writeable and not prices.flags.writeable


@pytest.mark.parametrize("seed", range(20))
def test_result_arrays_equal_general_methods(seed):
    """Leakage and prices bit for bit as the general market methods; value and surplus to round-off."""
    rng = np.random.default_rng(seed)
    m = random_market(rng)
    a = rng.integers(0, 2, m.n).astype(np.int8)
    for p in PROBLEMS:
        obj = m.objective(p)
        value, leak, surplus, prices = m.result_arrays(obj, a)
        general_leak = m.decorrelated_leakage(a) if p == "decorrelated" else m.leakage(a)
        general_surplus = m.decorrelated_surplus(a) if p == "decorrelated" else m.surplus(a)
        general_prices = m.prices(a, p) if p != "first_best" else np.zeros(m.n)
        assert np.array_equal(leak, general_leak)
        assert np.array_equal(prices, general_prices)
        assert value == pytest.approx(m.evaluate(obj, a), rel=1e-12, abs=1e-12)
        assert surplus == pytest.approx(general_surplus, rel=1e-12, abs=1e-12)


def test_result_arrays_refuse_wrong_length():
    m = random_market(np.random.default_rng(0))
    obj = LeakageObjective.for_problem("first_best", np.ones(m.n + 1))
    with pytest.raises(Exception, match="weights"):
        m.result_arrays(obj, np.zeros(m.n, np.int8))


def _ties_market(rng, sizes):
    # few distinct values: thresholds fall on ties of every multiplicity
    v = rng.choice([0.2, 0.7, 1.0, 1.0, 1.6], int(np.sum(sizes)))
    return dm_opt.CommunityMarket(sizes, 1.0, 0.1, 0.01, v)


@pytest.mark.parametrize("seed", range(10))
def test_profile_is_stable_lowest_value_prefix(seed):
    """The profile of counts m: the first m_k users of each community in the stable value order."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, 4)
    m = _ties_market(rng, sizes)
    sc = SortedCommunities(m)
    st = np.concatenate([[0], np.cumsum(sizes)])
    for _ in range(30):
        counts = np.array([rng.integers(0, s + 1) for s in sizes])
        want = np.zeros(m.n, np.int8)
        for k in range(len(sizes)):
            order = np.argsort(m.values[st[k]:st[k + 1]], kind="stable") + st[k]
            want[order[:counts[k]]] = 1
        got = sc.profile(counts, m.n)
        assert np.array_equal(got, want)
        assert np.array_equal(m.counts(got), counts)


@pytest.mark.parametrize("seed", range(10))
def test_prefix_tables(seed):
    """V and W (built on first use) are the prefix sums of the sorted values and of 1 − v."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 30, 3)
    m = _ties_market(rng, sizes) if seed % 2 else dm_opt.CommunityMarket(
        sizes, 1.0, 0.1, 0.01, rng.uniform(0, 3, int(sizes.sum())))
    sc = SortedCommunities(m)
    st = np.concatenate([[0], np.cumsum(sizes)])
    for k in range(len(sizes)):
        vs = np.sort(m.values[st[k]:st[k + 1]])
        V = [math.fsum(vs[:j]) for j in range(vs.size + 1)]
        W = [math.fsum(1 - vs[:j]) for j in range(vs.size + 1)]
        assert np.allclose(sc.V[k], V, rtol=0, atol=1e-12)
        assert np.allclose(sc.W[k], W, rtol=0, atol=1e-12)
        assert sc.W[k][0] == 0.0 and sc.V[k][0] == 0.0
        assert np.shares_memory(sc.W[k], sc.W_flat)


def test_objective_weights_are_frozen_and_never_alias_writable_input():
    rng = np.random.default_rng(1)
    c, d, e = rng.normal(size=5), rng.normal(size=5), rng.uniform(size=5)
    obj = LeakageObjective("x", c, d, e)
    c[0] = d[0] = e[0] = 99.0                      # the caller's arrays change, the objective does not
    assert 99.0 not in (obj.c[0], obj.d[0], obj.e[0])
    for key in "cdek":
        assert not getattr(obj, key).flags.writeable
    ro = np.arange(5.0)
    ro.setflags(write=False)
    view = np.arange(6.0)[:5]
    view.flags.writeable = False                   # read-only view of a writable base: copied
    assert LeakageObjective("y", view, view, view).c is not view
    assert LeakageObjective("y", ro, ro, ro).c is ro


def test_objective_zero_flags_and_scale():
    rng = np.random.default_rng(2)
    v = rng.uniform(0, 3, 50)
    s2 = rng.uniform(0.5, 2, 50)
    for p in PROBLEMS:
        obj = LeakageObjective.for_problem(p, v)
        for key in "cdek":
            assert obj.is_zero(key) == (not np.any(getattr(obj, key)))
        direct = float(np.sum((np.abs(obj.c) + np.abs(obj.d) + np.abs(obj.e)) * s2 + np.abs(obj.k)))
        assert obj.scale(s2) == direct                 # bit for bit: zero weights add exact zeros
    obj = LeakageObjective("x", v, -v, v, v)
    assert not any(obj.is_zero(key) for key in "cdek")
    assert obj.scale(s2) == float(np.sum((np.abs(v) * 3) * s2 + np.abs(v)))
    # several blocks (SCALE_BLOCK users each): the exactly rounded sum up to a few ulps
    n = 3 * SCALE_BLOCK + 17
    c, d, e, k = rng.normal(size=n), rng.normal(size=n), rng.uniform(size=n), rng.normal(size=n)
    s2 = rng.uniform(0.5, 2, n)
    for obj in (LeakageObjective("x", c, d, e, k), LeakageObjective("y", c, np.zeros(n), e)):
        exact = math.fsum(((np.abs(obj.c) + np.abs(obj.d) + np.abs(obj.e)) * s2 + np.abs(obj.k)).tolist())
        assert abs(obj.scale(s2) - exact) <= 1e-14 * exact


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_objective_rejects_non_finite_weights(bad):
    c = np.ones(4)
    c[2] = bad
    for args in ((c, np.zeros(4), np.zeros(4)), (np.zeros(4), np.zeros(4), np.zeros(4), c)):
        with pytest.raises(ProblemError, match="finite"):
            LeakageObjective("x", *args)


def test_objective_accepts_finite_weights_whose_sum_overflows():
    big = np.full(4, 1e308)
    assert LeakageObjective("x", big, -big, np.zeros(4)).c[0] == 1e308


def test_frozen_array_copies_unless_handed_over():
    w = np.arange(3.0)
    f = frozen_array(w)
    assert f is not w and not f.flags.writeable
    ro = np.arange(3.0)
    ro.setflags(write=False)
    assert frozen_array(ro) is ro
    assert frozen_array(ro, np.int8) is not ro             # another dtype: converted copy
    view = np.arange(4.0)[:3]
    view.flags.writeable = False
    assert frozen_array(view) is not view                  # a view may alias writable memory


def test_solve_result_arrays_read_only_and_consistent():
    m = random_market(np.random.default_rng(5), max_n=12)
    for p in PROBLEMS:
        r = dm_opt.solve(m, p, method="community")
        e = dm_opt.solve(m.to_gaussian(), p, method="enumerate")
        assert r.is_optimal and abs(r.objective - e.objective) <= r.tie_tol
        for arr in (r.profile, r.leakage, r.prices):
            assert not arr.flags.writeable
        assert np.array_equal(r.leakage, m.decorrelated_leakage(r.profile) if p == "decorrelated"
                              else m.leakage(r.profile))


def test_posterior_cache_eviction_keeps_sorted_values():
    """Evicting cached K×K posteriors never drops the solver's sorted values (re-sorting is O(n log n))."""
    from dm_opt.gaussian.backends.community import sorted_communities

    m = dm_opt.CommunityMarket([30, 40], 1.0, 0.1, 0.01, np.linspace(0, 2, 70))
    sc = sorted_communities(m)
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.integers(0, 2, 70)
        leak = m.leakage(a)
        assert np.allclose(leak, naive.leakage(m.cov_dense(), m.noise_var, np.flatnonzero(a)), atol=1e-12)
    assert sorted_communities(m) is sc
    assert len(m._cache) <= 66
