import numpy as np
import pytest

import dm_opt
from dm_opt.gaussian.leakage import TabulatedMarket


def good_table():
    return np.array([[0, 0], [0.5, 0.1], [0.1, 0.5], [0.6, 0.6]], dtype=float)


@pytest.mark.parametrize("table, field, text", [
    (np.zeros((3, 2)), "table", "2^n = 4 rows"),
    (np.zeros(4), "table", "2-d"),
    ([[0, 0], [0.5, float("nan")], [0.1, 0.5], [0.6, 0.6]], "table[1,1]", "finite"),
    ([[0, 0], [0.5, -0.1], [0.1, 0.5], [0.6, 0.6]], "table[1,1]", ">= 0"),
    ([[0.2, 0], [0.5, 0.1], [0.1, 0.5], [0.6, 0.6]], "table[0,0]", "nobody shares"),
    ([["a", 0], [0.5, 0.1], [0.1, 0.5], [0.6, 0.6]], "table", "real numbers"),
])
def test_table_validation_names_the_field(table, field, text):
    with pytest.raises(dm_opt.InstanceError) as exc:
        TabulatedMarket(table, [1, 1])
    assert exc.value.field == field and text in str(exc.value)


def test_values_and_dependence_validation():
    with pytest.raises(dm_opt.InstanceError, match="values"):
        TabulatedMarket(good_table(), [1, 1, 1])
    with pytest.raises(dm_opt.InstanceError, match="values\\[1\\]"):
        TabulatedMarket(good_table(), [1, -1])
    with pytest.raises(dm_opt.InstanceError, match="dependence"):
        TabulatedMarket(good_table(), [1, 1], dependence=np.ones((2, 2)))
    with pytest.raises(dm_opt.InstanceError, match="dependence\\[0,1\\]"):
        TabulatedMarket(good_table(), [1, 1], dependence=np.array([[False, True], [False, False]]))


def test_own_leakage_is_table_difference():
    m = TabulatedMarket(good_table(), 0.5)
    np.testing.assert_allclose(m.own_leakage([1, 1]), [0.6 - 0.1, 0.6 - 0.1])
    np.testing.assert_allclose(m.own_leakage([1, 0]), [0.5, 0.0])
    leak, own = m.leakage_block(0, 4)
    np.testing.assert_allclose(leak, good_table())
    np.testing.assert_allclose(own[3], [0.5, 0.5])


@pytest.mark.parametrize("problem", ["first_best", "equilibrium", "decorrelated"])
def test_tabulated_gaussian_solves_like_the_gaussian_market(problem):
    rng = np.random.default_rng(7)
    A = rng.normal(size=(7, 7))
    g = dm_opt.GaussianMarket(A @ A.T / 7 + 0.2 * np.eye(7), rng.uniform(0, 2, 7))
    t = TabulatedMarket.from_market(g)
    rg = dm_opt.solve(g, problem, "enumerate", all_optima=True)
    rt = dm_opt.solve(t, problem, "enumerate", all_optima=True)
    assert rt.objective == pytest.approx(rg.objective, rel=1e-9, abs=1e-12)
    assert [o.tolist() for o in rt.optima] == [o.tolist() for o in rg.optima]
    np.testing.assert_allclose(rt.prices, rg.prices, rtol=1e-8, atol=1e-12)
    assert rt.surplus == pytest.approx(rg.surplus, rel=1e-9, abs=1e-12)


def test_from_function_builds_the_table():
    m = TabulatedMarket.from_function(3, lambda A: np.array([0.1 * len(A)] * 3), [0.5, 0.5, 0.5])
    assert m.table.shape == (8, 3)
    np.testing.assert_allclose(m.leakage([1, 1, 0]), [0.2, 0.2, 0.2])
