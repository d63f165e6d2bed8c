"""The problem table of the information-design (GLP) family, read by :func:`dm_opt.solve` and
``dm-opt solve`` (see :mod:`dm_opt.core.dispatch`).

Every function has the shape ``fn(market, *, method="auto", time_limit=None, options=None, **kw)``
and returns a :class:`~dm_opt.core.result.Result` of :mod:`dm_opt.info_design.results`.
``METHODS`` lists the methods each problem accepts (checked here, before any work).
"""

from __future__ import annotations

import time

from dm_opt.core.errors import ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.result import frozen_array
from dm_opt.info_design.lp import (
    complete_markets,
    constrained_efficiency,
    data_taxes,
    data_union,
    equilibria,
    platform_report,
)
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


def _check(problem: str, method: str, options) -> str:
    method = method or "auto"
    if method not in METHODS[problem]:
        raise ProblemError(f"method {method!r} (--method) does not apply to info_design problem '{problem}'; "
                           f"use {', '.join(METHODS[problem])}")
    if options:
        raise ProblemError(f"unknown option(s) for info_design problem '{problem}': {', '.join(sorted(options))}; "
                           f"allowed: none")
    return method


def platform(market, *, method: str = "auto", time_limit=None, options=None, q=None,
             intervals: bool | None = None) -> PlatformReport:
    """``P_q`` and ``W(q)`` at the database ``q`` (default: the market's ``database`` or its prior):
    :func:`dm_opt.info_design.lp.platform_report`.  ``intervals`` (default: always for the closed
    form, for ``|Ω| ≤`` :data:`PLATFORM_INTERVALS_MAX_N` on the LP path) adds the ranges of ``∂V(q)``."""
    method = _check("platform", method, options)
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
    method = _check("efficiency", method, options)
    return constrained_efficiency(market, method=method, time_limit=Deadline.of(time_limit), **kw)


def equilibrium(market, *, method: str = "auto", time_limit=None, options=None, **kw):
    """Every competitive equilibrium: :func:`dm_opt.info_design.lp.equilibria`."""
    _check("equilibrium", method, options)
    return equilibria(market, time_limit=Deadline.of(time_limit), **kw)


def union(market, *, method: str = "auto", time_limit=None, options=None, **kw):
    """The data union: :func:`dm_opt.info_design.lp.data_union`."""
    method = _check("union", method, options)
    return data_union(market, method=method, time_limit=Deadline.of(time_limit), **kw)


def taxes(market, *, method: str = "auto", time_limit=None, options=None, **kw):
    """Data taxes: :func:`dm_opt.info_design.lp.data_taxes`."""
    _check("taxes", method, options)
    return data_taxes(market, time_limit=Deadline.of(time_limit), **kw)


def complete(market, *, method: str = "auto", time_limit=None, options=None, **kw):
    """More-complete markets: :func:`dm_opt.info_design.lp.complete_markets`."""
    _check("complete", method, options)
    return complete_markets(market, time_limit=Deadline.of(time_limit), **kw)


PROBLEMS: dict = {KIND: {"platform": platform, "efficiency": efficiency, "equilibrium": equilibrium,
                         "union": union, "taxes": taxes, "complete": complete}}
DEFAULT_PROBLEM: dict = {KIND: "efficiency"}
#: ``dm-opt solve`` flags that apply (``--all-optima`` does not: ties are listed in the output)
CLI_OPTIONS: dict = {KIND: ("method", "time_limit")}

__all__ = ["PROBLEMS", "DEFAULT_PROBLEM", "CLI_OPTIONS", "METHODS", "platform", "efficiency", "equilibrium",
           "union", "taxes", "complete"]
