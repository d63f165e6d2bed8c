"""Root gaps of the MIP formulations (issue: a strong exact MIP), and full solve times.

For Wishart markets (``Σ = wishart(n, seed)``, values ``U[0, 2]``, ``τ² = 1``, as in
``benchmarks/exact_solvers.py``) and each problem, the optimum (``bnb``) and the root bounds of

* ``lp``   — the LP relaxation of the ``milp`` model (binaries relaxed to ``[0, 1]``), per variant;
* ``root`` — HiGHS' dual bound after its root node (presolve + cuts; ``mip_max_nodes = 1``);
* ``bnb``  — ``bnb``'s interval bound and modular (Woodbury) bound at the root node.

Variants: ``mixed`` (the default layout, ``cuts=("sharer",)``), ``mixed+cuts`` (``sharer``,
``mono``, ``dropone``), ``precision`` (plain symmetric layout of docs/spec.md §1.2),
``mixed+mod`` / ``precision+mod`` (plus the ``modular`` cut: ``bnb``'s root bound as one row;
``precision+probe`` / ``precision+convex`` (plus the ``probing`` cut: ``bnb``'s modular bound at the
root's children ``a_j = 0/1``, products ``a_j a_l`` linearised; or the ``convex`` cut: per-user
gradient and Woodbury bounds on ``Q_ii``), ``strongest`` (all four cuts: the default model of
``to_pyomo`` and ``dm-opt export`` where the plain layout is safe,
:func:`dm_opt.gaussian.backends.milp.pyomo.strongest_form`).
Gap = ``(bound − optimum)/|optimum|``; the equilibrium's LP is the initial tangent relaxation.

    python benchmarks/mip_root_gap.py                         # n = 10, 15, 20, 30; seed 0
    python benchmarks/mip_root_gap.py --n 15 20 --solve       # plus full `milp` solve times per variant
    python benchmarks/mip_root_gap.py --no-root               # LP bounds only (fast)
    python benchmarks/mip_root_gap.py --n 20 30 --seeds 0 1 2 --no-root --variants mixed precision+mod strongest
    python benchmarks/mip_root_gap.py --n 20 25 --rows        # with the three linear rows of mip_linear_constraints.py

With ``--rows`` the optimum is the constrained one (``bnb``) and every model carries the rows; the
``bnb`` columns are then its unconstrained root bounds (shown for scale only).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import dm_opt
from dm_opt.core import generators as G
from dm_opt.core.highs import set_options
from dm_opt.gaussian.backends import bnb as B
from dm_opt.gaussian.backends import milp as M
from dm_opt.gaussian.constraints import SideConstraints

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mip_linear_constraints import rows  # noqa: E402

PROBLEMS = ("first_best", "equilibrium", "decorrelated")
VARIANTS = {
    "mixed": dict(posterior_form="mixed"),
    "mixed+cuts": dict(posterior_form="mixed", cuts=("sharer", "mono", "dropone")),
    "precision": dict(posterior_form="precision"),
    "mixed+mod": dict(posterior_form="mixed", cuts=("sharer", "modular")),
    "precision+mod": dict(posterior_form="precision", cuts=("sharer", "modular")),
    "precision+probe": dict(posterior_form="precision", cuts=("sharer", "modular", "probing")),
    "precision+convex": dict(posterior_form="precision", cuts=("sharer", "modular", "convex")),
    "strongest": dict(posterior_form="precision", cuts=("sharer", "modular", "probing", "convex")),
}


def instance(n: int, seed: int) -> dm_opt.GaussianMarket:
    return dm_opt.GaussianMarket(G.wishart(n, seed), G.uniform(n, seed + 10_000, 0.0, 2.0))


def lp_bound(model) -> float:
    import highspy

    h = M.to_highs(model)
    h.changeColsIntegrality(model.num_col, np.arange(model.num_col, dtype=np.int32),
                            np.array([highspy.HighsVarType.kContinuous] * model.num_col))
    h.run()
    return h.getInfo().objective_function_value * model.scale


def root_bound(model) -> float:
    h = M.to_highs(model)
    set_options(h, mip_max_nodes=1, mip_rel_gap=0.0, random_seed=0, time_limit=600.0)
    h.run()
    return h.getInfo().mip_dual_bound * model.scale


def bnb_root(market, objective) -> tuple[float, float]:
    setup = B._setup(market, objective, None, False, False)
    interval = B._GaussianFreshNodes(market, objective, setup, modular=False)(setup.state0)[-1]
    modular = B._GaussianFreshNodes(market, objective, setup, modular=True)(setup.state0)[-1]
    return interval, modular


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 15, 20, 30])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    ap.add_argument("--no-root", action="store_true", help="skip HiGHS' root-node bounds")
    ap.add_argument("--solve", action="store_true", help="also time full `milp` solves per variant")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--rows", action="store_true", help="add the three random linear rows of mip_linear_constraints.py")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                    help="model variants to measure (the first is the baseline of the 'ratio' column)")
    args = ap.parse_args(argv)
    names = list(args.variants)
    roots = [v for v in ("mixed", "mixed+mod", "precision+mod", "strongest") if v in names]
    head = [f"lp:{v}" for v in names] + ([] if args.no_root else [f"root:{v}" for v in roots]) + [
        "bnb:int", "bnb:mod", f"lp ratio {names[-1]}/{names[0]}"]
    print(f"{'n':>3} {'seed':>4} {'problem':<12} {'optimum':>10} " + " ".join(f"{h:>16}" for h in head))
    for n in args.n:
        for seed in args.seeds:
            m = instance(n, seed)
            cons = rows(n, seed) if args.rows else None
            sc = SideConstraints.from_any(cons, n)
            for p in args.problems:
                obj = m.objective(p)
                opt = dm_opt.solve(m, p, "bnb", constraints=cons).objective
                if not np.isfinite(opt):
                    print(f"{n:>3} {seed:>4} {p:<12} {'infeasible':>10}", flush=True)
                    continue
                models = {v: M.build_model(m, obj, sc, **VARIANTS[v]) for v in names}
                vals = [lp_bound(models[v]) for v in names]
                ratio = (vals[-1] - opt) / (vals[0] - opt) if vals[0] != opt else float("nan")
                if not args.no_root:
                    vals += [root_bound(models[v]) for v in roots]
                vals += list(bnb_root(m, obj))
                print(f"{n:>3} {seed:>4} {p:<12} {opt:>10.6g} "
                      + " ".join(f"{100 * (v - opt) / abs(opt):>15.1f}%" for v in vals) + f" {ratio:>16.2f}",
                      flush=True)
                if args.solve:
                    for v in names:
                        kw = VARIANTS[v]
                        if v == "mixed+cuts":
                            continue
                        t, c = time.perf_counter(), time.process_time()
                        r = dm_opt.solve(m, p, "milp", time_limit=args.time_limit, constraints=cons, **kw)
                        dt, dc = time.perf_counter() - t, time.process_time() - c
                        ok = r.is_optimal and abs(r.objective - opt) <= r.tie_tol
                        print(f"    solve {v:<16} {str(r.status):<11} {dt:>7.2f}s wall {dc:>7.2f}s cpu gap {r.gap:.2g} "
                              f"rounds {r.extra.get('oa_rounds')} {'ok' if ok or not r.is_optimal else 'MISMATCH'}",
                              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
