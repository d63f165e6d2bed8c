"""Unilateral sharing (RJ §4, §6): welfare-maximising graph, competitive prices, price range."""

import itertools
import time

import numpy as np
import pytest

from dm_opt import ProblemError, SharingMarket
from dm_opt.core.errors import LimitExceeded
from dm_opt.core.result import Termination
from dm_opt.sharing import buyer as BU
from dm_opt.sharing import prices as P
from dm_opt.sharing import welfare as W
from tests.support.limits_helpers import CtrlC


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
    prob = W.BuyerProblem(0, m.cost_matrix()[:, 0], BU.allowed_upper(m, 0))
    exact = W.solve_buyer(m, prob, "milp")
    cut = BU._solve_bnb(m, prob, node_limit=3)
    assert cut.status is Termination.NODE_LIMIT
    assert cut.value <= exact.value + 1e-12 <= cut.bound + 2e-12


def test_limits_pass_through_welfare_max():
    m = rand_power(30, 6, Q=3)
    r = W.welfare_max(m, "bnb", node_limit=2)
    assert r.status is Termination.NODE_LIMIT and r.bound >= r.welfare and r.gap > 0


# ------------------------------------------------- limits and interruption
from dm_opt.core.result import relative_gap  # noqa: E402
from dm_opt.sharing import kernels as K  # noqa: E402


def _check_partial(m, r, exact, status):
    """A stopped welfare run: feasible graph, objective re-evaluated, proven bound, honest status."""
    assert r.status is status and not r.is_optimal and r.message
    assert m.welfare(r.share) == pytest.approx(r.welfare, abs=1e-9)          # feasible, value exact
    assert r.objective == r.welfare
    assert r.welfare <= exact.welfare + 1e-9 <= r.bound + 2e-9
    assert r.bound == pytest.approx(float(np.sum(r.buyer_bounds)), abs=1e-9)
    assert r.gap == pytest.approx(relative_gap(r.welfare, r.bound))
    assert np.all(r.buyer_bounds >= r.buyer_values - 1e-12)
    for i in range(m.n):                                   # every buyer's bound holds for its exact optimum
        assert exact.buyer_values[i] <= r.buyer_bounds[i] + 1e-9
        if i not in r.unsolved:
            assert r.buyer_values[i] == pytest.approx(exact.buyer_values[i], abs=1e-12)


@pytest.mark.parametrize("maker, seed, Q, qual", [(rand_power, 0, None, 1.0),
                                                  (rand_power, 1, [1, 2, 3, 1, 2, 3, 2], 1.0),
                                                  (rand_power, 2, 2, 0.4), (rand_table, 3, None, 1.0),
                                                  (rand_table, 4, None, 0.3)])
def test_buyer_relaxation_bounds_the_exact_optimum(maker, seed, Q, qual):
    m = maker(7, seed, Q) if maker is rand_power else maker(7, seed)
    C = m.cost_matrix()
    for i in range(m.n):
        for fixed in ((), (((i + 1) % m.n, 0),), (((i + 2) % m.n, 1),)):
            prob = W.BuyerProblem(i, C[:, i].copy(), BU.allowed_upper(m, i, ((i + 3) % m.n,)), qual, fixed)
            exact = W.solve_buyer(m, prob, "enumerate")
            r = W.buyer_relaxation(m, prob)
            assert r.status is Termination.TIME_LIMIT
            assert r.value <= exact.value + 1e-12 <= r.bound + 2e-12
            assert r.value == pytest.approx(W.buyer_value(m, i, r.units, prob.prices, qual), abs=1e-12)
            assert np.all(r.units <= prob.upper) or fixed                    # feasible bundle
            for j, k in fixed:
                assert r.units[j] == k


