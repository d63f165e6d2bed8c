"""A first ``bnb`` search with a cold numba cache runs the compiled search's own source in the
interpreter (``Kernel.python``): the same answers as the compiled kernel — same objective, profile,
bound, status and node count (same operations in the same order) — on seeded markets of every
family and in the hard regimes (noise ratio τ²/σ² of 1e-6 and 1e6, near-singular Σ), with and
without side constraints; both agree with enumeration (n ≤ 14) and with the independent brute force
of tests/support/naive.py (n ≤ 9).  The choice itself: interpreter when the cache is empty (a
subprocess with an empty NUMBA_CACHE_DIR: numba is not even imported), compiled once the kernel is
loaded; the cache-index check agrees with numba's own locator."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import dm_opt
import dm_opt.gaussian.backends.bnb as B
from dm_opt.core import generators as gen
from dm_opt.core import numba_cache
from dm_opt.gaussian.kernels import bnb as K
from tests.support import naive

PROBLEMS = ("first_best", "equilibrium", "decorrelated")


def _market(n, seed, family="wishart", regime="plain"):
    rng = np.random.default_rng(1000 + seed)
    if regime == "singular":
        Bm = rng.normal(size=(n, 2))
        cov = Bm @ Bm.T + 1e-9 * np.eye(n)            # rank 2 up to 1e-9: near-singular Σ
    else:
        cov = gen.COV_FAMILIES[family](n, seed=seed)
    ratio = {"plain": rng.uniform(0.05, 2.0, n), "tiny": np.full(n, 1e-6), "huge": np.full(n, 1e6),
             "singular": rng.uniform(0.05, 2.0, n)}[regime]
    v = gen.VALUE_FAMILIES["straddle" if seed % 2 else "uniform"](n, seed=seed)
    return dm_opt.GaussianMarket(cov, v, ratio * np.diag(cov))


def _forced(monkeypatch, mode):
    """Make the backend run the search as ``mode``: "python" (the whole search interpreted) or "compiled"."""
    def pick(chunk, n, *, threads=False):
        return (chunk.python, float("inf")) if mode == "python" else (chunk, None)

    monkeypatch.setattr(B, "pick_dfs", pick)


def _both(monkeypatch, m, problem, **kw):
    out = {}
    for mode in ("compiled", "python"):
        _forced(monkeypatch, mode)
        out[mode] = dm_opt.solve(m, problem, "bnb", local_search=False, **kw)   # local search is timed
        assert out[mode].extra["kernels"] == mode
    return out["compiled"], out["python"]


def _same(r, s, nodes=True):
    assert str(r.status) == str(s.status)
    assert r.objective == s.objective and r.bound == s.bound
    assert r.nodes == s.nodes or not nodes
    if r.profile is None:
        assert s.profile is None
    else:
        np.testing.assert_array_equal(r.profile, s.profile)


CASES = [(fam, n, seed, "plain") for fam in ("wishart", "equicorrelated", "block", "banded")
         for n, seed in ((6, 0), (11, 1), (14, 2))]
CASES += [("wishart", n, seed, regime) for regime in ("tiny", "huge", "singular") for n, seed in ((7, 3), (13, 4))]


@pytest.mark.parametrize("family, n, seed, regime", CASES)
def test_interpreted_search_equals_compiled_and_enumeration(monkeypatch, family, n, seed, regime):
    m = _market(n, seed, family, regime)
    for problem in PROBLEMS:
        r, s = _both(monkeypatch, m, problem)
        _same(r, s)
        assert r.is_optimal
        e = dm_opt.solve(m, problem, "enumerate", all_optima=True)
        tol = B.PRUNE_FRACTION * dm_opt.gaussian.backends.enumeration.default_tol(m, m.objective(problem))
        assert abs(r.objective - e.objective) <= 2 * tol
        assert any(np.array_equal(r.profile, o) for o in e.optima) or r.objective >= e.objective - tol
        if n <= 9:                                   # the independent oracle: fresh dense solves per subset
            best, _ = naive.brute_force(np.asarray(m.cov), m.noise_var, m.values, problem)
            assert abs(r.objective - best) <= 1e-7 * max(1.0, abs(best))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interpreted_search_with_side_constraints(monkeypatch, seed):
    from scipy.optimize import LinearConstraint

    n = 9
    m = _market(n, seed, "wishart", "tiny" if seed == 2 else "plain")
    rng = np.random.default_rng(seed)
    A, ub = rng.uniform(0.5, 2.0, (2, n)), np.array([5.0, 6.0])
    cases = [({"max_sharers": 6, "min_sharers": 2}, lambda a: 2 <= a.sum() <= 6),
             ([LinearConstraint(A, -np.inf, ub), {"max_sharers": 7}], lambda a: a.sum() <= 7 and np.all(A @ a <= ub)),
             ({"budget": 0.3}, None)]
    for c, feasible in cases:
        for problem in (("equilibrium", "decorrelated") if feasible is None else PROBLEMS):
            # tangent planes off: with rows the default refreshes planes at the incumbent on the clock
            # (backends.bnb.PLANE_REFRESH), so even two compiled runs can visit different node counts
            r, s = _both(monkeypatch, m, problem, constraints=c, tangent="off")
            _same(r, s)
            r, s = _both(monkeypatch, m, problem, constraints=c)
            _same(r, s, nodes=False)
            if feasible is not None:                 # brute force over the feasible profiles (fresh dense solves)
                best, _ = naive.brute_force(np.asarray(m.cov), m.noise_var, m.values, problem, feasible=feasible)
                assert abs(r.objective - best) <= 1e-7 * max(1.0, abs(best))


def test_switch_to_compiled_mid_search_continues_the_same_search(monkeypatch):
    """The search state lives in the caller's arrays: interpreted chunks then compiled ones
    visit the same nodes as a compiled search throughout."""
    m = _market(22, 5)
    _forced(monkeypatch, "compiled")
    ref = dm_opt.solve(m, "first_best", "bnb", local_search=False)
    assert ref.nodes > 40                      # more than the first interpreted chunks (1 + 2 + 4 + ... nodes)
    calls = []

    def pick(chunk, n, *, threads=False):
        def hybrid(*args):
            calls.append(len(calls) < 4)
            return chunk.python(*args) if len(calls) <= 4 else chunk(*args)
        return hybrid, None

    monkeypatch.setattr(B, "pick_dfs", pick)
    r = dm_opt.solve(m, "first_best", "bnb", local_search=False)
    assert calls[:4] == [True] * 4 and len(calls) > 4
    _same(ref, r)
    # the backend's own switch: an interpreter budget already spent compiles before the first chunk
    monkeypatch.setattr(B, "pick_dfs", lambda chunk, n, *, threads=False: (chunk.python, 0.0))
    s = dm_opt.solve(m, "first_best", "bnb", local_search=False)
    assert s.extra["kernels"] == "python, then compiled"
    _same(ref, s)


def test_pick_dfs_rules(monkeypatch):
    class Fake:
        pass

    stand_in = Fake()
    assert K.pick_dfs(stand_in, 10) == (stand_in, None)                       # monkeypatched stand-ins as is
    if K.dfs_chunk.compiled or K.dfs_chunk.cached():
        assert K.pick_dfs(K.dfs_chunk, 10) == (K.dfs_chunk, None)
    assert K.pick_dfs(K.dfs_chunk, 10, threads=True) == (K.dfs_chunk, None)
    assert K.pick_dfs(K.dfs_chunk, K.PYTHON_SEARCH_MAX_N + 1) == (K.dfs_chunk, None)
    # a kernel never compiled nor cached: interpreted, and the process's budget is spent as it runs
    from dm_opt.gaussian.kernels.posterior import Kernel

    def add_one(x):
        return x + 1

    fresh = Kernel(add_one)
    monkeypatch.setattr(K, "_PYTHON_SPENT", [0.0])
    run, left = K.pick_dfs(fresh, 10)
    assert run is not fresh and left == K.PYTHON_SEARCH_SECONDS and fresh._jit is None
    assert run(41) == 42 and fresh._jit is None                                # not compiled
    assert 0.0 < K._PYTHON_SPENT[0] < K.PYTHON_SEARCH_SECONDS
    assert K.pick_dfs(fresh, 10)[1] == K.PYTHON_SEARCH_SECONDS - K._PYTHON_SPENT[0]
    K._PYTHON_SPENT[0] = K.PYTHON_SEARCH_SECONDS                              # budget spent: compile
    assert K.pick_dfs(fresh, 10) == (fresh, None)


_COLD = r"""
import json, sys
import numpy as np
import dm_opt
from scipy.optimize import LinearConstraint
from dm_opt.core import generators as gen
from dm_opt.gaussian.kernels import bnb as K
K.PYTHON_SEARCH_SECONDS = float("inf")        # never switch on the clock (a loaded machine)
n = 14
cov = gen.COV_FAMILIES["wishart"](n, seed=3)
m = dm_opt.GaussianMarket(cov, gen.VALUE_FAMILIES["uniform"](n, seed=3), 0.5 * np.diag(cov))
out = []
for kw in ({}, {"constraints": [LinearConstraint(np.ones((1, n)), -np.inf, 8.0)]}):
    r = dm_opt.solve(m, "equilibrium", "bnb", local_search=False, **kw)
    out.append([r.extra["kernels"], r.extra["compile_seconds"], r.objective, r.profile.tolist(), r.nodes])
