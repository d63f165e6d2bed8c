"""Competitive equilibria by exact cells of V (``lp.equilibria``, ``enumeration="cells"``) against
the (supply pattern × face) enumeration and an independent oracle.

Oracle (written here with scipy.optimize.linprog on the dense textbook formulation, sharing no
code with the package): for a fixed database ``q`` the equilibrium conditions of GLP's Definition
(a)–(d) are linear in ``(p, μ, y)``: ``p ∈ proj D`` (``p(ω) ≥ v(a,ω) + Σ_{a'} μ(a,a')(π(a,ω) −
π(a',ω))``, ``μ ≥ 0``) with ``p·q ≤ Σ v y`` (weak duality makes it ``=``: ``p ∈ ∂V(q)`` and ``y``
optimal in ``P_q``), ``y`` feasible (record counts, obedience), and the consumers' conditions
(``p q + Σ_a u y ≥ r̄ q`` where ``q > 0``, ``≤`` where ``q < q̄``; ``p + min_a u ≤ r̄`` where
``q = 0``, the package's convention for types not in the database).
"""

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from dm_opt import InfoDesignMarket
from dm_opt.core.errors import LimitExceeded
from dm_opt.core.result import Termination
from dm_opt.info_design import lp
from dm_opt.info_design.lp import equilibrium as lp_equilibrium
from tests.support.glp_dense import dense_rows, oracle_V

TOL = 1e-6


# ----------------------------------------------------------------------------- oracle
def _dense(market):
    return dense_rows(market)


def oracle_in_D(market, lam, tol):
    """Is ``lam`` (up to ``tol``) in the λ-projection of the dual polyhedron of ``P_q``?"""
    m, n = market.m, market.n
    pairs = [(a, b) for a in range(m) for b in range(m) if a != b]
    if not pairs:
        return bool(np.all(lam >= market.v[0] - tol))
    A = np.zeros((m * n, len(pairs)))
    for j, (a, b) in enumerate(pairs):
        A[a * n:(a + 1) * n, j] = market.pi[a] - market.pi[b]
    rhs = np.concatenate([lam - market.v[a] for a in range(m)]) + tol
    r = linprog(np.zeros(len(pairs)), A_ub=A, b_ub=rhs, bounds=(0, None), method="highs")
    return r.status == 0


def oracle_welfare_at(market, q, eps=1e-9):
    """``(min, max)`` of ``Σ(v+u)y − r̄Σq`` over the equilibria with database ``q`` (None if none)."""
    E, G = _dense(market)
    m, n = market.m, market.n
    nG = len(G)
    N = n + nG + m * n                         # p (free), μ ≥ 0, y ≥ 0
    A_ub, b_ub = [np.c_[-E.T, G.T, np.zeros((m * n, m * n))]], [-market.v.ravel()]
    if nG:
        A_ub.append(np.c_[np.zeros((nG, n + nG)), -G])
        b_ub.append(np.zeros(nG))
    A_ub.append(np.r_[q, np.zeros(nG), -market.v.ravel()][None])
    b_ub.append([eps])
    umin = market.u.min(axis=0)
    for w in range(n):
        row = np.zeros(N)
        row[w] = q[w]
        row[n + nG + np.arange(m) * n + w] = market.u[:, w]
        rhs = market.reservation * q[w]
        if q[w] > 1e-12:
            A_ub.append(-row[None])
            b_ub.append([-rhs + eps])
            if q[w] < market.prior[w] - 1e-12:
                A_ub.append(row[None])
                b_ub.append([rhs + eps])
        else:
            r0 = np.zeros(N)
            r0[w] = 1.0
            A_ub.append(r0[None])
            b_ub.append([market.reservation - umin[w] + eps])
    A_eq = np.c_[np.zeros((n, n + nG)), E]
    c = np.r_[np.zeros(n + nG), (market.v + market.u).ravel()]
    out = []
    for sign in (1.0, -1.0):
        r = linprog(sign * c, A_ub=np.vstack(A_ub), b_ub=np.concatenate([np.ravel(b) for b in b_ub]),
                    A_eq=A_eq, b_eq=q, bounds=[(None, None)] * n + [(0, None)] * (nG + m * n), method="highs")
        if r.status != 0:
            return None
        out.append(sign * r.fun - market.reservation * q.sum())
    return out[0], out[1]


