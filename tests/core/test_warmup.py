"""``dm-opt warmup``: compiles the kernels a first solve needs, so that solve compiles nothing."""

import json
import os
import subprocess
import sys

import pytest

import dm_opt.warmup as W

_CHILD = r"""
import json
from numba.core import event as ev

compiled = []


class _Listener(ev.Listener):
    def on_start(self, event):
        compiled.append(event.data["dispatcher"].py_func.__qualname__)

    def on_end(self, event):
        pass


ev.register("numba:compile", _Listener())
import dm_opt
from dm_opt.core.generators import COV_FAMILIES

m = dm_opt.GaussianMarket(COV_FAMILIES["wishart"](30, seed=3), values=[0.4 + 0.07 * i for i in range(30)])
for problem in ("equilibrium", "first_best", "decorrelated"):
    assert dm_opt.solve(m, problem, method="bnb").status == "optimal"
small = dm_opt.load("ammo/wishart_n16_seed1")
assert dm_opt.solve(small, "first_best", method="enumerate").status == "optimal"
print(json.dumps(compiled))
"""


def test_warmup_runs_every_case_in_order_and_does_not_hide_failures(monkeypatch):
    ran = []
    monkeypatch.setattr(W, "CASES", [("a", "first", lambda: ran.append("a")), ("b", "second", lambda: ran.append("b"))])
    out = W.warmup(jobs=1)
    assert ran == ["a", "b"] and [name for name, _ in out] == ["a", "b"] and all(t >= 0 for _, t in out)

    def broken():
        raise RuntimeError("kernel failed to compile")

    monkeypatch.setattr(W, "CASES", [("broken", "fails", broken)])
    with pytest.raises(RuntimeError, match="kernel failed"):
        W.warmup(jobs=1)


def test_warmup_cli_refuses_bad_jobs_in_one_line():
    r = subprocess.run([sys.executable, "-m", "dm_opt.cli", "warmup", "--jobs", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == ["dm-opt: error: --jobs must be >= 1, got 0"]


@pytest.mark.slow
def test_after_warmup_a_first_bnb_solve_compiles_nothing(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    w = subprocess.run([sys.executable, "-m", "dm_opt.cli", "warmup", "--jobs", "2"], env=env,
                       capture_output=True, text=True, timeout=1800)
    assert w.returncode == 0, w.stderr
    r = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []


def test_warmup_compiles_instead_of_running_the_search_in_the_interpreter(monkeypatch):
    """With a cold cache a first bnb search runs in the interpreter (kernels.bnb.pick_dfs); the warm-up's
    point is to compile, so inside its cases the compiled kernel is picked, and the rule is restored after."""
    from dm_opt.gaussian.kernels import bnb as K
    from dm_opt.gaussian.kernels.posterior import Kernel

    monkeypatch.setattr(Kernel, "compiled", property(lambda self: False))
    monkeypatch.setattr(Kernel, "cached", lambda self: False)            # as with an empty cache
    monkeypatch.setattr(K, "_PYTHON_SPENT", [0.0])
    assert K.pick_dfs(K.dfs_chunk, 10)[1] == K.PYTHON_SEARCH_SECONDS       # interpreted first
    seen = []
    monkeypatch.setattr(W, "CASES", [("pick", "what a case sees", lambda: seen.append(K.pick_dfs(K.dfs_chunk, 10)))])
    W.warmup(jobs=1)
    assert seen == [(K.dfs_chunk, None)]
    assert K.pick_dfs(K.dfs_chunk, 10)[1] == K.PYTHON_SEARCH_SECONDS > 0    # restored after
