"""Community markets with many communities: method="community" vs K, new search vs baseline.

    python benchmarks/community_k.py                              # K = 10, 20, 50 at n = 10^5, 10^6
    python benchmarks/community_k.py --K 20 --n 10000000 --problems first_best
    python benchmarks/community_k.py --baseline '{"local_search": false, "search": "boxes"}'
    python benchmarks/community_k.py --K 20 --n 10000000 --phases   # CPU per phase, peak RSS

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


def phases(m, problem, time_limit):
    """CPU seconds of the pieces of one ``dm_opt.solve(method="community")`` call, done by hand in its order.

    Sorting and the prefix tables are cached on the market, so they show up for the first problem
    solved on a market only (as in the main table)."""
    from dm_opt.gaussian.backends.community import solve_counts, sorted_communities
    from dm_opt.gaussian.backends.enumeration import default_tol

    out = {}

    def tick(name, fn):
        c = time.process_time()
        val = fn()
        out[name] = time.process_time() - c
        return val

    obj = tick("weights", lambda: m.objective(problem))
    tol = tick("tol", lambda: default_tol(m, obj))
    sc = tick("sort", lambda: sorted_communities(m))
    tick("prefix", lambda: sc.V_flat if problem == "equilibrium" else sc.W_flat)
    res = tick("search", lambda: solve_counts(m, problem, tol=tol, time_limit=time_limit))
    a = tick("profile", lambda: sc.profile(res["counts"], m.n))
    tick("result", lambda: m.result_arrays(obj, a))
    return out


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
    ap.add_argument("--phases", action="store_true",
                    help="instead: CPU seconds per phase (weights, tol, sort, prefix tables, search, profile, "
                         "result arrays) on a fresh market per K, n, and the peak RSS so far")
    args = ap.parse_args(argv)
    opts = json.loads(args.options)
    base = None if args.no_baseline else json.loads(args.baseline)

    warm = instance(2000, 3)
    for p in args.problems:
        dm_opt.solve(warm, p, method="community")

    if args.phases:
        import resource

        names = ("weights", "tol", "sort", "prefix", "search", "profile", "result")
        print(f"{'K':>3} {'n':>9} {'problem':<12} | " + " ".join(f"{x:>8}" for x in names) + f" | {'total':>7}"
              f" {'peak RSS':>9}", flush=True)
        for K in args.K:
            for n in args.n:
                m = instance(n, K, args.seed)
                for p in args.problems:
                    ph = phases(m, p, args.time_limit)
                    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    print(f"{K:>3} {n:>9} {p:<12} | " + " ".join(f"{ph[x]:8.3f}" for x in names)
                          + f" | {sum(ph.values()):7.3f} {rss:7.0f}MB", flush=True)
        return

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
