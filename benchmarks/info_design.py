"""GLP information-design LPs (docs/spec.md §2): timings measured in one run, with ratios.

1. ``P_q`` at |Ω| = |A| = 200 (slides' payoffs): the exact closed form (``bbm``, BBM
   surplus triangle, dm_opt/info_design/bbm.py) against the compact LP in cvxpy
   and in a live highspy model (baselines of the same run; every value is compared), and
   optionally the dense textbook LP (O(|A|²|Ω|) nonzeros).
2. A sweep of ``--sweep`` databases q with the LP: one compiled cvxpy model re-solved by
   changing its Parameter, and one live highspy model with warm starts
   (``PlatformHighs``), against rebuilding the model for every q (baseline); once on
   independent random q's and once along a path of q's (neighbouring databases); the
   closed form on the same q's.  Every value is compared.
4. ``P_q`` with general payoff matrices (``InfoDesignMarket.from_payoffs``) and the ranges of
   ``∂V(q)`` (``--only general``): the package's path (suffix-sum obedience rows when ``π`` is
   piecewise constant in ω, IPM+crossover for a large cold solve, HiGHS ranging at the optimal basis
   with dual-face LPs only for primal-degenerate directions) against the previous one (dense
   obedience rows, primal simplex below |A|·|Ω| = 2500, 2n dual-face LPs), in the same run, on
   (a) the slides' payoffs written as general matrices and (b) random uniform payoffs.  Every value
   and range is compared (with the closed form for (a)).
5. ``--general N`` (e.g. ``--general 200``): ``P_q`` plus the ranges of ``∂V(q)`` with random general
   payoffs at |Ω| = |A| = N by row-and-column generation (``GeneralPlatformHighs``, the default for
   such markets) against the cvxpy path (``PlatformLP``: one compiled model, dual-face LPs for
   ``∂V``; where cvxpy's compilation exceeds the memory budget — |Ω| = |A| = 200 — the full dense
   highspy model ``PlatformHighs`` with ranging instead) in the same run; CPU seconds
   (``time.process_time``, both HiGHS threads included) and wall seconds; V(q) and every range end
   compared.
3. Constrained efficiency W°: the closed form (one LP in n+1 variables) for |Ω| up to
   200, the KKT MILP (time, status, gap) up to |Ω| = 20, and the exact piece enumeration
   with LP-found pieces up to |Ω| = 6; W° must agree wherever two methods are exact.

    python benchmarks/info_design.py                 # all three, default sizes
    python benchmarks/info_design.py --quick         # smaller sizes (smoke run)
    python benchmarks/info_design.py --only sweep --sweep 1000 --sweep-n 20
    python benchmarks/info_design.py --only equilibria --eq-sizes 4,6,8   # [5] competitive equilibria
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dm_opt import InfoDesignMarket
from dm_opt.core.errors import LimitExceeded
from dm_opt.core.limits import Deadline
from dm_opt.info_design import bbm, lp


def market(n: int, seed: int = 0, gamma_u: float = 1.0, gamma_pi: float = 0.3) -> InfoDesignMarket:
    rng = np.random.default_rng(seed)
    return InfoDesignMarket(np.arange(1.0, n + 1.0), rng.dirichlet(np.ones(n)), 0.5 * n / 10, gamma_u, gamma_pi)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def bench_platform(n: int, dense: bool, lp_baseline: bool) -> None:
    m = market(n)
    q = m.prior * np.random.default_rng(1).uniform(0.2, 1.0, n)
    lp.PlatformLP(market(3)).solve(np.ones(3))      # warm-up: import cvxpy/HiGHS outside the timings
    bbm.platform(market(3), np.ones(3))
    t0 = time.perf_counter()
    b1 = bbm.platform(m, q)                          # with the exact ∂V ranges
    t1 = time.perf_counter()
    b2 = bbm.platform(m, q * 0.9)
    t2 = time.perf_counter()
    rows = [("bbm (closed)", 0.0, t1 - t0, t2 - t1, b1.value, b2.value)]
    forms = ([True, False] if dense else [True]) if lp_baseline else []
    for compact in forms:
        t0 = time.perf_counter()
        P = lp.PlatformLP(m, compact=compact)
        t1 = time.perf_counter()
        s = P.solve(q)
        t2 = time.perf_counter()
        s2 = P.solve(q * 0.9)                       # re-solve with the compiled problem
        t3 = time.perf_counter()
        rows.append((("LP compact" if compact else "LP dense"), t1 - t0, t2 - t1, t3 - t2, s.value, s2.value))
        print(f"  ({rows[-1][0]} done)", flush=True)
    if lp_baseline:
        t0 = time.perf_counter()
        H = lp.PlatformHighs(m)
        h1 = H.solve(q)
        t1 = time.perf_counter()
        h2 = H.solve(q * 0.9)
        t2 = time.perf_counter()
        rows.append(("LP highspy", 0.0, t1 - t0, t2 - t1, h1.value, h2.value))
    for r in rows[1:]:
        assert _close(r[4], rows[0][4]) and _close(r[5], rows[0][5]), f"{r[0]} disagrees with the closed form"
    print(f"\n[1] P_q, |Ω| = |A| = {n}")
    print(f"{'method':>13} {'build s':>9} {'1st solve s':>12} {'re-solve s':>11} {'V(q)':>14}"
          "   (highspy: build included in 1st solve; re-solve warm-started; bbm includes ∂V ranges)")
    for r in rows:
        print(f"{r[0]:>13} {r[1]:>9.4f} {r[2]:>12.4f} {r[3]:>11.4f} {r[4]:>14.8f}")
    if lp_baseline:
        tc = rows[1][1] + rows[1][2]
        print(f"closed form vs LP compact (build + first solve): {tc / rows[0][2]:.0f}x faster; "
              f"vs highspy cold: {rows[-1][2] / rows[0][2]:.0f}x")
        if dense:
            td = rows[2][1] + rows[2][2]
            print(f"dense / compact LP (build + first solve): {td / tc:.2f}x;  "
                  f"re-solve: {rows[2][3] / rows[1][3]:.2f}x")


def _sweep_once(m: InfoDesignMarket, Q: np.ndarray, label: str, rebuild_sample: int) -> None:
    count = len(Q)
    t0 = time.perf_counter()
    P = lp.PlatformLP(m)
    reuse = np.array([P.solve(q).value for q in Q])
    t1 = time.perf_counter()
    k = min(count, rebuild_sample)
    rebuild = np.array([lp.PlatformLP(m).solve(q).value for q in Q[:k]])
    t2 = time.perf_counter()
    H = lp.PlatformHighs(m)
    warm = np.array([H.solve(q).value for q in Q])
    t3 = time.perf_counter()
    closed = np.array([s.value for s in lp.platform_sweep(m, Q, method="bbm")])
    t4 = time.perf_counter()
    err = float(max(np.max(np.abs(reuse[:k] - rebuild)), np.max(np.abs(warm - reuse)), np.max(np.abs(closed - reuse))))
    assert err <= 1e-7, f"sweep values differ by {err}"
    per = {"reuse": (t1 - t0) / count, "rebuild": (t2 - t1) / k, "warm": (t3 - t2) / count, "bbm": (t4 - t3) / count}
    print(f"  {label}: {count} databases, |Ω| = {m.n}" + (f" (rebuild timed on the first {k})" if k < count else ""))
    print(f"    rebuild every time (baseline): {1e3 * per['rebuild']:8.3f} ms/q")
    print(f"    cvxpy compiled, Parameter:     {1e3 * per['reuse']:8.3f} ms/q   {per['rebuild'] / per['reuse']:7.2f}x")
    print(f"    highspy live model, warm:      {1e3 * per['warm']:8.3f} ms/q   {per['rebuild'] / per['warm']:7.2f}x")
    print(f"    closed form (bbm):             {1e3 * per['bbm']:8.3f} ms/q   {per['rebuild'] / per['bbm']:7.1f}x"
          f"   (max |ΔV| = {err:.1e})")


def bench_sweep(n: int, count: int, rebuild_sample: int) -> None:
    m = market(n, seed=2)
    rng = np.random.default_rng(3)
    print("\n[2] sweeps of P_q: speed-up over rebuilding the model for each q")
    _sweep_once(m, m.prior[None, :] * rng.uniform(0, 1, (count, n)), "independent random q", rebuild_sample)
    a, b = m.prior * rng.uniform(0, 1, n), m.prior * rng.uniform(0, 1, n)
    t = np.linspace(0.0, 1.0, count)[:, None]
    _sweep_once(m, (1 - t) * a + t * b, "path q(t) = (1−t)q_a + t q_b", rebuild_sample)


def bench_efficiency(sizes, milp_sizes, time_limit: float) -> None:
    print(f"\n[3] constrained efficiency W° (slides' payoffs, γ_u = 1, γ_π = 0.3); MILP time limit {time_limit:g}s")
    print(f"{'|Ω|':>4} {'bbm s':>8} {'W° (bbm)':>14} {'pieces s':>9} {'#pieces':>8} {'MILP s':>8} {'status':>10} "
          f"{'gap':>8} {'W° (MILP)':>14} {'match':>6}")
    for n in sizes:
        m = market(n, seed=n)
        t0 = time.perf_counter()
        rb = lp.constrained_efficiency(m, method="bbm")
        tb = time.perf_counter() - t0
        tp, K, wp = float("nan"), "", None
        if n <= lp.PIECES_MAX_N:
            t0 = time.perf_counter()
            r = lp.constrained_efficiency(m, method="pieces", pieces=lp.value_pieces(m, method="lp"))
            tp, K, wp = time.perf_counter() - t0, len(r.pieces), r.welfare
        tm, st, gap, wm = float("nan"), "", float("nan"), float("nan")
        if n in milp_sizes:
            t0 = time.perf_counter()
            rm = lp.constrained_efficiency_milp(m, time_limit=time_limit)
            tm, st, gap, wm = time.perf_counter() - t0, rm.status.value, rm.gap, rm.welfare
        checks = []
        if wp is not None:
            checks.append(abs(wp - rb.welfare) <= 1e-6)
        if st == "optimal":
            checks.append(abs(wm - rb.welfare) <= 1e-6)
        if st and st != "optimal":
            checks.append(wm <= rb.welfare + 1e-6)     # a time-limited MILP allocation cannot beat W°
        match = "" if not checks else ("yes" if all(checks) else "NO")
        print(f"{n:>4} {tb:>8.3f} {rb.welfare:>14.8f} {tp:>9.2f} {K!s:>8} {tm:>8.2f} {st:>10} {gap:>8.1e} "
              f"{wm:>14.8f} {match:>6}", flush=True)


def slides_general(n: int, seed: int = 0) -> InfoDesignMarket:
    """The slides' payoffs (γ_u = 1, γ_π = 0.3) given as general matrices: the LP path must not use
    the closed form or the slides-specific obedience rows."""
    w = np.arange(1.0, n + 1.0)
    u = np.maximum(w[None, :] - w[:, None], 0.0)
    pi = w[:, None] * (w[None, :] >= w[:, None])
    return InfoDesignMarket.from_payoffs(u, pi, u + 0.3 * pi, np.random.default_rng(seed).dirichlet(np.ones(n)),
                                         0.5 * n / 10, types=w, fees=w)


def random_general(n: int, seed: int = 0) -> InfoDesignMarket:
    rng = np.random.default_rng(seed)
    u, pi, v = rng.uniform(0, 2, (3, n, n))
    return InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(n)), 0.3)


def _general_once(m: InfoDesignMarket, q: np.ndarray, new: bool, time_limit: float):
    t0 = time.perf_counter()
    if new:
        H = lp.PlatformHighs(m)
    else:                                   # the previous path: dense rows, old cold rule, 2n face LPs
        H = lp.PlatformHighs(m, compact=False, ranging=False)
        H.cold_ipm = m.m * m.n > lp.LARGE_LP
    s = H.solve(q, intervals=True, time_limit=time_limit)
    return time.perf_counter() - t0, s, H


def _warm_once(H, q2: np.ndarray, time_limit: float):
    """A second database on the live model: warm-started dual simplex, then the ranges of ∂V(q2)."""
    t0 = time.perf_counter()
    s = H.solve(q2, intervals=True, time_limit=time_limit)
    return time.perf_counter() - t0, s


def bench_general(sizes, random_sizes, time_limit: float) -> None:
    print(f"\n[4] P_q with general payoff matrices and the ranges of ∂V(q); limit {time_limit:g}s per run")
    print(f"{'instance':>16} {'|Ω|':>4} {'form':>8} {'old s':>8} {'old status':>11} {'new s':>8} {'new status':>11} "
          f"{'face LPs':>9} {'speed-up':>9}  max deviations")
    lp.solve_platform(random_general(3), np.ones(3) / 3, method="lp")       # warm-up: HiGHS loaded
    cases = [("slides-general", n, slides_general) for n in sizes] + [("random", n, random_general)
                                                                      for n in random_sizes]
    for label, n, make in cases:
        m = make(n)
        q = m.prior * np.random.default_rng(1).uniform(0.2, 1.0, n)
        q2 = m.prior * np.random.default_rng(2).uniform(0.2, 1.0, n)
        tn, sn, Hn = _general_once(m, q, True, time_limit)
        lps_cold = getattr(Hn, "face_lps", "?")
        wn, wsn = _warm_once(Hn, q2, time_limit) if sn.status == "optimal" else (float("nan"), None)
        to, so, Ho = _general_once(m, q, False, time_limit)
        wo, wso = _warm_once(Ho, q2, time_limit) if so.status == "optimal" else (float("nan"), None)
        # largest deviation of the ∂V ranges: new vs old (the old face LPs optimise over a face relaxed
        # by FACE_TOL, so they may be off where the range is short) and, for (a), both vs the closed form
        def dev(a, b):
            fa, fb = np.isfinite(a), np.isfinite(b)
            if not np.array_equal(fa, fb):
                return float("inf")
            return float(np.max(np.abs(a[fa] - b[fa]), initial=0.0))

        agree = ""
        if sn.status == "optimal" and so.status == "optimal":
            d = max(dev(sn.lower, so.lower), dev(sn.upper, so.upper))
            agree = f"V {abs(sn.value - so.value):.0e}, ∂V new-old {d:.0e}"
        if label == "slides-general":
            b = bbm.platform(InfoDesignMarket(m.types, m.prior, m.reservation, 1.0, 0.3), q)
            for tag, s_ in (("new", sn), ("old", so)):
                if s_.status == "optimal":
                    agree += (f"; {tag}-bbm V {abs(s_.value - b.value):.0e} "
                              f"∂V {max(dev(s_.lower, b.lower), dev(s_.upper, b.upper)):.0e}")
        speed = f"{to / tn:.1f}x" if so.status == "optimal" else f">{to / tn:.1f}x"
        warm = (f"warm q2: new {wn:.2f}s ({'-' if wsn is None else wsn.status}, {getattr(Hn, 'face_lps', '?')} LPs)"
                f" old {wo:.2f}s ({'-' if wso is None else wso.status})")
        if wsn is not None and wsn.status == "optimal" and label == "slides-general":
            b2 = bbm.platform(InfoDesignMarket(m.types, m.prior, m.reservation, 1.0, 0.3), q2)
            fin = np.isfinite(b2.upper)
            d2 = max(np.max(np.abs(wsn.lower - b2.lower)), np.max(np.abs(wsn.upper[fin] - b2.upper[fin])))
            warm += f", new-bbm ∂V {d2:.0e}"
        print(f"{label:>16} {n:>4} {'suffix' if Hn.compact else 'dense':>8} {to:>8.2f} {str(so.status):>11} "
              f"{tn:>8.2f} {str(sn.status):>11} {lps_cold!s:>9} {speed:>9}  {agree}",
              flush=True)
        print(f"{'':>30}{warm}", flush=True)


def _eq_market(n: int, seed: int) -> InfoDesignMarket:
    """Slides' payoffs with γ_u > γ_π (n pieces of V, 2^n − 1 cells) and r̄ low enough for trade."""
    rng = np.random.default_rng(seed)
    gu, gp = rng.uniform(0.5, 2), rng.uniform(0, 0.4)
    prior = rng.dirichlet(np.ones(n))
    types = np.sort(rng.choice(np.arange(1, 3 * n + 1), n, replace=False)).astype(float)
    return InfoDesignMarket(types, prior, rng.uniform(0, 0.6 * types.mean()), gu, gp)


