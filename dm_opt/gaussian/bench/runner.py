"""Run methods × instances and check every answer against exhaustive enumeration.

One *task* is ``(instance spec, problem, method)``: plain data, so it runs the
same in this process or on a Dask worker of another machine
(:mod:`dm_opt.gaussian.distributed`).  One *row* per task records status, objective,
bound, gap, build/solve/wall time, nodes, peak memory and the profile.

Agreement (:func:`check_agreement`, on the client after all runs): wherever
enumeration proved an optimum for an ``(instance, problem)``, every other run is
checked against it — a run claiming ``optimal`` must match the optimum, and any
run's incumbent must not exceed it nor its bound fall below it.  A violation
sets ``agreement = "DISAGREE"``: the run is then *not* counted as solved, is
listed in the summary, warned about on stderr and makes ``dm-opt bench`` exit
nonzero.  Without an enumeration reference, runs are cross-checked: each
incumbent objective (exact value of a real profile) is a lower bound on the
optimum, so no run's bound or claimed optimum may lie below another's incumbent.

Peak memory is measured with :mod:`tracemalloc` (``memory="tracemalloc"``):
it can be reset per run (``reset_peak``), so each row gets its *own* peak, and it
sees numpy buffers.  It does not see allocations made in native solver code
(HiGHS, SCIP, numba-compiled loops' C allocations) and slows Python-heavy code
while tracing; ``resource.getrusage(...).ru_maxrss`` would see native memory
but is a process-lifetime high-water mark that cannot be reset between runs in
one process, so it would charge earlier runs' peaks to later ones.  Use
``memory="none"`` for timing-only runs.  Runs measured with tracemalloc are
serialised within a process (the tracer is process-wide).
"""

from __future__ import annotations

import math
import sys
import threading
import time
import tracemalloc
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import BackendUnavailable, DisagreementWarning, DmOptError, LimitExceeded, ProblemError
from dm_opt.core.jsonenc import json_number
from dm_opt.core.result import Result, Termination
from dm_opt.gaussian.bench.instances import InstanceSpec

#: Relative tolerance of the agreement check: ``|f − f*| ≤ max(AGREE_RTOL·max(1, |f*|), tie_tol)``.
AGREE_RTOL = 1e-6
#: A run longer than ``OVERRUN_FACTOR · time_limit + OVERRUN_SLACK`` seconds is noted in its message.
OVERRUN_FACTOR, OVERRUN_SLACK = 1.1, 1.0
#: Reference method.
REFERENCE = "enumerate"
MEMORY_MODES = ("tracemalloc", "none")

CSV_COLUMNS = (
    "instance", "family", "n", "seed", "problem", "method", "role", "status", "agreement",
    "objective", "ref_objective", "bound", "gap", "build_seconds", "solve_seconds", "seconds",
    "nodes", "peak_mib", "compile_seconds", "profile", "message", "check_message",
)

_MEM_LOCK = threading.Lock()


@dataclass(frozen=True)
class Task:
    index: int
    instance: InstanceSpec
    problem: str
    method: str
    time_limit: float | None
    memory: str = "tracemalloc"
    role: str = "method"          # "method" (benchmarked) or "reference" (enumeration only for checking)


def make_tasks(instances, methods, problems, time_limit, *, memory="tracemalloc",
               reference_max_n: int = 20) -> list[Task]:
    """Tasks in instance-major order; enumeration reference added where ``n ≤ reference_max_n``
    and ``enumerate`` is not already among the methods."""
    tasks: list[Task] = []
    for inst in instances:
        for problem in problems:
            if REFERENCE not in methods and inst.n <= reference_max_n:
                tasks.append(Task(len(tasks), inst, problem, REFERENCE, time_limit, memory, "reference"))
            for m in methods:
                tasks.append(Task(len(tasks), inst, problem, m, time_limit, memory, "method"))
    return tasks


def profile_indices(a) -> list[int] | None:
    """The sharing users of profile ``a`` as a list of indices (``[0, 3, 7]``); ``None`` for no profile.

    A list, not a 0/1 string: spreadsheets read ``"0011"`` as the number 11 and drop the leading zeros."""
    a = np.asarray(a).ravel()
    if a.size == 0:
        return None
    return [int(i) for i in np.flatnonzero(a)]