print(json.dumps({"numba": "numba" in sys.modules, "runs": out}))
"""


@pytest.mark.slow
def test_cold_cache_runs_interpreted_without_numba(tmp_path, monkeypatch):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["numba"] is False                     # not even imported
    from scipy.optimize import LinearConstraint

    n = 14
    cov = gen.COV_FAMILIES["wishart"](n, seed=3)
    m = dm_opt.GaussianMarket(cov, gen.VALUE_FAMILIES["uniform"](n, seed=3), 0.5 * np.diag(cov))
    _forced(monkeypatch, "compiled")
    for (kernels, compile_s, obj, prof, nodes), kw in zip(
            got["runs"], ({}, {"constraints": [LinearConstraint(np.ones((1, n)), -np.inf, 8.0)]}), strict=True):
        assert kernels == "python" and compile_s == 0.0
        ref = dm_opt.solve(m, "equilibrium", "bnb", local_search=False, **kw)
        assert obj == ref.objective and prof == ref.profile.tolist() and nodes == ref.nodes


_INDEX = r"""
import json
from dm_opt.core.numba_cache import has_cache_index, index_path
from dm_opt.gaussian.kernels import bnb as K
f = K._gprime
before = has_cache_index(f.py_func)
f.jit(2.0, 1.0)                                    # compile a small kernel into the (empty) cache
print(json.dumps({"before": before, "after": has_cache_index(f.py_func), "ours": index_path(f.py_func),
                  "numba": f.jit._cache._cache_file._index_path, "dfs": has_cache_index(K.dfs_chunk.py_func)}))
