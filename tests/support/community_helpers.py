"""Shared helpers of the community-market tests (tests/markets, tests/solvers)."""

import numpy as np

from dm_opt import CommunityMarket, InstanceError


def random_market(rng, max_n=12, max_K=3, values=None):
    """A random valid community market (retry until positive definite)."""
    while True:
        K = int(rng.integers(1, max_K + 1))
        sizes = rng.integers(1, 6, K)
        if sizes.sum() > max_n:
            continue
        C = np.eye(K)
        for k in range(K):
            for l in range(k + 1, K):
                C[k, l] = C[l, k] = rng.uniform(-0.3, 0.5)
        v = rng.choice([0.3, 0.8, 1.0, 1.3, 2.0, 4.0], sizes.sum()) if values is None else values(sizes.sum())
        try:
            return CommunityMarket(sizes, rng.uniform(0.5, 2, K), rng.uniform(-0.2, 0.8, K), C, v,
                                   rng.uniform(0.3, 2, K))
        except InstanceError:
            continue
