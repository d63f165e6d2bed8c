"""Exact solves under three random linear side constraints (scipy LinearConstraint).

Wishart markets (``Σ = wishart(n, seed)``, values ``U[0, 2]``, ``τ² = 1``) with one
conflict pair, one knapsack (integer weights 1–9, capacity 20–70 % of their sum) and one
quota (at least ``q`` sharers from a random half), the rows of
``tests/gaussian/test_linear_constraints.py``.  Each method solves each problem with a time
limit; answers that are certified by two methods must agree within ``tie_tol``.

    python benchmarks/mip_linear_constraints.py                          # n = 20, 30; bnb and milp
    python benchmarks/mip_linear_constraints.py --n 60 --methods bnb     # the bnb target size
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import LinearConstraint as LC

import dm_opt
from dm_opt.core import generators as G

PROBLEMS = ("first_best", "equilibrium", "decorrelated")


def rows(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    i, j = rng.choice(n, 2, replace=False)
    conflict = np.zeros(n)
    conflict[[i, j]] = 1.0
    w = rng.integers(1, 10, n).astype(float)
    g = (rng.random(n) < 0.5).astype(float)
    return [LC(conflict, ub=1), LC(w, ub=float(rng.uniform(0.2, 0.7) * w.sum())),
            LC(g, lb=int(rng.integers(0, max(1, int(g.sum())) + 1)))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[20, 30])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", default=["bnb", "milp"])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args(argv)
    print(f"{'n':>3} {'seed':>4} {'problem':<13} {'method':<12} {'status':<11} {'seconds':>8} {'gap':>9} "
          f"{'objective':>14} {'nodes':>8} check")
    for n in args.n:
        for seed in args.seeds:
            m = dm_opt.GaussianMarket(G.wishart(n, seed), G.uniform(n, seed + 10_000, 0.0, 2.0))
            cons = rows(n, seed)
            for p in args.problems:
                certified = []
                for meth in args.methods:
                    t = time.perf_counter()
                    r = dm_opt.solve(m, p, meth, constraints=cons, time_limit=args.time_limit)
                    dt = time.perf_counter() - t
                    check = ""
                    if r.is_optimal:
                        if certified and abs(certified[0] - r.objective) > r.tie_tol:
                            check = "MISMATCH"
                        certified.append(r.objective)
                    print(f"{n:>3} {seed:>4} {p:<13} {meth:<12} {str(r.status):<11} {dt:>8.2f} {r.gap:>9.2g} "
                          f"{r.objective:>14.8g} {r.nodes:>8} {check}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
