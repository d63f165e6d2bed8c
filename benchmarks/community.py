"""Community markets at internet scale: method="community" vs n and K, and vs the dense solvers.

    python benchmarks/community.py                 # full: n up to 10^6, K up to 10
    python benchmarks/community.py --quick         # n up to 10^5, K up to 5 (about 10 s)

Three tables, all measured in this run (same process, after a warm-up solve):

1. time vs n (K = 5) for first best, equilibrium and decorrelated;
2. time vs K at the largest n;
3. ratio against the general exact solvers on the dense Σ (``to_gaussian()``) where they
   finish: ``enumerate`` (n ≤ 20) and ``bnb`` (larger n, with a time limit), with the
   objectives compared (the benchmark fails loudly if they differ by more than 1e-9·scale).

Instances (seeded): community sizes drawn around n/K, unit-ish variances, within-community
correlation U[0.05, 0.2], cross-community correlation 0.01 (0.1 for the small dense
comparisons), values uniform per community on [low_k, high_k] with low_k < 1 < high_k.
Wall and CPU (process) seconds are both printed: on a shared machine wall time is inflated by
other processes.  Times include building the result (profile, prices, leakage of all n users) but not
constructing the market; "bound" is the proven upper bound (``extra['proven_bound']``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import dm_opt  # noqa: E402
from dm_opt import CommunityMarket  # noqa: E402

PROBLEMS = ("first_best", "equilibrium", "decorrelated")


def instance(n: int, K: int, seed: int = 0, cross: float = 0.01) -> CommunityMarket:
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 1.5, K)
    sizes = np.maximum(1, np.floor(n * w / w.sum())).astype(int)
    sizes[0] += n - sizes.sum()
    low = rng.uniform(0.0, 0.8, K)
    high = rng.uniform(1.2, 3.0, K)
    return CommunityMarket(sizes, rng.uniform(0.5, 2.0, K), rng.uniform(0.05, 0.2, K), cross,
                           {"family": "uniform", "low": low.tolist(), "high": high.tolist(), "seed": seed})


def timed(fn):
    """(result, wall seconds); the CPU seconds of the last call are kept in ``timed.cpu``."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    timed.cpu = time.process_time() - c
    return out, time.perf_counter() - t


def row(label, res, seconds):
    return (f"{label:<20} {res.problem:<13} {str(res.status):<8} wall {seconds:>7.3f}s cpu {timed.cpu:>7.3f}s  "
            f"nodes {res.nodes:>5}  "
            f"obj {res.objective:>16.10g}  "
            f"bound-obj {res.extra.get('proven_bound', res.objective) - res.objective:.2e}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="n up to 10^5, K up to 5")
    ap.add_argument("--time-limit", type=float, default=60.0, help="per dense solve (seconds)")
    args = ap.parse_args(argv)

    ns = [10 ** 3, 10 ** 4, 10 ** 5] + ([] if args.quick else [10 ** 6])
    Ks = [1, 2, 3, 5] + ([] if args.quick else [10])
    nmax = ns[-1]
    dm_opt.solve(instance(100, 2), "equilibrium")          # warm-up: imports, first calls, JIT kernels
    for method in ("enumerate", "bnb"):
        dm_opt.solve(instance(8, 2, seed=1, cross=0.1).to_gaussian(), "first_best", method=method)

    print("# 1. time vs n (K = 5), method='community'")
    for n in ns:
        m = instance(n, 5)
        for p in PROBLEMS:
            res, sec = timed(lambda m=m, p=p: dm_opt.solve(m, p, method="community"))
            print(row(f"n = {n:>8}, K = 5", res, sec))

    print(f"\n# 2. time vs K (n = {nmax}), method='community'")
    for K in Ks:
        m = instance(nmax, K)
        for p in PROBLEMS:
            res, sec = timed(lambda m=m, p=p: dm_opt.solve(m, p, method="community"))
            print(row(f"n = {nmax:>8}, K = {K:>2}", res, sec))

    print("\n# 3. against the general exact solvers on the dense Σ (same instance, same process)")
    print(f"{'instance':<22} {'problem':<13} {'dense method':<12} {'dense s':>9} {'community s':>12} "
          f"{'ratio':>8}  agree")
    cases = [(16, 3, "enumerate"), (20, 3, "enumerate"), (30, 3, "bnb"), (60, 3, "bnb")]
    if not args.quick:
        cases += [(90, 3, "bnb"), (120, 4, "bnb")]
    for n, K, method in cases:
        m = instance(n, K, seed=1, cross=0.1)
        g = m.to_gaussian()
        for p in PROBLEMS:
            opts = {"time_limit": args.time_limit} if method == "bnb" else {}
            d, td = timed(lambda g=g, p=p, method=method, opts=opts: dm_opt.solve(g, p, method=method, **opts))
            c, tc = timed(lambda m=m, p=p: dm_opt.solve(m, p, method="community"))
            tol = 1e-9 * max(1.0, abs(d.objective))
            if d.status is dm_opt.Termination.OPTIMAL:
                agree = abs(c.objective - d.objective) <= tol
                if not agree:
                    raise SystemExit(f"MISMATCH n={n} {p}: dense {d.objective} vs community {c.objective}")
                flag = "yes"
            else:
                flag = f"dense {d.status} (community {'>=' if c.objective >= d.objective - tol else '<'} incumbent)"
            print(f"n = {n:>3}, K = {K:<10} {p:<13} {method:<12} {td:>8.3f}s {tc:>11.4f}s {td / tc:>8.1f}  {flag}")
    print("(ratio = dense wall seconds / community wall seconds, both measured above in this process)")


if __name__ == "__main__":
    main()
