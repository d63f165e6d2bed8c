"""Parallel branch-and-bound (``method="bnb"`` with ``workers=`` / ``scheduler=``) against the serial
search and the independent brute-force oracle :mod:`tests.support.naive` (fresh dense solves per subset).

The parallel search must give the serial optimum (objective within the tie tolerance; the profile
may be another optimum of a tied instance: its objective, recomputed by the oracle, is optimal),
with and without side constraints; a stopped run reports a proven bound.  The root split and
the splits for idle workers are forced small (``SUBTREES_PER_WORKER = 1``, ``SPLIT_AFTER = 0``) so
that on these small trees the subtrees really run on the workers and are split again.
"""

import numpy as np
import pytest

import dm_opt
from dm_opt.core import generators as G
from dm_opt.core.errors import ProblemError
from dm_opt.core.result import Termination
from dm_opt.gaussian.backends import bnb_parallel
from tests.support import naive

PROBLEMS = ("first_best", "equilibrium", "decorrelated")


@pytest.fixture
def fine_split(monkeypatch):
    """Subtrees on the workers even for trees of tens of nodes, split for an idle worker at once."""
    monkeypatch.setattr(bnb_parallel, "SUBTREES_PER_WORKER", 1)
    monkeypatch.setattr(bnb_parallel, "SPLIT_AFTER", 0.0)


@pytest.fixture
def always_split(fine_split, monkeypatch):
    """Every subtree hands its open nodes back after each compiled chunk (the split path at every step)."""
    between = bnb_parallel._ThreadTask.between

    def split_always(self, inc_a, inc_val):
        out = between(self, inc_a, inc_val)
        return out if out is not None else (Termination.NODE_LIMIT, bnb_parallel.SPLIT_MESSAGE)

    monkeypatch.setattr(bnb_parallel._ThreadTask, "between", split_always)


def random_market(rng, n):
    seed = int(rng.integers(0, 2**31))
    fam = rng.choice(["wishart", "equicorrelated", "block", "banded"])
    if fam == "wishart":
        S = G.wishart(n, seed)
    elif fam == "equicorrelated":
        S = G.equicorrelated(n, seed, rho=float(rng.uniform(0.1, 0.9)))
    elif fam == "block":
        S = G.block(n, seed, within=float(rng.uniform(0.2, 0.7)), across=float(rng.uniform(0.0, 0.2)))
    else:
        S = G.banded(n, seed, bandwidth=2)
    kind = rng.choice(["uniform", "straddle", "equal", "ones_mixed"])
    if kind == "uniform":
        v = G.uniform(n, seed)
    elif kind == "straddle":
        v = G.straddle(n, seed)
    elif kind == "equal":                      # ties in the symmetric families (symmetry chains on)
        v = np.full(n, float(rng.choice([0.5, 1.5])))
    else:
        v = np.where(rng.random(n) < 0.5, 1.0, G.uniform(n, seed))
    tau2 = None if rng.random() < 0.6 else rng.uniform(0.3, 2.0, n)
    return dm_opt.GaussianMarket(S, v, tau2)


def naive_payments(m, a, problem):
    """Total payments from the definitions: Thm 2 prices v_i·own_i(a), Thm 6 prices v_i·I_i(a)."""
    A = np.flatnonzero(a)
    S, t2, v = m.cov, m.noise_var, m.values
    I = naive.leakage(S, t2, A)
    if problem == "decorrelated":
        return float(np.sum(v[A] * I[A]))
    return float(sum(v[i] * (I[i] - naive.leakage(S, t2, [j for j in A if j != i])[i]) for i in A))


def naive_feasible(m, problem, cons):
    if not cons:
        return None

    def ok(a):
        k = int(a.sum())
        if "max_sharers" in cons and k > cons["max_sharers"]:
            return False
        if "min_sharers" in cons and k < cons["min_sharers"]:
            return False
        if any(a[i] != 1 for i in cons.get("force_in", ())) or any(a[i] != 0 for i in cons.get("force_out", ())):
            return False
        return "budget" not in cons or naive_payments(m, a, problem) <= cons["budget"] + 1e-9
    return ok


