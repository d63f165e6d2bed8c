"""Unilateral sharing (RJ §4, §6): welfare-maximising graph, competitive prices, price range."""

import itertools

import numpy as np
import pytest

from dm_opt import ProblemError, SharingMarket
from dm_opt.errors import LimitExceeded
from dm_opt.result import Termination
from dm_opt.solvers import sharing_welfare as W


def rand_power(N, seed, Q=None, qs=None):
    rng = np.random.default_rng(seed)
    return SharingMarket.power(rng.integers(5, 150, N).astype(float), alpha=rng.uniform(0.5, 2, N),
                               beta=rng.uniform(0.2, 1.0, N), cost=rng.uniform(0, 0.06, (N, N)),
                               max_queries=Q, query_samples=qs)


def rand_table(N, seed):
    rng = np.random.default_rng(seed)
    return SharingMarket.from_table(rng.uniform(0, 1, (N, 1 << N)), cost=rng.uniform(0, 0.3, (N, N)))


def brute_force_graph(m):
    """Independent oracle: every directed graph (every integer share matrix), welfare
    evaluated with SharingMarket.welfare — no per-buyer decomposition."""
    N = m.n
    cells = [(j, i) for j in range(N) for i in range(N) if i != j]
    best, arg = -np.inf, None
    for units in itertools.product(*[range(m.max_queries[j] + 1) for j, _ in cells]):
        S = np.zeros((N, N), dtype=int)
        for (j, i), u in zip(cells, units):
            S[j, i] = u
        w = m.welfare(S)
        if w > best:
            best, arg = w, S
    return best, arg


