import numpy as np
import pytest

import dm_opt
from dm_opt.gaussian.leakage import TabulatedMarket, check_properties


def table2(I0, I1):
    """n = 2 table from {mask: leakage} dicts per user (mask 1 = {0}, 2 = {1}, 3 = {0,1})."""
    t = np.zeros((4, 2))
    for m in range(1, 4):
        t[m] = [I0[m], I1[m]]
    return t


def test_flags_non_submodular_table_with_property_user_and_profile():
    # user 0's own marginal: 0.1 when alone, 0.9 - 0.2 = 0.7 when user 1 also shares -> Property 4 fails
    t = table2({1: 0.1, 2: 0.2, 3: 0.9}, {1: 0.1, 2: 0.5, 3: 0.55})
    rep = check_properties(TabulatedMarket(t, [1, 1]))
    assert rep.failed == [4]
    assert rep.holds[3] is True and rep.holds[1] is None and rep.holds[2] is None
    v = rep.first(4)
    assert (v.user, v.other, v.profile) == (0, 1, "00")
    assert v.amount == pytest.approx(0.6)
    assert "Property 4 (submodularity)" in str(v)
    assert "FAILS" in str(rep)


def test_flags_non_monotone_table():
    # user 1's leakage drops from 0.5 to 0.4 when user 0 joins the sharers
    t = table2({1: 0.3, 2: 0.1, 3: 0.35}, {1: 0.1, 2: 0.5, 3: 0.4})
    rep = check_properties(TabulatedMarket(t, [1, 1]))
    assert 3 in rep.failed
    v = rep.first(3)
    assert (v.user, v.other, v.profile) == (1, 0, "01")


def test_properties_1_and_2_use_the_dependence_structure():
    t = table2({1: 0.3, 2: 0.1, 3: 0.35}, {1: 0.1, 2: 0.5, 3: 0.55})
    indep = np.zeros((2, 2), bool)
    rep = check_properties(TabulatedMarket(t, [1, 1]), dependence=indep)
    assert rep.failed == [1]                       # user 0 independent, yet her data leaks 0.1 about user 1
    assert (rep.first(1).user, rep.first(1).other) == (1, 0)
    dep = np.array([[False, True], [True, False]])
    t0 = table2({1: 0.3, 2: 0.0, 3: 0.3}, {1: 0.0, 2: 0.5, 3: 0.5})
    rep = check_properties(TabulatedMarket(t0, [1, 1]), dependence=dep)
    assert rep.failed == [2]                       # dependent, yet user 1 shares and nothing leaks about 0
    assert rep.counts[2] == 2


def test_gaussian_mse_satisfies_properties_with_covariance_dependence():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(5, 5))
    S = A @ A.T + np.eye(5)
    S[4, :4] = S[:4, 4] = 0.0
    g = dm_opt.GaussianMarket(S, np.ones(5))
    rep = check_properties(g, dependence=S != 0)
    assert rep.ok and rep.holds == {1: True, 2: True, 3: True, 4: True}


def test_checker_limits_and_bad_dependence():
    t = table2({1: 0.1, 2: 0.0, 3: 0.1}, {1: 0.0, 2: 0.1, 3: 0.1})
    with pytest.raises(dm_opt.InstanceError, match="dependence"):
        check_properties(TabulatedMarket(t, [1, 1]), dependence=np.zeros((3, 3), bool))
    with pytest.raises(dm_opt.LimitExceeded):
        check_properties(TabulatedMarket(t, [1, 1]), max_n=1)
