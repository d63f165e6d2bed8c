"""Fake backends for harness tests: registered in the real registry, removed afterwards."""

import numpy as np
import pytest

from dm_opt.core import registry as base
from dm_opt.core.result import Termination


def _register_temp(cls):
    base.register(cls)
    return cls


@pytest.fixture
def fake_backends():
    """Registers three test backends and removes them after the test:

    * ``wrong-test`` — claims OPTIMAL for the all-zero profile (wrong unless that is optimal);
    * ``badbound-test`` — stops at a "time limit" with the all-zero profile and a bound of
      ``objective(all-zero)``, which cuts off the true optimum;
    * ``oracle-test`` — an independent brute force (fresh solves per subset, tests/support/naive.py),
      claiming OPTIMAL: must *agree*.
    """
    from tests.support import naive

    class Wrong(base.Backend):
        name = "wrong-test"

        def run(self, market, objective, **kw):
            return base.RawSolution(np.zeros(market.n, np.int8), Termination.OPTIMAL, 0.0, nodes=1)

    class BadBound(base.Backend):
        name = "badbound-test"

        def run(self, market, objective, **kw):
            a = np.zeros(market.n, np.int8)
            return base.RawSolution(a, Termination.TIME_LIMIT, market.evaluate(objective, a), nodes=1)

    class Oracle(base.Backend):
        name = "oracle-test"

        def run(self, market, objective, **kw):
            best, opt = naive.brute_force(np.asarray(market.cov), market.noise_var, market.values, objective.name)
            return base.RawSolution(opt[0], Termination.OPTIMAL, best, nodes=2 ** market.n)

    names = []
    for cls in (Wrong, BadBound, Oracle):
        _register_temp(cls)
        names.append(cls.name)
    yield names
    for name in names:
        base.unregister(name)


@pytest.fixture(autouse=True)
def _no_git(monkeypatch):
    """The harness records ``git rev-parse HEAD``; the tests never run git (tests that check the
    commit answer it with their own fake, test_bench_outputs.fake_git)."""
    import subprocess

    from dm_opt.gaussian.bench import report

    real_run = subprocess.run

    def no_git(cmd, *args, **kw):
        if list(cmd[:1]) == ["git"]:
            raise FileNotFoundError("git (disabled in the tests)")
        return real_run(cmd, *args, **kw)

    monkeypatch.setattr(report.subprocess, "run", no_git)
