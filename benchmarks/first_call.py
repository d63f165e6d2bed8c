"""First-call cost of dm_opt, as whole-process times against ``python -c "import dm_opt"``.

Measured in the same run, each a fresh process, median of ``--repeat`` runs:

* ``import``  — ``python -c "import dm_opt"`` (the reference); also, for information,
  ``python -c "import numpy, dm_opt"``: ``import dm_opt`` loads no numpy, every solve needs it;
* ``warm``    — ``dm-opt solve ammo/example1`` with numba's cache warm (one untimed run first);
  target: within 1.5x of ``import``;
* ``cold-bnb`` — a first ``dm_opt.solve(market, "equilibrium", "bnb")`` at n = 30 (seeded
  ``wishart`` instance of the bench families) in a process with a fresh, empty
  ``NUMBA_CACHE_DIR``; target: within 3 s.  With the cache empty the search runs its kernel in the
  interpreter first (``extra["kernels"]``: ``python``; compiled only if it runs past
  ``dm_opt.gaussian.kernels.bnb.PYTHON_SEARCH_SECONDS``: ``python, then compiled``);
* ``after warmup`` — ``dm-opt warmup --jobs 2`` once into a fresh cache (timed), then the same
  first solve in a new process (what a user sees who ran the post-install step).

For the solves the child process also reports, from the result, ``seconds`` (solve) and
``extra["compile_seconds"]`` (numba import, compilation and cache loading inside the solve, when
the backend reports it), and the same quantity measured around the call
(:func:`dm_opt.gaussian.kernels.posterior.compile_timer`) for backends that do not report it yet.

    python benchmarks/first_call.py [--repeat 3] [--n 30] [--json] [--skip-warmup]

Exit status 0 whether or not the targets are met (the table says); 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_WARM_RATIO = 1.5
TARGET_COLD_SECONDS = 3.0

_SOLVE_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import dm_opt
from dm_opt.gaussian.bench import InstanceSpec
from dm_opt.gaussian.kernels.posterior import compile_timer
m = InstanceSpec("wishart-n{n}-s{seed}", "wishart", {n}, {seed}).build()
with compile_timer() as jit:
    r = dm_opt.solve(m, "equilibrium", "{method}")
print(json.dumps({{"status": str(r.status), "objective": r.objective, "seconds": r.seconds,
                  "compile_seconds": r.extra.get("compile_seconds"), "jit_around_call": jit["seconds"],
                  "kernels": r.extra.get("kernels"), "nodes": r.nodes, "numba_imported": "numba" in sys.modules,
                  "inside": time.perf_counter() - t0}}))
"""


def _dm_opt_cmd() -> list[str]:
    exe = shutil.which("dm-opt", path=os.path.dirname(sys.executable)) or shutil.which("dm-opt")
    return [exe] if exe else [sys.executable, "-m", "dm_opt.cli"]


def _run(cmd, env=None) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"first_call: {' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()[-400:]}")
    return wall, out.stdout