def bench_equilibria(sizes, seeds: int, faces_max: int) -> None:
    """5. Every competitive equilibrium (``lp.equilibria``) by exact cells of V with pruned supply
    patterns (``enumeration="cells"``) against the (supply pattern × face) enumeration (baseline,
    ``"faces"``, run where |Ω| ≤ ``faces_max``), CPU seconds (time.process_time) per instance with the
    pieces of V and W° computed once outside the timing.  Checked: same supply patterns and welfare
    ranges as the baseline where both ran; every witness has ``p·q = V(q)`` (closed form) elsewhere."""
    from dm_opt.info_design.lp import equilibrium as lp_eq

    print("\n[5] competitive equilibria: cells (pruned patterns) vs (pattern × face) enumeration, CPU s")
    print(f"{'|Ω|':>4} {'seed':>4} {'families':>8} {'cell LPs':>9} {'cells s':>8} {'faces s':>8} {'ratio':>6} check")
    for n in sizes:
        for seed in range(seeds):
            m = _eq_market(n, seed)
            pcs = lp.value_pieces(m)
            eff = lp.constrained_efficiency(m, pieces=pcs)
            count = {"lps": 0}
            real = lp_eq._cell_lp

            def counted(*args, _count=count, _real=real, **kw):
                _count["lps"] += 1
                return _real(*args, **kw)

            lp_eq._cell_lp = counted
            try:
                t0 = time.process_time()
                E = lp.equilibria(m, pieces=pcs, efficiency=eff, max_n=max(n, lp.EQUILIBRIA_MAX_N))
                tc = time.process_time() - t0
            finally:
                lp_eq._cell_lp = real
            ok = E.complete and all(abs(float(p.price @ p.q) - bbm.platform(m, p.q, intervals=False).value)
                                    <= 1e-6 * max(1.0, float(m.types.max())) for p in E.pieces)
            tf, ratio = float("nan"), ""
            if n <= faces_max:
                t0 = time.process_time()
                F = lp.equilibria(m, pieces=pcs, efficiency=eff, enumeration="faces")
                tf = time.process_time() - t0
                ratio = f"{tf / tc:6.1f}"

                def pats(R):
                    out = {}
                    for p in R.pieces:
                        lo, hi = out.get(p.pattern, (np.inf, -np.inf))
                        out[p.pattern] = (min(lo, p.welfare_min), max(hi, p.welfare_max))
                    return out

                a, b = pats(F), pats(E)
                ok = ok and (not F.complete or (set(a) == set(b) and all(
                    _close(a[k][0], b[k][0]) and _close(a[k][1], b[k][1]) for k in a)))
            print(f"{n:>4} {seed:>4} {len(E.pieces):>8} {count['lps']:>9} {tc:8.1f} {tf:8.1f} {ratio:>6} "
                  f"{'ok' if ok else 'MISMATCH'}", flush=True)