"""


@pytest.mark.slow
def test_cache_index_check_agrees_with_numba(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _INDEX], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["ours"] == got["numba"] and got["ours"].startswith(str(tmp_path))
    assert got["before"] is False and got["after"] is True and got["dfs"] is False


def test_cache_index_stamp_and_version(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    numba = sys.modules.get("numba")
    if numba is not None:
        monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    f = K._gprime.py_func
    path = numba_cache.index_path(f)
    assert path.startswith(str(tmp_path)) and path.endswith(".nbi")
    assert not numba_cache.has_cache_index(f)
    import hashlib
    import inspect

    with open(inspect.getfile(f), "rb") as fh:
        digest = hashlib.sha256(fh.read()).digest()
    version = numba_cache._numba_version()
    assert version
    os.makedirs(os.path.dirname(path), exist_ok=True)

    def write(ver, stamp):
        with open(path, "wb") as fh:
            pickle.dump(ver, fh, protocol=-1)
            fh.write(pickle.dumps((stamp, {}), protocol=-1))

    write(version, digest)
    assert numba_cache.has_cache_index(f)
    write(version, hashlib.sha256(b"another source").digest())      # stale: the source changed
    assert not numba_cache.has_cache_index(f)
    write("0.0.1", digest)                                            # another numba wrote it
    assert not numba_cache.has_cache_index(f)
    with open(path, "wb") as fh:                                      # truncated
        fh.write(b"\x80\x05")
    assert not numba_cache.has_cache_index(f)


def test_python_twin_is_the_same_source():
    """``Kernel.python`` runs ``py_func``'s code; kernels it calls are their plain versions."""
    py = K.dfs_chunk.python
    assert py.__code__ is K.dfs_chunk.py_func.__code__
    g = py.__globals__
    assert g["node_bound"] is K.node_bound.python and g["add_signal_rows"] is K.add_signal_rows.python
    assert g["node_bound"].__globals__ is g                           # the plain namespace throughout
