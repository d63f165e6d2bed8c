import itertools

import numpy as np
import pytest

import dm_opt
from dm_opt.gaussian.platforms import JoiningValues, TwoPlatformMarket, check_assumption1

RHO = 0.8


def slide_market(v2, v1=0.5):
    g = dm_opt.GaussianMarket([[1.0, RHO], [RHO, 1.0]], [v1, v2])
    return TwoPlatformMarket(g, JoiningValues.linear([6.0, 6.0], [0.01, 0.01]))


def split(outcome):
    return set(outcome.b.tolist()) == {1, 2}


# ---------------------------------------------------------------- Assumption 1, Lemma 4
def test_assumption1_check_names_part_user_and_set():
    g = dm_opt.GaussianMarket(np.eye(3), [0.5, 1.0, 2.0])
    flat = JoiningValues.linear([3.0] * 3, [0.0] * 3)
    rep = check_assumption1(flat, g)
    assert not rep.part1 and rep.part2 and not rep.holds
    assert "part 1: c_1(J ∪ {0}) = 3 is not > c_1(J) = 3 for J = [1]" in rep.violations
    small = JoiningValues.linear([3.0, 0.5, 3.0], [0.1] * 3)
    rep = check_assumption1(small, g)
    assert rep.part1 and not rep.part2
    assert any("part 2: c_1({1}) = 0.5" in s for s in rep.violations)
    assert check_assumption1(JoiningValues.linear([3.0] * 3, [0.1] * 3), g).holds
    with pytest.raises(dm_opt.InstanceError, match="Assumption 1"):
        TwoPlatformMarket(g, flat)
    TwoPlatformMarket(g, flat, require_assumption1=False)  # allowed on request


def test_joining_table_validation():
    with pytest.raises(dm_opt.InstanceError, match="2\\^n rows"):
        JoiningValues(np.zeros((3, 2)))
    bad = np.zeros((4, 2))
    bad[1, 1] = 1.0            # J = {0}, user 1 not in J
    with pytest.raises(dm_opt.InstanceError) as exc:
        JoiningValues(bad)
    assert exc.value.field == "joining[1,1]"


def brute_user_equilibria(g, C, p1, p2, tol=1e-9):
    """Independent check of Definition 1 over joint actions (b_i, a_i), fresh leakage per set."""
    n = g.n
    options = [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)]

    def payoff(i, prof):
        k, s = prof[i]
        if k == 0:
            return 0.0
        J = [j for j in range(n) if prof[j][0] == k]
        S = [j for j in J if prof[j][1]]
        a = np.zeros(n, dtype=np.int8)
        a[S] = 1
        cJ = C.value(i, J)
        return cJ + s * (p1 if k == 1 else p2)[i] - g.values[i] * g.leakage(a)[i]

    found = set()
    for prof in itertools.product(options, repeat=n):
        ok = True
        for i in range(n):
            cur = payoff(i, prof)
            for o in options:
                alt = list(prof)
                alt[i] = o
                if payoff(i, alt) > cur + tol:
                    ok = False
                    break
            if not ok:
                break
        if ok:
            found.add(tuple((k, s if k else 0) for k, s in prof))
    return found


@pytest.mark.parametrize("seed", range(4))
def test_user_equilibria_match_brute_force_and_lemma4(seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, 3))
    g = dm_opt.GaussianMarket(A @ A.T / 3 + 0.3 * np.eye(3), rng.uniform(0, 2, 3))
    C = JoiningValues.linear(rng.uniform(5, 6, 3), rng.uniform(0.01, 0.3, 3))
    tp = TwoPlatformMarket(g, C)
    for _ in range(3):
        p1, p2 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        got = {tuple((int(b), int(a)) for b, a in zip(o.b, o.a)) for o in tp.user_equilibria(p1, p2)}
        assert got == brute_user_equilibria(g, C, p1, p2)
        for o in tp.user_equilibria(p1, p2):
            assert np.all(o.b != 0)          # Lemma 4: everybody joins a platform
            U1 = sum(g.leakage(o.a * (o.b == 1))[i] for i in np.flatnonzero(o.b == 1)) - np.dot(o.a * (o.b == 1), p1)
            assert o.platform_payoffs[0] == pytest.approx(U1)
            assert o.surplus == pytest.approx(tp.surplus(o.b, o.a))


