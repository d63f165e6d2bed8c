"""``P_q`` for general payoff matrices by row-and-column generation
(:class:`dm_opt.info_design.lp.highs_lp.GeneralPlatformHighs`).

On 120 seeded random instances (continuous payoffs, integer payoffs with ties and primal
degeneracy, rectangular |A| ≠ |Ω|, databases with empty types) ``V(q)`` and both ends of the range
of every coordinate of ``∂V(q)`` must equal (a) the cvxpy path (:class:`PlatformLP` with its
dual-face LPs) and (b) an independent dense oracle written here with ``scipy.optimize.linprog``
only: ``V`` from the textbook primal LP, the ranges from ``min/max λ(ω)`` over the dual polyhedron
cut by ``λ·q ≤ V(q) + ε``.
"""

import numpy as np
import pytest
from scipy.optimize import linprog

from dm_opt import InfoDesignMarket
from dm_opt.core.errors import InstanceError, ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.info_design import lp
from dm_opt.info_design.lp import highs_lp
from dm_opt.info_design.lp.highs_lp import GeneralPlatformHighs
from dm_opt.info_design.lp.platform import platform_model
from tests.support.glp_dense import dense_rows

TOL = 1e-6
EPS = 1e-10                 # relaxation of the dual face in the oracle


def dense_oracle(market, q, eps=EPS, options=None):
    """``V(q)`` and the per-coordinate ``min/max λ(ω)`` over ``∂V(q)`` by dense linprog LPs (the dual
    face relaxed by ``eps × max(1, Σq)``; ``options``: HiGHS tolerances of linprog)."""
    n = market.n
    u, pi, v = (np.asarray(x, float) for x in (market.u, market.pi, market.v))
    E, G = dense_rows(market)
    r = linprog(-v.ravel(), A_ub=-G if len(G) else None, b_ub=np.zeros(len(G)) if len(G) else None,
                A_eq=E, b_eq=q, bounds=(0, None), method="highs", options=options)
    assert r.status == 0
    V = -r.fun
    # dual variables (λ (n, free), μ (R, ≥ 0)): E'λ − G'μ ≥ v, λ·q ≤ V + ε
    R = len(G)
    A_ub = np.vstack([np.hstack([-E.T, G.T]), np.r_[q, np.zeros(R)][None, :]])
    b_ub = np.r_[-v.ravel(), V + eps * max(1.0, q.sum())]
    bounds = [(None, None)] * n + [(0, None)] * R
    lower, upper = np.empty(n), np.empty(n)
    for w in range(n):
        for sign, out in ((1.0, lower), (-1.0, upper)):
            c = np.zeros(n + R)
            c[w] = sign
            s = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs", options=options)
            if s.status == 3:
                out[w] = -sign * np.inf
            else:
                assert s.status == 0
                out[w] = sign * s.fun
    return V, lower, upper


def make(seed):
    """Instance ``seed`` of the catalogue: kind cycles through continuous, integer (ties), rectangular,
    and continuous with empty types in ``q``."""
    rng = np.random.default_rng(seed)
    kind = seed % 4
    n = int(rng.integers(2, 6))
    m = int(rng.integers(2, 7)) if kind == 2 else n
    if kind == 1:
        u, pi, v = rng.integers(0, 3, (3, m, n)).astype(float)
    else:
        u, pi, v = rng.uniform(0, 2, (3, m, n))
    market = InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(n)), 0.3)
    q = market.prior * rng.uniform(0.3, 1.0, n)
    if kind == 3:
        q[rng.integers(0, n)] = 0.0
    return market, q


# 120 seeded instances in all; 40 in the default run, the rest with -m slow
@pytest.mark.parametrize("seed", [*range(40), *(pytest.param(s, marks=pytest.mark.slow) for s in range(40, 120))])
def test_equals_cvxpy_and_dense_oracle(seed):
    market, q = make(seed)
    s = GeneralPlatformHighs(market).solve(q, intervals=True)
    assert s.status == "optimal" and s.gap == 0.0
    V, lo, up = dense_oracle(market, q)
    c = lp.PlatformLP(market).solve(q, intervals=True)
    assert c.status == "optimal"
    for ref in (V, c.value):
        assert s.value == pytest.approx(ref, abs=TOL)
    # the objective is re-evaluated at the returned mechanism, which is obedient and feasible
    assert s.value == pytest.approx(float(np.sum(market.v * s.y)), abs=1e-12)
    assert np.allclose(s.y.sum(axis=0), q, atol=1e-9)
    assert np.all(lp.obedience_slacks(market, s.y) >= -1e-9)
    for mine, ref in ((s.lower, lo), (s.upper, up), (s.lower, c.lower), (s.upper, c.upper)):
        fin = np.isfinite(ref)
        assert np.array_equal(np.isfinite(mine), fin)
        assert np.allclose(mine[fin], ref[fin], atol=TOL)
    # the reported supergradient is one element of ∂V(q)
    assert np.all(s.supergradient >= lo - TOL) and np.all(s.supergradient <= up + TOL)
    assert float(s.supergradient @ q) == pytest.approx(V, abs=TOL)


def test_degenerate_ends_are_exercised():
    """Empty types in ``q`` make the optimal basis primal degenerate: the perturbed re-solves of
    :meth:`GeneralPlatformHighs.ranges` are used on this catalogue (so the equality test above covers
    them)."""
    used = 0
    for seed in range(3, 120, 4):
        market, q = make(seed)
        G = GeneralPlatformHighs(market)
        G.solve(q, intervals=True)
        used += G.perturbed
    assert used > 0


