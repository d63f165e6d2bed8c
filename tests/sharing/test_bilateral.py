"""Bilateral sharing (RJ §3): assumption checks, ordered match, strong stability."""

import itertools
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import dm_opt
from dm_opt import ProblemError, SharingMarket
from dm_opt.core.errors import LimitExceeded
from dm_opt.sharing import bilateral as B
from tests.support.limits_helpers import CtrlC

MODELS = Path(__file__).resolve().parents[2] / "models" / "rj"


# ------------------------------------------------------------------ oracle
def brute_force_stable(P, edges, tol=1e-12):
    """Independent strong-stability oracle (RJ Def 3.2, Jackson–van den Nouweland):
    G' is reachable by coalition S if its new edges lie inside S and each deleted
    edge has an endpoint in S.  Enumerates every coalition and every reachable G'."""
    N = P.shape[0]
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    E = {tuple(sorted(map(int, e))) for e in edges}

    def val(i, G):
        m = 0
        for a, b in G:
            if a == i:
                m |= 1 << b
            elif b == i:
                m |= 1 << a
        return P[i, m]

    for r in range(1, N + 1):
        for S in itertools.combinations(range(N), r):
            S = set(S)
            free = [e for e in pairs if e[0] in S and e[1] in S]            # add or delete
            cut = [e for e in E if (e[0] in S) != (e[1] in S)]               # may delete
            fixed = [e for e in E if e[0] not in S and e[1] not in S]
            for fm in range(1 << len(free)):
                for cm in range(1 << len(cut)):
                    G = fixed + [free[k] for k in range(len(free)) if (fm >> k) & 1] + \
                        [cut[k] for k in range(len(cut)) if (cm >> k) & 1]
                    d = [val(i, G) - val(i, E) for i in S]
                    if min(d) >= -tol and max(d) > tol:
                        return False
    return True


def all_graphs(N):
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    for g in range(1 << len(pairs)):
        yield [pairs[e] for e in range(len(pairs)) if (g >> e) & 1]


def example_3_5(v12=1.0):
    """RJ Example 3.5 with agent 2's unranked set {1,2} given utility ``v12``
    (0-indexed agents; partner sets)."""
    return SharingMarket.from_sets(3, {
        0: {frozenset([2]): 3, frozenset([1]): 2, frozenset(): 1, frozenset([1, 2]): 0},
        1: {frozenset([0, 2]): 3, frozenset(): 2, frozenset([0]): v12, frozenset([2]): 0},
        2: {frozenset([0, 1]): 3, frozenset([1]): 2, frozenset(): 1, frozenset([0]): 0}})


# ---------------------------------------------------------- paper examples
def test_example_3_5_has_no_stable_outcome_from_model_file():
    m = dm_opt.load(MODELS / "example_3_5.toml")
    r = B.stable_outcomes(m)
    assert r.graphs == () and r.graphs_checked == 8
    P = m.bilateral_table()
    assert not any(brute_force_stable(P, g) for g in all_graphs(3))


