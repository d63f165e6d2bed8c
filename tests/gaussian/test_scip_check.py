"""``method="scip-check"`` (SCIP branch-and-check with bnb's node bounds as local cuts).

Reference: brute force over all ``2^n`` profiles with the naive dense formulas of
``tests/support/naive.py`` (fresh solves from AMMO's definitions), filtered by the side
constraints checked here from their definition (rows within ``1e-9 · Σ|A_q|``, counts, forced
users) — no code shared with the backend.  A run passes when it returns ``optimal`` with a
feasible profile whose naive value is within ``tie_tol`` of the reference optimum (profiles may
differ by ties), or ``infeasible`` when no profile is feasible.  Instances: Wishart, block and
equicorrelated markets with three random rows and, on some, counts, forced users or an empty
system; hard regimes: tiny and huge noise ratios, near-singular ``Σ``, exact ties (twin users).

    pytest -q tests/gaussian/test_scip_check.py              # ~25 instances × 3 problems
    pytest -q -m slow tests/gaussian/test_scip_check.py      # 200 instances × 3 problems, n ≤ 10
"""

import itertools

import numpy as np
import pytest
from scipy.optimize import LinearConstraint as LC

import dm_opt
from dm_opt.core import generators as G
from dm_opt.core.errors import ProblemError
from dm_opt.core.result import Termination
from tests.support import naive
from tests.support.rows import KINDS, extra_constraints, random_row

pytest.importorskip("pyscipopt")

PROBLEMS = ("first_best", "equilibrium", "decorrelated")
#: relative slack of a row in the filter (the documented LINEAR_RTOL of dm_opt.gaussian.constraints)
ROW_RTOL = 1e-9


# ------------------------------------------------------------------ instances
def random_cov(rng, n, regime):
    seed = int(rng.integers(0, 2**31))
    if regime == "singular":
        # rank-2 correlation plus a 1e-7 ridge: Σ nearly singular
        F = rng.normal(size=(n, 2))
        S = F @ F.T + 1e-7 * np.eye(n)
        d = np.sqrt(np.diag(S))
        return S / np.outer(d, d)
    fam = int(rng.integers(0, 3))
    return (G.wishart(n, seed) if fam == 0 else G.block(n, seed, within=0.5, across=0.1) if fam == 1
            else G.equicorrelated(n, seed, rho=0.4))


