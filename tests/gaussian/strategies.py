"""Hypothesis strategies for Gaussian markets (shared by the property tests of tests/gaussian)."""

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import dm_opt

#: the settings of the property tests: few examples (2 shared cores), no per-example deadline (numba JIT)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def gaussian_markets(draw, min_n=1, max_n=6):
    """A random SPD covariance (Wishart plus a ridge), values in ``[0, vmax]`` straddling 1, noise in ``[0.2, 3]``."""
    n = draw(st.integers(min_n, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    G = rng.standard_normal((n, n + draw(st.integers(0, 3))))
    S = G @ G.T / n + draw(st.floats(1e-2, 1.0)) * np.eye(n)
    v = rng.uniform(0, draw(st.floats(0.5, 4.0)), n)
    tau2 = rng.uniform(0.2, 3.0, n)
    return dm_opt.GaussianMarket(S, v, tau2)


@st.composite
def community_markets(draw, max_k=3, max_size=4):
    """A small community market (AMMO Example 2 shape): K communities, correlations that keep Σ ≻ 0."""
    k = draw(st.integers(1, max_k))
    sizes = draw(st.lists(st.integers(1, max_size), min_size=k, max_size=k))
    within = draw(st.floats(0.0, 0.4))
    cross = draw(st.floats(0.0, 0.05))
    values = draw(st.lists(st.floats(0.1, 3.0), min_size=k, max_size=k))
    return dm_opt.CommunityMarket(sizes, 1.0, within, cross, {"family": "constant", "value": values}, 1.0)


@st.composite
def profile_pairs(draw, n):
    """``(a, b)`` with ``a ≤ b`` componentwise."""
    a = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int8)
    extra = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int8)
    return a, np.maximum(a, extra)
