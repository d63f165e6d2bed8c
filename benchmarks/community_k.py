"""Community markets with many communities: method="community" vs K, new search vs baseline.

    python benchmarks/community_k.py                              # K = 10, 20, 50 at n = 10^5, 10^6
    python benchmarks/community_k.py --K 20 --n 10000000 --problems first_best
    python benchmarks/community_k.py --baseline '{"local_search": false, "search": "boxes"}'

Instances: ``benchmarks/community.py``'s seeded generator (sizes around n/K, within-community
correlation U[0.05, 0.2], cross-community 0.01, values uniform per community on
[low_k, high_k] with low_k < 1 < high_k).  Each cell runs ``dm_opt.solve(method="community")``
with the default options (``search="tighten"``: separable bounds with domain tightening) and
with the baseline options (default ``search="boxes"``: the previous box search) in the same
process, and prints status,
nodes, wall and CPU seconds of each and the CPU ratio baseline / new; the two objectives
must agree within the tie tolerance (else MISMATCH).  CPU (process) seconds are the
meaningful column on a shared machine.  Targets: K = 20 at n = 10⁷ within 5 s,
K = 50 at n = 10⁶ within 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from community import instance  # noqa: E402

import dm_opt  # noqa: E402

BASELINE = {"search": "boxes"}


def run(m, problem, time_limit, options):
    t, c = time.perf_counter(), time.process_time()
    r = dm_opt.solve(m, problem, method="community", time_limit=time_limit, **options)
    return r, time.perf_counter() - t, time.process_time() - c


def fmt(r, wall, cpu):
    st = "opt" if r.is_optimal else str(r.status)[:9]
    return f"{st:<9} {r.nodes:>8} {wall:8.2f} {cpu:8.2f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--K", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--problems", nargs="+", default=["first_best", "equilibrium", "decorrelated"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--options", default="{}")
    ap.add_argument("--baseline", default=json.dumps(BASELINE))
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args(argv)
    opts = json.loads(args.options)
    base = None if args.no_baseline else json.loads(args.baseline)

    warm = instance(2000, 3)
    for p in args.problems:
        dm_opt.solve(warm, p, method="community")

    head = f"{'K':>3} {'n':>9} {'problem':<12} | {'status':<9} {'nodes':>8} {'wall':>8} {'cpu':>8}"
    if base is not None:
        head += f" | {'base st':<9} {'nodes':>8} {'wall':>8} {'cpu':>8} | {'cpu b/n':>7}"
    print(head, flush=True)
    for K in args.K:
        for n in args.n:
            m = instance(n, K, args.seed)
            for p in args.problems:
                r, w, c = run(m, p, args.time_limit, opts)
                line = f"{K:>3} {n:>9} {p:<12} | {fmt(r, w, c)}"
                if base is not None:
                    rb, wb, cb = run(m, p, args.time_limit, base)
                    if r.is_optimal and rb.is_optimal and abs(r.objective - rb.objective) > r.tie_tol:
                        raise SystemExit(f"MISMATCH K={K} n={n} {p}: {r.objective!r} vs {rb.objective!r}")
                    ratio = f"{cb / c:7.1f}" if rb.is_optimal else f"{'>' + format(cb / c, '.1f'):>7}"
                    line += f" | {fmt(rb, wb, cb)} | {ratio if r.is_optimal else '-':>7}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