def assert_equilibrium(market, p, W0):
    """Every condition of GLP's Definition at the witness of family ``p``, from fresh LPs."""
    q, price = np.asarray(p.q), np.asarray(p.price)
    assert np.all(q >= -1e-12) and np.all(q <= market.prior + 1e-12)
    np.testing.assert_allclose(p.zeta * market.prior, q, atol=1e-12)             # (d) markets clear
    V = oracle_V(market, q)[0]
    scale = max(1.0, np.abs(market.v).max(), np.abs(market.u).max(), abs(market.reservation))
    tol = TOL * scale
    assert abs(price @ q - V) <= tol and oracle_in_D(market, price, tol)           # (a) p ∈ ∂V(q)
    y = np.asarray(p.x) * q[None]
    E, G = _dense(market)
    np.testing.assert_allclose(E @ y.ravel(), q, atol=1e-9)
    assert np.all(G @ y.ravel() >= -1e-9) if len(G) else True
    assert float(np.sum(market.v * y)) >= V - tol                                  # (b) x solves P_q
    U = np.sum(market.u * np.asarray(p.x), axis=0)
    gain = price + np.where(q > 1e-12, U, market.u.min(axis=0))
    assert np.all(gain[q > 1e-12] >= market.reservation - tol)                     # (c) consumers
    assert np.all(gain[q < market.prior - 1e-12] <= market.reservation + tol)
    pattern = tuple(int(lp.ZERO if v <= 1e-12 else lp.FULL if v >= b - 1e-12 else lp.MID)
                    for v, b in zip(q, market.prior))
    assert pattern == p.pattern
    assert p.welfare <= W0 + tol
    assert p.welfare_min - tol <= p.welfare <= p.welfare_max + tol


# ----------------------------------------------------------------------------- instances
def merchant(rng, n, regime):
    """Slides' payoffs (closed-form V).  ``mixed``: γ_u > γ_π (n pieces, prices mix them);
    ``disclosure``: γ_u < γ_π (one piece); ``cheap``: low r̄ (much trade, many partial sellers)."""
    types = np.sort(rng.choice(np.arange(1, 3 * n + 1), n, replace=False)).astype(float)
    prior = rng.dirichlet(np.ones(n))
    if regime == "disclosure":
        gp = rng.uniform(0.3, 1.5)
        return InfoDesignMarket(types, prior, rng.uniform(0, 0.6 * types.mean()), rng.uniform(0, 0.9 * gp), gp)
    rbar = rng.uniform(0, 0.6 * types.mean()) if regime == "mixed" else rng.uniform(0, 0.25 * types.mean())
    return InfoDesignMarket(types, prior, rbar, rng.uniform(0.5, 2.0), rng.uniform(0, 0.4))


def general(rng, n):
    m = n
    return InfoDesignMarket.from_payoffs(rng.uniform(0, 2, (m, n)), rng.uniform(0, 2, (m, n)),
                                         rng.uniform(0, 2, (m, n)), rng.dirichlet(np.ones(n)), rng.uniform(0, 1.5))


def by_pattern(E):
    """``{pattern: (inf, sup)}`` of the welfare over the families of each supply pattern."""
    out = {}
    for p in E.pieces:
        lo, hi = out.get(p.pattern, (np.inf, -np.inf))
        out[p.pattern] = (min(lo, p.welfare_min), max(hi, p.welfare_max))
    return out


SLOW = pytest.mark.slow           # the face enumeration takes 3–5 CPU s per |Ω| = 3 instance
SMALL = [(2, "mixed", s) for s in range(3)] + [(2, "cheap", 1), (2, "general", 0)] + \
    [pytest.param(3, "mixed", s, marks=SLOW) for s in range(4)] + \
    [pytest.param(3, "cheap", s, marks=SLOW) for s in range(3)] + \
    [pytest.param(3, "disclosure", 0, marks=SLOW), pytest.param(3, "general", 1, marks=SLOW)]