@pytest.mark.parametrize("v12", [3.0, 2.5, 2.0, 1.0, 0.0, -1.0])
def test_example_3_5_no_stable_outcome_for_any_placement_of_unranked_set(v12):
    """The paper does not rank {1,2} for agent 2.  Derivation that no graph is
    stable wherever it sits below or level with agent 2's top set {1,2,3}
    (agents 1-indexed as in the paper):

    * ∅: coalition {1,2,3} forms {12, 23}: S_1 = {1,2} ≻ {1}, S_2 = {1,2,3} (top),
      S_3 = {2,3} ≻ {3} — all strictly better, independent of {1,2}'s rank.
    * {12}: {2,3} forms 23: agent 2 gets {1,2,3} ⪰_2 {1,2}, agent 3 {2,3} ≻ {3}.
    * {13}, {12,13}, complete: agent 3 (resp. 1) drops an edge ({3} ≻ {1,3}; {1} ≻ {1,2,3}).
    * {23}, {13,23}: agent 2 drops 23 ({2} ≻ {2,3}).
    * {12,23}: {1,3} form 13, 1 drops 12: S_1 = {1,3} ≻ {1,2}, S_3 = {1,2,3} ≻ {2,3}.
    Only the deviation from {12} involves agent 2's value of {1,2}, and only
    through {1,2,3} ⪰_2 {1,2}; if {1,2} were agent 2's strict favourite, {12}
    would be stable (checked in the next test).
    """
    m = example_3_5(v12)
    assert B.stable_outcomes(m).graphs == ()
    ta = B.check_top_agent(m)
    # The top agent property fails iff {1,2} ⪰_2 {2,3} (a tie is no strict ranking; otherwise
    # 3≻_1 2, 1≻_2 3, 2≻_3 1 is a cycle);
    # when it holds, limited complementarity must fail (Prop 3.1 would give a stable outcome).
    assert ta.holds is (v12 < 0.0)
    if ta.holds:
        lc = B.check_limited_complementarity(m)
        assert lc.holds is False
        with pytest.raises(B.AssumptionError):
            B.ordered_match(m)


def test_example_3_5_needs_123_as_agent_2s_favourite():
    r = B.stable_outcomes(example_3_5(3.5))
    assert [g.tolist() for g in r.graphs] == [[[0, 1]]]


def test_remark_3_4_stable_but_not_welfare_maximising():
    m = dm_opt.load(MODELS / "remark_3_4.toml")
    om = B.ordered_match(m)
    assert om.assumptions_hold is True
    assert om.edges.shape == (0, 2)                          # agent 1 does not propose
    st = B.check_stability(m, om.edges)
    assert st.stable and brute_force_stable(m.bilateral_table(), om.edges)
    assert B.bilateral_welfare(m, om.edges) == 1.0           # u_1({1}) + u_2({2}) = 1 + 0
    best = B.bilateral_welfare_max(m)
    assert best.welfare == 10.0 and best.edges.tolist() == [[0, 1]]   # u_1({1,2}) + u_2({1,2}) = 0 + 10
    assert not B.check_stability(m, best.edges).stable       # agent 1 drops the edge


# ------------------------------------------------ stability checker vs oracle
@pytest.mark.parametrize("seed", range(4))
def test_stability_checker_matches_brute_force_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    N = 4
    # integer utilities create ties (weak preferences) on purpose
    m = SharingMarket.from_table(rng.integers(0, 4, (N, 1 << N)).astype(float))
    P = m.bilateral_table()
    for g in all_graphs(N):
        r = B.check_stability(m, g)
        assert r.stable == brute_force_stable(P, g), g
        if not r.stable:
            # the witness is a genuine deviation: reachable and improving
            S = set(r.coalition)
            old = {tuple(e) for e in r.edges.tolist()}
            new = {tuple(e) for e in r.deviation.tolist()}
            assert all(a in S and b in S for a, b in new - old)
            assert all(a in S or b in S for a, b in old - new)
            assert min(r.gains) >= -1e-12 and max(r.gains) > 1e-12


def test_stable_outcomes_matches_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(3):
        m = SharingMarket.from_table(rng.integers(0, 5, (4, 16)).astype(float))
        P = m.bilateral_table()
        got = sorted(tuple(map(tuple, g.tolist())) for g in B.stable_outcomes(m).graphs)
        expect = sorted(tuple(g) for g in all_graphs(4) if brute_force_stable(P, g))
        assert got == expect


