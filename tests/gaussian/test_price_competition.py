"""Competition over data prices, proven against every price (AMMO §4.2, Thm 4, Thm B-1).

Every module answer is compared with an independent computation: user equilibria and payoffs
recomputed from the leakage oracle and the joining values for every joint action, best
responses against dense random prices plus the breakpoints ± 1e-7, and the finite game's
equilibria against pygambit (when installed) and the module's own vertex enumeration.
"""

import itertools

import numpy as np
import pytest

import dm_opt
from dm_opt.core.result import check_protocol
from dm_opt.gaussian.platforms import JoiningValues, TwoPlatformMarket
from dm_opt.gaussian.platforms import competition as CP

try:
    import pygambit  # noqa: F401
    HAVE_GAMBIT = True
except ImportError:          # optional dependency: the module's own enumeration is still tested
    HAVE_GAMBIT = False

OPTIONS = [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)]
V = [0, 1]


# ------------------------------------------------------------------ independent second stage
_LEAK = {}


def leak(g, S):
    """𝓘(S) straight from the oracle (memoised per market and set)."""
    key = (id(g), tuple(sorted(S)))
    if key not in _LEAK:
        a = np.zeros(g.n, dtype=np.int8)
        a[list(S)] = 1
        _LEAK[key] = (g, np.asarray(g.leakage(a), float))
    return _LEAK[key][1]


def brute_stage(g, C, p1, p2, tol=1e-9):
    """Every pure user equilibrium at (p1, p2) as (profile, U1, U2), recomputed from scratch."""
    n = g.n

    def payoff(i, prof):
        k, s = prof[i]
        if k == 0:
            return 0.0
        J = [j for j in range(n) if prof[j][0] == k]
        S = [j for j in J if prof[j][1]]
        return C.value(i, J) + s * (p1 if k == 1 else p2)[i] - g.values[i] * leak(g, S)[i]

    out = []
    for prof in itertools.product(OPTIONS, repeat=n):
        if all(payoff(i, prof) >= max(payoff(i, prof[:i] + (o,) + prof[i + 1:]) for o in OPTIONS) - tol
               for i in range(n)):
            U = []
            for k, p in ((1, p1), (2, p2)):      # eq. (8): leakage about every JOINED user, paid to sharers
                S = [j for j in range(n) if prof[j] == (k, 1)]
                J = [j for j in range(n) if prof[j][0] == k]
                U.append(float(leak(g, S)[J].sum() - np.sum(np.asarray(p)[S])) if S else 0.0)
            out.append((prof, U[0], U[1]))
    return out


def brute_value(g, C, p1, p2, k, rule, tol=1e-9):
    """Platform k's payoff at (p1, p2) under the rule (None: no pure user equilibrium)."""
    eqs = brute_stage(g, C, p1, p2, tol)
    if not eqs:
        return None
    if rule == "max_sum":
        top = max(u1 + u2 for _, u1, u2 in eqs)
        eqs = [e for e in eqs if e[1] + e[2] >= top - tol]
    vals = [e[k] for e in eqs]
    return max(vals) if rule == "optimistic" else min(vals)


def random_market(seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(2, 2))
    g = dm_opt.GaussianMarket(A @ A.T / 2 + 0.3 * np.eye(2), rng.uniform(0.1, 1.6, 2))
    C = JoiningValues.linear(rng.uniform(5, 6, 2), rng.uniform(0.01, 0.4, 2))
    return g, C, TwoPlatformMarket(g, C), rng


def deltas(tp):
    d = [tp.joining.value(i, V) - tp.joining.value(i, [i]) for i in V]
    return min(d), max(d)        # n = 2: δ and Δ of Thm 4 (T ∋ i, T ⊊ V means T = {i})


