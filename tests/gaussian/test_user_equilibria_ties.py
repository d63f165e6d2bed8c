"""User equilibria at exact indifference (AMMO Definition 1, Lemma 2).

Prices drawn from continuous distributions never make a user exactly indifferent, so the
tie-breaking of the least / greatest user equilibrium is never exercised by them.  Here prices are
set EXACTLY at a user's threshold ``v_i (I_i(1, a_{−i}) − I_i(0, a_{−i}))`` computed by the
high-precision oracle (tests/support/oracle.py) and rounded to float, and the answer of
``GaussianMarket.user_equilibria(prices, all=True)`` is checked against a brute force over all
profiles: a profile is a user equilibrium when no user strictly gains by switching, a gain within
``INDIFFERENCE_TOL`` counting as indifference (allowed both ways).

* ``least ⊑ every equilibrium ⊑ greatest``; least and greatest are equilibria; ``all`` is complete;
* the least equilibrium resolves indifference towards not sharing, the greatest towards sharing.

Instances are built so that every user's margin ``p_i − threshold_i`` at every profile is either
an exact indifference (|margin| ≤ 1e-3·tol: float rounding of the price) or clear of the tolerance
(|margin| ≥ 2·tol); the few draws with a margin in between are skipped, and the tests assert that
enough instances remain.
"""

import functools

import numpy as np
import pytest

import dm_opt
from dm_opt.gaussian.market import INDIFFERENCE_TOL
from tests.support import oracle as orc


def _market(n, seed, unit_noise=False):
    rng = np.random.default_rng([4, n, seed])
    G = rng.standard_normal((n, n + 1))
    S = G @ G.T / n + 0.3 * np.eye(n)
    tau2 = np.ones(n) if unit_noise else rng.uniform(0.5, 2.0, n)
    v = rng.uniform(0.5, 2.0, n)
    return S, tau2, v, rng


def _bits(n):
    return [tuple((m >> i) & 1 for i in range(n)) for m in range(1 << n)]


def margins_are_clear(o, prices) -> bool:
    """Every margin p_i − thr_i(a) is an exact indifference or at least 2·tol from indifference."""
    ctx = o.ctx
    for a in _bits(o.n):
        thr = o.share_threshold(a)
        for i in range(o.n):
            m = abs(ctx.mpf(float(prices[i])) - thr[i])
            if 1e-3 * INDIFFERENCE_TOL < m < 2 * INDIFFERENCE_TOL:
                return False
    return True


def brute_equilibria(o, prices) -> set:
    return {a for a in _bits(o.n) if orc.is_user_equilibrium(o, prices, a, INDIFFERENCE_TOL)}


def _leq(a, b):
    return all(x <= y for x, y in zip(a, b, strict=True))


def check_lattice(market, o, prices):
    """The answer of user_equilibria against the brute force; returns (least, greatest, brute set)."""
    eq = market.user_equilibria(prices, all=True)
    least = tuple(int(x) for x in eq.least)
    greatest = tuple(int(x) for x in eq.greatest)
    brute = brute_equilibria(o, prices)
    assert brute, "Lemma 2: the set of user equilibria is a non-empty lattice"
    listed = {tuple(int(x) for x in a) for a in eq.all}
    assert listed == brute, f"all: missing {sorted(brute - listed)}, not equilibria {sorted(listed - brute)}"
    assert least in brute, f"least {least} is not a user equilibrium (equilibria: {sorted(brute)})"
    assert greatest in brute, f"greatest {greatest} is not a user equilibrium (equilibria: {sorted(brute)})"
    for a in brute:
        assert _leq(least, a), f"least {least} is not below the equilibrium {a}"
        assert _leq(a, greatest), f"greatest {greatest} is not above the equilibrium {a}"
    return least, greatest, brute


ONE_USER = [(n, seed) for n in (2, 3, 4, 5, 6) for seed in range(6)]


