"""The branch-and-bound backend's generic path on the leakage oracles of this package (vs enumeration)."""

import numpy as np
import pytest

import dm_opt
from dm_opt.gaussian.leakage import MixtureMarket, MutualInformationMarket, TabulatedMarket
from tests.support.leakage_helpers import random_cov


def markets(seed, n=8):
    rng = np.random.default_rng(seed)
    covs = [random_cov(rng, n) for _ in range(2)]
    v = rng.uniform(0, 2.5, n)
    yield MutualInformationMarket(covs[0], v)
    yield MixtureMarket([0.4, 0.6], covs, v)
    yield TabulatedMarket.from_market(dm_opt.GaussianMarket(covs[1], v))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("problem", ["first_best", "equilibrium", "decorrelated"])
def test_bnb_generic_path_equals_enumeration(seed, problem):
    try:
        dm_opt.core.registry.get_backend("bnb")
    except dm_opt.DmOptError as exc:  # pragma: no cover - backend owned elsewhere
        pytest.skip(f"bnb backend unavailable: {exc}")
    for m in markets(seed):
        ref = dm_opt.solve(m, problem, "enumerate", all_optima=True)
        got = dm_opt.solve(m, problem, "bnb")
        assert got.is_optimal
        assert got.objective == pytest.approx(ref.objective, rel=1e-9, abs=1e-12)
        assert any(np.array_equal(o, got.profile) for o in ref.optima)


def test_milp_refuses_non_gaussian_oracles():
    try:
        dm_opt.core.registry.get_backend("milp")
    except dm_opt.DmOptError as exc:  # pragma: no cover
        pytest.skip(f"milp backend unavailable: {exc}")
    m = next(markets(0, n=4))
    with pytest.raises(dm_opt.ProblemError):
        dm_opt.solve(m, "equilibrium", "milp")


def test_bnb_refuses_tables_violating_the_properties_its_bounds_need():
    """A user table that is not submodular (Property 4) would make the bounds invalid: refused."""
    t = np.zeros((4, 2))
    t[1], t[2], t[3] = [0.1, 0.1], [0.2, 0.5], [0.9, 0.55]   # user 0's own marginal grows: 0.1 -> 0.7
    m = TabulatedMarket(t, [1.5, 0.5])
    with pytest.raises(dm_opt.ProblemError, match="Property 4"):
        dm_opt.solve(m, "first_best", "bnb")
    assert dm_opt.solve(m, "first_best", "enumerate").is_optimal   # enumeration needs no property