# ------------------------------------------------------------------ second stage
@pytest.mark.parametrize("seed", range(3))
def test_second_stage_pure_mixed_and_selection(seed):
    g, C, tp, rng = random_market(seed)
    bp = CP.price_breakpoints(tp, np.zeros(2), 1)
    for _ in range(4):
        p1 = np.array([rng.choice(b) for b in bp]) + rng.choice([0, 1e-3], 2)
        p2 = rng.uniform(0, 0.6, 2)
        st = CP.second_stage(tp, p1, p2)
        assert not check_protocol(st)
        want = {prof for prof, _, _ in brute_stage(g, C, p1, p2)}
        got = {tuple((int(b), int(a)) for b, a in zip(o.b, o.a, strict=True)) for o in st.pure}
        assert got == want
        A, B, V1, V2 = CP.user_stage_bimatrix(tp, p1, p2)
        for e in st.mixed:                      # verified mixed equilibria, not pure
            assert not e.is_pure
            assert (A @ e.y).max() <= e.x @ A @ e.y + 1e-9 and (e.x @ B).max() <= e.x @ B @ e.y + 1e-9
        every = list(st.pure) + list(st.mixed)
        if every:                                # Thm B-1's rule: the highest U1 + U2
            best = max(sum(e.platform_payoffs) for e in every)
            assert sum(st.selected.platform_payoffs) == pytest.approx(best, abs=1e-12)


def test_bimatrix_enumeration_finds_every_extreme_equilibrium():
    # degenerate game with a continuum of equilibria: both pure corners and the segment's ends
    A = np.array([[1.0, 1.0], [1.0, 1.0]])
    B = np.array([[1.0, 0.0], [0.0, 1.0]])
    eqs = CP.bimatrix_equilibria(A, B)
    assert len(eqs) == 4                  # x ∈ {(1,0), (0,1)}, y best reply to each; x = (½,½) with y = e1, e2
    # matching pennies: the unique mixed equilibrium
    eqs = CP.bimatrix_equilibria(np.array([[1.0, -1], [-1, 1]]), np.array([[-1.0, 1], [1, -1]]))
    assert len(eqs) == 1 and np.allclose(eqs[0][0], 0.5) and np.allclose(eqs[0][1], 0.5)
    # random games: every equilibrium checked by best replies; pygambit agrees when installed
    rng = np.random.default_rng(4)
    for _ in range(5):
        A, B = rng.integers(0, 4, (4, 3)).astype(float), rng.integers(0, 4, (4, 3)).astype(float)
        eqs = CP.bimatrix_equilibria(A, B)
        assert eqs
        for x, y in eqs:
            assert (A @ y).max() <= x @ A @ y + 1e-9 and (x @ B).max() <= x @ B @ y + 1e-9
        if HAVE_GAMBIT:
            ref = CP._gambit_equilibria(A, B, "gambit")
            assert {tuple(np.round(np.r_[x, y], 8)) for x, y in ref} <= \
                {tuple(np.round(np.r_[x, y], 8)) for x, y in eqs}


# ------------------------------------------------------------------ best responses over every price
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("rule", CP.RULES)
def test_best_response_is_the_supremum_over_every_price(seed, rule):
    g, C, tp, rng = random_market(seed)
    q = rng.uniform(0, 0.5, 2)
    for k in (1, 2):
        br = CP.best_response(tp, q, k, rule=rule)
        assert not check_protocol(br)
        assert br.bounds["pessimistic"] <= br.bounds["max_sum"] + 1e-12 <= br.bounds["optimistic"] + 2e-12
        assert br.bounds["optimistic"] <= br.bounds["any"] + 1e-12
        # independent: dense random prices, the breakpoints and ± 1e-7 around them, never beat the sup
        # every f_12 value (a superset of the breakpoints the module uses)
        levels = [np.concatenate([b, b + 1e-7, np.maximum(b - 1e-7, 0), rng.uniform(0, b.max() + 1, 6)])
                  for b in CP.price_breakpoints(tp, q, k)]
        pts = np.array(list(itertools.product(*levels)))
        pts = pts[rng.choice(len(pts), size=min(len(pts), 80), replace=False)]
        best = -np.inf
        for p in pts:
            pp1, pp2 = (p, q) if k == 1 else (q, p)
            val = brute_value(g, C, pp1, pp2, k, rule)
            if val is not None:
                assert val <= br.value + 1e-9
                best = max(best, val)
        # the witness price reaches the sup (within 1e-6), checked from scratch
        pp1, pp2 = (br.witness, q) if k == 1 else (q, br.witness)
        assert brute_value(g, C, pp1, pp2, k, rule) >= br.value - 1e-6
        assert best <= br.value + 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_optimistic_closed_form_matches_cells(seed):
    g, C, tp, rng = random_market(seed)
    for _ in range(3):
        q = rng.uniform(0, 0.6, 2)
        for k in (1, 2):
            val, price, r = CP.optimistic_best_response(tp, q, k)
            assert val == pytest.approx(CP.best_response(tp, q, k, rule="optimistic").value, abs=1e-12)
            pp1, pp2 = (price, q) if k == 1 else (q, price)
            assert brute_value(g, C, pp1, pp2, k, "optimistic") == pytest.approx(val, abs=1e-9)