def _instance(n, regime, seed):
    if regime == "lp":                 # the generator of test_lp.py (bilinear families appear from |Ω| = 5)
        rng = np.random.default_rng(seed)
        gu, gp = rng.uniform(0.5, 2), rng.uniform(0, 0.4)
        prior = rng.dirichlet(np.ones(n))
        types = np.sort(rng.choice(np.arange(1, 3 * n + 1), n, replace=False)).astype(float)
        return InfoDesignMarket(types, prior, rng.uniform(0, 0.6 * types.mean()), gu, gp)
    rng = np.random.default_rng(1900 + 31 * seed + n)
    return general(rng, n) if regime == "general" else merchant(rng, n, regime)


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("n, regime, seed", SMALL)
def test_cells_find_the_same_equilibria_as_the_face_enumeration(n, regime, seed):
    """Same supply patterns and, per pattern, the same welfare range (inf/sup over its
    equilibria) as the (pattern × face) enumeration, wherever that one decided every family."""
    market = _instance(n, regime, seed)
    a = lp.equilibria(market, enumeration="faces")
    b = lp.equilibria(market, enumeration="cells")
    assert b.status is Termination.OPTIMAL and b.complete
    sa, sb = by_pattern(a), by_pattern(b)
    if a.complete:
        assert set(sa) == set(sb)
    assert set(sa) <= set(sb)
    for pat in sa:
        assert sb[pat] == pytest.approx(sa[pat], abs=1e-6)
    for p in b.pieces:
        assert_equilibrium(market, p, b.efficient_welfare)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2))
def test_cells_match_faces_at_four_types(seed):
    market = _instance(4, "cheap" if seed else "mixed", seed)
    a = lp.equilibria(market, enumeration="faces")
    b = lp.equilibria(market)
    assert b.complete and a.complete
    sa, sb = by_pattern(a), by_pattern(b)
    assert set(sa) == set(sb)
    for pat in sa:
        assert sb[pat] == pytest.approx(sa[pat], abs=1e-6)


@pytest.mark.slow
def test_scip_decides_the_same_families():
    """Where SCIP applies (bilinear families of the face enumeration) it agrees with the
    McCormick branch-and-bound of the cell enumeration."""
    pytest.importorskip("pyscipopt", reason="needs SCIP (extra 'scip')")
    for seed in range(3):
        market = _instance(3, "cheap", seed)
        a = lp.equilibria(market, bilinear="scip")
        b = lp.equilibria(market)
        assert set(by_pattern(a)) == set(by_pattern(b))


@pytest.mark.parametrize("n, regime, seed, steps", [(2, "mixed", 0, 15), (2, "cheap", 1, 15),
                                                     pytest.param(3, "cheap", 0, 9, marks=SLOW),
                                                     pytest.param(3, "mixed", 2, 9, marks=SLOW),
                                                     pytest.param(3, "general", 1, 9, marks=SLOW)])
def test_no_equilibrium_is_missed_on_a_grid(n, regime, seed, steps):
    """Every grid database that supports an equilibrium (oracle LP at fixed q) has the supply
    pattern of a reported family, and the welfare of its equilibria lies in that pattern's range."""
    market = _instance(n, regime, seed)
    E = lp.equilibria(market)
    assert E.complete
    rng_by = by_pattern(E)
    axes = [np.linspace(0, market.prior[w], steps) for w in range(n)]
    hits = 0
    for q in itertools.product(*axes):
        q = np.array(q)
        w = oracle_welfare_at(market, q)
        if w is None:
            continue
        hits += 1
        pat = tuple(int(lp.ZERO if v <= 1e-12 else (lp.FULL if v >= b - 1e-12 else lp.MID))
                    for v, b in zip(q, market.prior))
        assert pat in rng_by, (q, pat, rng_by)
        lo, hi = rng_by[pat]
        assert lo - 1e-6 <= w[1] and w[0] <= hi + 1e-6
    assert hits >= 1