def has_profile(row: dict) -> bool:
    """Whether a row carries a returned profile (``[]`` = nobody shares, still a profile)."""
    return row.get("profile") is not None and row.get("profile") != ""


_num = json_number


#: (method, problem) pairs already warmed up in this process.
_WARMED: set = set()
_WARM_LOCK = threading.Lock()


def warm_up(method: str, problem: str) -> None:
    """Solve a tiny instance once per process, untimed, so JIT compilation (numba) and lazy
    imports are not charged to the first benchmarked instance.  Failures are ignored here;
    the timed run reports them."""
    from dm_opt.gaussian.api import solve
    from dm_opt.gaussian.market import GaussianMarket

    with _WARM_LOCK:
        if (method, problem) in _WARMED:
            return
        _WARMED.add((method, problem))
    from dm_opt.gaussian.kernels.posterior import warm_compiled

    cov = 0.7 * np.eye(4) + 0.3
    market = GaussianMarket(cov, [0.5, 1.5, 0.8, 1.2])
    try:
        warm_compiled()       # the compiled twins of the posterior kernels (NumPy serves small first calls)
        solve(market, problem, method, time_limit=10.0)
        if method == "enumerate":
            # small markets are walked in NumPy: compile the walk used above SMALL_N users too
            solve(market, problem, method, time_limit=10.0, chunk_bits=0)
    except Exception:  # noqa: BLE001 - the timed run reports the error
        pass