# ---------------------------------------------------------- ordered match
def test_ordered_match_stable_on_random_power_instances():
    """Power family with recipient-independent costs satisfies both assumptions
    (RJ Corollary 3.1.1; concavity for Def 3.5), so Prop 3.1 says ordered match is stable."""
    rng = np.random.default_rng(11)
    for _ in range(12):
        N = int(rng.integers(4, 8))
        m = SharingMarket.power(rng.choice(np.arange(10, 2000), N, replace=False).astype(float),
                                alpha=rng.uniform(0.5, 3, N), beta=rng.uniform(0.2, 1.0, N),
                                cost=rng.uniform(0.0005, 0.01, N))
        om = B.ordered_match(m)
        assert om.assumptions_hold is True
        assert om.oracle_calls <= N * (N - 1)
        # the closed-form certificate agrees with the exhaustive check
        tab = SharingMarket.from_table(m.bilateral_table())
        assert B.check_top_agent(tab, om.order).holds and B.check_limited_complementarity(tab, om.order).holds
        assert B.check_stability(m, om.edges).stable
        if N <= 5:
            assert brute_force_stable(m.bilateral_table(), om.edges)


def test_ordered_match_stable_on_random_tables_satisfying_assumptions():
    """Random tables filtered by the exhaustive checks; every survivor is matched stably."""
    rng = np.random.default_rng(5)
    kept = 0
    for _ in range(400):
        N = 4
        w = np.sort(rng.uniform(0, 1, N))[::-1]                  # common ranking by w
        base = rng.uniform(0.2, 1.0, N)
        bits = ((np.arange(1 << N)[:, None] >> np.arange(N)) & 1).astype(float)
        U = np.array([base[i] * np.sqrt(bits @ w + 0.1) - rng.uniform(0.05, 0.4) * bits.sum(1) for i in range(N)])
        U += rng.normal(0, 0.02, U.shape)
        m = SharingMarket.from_table(U)
        if not (B.check_top_agent(m).holds and B.check_limited_complementarity(m).holds):
            continue
        kept += 1
        om = B.ordered_match(m)
        assert B.check_stability(m, om.edges).stable
        assert brute_force_stable(m.bilateral_table(), om.edges)
    assert kept >= 20


def test_ordered_match_power_kernel_equals_table_version():
    rng = np.random.default_rng(3)
    for _ in range(10):
        N = 7
        m = SharingMarket.power(rng.choice(np.arange(10, 900), N, replace=False).astype(float),
                                alpha=rng.uniform(0.5, 3, N), beta=rng.uniform(0.2, 1.0, N),
                                cost=rng.uniform(0, 0.01, (N, N)))
        tab = SharingMarket.from_table(m.utility_table(), cost=m.cost_matrix())
        order = np.argsort(-m.samples)
        a = B.ordered_match(m, order, check=False)
        b = B.ordered_match(tab, order, check=False)
        assert a.edges.tolist() == b.edges.tolist()


# -------------------------------------------------- assumption violations
def test_top_agent_violation_is_reported_with_a_genuine_witness():
    # agent 0 prefers 1 to 2 alone, but 2 to 1 once 3 is present (complementarity with 3)
    N = 4
    bits = ((np.arange(1 << N)[:, None] >> np.arange(N)) & 1).astype(float)
    w = np.array([0, 3.0, 2.0, 1.0])
    U = np.tile(bits @ w, (N, 1))
    U[0] += 5.0 * bits[:, 2] * bits[:, 3]
    m = SharingMarket.from_table(U)
    c = B.check_top_agent(m, order=[0, 1, 2, 3])
    assert c.holds is False and c.agent == 0 and c.pair == (1, 2)
    P = m.bilateral_table()
    S = sum(1 << s for s in c.base_set)
    assert not P[0, S | 2] > P[0, S | 4]
    assert c.values == (P[0, S | 2], P[0, S | 4])
    with pytest.raises(B.AssumptionError, match="top_agent"):
        B.ordered_match(m, order=[0, 1, 2, 3])