LARGE = [(5, "mixed", 0), (5, "cheap", 1), (6, "lp", 0), (6, "cheap", 2), (7, "lp", 1), (8, "lp", 2),
         (8, "cheap", 0), (8, "disclosure", 0)]


@pytest.mark.slow
@pytest.mark.parametrize("n, regime, seed", LARGE)
def test_every_equilibrium_reported_at_five_to_eight_types_passes_the_oracle(n, regime, seed):
    market = _instance(n, regime, seed)
    E = lp.equilibria(market)
    assert E.status is Termination.OPTIMAL and E.complete and len(E.pieces) >= 1
    W0 = lp.constrained_efficiency(market).welfare
    assert E.efficient_welfare == pytest.approx(W0, abs=1e-7)
    for p in E.pieces:
        assert_equilibrium(market, p, W0)


@pytest.mark.slow
def test_five_types_with_a_bilinear_family():
    """A family whose price mixes two pieces of V while two partial sellers' quantities move (the
    products p(ω)q(ω) are bilinear): found by the branch-and-bound, its witness passes the oracle,
    and its welfare range brackets the best welfare found by fixing the price weights on a grid
    (each such restriction is an LP, solved here independently)."""
    market = _instance(5, "lp", 0)
    E = lp.equilibria(market)
    assert E.complete
    bil = [p for p in E.pieces if p.kind == "bilinear"]
    assert bil
    for p in E.pieces:
        assert_equilibrium(market, p, E.efficient_welfare)
    L = np.asarray(E.gradients)
    for p in bil:
        if len(p.active) != 2:
            continue
        def welfare(t, S=p.active, pat=p.pattern):
            return _fixed_price_welfare(market, L, S, pat, t * L[S[0]] + (1 - t) * L[S[1]])

        coarse = np.linspace(0, 1, 2001)      # the family is thin in θ here (width ≈ 3e-3)
        wc = np.array([welfare(t) for t in coarse])
        ok = np.flatnonzero(np.isfinite(wc))
        assert len(ok)
        fine = np.linspace(coarse[max(ok[0] - 1, 0)], coarse[min(ok[-1] + 1, 2000)], 401)
        best = max(wc.max(), max(welfare(t) for t in fine))
        assert best <= p.welfare_max + 1e-6
        assert best >= p.welfare_max - 1e-3 * max(1.0, abs(p.welfare_max))


def _fixed_price_welfare(market, L, S, pattern, price):
    """``max Σ(v+u)y − r̄Σq`` over the closure of family (S, pattern) with the price fixed: an LP in
    ``(q, y)``; ``-inf`` when empty."""
    m, n = market.m, market.n
    E, G = _dense(market)
    N = n + m * n
    A_eq, b_eq, A_ub, b_ub = [np.c_[-np.eye(n), E]], [np.zeros(n)], [], []
    if len(G):
        A_ub.append(np.c_[np.zeros((len(G), n)), -G])
        b_ub.append(np.zeros(len(G)))
    for k in S:                                   # every λ^k (k ∈ S) optimal, y optimal
        A_ub.append(np.r_[L[k], -market.v.ravel()][None])
        b_ub.append([0.0])
    for k in S[1:]:
        A_eq.append(np.r_[L[k] - L[S[0]], np.zeros(m * n)][None])
        b_eq.append([0.0])
    bounds = []
    for w in range(n):
        bounds.append((0.0, 0.0) if pattern[w] == lp.ZERO else (market.prior[w], market.prior[w])
                      if pattern[w] == lp.FULL else (0.0, market.prior[w]))
        if pattern[w] == lp.ZERO:
            if price[w] + market.u[:, w].min() > market.reservation + 1e-9:
                return -np.inf
            continue
        row = np.zeros(N)
        row[w] = price[w] - market.reservation
        row[n + np.arange(m) * n + w] = market.u[:, w]
        if pattern[w] == lp.MID:
            A_eq.append(row[None])
            b_eq.append([0.0])
        else:
            A_ub.append(-row[None])
            b_ub.append([0.0])
    c = -np.r_[-market.reservation * np.ones(n), (market.v + market.u).ravel()]
    r = linprog(c, A_ub=np.vstack(A_ub), b_ub=np.concatenate([np.ravel(b) for b in b_ub]), A_eq=np.vstack(A_eq),
                b_eq=np.concatenate([np.ravel(b) for b in b_eq]), bounds=bounds + [(0, None)] * (m * n),
                method="highs")
    return -r.fun if r.status == 0 else -np.inf


