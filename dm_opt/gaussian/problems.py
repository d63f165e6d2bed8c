"""The problem table of the Gaussian family (read by :func:`dm_opt.solve` and ``dm-opt solve``;
see :mod:`dm_opt.core.dispatch`).

Every function has the shape ``fn(market, *, method="auto", time_limit=None, options=None, **kw)``
and returns a result following :mod:`dm_opt.core.result`'s protocol:

* leakage kinds (``gaussian_market``, ``community_market``, the leakage oracles): the problems of
  :func:`dm_opt.gaussian.api.solve` → :class:`~dm_opt.gaussian.result.SolveResult`;
* ``gaussian_taxes`` (AMMO §6.1): ``uniform_sweep`` → :class:`~dm_opt.gaussian.taxes.UniformTaxSweep`,
  ``pigovian`` / ``post_tax_equilibrium`` → :class:`~dm_opt.gaussian.taxes.TaxOutcome`, and the three
  leakage problems of the underlying market;
* ``gaussian_valuations`` (AMMO §5.2, Appendix B): ``mechanism`` (Thm B-2), ``vcg`` (Prop B-1),
  ``expected_payoff`` → :class:`~dm_opt.gaussian.result.ValuationResult`, and the three leakage
  problems at the reported values;
* ``two_platforms`` (AMMO §4): ``competition`` → :class:`~dm_opt.gaussian.result.CompetitionResult`.

``time_limit`` is seconds or a shared :class:`~dm_opt.core.limits.Deadline`.  The valuations and
platforms modules are imported when their problems run (they load ``scipy.stats``, about 2 s,
which ``dm_opt.solve`` on a plain Gaussian market must not pay).  ``progress`` is
accepted by every function (the CLI passes it) and used by the leakage solves only.
"""

from __future__ import annotations

import math
import time

import numpy as np

from dm_opt.core.errors import InstanceError, ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.gaussian.api import solve as _solve
from dm_opt.gaussian.objectives import PROBLEMS as _NAMED
from dm_opt.gaussian.result import CompetitionResult, ValuationResult

#: the three leakage problems of :func:`dm_opt.gaussian.api.solve`
LEAKAGE_PROBLEMS = tuple(_NAMED)


def _no_options(options, problem: str) -> None:
    if options:
        raise ProblemError(f"problem '{problem}' takes no method options, got {', '.join(sorted(options))}")


def _named(problem: str, market_of=None):
    def fn(market, *, method: str = "auto", time_limit=None, options=None, **kw):
        m = market if market_of is None else market_of(market)
        return _solve(m, problem, method, time_limit=time_limit, **{**(options or {}), **kw})

    fn.__name__ = problem
    fn.__doc__ = f"``{problem}`` of a Gaussian data market (:func:`dm_opt.gaussian.api.solve`)."
    return fn


def solve_objective(market, objective, *, method: str = "auto", time_limit=None, options=None, **kw):
    """A weighted-leakage objective (:class:`~dm_opt.gaussian.objectives.LeakageObjective`)."""
    return _solve(market, objective, method, time_limit=time_limit, **{**(options or {}), **kw})


def _exact_method(method: str) -> str:
    """``auto`` for the taxes: enumeration (the tie lists need every optimum)."""
    return "enumerate" if method == "auto" else method


# ------------------------------------------------------------------ gaussian_taxes (AMMO §6.1)
def _taxes_module():
    """:mod:`dm_opt.gaussian.taxes`, imported on first use (a plain leakage solve must not pay for it)."""
    from dm_opt.gaussian import taxes

    return taxes


def uniform_sweep(tm, *, method: str = "auto", time_limit=None, options=None, progress: bool = False):
    """Exact post-tax equilibrium surplus as a function of a uniform tax on ``[0, t_max]``."""
    _no_options(options, "uniform_sweep")
    return _taxes_module().uniform_tax_sweep(tm.market, t_max=tm.t_max, method=_exact_method(method),
                                    time_limit=Deadline.of(time_limit))


def pigovian(tm, *, method: str = "auto", time_limit=None, options=None, progress: bool = False):
    """Personalised taxes implementing the first best, verified by the post-tax equilibrium."""
    _no_options(options, "pigovian")
    dl, method = Deadline.of(time_limit), _exact_method(method)
    taxes = _taxes_module().pigovian_taxes(tm.market, method=method, time_limit=dl)
    return _taxes_module().verify_taxes(tm.market, taxes, method=method, time_limit=dl)


def post_tax_equilibrium(tm, *, method: str = "auto", time_limit=None, options=None, progress: bool = False):
    """The post-tax equilibrium at the instance's personalised ``taxes``."""
    _no_options(options, "post_tax_equilibrium")
    if tm.taxes is None:
        raise InstanceError("taxes", "missing: post_tax_equilibrium needs taxes = [...] in the file")
    return _taxes_module().verify_taxes(tm.market, tm.taxes, method=_exact_method(method),
                                        time_limit=Deadline.of(time_limit))


# ------------------------------------------------------------------ gaussian_valuations (AMMO §5.2, App. B)
def _valuations_module():
    """:mod:`dm_opt.gaussian.valuations`, imported on first use (heavy: scipy.stats)."""
    from dm_opt.gaussian import valuations

    return valuations