def test_limited_complementarity_violation_is_reported_with_a_genuine_witness():
    """U_k(S) = Σ w_j − 0.5|S| + 5·[|S| ≥ 2]: same-size sets compare by w (top agent holds),
    but ∅ ≻ {i} for the weak agents while a pair of them beats ∅ (complementarity)."""
    N = 4
    bits = ((np.arange(1 << N)[:, None] >> np.arange(N)) & 1).astype(float)
    w = np.array([0.4, 0.3, 0.2, 0.1])
    U = np.array([bits @ w - 0.5 * (bits.sum(1) - bits[:, i]) + 5.0 * ((bits.sum(1) - bits[:, i]) >= 2)
                  for i in range(N)])
    m = SharingMarket.from_table(U)
    ta = B.check_top_agent(m)
    assert ta.holds is True and ta.order == (0, 1, 2, 3)
    lc = B.check_limited_complementarity(m)
    assert lc.holds is False
    P = m.bilateral_table()
    k, i = lc.agent, lc.pair[0]
    S = sum(1 << s for s in lc.base_set)
    Sp = S | sum(1 << s for s in lc.added_set)
    rank = {a: r for r, a in enumerate(lc.order)}
    assert P[k, S] > P[k, S | (1 << i)]                      # premise of Def 3.5
    assert all(rank[a] >= rank[i] for a in lc.added_set)     # S' among agents ranked ≤ i
    assert not P[k, S] > P[k, Sp]                             # conclusion fails
    with pytest.raises(B.AssumptionError, match="limited_complementarity"):
        B.ordered_match(m)
    with pytest.warns(UserWarning, match="limited_complementarity"):
        r = B.ordered_match(m, on_violation="warn")
    assert r.assumptions_hold is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        B.ordered_match(m, on_violation="ignore")


def test_power_family_with_pair_costs_can_violate_top_agent():
    # agent 0 pays a lot to share with the biggest agent 1: it ranks 2 above 1
    C = np.full((3, 3), 0.001)
    C[0, 1] = 1.0
    m = SharingMarket.power([50, 400, 300], cost=C)
    c = B.check_top_agent(m, order=[1, 2, 0])
    assert c.holds is False and c.agent == 0 and c.pair == (1, 2)


def test_power_closed_form_flags_equal_samples_and_zero_alpha():
    assert B.check_top_agent(SharingMarket.power([10, 10, 5], cost=0.01)).holds is False
    assert B.check_top_agent(SharingMarket.power([10, 20, 5], alpha=[1, 0, 1], cost=0.01)).holds is False


def test_bad_arguments():
    m = SharingMarket.power([10, 20, 30])
    with pytest.raises(ProblemError):
        B.ordered_match(m, order=[0, 0, 1])
    with pytest.raises(ProblemError):
        B.ordered_match(m, on_violation="maybe")
    with pytest.raises(ProblemError):
        B.check_stability(m, [(0, 0)])
    with pytest.raises(LimitExceeded):
        B.check_stability(SharingMarket.power(np.arange(1, 22, dtype=float)), [])
    with pytest.raises(LimitExceeded):
        B.stable_outcomes(SharingMarket.power(np.arange(1, 8, dtype=float)))


def test_ordered_match_large_power_instance_undecided_lc_refuses_then_runs():
    # pair-specific costs at N > 16: limited complementarity cannot be decided -> refuse by default
    rng = np.random.default_rng(0)
    N = 20
    C = np.repeat(rng.uniform(0, 0.01, (N, 1)), N, axis=1)       # given as a matrix: "pair-specific"
    m = SharingMarket.power(rng.choice(np.arange(10, 5000), N, replace=False).astype(float), cost=C)
    assert B.check_top_agent(m).holds is True and B.check_top_agent(m).method == "closed form (pairs)"
    assert B.check_limited_complementarity(m).holds is None
    with pytest.raises(B.AssumptionError, match="could not be checked"):
        B.ordered_match(m)
    r = B.ordered_match(m, order=np.argsort(-m.samples), check=False)
    assert r.assumptions_hold is None and r.oracle_calls <= N * (N - 1)


