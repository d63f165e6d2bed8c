"""Exact solves under three random linear side constraints (scipy LinearConstraint).

Wishart markets (``Σ = wishart(n, seed)``, values ``U[0, 2]``, ``τ² = 1``) with one
conflict pair, one knapsack (integer weights 1–9, capacity 20–70 % of their sum) and one
quota (at least ``q`` sharers from a random half), the rows of
``tests/gaussian/test_linear_constraints.py``.  Each method solves each problem with a time
limit; answers that are certified by two methods must agree within ``tie_tol``.

    python benchmarks/mip_linear_constraints.py                          # n = 20, 30; bnb and milp
    python benchmarks/mip_linear_constraints.py --n 60 --methods bnb     # the bnb target size
    python benchmarks/mip_linear_constraints.py --n 25 --methods milp --milp-options '{"cuts": ["sharer", "modular"]}'
    python benchmarks/mip_linear_constraints.py --n 40 50 60 --methods bnb bnb-prune bnb-branch
    python benchmarks/mip_linear_constraints.py --n 20 25 30 40 --methods bnb milp scip-check

``scip-check`` is the SCIP branch-and-check (:mod:`dm_opt.gaussian.backends.scip_check`); its line
ends with ``cb=`` the CPU seconds spent in its Python callbacks (node cuts, exact checks) and the
number of nodes that got node cuts.

``bnb-prune`` / ``bnb-branch`` are bnb with ``row_bound="prune"`` (rows inside the compiled search,
pruning only: the baseline of the Lagrangian row bound) / ``row_bound="branch"`` (the older search
that branches on row violations around unconstrained solves).  ``cpu`` is the process time of the
solve (the machine is shared: wall seconds are noisy).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.optimize import LinearConstraint as LC

import dm_opt
from dm_opt.core import generators as G

PROBLEMS = ("first_best", "equilibrium", "decorrelated")
#: method name -> (dm_opt method, bnb options)
VARIANTS = {"bnb-prune": ("bnb", {"row_bound": "prune"}), "bnb-branch": ("bnb", {"row_bound": "branch"})}


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
    ap.add_argument("--milp-options", type=json.loads, default={}, metavar="JSON",
                    help='options of the milp backend, e.g. \'{"cuts": ["sharer", "modular"]}\'')
    args = ap.parse_args(argv)
    print(f"{'n':>3} {'seed':>4} {'problem':<13} {'method':<12} {'status':<11} {'seconds':>8} {'cpu':>8} {'gap':>9} "
          f"{'objective':>14} {'nodes':>8} check")
    warm = dm_opt.GaussianMarket(G.wishart(10, 0), G.uniform(10, 1, 0.0, 2.0))
    for meth in args.methods:           # compile the bnb kernels outside the timings
        name, opts = VARIANTS.get(meth, (meth, {}))
        if name == "bnb":
            dm_opt.solve(warm, "first_best", name, constraints=rows(10, 0), options=opts)
        if name == "scip-check":
            # the posterior kernels run as NumPy twins for their first calls, then compile: a short
            # n = 40 solve does that (and loads the bnb kernels) outside the timings
            big = dm_opt.GaussianMarket(G.wishart(40, 99), G.uniform(40, 99, 0.0, 2.0))
            dm_opt.solve(big, "equilibrium", name, constraints=rows(40, 99), time_limit=5)
    for n in args.n:
        for seed in args.seeds:
            m = dm_opt.GaussianMarket(G.wishart(n, seed), G.uniform(n, seed + 10_000, 0.0, 2.0))
            cons = rows(n, seed)
            for p in args.problems:
                certified = []
                for meth in args.methods:
                    name, opts = VARIANTS.get(meth, (meth, None))
                    opts = args.milp_options if meth == "milp" else opts
                    t, cpu = time.perf_counter(), time.process_time()
                    r = dm_opt.solve(m, p, name, constraints=cons, time_limit=args.time_limit, options=opts)
                    dt, dc = time.perf_counter() - t, time.process_time() - cpu
                    check = ""
                    if r.is_optimal:
                        if certified and abs(certified[0] - r.objective) > r.tie_tol:
                            check = "MISMATCH"
                        certified.append(r.objective)
                    if "callback_seconds" in r.extra:
                        check += f" cb={r.extra['callback_seconds']:.2f}s cut_nodes={r.extra['cut_nodes']}"
                    print(f"{n:>3} {seed:>4} {p:<13} {meth:<12} {str(r.status):<11} {dt:>8.2f} {dc:>8.2f} "
                          f"{r.gap:>9.2g} {r.objective:>14.8g} {r.nodes:>8} {check}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