def mechanism(vm, *, method: str = "auto", time_limit=None, options=None, progress: bool = False):
    """Thm B-2: optimal allocation and exact payments at the reported values.

    ``objective`` is the platform payoff (``nan`` until every payment is exact), ``bound`` the
    upper end of its proven interval."""
    _no_options(options, "mechanism")
    _valuations = _valuations_module()
    t0 = time.perf_counter()
    out = _valuations.mechanism(vm, method=method, time_limit=Deadline.of(time_limit))
    return ValuationResult("mechanism", method, out, objective=float(out.platform_payoff),
                           bound=float(out.platform_payoff_bounds[1]), seconds=time.perf_counter() - t0)


def vcg(vm, *, method: str = "auto", time_limit=None, options=None, progress: bool = False):
    """Prop B-1: first-best profile and VCG prices.  ``objective``/``bound``: the first-best surplus
    (solved first, always proven)."""
    _no_options(options, "vcg")
    _valuations = _valuations_module()
    t0 = time.perf_counter()
    out = _valuations.vcg(vm.market, method=method, time_limit=Deadline.of(time_limit))
    return ValuationResult("vcg", method, out, objective=float(out.surplus), bound=float(out.surplus),
                           seconds=time.perf_counter() - t0)


def expected_payoff(vm, *, method: str = "auto", time_limit=None, options=None, progress: bool = False):
    """Thm B-2: expected platform payoff (exact for discrete tables, Monte Carlo otherwise).

    ``objective`` is the mean; ``bound`` the proven upper end for an exact sum (``nan`` for Monte Carlo)."""
    _no_options(options, "expected_payoff")
    _valuations = _valuations_module()
    t0 = time.perf_counter()
    e = _valuations.expected_platform_payoff(vm, samples=getattr(vm, "samples", 1000), seed=getattr(vm, "seed", 0),
                                             method=method, time_limit=Deadline.of(time_limit))
    if e.method == "exact":
        bound = e.mean if math.isnan(e.upper) else e.upper
    else:
        bound = math.nan
    return ValuationResult("expected_payoff", method, e, objective=float(e.mean), bound=float(bound),
                           seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------ two_platforms (AMMO §4)
def competition(tp, *, method: str = "auto", time_limit=None, options=None, progress: bool = False):
    """Pure price equilibria of two competing platforms within the candidate set, with the
    first-best and monopoly benchmarks (:class:`~dm_opt.gaussian.result.CompetitionResult`).

    The search options (``deviation``, ``max_candidates``, ``levels``) are the instance's
    ``search_options``; ``method`` must be ``auto`` (the analysis enumerates joint actions)."""
    _no_options(options, "competition")
    if method != "auto":
        raise ProblemError(f"two_platforms: the competition analysis has no methods, got method '{method}'")
    t0 = time.perf_counter()
    opts = getattr(tp, "search_options", {"deviation": "paper", "max_candidates": 200, "levels": None})
    P = tp.candidate_prices(opts["levels"], max_candidates=opts["max_candidates"])
    res = tp.search_equilibria(P, deviation=opts["deviation"], time_limit=Deadline.of(time_limit))
    fb, fb_outcomes = tp.first_best()
    mono, mono_a = tp.monopoly()
    best = max((e.outcome.surplus for e in res.equilibria), default=math.nan)
    return CompetitionResult("competition", "auto", res, objective=float(best), bound=float(fb),
                             seconds=time.perf_counter() - t0, first_best_surplus=float(fb),
                             first_best_outcomes=tuple(fb_outcomes), monopoly_surplus=float(mono),
                             monopoly_sharing=np.asarray(mono_a), assumption1=tp.assumption1)


# ------------------------------------------------------------------ the tables
_LEAKAGE = {p: _named(p) for p in _NAMED}
#: kinds whose problems are the leakage problems of :func:`dm_opt.gaussian.api.solve`
LEAKAGE_KINDS = ("gaussian_market", "community_market", "gaussian_mixture", "gaussian_mutual_information",
                 "tabulated_leakage", "leakage_oracle", "literal_decorrelated")


def _underlying(x):
    return x.market


PROBLEMS: dict = {kind: dict(_LEAKAGE) for kind in LEAKAGE_KINDS}
PROBLEMS["gaussian_taxes"] = {"uniform_sweep": uniform_sweep, "pigovian": pigovian,
                              "post_tax_equilibrium": post_tax_equilibrium,
                              **{p: _named(p, _underlying) for p in _NAMED}}
PROBLEMS["gaussian_valuations"] = {"mechanism": mechanism, "vcg": vcg, "expected_payoff": expected_payoff,
                                   **{p: _named(p, _underlying) for p in _NAMED}}
PROBLEMS["two_platforms"] = {"competition": competition}

DEFAULT_PROBLEM: dict = {**{kind: "equilibrium" for kind in LEAKAGE_KINDS},
                         "gaussian_taxes": "uniform_sweep", "gaussian_valuations": "mechanism",
                         "two_platforms": "competition"}
#: ``dm-opt solve`` flags each kind uses (the CLI refuses the others); every function takes ``progress``
CLI_OPTIONS: dict = {**{kind: ("method", "all_optima", "time_limit", "progress", "scheduler")
                        for kind in LEAKAGE_KINDS},
                     "gaussian_taxes": ("method", "time_limit", "progress"),
                     "gaussian_valuations": ("method", "time_limit", "progress"),
                     "two_platforms": ("time_limit", "progress")}

__all__ = ["PROBLEMS", "DEFAULT_PROBLEM", "CLI_OPTIONS", "LEAKAGE_KINDS", "LEAKAGE_PROBLEMS", "solve_objective",
           "uniform_sweep", "pigovian", "post_tax_equilibrium", "mechanism", "vcg", "expected_payoff", "competition"]
