"""Side constraints: validation, and bnb against a naive enumeration filtered by ``feasible``.

The naive reference walks every subset with a fresh ``market.evaluate`` and keeps the
profiles that :meth:`SideConstraints.feasible` accepts (exact payments from a fresh solve).
"""

import itertools

import numpy as np
import pytest

import dm_opt
from dm_opt.core import generators as G
from dm_opt.core.result import Termination
from dm_opt.gaussian.constraints import SideConstraints


def naive_best(m, problem, cons):
    """(best value, feasible profiles) by brute force over all 2^n profiles."""
    best = -np.inf
    for bits in itertools.product((0, 1), repeat=m.n):
        a = np.array(bits, dtype=np.int8)
        if cons.feasible(m, problem, a):
            best = max(best, m.evaluate(problem, a))
    return best


def random_market(rng, n):
    seed = int(rng.integers(0, 2**31))
    fam = rng.integers(0, 3)
    S = (G.wishart(n, seed) if fam == 0 else G.block(n, seed, within=0.5, across=0.1) if fam == 1
         else G.equicorrelated(n, seed, rho=0.4))
    v = G.uniform(n, seed, 0.0, 2.5) if rng.random() < 0.7 else G.straddle(n, seed)
    return dm_opt.GaussianMarket(S, v)


def random_constraints(rng, m, problem):
    n = m.n
    kw = {}
    kind = rng.integers(0, 6)
    if kind in (0, 5):
        kw["max_sharers"] = int(rng.integers(0, n + 1))
    if kind in (1, 5):
        kw["min_sharers"] = int(rng.integers(0, n + 1))
    if kind in (2, 5):
        users = rng.permutation(n)
        kw["force_in"] = users[: rng.integers(0, 3)].tolist()
        kw["force_out"] = users[3: 3 + rng.integers(0, 3)].tolist()
    if kind in (3, 4) and problem != "first_best":
        # a budget between 0 and the payments of sharing all: binds on purpose
        full = float(np.sum(m.prices(np.ones(n, dtype=np.int8), problem)))
        kw["budget"] = float(rng.uniform(0.0, 1.2)) * max(full, 0.1)
    if kind == 4:
        kw["max_sharers"] = int(rng.integers(1, n + 1))
    return SideConstraints.from_any(kw, n)


@pytest.mark.parametrize("problem", ["first_best", "equilibrium", "decorrelated"])
@pytest.mark.parametrize("seed", range(2))
def test_bnb_honours_constraints_exactly(problem, seed):
    rng = np.random.default_rng(40 + seed + 10 * len(problem))
    checked = infeasible = 0
    for _ in range(30):
        m = random_market(rng, int(rng.integers(2, 8)))
        cons = random_constraints(rng, m, problem)
        if cons is None:
            continue
        ref = naive_best(m, problem, cons)
        r = dm_opt.solve(m, problem, method="bnb", constraints=cons)
        if ref == -np.inf:
            assert r.status is Termination.INFEASIBLE and not r.has_solution
            infeasible += 1
            continue
        assert r.is_optimal, r.message
        assert cons.feasible(m, problem, r.profile)
        assert abs(r.objective - ref) <= r.tie_tol, (r.objective, ref, cons)
        checked += 1
    assert checked >= 15


@pytest.mark.parametrize("problem", ["first_best", "equilibrium", "decorrelated"])
@pytest.mark.parametrize("options", [{"generic": True}, {"search": "best"}])
def test_other_search_paths_honour_constraints(problem, options):
    """The oracle path and best-first search apply the same constraint logic (Python loop)."""
    rng = np.random.default_rng(90 + len(problem))
    for _ in range(12):
        m = random_market(rng, int(rng.integers(2, 7)))
        cons = random_constraints(rng, m, problem)
        if cons is None:
            continue
        ref = naive_best(m, problem, cons)
        r = dm_opt.solve(m, problem, method="bnb", constraints=cons, **options)
        if ref == -np.inf:
            assert r.status is Termination.INFEASIBLE
            continue
        assert r.is_optimal and cons.feasible(m, problem, r.profile)
        assert abs(r.objective - ref) <= r.tie_tol


@pytest.mark.parametrize("problem", ["equilibrium", "decorrelated"])
def test_budget_alone(problem):
    rng = np.random.default_rng(3)
    for _ in range(20):
        m = random_market(rng, int(rng.integers(3, 9)))
        free = dm_opt.solve(m, problem, method="enumerate")
        spent = float(np.sum(free.prices))
        budget = spent * float(rng.uniform(0.2, 0.95))
        cons = SideConstraints(budget=budget)
        r = dm_opt.solve(m, problem, method="bnb", constraints={"budget": budget})
        ref = naive_best(m, problem, cons)
        assert float(np.sum(r.prices)) <= budget + 1e-9
        assert abs(r.objective - ref) <= r.tie_tol
        assert r.objective <= free.objective + r.tie_tol