def random_instance(seed, nmax=8):
    """``(cov, values, noise_var, constraints)``; the regime rotates with the seed."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, nmax + 1))
    regime = ("plain", "plain", "tiny_noise", "huge_noise", "singular", "ties")[seed % 6]
    S = random_cov(rng, n, regime)
    values = rng.uniform(0.0, 2.0, n)
    noise = np.ones(n)
    if regime == "tiny_noise":
        noise = 10.0 ** rng.uniform(-3, -2, n)
    elif regime == "huge_noise":
        noise = 10.0 ** rng.uniform(1.5, 2, n)
    elif regime == "ties":
        S = G.equicorrelated(n, 0, rho=0.5)            # twins: every user alike
        values = np.full(n, float(rng.choice([0.5, 1.0, 1.5])))
    cons: list = [random_row(rng, n, KINDS[int(rng.integers(len(KINDS)))]) for _ in range(3)]
    cons += extra_constraints(rng, n)
    return S, values, noise, cons


def feasible_by_definition(cons, n):
    """The side constraints checked from their definitions (independent of dm_opt)."""
    rows, counts, fin, fout = [], [None, None], set(), set()
    for c in cons:
        if isinstance(c, dict):
            counts[0] = c.get("max_sharers", counts[0])
            fin |= set(c.get("force_in", []))
            fout |= set(c.get("force_out", []))
        else:
            A = np.atleast_2d(np.asarray(c.A, dtype=float))
            lb = np.broadcast_to(np.asarray(c.lb, dtype=float), (A.shape[0],))
            ub = np.broadcast_to(np.asarray(c.ub, dtype=float), (A.shape[0],))
            rows.append((A, lb, ub))

    def ok(a):
        if counts[0] is not None and a.sum() > counts[0]:
            return False
        if any(a[i] != 1 for i in fin) or any(a[i] != 0 for i in fout):
            return False
        for A, lb, ub in rows:
            r = A @ a
            s = ROW_RTOL * np.abs(A).sum(axis=1)
            if np.any(r < lb - s) or np.any(r > ub + s):
                return False
        return True

    return ok


def reference(S, noise, values, problem, ok):
    """Best naive value over feasible profiles (``-inf`` when none)."""
    best = -np.inf
    for bits in itertools.product((0, 1), repeat=S.shape[0]):
        a = np.array(bits)
        if ok(a):
            best = max(best, naive.objective(S, noise, values, np.flatnonzero(a), problem))
    return best


def check(seed, nmax=8, options=None):
    S, values, noise, cons = random_instance(seed, nmax)
    m = dm_opt.GaussianMarket(S, values, noise)
    ok = feasible_by_definition(cons, m.n)
    for problem in PROBLEMS:
        ref = reference(m.cov, m.noise_var, m.values, problem, ok)
        r = dm_opt.solve(m, problem, "scip-check", constraints=cons, options=options or {})
        if ref == -np.inf:
            assert r.status is Termination.INFEASIBLE, (seed, problem, r.status, r.message)
            continue
        assert r.status is Termination.OPTIMAL, (seed, problem, r.status, r.message)
        assert ok(r.profile), (seed, problem, r.profile)
        got = naive.objective(m.cov, m.noise_var, m.values, np.flatnonzero(r.profile), problem)
        assert abs(got - ref) <= r.tie_tol, (seed, problem, got, ref, r.tie_tol)
        assert r.bound >= ref - r.tie_tol, (seed, problem, r.bound, ref)


# ------------------------------------------------------------- exactness
@pytest.mark.parametrize("seed", range(24))
def test_equals_filtered_enumeration(seed):
    check(seed, nmax=7)


@pytest.mark.slow
@pytest.mark.parametrize("block", range(4))
def test_sweep_200_instances(block):
    """200 seeded instances (50 per block), n ≤ 10, every problem, every regime."""
    for seed in range(20_000 + 50 * block, 20_000 + 50 * (block + 1)):
        check(seed, nmax=10)


@pytest.mark.slow
@pytest.mark.parametrize("options", [{"depth_limit": 2}, {"warm_start": "bnb"}, {"tangent": False},
                                     {"branching": "pscost"}, {"branching": None}, {"plugins": "default"}])
def test_options_keep_exactness(options):
    for seed in range(30_000, 30_040):
        check(seed, nmax=9, options=options)


def test_depth_limit_bnb_warm_start_and_scip_branching():
    for seed in (3, 11):
        check(seed, nmax=7, options={"depth_limit": 1})
        check(seed, nmax=7, options={"warm_start": "bnb"})
        check(seed, nmax=7, options={"branching": None})


# ------------------------------------------------------------- node cuts
def test_node_cuts_never_cut_off_a_completion():
    """Every node cut bounds every completion of its node (so the best feasible one too), up to the
    tie tolerance; checked on sampled nodes against the naive values of all completions."""
    from dm_opt.gaussian.backends.scip_check import _Check

    for seed in range(12):
        S, values, noise, _ = random_instance(500 + seed, 8)
        m = dm_opt.GaussianMarket(S, values, noise)
        rng = np.random.default_rng(seed)
        for problem in PROBLEMS:
            obj = m.objective(problem)
            scale = obj.scale(np.asarray(m.sigma2))
            tol = 1e-9 * scale
            ctx = _Check(m, obj, None, scale, tol / scale, None)
            if seed % 2:           # the tangent planes at a random point (any point gives valid planes)
                from dm_opt.gaussian.backends.bounds import tangent_planes, tangent_slack

                planes = tangent_planes(m.cov, m.noise_var, obj, rng.random(m.n))
                if planes is not None:
                    A, B = planes
                    ctx.planes = (A, B, np.maximum(B[0], B[1]), tangent_slack(m.cov, m.noise_var, obj))
            for _ in range(6):
                state = rng.choice([0, 0, 1, 2], size=m.n).astype(np.int8)
                free = np.flatnonzero(state == 0)
                comps = []
                for bits in itertools.product((0, 1), repeat=free.size):
                    a = (state == 1).astype(float)
                    a[free] = bits
                    comps.append((a, naive.objective(m.cov, m.noise_var, m.values, np.flatnonzero(a), problem)))
                best_a, best = max(comps, key=lambda t: t[1])
                rows = ctx.cut_rows(state)
                assert len(rows) >= 2
                for rhs, coef in rows:
                    assert np.all(coef[state != 0] == 0)
                    # the best completion first (the one a wrong cut would lose), then all of them
                    assert best / scale <= rhs + coef @ best_a + tol / scale, (seed, problem, state)
                    for a, v in comps:
                        assert v / scale <= rhs + coef @ a + tol / scale, (seed, problem, state, a)


def test_tiny_noise_two_users_regression():
    """σ²/τ² = 1e6 (tests/reliability/test_numerics.py instance 387): the tangent planes were 1.7e-4
    below the optimum here (far above their documented slack); the backend must not use them."""
    S = np.array([[1.80662763, 0.35030953], [0.35030953, 2.81595614]])
    m = dm_opt.GaussianMarket(S, [0.120097, 0.35271206], 1e-6 * np.diag(S))
    ref = max(naive.objective(m.cov, m.noise_var, m.values, np.flatnonzero(a), "equilibrium")
              for a in itertools.product((0, 1), repeat=2))
    r = dm_opt.solve(m, "equilibrium", "scip-check")
    assert r.status is Termination.OPTIMAL, r.message
    assert abs(r.objective - ref) <= r.tie_tol


def weighted_value(m, w, u, k, a):
    """``Σ w I(a) + Σ u_i I_i(a_−i, 0) − Σ_A k`` from naive leakages (fresh dense solves)."""
    A = list(np.flatnonzero(a))
    val = float(w @ naive.leakage(m.cov, m.noise_var, A)) - float(k @ a)
    for i in range(m.n):
        val += u[i] * naive.leakage(m.cov, m.noise_var, [j for j in A if j != i])[i]
    return val


def test_weighted_objectives_of_any_sign():
    """General ``Σ w I(a) + Σ u I(a_−i, 0) − Σ_A k`` (negative weights: ``e < 0`` included) under a
    knapsack row, against brute force from naive leakages."""
    from dm_opt.gaussian.objectives import LeakageObjective

    for seed in range(6):
        rng = np.random.default_rng(40 + seed)
        n = 6
        m = dm_opt.GaussianMarket(G.wishart(n, seed), rng.uniform(0, 2, n))
        w, u, k = rng.normal(size=n), rng.normal(size=n), 0.1 * rng.normal(size=n)
        weights = rng.integers(1, 5, n).astype(float)
        r = dm_opt.solve(m, LeakageObjective.weighted(w, u, k=k), "scip-check", constraints=LC(weights, ub=8))
        profiles = [np.array(b) for b in itertools.product((0, 1), repeat=n)]
        ref = max(weighted_value(m, w, u, k, a) for a in profiles if weights @ a <= 8)
        assert r.status is Termination.OPTIMAL, r.message
        got = weighted_value(m, w, u, k, r.profile)
        assert weights @ r.profile <= 8 and abs(got - ref) <= r.tie_tol, (seed, got, ref)


# ------------------------------------------------------------- status paths
def test_infeasible_rows():
    m = dm_opt.GaussianMarket(G.wishart(6, 1), G.uniform(6, 2))
    r = dm_opt.solve(m, "first_best", "scip-check", constraints=[LC(np.ones(6), ub=1), LC(np.ones(6), lb=2)])
    assert r.status is Termination.INFEASIBLE


def test_time_limit_reports_the_true_gap():
    n = 30
    rng = np.random.default_rng(7)
    m = dm_opt.GaussianMarket(G.wishart(n, 7), G.uniform(n, 10_007, 0.0, 2.0))
    cons = [random_row(rng, n, k) for k in ("conflict", "knapsack", "quota")]
    r = dm_opt.solve(m, "equilibrium", "scip-check", constraints=cons, time_limit=1e-3)
    assert r.status is Termination.TIME_LIMIT
    assert r.bound >= r.objective and np.isfinite(r.bound)
    ref = dm_opt.solve(m, "equilibrium", "bnb", constraints=cons)
    assert ref.is_optimal
    assert r.bound >= ref.objective - ref.tie_tol


def test_bad_options_are_refused():
    m = dm_opt.GaussianMarket(G.wishart(5, 1), G.uniform(5, 2))
    with pytest.raises(ProblemError, match="warm_start"):
        dm_opt.solve(m, "first_best", "scip-check", options={"warm_start": "magic"})
    with pytest.raises(ProblemError, match="depth_limit"):
        dm_opt.solve(m, "first_best", "scip-check", options={"depth_limit": -1})
    with pytest.raises(ProblemError, match="plugins"):
        dm_opt.solve(m, "first_best", "scip-check", options={"plugins": "some"})
    with pytest.raises(ProblemError, match="branching"):
        dm_opt.solve(m, "first_best", "scip-check", options={"branching": "no-such-rule"})
    with pytest.raises(ProblemError, match="unknown option"):
        dm_opt.solve(m, "first_best", "scip-check", options={"nope": 1})


def test_budget_with_rows():
    """A budget on payments is checked exactly at every integral point (profiles over it are refused)."""
    for seed in range(3):
        S, values, noise, cons = random_instance(900 + seed, 7)
        m = dm_opt.GaussianMarket(S, values, noise)
        ok_rows = feasible_by_definition(cons, m.n)
        for problem in ("equilibrium", "decorrelated"):
            full = float(np.sum(m.prices(np.ones(m.n, dtype=np.int8), problem)))
            budget = 0.5 * max(full, 0.1)
            r = dm_opt.solve(m, problem, "scip-check", constraints=list(cons) + [{"budget": budget}])
            best = -np.inf
            for bits in itertools.product((0, 1), repeat=m.n):
                a = np.array(bits, dtype=np.int8)
                if ok_rows(a) and float(np.sum(m.prices(a, problem))) <= budget + 1e-9:
                    best = max(best, naive.objective(m.cov, m.noise_var, m.values, np.flatnonzero(a), problem))
            if best == -np.inf:
                assert r.status is Termination.INFEASIBLE
            else:
                assert r.is_optimal and abs(r.objective - best) <= r.tie_tol, (seed, problem)