@pytest.mark.parametrize("general_payoffs", [False, True])
def test_cells_refuse_cleanly_beyond_the_documented_limits(general_payoffs, monkeypatch):
    """|Ω| > EQUILIBRIA_MAX_N (and, without the closed form of V, |Ω| > PIECES_MAX_N) and the face
    enumeration beyond EQUILIBRIA_FACES_MAX_N: LimitExceeded naming the limit, before any LP."""
    def no_lp(*a, **k):
        raise AssertionError("an LP was solved before the refusal")

    monkeypatch.setattr(lp_equilibrium, "_cell_lp", no_lp)
    monkeypatch.setattr(lp_equilibrium, "value_pieces", no_lp)
    rng = np.random.default_rng(19)
    if general_payoffs:
        n = lp.PIECES_MAX_N + 1
        market = general(rng, n)
        with pytest.raises(LimitExceeded, match=rf"without the closed form of V is for \|Ω\| ≤ {lp.PIECES_MAX_N} "
                                                rf"\(got {n}\)"):
            lp.equilibria(market)
    n = lp.EQUILIBRIA_MAX_N + 1
    market = general(rng, n) if general_payoffs else merchant(rng, n, "mixed")
    with pytest.raises(LimitExceeded, match=rf"\|Ω\| ≤ {lp.EQUILIBRIA_MAX_N} \(got {n}\).*supply patterns"):
        lp.equilibria(market)
    n = lp_equilibrium.EQUILIBRIA_FACES_MAX_N + 1
    market = general(rng, n) if general_payoffs else merchant(rng, n, "mixed")
    with pytest.raises(LimitExceeded, match=rf"\|Ω\| ≤ {n - 1} \(got {n}\) with enumeration='faces'"):
        lp.equilibria(market, enumeration="faces")


def test_time_limit_inside_the_cell_search_keeps_what_was_found():
    market = _instance(3, "cheap", 0)
    pieces = lp.value_pieces(market)
    eff = lp.constrained_efficiency(market, pieces=pieces)
    full = lp.equilibria(market, pieces=pieces, efficiency=eff)
    part = lp.equilibria(market, pieces=pieces, efficiency=eff, time_limit=1e-9)
    assert part.status is Termination.TIME_LIMIT and not part.complete and "cells of V" in part.message
    for p in part.pieces:
        assert any(p.pattern == f.pattern and np.allclose(p.q, f.q, atol=1e-7) for f in full.pieces)
    assert full.complete and full.status is Termination.OPTIMAL


def test_face_enumeration_ctrl_c_returns_the_families_found_so_far(monkeypatch):
    """The face enumeration (kept as ``enumeration="faces"``) still stops cleanly on Ctrl-C."""
    m = InfoDesignMarket([1.0, 2.0], [0.4, 0.6], 0.5, 0.8, 0.0)
    full = lp.equilibria(m, enumeration="faces")
    calls = {"n": 0}
    real = lp_equilibrium._equilibrium_lp

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(lp_equilibrium, "_equilibrium_lp", flaky)
    part = lp.equilibria(m, enumeration="faces")
    assert part.status is Termination.INTERRUPTED and not part.complete and "supply patterns" in part.message
    for p in part.pieces:
        assert any(p.pattern == f.pattern and np.allclose(p.q, f.q, atol=1e-7) for f in full.pieces)


def test_bad_enumeration_names_the_field():
    from dm_opt.core.errors import ProblemError

    with pytest.raises(ProblemError, match="enumeration="):
        lp.equilibria(InfoDesignMarket([1.0, 2.0], [0.5, 0.5], 0.5, 1.0, 0.0), enumeration="grid")