def measure(repeat: int = 3, n: int = 30, seed: int = 0, method: str = "bnb", warmup: bool = True) -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    # a warm process has Python's bytecode cache too (pip writes .pyc files on install); a
    # PYTHONDONTWRITEBYTECODE environment would recompile every module from source in every run
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    bare = [_run([sys.executable, "-c", "import dm_opt"], env)[0] for _ in range(repeat)]
    with_numpy = [_run([sys.executable, "-c", "import numpy, dm_opt"], env)[0] for _ in range(repeat)]
    solve = _dm_opt_cmd() + ["solve", "ammo/example1"]
    _run(solve, env)                                   # warm numba's cache (and the OS file cache)
    warm = [_run(solve, env)[0] for _ in range(repeat)]
    warm_json = json.loads(_run(solve + ["--json"], env)[1])
    cold, cold_info = [], []
    child = _SOLVE_CHILD.format(n=n, seed=seed, method=method)
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="dm_opt_numba_cold_") as cache:
            cenv = dict(env, NUMBA_CACHE_DIR=cache)
            wall, out = _run([sys.executable, "-c", child], cenv)
            cold.append(wall)
            cold_info.append(json.loads(out.strip().splitlines()[-1]))
    # the same first solve after ``dm-opt warmup`` filled a fresh cache (the step to run after installing)
    warmed, warmed_info, warmup_seconds = [], [], None
    with tempfile.TemporaryDirectory(prefix="dm_opt_numba_warmup_") as cache:
        wenv = dict(env, NUMBA_CACHE_DIR=cache)
        t0 = time.perf_counter()
        if warmup:
            _run(_dm_opt_cmd() + ["warmup", "--jobs", "2"], wenv)
            warmup_seconds = time.perf_counter() - t0
        for _ in range(repeat if warmup else 0):     # --skip-warmup: these rows are left out
            wall, out = _run([sys.executable, "-c", child], wenv)
            warmed.append(wall)
            warmed_info.append(json.loads(out.strip().splitlines()[-1]))
    b = statistics.median(bare)
    w = statistics.median(warm)
    c = statistics.median(cold)
    return {
        "python": sys.version.split()[0], "repeat": repeat,
        "import_seconds": b, "import_runs": bare, "import_numpy_seconds": statistics.median(with_numpy),
        "warm_solve_seconds": w, "warm_runs": warm, "warm_ratio": w / b,
        "warm_result": {k: warm_json.get(k) for k in ("status", "objective", "seconds")}
        | {"compile_seconds": (warm_json.get("extra") or {}).get("compile_seconds")},
        "cold_bnb_seconds": c, "cold_runs": cold, "cold_ratio": c / b, "cold_n": n, "cold_method": method,
        "cold_results": cold_info,
        "warmup_seconds": warmup_seconds, "after_warmup_seconds": statistics.median(warmed) if warmed else None,
        "after_warmup_runs": warmed, "after_warmup_results": warmed_info,
        "targets": {"warm_ratio": TARGET_WARM_RATIO, "cold_seconds": TARGET_COLD_SECONDS},
        "met": {"warm": w / b <= TARGET_WARM_RATIO, "cold": c <= TARGET_COLD_SECONDS},
    }


def format_table(r: dict) -> str:
    def ok(flag):
        return "met" if flag else "NOT met"

    lines = [
        f"first call (median of {r['repeat']} fresh processes, python {r['python']})",
        f"  python -c 'import dm_opt'             {r['import_seconds']:7.3f} s   (reference)",
        f"  dm-opt solve ammo/example1 (warm)     {r['warm_solve_seconds']:7.3f} s   {r['warm_ratio']:5.2f}x  "
        f"target <= {r['targets']['warm_ratio']}x: {ok(r['met']['warm'])}",
        f"      against python -c 'import numpy, dm_opt' ({r['import_numpy_seconds']:.3f} s): "
        f"{r['warm_solve_seconds'] / r['import_numpy_seconds']:.2f}x (for information; not the target)",
        f"      reported: solve {r['warm_result']['seconds']:.4f} s, compile "
        f"{r['warm_result']['compile_seconds']} s",
        f"  first {r['cold_method']} n={r['cold_n']} (cold numba cache)   {r['cold_bnb_seconds']:7.3f} s   "
        f"{r['cold_ratio']:5.2f}x  target <= {r['targets']['cold_seconds']} s: {ok(r['met']['cold'])}",
    ]
    for i, x in enumerate(r["cold_results"]):
        cs = x["compile_seconds"]
        lines.append(f"      run {i}: {x['status']}, reported: time {x['seconds']:.3f} s, compile "
                     f"{'not reported' if cs is None else f'{cs:.3f} s'}; measured around the call: "
                     f"compile/cache-load {x['jit_around_call']:.3f} s; in-process {x['inside']:.3f} s; "
                     f"search kernels: {x.get('kernels') or 'compiled'}, {x.get('nodes')} nodes, numba "
                     f"{'imported' if x.get('numba_imported') else 'not imported'}")
    if r["warmup_seconds"] is not None:
        lines.append(f"  dm-opt warmup --jobs 2 (once, fresh cache) {r['warmup_seconds']:7.1f} s; then the same first "
                     f"{r['cold_method']} n={r['cold_n']}: {r['after_warmup_seconds']:.3f} s "
                     f"({r['after_warmup_seconds'] / r['import_seconds']:.2f}x import)")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", default="bnb")
    p.add_argument("--json", action="store_true")
    p.add_argument("--skip-warmup", action="store_true", help="leave out the dm-opt warmup rows (minutes)")
    a = p.parse_args(argv)
    if a.repeat < 1 or a.n < 1:
        p.error("--repeat and --n must be positive")
    r = measure(a.repeat, a.n, a.seed, a.method, warmup=not a.skip_warmup)
    print(json.dumps(r, indent=1) if a.json else format_table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