# ---------------------------------------------------------------------- Thm 4
@pytest.mark.parametrize("slope", [0.5, 0.1])
def test_thm4_part1_uncorrelated_users_equilibrium_is_efficient(slope):
    v = np.array([0.5, 2.0])
    g = dm_opt.GaussianMarket(np.diag([1.0, 1.5]), v)
    tp = TwoPlatformMarket(g, JoiningValues.linear([4.0, 4.0], [slope, slope]))
    res = tp.search_equilibria()
    assert res.equilibria and any(e.efficient for e in res.equilibria)
    # Definition 2 lets users coordinate on the other platform after a deviation, so with a steep c
    # inefficient equilibria supported by that threat also exist (nobody shares, zero prices);
    # every equilibrium in which a user shares is efficient here (no externality)
    for e in res.equilibria:
        assert e.efficient or e.outcome.a.sum() == 0
    # the proof's prices (Appendix B, Thm 4 part 1) are among the equilibria, all users on platform 1
    I = g.leakage([1, 0])[0]
    dc = slope
    p1 = v[0] * I if dc >= (1 - v[0]) * I else I - dc
    p2 = v[0] * I if dc >= (1 - v[0]) * I else I
    hits = [e for e in res.equilibria if np.allclose(e.p1, [p1, 0]) and np.allclose(e.p2, [p2, 0])
            and e.outcome.b.tolist() == [1, 1] and e.outcome.a.tolist() == [1, 0]]
    assert hits and hits[0].efficient
    assert res.first_best_surplus == pytest.approx(res.monopoly_surplus)


def test_slides_competition_improves_surplus_when_v2_large():
    tp = slide_market(v2=5.0)
    res = tp.search_equilibria()
    mono, a = tp.monopoly()
    assert a.tolist() == [1, 0]                            # monopoly: only user 1 shares
    assert res.equilibria
    for e in res.equilibria:                               # competition: different platforms, user 1 shares
        assert split(e.outcome) and e.outcome.a.tolist() == [1, 0]
        assert e.outcome.surplus > mono + 1.0
    assert res.first_best_surplus == pytest.approx(max(e.outcome.surplus for e in res.equilibria))


def test_slides_competition_reduces_surplus_when_v2_below_one():
    tp = slide_market(v2=0.5)
    res = tp.search_equilibria()
    mono, a = tp.monopoly()
    assert a.tolist() == [1, 1] and mono == pytest.approx(res.first_best_surplus)
    frag = [e for e in res.equilibria if split(e.outcome)]
    assert frag                                             # users join different platforms, both share
    for e in frag:
        assert e.outcome.a.tolist() == [1, 1] and not e.efficient
        assert e.outcome.surplus < mono - 0.05


@pytest.mark.parametrize("deviation", ["paper", pytest.param("robust", marks=pytest.mark.slow)])
def test_thm4_part23_fragmentation_inefficiency(deviation):
    # Thm 4 part 2-3: low-value users correlated, joining values almost flat (Δ small), v^(l) close to 1:
    # every equilibrium in the candidate set is fragmented and below the monopoly (= first best) surplus
    tp = slide_market(v2=0.9, v1=0.9)
    res = tp.search_equilibria(deviation=deviation)
    assert res.equilibria and res.monopoly_surplus == pytest.approx(res.first_best_surplus)
    for e in res.equilibria:
        assert split(e.outcome) and e.outcome.a.tolist() == [1, 1] and not e.efficient
        assert e.outcome.surplus < res.monopoly_surplus - 0.03


def test_candidate_set_limit_and_bad_options():
    tp = slide_market(v2=5.0)
    with pytest.raises(dm_opt.LimitExceeded, match="max_candidates"):
        tp.candidate_prices(max_candidates=10)
    with pytest.raises(dm_opt.InstanceError, match="deviation"):
        tp.search_equilibria(deviation="nash")
    with pytest.raises(dm_opt.InstanceError, match="levels"):
        tp.candidate_prices(levels=[[0.0]])


