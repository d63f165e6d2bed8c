"""Dask: distributed enumeration == serial enumeration (ties included), failures never reported
complete, benchmark grids identical to a serial run.  One in-process LocalCluster per module."""

import os
import pickle

import numpy as np
import pytest

import dm_opt
from dm_opt.core import generators as gen
from dm_opt.core.errors import BackendUnavailable, SolverFailed

distributed = pytest.importorskip("distributed", reason="Dask is the optional extra 'dist'")

from dm_opt.gaussian.backends.enumeration import run_chunk  # noqa: E402
from dm_opt.gaussian.distributed import enumerate_distributed, open_client  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with open_client(workers=2, processes=False) as c:
        yield c


def _market(n, seed, fam="wishart"):
    return dm_opt.GaussianMarket(gen.COV_FAMILIES[fam](n, seed=seed), gen.uniform(n, seed=seed + 100))


def _same(a, b):
    assert a.status == b.status
    np.testing.assert_array_equal(a.profile, b.profile)
    assert a.objective == b.objective                 # both re-evaluated exactly at the same profile
    assert a.bound == b.bound and a.gap == b.gap
    np.testing.assert_array_equal(a.prices, b.prices)


def test_market_pickles():
    m = _market(6, 1)
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2.cov, m.cov)
    assert m2.evaluate("equilibrium", np.ones(6)) == m.evaluate("equilibrium", np.ones(6))


@pytest.mark.parametrize("problem", ["equilibrium", "first_best", "decorrelated"])
@pytest.mark.parametrize("seed", [0, 1])
def test_distributed_equals_serial(client, problem, seed):
    m = _market(11, seed)
    serial = dm_opt.solve(m, problem, "enumerate")
    for bits in (None, 0, 4):
        dist = enumerate_distributed(m, problem, client, chunk_bits=bits)
        _same(dist, serial)
        assert dist.nodes == 2 ** 11 and dist.extra["chunks_done"] == dist.extra["chunks"]


def test_ties_all_optima(client):
    # equicorrelated Σ and equal values: the objective is symmetric under permuting users,
    # so optimal profiles come in whole permutation orbits (real ties)
    n = 7
    m = dm_opt.GaussianMarket(gen.equicorrelated(n, rho=0.4), np.full(n, 1.75))   # 35 optima: k* = 3
    serial = dm_opt.solve(m, "equilibrium", "enumerate", all_optima=True)
    dist = enumerate_distributed(m, "equilibrium", client, chunk_bits=3, all_optima=True)
    _same(dist, serial)
    assert len(serial.optima) > 1
    assert [o.tolist() for o in dist.optima] == [o.tolist() for o in serial.optima]
    # independent check of the tie set: by symmetry, every optimum has the same number of sharers k*
    # and every profile with k* sharers is optimal
    k = {int(o.sum()) for o in dist.optima}
    assert len(k) == 1
    from math import comb
    assert len(dist.optima) == comb(n, k.pop())


def test_against_independent_bruteforce(client):
    from tests.support import naive
    m = _market(8, 5, "block")
    best, opt = naive.brute_force(np.asarray(m.cov), m.noise_var, m.values, "equilibrium")
    dist = enumerate_distributed(m, "equilibrium", client, chunk_bits=2, all_optima=True)
    assert dist.objective == pytest.approx(best, rel=1e-10, abs=1e-12)
    assert sorted(o.tolist() for o in dist.optima) == sorted(o.tolist() for o in opt)


def _flaky(marker_dir, fail_chunks, times):
    """A run_chunk that raises the first ``times`` attempts of each chunk in ``fail_chunks``
    (attempts counted in files, so it works across threads and processes)."""
    def chunk_fn(market, objective, plan, chunk_id, tol, capacity):
        if chunk_id in fail_chunks:
            path = os.path.join(marker_dir, f"chunk{chunk_id}")
            tries = open(path).read().count("x") if os.path.exists(path) else 0
            with open(path, "a") as fh:
                fh.write("x")
            if tries < times:
                raise RuntimeError(f"injected failure of chunk {chunk_id} (attempt {tries + 1})")
        return run_chunk(market, objective, plan, chunk_id, tol, capacity)
    return chunk_fn


def test_failed_chunk_is_retried(client, tmp_path):
    m = _market(10, 2)
    serial = dm_opt.solve(m, "equilibrium", "enumerate")
    dist = enumerate_distributed(m, "equilibrium", client, chunk_bits=3, retries=2,
                                 chunk_fn=_flaky(str(tmp_path), {1, 5}, times=2))
    _same(dist, serial)
    assert (tmp_path / "chunk1").read_text() == "xxx"     # two failures, then success