def check_against_oracle(m, problem, r, cons=None):
    """``r`` is optimal for the brute force over every (feasible) subset; returns the oracle value."""
    best, _ = naive.brute_force(m.cov, m.noise_var, m.values, problem, feasible=naive_feasible(m, problem, cons))
    if best is None:
        assert r.status is Termination.INFEASIBLE and not r.has_solution
        return None
    assert r.is_optimal, r.message
    assert r.bound - r.objective <= r.tie_tol
    assert abs(r.objective - best) <= r.tie_tol
    # the returned profile itself is optimal for the oracle (another optimum of a tie is fine)
    assert naive.objective(m.cov, m.noise_var, m.values, np.flatnonzero(r.profile), problem) >= best - r.tie_tol
    if cons:
        assert naive_feasible(m, problem, cons)(r.profile)
    return best


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("block", range(3))
def test_threads_equal_serial_and_bruteforce(problem, block, always_split):
    rng = np.random.default_rng(1000 + 10 * block + len(problem))
    ran = splits = 0
    for _ in range(6):
        m = random_market(rng, int(rng.integers(4, 9 if problem == "equilibrium" else 11)))
        serial = dm_opt.solve(m, problem, method="bnb")
        par = dm_opt.solve(m, problem, method="bnb", workers=2)
        check_against_oracle(m, problem, par)
        assert abs(par.objective - serial.objective) <= par.tie_tol
        ran += par.extra.get("subtrees", 0)
        splits += par.extra.get("splits", 0)
    # the parallel machinery was exercised, not bypassed by the root split
    assert ran > 0 and splits > 0


@pytest.mark.parametrize("problem", PROBLEMS)
def test_threads_one_and_two_workers_n12_14(problem, fine_split):
    rng = np.random.default_rng(77 + len(problem))
    for n in (12, 13, 14):
        m = random_market(rng, n)
        ref = dm_opt.solve(m, problem, method="enumerate")
        for w in (1, 2):
            par = dm_opt.solve(m, problem, method="bnb", workers=w)
            assert par.is_optimal
            assert abs(par.objective - ref.objective) <= par.tie_tol
            assert m.evaluate(problem, par.profile) >= ref.objective - par.tie_tol


@pytest.mark.parametrize("problem", PROBLEMS)
def test_ties_equicorrelated_symmetry_chains(problem, fine_split):
    """Equal values on an equicorrelated market: every user a twin (symmetry chains), many ties."""
    for n, rho, v in ((7, 0.6, 0.5), (8, 0.3, 1.5), (6, 0.8, 1.0)):
        m = dm_opt.GaussianMarket(G.equicorrelated(n, 0, rho=rho), np.full(n, v))
        par = dm_opt.solve(m, problem, method="bnb", workers=2)
        check_against_oracle(m, problem, par)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_side_constraints(problem, fine_split):
    rng = np.random.default_rng(5 + len(problem))
    infeasible = 0
    for _ in range(10):
        n = int(rng.integers(4, 10))
        m = random_market(rng, n)
        users = rng.permutation(n)
        cons = {"max_sharers": int(rng.integers(1, n + 1)), "min_sharers": int(rng.integers(0, 3)),
                "force_in": users[:1].tolist(), "force_out": users[1:2].tolist()}
        if problem != "first_best" and rng.random() < 0.6:
            cons["budget"] = float(rng.uniform(0.0, 0.8)) * max(naive_payments(m, np.ones(n, np.int8), problem), 0.1)
        par = dm_opt.solve(m, problem, method="bnb", workers=2, constraints=cons)
        serial = dm_opt.solve(m, problem, method="bnb", constraints=cons)
        best = check_against_oracle(m, problem, par, cons)
        if best is None:
            infeasible += 1
            assert serial.status is Termination.INFEASIBLE
        else:
            assert abs(par.objective - serial.objective) <= par.tie_tol
    assert infeasible < 10


def test_time_limited_run_reports_a_proven_bound():
    """A stopped parallel run: status time_limit, incumbent re-evaluated, and its bound is at least
    the true optimum (the serial search's certified value), i.e. an honest gap."""
    m = dm_opt.GaussianMarket(G.wishart(44, 3), G.straddle(44, 3))
    ref = dm_opt.solve(m, "first_best", method="bnb")
    assert ref.is_optimal
    r = dm_opt.solve(m, "first_best", method="bnb", workers=2, time_limit=0.05)
    assert r.status is Termination.TIME_LIMIT
    assert r.has_solution and r.objective <= ref.objective + r.tie_tol
    assert r.bound >= ref.objective - r.tie_tol
    assert r.gap > 0 and np.isfinite(r.bound)