@pytest.mark.parametrize("deviation", ["paper", "robust"])
def test_search_matches_definition_checked_pair_by_pair(deviation):
    """The vectorised search equals a direct reading of Definition 2 over 𝒫 and its ε-bumps."""
    rng = np.random.default_rng(1)
    g = dm_opt.GaussianMarket([[1.0, 0.6], [0.6, 1.0]], [0.7, 1.5])
    tp = TwoPlatformMarket(g, JoiningValues.linear([5.0, 5.0], [0.05, 0.05]))
    P = np.array([[0.0, 0.0], [0.2, 0.0], [0.2, 0.3], [0.5, 0.1], [0.33, 0.0]])
    P = np.vstack([P, rng.uniform(0, 0.6, (1, 2))])
    eps = 1e-4
    D = np.vstack([P, P + [eps, 0], P + [0, eps]])
    res = tp.search_equilibria(P, deviation=deviation, eps=eps)
    agg = min if deviation == "paper" else max
    expected = set()
    for j, p1 in enumerate(P):
        for l, p2 in enumerate(P):
            for e in tp.user_equilibria(p1, p2):
                ok = True
                for q in range(D.shape[0]):
                    for k in (0, 1):
                        if q == (j if k == 0 else l):
                            continue          # the current price is not a deviation
                        pp = (D[q], p2) if k == 0 else (p1, D[q])
                        ues = tp.user_equilibria(*pp)
                        if ues and agg(u.platform_payoffs[k] for u in ues) > e.platform_payoffs[k] + 1e-9:
                            ok = False
                if ok:
                    expected.add((j, l, tuple(e.b), tuple(e.a)))
    got = set()
    for eq in res.equilibria:
        j = int(np.flatnonzero(np.all(P == eq.p1, axis=1))[0])
        l = int(np.flatnonzero(np.all(P == eq.p2, axis=1))[0])
        got.add((j, l, tuple(eq.outcome.b), tuple(eq.outcome.a)))
    assert got == expected and expected


def test_mixed_user_equilibria_exist_where_pure_ones_do_not():
    """Thm B-1's first step (the user stage is a finite game, so a mixed equilibrium exists), n = 2."""
    g = dm_opt.GaussianMarket([[1.0, RHO], [RHO, 1.0]], [0.5, 5.0])
    C = JoiningValues.linear([6.0, 6.0], [0.01, 0.01])
    tp = TwoPlatformMarket(g, C)
    options = [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)]

    def payoff(i, o0, o1, p1, p2):   # independent evaluation of u_i for pure actions
        prof = [options[o0], options[o1]]
        k, s = prof[i]
        if k == 0:
            return 0.0
        J = [j for j in range(2) if prof[j][0] == k]
        a = np.array([1 if (prof[j][0] == k and prof[j][1]) else 0 for j in range(2)], dtype=np.int8)
        return C.value(i, J) + s * (p1 if k == 1 else p2)[i] - g.values[i] * g.leakage(a)[i]

    P = tp.candidate_prices()
    checked = 0
    for p1 in P[::17]:
        for p2 in P[::13]:
            if tp.user_equilibria(p1, p2):
                continue
            mixed = tp.mixed_user_equilibria(p1, p2)
            assert mixed, (p1, p2)
            A = np.array([[payoff(0, a, b, p1, p2) for b in range(5)] for a in range(5)])
            B = np.array([[payoff(1, a, b, p1, p2) for b in range(5)] for a in range(5)])
            for e in mixed:
                assert e.x.sum() == pytest.approx(1) and e.y.sum() == pytest.approx(1)
                assert np.max(A @ e.y) <= e.x @ A @ e.y + 1e-9
                assert np.max(e.x @ B) <= e.x @ B @ e.y + 1e-9
                assert not e.is_pure
            checked += 1
    assert checked >= 3
    # where pure equilibria exist they are among the mixed ones (as degenerate mixtures)
    p1, p2 = np.array([0.25, 0.0]), np.array([0.0, 0.0])
    pure = {(tuple(o.b), tuple(o.a)) for o in tp.user_equilibria(p1, p2)}
    as_mixed = set()
    for e in tp.mixed_user_equilibria(p1, p2):
        if e.is_pure:
            o0, o1 = int(np.argmax(e.x)), int(np.argmax(e.y))
            as_mixed.add(((options[o0][0], options[o1][0]), (options[o0][1], options[o1][1])))
    assert pure and pure <= as_mixed
    with pytest.raises(dm_opt.LimitExceeded):
        TwoPlatformMarket(dm_opt.GaussianMarket(np.eye(3), [1, 1, 1]),
                          JoiningValues.linear([9.0] * 3, [0.1] * 3)).mixed_user_equilibria(np.zeros(3), np.zeros(3))


