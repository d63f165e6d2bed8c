"""Frontier of exact branch-and-bound across instance families.

    python benchmarks/frontier.py                          # the issue's table, n = 30 … 100, 60 s
    python benchmarks/frontier.py --n 100 --time-limit 60  # the target column
    python benchmarks/frontier.py --grid                   # every family × value range × problem
    python benchmarks/frontier.py --cells equi09:U0911 --problems first_best --n 40 60 100
    python benchmarks/frontier.py --baseline '{}'          # compare against other bnb options

Seeded generators (numpy only, every instance named by family, value range, n and
seed): Wishart (``G Gᵀ/df``, df = n + 2, unit variances), equicorrelated ρ = 0.9 / 0.6 /
0.3, block (4 equal blocks, within 0.3, across 0.05), tridiagonal (unit variances,
neighbour correlation 0.45), low rank + diagonal (3 standard normal factors plus unit
diagonal, rescaled to unit variances).  Values: ``U0325`` = U[0.3, 2.5], ``U0911`` =
U[0.9, 1.1], ``U1052`` = U[1.05, 2].  Noise variances 1.

For each cell (family, values, problem, n) it runs ``dm_opt.solve(method="bnb")`` with
the default options and, unless ``--no-baseline``, with the baseline options (default:
symmetry chains and local search off, i.e. the search before them), both with the
same time limit, and prints status, gap, nodes and seconds of each and the time ratio
baseline / new.  If both certify, their objectives must agree within the tie tolerance
(else the script stops with MISMATCH).  A cell whose baseline did not certify shows
the ratio as ``>x`` (a lower bound).  numba kernels are compiled on a small instance first.
Timings are wall-clock on a shared machine: run baseline and new in the same process.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import dm_opt

#: bnb options that switch symmetry chains and local search off (the search before them)
BASELINE = {"symmetry": False, "local_search": False}


# ----------------------------------------------------------------- generators
def _unit(S: np.ndarray) -> np.ndarray:
    d = 1.0 / np.sqrt(np.diag(S))
    S = S * d[:, None] * d[None, :]
    return 0.5 * (S + S.T)


def cov_wishart(n, seed):
    G = np.random.default_rng(seed).standard_normal((n, n + 2))
    return _unit(G @ G.T / (n + 2))


def cov_equi(rho):
    def f(n, seed):
        return (1.0 - rho) * np.eye(n) + rho * np.ones((n, n))
    return f


def cov_block(n, seed, K=4, within=0.3, across=0.05):
    labels = np.repeat(np.arange(K), [n // K + (1 if b < n % K else 0) for b in range(K)])
    same = labels[:, None] == labels[None, :]
    S = np.where(same, within, across)
    np.fill_diagonal(S, 1.0)
    return S


def cov_tridiag(n, seed, rho=0.45):
    return np.eye(n) + rho * (np.eye(n, k=1) + np.eye(n, k=-1))


def cov_lowrank(n, seed, r=3):
    F = np.random.default_rng(10_000 + seed).standard_normal((n, r))
    return _unit(F @ F.T + np.eye(n))


FAMILIES = {
    "wishart": cov_wishart,
    "equi09": cov_equi(0.9),
    "equi06": cov_equi(0.6),
    "equi03": cov_equi(0.3),
    "block4": cov_block,
    "tridiag": cov_tridiag,
    "lowrank3": cov_lowrank,
}
VALUES = {"U0325": (0.3, 2.5), "U0911": (0.9, 1.1), "U1052": (1.05, 2.0)}

#: the rows of the issue's table
ISSUE_CELLS = ["wishart:U0325", "equi09:U0911", "equi03:U1052", "block4:U0911", "block4:U1052",
               "tridiag:U1052", "lowrank3:U0911"]


def values(name, n, seed):
    lo, hi = VALUES[name]
    return np.random.default_rng(20_000 + seed).uniform(lo, hi, size=n)


def market(family: str, vals: str, n: int, seed: int = 0) -> dm_opt.GaussianMarket:
    return dm_opt.GaussianMarket(FAMILIES[family](n, seed), values(vals, n, seed),
                                 name=f"{family}:{vals}:n{n}:s{seed}")


# ---------------------------------------------------------------------- runs
def run(m, problem, time_limit, options):
    t = time.perf_counter()
    r = dm_opt.solve(m, problem, method="bnb", time_limit=time_limit, **options)
    return r, time.perf_counter() - t


def fmt(r, s):
    st = "opt" if r.is_optimal else str(r.status)[:9]
    return f"{st:<9} {r.gap:8.2g} {r.nodes:>10} {s:8.2f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", nargs="+", default=None, help="family:values pairs (default: the issue's rows)")
    ap.add_argument("--grid", action="store_true", help="every family × value range")
    ap.add_argument("--n", type=int, nargs="+", default=[30, 40, 50, 60, 80, 100])
    ap.add_argument("--problems", nargs="+", default=["first_best", "equilibrium"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--options", default="{}", help="JSON bnb options of the new run")
    ap.add_argument("--baseline", default=json.dumps(BASELINE), help="JSON bnb options of the baseline run")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--skip-after-fail", action="store_true",
                    help="stop a (cell, problem) row at the first n the new run does not certify")
    args = ap.parse_args(argv)
    opts = json.loads(args.options)
    base = None if args.no_baseline else json.loads(args.baseline)
    cells = ([f"{f}:{v}" for f in FAMILIES for v in VALUES] if args.grid
             else (args.cells or ISSUE_CELLS))

    warm = market("wishart", "U0325", 10)
    for p in args.problems:
        dm_opt.solve(warm, p, method="bnb", **opts)
        if base is not None:
            dm_opt.solve(warm, p, method="bnb", **base)

    head = f"{'cell':<15} {'problem':<12} {'n':>4} {'seed':>4} | {'status':<9} {'gap':>8} {'nodes':>10} {'s':>8}"
    if base is not None:
        head += f" | {'base st':<9} {'gap':>8} {'nodes':>10} {'s':>8} | {'base/new':>8}"
    print(head, flush=True)
    for cell in cells:
        fam, vals = cell.split(":")
        for p in args.problems:
            failed = False
            for n in args.n:
                if failed and args.skip_after_fail:
                    break
                for seed in args.seeds:
                    m = market(fam, vals, n, seed)
                    r, s = run(m, p, args.time_limit, opts)
                    line = f"{cell:<15} {p:<12} {n:>4} {seed:>4} | {fmt(r, s)}"
                    failed = failed or not r.is_optimal
                    if base is not None:
                        rb, sb = run(m, p, args.time_limit, base)
                        if r.is_optimal and rb.is_optimal and abs(r.objective - rb.objective) > r.tie_tol:
                            raise SystemExit(f"MISMATCH {cell} {p} n={n} seed={seed}: new {r.objective!r} "
                                             f"vs baseline {rb.objective!r}")
                        if r.is_optimal and not rb.is_optimal and rb.objective > r.objective + r.tie_tol:
                            raise SystemExit(f"WRONG {cell} {p} n={n} seed={seed}: baseline incumbent "
                                             f"{rb.objective!r} beats the certified {r.objective!r}")
                        ratio = f"{sb / s:8.1f}" if rb.is_optimal else f"{'>' + format(sb / s, '.1f'):>8}"
                        if not r.is_optimal:
                            ratio = f"{'-':>8}"
                        line += f" | {fmt(rb, sb)} | {ratio}"
                    print(line, flush=True)


if __name__ == "__main__":
    main()