def test_closed_form_pair_check_agrees_with_exhaustive():
    """The O(N³) top-agent check for power markets with pair costs (monotone D(m),
    extremes S = ∅ and S = all others) against the exhaustive table check."""
    rng = np.random.default_rng(4)
    seen = set()
    for _ in range(60):
        N = 6
        m = SharingMarket.power(rng.choice(np.arange(10, 400), N, replace=False).astype(float),
                                alpha=rng.uniform(0.5, 3, N), beta=rng.uniform(0.2, 1.0, N),
                                cost=rng.uniform(0, 0.004, (N, 1))
                                + 10.0 ** rng.uniform(-9, -3) * rng.uniform(size=(N, N)))
        order = np.argsort(-m.samples)
        fast = B._top_agent_power_pairs(m, order, B.PREF_TOL)
        exact = B.check_top_agent(SharingMarket.from_table(m.bilateral_table()), order)
        assert fast.holds == exact.holds
        seen.add(fast.holds)
    assert seen == {True, False}


# ------------------------------------------------- limits and interruption
from dm_opt.core.result import Termination  # noqa: E402
from dm_opt.sharing import kernels as K  # noqa: E402


def _power_market(N, seed):
    rng = np.random.default_rng(seed)
    return SharingMarket.power(rng.choice(np.arange(10, 2000), N, replace=False).astype(float),
                               alpha=rng.uniform(0.5, 3, N), beta=0.5, cost=rng.uniform(0.0005, 0.01, N))


def test_stability_limit_not_hit_and_one_coalition_chunks_give_the_same_answers(monkeypatch):
    rng = np.random.default_rng(2)
    m = SharingMarket.from_table(rng.integers(0, 4, (4, 16)).astype(float))
    graphs = list(all_graphs(4))
    ref = [B.check_stability(m, g) for g in graphs]
    monkeypatch.setattr(B, "STABILITY_CHUNK", 1)
    monkeypatch.setattr(B, "CHUNK_SECONDS", 0.0)
    assert {r.stable for r in ref} == {True, False}
    for g, a in zip(graphs, ref):
        b = B.check_stability(m, g, time_limit=600)
        assert b.status is Termination.OPTIMAL and b.decided and b.coalitions_total == 15
        assert (a.stable, a.coalition, a.gains, a.coalitions_examined) == \
            (b.stable, b.coalition, b.gains, b.coalitions_examined)


def test_stability_time_limit_says_undecided_never_stable(monkeypatch):
    m = _power_market(13, 2)
    om = B.ordered_match(m)
    assert B.check_stability(m, om.edges).stable is True              # the complete check: stable
    r = B.check_stability(m, om.edges, time_limit=1e-9)
    assert r.stable is None and not r.decided and r.status is Termination.TIME_LIMIT
    assert r.coalitions_examined == 0 and r.coalitions_total == 2 ** 13 - 1 and "undecided" in r.message
    real = K.find_deviation_range
    calls = []

    def slow(*a):
        calls.append(1)
        out = real(*a)
        if len(calls) == 2:
            time.sleep(0.3)                     # the 0.25 s limit has surely passed
        return out

    monkeypatch.setattr(K, "find_deviation_range", slow)
    r = B.check_stability(m, om.edges, time_limit=0.25)
    assert r.stable is None and r.status is Termination.TIME_LIMIT and len(calls) <= 2
    assert 0 < r.coalitions_examined < r.coalitions_total


def test_stability_ctrl_c(monkeypatch):
    m = _power_market(12, 3)
    om = B.ordered_match(m)
    # Ctrl-C arriving after a compiled call
    flaky = CtrlC(K.find_deviation_range, 2, after=True)
    monkeypatch.setattr(K, "find_deviation_range", flaky)
    r = B.check_stability(m, om.edges)
    assert r.stable is None and r.status is Termination.INTERRUPTED and "interrupted" in r.message
    assert r.coalitions_examined == B.STABILITY_CHUNK              # the first chunk only
    # a deviation found before the interruption is a proven answer
    full = [(i, j) for i in range(12) for j in range(i + 1, 12)]
    flaky.calls = 0
    r = B.check_stability(m, full)
    assert r.stable is False and r.status is Termination.OPTIMAL and r.coalition == (0,)


