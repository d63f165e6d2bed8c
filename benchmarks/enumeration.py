"""Enumeration speed: Gray-code kernel vs naive per-subset solves, measured in the same run.

    python benchmarks/enumeration.py                # n = 10, 12, ..., 24 (all three problems, all optima)
    python benchmarks/enumeration.py --n 10 12 14 --naive-limit 30

For each n and problem it prints the time of ``dm_opt.solve(..., method="enumerate",
all_optima=True)`` and of the naive baseline: a fresh Cholesky solve of the
posterior per subset (``O(2^n n³)``; the objective from ``diag P`` with the
own-signal identity, so the baseline is not handicapped by ``n + 1`` solves per
subset).  The naive baseline runs in full while its projected time stays under
``--naive-limit`` seconds; above that it is timed on a random sample of
``--sample`` subsets and the per-profile ratio is reported, labelled ``(sampled)``.
Both use the same instance: Wishart Σ (unit variances), values uniform on [0, 2], seed 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import dm_opt  # noqa: E402
from dm_opt.core.generators import uniform, wishart  # noqa: E402

PROBLEMS = ("first_best", "equilibrium", "decorrelated")


def naive_value(S, tau2, obj, mask_bits):
    A = np.flatnonzero(mask_bits)
    sig2 = np.diag(S)
    if A.size:
        C = S[np.ix_(A, A)] + np.diag(tau2[A])
        L = np.linalg.cholesky(C)
        W = np.linalg.solve(L, S[A, :])
        x = sig2 - np.einsum("ki,ki->i", W, W)
    else:
        x = sig2.copy()
    leak = sig2 - x
    a = mask_bits.astype(bool)
    own = np.zeros_like(x)
    own[a] = x[a] ** 2 / (tau2[a] - x[a])
    return float(obj.c @ leak + np.sum((obj.d * leak - obj.e * own - obj.k)[a]))


def naive_enumerate(m, obj, masks):
    n = m.n
    bits = np.arange(n)
    best = -np.inf
    for mask in masks:
        best = max(best, naive_value(m.cov, m.noise_var, obj, (mask >> bits) & 1))
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[10, 12, 14, 16, 18, 20, 22, 24])
    ap.add_argument("--naive-limit", type=float, default=20.0,
                    help="run the naive baseline in full below this many projected seconds")
    ap.add_argument("--sample", type=int, default=2000, help="subsets timed when the naive baseline is sampled")
    ap.add_argument("--workers", type=int, default=None, help="threads for enumeration (default: all cores)")
    args = ap.parse_args(argv)

    # warm-up: compile the kernels outside the timings
    warm = dm_opt.GaussianMarket(wishart(4, 0), np.ones(4))
    for p in PROBLEMS:
        dm_opt.solve(warm, p, method="enumerate", all_optima=True)

    print(f"cores: {os.cpu_count()}; enumeration with all optima; times in seconds")
    print(f"{'n':>3} {'problem':>13} {'enumerate':>10} {'naive':>12} {'ratio':>10} {'profiles/s':>12} {'ties':>5}")
    rng = np.random.default_rng(0)
    for n in args.n:
        m = dm_opt.GaussianMarket(wishart(n, 0), uniform(n, 0, 0.0, 2.0))
        for p in PROBLEMS:
            obj = m.objective(p)
            t0 = time.perf_counter()
            r = dm_opt.solve(m, p, method="enumerate", all_optima=True, workers=args.workers)
            t_enum = time.perf_counter() - t0
            # naive: time a sample first to project the full run
            k = min(args.sample, 1 << n)
            sample = rng.choice(1 << n, size=k, replace=False) if k < (1 << n) else np.arange(1 << n)
            t0 = time.perf_counter()
            naive_best = naive_enumerate(m, obj, sample)
            t_sample = time.perf_counter() - t0
            projected = t_sample / k * (1 << n)
            if projected <= args.naive_limit:
                if k < (1 << n):
                    t0 = time.perf_counter()
                    naive_best = naive_enumerate(m, obj, range(1 << n))
                    t_naive = time.perf_counter() - t0
                else:
                    t_naive = t_sample
                assert abs(naive_best - r.objective) <= 1e-9 * (1 + abs(r.objective)), \
                    f"naive and enumeration disagree at n={n} {p}: {naive_best} vs {r.objective}"
                naive_txt, ratio_txt = f"{t_naive:12.3f}", f"{t_naive / t_enum:10.0f}x"
            else:
                per_naive = t_sample / k
                per_enum = t_enum / (1 << n)
                naive_txt = f"{projected:9.0f}(s)"
                ratio_txt = f"{per_naive / per_enum:9.0f}x*"
            print(f"{n:>3} {p:>13} {t_enum:10.3f} {naive_txt:>12} {ratio_txt:>10} {(1 << n) / t_enum:12.3g} "
                  f"{len(r.optima):>5}", flush=True)
    print("(s) = projected from a timed random sample of subsets; * = per-profile ratio against that sample")


if __name__ == "__main__":
    main()
