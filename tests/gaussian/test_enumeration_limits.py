"""Enumeration under a time limit: a walk that did not finish is never reported optimal.

Serial (``workers=1``) and threaded paths alike: at n = 22–24 a 0.2 s limit cannot cover the 2^n
profiles, so the status must be ``time_limit`` (or ``interrupted``), the incumbent genuine (its
objective re-evaluated at the profile) and the bound a proven upper bound on the optimum — checked
against a closed-form optimum on a market of independent users.
"""

import math

import numpy as np
import pytest

import dm_opt

NOT_FINISHED = ("time_limit", "interrupted")


def correlated_market(n, seed):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, n + 3))
    S = G @ G.T / n + 0.2 * np.eye(n)
    return dm_opt.GaussianMarket(S, rng.uniform(0.0, 2.0, n))


def independent_market(n, seed):
    """Diagonal Σ: I_i(a) = a_i σ_i⁴/(σ_i² + τ_i²), so every problem's optimum is a closed-form sum."""
    rng = np.random.default_rng(seed)
    sig2 = rng.uniform(0.5, 2.0, n)
    tau2 = rng.uniform(0.5, 2.0, n)
    v = rng.uniform(0.0, 2.0, n)
    return dm_opt.GaussianMarket(np.diag(sig2), v, tau2), sig2, tau2, v


def independent_optimum(sig2, tau2, v):
    """First best = equilibrium = decorrelated = Σ_i max(0, (1 − v_i) σ_i⁴/(σ_i² + τ_i²)) for independent users.

    (Independent users: I_i(a_{−i}, 0) = 0, so Thm 1's objective is Σ_{i∈A} (1 − v_i) I_i too.)
    """
    q = sig2 * sig2 / (sig2 + tau2)
    return math.fsum(max(0.0, (1.0 - vi) * qi) for vi, qi in zip(v, q, strict=True))


def _check_unfinished(r, n, market, problem):
    assert str(r.status) in NOT_FINISHED, (
        f"enumeration stopped by its time limit reported status {r.status!r} "
        f"(nodes {r.nodes} of {2 ** n}, extra {r.extra}, message {r.message!r})")
    assert not r.is_optimal
    assert r.nodes < 2 ** n
    assert r.extra["chunks_done"] < r.extra["chunks"]
    assert r.has_solution and r.profile.shape == (n,)
    assert r.objective == pytest.approx(market.evaluate(problem, r.profile), rel=1e-12, abs=1e-300)
    assert r.bound >= r.objective
    assert r.optima is None


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("n", [22, 24])
@pytest.mark.parametrize("problem", ["equilibrium", "first_best"])
def test_time_limit_is_never_optimal(n, workers, problem):
    market = correlated_market(n, seed=n)
    r = dm_opt.solve(market, problem, method="enumerate", workers=workers, time_limit=0.2)
    _check_unfinished(r, n, market, problem)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("problem", ["first_best", "equilibrium", "decorrelated"])
def test_time_limited_bound_is_proven(workers, problem):
    """The bound of an unfinished walk is at least the true optimum (known in closed form here)."""
    n = 23
    market, sig2, tau2, v = independent_market(n, seed=7)
    opt = independent_optimum(sig2, tau2, v)
    weight = (1 + v) if problem == "equilibrium" else np.abs(1 - v)     # |c| + |d| + |e| of the problem
    tol = 1e-9 * float(np.sum(weight * sig2))
    r = dm_opt.solve(market, problem, method="enumerate", workers=workers, time_limit=0.2)
    _check_unfinished(r, n, market, problem)
    assert r.bound >= opt - tol, (r.bound, opt)
    assert r.objective <= opt + tol


@pytest.mark.parametrize("workers", [1, 2])
def test_limit_not_hit_changes_nothing(workers):
    market = correlated_market(14, seed=3)
    free = dm_opt.solve(market, "equilibrium", method="enumerate", workers=workers)
    timed = dm_opt.solve(market, "equilibrium", method="enumerate", workers=workers, time_limit=120)
    assert free.is_optimal and timed.is_optimal
    assert np.array_equal(free.profile, timed.profile)
    assert free.objective == timed.objective and timed.nodes == 2 ** 14