def test_max_sharers_zero_and_everyone_forced():
    m = random_market(np.random.default_rng(0), 6)
    r = dm_opt.solve(m, "first_best", method="bnb", constraints={"max_sharers": 0})
    assert r.profile.tolist() == [0] * 6 and r.is_optimal
    r = dm_opt.solve(m, "equilibrium", method="bnb", constraints={"force_in": list(range(6))})
    assert r.profile.tolist() == [1] * 6


# ----------------------------------------------------------------- infeasible
@pytest.mark.parametrize("cons, why", [
    ({"min_sharers": 4, "max_sharers": 2}, "min_sharers = 4 > max_sharers = 2"),
    ({"force_in": [0, 1, 2], "max_sharers": 2}, "3 users forced in"),
    ({"force_out": [0, 1, 2], "min_sharers": 3}, "only 2 users may share"),
])
def test_infeasible_counting(cons, why):
    m = random_market(np.random.default_rng(1), 5)
    r = dm_opt.solve(m, "equilibrium", constraints=cons)
    assert r.status is Termination.INFEASIBLE and not r.has_solution
    assert "infeasible" in r.message and why in r.message
    assert r.bound == -np.inf
    with pytest.raises(dm_opt.SolverFailed, match="infeasible"):
        r.raise_for_status()


def test_infeasible_budget_found_by_search():
    # two users forced in always cost something; a budget below that admits nothing
    m = random_market(np.random.default_rng(2), 6)
    pay = float(np.sum(m.prices(np.ones(6, dtype=np.int8), "decorrelated")))
    r = dm_opt.solve(m, "decorrelated", method="bnb",
                     constraints={"force_in": [0, 1], "budget": 1e-6 * pay})
    assert r.status is Termination.INFEASIBLE
    assert "budget" in r.message and r.to_dict()["status"] == "infeasible"


# ----------------------------------------------------------------- validation
def test_from_any_validation():
    assert SideConstraints.from_any(None, 3) is None
    assert SideConstraints.from_any({}, 3) is None
    c = SideConstraints.from_any({"force_in": [2, 0, 2], "budget": 1}, 3)
    assert c.force_in == (0, 2) and c.budget == 1.0
    bad = [
        ({"max_sharer": 1}, "constraints.max_sharer"),
        ({"max_sharers": -1}, "constraints.max_sharers"),
        ({"min_sharers": 1.5}, "constraints.min_sharers"),
        ({"budget": float("nan")}, "constraints.budget"),
        ({"budget": True}, "constraints.budget"),
        ({"force_in": [3]}, "constraints.force_in"),
        ({"force_out": 1}, "constraints.force_out"),
        ({"force_in": [1], "force_out": [1]}, "constraints.force_in"),
    ]
    for obj, field in bad:
        with pytest.raises(dm_opt.InstanceError) as err:
            SideConstraints.from_any(obj, 3)
        assert err.value.field == field
    with pytest.raises(dm_opt.InstanceError, match="constraints"):
        SideConstraints.from_any([1, 2], 3)


def test_solve_validates_constraints_before_the_backend():
    m = random_market(np.random.default_rng(4), 4)
    with pytest.raises(dm_opt.InstanceError, match="constraints.force_in"):
        dm_opt.solve(m, "equilibrium", method="bnb", constraints={"force_in": [9]})
    with pytest.raises(dm_opt.ProblemError, match="budget"):
        dm_opt.solve(m, "first_best", method="bnb", constraints={"budget": 1.0})
    with pytest.raises(dm_opt.ProblemError, match="side constraints"):
        dm_opt.solve(m, "first_best", method="enumerate", constraints={"max_sharers": 1})


@pytest.mark.parametrize("problem", ["equilibrium", "decorrelated"])
def test_budget_where_more_sharers_cost_less(problem):
    """Strong correlation: Thm 2 payments can fall as users join (AMMO §3.2 example), so a
    node's payment bound must use the largest completion (Prop 2) — pruning by the
    payments of IN alone would cut optimal profiles here."""
    rng = np.random.default_rng(11)
    for _ in range(25):
        n = int(rng.integers(3, 8))
        seed = int(rng.integers(0, 2**31))
        S = G.equicorrelated(n, seed, rho=float(rng.uniform(0.8, 0.97))) if rng.random() < 0.5 else \
            G.block(n, seed, within=float(rng.uniform(0.85, 0.95)), across=0.3)
        m = dm_opt.GaussianMarket(S, rng.uniform(0.5, 3.0, n))
        a = (rng.random(n) < 0.7).astype(np.int8)
        budget = float(np.sum(m.prices(a, problem))) * float(rng.uniform(1.0, 1.05))
        cons = SideConstraints(budget=budget, force_in=tuple(np.flatnonzero(a)[:1].tolist()))
        ref = naive_best(m, problem, cons)
        r = dm_opt.solve(m, problem, method="bnb", constraints=cons)
        assert cons.feasible(m, problem, r.profile)
        assert abs(r.objective - ref) <= r.tie_tol, (r.objective, ref)
