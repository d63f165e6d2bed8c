"""GLP LPs (docs/spec.md §2) against an independent oracle written here with
scipy.optimize.linprog on the dense textbook formulation of P_q, and the
slides' claims.

Oracle formulation (slides, "(P_q)"): variables y(a,ω) = x(a|ω) q(ω) ≥ 0,
Σ_a y(a,ω) = q(ω), Σ_ω (π(a,ω) − π(a',ω)) y(a,ω) ≥ 0 for a ≠ a', maximise Σ v y.
The package builds the slides' merchant with suffix sums and uses cvxpy; the
oracle shares no code with it.
"""

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from dm_opt import InfoDesignMarket
from dm_opt.info_design import lp
from tests.support.glp_dense import dense_rows, oracle_V

TOL = 1e-7


# ----------------------------------------------------------------------------- oracle
def _dense(market):
    return dense_rows(market)


def oracle_W(market, q):
    """W(q) = V(q) + max Σ u y over the optimal face (face: Σ v y ≥ V(q) − 1e-9)."""
    V, _ = oracle_V(market, q)
    E, G = _dense(market)
    A_ub = np.vstack([-G, -market.v.ravel()[None]]) if len(G) else -market.v.ravel()[None]
    b_ub = np.r_[np.zeros(len(G)), -(V - 1e-9)]
    r = linprog(-market.u.ravel(), A_ub=A_ub, b_ub=b_ub, A_eq=E, b_eq=q, bounds=(0, None), method="highs")
    assert r.status == 0
    return V - r.fun


def oracle_in_D(market, lam, tol=1e-7):
    """λ ∈ proj_λ D: ∃ μ ≥ 0 with G^T μ ≤ E^T λ − v."""
    E, G = _dense(market)
    rhs = E.T @ lam - market.v.ravel() + tol
    if len(G) == 0:
        return bool(np.all(rhs >= 0))
    r = linprog(np.zeros(len(G)), A_ub=G.T, b_ub=rhs, bounds=(0, None), method="highs")
    return r.status == 0


def random_market(rng, n, *, gu=None, gp=None, general=False):
    prior = rng.dirichlet(np.ones(n))
    if general:
        m = n
        u = rng.uniform(0, 2, (m, n))
        pi = rng.uniform(0, 2, (m, n))
        v = rng.uniform(0, 2, (m, n))
        return InfoDesignMarket.from_payoffs(u, pi, v, prior, rng.uniform(0, 1))
    types = np.sort(rng.choice(np.arange(1, 3 * n + 1), n, replace=False)).astype(float)
    gu = rng.uniform(0, 1.5) if gu is None else gu
    gp = rng.uniform(0, 1.5) if gp is None else gp
    return InfoDesignMarket(types, prior, rng.uniform(0, 0.6 * types.mean()), gu, gp)


def rand_q(rng, market):
    q = market.prior * rng.uniform(0, 1, market.n)
    q[rng.random(market.n) < 0.2] = 0.0
    return q


# ----------------------------------------------------------------------------- P_q
@pytest.mark.parametrize("seed", range(4))
def test_platform_value_matches_oracle_and_is_homogeneous_concave(seed):
    rng = np.random.default_rng(seed)
    market = random_market(rng, 4, general=seed % 2 == 1)
    P = lp.PlatformLP(market)
    for _ in range(6):
        q1, q2 = rand_q(rng, market), rand_q(rng, market)
        s1, s2 = P.solve(q1), P.solve(q2)
        assert abs(s1.value - oracle_V(market, q1)[0]) <= TOL
        # returned y is feasible and attains V
        np.testing.assert_allclose(s1.y.sum(axis=0), q1, atol=1e-8)
        assert abs(float(np.sum(market.v * s1.y)) - s1.value) <= TOL
        t = rng.uniform(0.1, 3)
        assert abs(P.solve(t * q1).value - t * s1.value) <= TOL * max(1, t)          # degree-one homogeneity
        mid = P.solve(0.5 * (q1 + q2)).value
        assert mid >= 0.5 * (s1.value + s2.value) - TOL                             # concavity


