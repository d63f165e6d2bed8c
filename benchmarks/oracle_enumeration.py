"""Generic oracle enumeration vs the compiled Gaussian kernel, measured in the same run.

    python benchmarks/oracle_enumeration.py                 # n = 10, 12, 14, 16
    python benchmarks/oracle_enumeration.py --n 12 14 --components 3

For each n, on the same Wishart Σ (unit variances), values uniform on [0, 2]
(seed 0), it times the equilibrium problem (all optima) with

* ``gaussian``  — ``GaussianMarket`` through the compiled Gray-code kernel (the baseline);
* ``tabulated`` — the same leakage as a ``TabulatedMarket`` (table lookups in blocks);
* ``mutual_information`` — ``MutualInformationMarket`` (compiled block walk of diag P);
* ``mixture K`` — ``MixtureMarket`` with K components (one block walk per component);
* ``plain`` — the Gaussian market seen only through ``leakage``/``own_leakage``
  (one oracle call per profile; skipped above ``--plain-max-n``),

and prints each time and its ratio to the baseline.  Every run is checked:
the tabulated and plain paths must return the kernel's optima exactly.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import dm_opt  # noqa: E402
from dm_opt.core.generators import uniform, wishart  # noqa: E402
from dm_opt.gaussian.backends.oracle_enumeration import enumerate_oracle  # noqa: E402
from dm_opt.gaussian.leakage import MixtureMarket, MutualInformationMarket, TabulatedMarket  # noqa: E402
from dm_opt.gaussian.objectives import LeakageObjective  # noqa: E402


class Plain:
    def __init__(self, g):
        self.g, self.n, self.values = g, g.n, g.values

    def leakage(self, a):
        return self.g.leakage(a)

    def own_leakage(self, a):
        return self.g.own_leakage(a)


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 12, 14, 16])
    ap.add_argument("--components", type=int, default=3)
    ap.add_argument("--plain-max-n", type=int, default=12)
    args = ap.parse_args(argv)
    print(f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    # warm up the JIT caches so compile time is not measured
    w = dm_opt.GaussianMarket(np.eye(3), [1, 1, 1])
    dm_opt.solve(w, "equilibrium", "enumerate")
    dm_opt.solve(MutualInformationMarket(np.eye(3), [1, 1, 1]), "equilibrium", "enumerate")
    print(f"{'n':>3} {'method':>22} {'seconds':>9} {'ratio':>8}")
    for n in args.n:
        covs = [wishart(n, seed=k) for k in range(args.components)]
        v = uniform(n, seed=0, low=0.0, high=2.0)
        g = dm_opt.GaussianMarket(covs[0], v)
        base, t_base = timed(lambda g=g: dm_opt.solve(g, "equilibrium", "enumerate", all_optima=True, workers=1))
        rows = [("gaussian (kernel)", t_base)]
        tab = TabulatedMarket.from_market(g)
        r, t = timed(lambda tab=tab: dm_opt.solve(tab, "equilibrium", "enumerate", all_optima=True))
        assert [o.tolist() for o in r.optima] == [o.tolist() for o in base.optima], "tabulated differs"
        rows.append(("tabulated", t))
        mi = MutualInformationMarket(covs[0], v)
        _, t = timed(lambda mi=mi: dm_opt.solve(mi, "equilibrium", "enumerate", all_optima=True))
        rows.append(("mutual_information", t))
        mix = MixtureMarket(np.full(args.components, 1.0 / args.components), covs, v)
        _, t = timed(lambda mix=mix: dm_opt.solve(mix, "equilibrium", "enumerate", all_optima=True))
        rows.append((f"mixture K={args.components}", t))
        if n <= args.plain_max_n:
            obj = LeakageObjective.for_problem("equilibrium", v)
            r, t = timed(lambda g=g, obj=obj, base=base: enumerate_oracle(Plain(g), obj, tol=base.tie_tol,
                                                                          all_optima=True))
            assert [o.tolist() for o in r.optima] == [o.tolist() for o in base.optima], "plain differs"
            rows.append(("plain oracle", t))
        for name, t in rows:
            print(f"{n:>3} {name:>22} {t:>9.3f} {t / t_base:>8.1f}x")


if __name__ == "__main__":
    main()