#: The deficit-scored pricing (``highs_lp.DEFICIT_WEIGHT``, off by default), timed against the defaults by --general.
DEFICIT_VARIANT = {"COLS_PER_TYPE": 10, "DEFICIT_WEIGHT": 1.0}


def _generation_run(m, q, settings=None):
    """``GeneralPlatformHighs`` at ``q`` then its ranges, with module ``settings`` swapped in for the
    run; returns ``(model, solution, lower, upper, P_q cpu, ∂V cpu, wall)``."""
    from dm_opt.info_design.lp import highs_lp

    saved = {k: getattr(highs_lp, k) for k in (settings or {})}
    try:
        for k, v in (settings or {}).items():
            setattr(highs_lp, k, v)
        c0, w0 = time.process_time(), time.perf_counter()
        G = highs_lp.GeneralPlatformHighs(m)
        s = G.solve(q)
        c1 = time.process_time()
        lo, up, _ = G.ranges(q, s.value)
        c2, w2 = time.process_time(), time.perf_counter()
    finally:
        for k, v in saved.items():
            setattr(highs_lp, k, v)
    return G, s, lo, up, c1 - c0, c2 - c1, w2 - w0


def bench_general_generation(n: int, time_limit: float, seed: int = 0, full: bool = True) -> None:
    """[5]: the generation path with its default settings and with :data:`DEFICIT_VARIANT`, and (``full``)
    the cvxpy path at |Ω| = |A| = n (random general payoffs); then the ``platform`` problem route
    (``platform_report``: P_q, ∂V ranges and W(q)) on the generation path."""
    from dm_opt.info_design.lp.highs_lp import GeneralPlatformHighs

    print(f"\n[5] P_q + ranges of ∂V(q), random general payoffs |Ω| = |A| = {n} (seed {seed}); "
          f"cvxpy limit {time_limit:g}s")
    m = random_general(n, seed)
    q = m.prior * np.random.default_rng(1).uniform(0.2, 1.0, n)
    GeneralPlatformHighs(random_general(3)).solve(np.ones(3) / 3, intervals=True)      # warm-up
    lp.PlatformLP(random_general(3)).solve(np.ones(3) / 3, intervals=True)
    rows = []
    for label, settings in (("generation", None), ("deficit", DEFICIT_VARIANT)):
        G, s1, lo, up, pc, rc, wall = _generation_run(m, q, settings)
        rows.append((label, pc, wall, rc, float("nan"), s1.status, s1.value, lo, up))
        print(f"    {label}: {G.rounds} HiGHS runs, {G.rows} of {n * (n - 1)} obedience rows, {G.cols} of "
              f"{n * n} columns; ∂V ends by ranging {2 * n - G.perturbed - G.face_lps - int(np.sum(q <= 0))}, "
              f"perturbed re-solves {G.perturbed}, dual-face LPs {G.face_lps}; P_q {pc:.2f} + ∂V {rc:.2f} "
              f"CPU s ({wall:.2f} s wall)", flush=True)
    new, prev = rows
    d_up = np.where(np.isinf(new[8]) & np.isinf(prev[8]), 0.0, prev[8] - new[8])     # inf ends must agree
    print(f"    deficit variant vs defaults: {(new[1] + new[3]) / (prev[1] + prev[3]):.2f}x fewer total CPU s; "
          f"|ΔV| {abs(prev[6] - new[6]):.1e}; max |Δ∂V ends| "
          f"{max(np.max(np.abs(prev[7] - new[7])), np.max(np.abs(d_up))):.1e}", flush=True)
    c0, w0 = time.process_time(), time.perf_counter()
    rep, wel = lp.platform_report(m, q)
    c1, w1 = time.process_time(), time.perf_counter()
    print(f"    platform_report (problem 'platform': P_q + ∂V + W(q)): {c1 - c0:.2f} CPU s ({w1 - w0:.2f} s wall), "
          f"{rep.status}, V {rep.value:.10f} (|ΔV| vs generation {abs(rep.value - new[6]):.1e}), "
          f"W(q) {'-' if wel is None else f'{wel.value:.10f}'}", flush=True)
    if not full:
        return
    rows = rows[:1]
    lo, up = rows[0][7], rows[0][8]
    v1 = rows[0][6]
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        P, base = lp.PlatformLP(m), "cvxpy"
    except LimitExceeded:       # cvxpy's compilation of the dense rows would exceed the memory budget
        P, base = lp.PlatformHighs(m), "full highs"
    s2 = P.solve(q, time_limit=time_limit)
    c1, w1 = time.process_time(), time.perf_counter()
    if s2.status == "optimal":
        lo2, up2, _ = P.dual_face_ranges(q, s2.value, deadline=Deadline(time_limit))
    else:
        lo2 = up2 = np.full(n, np.nan)
    c2, w2 = time.process_time(), time.perf_counter()
    rows.append((base, c1 - c0, w1 - w0, c2 - c1, w2 - w1, s2.status, s2.value, lo2, up2))
    print(f"{'path':>12} {'P_q cpu':>8} {'P_q wall':>9} {'∂V cpu':>8} {'∂V wall':>8} {'total cpu':>10} "
          f"{'status':>10} {'V(q)':>16}")
    for name, pc, pw, rc, rw, st, val, _, _ in rows:
        print(f"{name:>12} {pc:>8.2f} {pw:>9.2f} {rc:>8.2f} {rw:>8.2f} {pc + rc:>10.2f} {str(st):>10} {val:>16.10f}")
    fin = np.isfinite(lo2) & np.isfinite(lo)
    fu = np.isfinite(up2) & np.isfinite(up)
    done = int(np.sum(~np.isnan(lo2)) + np.sum(~np.isnan(up2)))
    print(f"    speed-up (total cpu) {(rows[1][1] + rows[1][3]) / (rows[0][1] + rows[0][3]):.1f}x; "
          f"|ΔV| {abs(v1 - s2.value):.1e}; max |Δ∂V ends| "
          f"{max(np.max(np.abs(lo - lo2)[fin], initial=0.0), np.max(np.abs(up - up2)[fu], initial=0.0)):.1e} "
          f"over the {done} of {2 * n} ends the {base} path finished", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["platform", "sweep", "efficiency", "general", "equilibria"])
    ap.add_argument("--eq-sizes", default="4,6,8", help="|Ω| of [5] (competitive equilibria)")
    ap.add_argument("--eq-seeds", type=int, default=3, help="instances per size in [5]")
    ap.add_argument("--eq-faces-max", type=int, default=4, help="largest |Ω| for the faces baseline in [5]")
    ap.add_argument("--general-sizes", default="20,50,100,200", help="|Ω| = |A| of [4] (slides' payoffs as matrices)")
    ap.add_argument("--random-sizes", default="20,30,50", help="|Ω| = |A| of [4] (random payoffs)")
    ap.add_argument("--n", type=int, default=200, help="|Ω| for [1]")
    ap.add_argument("--dense", action="store_true", help="also time the dense textbook LP in [1]")
    ap.add_argument("--no-lp", action="store_true", help="[1] without the LP baselines (about 20 s each at n = 200)")
    ap.add_argument("--sweep", type=int, default=1000)
    ap.add_argument("--sweep-n", type=int, default=20)
    ap.add_argument("--rebuild-sample", type=int, default=1000,
                    help="time the rebuild baseline on the first K databases of each sweep")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--general", type=int, default=None, metavar="N",
                    help="run only [5]: generation (defaults, deficit variant) vs cvxpy at |Ω| = |A| = N "
                    "(cvxpy gets 10 × --time-limit)")
    ap.add_argument("--general-seed", type=int, default=0, help="instance seed of --general")
    ap.add_argument("--no-full", action="store_true", help="--general without the cvxpy / full-model baseline")
    a = ap.parse_args(argv)
    if a.general is not None:
        bench_general_generation(a.general, 10 * a.time_limit, a.general_seed, not a.no_full)
        return
    if a.quick:
        a.n, a.sweep, a.sweep_n, a.rebuild_sample = 40, 100, 10, 100
    sizes = [2, 4, 6, 8, 20, 50] if a.quick else [2, 4, 6, 8, 10, 12, 16, 20, 50, 100, 200]
    milp_sizes = [2, 4, 6, 8] if a.quick else [2, 4, 6, 8, 10, 12, 16, 20]
    if a.only in (None, "platform"):
        bench_platform(a.n, a.dense, not a.no_lp)
    if a.only in (None, "sweep"):
        bench_sweep(a.sweep_n, a.sweep, a.rebuild_sample)
    if a.only in (None, "efficiency"):
        bench_efficiency(sizes, milp_sizes, a.time_limit)
    if a.only in (None, "general"):
        gs = [int(x) for x in a.general_sizes.split(",") if x] if not a.quick else [20, 30]
        rs = [int(x) for x in a.random_sizes.split(",") if x] if not a.quick else [20]
        bench_general(gs, rs, a.time_limit)
    if a.only in (None, "equilibria"):
        es = [int(x) for x in a.eq_sizes.split(",") if x] if not a.quick else [4, 6]
        bench_equilibria(es, 1 if a.quick else a.eq_seeds, a.eq_faces_max)


if __name__ == "__main__":
    main()