@pytest.mark.parametrize("seed", range(3))
def test_highspy_warm_start_model_agrees(seed):
    """PlatformHighs (live highspy model, warm starts) gives V(q), a valid supergradient and
    nonnegative reduced costs with its obedience duals μ ≥ 0 (dual feasibility of (λ, μ))."""
    rng = np.random.default_rng(50 + seed)
    market = random_market(rng, 4, general=seed == 2)
    A, B = lp.PlatformLP(market), lp.PlatformHighs(market)
    face = lp.FaceLP(market, A)
    for _ in range(6):
        q = rand_q(rng, market)
        b = B.solve(q)
        assert abs(b.value - A.solve(q).value) <= TOL
        assert abs(b.supergradient @ q - b.value) <= 1e-7
        assert oracle_in_D(market, b.supergradient, 1e-7)
        assert face.reduced_costs(b).min() >= -1e-7
        assert np.all(b.obedience_duals >= 0)


def test_compact_and_dense_formulations_agree():
    rng = np.random.default_rng(7)
    market = random_market(rng, 6)
    A, B = lp.PlatformLP(market, compact=True), lp.PlatformLP(market, compact=False)
    for _ in range(5):
        q = rand_q(rng, market)
        assert abs(A.solve(q).value - B.solve(q).value) <= TOL


@pytest.mark.parametrize("seed", range(4))
def test_supergradient_inequality(seed):
    """V(q') ≤ V(q) + ψ·(q' − q) for the LP dual and every reported extreme supergradient;
    every reported point lies in proj D with ψ·q = V(q); the interval bounds bracket them."""
    rng = np.random.default_rng(100 + seed)
    market = random_market(rng, 3, general=seed == 3)
    P = lp.PlatformLP(market)
    for _ in range(4):
        q = rand_q(rng, market)
        if rng.random() < 0.5:                      # a kink: two equal masses
            q[1] = q[0] = min(q[0], q[1]) if min(q[0], q[1]) > 0 else q[0]
        s = P.solve(q, intervals=True)
        pts = np.vstack([s.supergradient[None], s.supergradients])
        for psi in pts:
            assert abs(psi @ q - s.value) <= 1e-6
            assert oracle_in_D(market, psi, 1e-6)
            assert np.all(psi >= s.lower - 1e-6) and np.all(psi <= s.upper + 1e-6)
            for _ in range(8):
                q2 = rand_q(rng, market) * rng.uniform(0, 2)
                assert oracle_V(market, q2)[0] <= s.value + psi @ (q2 - q) + 1e-6
        # each finite bound is attained by a reported point
        for w in range(market.n):
            assert np.min(np.abs(pts[:, w] - s.lower[w])) <= 1e-6
            if np.isfinite(s.upper[w]):
                assert np.max(pts[:, w]) >= s.upper[w] - 1e-6
        assert np.all(np.isinf(s.upper[q == 0]))


def test_supergradient_interval_of_two_type_kink():
    """Two-type example: V(q) = γ_u min(q1, q2) (derivation in test_two_type_example),
    so at q1 = q2 the superdifferential is the segment {γ_u(t, 1−t)}: λ(ω) ∈ [0, γ_u]."""
    m = InfoDesignMarket([1, 2], [0.4, 0.6], 0.5, 0.8, 0.0)
    s = lp.solve_platform(m, [0.3, 0.3])
    np.testing.assert_allclose(s.lower, [0, 0], atol=1e-7)
    np.testing.assert_allclose(s.upper, [0.8, 0.8], atol=1e-7)
    assert s.unique_supergradient is False
    s = lp.solve_platform(m, [0.2, 0.3])
    np.testing.assert_allclose([s.lower, s.upper], [[0.8, 0], [0.8, 0]], atol=1e-7)