@pytest.mark.parametrize("seed", range(2))
def test_all_methods_equal_brute_force_over_graphs_power(seed):
    m = rand_power(4, seed)
    best, _ = brute_force_graph(m)
    for meth in ("enumerate", "bnb", "milp", "auto"):
        r = W.welfare_max(m, meth)
        assert r.status is Termination.OPTIMAL and r.gap == 0
        assert r.welfare == pytest.approx(best, abs=1e-10)
        assert m.welfare(r.share) == pytest.approx(r.welfare, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_enumeration_equals_brute_force_over_graphs_table(seed):
    m = rand_table(4, seed)
    best, _ = brute_force_graph(m)
    r = W.welfare_max(m)
    assert r.method == "enumerate" and r.welfare == pytest.approx(best, abs=1e-12)
    with pytest.raises(ProblemError):
        W.welfare_max(m, "milp")
    with pytest.raises(ProblemError):
        W.welfare_max(m, "bnb")


def test_queries_section_6_equal_brute_force():
    """Per-query extension (RJ §6, eq. 35): integer units up to max_queries, cost per query."""
    m = rand_power(3, 9, Q=[3, 2, 2], qs=[20, 15, 10])
    best, _ = brute_force_graph(m)
    for meth in ("enumerate", "bnb", "milp"):
        assert W.welfare_max(m, meth).welfare == pytest.approx(best, abs=1e-10)


@pytest.mark.parametrize("N, seeds", [(12, (0, 1)), pytest.param(25, (0, 1, 2), marks=pytest.mark.slow)])
def test_bnb_equals_milp_on_larger_instances(N, seeds):
    for seed in seeds:
        m = rand_power(N, 100 + seed, Q=2 if seed == 1 else None)
        a, b = W.welfare_max(m, "bnb"), W.welfare_max(m, "milp")
        assert a.welfare == pytest.approx(b.welfare, abs=1e-9)
        assert a.status is b.status is Termination.OPTIMAL


def test_exclude_agent_isolates_it():
    m = rand_power(5, 3)
    r = W.welfare_max(m, exclude_agent=2)
    assert r.share[2].sum() == 0 and r.share[:, 2].sum() == 0
    V = m.agent_values(r.share)
    assert r.welfare == pytest.approx(V.sum() - V[2])


# ---------------------------------------------------------------- prices
def _demand_brute(m, i, prices):
    N = m.n
    best = -np.inf
    for units in itertools.product(*[range(m.max_queries[j] + 1) if j != i else [0] for j in range(N)]):
        best = max(best, W.buyer_value(m, i, np.array(units), prices))
    return best


@pytest.mark.parametrize("maker, seed", [(rand_power, 0), (rand_power, 1), (rand_table, 2), (rand_table, 3)])
def test_prop_4_1_prices_reproduce_graph_and_prop_4_2_range(maker, seed):
    m = maker(4, seed)
    r = W.welfare_max(m)
    p = W.competitive_prices(m, r)
    assert p.demand_ok
    C = m.cost_matrix()
    np.testing.assert_array_equal(p.prices, C)
    # payments (eq. 6) are transfers: they sum to zero; each agent's utility is its buyer value (eq. 8)
    assert p.payments.sum() == pytest.approx(0.0, abs=1e-12)
    for i in range(m.n):
        phi = W.buyer_value(m, i, r.share[:, i], C[:, i])
        assert p.utilities[i] == pytest.approx(phi, abs=1e-12)
        # independent demand check at the competitive prices
        assert _demand_brute(m, i, C[:, i]) == pytest.approx(phi, abs=1e-12)
    for j in range(m.n):
        for i in range(m.n):
            if i == j:
                continue
            pm = p.price_max[j, i]
            assert pm >= C[j, i] - 1e-12                          # c_j(i) lies in the range
            if r.share[j, i] == 0:
                assert pm == np.inf
                continue
            # at p^max the bundle is still demanded; a little above it is not
            pr = C[:, i].copy()
            pr[j] = pm
            phi = W.buyer_value(m, i, r.share[:, i], pr)
            assert _demand_brute(m, i, pr) <= phi + 1e-9
            pr[j] = pm + 1e-6
            assert _demand_brute(m, i, pr) > W.buyer_value(m, i, r.share[:, i], pr) + 1e-9


def test_price_range_with_queries():
    m = rand_power(3, 4, Q=3, qs=[10, 8, 6])
    r = W.welfare_max(m)
    p = W.competitive_prices(m, r)
    assert p.demand_ok
    for j, i in zip(*np.nonzero(r.share)):
        pr = m.cost_matrix()[:, i].copy()
        pr[j] = p.price_max[j, i]
        assert _demand_brute(m, i, pr) <= W.buyer_value(m, i, r.share[:, i], pr) + 1e-9
        pr[j] += 1e-6
        assert _demand_brute(m, i, pr) > W.buyer_value(m, i, r.share[:, i], pr) + 1e-9


def test_bad_requests():
    m = rand_power(3, 0)
    with pytest.raises(ProblemError):
        W.welfare_max(m, "simplex")
    with pytest.raises(ProblemError):
        W.welfare_max(m, quality=0.0)
    with pytest.raises(ProblemError):
        W.competitive_prices(m, W.welfare_max(m, exclude_agent=0))
    big = SharingMarket.power(np.arange(1, 25, dtype=float), max_queries=3)
    with pytest.raises(LimitExceeded):
        W.welfare_max(big, "enumerate")


def test_bnb_node_limit_reports_bound():
    m = rand_power(30, 5, Q=3)
    prob = W.BuyerProblem(0, m.cost_matrix()[:, 0], W._allowed_upper(m, 0))
    exact = W.solve_buyer(m, prob, "milp")
    cut = W._solve_bnb(m, prob, node_limit=3)
    assert cut.status is Termination.NODE_LIMIT
    assert cut.value <= exact.value + 1e-12 <= cut.bound + 2e-12


def test_limits_pass_through_welfare_max():
    m = rand_power(30, 6, Q=3)
    r = W.welfare_max(m, "bnb", node_limit=2)
    assert r.status is Termination.NODE_LIMIT and r.bound >= r.welfare and r.gap > 0