def test_mixed_second_stage_payoffs_respect_the_any_bound():
    """Where no pure user equilibrium exists the second stage is mixed; the deviator's payoff in every
    user equilibrium (pure or extreme mixed, recomputed at sampled prices) stays below ``any`` and,
    in cells without a pure one, below ``no_pure_bound``."""
    g = dm_opt.GaussianMarket([[1.0, .8], [.8, 1.0]], [0.5, 5.0])           # the slides' instance
    tp = TwoPlatformMarket(g, JoiningValues.linear([6.0, 6.0], [0.01, 0.01]))
    rng = np.random.default_rng(2)
    mixed_only = 0
    for q in ([0.26, 0.0], [0.51, 0.0]):
        br = CP.best_response(tp, q, 1)
        assert br.no_pure_cells > 0 and br.no_pure_bound <= br.bounds["any"]
        levels = [np.concatenate([b, b + 1e-7, 0.5 * (b[1:] + b[:-1])]) for b in CP.price_breakpoints(tp, q, 1)]
        pts = np.array(list(itertools.product(*levels)))
        for p in pts[rng.choice(len(pts), size=30, replace=False)]:
            st = CP.second_stage(tp, p, q)
            for e in list(st.pure) + list(st.mixed):
                assert e.platform_payoffs[0] <= br.bounds["any"] + 1e-9
            if not st.pure:
                mixed_only += 1
                assert st.mixed and st.selected is not None and st.mixed_selected
                assert max(e.platform_payoffs[0] for e in st.mixed) <= br.no_pure_bound + 1e-9
    assert mixed_only >= 3


# ------------------------------------------------------------------ Thm 4 (n = 2)
def fb_outcome(tp, p1, p2):
    st = CP.second_stage(tp, p1, p2, mixed=False)
    return [o for o in st.pure if o.b.tolist() == [1, 1] and o.a.tolist() == [1, 1]]


@pytest.mark.parametrize("slope", [0.5, 0.1])
def test_thm4_part1_proof_prices_are_proven_against_every_price(slope):
    v = np.array([0.5, 2.0])
    g = dm_opt.GaussianMarket(np.diag([1.0, 1.5]), v)
    tp = TwoPlatformMarket(g, JoiningValues.linear([4.0, 4.0], [slope, slope]))
    I = leak(g, [0])[0]
    p1 = [v[0] * I if slope >= (1 - v[0]) * I else I - slope, 0.0]
    p2 = [v[0] * I if slope >= (1 - v[0]) * I else I, 0.0]
    out = [o for o in CP.second_stage(tp, p1, p2, mixed=False).pure
           if o.b.tolist() == [1, 1] and o.a.tolist() == [1, 0]][0]
    assert out.surplus == pytest.approx(tp.first_best()[0])                 # efficient
    chk = CP.check_price_equilibrium(tp, p1, p2, rule="pessimistic", outcome=out)   # Definition 2
    assert chk.verdict == "equilibrium" and max(chk.gains) <= 1e-9 and not check_protocol(chk)
    ms = CP.check_price_equilibrium(tp, p1, p2, rule="max_sum", outcome=out)
    if slope >= (1 - v[0]) * I:
        assert ms.verdict == "equilibrium"
    else:
        # Under Thm B-1's selection (highest U1 + U2) the proof's prices are NOT an equilibrium:
        # platform 2 pays user 0 p = I − 2Δc... = 0.3 and everybody moves (U2 = 0.2 > U1 = 0.1 at the
        # tie), a deviation Definition 2 ignores (users may stay on platform 1).
        assert ms.verdict == "not_equilibrium" and ms.deviation[0] == 2
        k, w, got = ms.deviation
        assert got == pytest.approx(ms.gains[1], abs=1e-6) and got > 0.19
        assert brute_value(g, tp.joining, p1, w, 2, "max_sum") == pytest.approx(got, abs=1e-9)


