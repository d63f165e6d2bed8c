"""GLP information-design LPs (SPEC §2): timings measured in one run, with ratios.

1. ``P_q`` at |Ω| = 200 (slides' payoffs, 200 fees): model build and solve time of the
   compact (suffix-sum) obedience formulation, against the dense textbook formulation
   (O(|A|²|Ω|) nonzeros) as the baseline of the same run; both values must agree.
2. A sweep of ``--sweep`` databases q: one compiled model re-solved by changing the
   cvxpy Parameter, and one live highspy model with warm starts (``PlatformHighs``),
   against rebuilding the model for every q (baseline); every value is compared.
3. Constrained efficiency W° for |Ω| = 2..20: the KKT MILP (time, status, gap) and,
   up to |Ω| = 6, the exact piece enumeration, whose W° the MILP must match.

    python benchmarks/info_design.py                 # all three, default sizes
    python benchmarks/info_design.py --quick         # smaller sizes (smoke run)
    python benchmarks/info_design.py --only sweep --sweep 1000 --sweep-n 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dm_opt import InfoDesignMarket
from dm_opt.solvers import info_design_lp as lp


def market(n: int, seed: int = 0, gamma_u: float = 1.0, gamma_pi: float = 0.3) -> InfoDesignMarket:
    rng = np.random.default_rng(seed)
    return InfoDesignMarket(np.arange(1.0, n + 1.0), rng.dirichlet(np.ones(n)), 0.5 * n / 10, gamma_u, gamma_pi)


def bench_platform(n: int, dense: bool) -> None:
    m = market(n)
    q = m.prior * np.random.default_rng(1).uniform(0.2, 1.0, n)
    lp.PlatformLP(market(3)).solve(np.ones(3))      # warm-up: import cvxpy/HiGHS outside the timings
    rows = []
    for compact in ([True, False] if dense else [True]):
        t0 = time.perf_counter()
        P = lp.PlatformLP(m, compact=compact)
        t1 = time.perf_counter()
        s = P.solve(q)
        t2 = time.perf_counter()
        s2 = P.solve(q * 0.9)                       # re-solve with the compiled problem
        t3 = time.perf_counter()
        rows.append((("compact" if compact else "dense"), t1 - t0, t2 - t1, t3 - t2, s.value, s2.value))
        print(f"  ({rows[-1][0]} done)", flush=True)
    t0 = time.perf_counter()
    H = lp.PlatformHighs(m)
    h1 = H.solve(q)
    t1 = time.perf_counter()
    h2 = H.solve(q * 0.9)
    t2 = time.perf_counter()
    assert abs(h1.value - rows[0][4]) <= 1e-6 * max(1, abs(h1.value)) and abs(h2.value - rows[0][5]) <= 1e-6 * max(1, abs(h2.value))
    rows.append(("highspy", 0.0, t1 - t0, t2 - t1, h1.value, h2.value))
    print(f"\n[1] P_q, |Ω| = |A| = {n}")
    print(f"{'formulation':>12} {'build s':>9} {'1st solve s':>12} {'re-solve s':>11} {'V(q)':>14}"
          "   (highspy: build included in 1st solve; re-solve warm-started)")
    for r in rows:
        print(f"{r[0]:>12} {r[1]:>9.3f} {r[2]:>12.3f} {r[3]:>11.3f} {r[4]:>14.8f}")
    print(f"highspy warm re-solve vs cvxpy compact re-solve: {rows[0][3] / rows[-1][3]:.1f}x faster")
    if dense:
        assert abs(rows[0][4] - rows[1][4]) <= 1e-6 * max(1, abs(rows[0][4])), "formulations disagree"
        tc, td = rows[0][1] + rows[0][2], rows[1][1] + rows[1][2]
        print(f"dense / compact (build + first solve): {td / tc:.2f}x;  re-solve: {rows[1][3] / rows[0][3]:.2f}x")


def bench_sweep(n: int, count: int) -> None:
    m = market(n, seed=2)
    rng = np.random.default_rng(3)
    Q = m.prior[None, :] * rng.uniform(0, 1, (count, n))
    t0 = time.perf_counter()
    P = lp.PlatformLP(m)
    reuse = np.array([P.solve(q).value for q in Q])
    t1 = time.perf_counter()
    rebuild = np.array([lp.PlatformLP(m).solve(q).value for q in Q])
    t2 = time.perf_counter()
    H = lp.PlatformHighs(m)
    warm = np.array([H.solve(q).value for q in Q])
    t3 = time.perf_counter()
    err = float(max(np.max(np.abs(reuse - rebuild)), np.max(np.abs(warm - rebuild))))
    assert err <= 1e-7, f"sweep values differ by {err}"
    print(f"\n[2] sweep of {count} databases, |Ω| = {n}")
    print(f"re-use compiled model: {t1 - t0:8.2f} s ({1e3 * (t1 - t0) / count:.2f} ms/q)")
    print(f"rebuild every time:    {t2 - t1:8.2f} s ({1e3 * (t2 - t1) / count:.2f} ms/q)   (baseline)")
    print(f"highspy warm start:    {t3 - t2:8.2f} s ({1e3 * (t3 - t2) / count:.2f} ms/q)")
    print(f"speed-up of re-use over rebuild: {(t2 - t1) / (t1 - t0):.2f}x;  highspy warm start over rebuild: "
          f"{(t2 - t1) / (t3 - t2):.2f}x   (max |ΔV| = {err:.1e})")


def bench_efficiency(sizes, time_limit: float) -> None:
    print(f"\n[3] constrained efficiency W° (slides' payoffs, γ_u = 1, γ_π = 0.3), MILP time limit {time_limit:g}s")
    print(f"{'|Ω|':>4} {'pieces s':>9} {'#pieces':>8} {'MILP s':>8} {'status':>10} {'gap':>8} {'W° (MILP)':>14} {'match':>6}")
    for n in sizes:
        m = market(n, seed=n)
        tp, K, wp = float("nan"), "", None
        if n <= lp.PIECES_MAX_N:
            t0 = time.perf_counter()
            r = lp.constrained_efficiency(m, method="pieces")
            tp, K, wp = time.perf_counter() - t0, len(r.pieces), r.welfare
        t0 = time.perf_counter()
        rm = lp.constrained_efficiency_milp(m, time_limit=time_limit)
        tm = time.perf_counter() - t0
        match = "" if wp is None else ("yes" if abs(wp - rm.welfare) <= 1e-6 else "NO")
        print(f"{n:>4} {tp:>9.2f} {K!s:>8} {tm:>8.2f} {rm.status.value:>10} {rm.gap:>8.1e} {rm.welfare:>14.8f} {match:>6}",
              flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["platform", "sweep", "efficiency"])
    ap.add_argument("--n", type=int, default=200, help="|Ω| for [1]")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense baseline in [1]")
    ap.add_argument("--sweep", type=int, default=1000)
    ap.add_argument("--sweep-n", type=int, default=20)
    ap.add_argument("--time-limit", type=float, default=120.0)
    a = ap.parse_args(argv)
    if a.quick:
        a.n, a.sweep, a.sweep_n = 40, 100, 10
    sizes = [2, 4, 6, 8] if a.quick else [2, 4, 6, 8, 10, 12, 16, 20]
    if a.only in (None, "platform"):
        bench_platform(a.n, not a.no_dense)
    if a.only in (None, "sweep"):
        bench_sweep(a.sweep_n, a.sweep)
    if a.only in (None, "efficiency"):
        bench_efficiency(sizes, a.time_limit)


if __name__ == "__main__":
    main()
