"""Branch-and-bound scaling, with enumeration as the baseline measured in the same run.

    python benchmarks/bnb_scaling.py                       # n = 20, 22, 30, 40, 50
    python benchmarks/bnb_scaling.py --n 20 30 --time-limit 60 --seeds 0 1
    python benchmarks/bnb_scaling.py --search best --n 20 22   # best-first (fresh solves per node)
    python benchmarks/bnb_scaling.py --interval-baseline      # also bnb without the modular bound

Instance: Wishart Σ (unit variances), values uniform on [0, 2], ``seed`` (default 0) for
both.  For every n and problem (first best, equilibrium) it prints the bnb status, gap,
node count and seconds; for ``n ≤ --enum-max-n`` (default 22) it also runs exhaustive
enumeration on the same instance, checks that the two optima agree within the tie
tolerance, and prints the time ratio enumeration / bnb.  With ``--interval-baseline`` it
also runs bnb with the interval bound only (``modular=False``, the docs/spec.md §1.3 bound
refined per user) and prints its nodes and time ratio against the default.  numba kernels are compiled
(warmed up) on a small instance before timing.
"""

from __future__ import annotations

import argparse
import time

import dm_opt
from dm_opt.core import generators as gen


def market(n: int, seed: int) -> dm_opt.GaussianMarket:
    return dm_opt.GaussianMarket(gen.wishart(n, seed=seed), gen.uniform(n, seed=seed))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[20, 22, 30, 40, 50])
    ap.add_argument("--problems", nargs="+", default=["first_best", "equilibrium"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--enum-max-n", type=int, default=22)
    ap.add_argument("--search", default="depth", choices=["depth", "best"])
    ap.add_argument("--order", default="deviation")
    ap.add_argument("--interval-baseline", action="store_true")
    args = ap.parse_args(argv)

    warm = market(8, 0)
    for p in args.problems:        # compile the kernels before timing
        dm_opt.solve(warm, p, method="bnb", search=args.search, order=args.order)
        dm_opt.solve(warm, p, method="enumerate")

    print(f"{'n':>3} {'seed':>4} {'problem':<12} {'status':<11} {'gap':>8} {'nodes':>10} "
          f"{'bnb s':>8} {'enum s':>8} {'enum/bnb':>9}"
          + (f" {'int nodes':>10} {'int s':>8} {'int/bnb':>8}" if args.interval_baseline else ""))
    for n in args.n:
        for seed in args.seeds:
            m = market(n, seed)
            for p in args.problems:
                t = time.perf_counter()
                r = dm_opt.solve(m, p, method="bnb", time_limit=args.time_limit, search=args.search,
                                 order=args.order)
                tb = time.perf_counter() - t
                te_s = ratio = ""
                if n <= args.enum_max_n:
                    t = time.perf_counter()
                    e = dm_opt.solve(m, p, method="enumerate")
                    te = time.perf_counter() - t
                    if r.is_optimal and abs(r.objective - e.objective) > r.tie_tol:
                        raise SystemExit(f"MISMATCH n={n} {p}: bnb {r.objective!r} vs enumeration {e.objective!r}")
                    te_s, ratio = f"{te:8.3f}", f"{te / tb:9.1f}"
                tail = ""
                if args.interval_baseline:
                    t = time.perf_counter()
                    q = dm_opt.solve(m, p, method="bnb", time_limit=args.time_limit, search=args.search,
                                     order=args.order, modular=False)
                    tq = time.perf_counter() - t
                    if r.is_optimal and q.is_optimal and abs(r.objective - q.objective) > r.tie_tol:
                        raise SystemExit(f"MISMATCH n={n} {p}: bnb {r.objective!r} vs interval-only {q.objective!r}")
                    mark = "" if q.is_optimal else "+"
                    tail = f" {q.nodes:>9}{mark:1} {tq:8.3f} {tq / tb:8.1f}"
                print(f"{n:>3} {seed:>4} {p:<12} {str(r.status):<11} {r.gap:8.2g} {r.nodes:>10} "
                      f"{tb:8.3f} {te_s:>8} {ratio:>9}{tail}", flush=True)


if __name__ == "__main__":
    main()
