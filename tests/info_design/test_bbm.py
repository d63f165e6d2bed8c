"""The closed form of P_q (BBM surplus triangle, dm_opt/info_design/bbm.py)
against the LP oracle of test_lp.py (scipy linprog on the dense textbook
formulation, no shared code) and against the package's own LP path.

Derivation checked here step by step (module docstring of dm_opt.info_design.bbm):
(i)   the BBM segmentation is feasible and obedient, sells to every type, and gives the
      merchant exactly the uniform-price profit Π*;
(ii)  V(q) = max(γ_u, γ_π)·TS − max(γ_u − γ_π, 0)·Π* and W(q) as stated, for A = Ω and A ⊋ Ω;
(iii) ∂V(q) = conv{λ^k : ω_k optimal uniform price} + cone{e_ω : q(ω) = 0};
(iv)  constrained efficiency reduces to one LP in (q, t).
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dm_opt import InfoDesignMarket
from dm_opt.core.errors import ProblemError
from dm_opt.info_design import bbm, lp
from tests.info_design.test_lp import oracle_in_D, oracle_V, oracle_W

TOL = 1e-7


def random_market(rng, n, *, extra_fees=False, equal_weights=False):
    types = np.sort(rng.choice(np.arange(1, 4 * n + 2), n, replace=False)).astype(float)
    fees = None
    if extra_fees:      # fees outside Ω: below, between and above the types
        fees = np.unique(np.r_[types, rng.uniform(0.0, types[-1] + 2.0, 3)])
    gu, gp = rng.uniform(0, 2, 2)
    if equal_weights:
        gp = gu
    return InfoDesignMarket(types, rng.dirichlet(np.ones(n)), rng.uniform(0, types.mean()), gu, gp, fees)


def rand_q(rng, market):
    q = market.prior * rng.uniform(0, 1, market.n)
    q[rng.random(market.n) < 0.25] = 0.0
    return q


def obedience_slack(market, y):
    """min over (a, a') of Σ_ω (π(a,ω) − π(a',ω)) y(a,ω), computed densely."""
    m = market.m
    return min((float(np.sum((market.pi[a] - market.pi[b]) * y[a])) for a in range(m) for b in range(m) if a != b),
               default=0.0)


CASES = [(seed, n, extra, eq) for seed, (n, extra, eq) in enumerate(
    itertools.product([1, 2, 3, 4], [False, True], [False, False, True]))]


@pytest.mark.parametrize("seed, n, extra, equal", CASES)
def test_value_welfare_and_mechanism_match_the_lp_oracle(seed, n, extra, equal):
    rng = np.random.default_rng(7000 + seed)
    market = random_market(rng, n, extra_fees=extra, equal_weights=equal)
    assert bbm.applies(market)
    for _ in range(4):
        q = rand_q(rng, market)
        s = bbm.platform(market, q)
        V, _ = oracle_V(market, q)
        assert abs(s.value - V) <= TOL
        # (i) the mechanism is feasible, obedient and attains V
        np.testing.assert_allclose(s.y.sum(axis=0), q, atol=1e-12)
        assert obedience_slack(market, np.asarray(s.y)) >= -1e-12
        assert abs(float(np.sum(market.v * s.y)) - V) <= TOL
        # (ii) closed forms of V and W
        TS = float(market.types @ q)
        Pi = max(a * q[market.types >= a].sum() for a in market.fees)
        gu, gp = market.gamma_u, market.gamma_pi
        assert abs(s.value - (max(gu, gp) * TS - max(gu - gp, 0) * Pi)) <= 1e-12 * max(1, TS)
        w = bbm.welfare(market, q)
        assert abs(w.value - oracle_W(market, q)) <= 1e-6
        if gu >= gp:    # the BBM segmentation: everyone buys, merchant earns Π*
            assert abs(float(np.sum(market.pi * s.y)) - Pi) <= 1e-12 * max(1, TS)
            assert abs(float(np.sum(market.u * s.y)) - (TS - Pi)) <= 1e-12 * max(1, TS)


@pytest.mark.parametrize("seed", range(8))
def test_supergradient_set_matches_the_lp_dual_face(seed):
    """(iii): the exact ranges equal the LP's dual-face ranges up to the LP's own slack
    (its face is {λ·q ≤ V + tol}, so a coordinate can move by O(tol / q(ω)))."""
    rng = np.random.default_rng(7100 + seed)
    market = random_market(rng, 2 + seed % 3, extra_fees=seed % 2 == 1)
    P = lp.PlatformLP(market)
    for it in range(3):
        q = rand_q(rng, market)
        if it == 2:                        # a kink: two uniform prices tie
            q = np.zeros(market.n)
            q[0], q[-1] = market.types[-1], market.types[0]
            q = q / q.sum() * 0.7
        a, b = P.solve(q, intervals=True), bbm.platform(market, q)
        tol = lp.FACE_TOL * lp._scale(market) * max(1.0, q.sum())
        pos = q > 0
        assert np.array_equal(np.isfinite(a.upper), pos) and np.array_equal(np.isfinite(b.upper), pos)
        slack = 10 * tol / np.where(pos, q, 1.0)
        assert np.all(np.abs(a.lower[pos] - b.lower[pos]) <= slack[pos])
        assert np.all(np.abs(a.upper[pos] - b.upper[pos]) <= slack[pos])
        np.testing.assert_allclose(a.lower[~pos], b.lower[~pos], atol=1e-6)
        # every reported point is a supergradient: dual feasible and λ·q = V(q)
        for lam in np.r_[b.supergradients, b.supergradient[None, :]]:
            assert oracle_in_D(market, lam)
            assert abs(float(lam @ q) - b.value) <= TOL
        # the obedience duals certify the reported supergradient (reduced costs ≥ 0)
        rc = lp.FaceLP(market, P).reduced_costs(b)
        assert rc.min() >= -1e-12


def test_supergradients_at_the_two_type_kink_are_an_interval():
    """Slides' two-type example (γ_π = 0 < γ_u = 0.8): at q(1) = q(2) both prices tie and
    ∂V = [λ^1, λ^2], the same interval the LP path reports."""
    m = InfoDesignMarket([1.0, 2.0], [0.4, 0.6], 0.5, 0.8, 0.0)
    s = bbm.platform(m, [0.3, 0.3])
    np.testing.assert_allclose(s.lower, [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.upper, [0.8, 0.8], atol=1e-12)
    assert s.unique_supergradient is False
    r = lp.PlatformLP(m).solve([0.3, 0.3], intervals=True)
    np.testing.assert_allclose([r.lower, r.upper], [s.lower, s.upper], atol=1e-7)


@pytest.mark.parametrize("seed", range(6))
def test_pieces_equal_the_lp_piece_enumeration(seed):
    rng = np.random.default_rng(7200 + seed)
    market = random_market(rng, 2 + seed % 4, extra_fees=seed % 2 == 0, equal_weights=seed == 5)
    a, b = lp.value_pieces(market, method="lp"), lp.value_pieces(market)
    assert b.lp_solves == 0
    A, B = np.asarray(a.gradients), np.asarray(b.gradients)
    assert A.shape == B.shape
    for row in A:
        assert np.min(np.max(np.abs(B - row), axis=1)) <= 1e-6


@pytest.mark.parametrize("seed", range(8))
def test_constrained_efficiency_equals_the_piece_method(seed):
    """(iv) against the piece method run on LP-found pieces: W°, every piece LP's value, and
    the set of optimal pieces."""
    rng = np.random.default_rng(7300 + seed)
    market = random_market(rng, 2 + seed % 4, extra_fees=seed % 3 == 0, equal_weights=seed == 7)
    pieces = lp.value_pieces(market, method="lp")
    a = lp.constrained_efficiency(market, method="pieces", pieces=pieces)
    b = lp.constrained_efficiency(market)
    assert b.method == "bbm" and b.status.value == "optimal" and b.gap <= 1e-9   # bound: HiGHS' LP value
    assert abs(a.welfare - b.welfare) <= 1e-7
    A, B = np.asarray(a.pieces), np.asarray(b.pieces)
    match = [int(np.argmin(np.max(np.abs(B - row), axis=1))) for row in A]
    assert sorted(match) == list(range(len(B)))
    np.testing.assert_allclose(np.asarray(b.piece_values)[match], a.piece_values, atol=1e-7)
    assert sorted(match[k] for k in a.optimal_pieces) == list(b.optimal_pieces)
    # the allocation attains W° in the oracle and x° solves P_q°
    y = np.asarray(b.x) * np.asarray(b.q)[None, :]
    V, _ = oracle_V(market, b.q)
    assert abs(float(np.sum(market.v * y)) - V) <= 1e-7
    assert abs(V + float(np.sum(market.u * y)) - market.reservation * b.q.sum() - b.welfare) <= 1e-7


@pytest.mark.parametrize("seed, n, steps", [
    (0, 2, 21), (1, 3, 7), (2, 2, 21),
    pytest.param(0, 2, 81, marks=pytest.mark.slow), pytest.param(1, 3, 13, marks=pytest.mark.slow)])
def test_constrained_efficiency_beats_a_fine_grid(seed, n, steps):
    rng = np.random.default_rng(7400 + seed)
    market = random_market(rng, n)
    r = bbm.constrained_efficiency(market)
    best = -np.inf
    for q in itertools.product(*[np.linspace(0, b, steps) for b in market.prior]):
        q = np.array(q)
        best = max(best, oracle_W(market, q) - market.reservation * q.sum())
    assert best <= r.welfare + 1e-6
    assert r.welfare <= best + 0.2 * market.types[-1] / steps * 4     # the grid gets close


@pytest.mark.parametrize("gamma_u, rbar, q1", [(0.8, 0.5, 0.3), (1.5, 1.0, 0.45), (0.3, 0.2, 0.1)])
def test_two_type_example_closed_form(gamma_u, rbar, q1):
    """Slides: γ_π = 0 < γ_u, Ω = {1,2}, q̄(1) < q̄(2), r̄ < (1+γ_u)/2 ⇒ unique
    q°(1) = q°(2) = q̄(1) and x°(a=1|ω) = 1 (derivation in the module docstring: on the
    diagonal the planner objective is s(1 + γ_u − 2r̄))."""
    m = InfoDesignMarket([1.0, 2.0], [q1, 1 - q1], rbar, gamma_u, 0.0)
    r = bbm.constrained_efficiency(m)
    np.testing.assert_allclose(r.q, [q1, q1], atol=1e-9)
    np.testing.assert_allclose(np.asarray(r.x)[0], [1.0, 1.0], atol=1e-9)
    assert abs(r.welfare - q1 * (1 + gamma_u - 2 * rbar)) <= 1e-9


def test_merchant_weighted_market_is_full_disclosure_and_separable():
    """γ_u < γ_π: full disclosure at every q, and q°(ω) = q̄(ω) iff γ_π ω > r̄."""
    m = InfoDesignMarket([1.0, 2.0, 3.0, 5.0], [0.1, 0.2, 0.3, 0.4], 1.9, 0.2, 0.7)
    s = bbm.platform(m, m.prior)
    np.testing.assert_allclose(np.asarray(s.x), np.eye(4))
    r = bbm.constrained_efficiency(m)
    np.testing.assert_allclose(r.q, [0.0, 0.0, 0.3, 0.4])
    assert abs(r.welfare - (0.7 * (0.9 + 2.0) - 1.9 * 0.7)) <= 1e-12


@pytest.mark.parametrize("kwargs, needle", [
    (dict(types=[1.0, 2.0], fees=[1.0, 1.5]), "Ω ⊆ A"),
    (dict(types=[0.0, 2.0], fees=None), "positive"),
])
def test_refuses_where_the_closed_form_does_not_hold_and_auto_falls_back(kwargs, needle):
    m = InfoDesignMarket(kwargs["types"], [0.5, 0.5], 0.1, 1.0, 0.2, kwargs["fees"])
    assert needle in bbm.not_applicable(m)
    with pytest.raises(ProblemError, match="bbm"):
        bbm.platform(m, m.prior)
    with pytest.raises(ProblemError, match="bbm"):
        lp.constrained_efficiency(m, method="bbm")
    s = lp.solve_platform(m, m.prior)             # auto → LP
    assert abs(s.value - oracle_V(m, m.prior)[0]) <= TOL
    assert lp.constrained_efficiency(m).method == "pieces"


def test_general_payoffs_are_refused():
    rng = np.random.default_rng(3)
    m = InfoDesignMarket.from_payoffs(*rng.uniform(0, 1, (3, 2, 2)), [0.5, 0.5], 0.1)
    assert "general" in bbm.not_applicable(m)
    with pytest.raises(ProblemError):
        lp.solve_platform(m, m.prior, method="bbm")


def test_unknown_platform_method_is_a_clear_error():
    m = InfoDesignMarket([1.0, 2.0], [0.5, 0.5], 0.1, 1.0, 0.2)
    with pytest.raises(ProblemError, match="method"):
        lp.solve_platform(m, m.prior, method="simplex")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_segmentation_is_obedient_and_efficient_at_any_size(n, seed):
    """(i) by suffix sums (O(n²)) for up to 40 types: Σ_k Y[k] = q, segment k contains only
    types ≥ ω_k (everyone buys), and price ω_k is optimal in segment k."""
    rng = np.random.default_rng(seed)
    types = np.cumsum(rng.uniform(0.1, 3.0, n))
    q = rng.dirichlet(np.ones(n)) * (rng.random(n) > 0.3)
    Y = bbm.segmentation(types, q)
    np.testing.assert_allclose(Y.sum(axis=0), q, atol=1e-15)
    assert np.all(Y >= 0)
    for k in np.flatnonzero(Y.sum(axis=1) > 0):
        assert np.all(Y[k, :k] == 0)
        profits = types * np.cumsum(Y[k][::-1])[::-1]
        assert profits.max() <= profits[k] * (1 + 1e-12)
    assert np.count_nonzero(Y.sum(axis=1)) <= max(1, np.count_nonzero(q))


def test_large_market_agrees_with_the_lp_at_fifty_types():
    """One size where the LP is still quick: |Ω| = |A| = 50."""
    rng = np.random.default_rng(11)
    market = InfoDesignMarket(np.arange(1.0, 51.0), rng.dirichlet(np.ones(50)), 2.0, 1.0, 0.3)
    q = market.prior * rng.uniform(0.2, 1.0, 50)
    a, b = lp.PlatformHighs(market).solve(q), bbm.platform(market, q, intervals=False)
    assert abs(a.value - b.value) <= 1e-7 * max(1.0, abs(a.value))


@pytest.mark.parametrize("seed", range(4))
def test_obedience_slacks_by_suffix_sums_equal_the_matrix_form(seed):
    """The O(mn + m²) check used on large markets against the row-by-row obedience matrix."""
    rng = np.random.default_rng(7500 + seed)
    market = random_market(rng, 3 + seed, extra_fees=seed % 2 == 1)
    y = rng.uniform(0, 1, (market.m, market.n)) * (rng.random((market.m, market.n)) < 0.6)
    G, pairs = lp.obedience_matrix(market)
    S = lp.obedience_slacks(market, y)
    np.testing.assert_allclose(S[pairs[:, 0], pairs[:, 1]], G @ y.ravel(), atol=1e-12)
    assert np.all(np.diag(S) == 0)


def test_platform_sweep_validates_and_agrees_across_methods():
    rng = np.random.default_rng(12)
    market = random_market(rng, 4)
    Q = market.prior[None, :] * rng.uniform(0, 1, (5, 4))
    a = lp.platform_sweep(market, Q)
    b = lp.platform_sweep(market, Q, method="lp")
    np.testing.assert_allclose([s.value for s in a], [s.value for s in b], atol=1e-8)
    from dm_opt.core.errors import InstanceError
    with pytest.raises(InstanceError, match="databases"):
        lp.platform_sweep(market, Q[:, :3])
    with pytest.raises(InstanceError, match="databases"):
        lp.platform_sweep(market, np.where(Q > 0.1, np.nan, Q))
    with pytest.raises(InstanceError, match="q"):
        lp.platform_sweep(market, -Q)
    with pytest.raises(ProblemError, match="intervals"):
        lp.platform_sweep(market, Q, method="lp", intervals=True)


def test_cli_bbm_on_a_market_where_it_does_not_apply_is_one_clear_line(capsys):
    from pathlib import Path

    from dm_opt.cli import main
    f = Path(__file__).resolve().parents[2] / "models" / "glp" / "second_price_general.toml"
    assert main(["solve", str(f), "--problem", "platform", "--method", "bbm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bbm" in err and "general payoff" in err


@pytest.mark.parametrize("seed", range(6))
def test_data_union_closed_form_equals_the_piece_lps(seed):
    """Union value = W° + r̄ (derivation in dm_opt.info_design.bbm.data_union) against the slides'
    union LP solved piece by piece; the closed-form payments meet budget and participation."""
    rng = np.random.default_rng(7600 + seed)
    market = random_market(rng, 2 + seed % 3, extra_fees=seed % 2 == 1)
    a = lp.data_union(market, method="pieces")
    b = lp.data_union(market)
    assert abs(a.value - b.value) <= 1e-7 and abs(a.welfare - b.welfare) <= 1e-7
    assert abs(b.welfare - lp.constrained_efficiency(market).welfare) <= 1e-12
    P = np.asarray(b.prices) * market.prior
    U = market.consumer_utility(b.x)
    assert abs(P.sum() - b.platform_value) <= 1e-9                                   # budget Σ P = V(q)
    assert np.all(P + (U - market.reservation) * np.asarray(b.q) >= -1e-12)          # participation