def run_task(task: Task) -> dict:
    """Run one task (in this process or on a worker) and return its row (plain data)."""
    from dm_opt.gaussian.api import solve

    warm_up(task.method, task.problem)

    inst = task.instance
    row = {
        "index": task.index, "instance": inst.name, "family": inst.family, "n": inst.n, "seed": inst.seed,
        "problem": task.problem, "method": task.method, "role": task.role, "status": "error",
        "agreement": "n/a", "objective": None, "ref_objective": None, "bound": None, "gap": None,
        "build_seconds": 0.0, "solve_seconds": 0.0, "seconds": 0.0, "nodes": 0, "peak_mib": None,
        "profile": None, "message": "", "check_message": "", "tie_tol": 0.0, "compile_seconds": 0.0,
    }
    try:
        market = inst.build()
    except Exception as exc:  # noqa: BLE001 - e.g. a generator family that rejects this n
        row.update(status="error", message=f"instance could not be built: {type(exc).__name__}: {exc}")
        return row

    def call():
        return solve(market, task.problem, task.method, time_limit=task.time_limit)

    t0 = time.perf_counter()
    try:
        if task.memory == "tracemalloc":
            with _MEM_LOCK:
                started = not tracemalloc.is_tracing()
                if started:
                    tracemalloc.start()
                tracemalloc.reset_peak()
                base = tracemalloc.get_traced_memory()[0]
                t0 = time.perf_counter()
                try:
                    res = call()
                finally:
                    wall = time.perf_counter() - t0
                    row["peak_mib"] = (tracemalloc.get_traced_memory()[1] - base) / 2**20
                    if started:
                        tracemalloc.stop()
        else:
            res = call()
            wall = time.perf_counter() - t0
    except BackendUnavailable as exc:
        row.update(status="unavailable", message=str(exc), seconds=time.perf_counter() - t0)
        return row
    except (LimitExceeded, ProblemError) as exc:
        row.update(status="skipped", message=str(exc), seconds=time.perf_counter() - t0)
        return row
    except Exception as exc:  # noqa: BLE001 - a crashing backend is a result to record, not a reason to stop
        kind = "" if isinstance(exc, DmOptError) else " (unexpected exception: a bug in the backend?)"
        row.update(status="error", message=f"{type(exc).__name__}: {exc}{kind}", seconds=time.perf_counter() - t0)
        return row
    row.update(
        status=str(res.status), objective=float(res.objective), bound=float(res.bound), gap=float(res.gap),
        build_seconds=float(res.build_seconds), solve_seconds=float(res.solve_seconds), seconds=wall,
        nodes=int(res.nodes), profile=profile_indices(res.profile), message=res.message, tie_tol=float(res.tie_tol),
        compile_seconds=float((res.extra or {}).get("compile_seconds", 0.0) or 0.0),
    )
    if task.time_limit and wall > OVERRUN_FACTOR * task.time_limit + OVERRUN_SLACK:
        # charged at the limit in the summary anyway; said here so a backend ignoring time_limit is seen
        row["message"] = (row["message"] + "; " if row["message"] else "") + \
            f"ran {wall:.1f} s, over the {task.time_limit:g} s time limit"
    return row


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def check_agreement(rows, rtol: float = AGREE_RTOL) -> list[dict]:
    """Fill ``agreement`` / ``ref_objective`` / ``check_message`` in place; return the DISAGREE rows."""
    by_key: dict[tuple, list] = {}
    for r in rows:
        by_key.setdefault((r["instance"], r["problem"]), []).append(r)
    bad = []
    for _key, rs in by_key.items():
        refs = [r for r in rs if r["method"] == REFERENCE and r["status"] == "optimal"]
        ref = refs[0] if refs else None
        if ref is not None:
            f_star = ref["objective"]
            tol = max(rtol * max(1.0, abs(f_star)), ref.get("tie_tol", 0.0))
            for r in rs:
                r["ref_objective"] = f_star
                if r is ref or (r["method"] == REFERENCE and r["status"] == "optimal"
                                and abs(r["objective"] - f_star) <= tol):
                    r["agreement"] = "reference"
                    continue
                problems = []
                if r["status"] == "optimal" and not abs(r["objective"] - f_star) <= tol:
                    problems.append(f"claims optimal {r['objective']:.12g} but enumeration proves {f_star:.12g}")
                if r["status"] == "infeasible":
                    problems.append("reports infeasible, but every profile is feasible (enumeration found "
                                    f"{f_star:.12g})")
                if _finite(r["objective"]) and r["objective"] > f_star + tol:
                    problems.append(f"incumbent {r['objective']:.12g} exceeds the enumerated optimum {f_star:.12g}")
                if _finite(r["bound"]) and r["bound"] < f_star - tol:
                    problems.append(f"bound {r['bound']:.12g} cuts off the enumerated optimum {f_star:.12g}")
                if problems:
                    r["agreement"] = "DISAGREE"
                    r["check_message"] = "; ".join(problems)
                elif r["status"] in ("optimal", "time_limit", "node_limit", "interrupted") and has_profile(r):
                    r["agreement"] = "agree"
                else:
                    r["agreement"] = "n/a"
        else:
            # No enumeration: every incumbent objective is the exact value of a real profile, hence
            # a valid lower bound on the optimum.  A bound (or an "optimal" claim) below another
            # method's incumbent is therefore provably wrong, whichever method is right.
            sols = [r for r in rs if _finite(r["objective"]) and has_profile(r)]
            tol = max([rtol * max(1.0, abs(r["objective"])) for r in sols] + [r.get("tie_tol", 0.0) for r in sols]
                      + [0.0])
            for r in rs:
                others = [o for o in sols if o is not r]
                if _finite(r["bound"]) and others:
                    best = max(others, key=lambda o: o["objective"])
                    if r["bound"] < best["objective"] - tol:
                        what = "claims optimal" if r["status"] == "optimal" else "bound"
                        r["agreement"] = "DISAGREE"
                        r["check_message"] = (f"{what} {r['bound']:.12g} but {best['method']} found a profile "
                                              f"worth {best['objective']:.12g} (no enumeration reference)")
                        continue
                if r["status"] in ("error", "skipped", "unavailable"):
                    continue
                r["agreement"] = "consistent" if others else "unchecked"
        bad.extend(r for r in rs if r["agreement"] == "DISAGREE")
    return bad