def test_bnb_stopped_at_any_node_keeps_a_proven_bound_and_chunks_do_not_change_the_answer(monkeypatch):
    m = rand_power(8, 11, Q=[1, 2, 3, 1, 2, 3, 1, 2])
    C = m.cost_matrix()
    for i in range(m.n):
        prob = W.BuyerProblem(i, C[:, i].copy(), BU.allowed_upper(m, i))
        exact = W.solve_buyer(m, prob, "enumerate")
        full = BU._solve_bnb(m, prob)
        assert full.value == pytest.approx(exact.value, abs=1e-12)
        saw_open = False
        for nl in range(1, 25):
            cut = BU._solve_bnb(m, prob, node_limit=nl)
            assert cut.value <= exact.value + 1e-12 <= cut.bound + 2e-12
            saw_open |= cut.status is Termination.NODE_LIMIT
        assert saw_open
    # one node per compiled call (resumed 1-node chunks) gives exactly the one-call search
    monkeypatch.setattr(BU, "BNB_CHUNK_NODES", 1)
    monkeypatch.setattr(BU, "BNB_CHUNK_SECONDS", 0.0)
    for i in range(m.n):
        prob = W.BuyerProblem(i, C[:, i].copy(), BU.allowed_upper(m, i))
        a = BU._solve_bnb(m, prob)
        x, v, b, nodes, complete = K.buyer_bnb(*_kernel_args(m, prob), 10**9)
        assert complete and a.nodes == nodes and a.value == pytest.approx(v, abs=1e-12)
        np.testing.assert_array_equal(a.units[np.flatnonzero(prob.upper)], x)


def _kernel_args(m, prob):
    i = prob.buyer
    free = np.flatnonzero(prob.upper)
    return (float(m.samples[i]), float(m.alpha[i]), float(m.beta[i]), m.query_samples[free].astype(float),
            prob.prices[free].astype(float), prob.upper[free].astype(np.int64))


@pytest.mark.parametrize("method", ["bnb", "milp", "enumerate"])
def test_time_limit_not_hit_leaves_results_unchanged(method):
    m = rand_power(6, 21, Q=2) if method != "enumerate" else rand_table(6, 21)
    a = W.welfare_max(m, method)
    b = W.welfare_max(m, method, time_limit=600)
    assert b.status is Termination.OPTIMAL and b.gap == 0 and b.unsolved == () and b.message == ""
    np.testing.assert_array_equal(a.share, b.share)
    assert (a.welfare, a.bound, a.gap) == (b.welfare, b.bound, b.gap)
    np.testing.assert_array_equal(b.buyer_bounds, b.buyer_values)


@pytest.mark.parametrize("maker, method", [(rand_power, "bnb"), (rand_power, "milp"), (rand_table, "enumerate")])
def test_expired_time_limit_gives_feasible_graph_with_relaxation_bound(maker, method):
    m = maker(6, 5)
    exact = W.welfare_max(m, method)
    r = W.welfare_max(m, method, time_limit=1e-9)
    _check_partial(m, r, exact, Termination.TIME_LIMIT)
    assert r.unsolved == tuple(range(m.n)) and "0 of 6" in r.message
    ex = W.welfare_max(m, method, exclude_agent=2, time_limit=1e-9)
    assert ex.share[2].sum() == 0 and ex.share[:, 2].sum() == 0 and ex.unsolved == (0, 1, 3, 4, 5)
    assert ex.bound >= W.welfare_max(m, method, exclude_agent=2).welfare - 1e-9


def test_time_limit_hit_midway_keeps_solved_buyers_exact(monkeypatch):
    m = rand_power(12, 8, Q=2)
    exact = W.welfare_max(m)
    real = W.solve_buyer
    calls = []

    def slow(*a, **k):
        calls.append(1)
        out = real(*a, **k)
        if len(calls) == 3:
            time.sleep(0.3)                   # the 0.25 s limit has surely passed after the third buyer
        return out

    monkeypatch.setattr(W, "solve_buyer", slow)
    r = W.welfare_max(m, time_limit=0.25)
    _check_partial(m, r, exact, Termination.TIME_LIMIT)
    assert len(calls) <= 3 and len(r.unsolved) >= m.n - 3


def test_time_limit_hit_on_a_slow_instance():
    """MILP outer approximation at N = 30 with 3 queries takes seconds; 0.3 s stops it."""
    m = rand_power(30, 5, Q=3)
    t = time.perf_counter()
    r = W.welfare_max(m, "milp", time_limit=0.3)
    assert time.perf_counter() - t < 3.0
    exact = W.welfare_max(m, "bnb")
    _check_partial(m, r, exact, Termination.TIME_LIMIT)
    assert 0 < len(r.unsolved) <= m.n