@pytest.mark.parametrize("method", ["lp", "auto"])
@pytest.mark.parametrize("seed", range(3))
def test_value_pieces_represent_V(seed, method):
    rng = np.random.default_rng(200 + seed)
    market = random_market(rng, 3 if seed < 2 else 4, general=seed == 1)
    pcs = lp.value_pieces(market, method=method)
    if method == "lp":
        assert pcs.lp_solves > 0
    for _ in range(15):
        q = rand_q(rng, market)
        assert abs(pcs.value(q) - oracle_V(market, q)[0]) <= 1e-6
    for lam in pcs.gradients:                      # every piece is a genuine dual vertex
        assert oracle_in_D(market, lam, 1e-6)


@pytest.mark.parametrize("method", ["lp", "auto"])
@pytest.mark.parametrize("seed", range(3))
def test_welfare_W_matches_oracle(seed, method):
    rng = np.random.default_rng(300 + seed)
    market = random_market(rng, 3, general=seed == 2)
    face = lp.FaceLP(market) if method == "lp" else None
    for _ in range(5):
        q = rand_q(rng, market)
        w = lp.welfare(market, q, face=face, method=method)
        assert abs(w.value - oracle_W(market, q)) <= 1e-6


# ----------------------------------------------------------------------------- efficiency
def _grid_best(market, steps):
    axes = [np.linspace(0, market.prior[w], steps) for w in range(market.n)]
    best = -np.inf
    for q in itertools.product(*axes):
        q = np.array(q)
        best = max(best, oracle_W(market, q) - market.reservation * q.sum())
    return best


@pytest.mark.parametrize("seed, n, steps", [
    (0, 2, 25), (2, 2, 15), (3, 3, 6),
    pytest.param(1, 2, 81, marks=pytest.mark.slow), pytest.param(4, 3, 15, marks=pytest.mark.slow),
    pytest.param(5, 3, 15, marks=pytest.mark.slow)])