def test_thm4_part21_steep_joining_values_support_the_first_best():
    g = dm_opt.GaussianMarket([[1, .8], [.8, 1]], [.3, .3])
    tp = TwoPlatformMarket(g, JoiningValues.linear([6, 6], [10, 10]))
    v, IV = g.values, leak(g, V)
    delta, _ = deltas(tp)
    delta_low = max(IV.sum() + v[i] * (leak(g, [1 - i])[i] - leak(g, [i])[i]) for i in V)     # (B-1)
    assert delta >= delta_low                                                                  # 10 ≥ 1.1365
    p1 = np.array([v[i] * (IV[i] - leak(g, [1 - i])[i]) for i in V])                           # (B-2)
    p2 = np.array([delta - v[i] * leak(g, [1 - i])[i] + v[i] * leak(g, [i])[i] for i in V])
    (out,) = fb_outcome(tp, p1, p2)
    assert out.surplus == pytest.approx(tp.first_best()[0])
    for rule in ("pessimistic", "max_sum"):
        assert CP.check_price_equilibrium(tp, p1, p2, rule=rule, outcome=out).verdict == "equilibrium"


def _b3_min(g):
    """Δ̄ of (B-3) read as a MIN (what the proof's step (b) needs), and v̄ of (B-4)."""
    v, IV = g.values, leak(g, V)
    t1 = min((1 - v[i]) * IV[i] + v[i] * (2 * leak(g, [i])[i] - leak(g, [j for j in V if j not in S])[i])
             for i in V for S in ([], [1 - i]))
    t2 = min(sum(IV[i] - (1 - v[i]) * leak(g, S)[i] - v[i] * leak(g, sorted(set(V) - set(S) | {i}))[i]
                 for i in S) / (2 * len(S)) for S in ([0], [1], [0, 1]))
    t1max = max((1 - v[i]) * IV[i] + v[i] * (2 * leak(g, [i])[i] - leak(g, [j for j in V if j not in S])[i])
                for i in V for S in ([], [1 - i]))
    return min(t1, t2), t1max


@pytest.mark.parametrize("slope,expect", [(0.005, "equilibrium"), (0.009, "equilibrium"),
                                          (0.01, "not_equilibrium")])