@functools.lru_cache(maxsize=None)
def one_indifferent_user_case(n, seed):
    """(S, tau2, v, prices, i, a_{−i}, oracle) with user i exactly indifferent and the others strictly
    decided, or None when some margin is too close to the tolerance to be decided unambiguously."""
    S, tau2, v, rng = _market(n, seed, unit_noise=seed % 2 == 0)
    o = orc.Oracle.gaussian(S, tau2, v)
    i = int(rng.integers(0, n))
    others = rng.random(n) < 0.5             # True: always shares (price far above every threshold)
    top = max(float(x) for a in _bits(n) for x in o.share_threshold(a))
    prices = np.where(others, 10.0 * top + 1.0, 0.0)   # price 0 < every threshold: never shares
    a = tuple(int(x) for x in others)
    a_minus = tuple(0 if j == i else a[j] for j in range(n))
    prices[i] = float(o.share_threshold(a_minus)[i])   # exactly indifferent given a_{−i}
    if not margins_are_clear(o, prices):
        return None
    return S, tau2, v, prices, i, a_minus, o


def test_enough_exact_indifference_cases():
    assert sum(one_indifferent_user_case(*c) is not None for c in ONE_USER) >= 25


@pytest.mark.parametrize("n,seed", ONE_USER)
def test_one_indifferent_user(n, seed):
    case = one_indifferent_user_case(n, seed)
    if case is None:
        pytest.skip("a margin within 2·INDIFFERENCE_TOL of indifference")
    S, tau2, v, prices, i, a_minus, o = case
    market = dm_opt.GaussianMarket(S, v, tau2)
    least, greatest, brute = check_lattice(market, o, prices)
    without = a_minus
    with_i = tuple(1 if j == i else a_minus[j] for j in range(len(a_minus)))
    # exactly two equilibria: the others are decided, user i may go either way
    assert brute == {without, with_i}
    assert least == without, "the least user equilibrium resolves indifference towards not sharing"
    assert greatest == with_i, "the greatest user equilibrium resolves indifference towards sharing"


ALL_USERS = [(n, seed) for n in (2, 3, 4, 5, 6) for seed in range(10)]


@functools.lru_cache(maxsize=None)
def everyone_indifferent_case(n, seed):
    """Prices at every user's exact threshold at a target profile a*: a* is an equilibrium with all
    users indifferent.  None when some margin is too close to the tolerance."""
    S, tau2, v, rng = _market(n, 100 + seed, unit_noise=seed % 3 == 0)
    o = orc.Oracle.gaussian(S, tau2, v)
    target = tuple(int(x) for x in (rng.random(n) < 0.6))
    if seed % 4 == 0:
        target = (1,) * n
    prices = np.array([float(x) for x in o.share_threshold(target)])
    if not margins_are_clear(o, prices):
        return None
    return S, tau2, v, prices, target, o


def test_enough_everyone_indifferent_cases():
    assert sum(everyone_indifferent_case(*c) is not None for c in ALL_USERS) >= 30


@pytest.mark.parametrize("n,seed", ALL_USERS)
def test_everyone_indifferent_at_a_target_profile(n, seed):
    case = everyone_indifferent_case(n, seed)
    if case is None:
        pytest.skip("a margin within 2·INDIFFERENCE_TOL of indifference")
    S, tau2, v, prices, target, o = case
    market = dm_opt.GaussianMarket(S, v, tau2)
    least, greatest, brute = check_lattice(market, o, prices)
    assert target in brute
    if all(target):
        # every user indifferent at all-ones: the greatest equilibrium is all-ones
        assert greatest == target


@pytest.mark.parametrize("seed", range(12))
def test_generic_prices(seed):
    """Continuous prices (no indifference): the same lattice checks."""
    n = 3 + seed % 4
    S, tau2, v, rng = _market(n, 200 + seed)
    o = orc.Oracle.gaussian(S, tau2, v)
    top = max(float(x) for a in _bits(n) for x in o.share_threshold(a))
    prices = rng.uniform(0.0, 1.1 * top, n)
    if not margins_are_clear(o, prices):
        pytest.skip("a margin within 2·INDIFFERENCE_TOL of indifference")
    market = dm_opt.GaussianMarket(S, v, tau2)
    check_lattice(market, o, prices)
