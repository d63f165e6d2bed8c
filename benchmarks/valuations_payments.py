"""Thm B-2 payments: exact breakpoints (envelope search) vs a midpoint-rule grid, measured in the same run.

    python benchmarks/valuations_payments.py                 # n = 4, 6, 8, 10; grid of 200 points
    python benchmarks/valuations_payments.py --n 6 --grid 50 200 1000

Instance: Wishart Σ (unit variances, seed = n), values uniform on [0, 1.5] (seed 0), every
v_i ~ U[0, 1.5] (Φ(v) = 2v).  For every sharer of the Thm B-2 allocation the payment integral
``∫_{v_i}^{v_max} A_i(x) dx`` is computed (a) exactly by :func:`allocation_steps` and (b) by the
midpoint rule on ``grid`` points, one exact solve per point (the "blind quadrature" baseline).
Printed: solver calls and time of each, their ratios, and the baseline's largest absolute error
(the exact answer is checked against the envelope identity ∫A dx = (F(Φ(v)) − F(Φ(v_max)))/2).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import dm_opt  # noqa: E402
from dm_opt.core.generators import wishart  # noqa: E402
from dm_opt.gaussian import valuations as V  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[4, 6, 8, 10])
    ap.add_argument("--grid", type=int, nargs="+", default=[200])
    args = ap.parse_args(argv)
    print(f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    print(f"{'n':>3} {'grid':>5} {'sharers':>7} {'exact calls':>11} {'grid calls':>10} {'call ratio':>10} "
          f"{'time ratio':>10} {'grid max err':>12} {'envelope chk':>12}")
    for n in args.n:
        rng = np.random.default_rng(0)
        m = dm_opt.GaussianMarket(wishart(n, n), rng.uniform(0, 1.5, n))
        vm = V.ValuationMarket(m, [V.uniform(0, 1.5)] * n)
        phi = vm.virtual_values()
        a = dm_opt.solve(m, V.virtual_objective(phi)).profile
        sharers = np.flatnonzero(a)
        t0 = time.perf_counter()
        steps = [V.allocation_steps(vm, i, m.values) for i in sharers]
        t_exact = time.perf_counter() - t0
        calls_exact = sum(s.solver_calls for s in steps)

        def F(i, p, phi=phi, m=m):
            w = phi.copy()
            w[i] = p
            return dm_opt.solve(m, V.virtual_objective(w)).objective
        chk = max(abs(s.integral() - (F(i, 2 * m.values[i]) - F(i, 3.0)) / 2) for i, s in zip(sharers, steps))
        for g in args.grid:
            t0 = time.perf_counter()
            err = 0.0
            for i, s in zip(sharers, steps):
                lo, hi = m.values[i], 1.5
                xs = lo + (np.arange(g) + 0.5) * (hi - lo) / g
                vals = []
                for x in xs:
                    w = phi.copy()
                    w[i] = 2 * x
                    vals.append(float(m.own_leakage(dm_opt.solve(m, V.virtual_objective(w)).profile)[i]))
                err = max(err, abs(np.mean(vals) * (hi - lo) - s.integral()))
            t_grid = time.perf_counter() - t0
            calls_grid = g * len(sharers)
            print(f"{n:>3} {g:>5} {len(sharers):>7} {calls_exact:>11} {calls_grid:>10} "
                  f"{calls_grid / max(calls_exact, 1):>10.1f} {t_grid / max(t_exact, 1e-12):>10.1f} "
                  f"{err:>12.3g} {chk:>12.3g}")


if __name__ == "__main__":
    main()
