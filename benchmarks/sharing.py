"""Benchmarks for data-sharing networks (RJ): ordered match, stability, mixed-VCG.

    /work/venv/bin/python benchmarks/sharing.py [--quick] [--om-n N] [--om-old-n N] [--stability-max N] [--vcg-n N]
    /work/venv/bin/python benchmarks/sharing.py --only ordered_match      # just part 1

1. Ordered match (RJ Prop 3.1) on the power family with recipient-independent
   costs.  (a) The fast kernel (``ordered_match_power_sorted_range``: rejected targets
   removed, proposals found by binary search) against the full scan of every pair
   (``ordered_match_power_range``, the previous algorithm, N(N−1)/2 oracle calls) on the
   same instance at N = --om-n (default 10⁵) and --om-old-n (default 10⁵), in the same
   run; edges (in the order found) and oracle-call counts must be identical.  N = 10⁵
   exceeds MAX_POWER_AGENTS of SharingMarket (its N × N cost matrices), so these run on
   the arrays (``bilateral.ordered_match_power_arrays``); (b) the public
   ``ordered_match`` (closed-form assumption checks included) at N = MAX_POWER_AGENTS;
   (c) the compiled kernel against the same algorithm as a plain Python loop over the
   preference oracle at N = 2000 (results must agree).
2. Exhaustive strong-stability check (RJ Def 3.2) of the ordered-match graph
   for growing N until one check exceeds 60 s (or N = --stability-max).
   The ordered-match graph is stable, which is the worst case (no early exit).
   Baseline: the naive oracle of the tests (every coalition × every graph it
   can reach) at small N.
3. Mixed-VCG (RJ Def 5.3) at N = 200: G* plus the N pivots G*_{−i}.  Default
   re-solves only buyers that used i in G* (exact); the naive baseline runs
   every pivot as a full welfare optimisation — timed on 10 agents here and
   scaled to N (per-pivot cost is uniform), and the 10 pivots must agree.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from dm_opt import SharingMarket  # noqa: E402
from dm_opt.sharing import bilateral as B  # noqa: E402
from dm_opt.sharing import mechanisms as M  # noqa: E402
from dm_opt.sharing import welfare as W  # noqa: E402
from dm_opt.sharing.market import MAX_POWER_AGENTS  # noqa: E402


def power_market(N: int, seed: int, pair_costs: bool = False) -> SharingMarket:
    rng = np.random.default_rng(seed)
    samples = rng.choice(np.arange(10, 10 * N + 1000), N, replace=False).astype(float)
    cost = rng.uniform(0.0005, 0.005, (N, N)) if pair_costs else rng.uniform(0.0005, 0.01, N)
    return SharingMarket.power(samples, alpha=rng.uniform(1, 4, N), beta=rng.uniform(0.3, 0.8, N), cost=cost)


def python_ordered_match(m: SharingMarket, order) -> list:
    """Baseline: RJ Prop 3.1 as a plain Python loop over the preference oracle."""
    N = m.n
    tot = m.samples.astype(float).copy()
    q, a, b = m.query_samples, m.alpha, m.beta
    c = m.cost_data
    edges = []
    for x in range(N):
        n = int(order[x])
        for y in range(x + 1, N):
            l = int(order[y])
            if a[n] * (tot[n] ** -b[n] - (tot[n] + q[l]) ** -b[n]) - c[n] > 0:
                if a[l] * (tot[l] ** -b[l] - (tot[l] + q[n]) ** -b[l]) - c[l] > 0:
                    edges.append((min(n, l), max(n, l)))
                    tot[n] += q[l]
                    tot[l] += q[n]
    return sorted(edges)


def naive_stable(P, edges) -> bool:
    N = P.shape[0]
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    E = {tuple(map(int, e)) for e in edges}

    def val(i, G):
        m = 0
        for x, y in G:
            if x == i:
                m |= 1 << y
            elif y == i:
                m |= 1 << x
        return P[i, m]

    for r in range(1, N + 1):
        for S in itertools.combinations(range(N), r):
            S = set(S)
            free = [e for e in pairs if e[0] in S and e[1] in S]
            cut = [e for e in E if (e[0] in S) != (e[1] in S)]
            fixed = [e for e in E if e[0] not in S and e[1] not in S]
            for fm in range(1 << len(free)):
                for cm in range(1 << len(cut)):
                    G = fixed + [free[k] for k in range(len(free)) if (fm >> k) & 1] + \
                        [cut[k] for k in range(len(cut)) if (cm >> k) & 1]
                    d = [val(i, G) - val(i, E) for i in S]
                    if min(d) >= -1e-12 and max(d) > 1e-12:
                        return False
    return True


def power_arrays(N: int, seed: int):
    """The instance of :func:`power_market` (recipient-independent costs) as arrays, any N."""
    rng = np.random.default_rng(seed)
    samples = rng.choice(np.arange(10, 10 * N + 1000), N, replace=False).astype(float)
    return samples, rng.uniform(1, 4, N), rng.uniform(0.3, 0.8, N), rng.uniform(0.0005, 0.01, N)


def bench_ordered_match(N_big: int, N_old: int, N_base: int) -> None:
    print("== ordered match (power family, recipient-independent costs)")
    warm = power_market(50, 0)
    B.ordered_match(warm)                                    # JIT load outside the timings
    w = power_arrays(50, 0)
    for fast in (False, True):                               # both kernels compiled outside the timings
        B.ordered_match_power_arrays(np.argsort(-w[0], kind="stable"), w[0], w[0], *w[1:], fast=fast)
    for N in sorted({N_big, N_old}, reverse=True):
        samples, alpha, beta, cost = power_arrays(N, 2)
        order = np.argsort(-samples, kind="stable")
        t, c = time.perf_counter(), time.process_time()
        e_new, c_new = B.ordered_match_power_arrays(order, samples, samples, alpha, beta, cost, fast=True)
        t_new, cpu_new = time.perf_counter() - t, time.process_time() - c
        print(f"N = {N}: fast kernel {t_new:.3f}s wall, {cpu_new:.3f}s CPU ({len(e_new)} edges, {c_new} oracle "
              "calls of the algorithm)", flush=True)
        if N == N_old:
            t, c = time.perf_counter(), time.process_time()
            e_old, c_old = B.ordered_match_power_arrays(order, samples, samples, alpha, beta, cost, fast=False)
            t_old, cpu_old = time.perf_counter() - t, time.process_time() - c
            assert np.array_equal(e_old, e_new) and c_old == c_new, "fast kernel and full scan disagree"
            print(f"N = {N}: full scan (previous algorithm) {t_old:.3f}s wall, {cpu_old:.3f}s CPU, {c_old} oracle "
                  f"calls evaluated; speed-up x{cpu_old / cpu_new:.0f} (CPU); edges (in the order found) and call "
                  "counts identical", flush=True)
    m = power_market(MAX_POWER_AGENTS, 2)
    t = time.perf_counter()
    r = B.ordered_match(m)
    dt = time.perf_counter() - t
    print(f"public ordered_match, N = {m.n} (MAX_POWER_AGENTS): {dt:.3f}s including the closed-form assumption "
          f"checks ({len(r.edges)} edges, assumptions hold: {r.assumptions_hold})")
    m = power_market(N_base, 1)
    t = time.perf_counter()
    r = B.ordered_match(m)
    t_kernel = time.perf_counter() - t
    t = time.perf_counter()
    base = python_ordered_match(m, r.order)
    t_py = time.perf_counter() - t
    assert base == [tuple(e) for e in r.edges.tolist()], "kernel and Python baseline disagree"
    print(f"N = {N_base}: kernel {t_kernel:.3f}s, Python loop {t_py:.3f}s, speed-up x{t_py / t_kernel:.0f} "
          f"({r.oracle_calls} oracle calls, {len(r.edges)} edges, results identical)")


def bench_stability(N_max: int, limit: float) -> None:
    print(f"== exhaustive strong-stability check of the ordered-match graph (limit {limit:.0f}s)")
    for N in (4, 5):                                          # JIT load outside the timings
        B.check_stability(power_market(N, 0), [])
    for N in (4, 5):
        m = power_market(N, 10 + N)
        om = B.ordered_match(m)
        t = time.perf_counter()
        B.check_stability(m, om.edges)
        tk = time.perf_counter() - t
        t = time.perf_counter()
        ok = naive_stable(m.bilateral_table(), om.edges)
        tn = time.perf_counter() - t
        assert ok
        print(f"N = {N}: checker {tk * 1e3:.2f} ms, naive oracle {tn * 1e3:.1f} ms, speed-up x{tn / tk:.0f}")
    last_ok = None
    for N in range(6, N_max + 1):
        m = power_market(N, 10 + N)
        om = B.ordered_match(m)
        t = time.perf_counter()
        r = B.check_stability(m, om.edges)
        dt = time.perf_counter() - t
        assert r.stable
        print(f"N = {N}: {dt:.3f}s ({len(om.edges)} edges, {r.coalitions_examined} coalitions)", flush=True)
        if dt > limit:
            break
        last_ok = N
    print(f"largest N checked exactly under {limit:.0f}s on these instances: {last_ok}")


def bench_vcg(N: int, sample_pivots: int) -> None:
    print(f"== mixed-VCG, power family with pair costs, N = {N}")
    W.welfare_max(power_market(10, 0, True))                 # JIT load
    m = power_market(N, 3, True)
    t = time.perf_counter()
    r = M.mixed_vcg(m)
    dt = time.perf_counter() - t
    print(f"mixed-VCG: {dt:.2f}s  (1 + {N} welfare optimisations as {r.buyer_solves} buyer problems; "
          f"Δ = {r.delta:.4g}, Σt = {r.payment.sum():.2g}, status {r.status}, "
          f"unreachable distortion targets: {len(r.unreachable)})")
    t = time.perf_counter()
    for i in range(sample_pivots):
        full = W.welfare_max(m, exclude_agent=i)
        assert abs(full.welfare - r.pivot_welfare[i]) <= 1e-9 * max(1.0, abs(full.welfare))
    per = (time.perf_counter() - t) / sample_pivots
    t0 = time.perf_counter()
    W.welfare_max(m)
    tg = time.perf_counter() - t0
    naive = tg + N * per
    print(f"naive (every G*_-i solved in full): {per:.3f}s per pivot (measured on {sample_pivots}, agree), "
          f"≈{naive:.1f}s for N + 1 optimisations; speed-up x{naive / dt:.1f}")
    t = time.perf_counter()
    W.welfare_max(m, "milp") if N <= 40 else None
    if N <= 40:
        print(f"one welfare optimisation by MILP (HiGHS outer approximation): {time.perf_counter() - t:.2f}s "
              f"vs branch and bound {tg:.2f}s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--om-n", type=int, default=100_000, help="N of the fast ordered match")
    ap.add_argument("--om-old-n", type=int, default=100_000, help="N at which the full scan is timed too")
    ap.add_argument("--only", choices=["ordered_match", "stability", "vcg"])
    ap.add_argument("--stability-max", type=int, default=19)
    ap.add_argument("--stability-limit", type=float, default=60.0)
    ap.add_argument("--vcg-n", type=int, default=200)
    args = ap.parse_args(argv)
    if args.quick:
        args.om_n, args.om_old_n, args.stability_max, args.vcg_n = 100_000, 10_000, 10, 40
    if args.only in (None, "ordered_match"):
        bench_ordered_match(args.om_n, args.om_old_n, min(2000, args.om_n))
    if args.only in (None, "stability"):
        bench_stability(args.stability_max, args.stability_limit)
    if args.only in (None, "vcg"):
        bench_vcg(args.vcg_n, 10 if args.vcg_n >= 10 else args.vcg_n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
