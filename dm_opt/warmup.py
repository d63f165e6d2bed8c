"""Compile dm_opt's numba kernels into numba's on-disk cache before the first real solve.

A fresh installation has an empty cache, so the first enumeration call of a process above the
NumPy sizes compiles its kernels (20–60 s on a 2-core machine, depending on load), and a first
``bnb`` search runs in the interpreter for up to
:data:`dm_opt.gaussian.kernels.bnb.PYTHON_SEARCH_SECONDS` before compiling; later processes load
the compiled kernels (well under a second).  No install hook can run code after ``pip install``, so this is the
step to run once after installing (``dm-opt warmup``): it solves one small instance per compiled
code path (the Gaussian enumeration and branch-and-bound for the three leakage problems, with and
without side constraints, the community search, the leakage oracles, the data-sharing kernels) and
reports the seconds spent per case.  It changes nothing but the cache; a second run only loads.

``dm_opt.warmup.warmup(jobs=2)`` splits the cases between two processes (numba compiles one
function at a time per process).
"""

from __future__ import annotations

import sys
import time
from typing import Callable

#: (name, what it compiles, callable) — each callable runs a small solve through the public API.
CASES: list[tuple[str, str, Callable[[], object]]] = []


def _case(name: str, what: str):
    def deco(fn):
        CASES.append((name, what, fn))
        return fn
    return deco


def _solve_all(model: str, methods, problems, **kw) -> None:
    import dm_opt

    m = dm_opt.load(model)
    for method in methods:
        for problem in problems:
            r = dm_opt.solve(m, problem, method=method, **kw)
            if r.objective is None:
                raise RuntimeError(f"warm-up solve of {model} ({problem}, {method}) returned no answer: {r.status}")


_LEAKAGE = ("equilibrium", "first_best", "decorrelated")


@_case("enumeration", "Gray-code enumeration kernels (n above the NumPy small-n path)")
def _enumeration():
    _solve_all("ammo/wishart_n16_seed1", ["enumerate"], _LEAKAGE)


@_case("bnb", "branch-and-bound node kernels, the three leakage problems")
def _bnb():
    _solve_all("ammo/wishart_n16_seed1", ["bnb"], _LEAKAGE)
    _solve_all("ammo/wishart_n40_seed1", ["bnb"], ("equilibrium",))


@_case("bnb-constraints", "branch-and-bound with side constraints and linear rows")
def _bnb_rows():
    import numpy as np
    from scipy.optimize import LinearConstraint

    row = LinearConstraint(np.ones((1, 16)), -np.inf, 6.0)
    _solve_all("ammo/wishart_n16_seed1", ["bnb"], _LEAKAGE, constraints=[row, {"max_sharers": 5}])


@_case("bnb-symmetry", "branch-and-bound on exchangeable users (symmetry chains)")
def _bnb_symmetry():
    _solve_all("ammo/equicorrelated_n12", ["bnb"], _LEAKAGE)


@_case("community", "the community count-vector search")
def _community():
    _solve_all("ammo/example2_community", ["community"], ("equilibrium", "first_best"))


@_case("leakage-oracles", "non-Gaussian leakage oracles (mixture)")
def _oracles():
    _solve_all("ammo/mixture_example", ["auto"], ("equilibrium",))


@_case("sharing", "data-sharing network kernels (ordered match, stability, buyers)")
def _sharing():
    import dm_opt

    for model in ("rj/example_3_5", "rj/power_family_12", "rj/power_queries"):
        dm_opt.solve(dm_opt.load(model))


def _run_cases(names: list[str], progress: bool) -> list[tuple[str, float]]:
    from dm_opt.gaussian.kernels import bnb as kbnb

    out = []
    table = {name: fn for name, _, fn in CASES}
    # a first search with a cold cache would run in the interpreter and compile nothing
    # (dm_opt.gaussian.kernels.bnb.pick_dfs): here the point is to compile
    before, kbnb.PYTHON_SEARCH_SECONDS = kbnb.PYTHON_SEARCH_SECONDS, 0.0
    try:
        for name in names:
            t = time.perf_counter()
            table[name]()
            dt = time.perf_counter() - t
            out.append((name, dt))
            if progress:
                print(f"  {name:<18} {dt:7.2f} s", file=sys.stderr, flush=True)
    finally:
        kbnb.PYTHON_SEARCH_SECONDS = before
    return out


def warmup(jobs: int = 1, progress: bool = False) -> list[tuple[str, float]]:
    """Run every case of :data:`CASES` (in ``jobs`` processes); returns ``[(name, seconds)]``.

    ``seconds`` is compile (or cache-load) plus the small solve itself; a second call only loads."""
    import numbers

    # an integral number only: int() would truncate 1.5, and raise its own ValueError on "x" or nan
    if isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or jobs < 1:
        from dm_opt.core.errors import ProblemError

        raise ProblemError(f"warmup: jobs must be an integer >= 1, got {jobs!r}"[:200])
    jobs = int(jobs)
    names = [name for name, _, _ in CASES]
    if jobs == 1:
        return _run_cases(names, progress)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # the longest cases first, dealt round-robin: the compile times are uneven (bnb dominates)
    jobs = min(jobs, len(names))          # more processes than cases would only idle (or exhaust memory)
    parts = [names[i::jobs] for i in range(jobs)]
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as ex:
        futures = [ex.submit(_run_cases, part, progress) for part in parts if part]
        results = [f.result() for f in futures]
    order = {name: i for i, name in enumerate(names)}
    return sorted((x for r in results for x in r), key=lambda x: order[x[0]])
