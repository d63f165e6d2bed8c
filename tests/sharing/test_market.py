"""SharingMarket (RJ §3–§6): utility families, costs, welfare evaluation, validation."""

import numpy as np
import pytest

from dm_opt import InstanceError, ProblemError, SharingMarket
from dm_opt.core.errors import LimitExceeded


def rand_power(N, seed, cost="matrix", Q=None):
    rng = np.random.default_rng(seed)
    c = {"matrix": rng.uniform(0, 0.05, (N, N)), "vector": rng.uniform(0, 0.05, N), "scalar": 0.01}[cost]
    return SharingMarket.power(rng.integers(5, 200, N).astype(float), alpha=rng.uniform(0.5, 2, N),
                               beta=rng.uniform(0.2, 1.0, N), cost=c, max_queries=Q)


def test_power_value_formula_and_table():
    m = rand_power(5, 0)
    U = m.utility_table()
    for i in range(5):
        for mask in range(32):
            S = [j for j in range(5) if (mask >> j) & 1 and j != i]
            expect = m.alpha[i] * (1 - (m.samples[i] + sum(m.samples[j] for j in S)) ** (-m.beta[i]))
            assert U[i, mask] == pytest.approx(expect, rel=1e-12)
            assert m.value(i, S) == pytest.approx(expect, rel=1e-12)


def test_costs_forms_and_pair_tables():
    N = 4
    for kind in ("matrix", "vector", "scalar"):
        m = rand_power(N, 1, kind)
        C = m.cost_matrix()
        assert np.all(np.diag(C) == 0)
        for i in range(N):
            for j in range(N):
                assert m.cost(i, j) == C[i, j]
        Pb, Bb = m.bilateral_table(), m.buyer_table()
        for i in range(N):
            for mask in range(1 << N):
                S = [j for j in range(N) if (mask >> j) & 1 and j != i]
                assert Pb[i, mask] == pytest.approx(m.value(i, S) - sum(C[i, j] for j in S))
                assert Bb[i, mask] == pytest.approx(m.value(i, S) - sum(C[j, i] for j in S))
                assert m.bilateral_value(i, S) == pytest.approx(Pb[i, mask])
                assert m.buyer_value(i, S) == pytest.approx(Bb[i, mask])


def test_table_ignores_own_bit_and_welfare():
    rng = np.random.default_rng(2)
    U = rng.uniform(size=(3, 8))
    m = SharingMarket.from_table(U, cost=rng.uniform(0, 0.1, (3, 3)))
    for i in range(3):
        for mask in range(8):
            assert m.value(i, mask | (1 << i)) == m.value(i, mask & ~(1 << i)) == U[i, mask & ~(1 << i)]
    share = np.array([[0, 1, 1], [0, 0, 1], [1, 0, 0]])
    C = m.cost_matrix()
    V = [m.value(0, [2]) - C[0, 1] - C[0, 2], m.value(1, [0]) - C[1, 2], m.value(2, [0, 1]) - C[2, 0]]
    assert m.agent_values(share) == pytest.approx(V)
    assert m.welfare(share) == pytest.approx(sum(V))


def test_queries_value_counts_units():
    m = SharingMarket.power([100, 50, 20], alpha=2.0, beta=0.5, query_samples=[10, 5, 2], max_queries=3)
    share = np.array([[0, 2, 3], [1, 0, 0], [0, 3, 0]])
    V = m.agent_values(share)
    assert V[0] == pytest.approx(2 * (1 - (100 + 5) ** -0.5))
    assert V[1] == pytest.approx(2 * (1 - (50 + 20 + 6) ** -0.5))
    assert V[2] == pytest.approx(2 * (1 - (20 + 30) ** -0.5))


def test_from_sets_matches_table():
    vals = {0: {frozenset(): 1.0, frozenset([1]): 0.0}, 1: {frozenset(): 0.0, frozenset([0]): 10.0}}
    m = SharingMarket.from_sets(2, vals)
    assert m.value(0, []) == 1 and m.value(0, [1]) == 0 and m.value(1, [0]) == 10


