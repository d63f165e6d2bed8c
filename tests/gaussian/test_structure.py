"""Structural facts of the AMMO model checked on random markets (hypothesis): leakage monotone in
the sharing set (Lemma 1), nonnegative prices (Thm 2, Thm 6), first best ≥ equilibrium surplus
(Prop 1), agreement of every fast exact method, the community search against dense enumeration,
and the uniform-tax sweep's sharers nonincreasing in the tax (§6.1: slope of a convex envelope)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import dm_opt
from dm_opt.gaussian.taxes import uniform_tax_sweep
from tests.gaussian.strategies import FAST, community_markets, gaussian_markets, profile_pairs


@FAST
@given(gaussian_markets(), st.data())
def test_leakage_monotone_in_sharing(m, data):
    a, b = data.draw(profile_pairs(m.n))
    assert np.all(m.leakage(b) >= m.leakage(a) - 1e-12)
    assert m.surplus(a) == np.dot(1 - m.values, m.leakage(a))


@FAST
@given(gaussian_markets())
def test_prices_nonnegative_and_first_best_dominates(m):
    fb = dm_opt.solve(m, "first_best", method="enumerate")
    eq = dm_opt.solve(m, "equilibrium", method="enumerate", all_optima=True)
    dc = dm_opt.solve(m, "decorrelated", method="enumerate")
    tol = 1e-9 * max(1.0, float(np.sum((1 + m.values) * m.sigma2)))
    for a in eq.optima:
        assert np.all(m.prices(a) >= -tol)
        assert fb.surplus >= m.surplus(a) - tol                   # Prop 1: no profile beats the first best
    # (de-correlation changes the information structure: its surplus may exceed the first best's)
    assert np.all(dc.prices >= -tol) and np.all(fb.prices == 0)


@FAST
@given(gaussian_markets(max_n=5), st.sampled_from(["first_best", "equilibrium", "decorrelated"]))
def test_fast_exact_methods_agree(m, problem):
    ref = dm_opt.solve(m, problem, method="enumerate", all_optima=True)
    tol = 1e-9 * max(1.0, float(np.sum((1 + m.values) * m.sigma2)))
    for method in ("bnb", "auto"):
        r = dm_opt.solve(m, problem, method=method)
        assert abs(r.objective - ref.objective) <= tol
        assert any(np.array_equal(r.profile, o) for o in ref.optima)


@FAST
@given(community_markets(), st.sampled_from(["first_best", "equilibrium", "decorrelated"]))
def test_community_search_matches_dense_enumeration(cm, problem):
    r = dm_opt.solve(cm, problem, method="community")
    ref = dm_opt.solve(cm.to_gaussian(), problem, method="enumerate")
    tol = 1e-9 * max(1.0, float(np.sum((1 + cm.values) * cm.sigma2)))
    assert abs(r.objective - ref.objective) <= tol


@FAST
@given(gaussian_markets(max_n=4))
def test_uniform_tax_sharers_nonincreasing(m):
    sw = uniform_tax_sweep(m)
    sharers = [p.sharers for p in sw.pieces]
    assert sharers == sorted(sharers, reverse=True)
    assert sw.pieces[0].lo == 0.0 and sw.pieces[-1].hi == sw.t_max
    assert all(p.hi == q.lo for p, q in zip(sw.pieces[:-1], sw.pieces[1:]))