@pytest.mark.parametrize("at_call", [1, 3, 7])
def test_ctrl_c_inside_the_bnb_search_returns_partial_result(monkeypatch, at_call):
    m = rand_power(10, 4, Q=3)
    exact = W.welfare_max(m)
    real = K.buyer_bnb_run
    calls = []

    def run(*args):
        real(*args[:-1], 3)                   # three nodes per call, so buyers are resumed
        calls.append(1)
        if len(calls) == at_call:
            raise KeyboardInterrupt           # Ctrl-C arriving after a compiled call
        return None

    monkeypatch.setattr(K, "buyer_bnb_run", run)
    r = W.welfare_max(m, "bnb")
    _check_partial(m, r, exact, Termination.INTERRUPTED)
    assert "interrupted by the user" in r.message and len(calls) == at_call


def test_ctrl_c_between_buyers_and_in_milp(monkeypatch):
    m = rand_power(6, 7)
    exact = W.welfare_max(m)
    for target in ("_solve_milp", "_solve_enumerate"):
        monkeypatch.setattr(BU, target, CtrlC(getattr(BU, target), 4))
        r = W.welfare_max(m, "milp" if target == "_solve_milp" else "enumerate")
        _check_partial(m, r, exact, Termination.INTERRUPTED)
        assert r.unsolved == (3, 4, 5)


def test_bad_limits_name_the_field():
    m = rand_power(3, 0)
    for bad in (-1, 0, 0.0, float("nan"), "5", True):
        with pytest.raises(ProblemError, match="time_limit"):
            W.welfare_max(m, time_limit=bad)
        with pytest.raises(ProblemError, match="time_limit"):
            W.competitive_prices(m, time_limit=bad)
    with pytest.raises(ProblemError, match="node_limit"):
        W.welfare_max(m, node_limit=0)
    with pytest.raises(ProblemError, match="unknown option 'nodes'"):
        W.welfare_max(m, nodes=3)
    with pytest.raises(ProblemError, match="deadline"):
        W.welfare_max(m, deadline="soon")
    with pytest.raises(ProblemError, match="agent index"):
        W.welfare_max(m, exclude_agent=5)


def test_prices_with_limits():
    m = rand_power(5, 1)
    full = W.competitive_prices(m)
    same = W.competitive_prices(m, time_limit=600)
    assert full.status is same.status is Termination.OPTIMAL and same.demand_ok is True
    np.testing.assert_array_equal(full.price_max, same.price_max)
    r = W.competitive_prices(m, time_limit=1e-9)
    assert r.status is Termination.TIME_LIMIT and r.demand_ok is None and "not proven welfare-maximising" in r.message
    bought = r.share > 0
    assert np.all(np.isnan(r.price_max[bought])) and np.all(np.isinf(r.price_max[~bought & ~np.eye(5, dtype=bool)]))
    G = W.welfare_max(m)
    r = W.competitive_prices(m, G, time_limit=1e-9)         # the graph is optimal, the checks were not run
    assert r.status is Termination.TIME_LIMIT and r.demand_ok is None


def test_prices_interrupted(monkeypatch):
    m = rand_power(5, 2)
    G = W.welfare_max(m)
    # call 7: during the price maxima (after the 5 demand checks)
    monkeypatch.setattr(P, "solve_buyer", CtrlC(P.solve_buyer, 7))
    r = W.competitive_prices(m, G)
    monkeypatch.undo()
    full = W.competitive_prices(m, G)
    assert r.status is Termination.INTERRUPTED and r.demand_ok is True and "interrupted" in r.message
    done = ~np.isnan(r.price_max) & (G.share > 0)
    assert np.isnan(r.price_max[G.share > 0]).any() and done.any()
    np.testing.assert_array_equal(r.price_max[done], full.price_max[done])     # computed entries are exact


def test_a_shared_deadline_keeps_its_clock():
    """A dm_opt.core.limits.Deadline passed as time_limit is not restarted (one budget per command)."""
    import time

    from dm_opt.core.limits import Deadline

    m = rand_power(6, 3)
    d = Deadline(5.0)
    time.sleep(0.05)
    assert Deadline.of(d) is d and Deadline.of(d).end == d.end
    r = W.welfare_max(m, time_limit=d)                       # finished inside the shared budget
    assert r.status is Termination.OPTIMAL and d.remaining() < 5.0 - 0.05
    assert Deadline.of(Deadline(None)).end is None
    spent = Deadline(1e-9)
    time.sleep(0.01)
    r = W.welfare_max(m, time_limit=spent)                   # an already spent shared budget stops at once
    assert r.status is Termination.TIME_LIMIT and r.unsolved == tuple(range(m.n))