def test_thm4_part22_needs_the_min_in_b3(slope, expect):
    """Part 2-2.  The printed (B-3) takes a MAX (Δ̄ ≈ 0.56 here), but step (b) of the proof needs
    every term, i.e. a MIN (Δ̄ = 0.0095).  The printed (B-5) price ``(1 − v)I(V) + I({i})`` is not
    what the proof uses (``(1 − v)I(V) + v I({i})``): with it the first best is no user equilibrium."""
    g = dm_opt.GaussianMarket([[1, .8], [.8, 1]], [.2, .2])
    tp = TwoPlatformMarket(g, JoiningValues.linear([6, 6], [slope, slope]))
    v, IV = g.values, leak(g, V)
    dbar_min, dbar_printed = _b3_min(g)
    _, Delta = deltas(tp)
    assert Delta <= dbar_printed and v.max() <= 0.5                     # the printed hypotheses hold
    p1 = IV - Delta
    printed = (1 - v) * IV + np.array([leak(g, [i])[i] for i in V])
    assert not fb_outcome(tp, p1, printed)                              # printed (B-5): nobody stays on 1
    p2 = (1 - v) * IV + v * np.array([leak(g, [i])[i] for i in V])
    (out,) = fb_outcome(tp, p1, p2)
    assert (Delta <= dbar_min) == (expect == "equilibrium")
    for rule in CP.RULES:
        chk = CP.check_price_equilibrium(tp, p1, p2, rule=rule, outcome=out)
        assert chk.verdict == expect
        if expect == "not_equilibrium":  # platform 2 takes both users at p = p1 − Δ + v (I(V) − I({i}))
            k, w, got = chk.deviation
            assert k == 2 and got > 0
            assert brute_value(g, tp.joining, p1, w, 2, rule) == pytest.approx(got, abs=1e-9)


def test_thm4_part23_first_best_is_never_an_equilibrium():
    g = dm_opt.GaussianMarket([[1, .8], [.8, 1]], [.9, .9])
    tp = TwoPlatformMarket(g, JoiningValues.linear([6, 6], [0.01, 0.01]))
    v, IV = g.values, leak(g, V)
    _, Delta = deltas(tp)
    Dt = min(min(0.5 * (1 - v[i]) * leak(g, [i])[i] for i in V),                       # (B-8)
             max(sum(leak(g, [i, j])[i] - leak(g, [i])[i] for i in V if i != j) / (2 * (3 * 2 - 2)) for j in V))
    assert Delta <= Dt                                                                   # 0.01 ≤ 0.0119
    for j in V:                                                                          # (B-11) < (B-12)
        i = 1 - j
        ub = IV[j] + (1 - v[i]) * (IV[i] - leak(g, [i])[i]) + v[i] * (leak(g, [i])[i] - leak(g, [i, j])[i]) + 3 * Delta
        lb = (1 - v[j]) * leak(g, [j])[j] + v[j] * IV[j] - Delta
        assert ub < lb
    # exact check on price pairs: y on a grid, x the cheapest prices making the first best a user
    # equilibrium, and a few above — platform 1 or 2 always has a profitable deviation
    rng = np.random.default_rng(0)
    checked = 0
    for y in itertools.product(np.linspace(0, 0.9, 4), repeat=2):
        y = np.array(y)
        # cheapest x: user i must prefer sharing on 1 (all on 1) to every option against (x, y)
        x0 = CP.optimistic_best_response(tp, y, 1)[1]
        for x in (x0, x0 + rng.uniform(0, 0.1, 2)):
            if not fb_outcome(tp, x, y):
                continue
            chk = CP.check_price_equilibrium(tp, x, y, rule="pessimistic", outcome=fb_outcome(tp, x, y)[0])
            assert chk.verdict == "not_equilibrium"
            k, w, got = chk.deviation
            pp1, pp2 = (w, y) if k == 1 else (x, w)
            assert brute_value(g, tp.joining, pp1, pp2, k, "pessimistic") > chk.outcome.platform_payoffs[k - 1]
            checked += 1
    assert checked >= 8


# ------------------------------------------------------------------ finite game, mixed price equilibria
def small_game():
    g = dm_opt.GaussianMarket([[1, .8], [.8, 1]], [.9, .9])
    tp = TwoPlatformMarket(g, JoiningValues.linear([6, 6], [0.01, 0.01]))
    return g, tp, CP.finite_price_game(tp, levels=[[0.0, 0.5257], [0.0, 0.46, 0.5257]])


