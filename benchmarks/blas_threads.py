"""BLAS thread pinning (dm_opt.core.threads): searches with and without it, idle and under load.

    python benchmarks/blas_threads.py                 # load 0 and 2 busy processes, 3 repeats
    python benchmarks/blas_threads.py --load 0 4 --repeat 5

The exact searches run inside ``blas_threads()`` (one BLAS thread).  For each case this
script times the same call with the pinning (``BLAS_LIMIT = 1``) and without it
(``BLAS_LIMIT = None``: the BLAS pools keep their default size), alternating the two, in the
same process, first on the machine as it is and then with ``--load`` extra busy processes
(pure-Python spin loops) competing for the cores.  It prints the median wall and CPU seconds
of each and the ratio unpinned / pinned (> 1: pinning helps).  The objectives of the two
runs must agree exactly (else MISMATCH).  Cases:

* ``solve-20`` / ``solve-100``: batched ``np.linalg.solve`` of 64 K×K systems with K right-hand
  sides and one K×K product (the community search's operations), K = 20 (2000 calls) and
  K = 100 (10 calls): the raw effect;
* ``community``: ``method="community"`` first best, K = 10, n = 10⁶ (``benchmarks/community.py``'s
  generator), with the previous box search (``search="boxes"``: thousands of small solves);
* ``bnb``: ``method="bnb"`` on a dense Wishart market, n = 30, first best.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from community import instance  # noqa: E402

import dm_opt  # noqa: E402
from dm_opt.core import generators as gen  # noqa: E402
from dm_opt.core import threads  # noqa: E402


def _spin(stop):
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _solve_batch(K, calls):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((64, K, K)) + K * np.eye(K)
    b = rng.standard_normal((64, K, K))
    acc = 0.0
    with threads.blas_threads():           # what the searches do
        for _ in range(calls):
            acc += float(np.linalg.solve(A, b)[0, 0, 0])
            acc += float((A[0] @ b[0])[0, 0])
    return acc


def cases():
    com = instance(1_000_000, 10, 0)
    dense = dm_opt.GaussianMarket(gen.wishart(30, seed=1), gen.uniform(30, seed=1))
    return {
        "solve-20": lambda: _solve_batch(20, 2000),
        "solve-100": lambda: _solve_batch(100, 10),
        "community": lambda: dm_opt.solve(com, "first_best", method="community", search="boxes").objective,
        "bnb": lambda: dm_opt.solve(dense, "first_best", method="bnb").objective,
    }


def timed(fn, limit):
    threads.BLAS_LIMIT = limit
    try:
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - t, time.process_time() - c
    finally:
        threads.BLAS_LIMIT = 1


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--load", type=int, nargs="+", default=[0, 2], help="busy competing processes")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", nargs="+", default=None)
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_info

    pools = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
    print(f"BLAS pools: {pools}; cores: {os.cpu_count()}; threadpoolctl: {threads.available()}", flush=True)
    all_cases = cases()
    names = args.cases or list(all_cases)
    for fn in all_cases.values():          # warm-up (compilation, caches)
        fn()
    print(f"{'load':>4} {'case':<12} | {'pinned wall':>11} {'cpu':>7} | {'unpinned wall':>13} {'cpu':>7} | "
          f"{'wall u/p':>8} {'cpu u/p':>7}", flush=True)
    for load in args.load:
        stop = mp.Event()
        procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(load)]
        for p in procs:
            p.start()
        try:
            for name in names:
                fn = all_cases[name]
                pw, pc, uw, uc = [], [], [], []
                for _ in range(args.repeat):
                    a, w, c = timed(fn, 1)
                    pw.append(w)
                    pc.append(c)
                    b, w, c = timed(fn, None)
                    uw.append(w)
                    uc.append(c)
                    if a != b:
                        raise SystemExit(f"MISMATCH {name}: {a!r} vs {b!r}")
                mpw, mpc, muw, muc = (statistics.median(x) for x in (pw, pc, uw, uc))
                print(f"{load:>4} {name:<12} | {mpw:11.3f} {mpc:7.3f} | {muw:13.3f} {muc:7.3f} | "
                      f"{muw / mpw:8.2f} {muc / mpc:7.2f}", flush=True)
        finally:
            stop.set()
            for p in procs:
                p.join(5)
                if p.is_alive():
                    p.terminate()


if __name__ == "__main__":
    main()
