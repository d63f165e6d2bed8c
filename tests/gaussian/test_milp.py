"""MILP backend (docs/spec.md §1.2, HiGHS) — and the optional SCIP MISOCP — against enumeration.

Reference: Gray-code enumeration (``method="enumerate"``) for the unconstrained
problems, and a naive brute force (fresh ``market.evaluate`` on every subset,
filtered by :meth:`SideConstraints.feasible`) for side constraints.  A MILP
answer is correct when its exact objective is within the result's ``tie_tol``
of the optimum (ties: any optimal profile is accepted) and its status is optimal.
"""

import itertools

import numpy as np
import pytest

import dm_opt
from dm_opt.core import generators as G
from dm_opt.core.errors import ProblemError, SolverFailed
from dm_opt.core.registry import get_backend
from dm_opt.core.result import Termination
from dm_opt.gaussian.backends import milp as M
from dm_opt.gaussian.constraints import SideConstraints
from dm_opt.gaussian.objectives import LeakageObjective

PROBLEMS = ("first_best", "equilibrium", "decorrelated")
COV = ("wishart", "equicorrelated", "banded", "block")
VALS = ("uniform", "straddle", "constant")


def scip_available():
    try:
        import pyscipopt  # noqa: F401
    except ImportError:
        return False
    return True