def test_chunk_that_keeps_failing_is_never_complete(client, tmp_path):
    m = _market(10, 3)
    serial = dm_opt.solve(m, "equilibrium", "enumerate")
    dist = enumerate_distributed(m, "equilibrium", client, chunk_bits=3, retries=1,
                                 chunk_fn=_flaky(str(tmp_path), {6}, times=99))
    assert dist.status is dm_opt.Termination.ERROR and not dist.is_optimal
    assert "failed" in dist.message and dist.extra["failed_chunks"] == [6]
    assert (tmp_path / "chunk6").read_text() == "xx"      # first attempt + 1 retry
    assert dist.bound >= serial.objective - 1e-12          # bound over the failed chunk still valid
    with pytest.raises(SolverFailed):
        dist.raise_for_status()


def test_time_limit_status_and_bound(client):
    import time

    def slow_chunk(market, objective, plan, chunk_id, tol, capacity):
        if chunk_id > 0:
            time.sleep(1.0)
        return run_chunk(market, objective, plan, chunk_id, tol, capacity)

    m = _market(9, 4)
    serial = dm_opt.solve(m, "equilibrium", "enumerate")
    dist = enumerate_distributed(m, "equilibrium", client, chunk_bits=3, time_limit=0.3, chunk_fn=slow_chunk)
    assert dist.status is dm_opt.Termination.TIME_LIMIT
    assert dist.bound >= serial.objective - 1e-12 and dist.objective <= serial.objective + 1e-12


def test_bench_grid_on_dask_equals_serial(client):
    from dm_opt.gaussian.bench import generated, run_grid
    specs = generated(["wishart", "banded"], [5, 7], 2)
    a = run_grid(specs, ["enumerate"], ["equilibrium", "first_best"], time_limit=30, memory="none")
    b = run_grid(specs, ["enumerate"], ["equilibrium", "first_best"], time_limit=30, memory="none", client=client)
    keys = ("instance", "problem", "method", "status", "objective", "bound", "profile", "agreement")
    assert [[r[k] for k in keys] for r in a.rows] == [[r[k] for k in keys] for r in b.rows]


def test_missing_dask_is_backend_unavailable(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(BackendUnavailable, match="dist"):
        enumerate_distributed(_market(4, 0), "equilibrium")


def test_worker_process_killed_mid_run(tmp_path):
    """A worker process dies (os._exit) while walking a chunk: Dask reschedules it elsewhere."""
    marker = str(tmp_path / "killed")

    def killer_chunk(market, objective, plan, chunk_id, tol, capacity):
        if chunk_id == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return run_chunk(market, objective, plan, chunk_id, tol, capacity)

    m = _market(12, 7)
    serial = dm_opt.solve(m, "equilibrium", "enumerate")
    with open_client(workers=2, processes=True) as c:
        dist = enumerate_distributed(m, "equilibrium", c, chunk_bits=4, chunk_fn=killer_chunk)
    assert os.path.exists(marker)
    _same(dist, serial)


def _solve_seed(seed):
    m = _market(8, seed, "banded")
    r = dm_opt.solve(m, "first_best", "enumerate")
    return seed, r.profile.tolist(), r.objective


def test_sweep_equals_serial(client):
    from dm_opt.gaussian.distributed import sweep
    seeds = list(range(6))
    assert sweep(_solve_seed, seeds, client=client) == [_solve_seed(s) for s in seeds]


def test_sweep_failure_raises(client):
    from dm_opt.gaussian.distributed import sweep

    def boom(x):
        if x == 2:
            raise ValueError("injected")
        return x

    with pytest.raises(ValueError, match="injected"):
        sweep(boom, range(4), client=client, retries=1)


@pytest.mark.parametrize("kwargs, exc, needle", [
    (dict(chunk_bits=-1), dm_opt.ProblemError, "chunk_bits"),
    (dict(chunk_bits=99), dm_opt.ProblemError, "chunk_bits"),
    (dict(retries=-1), dm_opt.ProblemError, "retries"),
    (dict(time_limit=0), dm_opt.ProblemError, "time_limit"),
    (dict(max_n=5), dm_opt.LimitExceeded, "max_n"),
])
def test_bad_arguments(client, kwargs, exc, needle):
    with pytest.raises(exc, match=needle):
        enumerate_distributed(_market(6, 0), "equilibrium", client, **kwargs)


def test_not_a_market(client):
    with pytest.raises(dm_opt.ProblemError, match="GaussianMarket"):
        enumerate_distributed(np.eye(3), "equilibrium", client)
