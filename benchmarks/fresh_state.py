"""One exact evaluation at large n: the blocked fresh state against the chain of single adds.

Every answer dm_opt returns is re-evaluated from a fresh posterior state
(:func:`dm_opt.gaussian.kernels.posterior.fresh_state`).  It applies its adds a block at a time
(:func:`~dm_opt.gaussian.kernels.posterior.add_signals_block`); the baseline, measured in the
same run, is the definition: one :func:`~dm_opt.gaussian.kernels.posterior.add_signal` per
sharer (one O(n²) sweep over ``M`` each).  Both give the same numbers bit for bit (checked here
too).  CPU seconds (``time.process_time``), everyone sharing, seeded Wishart Σ; BLAS plays no
part.

    python benchmarks/fresh_state.py [--n 500 1500 3000] [--baseline-max 1500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dm_opt.core.generators import COV_FAMILIES
from dm_opt.gaussian.kernels import posterior as P


def _sequential(S, t2, a):
    n = S.shape[0]
    M, h, shared = S.copy(), np.zeros(n), np.zeros(n, dtype=np.bool_)
    for k in range(n):
        if a[k]:
            P.add_signal.jit(M, h, shared, k, t2)
    return M, h, shared


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[500, 1500, 3000])
    ap.add_argument("--baseline-max", type=int, default=1500, help="skip the (slow) baseline above this n")
    args = ap.parse_args(argv)
    if any(n < 2 or n > 20000 for n in args.n):
        ap.error("--n: each size must be in [2, 20000]")
    S0 = np.ascontiguousarray(COV_FAMILIES["wishart"](40, seed=0))
    P.fresh_state.jit(S0, np.ones(40), np.ones(40, np.int8))           # compile / load outside the timings
    _sequential(S0, np.ones(40), np.ones(40, np.int8))
    print(f"{'n':>6} {'blocked CPU s':>14} {'single adds CPU s':>18} {'ratio':>7}  identical")
    for n in args.n:
        S = np.ascontiguousarray(COV_FAMILIES["wishart"](n, seed=1))
        t2 = np.ones(n)
        a = np.ones(n, dtype=np.int8)
        c = time.process_time()
        M, h, _ = P.fresh_state.jit(S, t2, a)
        blocked = time.process_time() - c
        if n <= args.baseline_max:
            c = time.process_time()
            M0, h0, _ = _sequential(S, t2, a)
            base = time.process_time() - c
            same = bool(np.array_equal(M, M0) and np.array_equal(h, h0))
            print(f"{n:>6} {blocked:>14.3f} {base:>18.3f} {base / blocked:>6.1f}x  {same}")
        else:
            print(f"{n:>6} {blocked:>14.3f} {'(skipped)':>18} {'':>7}  -")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
