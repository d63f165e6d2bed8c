"""The problem table of the Gaussian family (read by :func:`dm_opt.solve` and ``dm-opt solve``;
see :mod:`dm_opt.core.dispatch`)."""

from __future__ import annotations

from dm_opt.gaussian.api import solve as _solve
from dm_opt.gaussian.objectives import PROBLEMS as _NAMED


def _named(problem: str):
    def fn(market, *, method: str = "auto", time_limit=None, options=None, **kw):
        return _solve(market, problem, method, time_limit=time_limit, **{**(options or {}), **kw})

    fn.__name__ = problem
    fn.__doc__ = f"``{problem}`` of a Gaussian data market (:func:`dm_opt.gaussian.api.solve`)."
    return fn


def solve_objective(market, objective, *, method: str = "auto", time_limit=None, options=None, **kw):
    """A weighted-leakage objective (:class:`~dm_opt.gaussian.objectives.LeakageObjective`)."""
    return _solve(market, objective, method, time_limit=time_limit, **{**(options or {}), **kw})


_LEAKAGE_PROBLEMS = {p: _named(p) for p in _NAMED}
#: kinds whose problems are the leakage problems of :func:`dm_opt.gaussian.api.solve`
_LEAKAGE_KINDS = ("gaussian_market", "community_market", "gaussian_mixture", "gaussian_mutual_information",
                  "tabulated_leakage", "leakage_oracle", "literal_decorrelated")

PROBLEMS: dict = {kind: dict(_LEAKAGE_PROBLEMS) for kind in _LEAKAGE_KINDS}
DEFAULT_PROBLEM: dict = {kind: "equilibrium" for kind in _LEAKAGE_KINDS}
CLI_OPTIONS: dict = {kind: ("method", "all_optima", "time_limit") for kind in _LEAKAGE_KINDS}