def test_stable_outcomes_limits(monkeypatch):
    rng = np.random.default_rng(7)
    m = SharingMarket.from_table(rng.integers(0, 5, (4, 16)).astype(float))
    ref = B.stable_outcomes(m)
    assert ref.status is Termination.OPTIMAL and ref.graphs_checked == ref.graphs_total == 64 and ref.graphs
    same = B.stable_outcomes(m, time_limit=600)
    assert [g.tolist() for g in same.graphs] == [g.tolist() for g in ref.graphs]
    r = B.stable_outcomes(m, time_limit=1e-9)
    assert r.status is Termination.TIME_LIMIT and r.graphs == () and r.graphs_checked == 0
    monkeypatch.setattr(K, "find_deviation_range", CtrlC(K.find_deviation_range, 46))
    r = B.stable_outcomes(m)
    assert r.status is Termination.INTERRUPTED and r.graphs_checked == 45 and "incomplete" in r.message
    # exactly the stable graphs among the first 45 (graphs are enumerated by edge bit mask; the one
    # stable graph of this instance is number 40)
    first = {tuple(map(tuple, g)) for k, g in enumerate(all_graphs(4)) if k < 45}
    expect = [g.tolist() for g in ref.graphs if tuple(map(tuple, g.tolist())) in first]
    assert [g.tolist() for g in r.graphs] == expect and len(expect) == 1


@pytest.mark.parametrize("path", ["sorted", "full_scan"])
def test_ordered_match_time_limit_raises_and_chunks_are_exact(monkeypatch, path):
    """Both compiled paths: the fast kernel (recipient-independent costs, order by decreasing q)
    and the full scan (pair costs as a matrix)."""
    m = _power_market(60, 1)
    if path == "full_scan":
        m = SharingMarket.power(m.samples, alpha=m.alpha, beta=m.beta, cost=m.cost_matrix())
    kw = {} if path == "sorted" else {"order": np.argsort(-m.samples, kind="stable"), "check": False}
    ref = B.ordered_match(m, **kw)
    with pytest.raises(LimitExceeded, match="time limit"):
        B.ordered_match(m, time_limit=1e-9, **kw)
    if path == "sorted":                                             # one agent per compiled call
        monkeypatch.setattr(B, "ORDERED_MATCH_FAST_ROWS", 1)
        monkeypatch.setattr(B, "CHUNK_SECONDS", 0.0)
        name = "ordered_match_power_sorted_range"
    else:
        monkeypatch.setattr(B, "ORDERED_MATCH_CHUNK_CALLS", 1)
        name = "ordered_match_power_range"
    real = getattr(K, name)
    calls = []

    def count(*a):
        calls.append(1)
        return real(*a)

    monkeypatch.setattr(K, name, count)
    r = B.ordered_match(m, time_limit=600, **kw)
    assert len(calls) == 60
    np.testing.assert_array_equal(r.edges, ref.edges)
    assert r.oracle_calls == ref.oracle_calls

    def interrupt(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(K, name, interrupt)
    with pytest.raises(KeyboardInterrupt):                   # no partial outcome: Ctrl-C propagates
        B.ordered_match(m, **kw)


def test_bilateral_time_limit_is_validated():
    m = _power_market(4, 0)
    for f in (lambda: B.check_stability(m, [], time_limit=-1), lambda: B.stable_outcomes(m, time_limit=0),
              lambda: B.ordered_match(m, time_limit="1")):
        with pytest.raises(ProblemError, match="time_limit"):
            f()
