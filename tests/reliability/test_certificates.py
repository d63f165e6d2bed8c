"""Certificates: the SolveResult invariants hook of tests/conftest.py, and the tie tolerance.

* The conftest wraps ``SolveResult.__post_init__`` for the whole session; these tests make sure the
  wrapper is installed and actually rejects broken certificates (so the suite-wide check cannot
  silently be a no-op).
* The documented default tie tolerance is ``1e-9 × scale`` with ``scale = Σ_i (|c_i|+|d_i|+|e_i|) σ_i²``
  of the problem's weights (docs/spec.md §1.1; dm_opt/gaussian/backends/enumeration.py docstring).
  Every other oracle in the suite takes ``tol=r.tie_tol`` from the result under test, so here it is pinned from an
  independently computed scale, and a near-tie of ~1e-7·scale must not be reported as a tie.
"""

import math
import os

import numpy as np
import pytest

import dm_opt
from dm_opt.core.registry import available_methods, get_backend
from dm_opt.gaussian.result import SolveResult
from tests.support import oracle as orc

PROBLEMS = orc.PROBLEMS


# ------------------------------------------------------------ the conftest hook
def _result(status="optimal", objective=1.0, bound=1.0, tie_tol=1e-9, profile=(1, 0)):
    return SolveResult(problem="first_best", method="test", status=status, profile=np.array(profile),
                       objective=objective, bound=bound, gap=0.0, prices=np.zeros(2), leakage=np.zeros(2),
                       surplus=0.0, tie_tol=tie_tol)


def test_hook_is_installed():
    if os.environ.get("DM_OPT_NO_CERTIFICATE_CHECK"):
        pytest.skip("certificate check switched off by DM_OPT_NO_CERTIFICATE_CHECK")
    assert hasattr(SolveResult.__post_init__, "__wrapped__"), "tests/conftest.py did not wrap SolveResult"


def test_valid_certificates_pass():
    _result()
    _result(bound=1.0 + 1e-9)                                     # within tie_tol
    _result(status="time_limit", objective=1.0, bound=5.0)        # unfinished: any bound above
    _result(status="time_limit", objective=-math.inf, bound=math.inf, profile=())
    _result(status="infeasible", objective=math.nan, bound=math.nan, profile=())
    _result(objective=1e300, bound=1e300 * (1 + 1e-13))           # round-off slack


@pytest.mark.parametrize("kw", [
    dict(objective=math.nan),                                # optimal without a finite objective
    dict(objective=math.inf, bound=math.inf),
    dict(profile=()),                                        # optimal without a profile
    dict(bound=math.inf),                                    # optimal without a finite bound
    dict(bound=1.0 + 1e-6),                                  # gap above the tie tolerance
    dict(bound=1.0 - 1e-6),                                  # bound below the objective
    dict(status="time_limit", bound=0.5),                    # bound below the objective, any status
    dict(tie_tol=math.nan),
])
def test_broken_certificates_are_rejected(kw):
    if os.environ.get("DM_OPT_NO_CERTIFICATE_CHECK"):
        pytest.skip("certificate check switched off by DM_OPT_NO_CERTIFICATE_CHECK")
    with pytest.raises(AssertionError, match="certificate"):
        _result(**kw)


@pytest.mark.no_certificate_check
def test_opt_out_marker():
    _result(bound=0.0)


# ------------------------------------------------------------ the tie tolerance
def _scale(problem, sigma2, v):
    """Σ (|c|+|d|+|e|) σ² of the problem's weights, re-derived (first best c = 1−v; equilibrium
    c = 1, e = v; decorrelated d = 1−v — see tests/support/oracle.py Oracle.weights)."""
    w = (1.0 + v) if problem == "equilibrium" else np.abs(1.0 - v)
    return math.fsum(w * sigma2)


def _dense_backends():
    out = []
    for m in available_methods():
        if m == "community":
            continue
        try:
            get_backend(m)
        except dm_opt.DmOptError:
            continue
        out.append(m)
    return out


@pytest.mark.parametrize("method", _dense_backends())
@pytest.mark.parametrize("seed", range(4))
def test_default_tie_tol_is_1e9_of_the_scale(method, seed):
    rng = np.random.default_rng(seed)
    n = 5
    G = rng.standard_normal((n, n))
    S = (G @ G.T / n + 0.3 * np.eye(n)) * 10.0 ** rng.uniform(-3, 3)
    v = rng.uniform(0.0, 2.5, n)
    m = dm_opt.GaussianMarket(S, v, rng.uniform(0.2, 2.0, n) * np.diag(S))
    for problem in PROBLEMS:
        r = dm_opt.solve(m, problem, method=method)
        expected = 1e-9 * _scale(problem, np.diag(S), v)
        assert r.tie_tol == pytest.approx(expected, rel=1e-12, abs=0.0), (problem, r.tie_tol, expected)


def test_default_tie_tol_community():
    if "community" not in available_methods():
        pytest.skip("no community backend")
    m = dm_opt.CommunityMarket([2, 3], [1.5, 0.7], [0.3, 0.5], 0.2, [0.2, 1.4, 0.9, 2.0, 1.0], [1.0, 0.5])
    for problem in PROBLEMS:
        r = dm_opt.solve(m, problem, method="community")
        expected = 1e-9 * _scale(problem, np.diag(m.cov_dense()), np.asarray(m.values))
        assert r.tie_tol == pytest.approx(expected, rel=1e-12, abs=0.0)


def near_tie_market(delta=2e-7):
    """Independent users; user 1 (v = 0) always shares; user 0 has v = 1 − δ, so sharing or not
    differs by exactly (1 − v_0)·σ⁴/(σ² + τ²) = δ/2 = 1e-7 in every problem (scale 1 + δ, resp. 3 − δ)."""
    S = np.eye(2)
    v = np.array([1.0 - delta, 0.0])
    return S, np.ones(2), v


@pytest.mark.parametrize("problem", PROBLEMS)
def test_a_near_tie_of_1e7_scale_is_not_a_tie(problem):
    S, tau2, v = near_tie_market()
    o = orc.Oracle.gaussian(S, tau2, v)
    scale = o.scale(problem)
    diff = float(o.objective(problem, (1, 1)) - o.objective(problem, (0, 1)))
    assert 2e-8 * scale < diff < 2e-7 * scale                 # the instance is what it claims to be
    assert o.optima(problem, 1e-9 * scale) == {(1, 1)}
    m = dm_opt.GaussianMarket(S, v, tau2)
    r = dm_opt.solve(m, problem, method="enumerate", all_optima=True)
    assert r.is_optimal
    assert [o_.tolist() for o_ in r.optima] == [[1, 1]], "a 1e-7·scale difference reported as a tie"
    assert r.profile.tolist() == [1, 1]
    assert r.tie_tol == pytest.approx(1e-9 * _scale(problem, np.diag(S), v), rel=1e-12, abs=0.0)
    for method in _dense_backends():
        r = dm_opt.solve(m, problem, method=method)
        assert r.profile.tolist() == [1, 1], (method, r.profile)