def make_market(k: int, n: int) -> dm_opt.GaussianMarket:
    """Instance ``k`` of a deterministic family cycle (covariance × values × noise)."""
    rng = np.random.default_rng(1000 + k)
    fam = COV[k % 4]
    vfam = VALS[(k // 4) % 3]
    seed = int(rng.integers(0, 2**31))
    if fam == "wishart":
        S = G.wishart(n, seed)
    elif fam == "equicorrelated":
        S = G.equicorrelated(n, seed, rho=float(rng.uniform(0.1, 0.8)))
    elif fam == "banded":
        S = G.banded(n, seed, bandwidth=2, strength=float(rng.uniform(0.3, 2.0)))
    else:
        S = G.block(n, seed, within=float(rng.uniform(0.3, 0.7)), across=float(rng.uniform(0.0, 0.2)))
    if vfam == "uniform":
        v = G.uniform(n, seed)
    elif vfam == "straddle":
        v = G.straddle(n, seed)
    else:  # equal values on symmetric families: many tied optima
        v = G.constant(n, seed, value=float(rng.choice([0.5, 1.0, 1.5])))
    noise = None if k % 3 else rng.uniform(0.5, 2.0, size=n)
    return dm_opt.GaussianMarket(S, v, noise)


def check_against_enumeration(m, problem, method="milp", **opts):
    e = dm_opt.solve(m, problem, "enumerate", all_optima=True)
    r = dm_opt.solve(m, problem, method, **opts)
    assert r.status is Termination.OPTIMAL, (r.status, r.message)
    assert r.objective == pytest.approx(m.evaluate(problem, r.profile), abs=1e-12)
    assert abs(r.objective - e.objective) <= e.tie_tol, (problem, r.objective, e.objective, r.profile)
    # the profile is one of the optima (ties)
    assert any(np.array_equal(r.profile, o) for o in e.optima), (r.profile, e.optima)
    assert r.bound >= r.objective
    return r


# ------------------------------------------------------------------- exactness
@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("k", range(12))        # 4 covariance families x 3 value families
def test_milp_equals_enumeration(problem, k):
    m = make_market(k, 4 + k % 3)
    check_against_enumeration(m, problem)


@pytest.mark.slow
@pytest.mark.parametrize("problem", PROBLEMS)
def test_milp_equals_enumeration_200(problem):
    for k in range(200):
        check_against_enumeration(make_market(k, 3 + k % 8), problem)


def test_ties_equicorrelated_equal_values():
    # symmetric users: the optimum is attained by many profiles; any of them is fine
    m = dm_opt.GaussianMarket(G.equicorrelated(6, rho=0.5), np.full(6, 1.2))
    for problem in PROBLEMS:
        check_against_enumeration(m, problem)
    e = dm_opt.solve(m, "first_best", "enumerate", all_optima=True)
    assert len(e.optima) > 1 or e.optima[0].sum() in (0, 6)


@pytest.mark.parametrize("variant", [dict(tangent_form="bigm"), dict(symmetric=False), dict(cuts=()),
                                     dict(cuts=("sharer", "mono", "dropone")), dict(n_tangents=1),
                                     dict(posterior_form="covariance"), dict(posterior_form="precision"),
                                     dict(posterior_form="mixed"), dict(posterior_form="mixed-precision"),
                                     dict(cuts=("sharer", "modular")),
                                     dict(posterior_form="mixed", cuts=("sharer", "modular")),
                                     dict(posterior_form="mixed", tangent_form="bigm",
                                          cuts=("sharer", "mono", "dropone", "modular"))])
def test_formulation_variants_are_exact(variant):
    for k in (5,):
        m = make_market(k, 5)
        for problem in ("first_best", "equilibrium"):
            check_against_enumeration(m, problem, **variant)


def test_general_objective_weights():
    rng = np.random.default_rng(7)
    m = make_market(1, 6)
    n = m.n
    obj = LeakageObjective("mixed", rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.uniform(0, 1, n),
                           rng.uniform(0, 0.1, n))
    e = dm_opt.solve(m, obj, "enumerate")
    r = dm_opt.solve(m, obj, "milp")
    assert r.status is Termination.OPTIMAL
    assert abs(r.objective - e.objective) <= e.tie_tol


def test_negative_own_weight_is_refused():
    m = make_market(0, 4)
    obj = LeakageObjective("bad", np.ones(4), np.zeros(4), -np.ones(4))
    with pytest.raises(ProblemError, match="e >= 0"):
        dm_opt.solve(m, obj, "milp")


def test_non_gaussian_market_is_refused():
    with pytest.raises(ProblemError, match="Gaussian-MSE-only"):
        get_backend("milp")().run(object(), None, all_optima=False, time_limit=None, constraints=None,
                                  tol=0.0, progress=False, options={})


def test_unknown_option():
    with pytest.raises(ProblemError, match="unknown option"):
        dm_opt.solve(make_market(0, 4), "first_best", "milp", nonsense=1)


def test_failed_attempts_fall_back_to_the_next(monkeypatch):
    # an attempt that raises SolverFailed or is not certified (status error) is followed by the next
    # one of posterior_form="auto" (precision → mixed → mixed with other HiGHS settings)
    m = make_market(0, 4)
    real = M.solve_milp_once
    calls = []

    def flaky(*args, **kw):
        calls.append((kw["posterior_form"], dict(kw["highs_options"])))
        if len(calls) == 1:
            raise SolverFailed("HiGHS stopped with model status Solve error")
        raw = real(*args, **kw)
        if len(calls) == 2:
            raw.status, raw.message = Termination.ERROR, "numerical trouble: simulated"
        return raw

    monkeypatch.setattr(M.solve, "solve_milp_once", flaky)
    r = dm_opt.solve(m, "first_best", "milp")
    assert r.status is Termination.OPTIMAL
    assert [c[0] for c in calls] == ["precision", "mixed", "mixed"] and calls[2][1] == M.RETRY_OPTIONS[1]
    assert len(r.extra["failed_attempts"]) == 2 and "Solve error" in r.extra["failed_attempts"][0]
    e = dm_opt.solve(m, "first_best", "enumerate")
    assert abs(r.objective - e.objective) <= e.tie_tol
    # every attempt failing: SolverFailed with every reason
    monkeypatch.setattr(M.solve, "solve_milp_once", lambda *a, **k: (_ for _ in ()).throw(SolverFailed("boom")))
    with pytest.raises(SolverFailed, match="boom"):
        dm_opt.solve(m, "first_best", "milp")


def test_modular_cut_matches_the_bnb_root_bound():
    # the per-user terms sum to the kernel's root modular bound, and the cut row holds at every profile
    m = make_market(3, 6)
    for problem in ("first_best", "equilibrium", "decorrelated"):
        obj = m.objective(problem)
        C0, sb, al = M.modular_cut_terms(m, obj)
        for bits in itertools.product((0, 1), repeat=6):
            a = np.array(bits, dtype=np.int8)
            assert m.evaluate(obj, a) <= C0 + np.sum(np.where(a == 1, sb, -al)) + 1e-12


def test_binary_rounding_tolerance():
    assert M._round_profile(np.array([1e-7, 1 - 1e-7])).tolist() == [0, 1]
    with pytest.raises(SolverFailed, match="a\\[1\\]"):
        M._round_profile(np.array([0.0, 0.4]))


def test_bigm_is_valid_for_non_sharers():
    # M_it = max(0, tangent at σ²): the big-M cut must not bind for any non-sharer's P_ii ≤ σ²
    m = make_market(2, 5)
    model = M.build_model(m, m.objective("equilibrium"), None, tangent_form="bigm")
    b = next(b for b in model.blocks if b.name == "tangent")
    A = model.A[b.start:b.stop].toarray()
    for profile in itertools.product((0, 1), repeat=5):
        x = model.point(np.array(profile))
        assert np.all(A @ x >= model.row_lo[b.start:b.stop] - 1e-9)


def test_model_point_is_feasible():
    # the exact point of any profile satisfies every row (the MILP is a relaxation)
    m = make_market(3, 5)
    for problem in PROBLEMS:
        model = M.build_model(m, m.objective(problem), None, cuts=("sharer", "mono", "dropone"))
        for profile in itertools.product((0, 1), repeat=5):
            x = model.point(np.array(profile))
            ax = model.A @ x
            assert np.all(ax >= model.row_lo - 1e-9) and np.all(ax <= model.row_hi + 1e-9)
            assert np.all(x >= model.col_lo - 1e-12) and np.all(x <= model.col_hi + 1e-12)
            # the model's objective (model units: value / model.scale) at the exact point equals
            # the exact value except for the z-terms (tangent table); with z = g the values agree
            val = model.cost @ x + model.offset
            assert val * model.scale == pytest.approx(m.evaluate(problem, profile), abs=1e-9)


# ------------------------------------------------------------ time limit paths
def test_time_limit_returns_incumbent_and_bound():
    m = dm_opt.GaussianMarket(G.wishart(30, seed=5), G.uniform(30, seed=6))
    for problem in ("first_best", "equilibrium"):
        r = dm_opt.solve(m, problem, "milp", time_limit=0.3)
        assert r.status is Termination.TIME_LIMIT
        assert r.has_solution
        assert r.objective == pytest.approx(m.evaluate(problem, r.profile), abs=1e-12)
        assert r.bound >= r.objective
        assert r.gap > 0
        assert "oa_rounds" in r.extra


# ------------------------------------------------------------ side constraints
def naive_best(m, problem, cons):
    best = -np.inf
    for bits in itertools.product((0, 1), repeat=m.n):
        a = np.array(bits, dtype=np.int8)
        if cons.feasible(m, problem, a):
            best = max(best, m.evaluate(problem, a))
    return best


def constraint_cases(m, problem):
    n = m.n
    yield {"max_sharers": 2}
    yield {"min_sharers": n - 1}
    yield {"force_in": [0], "force_out": [1, 2]}
    if problem != "first_best":
        full = float(np.sum(m.prices(np.ones(n, dtype=np.int8), problem)))
        for frac in (0.05, 0.4):
            yield {"budget": frac * max(full, 0.1)}
        yield {"budget": 0.3 * max(full, 0.1), "max_sharers": n - 2}


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("k", [0, 6])
def test_side_constraints_vs_filtered_enumeration(problem, k):
    m = make_market(k, 6)
    for kw in constraint_cases(m, problem):
        cons = SideConstraints.from_any(kw, m.n)
        best = naive_best(m, problem, cons)
        r = dm_opt.solve(m, problem, "milp", constraints=kw)
        assert r.status is Termination.OPTIMAL, (kw, r.status, r.message)
        assert cons.feasible(m, problem, r.profile), kw
        assert abs(r.objective - best) <= r.tie_tol + 1e-12, (kw, r.objective, best)


def test_budget_needs_the_exact_check():
    # budgets where the tangent relaxation alone accepts violators: the OA loop must cut them off
    cut = 0
    for k in range(6):
        m = make_market(k, 6)
        full = float(np.sum(m.prices(np.ones(m.n, dtype=np.int8), "equilibrium")))
        kw = {"budget": 0.25 * max(full, 0.1)}
        r = dm_opt.solve(m, "equilibrium", "milp", constraints=kw, n_tangents=1)
        cons = SideConstraints.from_any(kw, m.n)
        assert cons.feasible(m, "equilibrium", r.profile)
        assert abs(r.objective - naive_best(m, "equilibrium", cons)) <= r.tie_tol + 1e-12
        cut += r.extra["nogood_cuts"]
    assert cut > 0   # with a one-point tangent table some incumbent violated the budget


@pytest.mark.parametrize("kw", [{"max_sharers": 1, "min_sharers": 2},
                                {"force_in": [0, 1], "max_sharers": 1},
                                {"budget": -1.0}])
def test_infeasible_side_constraints(kw):
    m = make_market(1, 5)
    r = dm_opt.solve(m, "equilibrium", "milp", constraints=kw)
    assert r.status is Termination.INFEASIBLE
    assert not r.has_solution
    assert r.bound == float("-inf")


def test_budget_on_first_best_is_refused():
    with pytest.raises(ProblemError, match="budget"):
        dm_opt.solve(make_market(0, 4), "first_best", "milp", constraints={"budget": 1.0})


# ------------------------------------------------------------------------ SCIP
@pytest.mark.skipif(not scip_available(), reason="pyscipopt not installed (optional extra 'scip')")
@pytest.mark.parametrize("problem", PROBLEMS)
def test_scip_misocp_equals_enumeration(problem):
    for k in (0, 1, 5, 10):
        check_against_enumeration(make_market(k, 5), problem, method="misocp-scip")


@pytest.mark.skipif(not scip_available(), reason="pyscipopt not installed (optional extra 'scip')")
def test_scip_side_constraints_and_infeasible():
    m = make_market(6, 5)
    kw = {"max_sharers": 2, "force_in": [0]}
    cons = SideConstraints.from_any(kw, m.n)
    r = dm_opt.solve(m, "equilibrium", "misocp-scip", constraints=kw)
    assert abs(r.objective - naive_best(m, "equilibrium", cons)) <= r.tie_tol
    r = dm_opt.solve(m, "equilibrium", "misocp-scip", constraints={"max_sharers": 1, "min_sharers": 2})
    assert r.status is Termination.INFEASIBLE


@pytest.mark.slow
@pytest.mark.skipif(not scip_available(), reason="pyscipopt not installed (optional extra 'scip')")
@pytest.mark.parametrize("problem", PROBLEMS)
def test_scip_misocp_equals_enumeration_many(problem):
    for k in range(40):
        check_against_enumeration(make_market(k, 3 + k % 6), problem, method="misocp-scip")


def test_highs_options_pass_through_and_are_checked():
    m = dm_opt.GaussianMarket(np.eye(6) + 0.4, np.linspace(0.3, 1.8, 6))
    ref = dm_opt.solve(m, "first_best", "enumerate")
    r = dm_opt.solve(m, "first_best", "milp", highs_options={"mip_rel_gap": 0.5, "presolve": "off"})
    # a loose HiGHS gap can only make the status less certain, never the answer wrong
    assert r.objective <= ref.objective + ref.tie_tol and r.bound >= ref.objective - ref.tie_tol
    if r.status == "optimal":
        assert abs(r.objective - ref.objective) <= ref.tie_tol
    with pytest.raises(dm_opt.ProblemError, match="highs_options: HiGHS rejected 'nope'"):
        dm_opt.solve(m, "first_best", "milp", highs_options={"nope": 1})
    with pytest.raises(dm_opt.ProblemError, match="highs_options must be a dict"):
        dm_opt.solve(m, "first_best", "milp", highs_options=[("presolve", "off")])


def test_verbose_shows_the_highs_log(capfd):
    m = dm_opt.GaussianMarket(np.eye(4) + 0.4, np.linspace(0.3, 1.8, 4))
    dm_opt.solve(m, "first_best", "milp")
    assert "MIP" not in capfd.readouterr().out              # quiet by default
    dm_opt.solve(m, "first_best", "milp", verbose=True)
    assert "MIP" in capfd.readouterr().out