# ---------------------------------------------------------------- limits and interruption
from dm_opt.core import limits as core_limits  # noqa: E402
from dm_opt.core.result import Termination  # noqa: E402


def _key(P, e):
    j = int(np.flatnonzero(np.all(P == e.p1, axis=1))[0])
    l = int(np.flatnonzero(np.all(P == e.p2, axis=1))[0])
    return j, l, tuple(e.outcome.b), tuple(e.outcome.a), e.efficient, e.undecided_deviations


def _check_partial_search(full, res, P, covered, status):
    assert res.status is status and not res.complete and res.candidates_covered == covered
    assert res.pairs_checked == covered ** 2 and res.candidates == full.candidates and res.message
    expect = [k for k in map(lambda e: _key(P, e), full.equilibria) if k[0] < covered and k[1] < covered]
    assert [_key(P, e) for e in res.equilibria] == expect       # same equilibria, same order, all verified
    assert res.first_best_surplus == full.first_best_surplus and res.monopoly_surplus == full.monopoly_surplus


@pytest.mark.parametrize("deviation", ["paper", "robust"])
def test_search_ctrl_c_keeps_the_decided_pairs(monkeypatch, deviation):
    tp = slide_market(v2=0.5)
    P = tp.candidate_prices()[::5]
    full = tp.search_equilibria(P, deviation=deviation)
    assert full.complete and full.candidates_covered == P.shape[0] and full.equilibria
    real = TwoPlatformMarket._eq_matrix_rows
    calls = [0, None]

    def rows(self, *args, **kw):
        calls[0] += 1
        if calls[0] == calls[1]:
            raise KeyboardInterrupt
        return real(self, *args, **kw)

    monkeypatch.setattr(TwoPlatformMarket, "_eq_matrix_rows", rows)
    for stop in (3, 4, 12, 2 * P.shape[0] - 1, 2 * P.shape[0]):     # two matrices per candidate step
        calls[:] = [0, stop]
        res = tp.search_equilibria(P, deviation=deviation)
        _check_partial_search(full, res, P, (stop - 1) // 2, Termination.INTERRUPTED)
    calls[:] = [0, 2]
    with pytest.raises(KeyboardInterrupt):                           # nothing decided yet
        tp.search_equilibria(P, deviation=deviation)


def test_search_time_limit_covers_a_prefix_of_the_candidates(monkeypatch):
    tp = slide_market(v2=5.0)
    P = tp.candidate_prices()[::4]
    full = tp.search_equilibria(P)
    again = tp.search_equilibria(P, time_limit=1e6)                # unchanged when the limit is not hit
    assert again.complete and [_key(P, e) for e in again.equilibria] == [_key(P, e) for e in full.equilibria]
    checks = [0, None]

    def expired(self):
        checks[0] += 1
        return self.time_limit is not None and checks[0] >= checks[1]

    monkeypatch.setattr(core_limits.Deadline, "expired", expired)
    for covered in (1, 7, P.shape[0] - 1):
        checks[:] = [0, covered]
        res = tp.search_equilibria(P, time_limit=30.0)
        _check_partial_search(full, res, P, covered, Termination.TIME_LIMIT)
        assert "time limit of 30 s" in res.message
    with pytest.raises(dm_opt.ProblemError, match="time_limit must be a positive number"):
        tp.search_equilibria(P, time_limit=-1.0)


def test_search_real_time_limit_is_honest():
    tp = slide_market(v2=0.5)
    P = tp.candidate_prices()
    res = tp.search_equilibria(P, time_limit=0.02)
    if res.complete:
        return
    assert res.status is Termination.TIME_LIMIT and 1 <= res.candidates_covered < P.shape[0]
    full = tp.search_equilibria(P)
    _check_partial_search(full, res, P, res.candidates_covered, Termination.TIME_LIMIT)