def test_finite_game_payoffs_match_an_independent_second_stage():
    g, tp, game = small_game()
    assert game.U1.shape == (6, 6) and not check_protocol(game)
    for s, t in itertools.product(range(6), repeat=2):
        p1, p2 = game.strategies1[s], game.strategies2[t]
        eqs = brute_stage(g, tp.joining, p1, p2)
        if game.mixed_stage[s, t]:
            assert not eqs
            continue
        top = max(u1 + u2 for _, u1, u2 in eqs)
        pairs = {(round(u1, 9), round(u2, 9)) for _, u1, u2 in eqs if u1 + u2 >= top - 1e-9}
        assert (round(game.U1[s, t], 9), round(game.U2[s, t], 9)) in pairs


@pytest.mark.parametrize("solver", ["enumeration", "gambit"])
def test_mixed_price_equilibria_are_verified(solver):
    if solver == "gambit":
        pytest.importorskip("pygambit")
    g, tp, game = small_game()
    eqs = CP.mixed_price_equilibria(tp, game, solver=solver)
    assert eqs
    for e in eqs:
        assert not check_protocol(e)
        # independent check of the equilibrium condition in the matrix game
        x, y = e.sigma1, e.sigma2
        assert x.sum() == pytest.approx(1) and y.sum() == pytest.approx(1)
        assert (game.U1 @ y).max() <= x @ game.U1 @ y + 1e-9
        assert (x @ game.U2).max() <= x @ game.U2 @ y + 1e-9
        # against every price (continuum): pessimistic ≤ optimistic ≤ any
        for k in (0, 1):
            c = e.continuum[k]
            assert c["pessimistic"] <= c["optimistic"] + 1e-12 <= c["any"] + 2e-12
    if solver == "gambit":
        own = CP.mixed_price_equilibria(tp, game, solver="enumeration", continuum=False)
        key = lambda e: tuple(np.round(np.r_[e.sigma1, e.sigma2], 7))   # noqa: E731
        assert {key(e) for e in eqs} <= {key(e) for e in own}


# ------------------------------------------------------------------ limits
def test_limits_refuse_cleanly():
    g = dm_opt.GaussianMarket(np.eye(3), [0.5, 0.5, 0.5])
    tp3 = TwoPlatformMarket(g, JoiningValues.linear([9.0] * 3, [0.1] * 3))
    with pytest.raises(dm_opt.LimitExceeded, match="n = 3: the breakpoint arrangement has .* cells"):
        CP.best_response(tp3, np.zeros(3), 1, max_cells=10)          # exact for n = 3, but over the cell budget
    g5 = dm_opt.GaussianMarket(np.eye(5), [0.5] * 5)
    tp5 = TwoPlatformMarket(g5, JoiningValues.linear([9.0] * 5, [0.1] * 5))
    for call in (lambda: CP.best_response(tp5, np.zeros(5), 1),
                 lambda: CP.check_price_equilibrium(tp5, np.zeros(5), np.zeros(5)),
                 lambda: CP.best_response_to_mixture(tp5, [(1.0, np.zeros(5))], 1)):
        with pytest.raises(dm_opt.LimitExceeded, match="n = 5: .* exact for n <= 4"):
            call()
    with pytest.raises(dm_opt.LimitExceeded, match="n = 3"):
        CP.user_stage_bimatrix(tp3, np.zeros(3), np.zeros(3))
    val, price, r = CP.optimistic_best_response(tp3, np.zeros(3), 1)     # closed form: any n ≤ 6
    assert np.isfinite(val)
    _, tp, _ = small_game()
    with pytest.raises(dm_opt.LimitExceeded, match="levels"):
        CP.finite_price_game(tp, levels=[np.linspace(0, 1, 30)] * 2)
    with pytest.raises(dm_opt.LimitExceeded, match="strategies"):
        CP.bimatrix_equilibria(np.zeros((13, 2)), np.zeros((13, 2)))
    with pytest.raises(dm_opt.ProblemError, match="rule"):
        CP.best_response(tp, np.zeros(2), 1, rule="nash")
    with pytest.raises(dm_opt.ProblemError, match="platform"):
        CP.best_response(tp, np.zeros(2), 3)
    with pytest.raises(dm_opt.ProblemError, match="solver"):
        CP.mixed_price_equilibria(tp, small_game()[2], solver="lemke")