def test_node_limit_reports_a_proven_bound(fine_split):
    m = dm_opt.GaussianMarket(G.wishart(30, 2), G.straddle(30, 2))
    ref = dm_opt.solve(m, "first_best", method="bnb")
    r = dm_opt.solve(m, "first_best", method="bnb", workers=2, node_limit=20)
    assert r.status is Termination.NODE_LIMIT
    assert r.bound >= ref.objective - r.tie_tol and r.objective <= ref.objective + r.tie_tol


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"workers": 0}, "workers must be a positive integer"),
    ({"workers": True}, "workers must be a positive integer"),
    ({"scheduler": ""}, "scheduler must be a Dask scheduler address"),
    ({"workers": 2, "search": "best"}, "search='best'"),
    ({"workers": 2, "generic": True}, "generic=True"),
])
def test_bad_options(kwargs, needle):
    m = dm_opt.GaussianMarket(G.wishart(5, 0), G.uniform(5, 0))
    with pytest.raises(ProblemError, match=needle):
        dm_opt.solve(m, "first_best", method="bnb", **kwargs)


# ------------------------------------------------------------------------- Dask
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="Dask is the optional extra 'dist'")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as c:
        yield c


@pytest.fixture
def short_slices(monkeypatch):
    monkeypatch.setattr(bnb_parallel, "SUBTREES_PER_WORKER", 1)
    monkeypatch.setattr(bnb_parallel, "DASK_SLICE", 0.0)      # every task returns its open nodes at once


@pytest.mark.slow
@pytest.mark.parametrize("problem", PROBLEMS)
def test_dask_equals_serial_and_bruteforce(cluster, problem, short_slices):
    rng = np.random.default_rng(300 + len(problem))
    ran = splits = on_dask = 0
    for _ in range(3):
        m = random_market(rng, int(rng.integers(6, 11)))
        serial = dm_opt.solve(m, problem, method="bnb")
        par = dm_opt.solve(m, problem, method="bnb", scheduler=cluster.scheduler_address)
        on_dask += par.extra["path"] == "gaussian-dask"      # (else every user was fixed at the root)
        check_against_oracle(m, problem, par)
        assert abs(par.objective - serial.objective) <= par.tie_tol
        ran += par.extra.get("subtrees", 0)
        splits += par.extra.get("splits", 0)
    assert on_dask > 0 and ran > 0 and splits > 0


@pytest.mark.slow
def test_dask_side_constraints_and_time_limit(cluster, short_slices):
    m = dm_opt.GaussianMarket(G.block(9, 4, within=0.5, across=0.1), G.straddle(9, 4))
    cons = {"max_sharers": 5, "force_in": [2], "budget": 0.5}
    par = dm_opt.solve(m, "equilibrium", method="bnb", scheduler=cluster.scheduler_address, constraints=cons)
    check_against_oracle(m, "equilibrium", par, cons)
    big = dm_opt.GaussianMarket(G.wishart(44, 3), G.straddle(44, 3))
    ref = dm_opt.solve(big, "first_best", method="bnb")
    r = dm_opt.solve(big, "first_best", method="bnb", scheduler=cluster.scheduler_address, time_limit=0.05)
    assert r.status is Termination.TIME_LIMIT
    assert r.bound >= ref.objective - r.tie_tol and r.objective <= ref.objective + r.tie_tol


def test_cli_scheduler_needs_method_bnb(capsys):
    from dm_opt.cli import main

    rc = main(["solve", "ammo/block_n18", "--scheduler", "tcp://127.0.0.1:1"])
    assert rc != 0 and "--method bnb" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_scheduler_equals_serial(cluster, capsys):
    import json

    from dm_opt.cli import main

    assert main(["solve", "ammo/block_n18", "--problem", "first_best", "--method", "bnb", "--json"]) == 0
    serial = json.loads(capsys.readouterr().out)
    assert main(["solve", "ammo/block_n18", "--problem", "first_best", "--method", "bnb", "--json",
                 "--scheduler", cluster.scheduler_address]) == 0
    par = json.loads(capsys.readouterr().out)
    assert par["status"] == serial["status"] == "optimal"
    assert abs(par["objective"] - serial["objective"]) <= serial["tie_tol"]


@pytest.mark.slow
def test_dask_failed_subtree_is_never_optimal(cluster, short_slices, monkeypatch):
    """A subtree task that keeps failing: status error, and the bound still covers the optimum."""
    def boom(*args, **kwargs):
        raise RuntimeError("worker lost its mind")

    monkeypatch.setattr(bnb_parallel, "_dask_subtree", boom)
    m = dm_opt.GaussianMarket(G.wishart(12, 5), G.straddle(12, 5))
    ref = dm_opt.solve(m, "first_best", method="enumerate")
    r = dm_opt.solve(m, "first_best", method="bnb", scheduler=cluster.scheduler_address)
    assert r.status is Termination.ERROR and "failed" in r.message
    assert r.bound >= ref.objective - r.tie_tol
