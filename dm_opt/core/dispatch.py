"""``dm_opt.solve``: one entry point for every market kind of every family.

Each family declares its problems in ``dm_opt.<family>.problems``:

``PROBLEMS``        kind -> {problem name -> function}; every function has the shape
                    ``fn(market, *, method="auto", time_limit=None, options=None, **kw) -> Result``
``DEFAULT_PROBLEM`` kind -> the problem solved when none is named
``CLI_OPTIONS``     kind -> the ``dm-opt solve`` flags that apply (``method``, ``all_optima``,
                    ``time_limit``); others are refused

and :func:`solve` and the ``dm-opt solve`` command both read these tables.  The family
is the market class's ``family`` attribute (Gaussian-market duck types without one are
Gaussian).  The core names the families' modules but imports them only on use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dm_opt.core.errors import ProblemError

if TYPE_CHECKING:
    from dm_opt.core.limits import Deadline
    from dm_opt.core.result import Result

#: a problem function of a family's table: ``fn(market, *, method, time_limit, options, **kw) -> Result``
ProblemFn = Callable[..., "Result"]

FAMILIES = ("gaussian", "info_design", "sharing")


def family_of(market: Any) -> str:
    fam = getattr(type(market), "family", None) or getattr(market, "family", None) or "gaussian"
    if not isinstance(fam, str) or fam not in FAMILIES:
        raise ProblemError(f"unknown model family '{fam}' of {type(market).__name__}")
    return fam


def problems_module(family: str) -> ModuleType:
    """``dm_opt.<family>.problems`` (the family's problem table)."""
    if family not in FAMILIES:
        raise ProblemError(f"unknown model family '{family}'; one of {', '.join(FAMILIES)}")
    return importlib.import_module(f"dm_opt.{family}.problems")


def kind_of(market: Any) -> str:
    return str(getattr(market, "kind", None) or "gaussian_market")


def problem_table(market: Any) -> tuple[dict[str, ProblemFn], str]:
    """``(problems, default problem)`` of the market's kind."""
    mod = problems_module(family_of(market))
    kind = kind_of(market)
    table: dict[str, ProblemFn] | None = mod.PROBLEMS.get(kind)
    if table is None:
        raise ProblemError(f"{type(market).__name__} (kind '{kind}') has no problems in family "
                           f"'{family_of(market)}'; kinds: {', '.join(sorted(mod.PROBLEMS))}")
    return table, str(mod.DEFAULT_PROBLEM[kind])


def _brief(x: Any) -> str:
    s = " ".join(repr(x).split())
    return s if len(s) <= 60 else s[:57] + "..."


def solve(market: Any, problem: str | object | None = None, method: str = "auto", *,
          time_limit: float | Deadline | None = None, options: Mapping[str, Any] | None = None,
          **kw: Any) -> Result:
    """Solve ``problem`` on ``market`` exactly with ``method``; returns the family's result
    (every result follows :mod:`dm_opt.core.result`'s protocol: ``status``, ``solution_status``,
    ``objective``, ``bound``, ``gap``, ``seconds``, ``message``, ``extra``, ``to_dict()``,
    ``raise_for_status()``).

    Parameters
    ----------
    market : GaussianMarket, CommunityMarket, MixtureMarket, …, InfoDesignMarket or SharingMarket
    problem : str, optional
        A problem of the market's kind (``dm-opt solve --help`` lists them all; for a Gaussian
        market ``first_best``, ``equilibrium`` (default), ``decorrelated`` or a
        :class:`~dm_opt.gaussian.objectives.LeakageObjective`; for an information-design market
        ``platform``, ``efficiency`` (default), ``equilibrium``, ``union``, ``taxes``,
        ``complete``; for a sharing network ``welfare`` (default), ``ordered_match``, ``check``,
        ``stability``, ``prices``, ``vcg``, ``mixed_vcg``, ``d_mixed_vcg``).
    method : str
        ``"auto"`` or a method of the family (Gaussian: ``enumerate``, ``bnb``, ``milp``,
        ``misocp-scip``, ``community``; :func:`dm_opt.core.registry.available_methods`).
    time_limit : float or :class:`~dm_opt.core.limits.Deadline`, optional
        Seconds; a stopped solve returns its best answer with status ``time_limit`` and a bound.
    options : dict, optional
        Options of the method (checked: unknown keys are named in the error).
    **kw
        Further keywords of the problem (``all_optima``, ``constraints``, ``tol``, …).
    """
    table, default = problem_table(market)
    # checked here once for every family: a wrong type would otherwise surface deep inside a backend
    if not isinstance(method, str) or not method:
        raise ProblemError(f"method must be a non-empty string ('auto' or a method name), got "
                           f"{_brief(method)}")
    if options is not None and not (isinstance(options, Mapping) and all(isinstance(k, str) for k in options)):
        raise ProblemError(f"options must be a dict of option names to values (or None), got {_brief(options)}")
    if problem is None:
        problem = default
    if isinstance(problem, str):
        fn = table.get(problem)
        if fn is None:
            raise ProblemError(f"unknown problem '{problem}' for kind '{kind_of(market)}'; "
                               f"choose one of {', '.join(table)}")
    else:                                     # a family-specific problem object (LeakageObjective)
        fn = getattr(problems_module(family_of(market)), "solve_objective", None)
        if fn is None:
            raise ProblemError(f"problem must be one of {', '.join(table)}, got {type(problem).__name__}")
        return fn(market, problem, method=method, time_limit=time_limit, options=options, **kw)
    return fn(market, method=method, time_limit=time_limit, options=options, **kw)


__all__ = ["solve", "family_of", "kind_of", "problem_table", "problems_module", "FAMILIES", "ProblemFn"]
