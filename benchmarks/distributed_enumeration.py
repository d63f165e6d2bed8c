"""Distributed exact enumeration on Dask: scaling with workers, measured in one run.

For each n the same instance (Wishart Σ, values straddling 1, seed 0) is
enumerated (equilibrium problem, docs/spec.md §1.1 Gray-code kernel) on

* a LocalCluster with 1 single-threaded worker process (the baseline),
* a LocalCluster with 2 single-threaded worker processes,
* and in-process with ``dm_opt.solve(method="enumerate")`` (thread pool, 2 threads)
  for reference,

and every answer is checked to be identical (profile, objective).  Printed:
seconds and ratios against the 1-worker baseline of the same run — never
absolute claims.  Worker processes are warmed up (numba JIT) before timing.
Also printed: the cores each cluster actually obtained (sum of worker CPU time /
wall time), which shows whether the machine was free to scale at all.

    python benchmarks/distributed_enumeration.py             # n = 24, 26 (quick)
    python benchmarks/distributed_enumeration.py --full      # n = 24, 26, 28, 30
    python benchmarks/distributed_enumeration.py --n 22 24   # any sizes
    python benchmarks/distributed_enumeration.py --scheduler tcp://host:8786   # an existing cluster too
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numpy as np

import dm_opt
from dm_opt.core import generators as gen
from dm_opt.gaussian.distributed import enumerate_distributed, open_client


def market(n: int, seed: int = 0) -> dm_opt.GaussianMarket:
    return dm_opt.GaussianMarket(gen.wishart(n, seed=seed), gen.straddle(n, seed=seed + 1))


def timed(fn):
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=None)
    p.add_argument("--full", action="store_true", help="n = 24, 26, 28, 30 (n = 30 takes minutes per run)")
    p.add_argument("--problem", default="equilibrium")
    p.add_argument("--chunk-bits", type=int, default=None)
    p.add_argument("--repeat", type=int, default=1, help="runs per configuration; the minimum is kept")
    p.add_argument("--scheduler", default=None, help="also time an existing Dask cluster at this address")
    args = p.parse_args(argv)
    sizes = args.n or ([24, 26, 28, 30] if args.full else [24, 26])
    max_n = max(sizes)
    print(f"# distributed enumeration, problem={args.problem}, cpu_count={os.cpu_count()}, "
          f"dm_opt {dm_opt.__version__}, python {sys.version.split()[0]}, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    rows = {n: {} for n in sizes}
    answers = {n: {} for n in sizes}
    parallelism = {n: {} for n in sizes}   # worker CPU seconds / wall seconds: cores actually obtained
    configs = [("dask 1 worker", dict(workers=1)), ("dask 2 workers", dict(workers=2))]
    if args.scheduler:
        configs.append((f"dask {args.scheduler}", dict(scheduler=args.scheduler)))
    with contextlib.ExitStack() as stack:
        # all clusters up at once and runs interleaved per n, so that load from other processes on
        # the machine drifts over all configurations alike; the minimum over --repeat runs is kept
        clients = {label: stack.enter_context(open_client(**kw)) for label, kw in configs}
        for client in clients.values():
            enumerate_distributed(market(14), args.problem, client)   # warm-up: JIT on every worker
        dm_opt.solve(market(14), args.problem, "enumerate")
        for n in sizes:
            m = market(n)
            for _ in range(args.repeat):
                for label, client in clients.items():
                    cpu0 = sum(client.run(time.process_time).values())
                    t, r = timed(lambda m=m, client=client: enumerate_distributed(
                        m, args.problem, client, chunk_bits=args.chunk_bits, max_n=max_n))
                    cpu = sum(client.run(time.process_time).values()) - cpu0
                    r.raise_for_status()
                    if t < rows[n].get(label, float("inf")):
                        rows[n][label] = t
                        parallelism[n][label] = cpu / t
                    answers[n][label] = r
                label = "in-process 2 threads"
                t, r = timed(lambda m=m: dm_opt.solve(m, args.problem, "enumerate", max_n=max_n, workers=2))
                rows[n][label] = min(t, rows[n].get(label, float("inf")))
                answers[n][label] = r
            print(f"# n = {n} done; load average {os.getloadavg()[0]:.2f}", flush=True)

    base = "dask 1 worker"
    labels = list(rows[sizes[0]])
    print(f"{'n':>3} | " + " | ".join(f"{lab:>22}" for lab in labels) + " | identical answers")
    for n in sizes:
        ref = answers[n][base]
        same = all(np.array_equal(a.profile, ref.profile) and a.objective == ref.objective
                   for a in answers[n].values())
        cells = [f"{rows[n][lab]:7.2f} s (x{rows[n][base] / rows[n][lab]:4.2f})" for lab in labels]
        print(f"{n:>3} | " + " | ".join(f"{c:>22}" for c in cells) + f" | {'yes' if same else 'NO'}")
        if not same:
            print(f"ERROR: answers differ at n = {n}", file=sys.stderr)
            return 1
    print("(xR = speed-up ratio against 'dask 1 worker' measured in this run; higher is faster)")
    print("cores obtained (worker CPU seconds / wall seconds) — below 1 resp. 2 means other processes took the CPU:")
    for n in sizes:
        print(f"{n:>3} | " + " | ".join(f"{lab}: {parallelism[n][lab]:.2f}" for lab in parallelism[n]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
