"""The problem table of the information-design (GLP) family, read by :func:`dm_opt.solve` and
``dm-opt solve`` (see :mod:`dm_opt.core.dispatch`).

Every function has the shape ``fn(market, *, method="auto", time_limit=None, options=None, **kw)``
and returns a :class:`~dm_opt.core.result.Result` of :mod:`dm_opt.info_design.results`.
``METHODS`` lists the methods each problem accepts (checked here, before any work).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping

from dm_opt.core.errors import DmOptWarning, ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.registry import get_backend
from dm_opt.core.result import Termination, frozen_array
from dm_opt.info_design.backends import CVXPY_LP_SOLVERS, CVXPY_OPTIONS
from dm_opt.info_design.lp import (
    complete_markets,
    constrained_efficiency,
    data_taxes,
    data_union,
    equilibria,
    platform_report,
)
from dm_opt.info_design.lp._cvxpy import CvxpyOptions, _cp
from dm_opt.info_design.lp._cvxpy import cvxpy_options as _cvxpy_options
from dm_opt.info_design.lp.platform import _platform_method
from dm_opt.info_design.results import PlatformReport

KIND = "info_design"

#: problem -> methods it accepts (``auto`` picks the closed form whenever it applies)
METHODS: dict[str, tuple] = {
    "platform": ("auto", "bbm", "lp"),
    "efficiency": ("auto", "bbm", "pieces", "milp"),
    "equilibrium": ("auto",),
    "union": ("auto", "bbm", "pieces"),
    "taxes": ("auto",),
    "complete": ("auto",),
}

#: Above this |Ω| the ``platform`` problem on the LP path does not compute the ranges of ``∂V(q)``
#: unless asked (``intervals=True``); the closed form always does.
PLATFORM_INTERVALS_MAX_N = 50


#: problems some of whose LPs are cvxpy models (piece LPs, equilibrium LPs): with ``method="auto"``
#: they take :data:`~dm_opt.info_design.backends.CVXPY_OPTIONS`; ``platform`` (highspy or the closed
#: form) and ``complete`` (highspy) take none
CVXPY_PROBLEMS = frozenset({"efficiency", "equilibrium", "union", "taxes"})


def cvxpy_options(problem: str, method: str, options) -> CvxpyOptions | None:
    """Check ``options`` of ``problem`` solved by ``method``: unknown keys and bad values are named
    (:class:`ProblemError`) before any work.  ``None`` when no options were given."""
    if not options:
        if options is not None and not isinstance(options, Mapping):
            raise ProblemError(f"options must be a dict, got {type(options).__name__}")
        return None
    if not isinstance(options, Mapping):
        raise ProblemError(f"options must be a dict, got {type(options).__name__}")
    if method == "auto":
        allowed: tuple = CVXPY_OPTIONS if problem in CVXPY_PROBLEMS else ()
    else:
        allowed = tuple(get_backend(method, "info_design").OPTIONS)
    unknown = sorted(str(k) for k in set(options) - set(allowed))
    if unknown:
        raise ProblemError(f"unknown option(s) for info_design problem '{problem}' (method '{method}'): "
                           f"{', '.join(unknown)}; allowed: {', '.join(allowed) or 'none'}")
    out = CvxpyOptions()
    if "solver" in options:
        solver = options["solver"]
        if not isinstance(solver, str) or solver.upper() not in CVXPY_LP_SOLVERS:
            raise ProblemError(f"options['solver'] = {solver!r}: the GLP LPs accept the cvxpy solvers "
                               f"{', '.join(CVXPY_LP_SOLVERS)}")
        installed = _cp().installed_solvers()
        if solver.upper() not in installed:
            raise ProblemError(f"options['solver'] = {solver!r} is not installed for cvxpy; installed: "
                               f"{', '.join(s for s in CVXPY_LP_SOLVERS if s in installed)}")
        out.solver = solver.upper()
    if "solver_options" in options:
        so = options["solver_options"]
        if not isinstance(so, Mapping) or not all(isinstance(k, str) for k in so):
            raise ProblemError(f"options['solver_options'] must be a dict of keyword arguments of cvxpy's "
                               f"Problem.solve, got {so!r}"[:200])
        out.solver_options = dict(so)
    if "verbose" in options:
        if not isinstance(options["verbose"], bool):
            raise ProblemError(f"options['verbose'] must be true or false, got {options['verbose']!r}")
        out.verbose = options["verbose"]
    return out


def _run(opts: CvxpyOptions | None, problem: str, fn, *args, **kw):
    """``fn(*args, **kw)`` with the user's cvxpy options in force; warns when a finished solve used
    no cvxpy LP (e.g. ``auto`` chose the closed form), so options are never dropped silently."""
    if opts is None:
        return fn(*args, **kw)
    with _cvxpy_options(opts):
        result = fn(*args, **kw)
    if opts.solves == 0 and Termination(result.status) is Termination.OPTIMAL:
        warnings.warn(DmOptWarning(f"options were not used: info_design problem '{problem}' solved no cvxpy LP "
                                   f"on this market (the method chosen does not use cvxpy)"), stacklevel=4)
    return result


def _check(problem: str, method: str, options) -> tuple[str, CvxpyOptions | None]:
    method = method or "auto"
    if method not in METHODS[problem]:
        raise ProblemError(f"method {method!r} (--method) does not apply to info_design problem '{problem}'; "
                           f"use {', '.join(METHODS[problem])}")
    return method, cvxpy_options(problem, method, options)


def platform(market, *, method: str = "auto", time_limit=None, options=None, q=None,
             intervals: bool | None = None) -> PlatformReport:
    """``P_q`` and ``W(q)`` at the database ``q`` (default: the market's ``database`` or its prior):
    :func:`dm_opt.info_design.lp.platform_report`.  ``intervals`` (default: always for the closed
    form, for ``|Ω| ≤`` :data:`PLATFORM_INTERVALS_MAX_N` on the LP path) adds the ranges of ``∂V(q)``."""
    method, _ = _check("platform", method, options)
    dl = Deadline.of(time_limit)
    t0 = time.perf_counter()
    if q is None:
        q = getattr(market, "database_q", None)
        q = market.prior if q is None else q
    q = market.database(q)
    pm = _platform_method(market, method)
    if intervals is None:
        intervals = pm == "bbm" or market.n <= PLATFORM_INTERVALS_MAX_N
    sol, w = platform_report(market, q, method=pm, intervals=intervals, time_limit=dl)
    return PlatformReport(sol, w, pm, frozen_array(q, float), time.perf_counter() - t0)


def efficiency(market, *, method: str = "auto", time_limit=None, options=None, **kw):
    """Constrained efficiency ``W°``: :func:`dm_opt.info_design.lp.constrained_efficiency`."""
    method, opts = _check("efficiency", method, options)
    return _run(opts, "efficiency", constrained_efficiency, market, method=method,
                time_limit=Deadline.of(time_limit), **kw)


def equilibrium(market, *, method: str = "auto", time_limit=None, options=None, **kw):
    """Every competitive equilibrium: :func:`dm_opt.info_design.lp.equilibria`."""
    _, opts = _check("equilibrium", method, options)
    return _run(opts, "equilibrium", equilibria, market, time_limit=Deadline.of(time_limit), **kw)


def union(market, *, method: str = "auto", time_limit=None, options=None, **kw):
    """The data union: :func:`dm_opt.info_design.lp.data_union`."""
    method, opts = _check("union", method, options)
    return _run(opts, "union", data_union, market, method=method, time_limit=Deadline.of(time_limit), **kw)


def taxes(market, *, method: str = "auto", time_limit=None, options=None, **kw):
    """Data taxes: :func:`dm_opt.info_design.lp.data_taxes`."""
    _, opts = _check("taxes", method, options)
    return _run(opts, "taxes", data_taxes, market, time_limit=Deadline.of(time_limit), **kw)


def complete(market, *, method: str = "auto", time_limit=None, options=None, **kw):
    """More-complete markets: :func:`dm_opt.info_design.lp.complete_markets`."""
    _check("complete", method, options)
    return complete_markets(market, time_limit=Deadline.of(time_limit), **kw)


PROBLEMS: dict = {KIND: {"platform": platform, "efficiency": efficiency, "equilibrium": equilibrium,
                         "union": union, "taxes": taxes, "complete": complete}}
DEFAULT_PROBLEM: dict = {KIND: "efficiency"}
#: ``dm-opt solve`` flags that apply (``--all-optima`` does not: ties are listed in the output)
CLI_OPTIONS: dict = {KIND: ("method", "time_limit")}

__all__ = ["PROBLEMS", "DEFAULT_PROBLEM", "CLI_OPTIONS", "METHODS", "CVXPY_PROBLEMS", "cvxpy_options",
           "platform", "efficiency", "equilibrium",
           "union", "taxes", "complete"]
