"""The blocked fresh state and the market's one-profile memo (dm_opt.gaussian.kernels.posterior).

``fresh_state`` adds its signals :data:`FRESH_BLOCK` at a time with one sweep over ``M`` per
block; it must be, bit for bit, the chain of single :func:`add_signal` calls (and the NumPy
twin), whatever the block boundaries, the scales and the noise ratios.  The market keeps the
last profile's state: every quantity read from it must equal a fresh computation, bit for bit,
and a different profile must never read a stale entry.  The values are also checked against
an independent dense oracle (tests/support/naive.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from dm_opt.core.generators import COV_FAMILIES
from dm_opt.gaussian.kernels import posterior as P
from dm_opt.gaussian.market import GaussianMarket
from tests.support import naive


def _sequential(S, t2, a):
    """The state by one :func:`add_signal` per sharer, in increasing user order (the definition)."""
    n = S.shape[0]
    M, h, shared = S.copy(), np.zeros(n), np.zeros(n, dtype=np.bool_)
    for k in range(n):
        if a[k]:
            P.add_signal.jit(M, h, shared, k, t2)
    return M, h, shared


def _instance(rng, n, regime):
    fam = ("wishart", "equicorrelated", "banded")[int(rng.integers(3))]
    S = np.ascontiguousarray(COV_FAMILIES[fam](n, seed=int(rng.integers(1 << 30))))
    if regime == "range":            # large dynamic range of variances
        d = np.exp(rng.uniform(-6, 6, n))
        S = S * np.sqrt(d)[:, None] * np.sqrt(d)[None, :]
        S = np.ascontiguousarray((S + S.T) / 2)     # exactly symmetric, as markets store it
    if regime == "tiny":
        t2 = np.diag(S) * 10.0 ** rng.uniform(-9, -6, n)
    elif regime == "huge":
        t2 = np.diag(S) * 10.0 ** rng.uniform(6, 9, n)
    else:
        t2 = np.diag(S) * rng.uniform(0.1, 3.0, n)
    return S, np.ascontiguousarray(t2)


@pytest.mark.parametrize("regime", ["plain", "tiny", "huge", "range"])
def test_blocked_fresh_state_is_the_chain_of_single_adds_bit_for_bit(regime):
    rng = np.random.default_rng({"plain": 1, "tiny": 2, "huge": 3, "range": 4}[regime])
    for n in (1, 2, P.FRESH_BLOCK - 1, P.FRESH_BLOCK, P.FRESH_BLOCK + 1, 2 * P.FRESH_BLOCK + 5, 97):
        S, t2 = _instance(rng, n, regime)
        for density in (0.0, 0.3, 1.0):
            a = (rng.random(n) < density).astype(np.int8)
            M, h, shared = P.fresh_state.jit(S, t2, a)
            M0, h0, s0 = _sequential(S, t2, a)
            assert np.array_equal(M, M0) and np.array_equal(h, h0) and np.array_equal(shared, s0), (n, density)
            assert np.array_equal(M, M.T)
            if n <= 40:
                Mn, hn, sn = P._np_fresh_state(S, t2, a)
                assert np.array_equal(M, Mn) and np.array_equal(h, hn)


def test_blocked_fresh_state_matches_a_dense_oracle():
    rng = np.random.default_rng(7)
    for n in (5, 40, 70):
        S, t2 = _instance(rng, n, "plain")
        a = (rng.random(n) < 0.6).astype(np.int8)
        M, h, shared = P.fresh_state.jit(S, t2, a)
        leak = naive.leakage(S, t2, np.flatnonzero(a))
        np.testing.assert_allclose(np.diag(S) - np.diag(M), leak, rtol=1e-9, atol=1e-12 * np.max(np.diag(S)))


def test_market_memo_reads_equal_fresh_computations_and_never_go_stale():
    rng = np.random.default_rng(11)
    for n in (6, 80):                        # the NumPy twins and the compiled kernels
        S, t2 = _instance(rng, n, "plain")
        m = GaussianMarket(S, rng.uniform(0.3, 2.5, n), t2)
        profiles = [(rng.random(n) < 0.5).astype(np.int8) for _ in range(4)]
        profiles.append(profiles[0].copy())                  # back to an earlier profile
        for a in profiles:
            for problem in ("first_best", "equilibrium", "decorrelated"):
                ob = m.objective(problem)
                fresh = float(P.fresh_objective.jit(m.cov, m.noise_var, ob.c, ob.d, ob.e, ob.k, a))
                assert m.evaluate(ob, a) == fresh
            leak, own = P.leak_own.jit(m.cov, m.noise_var, a)
            got_leak, got_own = m.leakage_and_own(a)
            assert np.array_equal(got_leak, leak) and np.array_equal(got_own, own)
            got_leak[:] = -1.0                               # a caller's copy: the memo is not touched
            assert np.array_equal(m.leakage(a), leak)
            np.testing.assert_allclose(m.leakage(a), naive.leakage(m.cov, m.noise_var, np.flatnonzero(a)), rtol=1e-9,
                                       atol=1e-12 * np.max(np.diag(S)))