@pytest.mark.parametrize("seed", [15, 35, 103, 111])
def test_dual_face_fallback(seed, monkeypatch):
    """With the perturbed re-solves switched off the degenerate ends go to the exact dual-face LPs,
    with the same answers."""
    monkeypatch.setattr(highs_lp, "PERTURB_TRIES", 0)
    market, q = make(seed)
    G = GeneralPlatformHighs(market)
    s = G.solve(q, intervals=True)
    assert s.status == "optimal" and G.face_lps > 0 and G.perturbed == 0
    V, lo, up = dense_oracle(market, q)
    for mine, ref in ((s.lower, lo), (s.upper, up)):
        fin = np.isfinite(ref)
        assert np.array_equal(np.isfinite(mine), fin) and np.allclose(mine[fin], ref[fin], atol=TOL)


@pytest.mark.parametrize("seed", range(6))
def test_warm_resolves_across_q(seed):
    """One live model re-solved along several databases equals fresh models (warm starts keep the
    generated rows and columns, which must not change any answer)."""
    rng = np.random.default_rng(100 + seed)
    n = 6
    u, pi, v = rng.uniform(0, 2, (3, n, n))
    market = InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(n)), 0.3)
    live = GeneralPlatformHighs(market)
    for _ in range(4):
        q = market.prior * rng.uniform(0.1, 1.0, n)
        a = live.solve(q, intervals=True)
        b = GeneralPlatformHighs(market).solve(q, intervals=True)
        V, lo, up = dense_oracle(market, q)
        assert a.value == pytest.approx(b.value, abs=TOL) and a.value == pytest.approx(V, abs=TOL)
        assert np.allclose(a.lower, lo, atol=TOL) and np.allclose(a.upper, up, atol=TOL)


def test_larger_instance_against_full_highs_model():
    """|Ω| = |A| = 30 (many generation rounds): the same V(q) and ranges as the full highspy model."""
    rng = np.random.default_rng(7)
    n = 30
    u, pi, v = rng.uniform(0, 2, (3, n, n))
    market = InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(n)), 0.3)
    q = market.prior * rng.uniform(0.2, 1.0, n)
    G = GeneralPlatformHighs(market)
    a = G.solve(q, intervals=True)
    b = lp.PlatformHighs(market).solve(q, intervals=True)
    assert G.rounds > 2 and G.rows < n * (n - 1)
    assert a.value == pytest.approx(b.value, abs=TOL)
    assert np.allclose(a.lower, b.lower, atol=TOL) and np.allclose(a.upper, b.upper, atol=TOL)


def test_default_model_choice(monkeypatch):
    rng = np.random.default_rng(3)
    u, pi, v = rng.uniform(0, 2, (3, 5, 5))
    market = InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(5)), 0.3)
    assert isinstance(platform_model(market), lp.PlatformHighs)          # small: the full model
    monkeypatch.setattr(highs_lp, "GENERATION_MIN_NNZ", 10)
    assert isinstance(platform_model(market), GeneralPlatformHighs)
    s = lp.solve_platform(market, market.prior)
    assert s.status == "optimal"
    assert s.value == pytest.approx(dense_oracle(market, market.prior)[0], abs=TOL)
    slides = InfoDesignMarket(np.arange(1.0, 6.0), np.full(5, 0.2), 0.5, 1.0, 0.3)
    assert not highs_lp.general_generation(slides)                           # suffix-sum form instead


def test_bad_input_refused():
    rng = np.random.default_rng(4)
    u, pi, v = rng.uniform(0, 2, (3, 3, 4))
    market = InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(4)), 0.3)
    G = GeneralPlatformHighs(market)
    for bad in ([0.1, 0.2, 0.3], [0.1, -0.2, 0.3, 0.1], [0.1, np.nan, 0.3, 0.1], "abc"):
        with pytest.raises(InstanceError, match="q"):
            G.solve(bad)
    with pytest.raises(ProblemError, match="lp_model"):
        lp.solve_platform(market, market.prior, lp_model="simplex")
    # the model is still usable after refusals
    assert G.solve(market.prior).status == "optimal"


def test_time_limit_is_honest():
    rng = np.random.default_rng(5)
    n = 8
    u, pi, v = rng.uniform(0, 2, (3, n, n))
    market = InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(n)), 0.3)
    dl = Deadline(1e-9)
    while not dl.expired():
        pass
    s = GeneralPlatformHighs(market).solve(market.prior, time_limit=dl)
    assert s.status == "time_limit"
    assert s.bound >= s.value - 1e-12
    assert np.all(lp.obedience_slacks(market, s.y) >= -1e-9)       # the mechanism returned is obedient
    V = dense_oracle(market, market.prior)[0]
    assert s.value <= V + TOL <= s.bound + 2 * TOL


def test_zero_database():
    rng = np.random.default_rng(6)
    u, pi, v = rng.uniform(0, 2, (3, 4, 4))
    market = InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(4)), 0.3)
    s = GeneralPlatformHighs(market).solve(np.zeros(4), intervals=True)
    V, lo, up = dense_oracle(market, np.zeros(4))
    assert s.status == "optimal" and s.value == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(s.lower, lo, atol=TOL) and np.all(np.isinf(s.upper))