@pytest.mark.parametrize("method", ["auto", "pieces-lp"])
def test_constrained_efficiency_vs_grid_search(seed, n, steps, method):
    """W° ≥ every grid point's W(q) − r̄Σq (oracle), and the returned (q°, x°) attains W°
    in the oracle with x° optimal in P_q°.  ``auto`` is the closed form (bbm) on the
    slides' payoffs; ``pieces-lp`` the piece method with pieces found by LP duals."""
    rng = np.random.default_rng(400 + seed)
    market = random_market(rng, n, general=seed == 2)
    if method == "auto":
        r = lp.constrained_efficiency(market)
        assert r.method == ("pieces" if market.is_general else "bbm")
    else:
        r = lp.constrained_efficiency(market, method="pieces", pieces=lp.value_pieces(market, method="lp"))
    assert r.status.value == "optimal"
    grid = _grid_best(market, steps)
    assert grid <= r.welfare + 1e-6
    y = r.x * r.q[None, :]
    V, _ = oracle_V(market, r.q)
    assert abs(float(np.sum(market.v * y)) - V) <= 1e-6        # x° solves P_q°
    assert abs(V + float(np.sum(market.u * y)) - market.reservation * r.q.sum() - r.welfare) <= 1e-6
    assert np.all(r.q <= market.prior + 1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_milp_matches_piece_enumeration(seed):
    """The KKT MILP (bounded duals) against the exact piece method; the MILP's allocation is
    re-evaluated exactly, so equal welfare means it found a constrained-efficient allocation."""
    rng = np.random.default_rng(1000 + seed)
    market = random_market(rng, 2 + seed % 3, gu=rng.uniform(0.5, 2), gp=rng.uniform(0, 0.4),
                           general=seed == 5)
    a = lp.constrained_efficiency(market, method="pieces", pieces=lp.value_pieces(market, method="lp"))
    b = lp.constrained_efficiency(market, method="milp")
    assert b.status.value == "optimal"
    assert abs(a.welfare - b.welfare) <= 1e-7
    assert b.bound >= b.welfare - 1e-9


def test_milp_time_limit_returns_incumbent_and_bound():
    """At a time limit the MILP returns a bilevel-feasible allocation (re-evaluated exactly)
    and HiGHS' proven bound with the gap; with no incumbent it falls back to no trade."""
    from dm_opt import InfoDesignMarket as M

    rng = np.random.default_rng(11)
    n = 14
    market = M(np.arange(1.0, n + 1), rng.dirichlet(np.ones(n)), 1.4, 1.0, 0.3)
    r = lp.constrained_efficiency_milp(market, time_limit=0.5)
    assert r.status.value in ("time_limit", "optimal")
    assert r.bound >= r.welfare - 1e-9 and r.welfare >= -1e-9
    if r.status.value == "time_limit":
        assert r.gap > 0
    V, _ = oracle_V(market, r.q)
    y = r.x * r.q[None]
    assert abs(float(np.sum(market.v * y)) - V) <= 1e-6


def _face_ranges(market, r):
    """Coordinate ranges of (q, y) over every planner piece LP's optimal face (oracle LPs)."""
    E, G = _dense(market)
    m, n = market.m, market.n
    lo, hi = np.full(n + m * n, np.inf), np.full(n + m * n, -np.inf)
    for lam in r.pieces:
        # variables z = (q, y): Ey − q = 0, Gy ≥ 0, v·y ≥ λ·q, q ≤ q̄, welfare ≥ W° − 1e-9
        A_eq = np.c_[-np.eye(n), E]
        A_ub = [np.c_[np.zeros((len(G), n)), -G], np.r_[lam, -market.v.ravel()][None],
                np.r_[market.reservation * np.ones(n), -(market.v + market.u).ravel()][None]]
        b_ub = np.r_[np.zeros(len(G)), 0.0, -(r.welfare - 1e-9)]
        bounds = [(0, market.prior[w]) for w in range(n)] + [(0, None)] * (m * n)
        for j in range(n + m * n):
            for s in (1, -1):
                c = np.zeros(n + m * n)
                c[j] = s
                res = linprog(c, A_ub=np.vstack(A_ub), b_ub=b_ub, A_eq=A_eq, b_eq=np.zeros(n),
                              bounds=bounds, method="highs")
                if res.status != 0:
                    break
                if s > 0:
                    lo[j] = min(lo[j], res.fun)
                else:
                    hi[j] = max(hi[j], -res.fun)
    return lo, hi


@pytest.mark.parametrize("gamma_u, rbar, q1", [(1.0, 0.5, 0.4), (0.9, 0.93, 0.3), (2.0, 1.2, 0.45)])
def test_two_type_example(gamma_u, rbar, q1):
    """GLP slides' example: γ_π = 0 < γ_u, Ω = {1,2}, q̄(1) < q̄(2), r̄ < (1+γ_u)/2.

    Derivation (the slides state the result): with A = Ω, u(1,2) = 1 and u = 0
    otherwise, π(1,·) = 1, π(2,1) = 0, π(2,2) = 2.  Obedience of a = 1 is
    y(1,1) − y(1,2) ≥ 0, of a = 2 is y(2,2) − y(2,1) ≥ 0; the platform maximises
    γ_u y(1,2), so V(q) = γ_u min(q1, q2) and every optimum has y(1,2) = min(q1,q2).
    W(q) − r̄Σq = (1+γ_u) min(q1,q2) − r̄(q1+q2), maximised over q ≤ q̄ at
    q1 = q2 = q̄(1) iff r̄ < (1+γ_u)/2, value ((1+γ_u) − 2r̄) q̄(1); then y(1,1) ≥
    y(1,2) = q̄(1) = q1 forces x(1|ω) = 1.  Uniqueness is checked by the coordinate
    ranges of (q, y) over the optimal faces of every planner piece LP.
    """
    market = InfoDesignMarket([1, 2], [q1, 1 - q1], rbar, gamma_u, 0.0)
    assert market.prior[0] < market.prior[1] and rbar < (1 + gamma_u) / 2
    r = lp.constrained_efficiency(market)
    assert abs(r.welfare - ((1 + gamma_u) - 2 * rbar) * q1) <= 1e-9
    np.testing.assert_allclose(r.q, [q1, q1], atol=1e-9)
    np.testing.assert_allclose(r.x[0], [1.0, 1.0], atol=1e-9)
    lo, hi = _face_ranges(market, r)
    np.testing.assert_allclose(lo, hi, atol=1e-7)               # unique allocation
    np.testing.assert_allclose(lo[:2], [q1, q1], atol=1e-7)
    # the slides' Claim: γ_u < r̄ ⇒ every equilibrium is no-trade (hence inefficient, W° > 0)
    E = lp.equilibria(market)
    assert E.complete
    for p in E.pieces:                           # slides' characterisation agrees here
        assert p.kkt == p.efficient
    if gamma_u < rbar:
        assert E.all_no_trade and len(E.pieces) >= 1 and r.welfare > 0
        assert not any(p.efficient for p in E.pieces)
    else:
        assert any(not p.no_trade for p in E.pieces)


def test_two_type_efficient_equilibrium_at_the_kink():
    """With 1 ≤ r̄ < (1+γ_u)/2 the efficient allocation is an equilibrium whose price is
    interior to the segment ∂V = {γ_u(θ, 1−θ)}: type 1 sells out (θγ_u ≥ r̄), type 2 is
    indifferent ((1−θ)γ_u + 1 = r̄), so θ = (1 + γ_u − r̄)/γ_u (derived here)."""
    gu, rbar = 2.0, 1.2
    market = InfoDesignMarket([1, 2], [0.4, 0.6], rbar, gu, 0.0)
    E = lp.equilibria(market)
    eff = [p for p in E.pieces if p.efficient]
    assert len(eff) == 1
    theta = (1 + gu - rbar) / gu
    np.testing.assert_allclose(eff[0].price, [theta * gu, (1 - theta) * gu], atol=1e-8)
    np.testing.assert_allclose(eff[0].q, [0.4, 0.4], atol=1e-9)
    assert eff[0].pattern == (lp.FULL, lp.MID)


def test_scip_path_reproduces_the_linear_families():
    """The SCIP (bilinear) decision of a family, forced on the families that LPs describe
    exactly, finds the same equilibria (two-type example with the kink equilibrium)."""
    pytest.importorskip("pyscipopt", reason="needs SCIP (extra 'scip')")
    market = InfoDesignMarket([1, 2], [0.4, 0.6], 1.2, 2.0, 0.0)
    a = lp.equilibria(market)
    b = lp.equilibria(market, bilinear="scip-all")
    key = lambda E: sorted((p.pattern, tuple(np.round(p.q, 6)), tuple(np.round(p.price, 6)), p.efficient)
                           for p in E.pieces)
    assert key(a) == key(b)
    assert any(p.kind == "bilinear" for p in b.pieces)


@pytest.mark.parametrize("seed", range(4))
def test_merchant_weighted_full_disclosure_and_efficient_equilibria(seed):
    """Slides' Proposition: γ_u < γ_π ⇒ full disclosure (x(ω|ω) = 1 with A = Ω) is optimal at
    every q, and every equilibrium is constrained efficient."""
    rng = np.random.default_rng(500 + seed)
    n = 2 + seed % 2
    gp = rng.uniform(0.2, 1.5)
    market = random_market(rng, n, gu=rng.uniform(0, gp * 0.95), gp=gp)
    P = lp.PlatformLP(market)
    for _ in range(5):
        q = market.prior * rng.uniform(0.05, 1, n)
        s = P.solve(q)
        np.testing.assert_allclose(np.diag(s.x), 1.0, atol=1e-7)
        assert abs(s.value - market.gamma_pi * float(market.types @ q)) <= 1e-7
    E = lp.equilibria(market)
    assert E.complete and len(E.pieces) >= 1
    assert E.all_efficient and all(p.kkt for p in E.pieces)


@pytest.mark.parametrize("seed", range(3))
def test_equilibrium_witnesses_satisfy_the_definition(seed):
    """Each reported equilibrium is checked with the oracle: p ∈ ∂V(q) (p·q = V(q) and
    p ∈ proj D), x optimal in P_q, consumers optimal, markets clear."""
    rng = np.random.default_rng(600 + seed)
    market = random_market(rng, 2 + (seed == 2), gu=rng.uniform(0.5, 2), gp=rng.uniform(0, 0.4))
    E = lp.equilibria(market)
    assert len(E.pieces) >= 1
    umin = market.u.min(axis=0)
    for p in E.pieces:
        V, _ = oracle_V(market, p.q)
        assert abs(p.price @ p.q - V) <= 1e-6 and oracle_in_D(market, p.price, 1e-6)
        y = p.x * p.q[None]
        assert abs(float(np.sum(market.v * y)) - V) <= 1e-6
        U = market.consumer_utility(p.x)
        G = p.price + np.where(p.q > 0, U, umin)
        sells = p.q > 1e-12
        short = p.q < market.prior - 1e-12
        assert np.all(G[sells] >= market.reservation - 1e-6)
        assert np.all(G[short] <= market.reservation + 1e-6)
        np.testing.assert_allclose(p.zeta * market.prior, p.q, atol=1e-12)
        assert p.welfare <= E.efficient_welfare + 1e-6
        assert p.welfare_min - 1e-9 <= p.welfare <= p.welfare_max + 1e-9
        assert p.kkt or not p.efficient          # the supergradient conditions are necessary


def _equilibrium_at(market, q):
    """Oracle: is there an equilibrium with database q? For fixed q the conditions are linear
    in (p, μ, y): p ∈ proj D with p·q = Σ v y, y feasible, consumer conditions."""
    E, G = _dense(market)
    m, n = market.m, market.n
    nG = len(G)
    # variables: p (n, free), mu (nG ≥ 0), y (mn ≥ 0)
    N = n + nG + m * n
    A_ub, b_ub, A_eq, b_eq = [], [], [], []
    # dual feasibility: −E^T p + G^T μ ≤ −v
    A_ub.append(np.c_[-E.T, G.T, np.zeros((m * n, m * n))])
    b_ub.append(-market.v.ravel())
    # obedience
    A_ub.append(np.c_[np.zeros((nG, n + nG)), -G])
    b_ub.append(np.zeros(nG))
    A_eq.append(np.c_[np.zeros((n, n + nG)), E])
    b_eq.append(q)
    # p·q − v·y ≤ 0 (with weak duality: equality)
    A_ub.append(np.r_[q, np.zeros(nG), -market.v.ravel()][None])
    b_ub.append([1e-9])
    umin = market.u.min(axis=0)
    for w in range(n):
        row = np.zeros(N)
        row[w] = q[w]
        row[n + nG + np.arange(m) * n + w] = market.u[:, w]
        rhs = market.reservation * q[w]
        if q[w] > 1e-12:            # sells: p q + Σ u y ≥ r̄ q
            A_ub.append(-row[None])
            b_ub.append([-rhs + 1e-9])
        else:                       # zero mass: p + min u ≤ r̄
            r0 = np.zeros(N)
            r0[w] = 1
            A_ub.append(r0[None])
            b_ub.append([market.reservation - umin[w] + 1e-9])
        if q[w] < market.prior[w] - 1e-12 and q[w] > 1e-12:
            A_ub.append(row[None])
            b_ub.append([rhs + 1e-9])
    bounds = [(None, None)] * n + [(0, None)] * (nG + m * n)
    r = linprog(np.zeros(N), A_ub=np.vstack(A_ub), b_ub=np.concatenate([np.ravel(b) for b in b_ub]),
                A_eq=np.vstack(A_eq), b_eq=np.concatenate(b_eq), bounds=bounds, method="highs")
    return r.status == 0


@pytest.mark.parametrize("seed, n, steps", [(700, 2, 21), (701, 2, 21), (7, 3, 7)])
def test_equilibrium_enumeration_is_complete_on_a_grid(seed, n, steps):
    """Every grid database that supports an equilibrium (oracle LP: for fixed q the
    conditions are linear in (p, μ, y)) has the supply pattern of a reported family, and
    every reported witness passes the oracle.  |Ω| = 3 exercises the bilinear families
    decided by SCIP."""
    if n >= 3:
        pytest.importorskip("pyscipopt", reason="bilinear families need SCIP (extra 'scip')")
    rng = np.random.default_rng(seed)
    market = random_market(rng, n, gu=rng.uniform(0.5, 2), gp=rng.uniform(0, 0.4) if n == 3 else 0.0)
    E = lp.equilibria(market)
    assert E.complete

    patterns = {p.pattern for p in E.pieces}
    axes = [np.linspace(0, market.prior[w], steps) for w in range(n)]
    for q in itertools.product(*axes):
        q = np.array(q)
        if _equilibrium_at(market, q):
            pat = tuple(int(lp.ZERO if v <= 1e-12 else (lp.FULL if v >= b - 1e-12 else lp.MID))
                        for v, b in zip(q, market.prior))
            assert pat in patterns, (q, pat, patterns)
    for p in E.pieces:
        assert _equilibrium_at(market, p.q)


# ----------------------------------------------------------------------------- remedies
@pytest.mark.parametrize("seed", range(4))
def test_union_and_taxes_reach_constrained_efficiency(seed):
    rng = np.random.default_rng(800 + seed)
    market = random_market(rng, 2 + seed % 2, general=seed == 3)
    eff = lp.constrained_efficiency(market)
    un = lp.data_union(market)
    assert abs(un.welfare - eff.welfare) <= 1e-6
    # the union's payments satisfy the slides' constraints
    assert abs(float(un.prices @ market.prior) - oracle_V(market, un.q)[0]) <= 1e-6
    U = market.consumer_utility(un.x)
    part = un.prices + (un.q / market.prior) * U + (1 - un.q / market.prior) * market.reservation
    assert np.all(part >= market.reservation - 1e-6)
    tx = lp.data_taxes(market, efficiency=eff)
    assert tx.is_equilibrium and tx.no_deficit
    assert abs(tx.welfare - eff.welfare) <= 1e-6
    np.testing.assert_allclose(tx.taxes, tx.prices + market.consumer_utility(tx.x) - market.reservation)


@pytest.mark.parametrize("seed", range(3))
def test_complete_markets_unconstrained_efficient(seed):
    rng = np.random.default_rng(900 + seed)
    market = random_market(rng, 3, general=seed == 2)
    c = lp.complete_markets(market)
    assert c.is_equilibrium
    E, G = _dense(market)
    r = linprog(-(market.v + market.u - market.reservation).ravel(), A_ub=np.vstack([-G, E]),
                b_ub=np.r_[np.zeros(len(G)), market.prior], bounds=(0, None), method="highs")
    assert abs(c.welfare + r.fun) <= 1e-6
    assert c.welfare >= lp.constrained_efficiency(market).welfare - 1e-6


@pytest.mark.parametrize("seed", range(2))
def test_welfare_reuses_a_given_platform_solution(seed):
    """W(q) from an already-solved P_q (the CLI's single solve) equals the oracle."""
    rng = np.random.default_rng(350 + seed)
    market = random_market(rng, 3, general=seed == 1)
    P = lp.PlatformLP(market)
    for _ in range(3):
        q = rand_q(rng, market)
        sol = P.solve(q)
        w = lp.welfare(market, q, face=lp.FaceLP(market, P), solution=sol)
        assert abs(w.value - oracle_W(market, q)) <= 1e-6 and w.platform_value == sol.value
