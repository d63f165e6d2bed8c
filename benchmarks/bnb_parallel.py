"""Parallel branch-and-bound (``method="bnb"``, ``workers=`` / ``scheduler=``) against the serial search.

    python benchmarks/bnb_parallel.py                                  # Wishart n = 40, 50, 60 + frontier cells
    python benchmarks/bnb_parallel.py --wishart 50 60 --cells none --problems first_best
    python benchmarks/bnb_parallel.py --dask                           # also a local 2-worker Dask cluster

For every instance the serial search (the baseline) and the parallel search with 1 and 2 local
worker threads (and, with ``--dask``, on a LocalCluster of 2 single-thread worker processes) run in
the same process, one after the other, with the same time limit.  Printed per run: status, nodes,
wall seconds, CPU seconds of the whole process (``time.process_time``), and two ratios against
the serial run:

* ``wall`` — serial wall / parallel wall (what a user sees; on a machine shared with other jobs
  the threads may not get both cores, so this is noisy and can be < 1 under load);
* ``cpu-path`` — serial CPU / (driver-thread CPU + the busiest worker's CPU): the speed-up the
  run would have with every worker on its own core (load-independent; the driver's CPU is
  counted in full although most of it overlaps the workers').

If both the serial and a parallel run certify, their objectives must agree within the tie
tolerance (else the script stops with MISMATCH).  Instances: Wishart (``dm_opt.core.generators``,
values ``uniform`` and ``straddle`` around 1) and the hard families of ``benchmarks/frontier.py``.
numba kernels are compiled on a small instance first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import dm_opt
from dm_opt.core import generators as gen

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import frontier  # noqa: E402  (the hard families, same generators as the frontier benchmark)

#: frontier cells run by default (family:values) at the sizes given by --frontier-n
FRONTIER_CELLS = ["wishart:U0911", "block4:U0911", "lowrank3:U0911", "tridiag:U1052"]


def wishart_market(n, seed, values):
    v = gen.uniform(n, seed) if values == "uniform" else gen.straddle(n, seed)
    return dm_opt.GaussianMarket(gen.wishart(n, seed), v, name=f"wishart:{values}:n{n}:s{seed}")


def run(m, problem, time_limit, options):
    t, c = time.perf_counter(), time.process_time()
    r = dm_opt.solve(m, problem, method="bnb", time_limit=time_limit, **options)
    return r, time.perf_counter() - t, time.process_time() - c


def critical_cpu(r):
    workers = r.extra.get("worker_cpu_seconds") or {}
    return r.extra.get("driver_cpu_seconds", 0.0) + max(workers.values(), default=0.0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wishart", type=int, nargs="*", default=[40, 50, 60], help="Wishart sizes")
    ap.add_argument("--values", nargs="+", default=["uniform", "straddle"], help="uniform | straddle")
    ap.add_argument("--cells", nargs="*", default=FRONTIER_CELLS, help="frontier family:values cells ('none')")
    ap.add_argument("--frontier-n", type=int, nargs="+", default=[40])
    ap.add_argument("--problems", nargs="+", default=["first_best", "equilibrium"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--min-serial", type=float, default=0.0,
                    help="skip the parallel runs of instances the serial search solves faster (s)")
    ap.add_argument("--min-ratio-cpu", type=float, default=0.2,
                    help="print ratios only when the serial run took at least this many CPU seconds")
    ap.add_argument("--dask", action="store_true", help="also run on a local Dask cluster of 2 worker processes")
    args = ap.parse_args(argv)
    cells = [] if args.cells in ([], ["none"]) else args.cells

    instances = [wishart_market(n, s, v) for n in args.wishart for v in args.values for s in args.seeds]
    instances += [frontier.market(*c.split(":"), n, s) for c in cells for n in args.frontier_n for s in args.seeds]

    warm = wishart_market(12, 0, "uniform")
    for p in args.problems:
        for w in args.workers:
            dm_opt.solve(warm, p, method="bnb", workers=w)

    configs = [(f"w={w}", {"workers": w}) for w in args.workers]
    cluster = None
    if args.dask:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
        configs.append(("dask2", {"scheduler": cluster.scheduler_address}))
        dm_opt.solve(warm, args.problems[0], method="bnb", scheduler=cluster.scheduler_address)
    print(f"{'instance':<26} {'problem':<12} {'run':<6} | {'status':<9} {'nodes':>9} {'wall s':>8} {'cpu s':>8}"
          f" | {'wall':>6} {'cpu-path':>8}", flush=True)
    try:
        for m in instances:
            for p in args.problems:
                r0, w0, c0 = run(m, p, args.time_limit, {})
                st0 = "opt" if r0.is_optimal else str(r0.status)[:9]
                print(f"{m.name:<26} {p:<12} {'serial':<6} | {st0:<9} {r0.nodes:>9} {w0:8.2f} {c0:8.2f} |",
                      flush=True)
                if w0 < args.min_serial:
                    continue
                for label, opts in configs:
                    r, wall, cpu = run(m, p, args.time_limit, opts)
                    if r.is_optimal and r0.is_optimal and abs(r.objective - r0.objective) > r.tie_tol:
                        raise SystemExit(f"MISMATCH {m.name} {p} {label}: {r.objective!r} vs serial {r0.objective!r}")
                    st = "opt" if r.is_optimal else str(r.status)[:9]
                    path = critical_cpu(r)
                    # ratios only where there is work to share (tiny trees are solved in the root split)
                    both = r.is_optimal and r0.is_optimal and c0 >= args.min_ratio_cpu
                    ratio_w = f"{w0 / wall:6.2f}" if both else f"{'-':>6}"
                    ratio_c = f"{c0 / path:8.2f}" if both and path > 0 and label != "dask2" else f"{'-':>8}"
                    print(f"{m.name:<26} {p:<12} {label:<6} | {st:<9} {r.nodes:>9} {wall:8.2f} {cpu:8.2f}"
                          f" | {ratio_w} {ratio_c}", flush=True)
    finally:
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
