"""Mittelmann-style summaries and Dolan–Moré performance profiles.

* Shifted geometric mean of times (Mittelmann's benchmarks, shift ``s = 10`` s):
  ``SGM = exp(mean(ln(max(1, t + s)))) − s``; a run that did not solve the
  instance (time limit, error, wrong answer) counts at the time limit.
* Performance profile (Dolan & Moré 2002, *Benchmarking optimization software
  with performance profiles*, Math. Prog. 91): for instance ``p`` and method
  ``s`` the ratio ``r_ps = t_ps / min_s t_ps`` (``∞`` when ``s`` did not solve
  ``p``); the profile of ``s`` is ``ρ_s(τ) = |{p : r_ps ≤ τ}| / |P|``.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

#: Mittelmann's shift (seconds).
SGM_SHIFT = 10.0
#: Times below this (seconds) are raised to it in performance ratios, so that
#: timer resolution on sub-millisecond runs does not produce meaningless ratios.
PROFILE_MIN_TIME = 1e-3


def shifted_geomean(times, shift: float = SGM_SHIFT) -> float:
    """``exp(mean(ln(max(1, t + shift)))) − shift`` (Mittelmann); nan for no times."""
    t = np.asarray(list(times), dtype=float)
    if t.size == 0:
        return float("nan")
    return float(np.exp(np.mean(np.log(np.maximum(1.0, t + shift)))) - shift)


def is_solved(row: dict) -> bool:
    """Solved = proven optimal and not contradicted by the reference."""
    return row["status"] == "optimal" and row["agreement"] != "DISAGREE"


def charged_time(row: dict, time_limit: float | None) -> float:
    """The time charged to a run: its time if solved, else the time limit (Mittelmann)."""
    if is_solved(row):
        t = float(row["seconds"])
        return min(t, time_limit) if time_limit else t
    if time_limit:
        return float(time_limit)
    return float("inf")


def summarize(rows, time_limit: float | None, by=("problem", "method")) -> list[dict]:
    """One line per group (default ``(problem, method)``): runs, solved, SGM time, mean gap, disagreements.

    ``mean_gap`` averages the final relative gap over runs that returned a
    solution (0 for proven optima); ``no_solution`` counts the others.
    Reference rows (enumeration run only to check the others) are left out.
    """
    groups: dict[tuple, list] = defaultdict(list)
    for r in rows:
        if r.get("role", "method") != "method":
            continue
        groups[tuple(r[k] for k in by)].append(r)
    out = []
    for key, rs in sorted(groups.items(), key=lambda kv: tuple(str(x) if not isinstance(x, int) else f"{x:09d}"
                                                                 for x in kv[0])):
        gaps = [float(r["gap"]) for r in rs if r["gap"] is not None and math.isfinite(float(r["gap"]))]
        out.append({
            **dict(zip(by, key, strict=True)),
            "runs": len(rs),
            "solved": sum(is_solved(r) for r in rs),
            "sgm_seconds": shifted_geomean(charged_time(r, time_limit) for r in rs),
            "mean_gap": float(np.mean(gaps)) if gaps else float("nan"),
            "no_solution": len(rs) - len(gaps),
            "disagree": sum(r["agreement"] == "DISAGREE" for r in rs),
            "errors": sum(r["status"] == "error" for r in rs),
            "skipped": sum(r["status"] in ("skipped", "unavailable") for r in rs),
        })
    return out


def performance_ratios(times: dict, min_time: float = PROFILE_MIN_TIME):
    """Dolan–Moré ratios from ``{method: {instance: seconds or inf}}``.

    Returns ``(methods, instances, R)`` with ``R[p, s] = t_ps / min_s t_ps``
    (``inf`` if ``s`` did not solve ``p``; instances no method solved are all ``inf``).
    """
    methods = sorted(times)
    instances = sorted({p for m in methods for p in times[m]})
    T = np.full((len(instances), len(methods)), np.inf)
    for j, m in enumerate(methods):
        for i, p in enumerate(instances):
            t = times[m].get(p, np.inf)
            T[i, j] = max(float(t), min_time) if np.isfinite(t) else np.inf
    best = T.min(axis=1) if T.shape[1] else np.full(len(instances), np.inf)
    with np.errstate(invalid="ignore"):
        R = np.where(np.isfinite(best)[:, None], T / best[:, None], np.inf)
    return methods, instances, R


def performance_profile(times: dict, taus=None, min_time: float = PROFILE_MIN_TIME):
    """``(methods, taus, rho)`` with ``rho[s, k] = ρ_s(taus[k])`` (fraction of instances within factor τ)."""
    methods, instances, R = performance_ratios(times, min_time)
    if taus is None:
        finite = R[np.isfinite(R)]
        top = max(2.0, float(finite.max()) * 1.05) if finite.size else 2.0
        taus = np.unique(np.concatenate([[1.0], np.sort(finite), [top]]))
    taus = np.asarray(taus, dtype=float)
    n_p = max(len(instances), 1)
    rho = np.array([[(R[:, j] <= tau).sum() / n_p for tau in taus] for j in range(len(methods))])
    return methods, taus, rho


def profile_times(rows, problem: str | None = None) -> dict:
    """``{method: {instance: seconds or inf}}`` from result rows (unsolved → inf)."""
    out: dict[str, dict] = defaultdict(dict)
    for r in rows:
        if r.get("role", "method") != "method":
            continue
        if problem is not None and r["problem"] != problem:
            continue
        key = f"{r['instance']}|{r['problem']}"
        out[r["method"]][key] = float(r["seconds"]) if is_solved(r) else float("inf")
    return dict(out)


#: What a missing matplotlib skips, and how to get it (one line on stderr from ``dm-opt bench``).
MISSING_PLOT_NOTE = ("matplotlib is not installed: skipped profile.png (the performance profile); "
                     "install it with: pip install dm-opt[plot]")


def plot_available() -> bool:
    """Whether matplotlib can be imported (the ``plot`` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_performance_profile(rows, path, *, partial: str | None = None) -> bool:
    """Write a Dolan–Moré profile PNG (log2 τ axis, one panel per problem).

    ``partial``: why the run is incomplete (e.g. ``"interrupted: 12 of 40 runs"``), or None for a
    complete run; a partial profile says so in every panel title and in the PNG's ``Title``,
    ``Description`` and ``Partial`` text chunks.  Returns False (nothing written) when there is
    nothing to plot or matplotlib is missing (:func:`plot_available`; the caller reports it).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    problems = sorted({r["problem"] for r in rows if r.get("role", "method") == "method"})
    if not problems:
        return False
    fig, axes = plt.subplots(1, len(problems), figsize=(6 * len(problems), 4), squeeze=False)
    for ax, problem in zip(axes[0], problems, strict=True):
        methods, taus, rho = performance_profile(profile_times(rows, problem))
        for j, m in enumerate(methods):
            ax.step(taus, rho[j], where="post", label=m)
        ax.set_xscale("log", base=2)
        ax.set_xlim(1.0, taus[-1])
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("τ (time within factor τ of the fastest)")
        ax.set_ylabel("fraction of instances solved")
        title = f"Performance profile (Dolan–Moré): {problem}"
        if partial:
            title = f"PARTIAL: {title}\n({partial})"
        ax.set_title(title, **({"color": "firebrick"} if partial else {}))
        ax.legend(loc="lower right")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    title = "dm-opt bench performance profile" + (" (PARTIAL)" if partial else "")
    meta = {"Title": title, "Software": "dm-opt bench",
            "Description": f"PARTIAL results: {partial}" if partial else "complete run"}
    if partial:
        meta["Partial"] = partial
    fig.savefig(path, dpi=120, metadata=meta)
    plt.close(fig)
    return True


def format_table(summary: list[dict], time_limit: float | None, by=("problem", "method"),
                 caption: bool = True) -> str:
    """Markdown table of :func:`summarize` output (grouped by the same keys ``by``)."""
    lim = f"{time_limit:g} s" if time_limit else "none"
    lines = []
    if caption:
        lines += [f"Shifted geometric mean of times (shift {SGM_SHIFT:g} s; unsolved runs counted at the "
                  f"time limit, {lim}).", ""]
    lines += [
        "| " + " | ".join(by)
        + " | runs | solved | SGM time [s] | mean gap | no solution | DISAGREE | errors | skipped |",
        "|" + "---|" * len(by) + "---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        keys = " | ".join(str(s[k]) for k in by)
        lines.append(f"| {keys} | {s['runs']} | {s['solved']} | {s['sgm_seconds']:.4f} | "
                     f"{s['mean_gap']:.3g} | {s['no_solution']} | {s['disagree']} | {s['errors']} | {s['skipped']} |")
    return "\n".join(lines)
