"""GLP market construction and validation (docs/spec.md §2): payoffs of the slides and
every error path of the constructor and the general-payoff constructor."""

import numpy as np
import pytest

from dm_opt import InfoDesignMarket, InstanceError
from dm_opt.info_design.market import PRIOR_SUM_TOL


def test_slide_payoffs():
    """u(a,ω) = max(ω − a, 0), π(a,ω) = a·1[ω ≥ a], v = γ_u u + γ_π π, indexed [a, ω]."""
    m = InfoDesignMarket([1, 2, 4], [0.2, 0.3, 0.5], 0.5, 0.7, 0.3, fees=[1, 3])
    assert m.n == 3 and m.m == 2
    np.testing.assert_array_equal(m.u, [[0, 1, 3], [0, 0, 1]])
    np.testing.assert_array_equal(m.pi, [[1, 1, 1], [0, 0, 3]])
    np.testing.assert_allclose(m.v, 0.7 * m.u + 0.3 * m.pi)
    assert not m.is_general
    with pytest.raises(ValueError):
        m.u[0, 0] = 5.0                      # read-only


def test_default_fees_are_types_and_prior_renormalised():
    m = InfoDesignMarket([1, 2], [0.4, 0.6 + 0.5 * PRIOR_SUM_TOL], 0.1, 1, 0)
    np.testing.assert_array_equal(m.fees, m.types)
    assert abs(m.prior.sum() - 1.0) < 1e-15


def test_consumer_utility():
    m = InfoDesignMarket([1, 2], [0.4, 0.6], 0.1, 1, 0)
    x = np.array([[1.0, 0.25], [0.0, 0.75]])
    np.testing.assert_allclose(m.consumer_utility(x), [0.0, 0.25])


@pytest.mark.parametrize("kw, field", [
    (dict(types=[2, 1]), "types[1]"),
    (dict(types=[1, 1]), "types[1]"),
    (dict(types=[1, float("nan")]), "types[1]"),
    (dict(types=[1, float("inf")]), "types[1]"),
    (dict(types="12"), "types"),
    (dict(types=[]), "types"),
    (dict(prior=[0.5, 0.6]), "prior"),
    (dict(prior=[1.2, -0.2]), "prior[1]"),
    (dict(prior=[0.5]), "prior"),
    (dict(prior=[0.5, float("nan")]), "prior[1]"),
    (dict(reservation=float("nan")), "reservation"),
    (dict(reservation="low"), "reservation"),
    (dict(reservation=True), "reservation"),
    (dict(gamma_u=-1.0), "gamma_u"),
    (dict(gamma_pi=float("inf")), "gamma_pi"),
    (dict(fees=[2, 1]), "fees[1]"),
    (dict(fees=[1, float("nan")]), "fees[1]"),
    (dict(fees=[[1, 2]]), "fees"),
])
def test_validation_errors(kw, field):
    args = dict(types=[1, 2], prior=[0.4, 0.6], reservation=0.5, gamma_u=1.0, gamma_pi=0.0)
    args.update(kw)
    with pytest.raises(InstanceError) as e:
        InfoDesignMarket(**args)
    assert e.value.field == field


def test_general_payoffs():
    u = [[1, 2], [0, 1], [0, 0]]
    pi = [[1, 1], [0, 2], [0, 0]]
    v = [[0, 1], [2, 2], [0, 1]]
    m = InfoDesignMarket.from_payoffs(u, pi, v, [0.5, 0.5], 0.2)
    assert (m.m, m.n) == (3, 2) and m.is_general
    np.testing.assert_array_equal(m.types, [0, 1])
    np.testing.assert_array_equal(m.fees, [0, 1, 2])


@pytest.mark.parametrize("kw, field", [
    (dict(u=[1, 2]), "u"),
    (dict(u=[[1, float("nan")], [0, 1]]), "u[0,1]"),
    (dict(pi=[[1, 1]]), "pi"),
    (dict(v=[[1, 1, 1], [1, 1, 1]]), "v"),
    (dict(prior=[0.2, 0.2]), "prior"),
    (dict(types=[3, 1]), "types[1]"),
    (dict(types=[1, 2, 3]), "types"),
    (dict(fees=[0, 0]), "fees[1]"),
    (dict(reservation=float("-inf")), "reservation"),
])
def test_general_validation_errors(kw, field):
    args = dict(u=[[1, 2], [0, 1]], pi=[[1, 1], [0, 2]], v=[[1, 1], [0, 2]], prior=[0.5, 0.5], reservation=0.1)
    args.update(kw)
    u, pi, v, prior, r = args.pop("u"), args.pop("pi"), args.pop("v"), args.pop("prior"), args.pop("reservation")
    with pytest.raises(InstanceError) as e:
        InfoDesignMarket.from_payoffs(u, pi, v, prior, r, **args)
    assert e.value.field == field


def test_database_validation():
    m = InfoDesignMarket([1, 2], [0.4, 0.6], 0.5, 1.0, 0.0)
    with pytest.raises(InstanceError):
        m.database([0.1, -0.1])
    with pytest.raises(InstanceError):
        m.database([0.1])