@dataclass
class GridRun(Result):
    """Rows of a benchmark grid (one per task), whether Ctrl-C stopped it, and the DISAGREE rows.

    Result protocol: ``status`` ``optimal`` = every task ran (each row has its own status),
    ``interrupted`` after Ctrl-C; ``seconds`` adds up the rows; no scalar objective."""

    family: ClassVar[str] = "gaussian"

    rows: list
    interrupted: bool
    disagreements: list

    @property
    def status(self) -> Termination:
        return Termination.INTERRUPTED if self.interrupted else Termination.OPTIMAL

    @property
    def seconds(self) -> float:
        return float(sum(float(r.get("seconds") or 0.0) for r in self.rows))

    @property
    def message(self) -> str:
        return f"{len(self.disagreements)} disagreement(s)" if self.disagreements else ""

    @property
    def extra(self) -> dict:
        return {"runs": len(self.rows), "disagreements": len(self.disagreements)}

    def _has_answer(self) -> bool:
        return bool(self.rows)

    def to_dict(self) -> dict:
        return {**self.protocol_dict(), "interrupted": self.interrupted, "rows": rows_for_output(self.rows),
                "disagreements": rows_for_output(self.disagreements)}


def run_tasks(tasks, *, client=None, progress: bool = False, retries: int = 1) -> tuple[list, bool]:
    """Execute tasks serially (``client=None``) or on a Dask client; rows in task order.

    Ctrl-C stops scheduling and returns the rows completed so far with ``interrupted=True``.
    """
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(tasks), unit="run", desc="bench", file=sys.stderr)
    rows: list[dict] = []
    interrupted = False
    try:
        if client is None:
            for t in tasks:
                row = run_task(t)
                rows.append(row)
                if bar is not None:
                    bar.set_postfix_str(f"{t.instance.name} {t.method}", refresh=False)
                    bar.update(1)
                if row["status"] == "interrupted":  # the backend caught the user's Ctrl-C
                    interrupted = True
                    break
        else:
            from dm_opt.gaussian import distributed as dist

            rows, interrupted = dist.map_tasks(client, run_task, tasks, retries=retries, bar=bar,
                                               on_error=_error_row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    rows.sort(key=lambda r: r["index"])
    return rows, interrupted


def _error_row(task: Task, exc: BaseException) -> dict:
    inst = task.instance
    return {
        "index": task.index, "instance": inst.name, "family": inst.family, "n": inst.n, "seed": inst.seed,
        "problem": task.problem, "method": task.method, "role": task.role, "status": "error",
        "agreement": "n/a", "objective": None, "ref_objective": None, "bound": None, "gap": None,
        "build_seconds": 0.0, "solve_seconds": 0.0, "seconds": 0.0, "nodes": 0, "peak_mib": None,
        "profile": None, "compile_seconds": 0.0, "message": f"task failed after retries: {type(exc).__name__}: {exc}",
        "check_message": "", "tie_tol": 0.0,
    }


def run_grid(instances, methods, problems=("equilibrium",), *, time_limit=None, client=None,
             progress=False, memory="tracemalloc", reference_max_n: int = 20, retries: int = 1) -> GridRun:
    """Run ``methods × problems`` on every instance, then check agreement.

    Every DISAGREE row is also reported with a :class:`DisagreementWarning`.
    """
    if memory not in MEMORY_MODES:
        raise ProblemError(f"memory must be one of {', '.join(MEMORY_MODES)}, got {memory!r}")
    tasks = make_tasks(instances, list(methods), list(problems), time_limit, memory=memory,
                       reference_max_n=reference_max_n)
    rows, interrupted = run_tasks(tasks, client=client, progress=progress, retries=retries)
    bad = check_agreement(rows)
    for r in bad:
        warnings.warn(f"DISAGREE: {r['method']} on {r['instance']} ({r['problem']}): {r['check_message']}",
                      DisagreementWarning, stacklevel=2)
    return GridRun(rows=rows, interrupted=interrupted, disagreements=bad)


def rows_for_output(rows) -> list[dict]:
    """Rows with non-finite numbers made JSON-safe (strings ``"inf"``, ``"-inf"``, ``"nan"``;
    ``None`` = not computed; :mod:`dm_opt.core.jsonenc`)."""
    out = []
    for r in rows:
        d = dict(r)
        for k in ("objective", "ref_objective", "bound", "gap", "peak_mib"):
            d[k] = _num(d[k])
        out.append(d)
    return out