@pytest.mark.parametrize("kwargs, field", [
    (dict(family="nope"), "family"),
    (dict(family="table"), "utility"),
    (dict(family="table", utility=np.zeros((1, 2))), "utility"),
    (dict(family="table", utility=np.zeros((3, 4))), "utility"),
    (dict(family="table", utility=np.zeros((17, 4))), "utility"),
    (dict(family="table", utility=[[0.0, float("nan")], [0, 0]]), "utility[0,1]"),
    (dict(family="table", utility=np.zeros((2, 4)), samples=[1, 2]), "samples"),
    (dict(family="table", utility=np.zeros((2, 4)), max_queries=2), "max_queries"),
    (dict(family="power"), "samples"),
    (dict(family="power", samples=[1, 0]), "samples[1]"),
    (dict(family="power", samples=[1]), "samples"),
    (dict(family="power", samples=[1, 2], alpha=[1, -1]), "alpha[1]"),
    (dict(family="power", samples=[1, 2], alpha=[1, 1, 1]), "alpha"),
    (dict(family="power", samples=[1, 2], beta=0.0), "beta[0]"),
    (dict(family="power", samples=[1, 2], query_samples=[1, -2]), "query_samples[1]"),
    (dict(family="power", samples=[1, 2], utility=np.zeros((2, 4))), "utility"),
    (dict(family="power", samples=[1, 2], cost=-1.0), "cost[0]"),
    (dict(family="power", samples=[1, 2], cost=[0.1, -0.1]), "cost[1]"),
    (dict(family="power", samples=[1, 2], cost=[0.1, 0.1, 0.1]), "cost"),
    (dict(family="power", samples=[1, 2], cost=[[0, -1], [0, 0]]), "cost[0,1]"),
    (dict(family="power", samples=[1, 2], cost=np.zeros((3, 3))), "cost"),
    (dict(family="power", samples=[1, 2], cost=np.zeros((2, 2, 2))), "cost"),
    (dict(family="power", samples=[1, 2], cost="x"), "cost"),
    (dict(family="power", samples=[1, 2], max_queries=[1, 1.5]), "max_queries[1]"),
    (dict(family="power", samples=[1, 2], max_queries=0), "max_queries[0]"),
    (dict(family="power", samples=[1, 2], names=["a"]), "names"),
    (dict(family="power", samples=[1, 2], names=["a", "a"]), "names"),
])
def test_validation_errors_name_the_field(kwargs, field):
    fam = kwargs.pop("family")
    with pytest.raises(InstanceError) as ei:
        SharingMarket(fam, **kwargs)
    assert ei.value.field == field


def test_from_sets_errors():
    with pytest.raises(InstanceError) as ei:
        SharingMarket.from_sets(2, {0: {frozenset(): 1.0}, 1: {frozenset(): 0.0, frozenset([0]): 1.0}})
    assert ei.value.field == "utility[0]" and "missing value" in ei.value.problem
    with pytest.raises(InstanceError) as ei:
        SharingMarket.from_sets(2, {0: {frozenset([0]): 1.0}, 1: {}})
    assert "not a set of other agents" in ei.value.problem
    with pytest.raises(InstanceError) as ei:
        SharingMarket.from_sets(2, {0: {frozenset(): 1.0, frozenset([1]): 0.0}})
    assert ei.value.field == "utility[1]"
    for bad in (1, True, 17):
        with pytest.raises(InstanceError) as ei:
            SharingMarket.from_sets(bad, {})
        assert ei.value.field == "n"
    with pytest.raises(InstanceError):
        SharingMarket.from_sets(2, [1, 2])


def test_share_matrix_and_agent_errors():
    m = SharingMarket.power([10, 20, 30], max_queries=2)
    with pytest.raises(InstanceError):
        m.agent_values(np.zeros((2, 2)))
    with pytest.raises(InstanceError):
        m.agent_values(np.full((3, 3), 0.5))
    with pytest.raises(InstanceError):
        m.agent_values(np.eye(3))
    with pytest.raises(InstanceError) as ei:
        m.agent_values(np.array([[0, 3, 0], [0, 0, 0], [0, 0, 0]]))
    assert ei.value.field == "share[0,1]"
    with pytest.raises(ProblemError):
        m.value(3, [])
    with pytest.raises(ProblemError):
        m.value(True, [])
    with pytest.raises(ProblemError):
        SharingMarket.from_table(np.zeros((2, 4))).value(0, [1], weights=[1.0])


def test_tabulating_large_power_market_is_refused():
    m = SharingMarket.power(np.arange(1, 18, dtype=float))
    with pytest.raises(LimitExceeded):
        m.utility_table()
