"""Exact backends on random Wishart markets: status, gap, build/solve time, ratio vs enumeration.

Instances: ``Σ = wishart(n, seed)`` (unit variances), values uniform on ``[0, 2]``,
``τ² = 1``.  Every backend in the registry that is installed and exact
(``enumerate`` for ``n ≤ 22``, ``bnb``, ``milp``, ``misocp-scip``) solves each
instance with a per-solve time limit; the answer is checked against
enumeration (where it runs) or against the other backends' proven optima.

    python benchmarks/exact_solvers.py --quick            # n = 12, 16, 20; 10 s limit (a few minutes)
    python benchmarks/exact_solvers.py                    # n = 15, 20, 22, 25, 30, 40, 50, 60; 60 s limit
    python benchmarks/exact_solvers.py --ablation         # MILP formulation variants vs enumeration

Columns: ``status``, ``gap`` (relative), ``build``/``solve`` seconds, ``x enum``
(total time / enumeration time of the same instance, same run), ``check``.
At the end: the MILP's build/solve ratio at n = 30 and, per backend and
problem, the largest n certified optimal within the limit.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import dm_opt
from dm_opt.core import generators as G
from dm_opt.core.registry import available_methods, get_backend

EXACT = ("enumerate", "bnb", "milp", "misocp-scip")
ENUM_MAX_N = 22


def instance(n: int, seed: int) -> dm_opt.GaussianMarket:
    return dm_opt.GaussianMarket(G.wishart(n, seed), G.uniform(n, seed + 10_000, 0.0, 2.0))


def methods(selected=None) -> list[str]:
    out = []
    for name in EXACT:
        if name not in available_methods() or (selected and name not in selected):
            continue
        try:
            get_backend(name)
        except Exception as exc:  # not installed: say so once
            print(f"# {name}: unavailable ({exc})")
            continue
        out.append(name)
    return out


def run(args) -> int:
    names = methods(args.methods)
    print(f"# backends: {', '.join(names)}; time limit {args.time_limit:g}s per solve; "
          f"Wishart n in {args.n}; values U[0,2]; seeds {args.seeds}")
    print(f"{'n':>3} {'seed':>4} {'problem':<13} {'method':<10} {'status':<11} {'gap':>9} "
          f"{'build':>8} {'solve':>8} {'x enum':>8} {'objective':>14} {'nodes':>8} {'rounds':>6} check")
    certified: dict[tuple, int] = {}
    ratio30 = []
    bad = 0
    for n in args.n:
        for seed in range(args.seeds):
            m = instance(n, seed)
            for problem in args.problems:
                ref = None
                enum_t = None
                for name in names:
                    if name == "enumerate" and n > ENUM_MAX_N:
                        continue
                    t0 = time.perf_counter()
                    try:
                        r = dm_opt.solve(m, problem, name, time_limit=args.time_limit)
                    except dm_opt.DmOptError as exc:
                        print(f"{n:>3} {seed:>4} {problem:<13} {name:<10} error: {exc}")
                        continue
                    wall = time.perf_counter() - t0
                    if name == "enumerate" and r.is_optimal:
                        ref, enum_t = r.objective, wall
                    check = ""
                    if r.is_optimal and name == "enumerate":
                        check = "reference"
                        certified[(name, problem)] = max(certified.get((name, problem), 0), n)
                    elif r.is_optimal:
                        if ref is None:
                            ref = r.objective
                        elif abs(r.objective - ref) > max(r.tie_tol, 1e-7 * max(1.0, abs(ref))):
                            check, bad = "MISMATCH", bad + 1
                        else:
                            check = "ok"
                        key = (name, problem)
                        certified[key] = max(certified.get(key, 0), n)
                    xe = f"{wall / enum_t:8.2f}" if enum_t and name != "enumerate" else f"{'':>8}"
                    if name == "milp" and n == 30 and r.solve_seconds > 0:
                        ratio30.append(r.build_seconds / r.solve_seconds)
                    print(f"{n:>3} {seed:>4} {problem:<13} {name:<10} {str(r.status):<11} {r.gap:9.2e} "
                          f"{r.build_seconds:8.3f} {r.solve_seconds:8.3f} {xe} {r.objective:14.8g} {r.nodes:>8} "
                          f"{r.extra.get('oa_rounds', ''):>6} {check}",
                          flush=True)
    print()
    if ratio30:
        print(f"MILP build/solve time ratio at n = 30: median {np.median(ratio30):.4f} "
              f"(max {max(ratio30):.4f}) over {len(ratio30)} solves")
    print("largest n certified optimal within the limit:")
    for name in names:
        row = ", ".join(f"{p}: {certified.get((name, p), '-')}" for p in args.problems)
        print(f"  {name:<10} {row}")
    if bad:
        print(f"{bad} MISMATCH(ES) against the reference", file=sys.stderr)
        return 1
    return 0


def ablation(args) -> int:
    """MILP variants (cuts, symmetry, tangent form/table) against enumeration on the same instances."""
    variants = {
        "default": {},
        "no cuts": {"cuts": ()},
        "+mono": {"cuts": ("sharer", "mono")},
        "full P": {"symmetric": False},
        "Σ-form": {"posterior_form": "covariance"},
        "big-M": {"tangent_form": "bigm"},
        "4 tangents": {"n_tangents": 4},
        "16 tangents": {"n_tangents": 16},
    }
    n = args.ablation_n
    print(f"# MILP ablation: Wishart n = {n}, seeds 0..{args.seeds - 1}, limit {args.time_limit:g}s; "
          f"times are sums over seeds; 'x enum' = MILP time / enumeration time")
    print(f"{'problem':<13} {'variant':<12} {'optimal':>7} {'seconds':>9} {'x enum':>8} {'rounds':>7} {'nodes':>8}")
    for problem in args.problems:
        enum_t, ms = 0.0, []
        for seed in range(args.seeds):
            m = instance(n, seed)
            t0 = time.perf_counter()
            e = dm_opt.solve(m, problem, "enumerate")
            enum_t += time.perf_counter() - t0
            ms.append((m, e.objective))
        for label, opts in variants.items():
            if problem != "equilibrium" and ("tangent" in label or "big-M" in label):
                continue
            tot, ok, rounds, nodes = 0.0, 0, 0, 0
            for m, best in ms:
                t0 = time.perf_counter()
                r = dm_opt.solve(m, problem, "milp", time_limit=args.time_limit, **opts)
                tot += time.perf_counter() - t0
                ok += r.is_optimal and abs(r.objective - best) <= max(r.tie_tol, 1e-9)
                rounds += r.extra.get("oa_rounds", 0)
                nodes += r.nodes
            print(f"{problem:<13} {label:<12} {ok:>3}/{len(ms):<3} {tot:9.2f} {tot / enum_t:8.1f} {rounds:>7} "
                  f"{nodes:>8}", flush=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="n = 12, 16, 20, one seed, 10 s limit")
    p.add_argument("--n", type=int, nargs="+", help="sizes (default 15 20 22 25 30 40 50 60)")
    p.add_argument("--seeds", type=int, default=None, help="instances per size (default 1; ablation 3)")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per solve (default 60; quick 10)")
    p.add_argument("--problems", nargs="+", default=["first_best", "equilibrium", "decorrelated"])
    p.add_argument("--methods", nargs="+", help=f"subset of {', '.join(EXACT)}")
    p.add_argument("--ablation", action="store_true", help="MILP formulation variants vs enumeration")
    p.add_argument("--ablation-n", type=int, default=10)
    args = p.parse_args(argv)
    if args.quick:
        args.n = args.n or [12, 16, 20]
        args.time_limit = args.time_limit or 10.0
    args.n = args.n or [15, 20, 22, 25, 30, 40, 50, 60]
    args.time_limit = args.time_limit or 60.0
    for problem in args.problems:   # compile numba kernels (enumeration, bnb) before timing anything
        for name in methods(args.methods):
            dm_opt.solve(instance(6, 0), problem, name)
    if args.ablation:
        args.seeds = args.seeds or 3
        return ablation(args)
    args.seeds = args.seeds or 1
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
