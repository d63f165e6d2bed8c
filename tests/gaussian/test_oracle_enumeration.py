import numpy as np
import pytest

import dm_opt
from dm_opt.gaussian.backends.enumeration import default_tol, enumerate_market
from dm_opt.gaussian.backends.oracle_enumeration import enumerate_oracle
from dm_opt.gaussian.leakage import MixtureMarket, OracleMarketMixin
from dm_opt.gaussian.objectives import LeakageObjective


class PlainOracle:
    """A Gaussian market seen only through the protocol (no block walk, no mixin)."""

    def __init__(self, g):
        self.g = g
        self.n = g.n
        self.values = g.values

    def leakage(self, a):
        return self.g.leakage(a)

    def own_leakage(self, a):
        return self.g.own_leakage(a)


class MixinOracle(OracleMarketMixin):
    """The same oracle with the shared market methods of the mixin."""

    def __init__(self, g):
        self.g = g
        self._values = g.values

    @property
    def n(self):
        return self.g.n

    def leakage(self, a):
        return self.g.leakage(a)

    def own_leakage(self, a):
        return self.g.own_leakage(a)


def random_market(seed, n):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    return dm_opt.GaussianMarket(A @ A.T / n + 0.3 * np.eye(n), rng.uniform(0, 2.5, n),
                                 rng.uniform(0.5, 1.5, n))


def objectives(g, rng):
    yield from (g.objective(p) for p in ("first_best", "equilibrium", "decorrelated"))
    n = g.n
    yield LeakageObjective("weighted", rng.normal(size=n), rng.normal(size=n), rng.uniform(0, 2, n),
                           rng.uniform(0, 0.1, n))


@pytest.mark.parametrize("seed", range(4))
def test_generic_enumeration_equals_compiled_kernel(seed):
    g = random_market(seed, 7)
    plain = PlainOracle(g)
    for obj in objectives(g, np.random.default_rng(seed)):
        tol = default_tol(g, obj)
        ref = enumerate_market(g, obj, tol=tol, all_optima=True, workers=1)
        got = enumerate_oracle(plain, obj, tol=tol, all_optima=True, block_bits=4)
        assert got.extra["walk_best"] == pytest.approx(ref.extra["walk_best"], rel=1e-9, abs=1e-12)
        assert [o.tolist() for o in got.optima] == [o.tolist() for o in ref.optima]
        assert got.profile.tolist() == ref.profile.tolist()
        assert got.nodes == 2 ** 7


def test_solve_accepts_mixin_oracles_and_matches_gaussian():
    g = random_market(11, 8)
    w = MixinOracle(g)
    for problem in ("first_best", "equilibrium", "decorrelated"):
        rg = dm_opt.solve(g, problem, "enumerate", all_optima=True)
        rw = dm_opt.solve(w, problem, "enumerate", all_optima=True)
        assert rw.objective == pytest.approx(rg.objective, rel=1e-9)
        assert [o.tolist() for o in rw.optima] == [o.tolist() for o in rg.optima]
        np.testing.assert_allclose(rw.prices, rg.prices, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(rw.leakage, rg.leakage, rtol=1e-9, atol=1e-12)


def test_solve_rejects_objects_without_the_protocol():
    with pytest.raises(dm_opt.ProblemError, match="missing"):
        dm_opt.solve(PlainOracle(random_market(0, 3)), "equilibrium")
    with pytest.raises(dm_opt.ProblemError, match="GaussianMarket or a leakage-oracle"):
        dm_opt.solve(object(), "equilibrium")


def test_time_limit_returns_incumbent_with_valid_bound():
    rng = np.random.default_rng(4)
    covs = [rng.normal(size=(9, 9)) for _ in range(2)]
    covs = [A @ A.T / 9 + 0.3 * np.eye(9) for A in covs]
    m = MixtureMarket([0.5, 0.5], covs, rng.uniform(0, 2.5, 9))
    for problem in ("first_best", "equilibrium", "decorrelated"):
        obj = m.objective(problem)
        full = enumerate_oracle(m, obj, tol=1e-12)
        part = enumerate_oracle(m, obj, tol=1e-12, time_limit=1e-9, block_bits=3)
        assert part.status is dm_opt.Termination.TIME_LIMIT
        assert part.extra["blocks_done"] == 1
        assert part.bound >= full.extra["walk_best"] - 1e-12   # proven bound (Properties 3-4 hold here)
        assert m.evaluate(obj, part.profile) <= full.extra["walk_best"] + 1e-12


def test_oracle_enumeration_size_limit():
    g = random_market(0, 4)
    with pytest.raises(dm_opt.LimitExceeded, match="max_n"):
        enumerate_oracle(PlainOracle(g), g.objective("equilibrium"), tol=0.0, max_n=3)
