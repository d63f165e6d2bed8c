"""Instance kind ``info_design`` (GLP, SPEC §2).

Slides' payoffs::

    kind = "info_design"
    source = "GLP slides, two-type example"
    name = "two_type"                 # optional
    types = [1.0, 2.0]                # or {family = "grid", n = 50, low = 1, high = 50}
    prior = [0.4, 0.6]                # or {family = "dirichlet", seed = 3, alpha = 1.0}
    reservation = 0.5
    gamma_u = 1.0
    gamma_pi = 0.0
    fees = [1.0, 2.0]                 # optional, default = types
    database = [0.4, 0.4]             # optional: q for --problem platform (default q = prior)

General payoffs (GLP "generalizations"): replace ``gamma_u``/``gamma_pi``/``fees``
by ``u``, ``pi``, ``v`` matrices indexed ``[a][ω]`` (``types``/``fees`` optional labels).

Problems: ``platform`` (P_q at ``database``: V, mechanism, ∂V intervals, W),
``efficiency`` (W°, q°, x°), ``equilibrium`` (all competitive equilibria),
``union``, ``taxes``, ``complete`` (the three remedies).
"""

from __future__ import annotations

import numbers

import numpy as np

from dm_opt.core.errors import InstanceError, ProblemError
from dm_opt.core.instances import check_keys
from dm_opt.core.jsonenc import json_number
from dm_opt.core.result import Termination
from dm_opt.core.validate import MAX_ABS, as_real
from dm_opt.info_design.market import _MONEY, _WHY, MAX_MONEY, InfoDesignMarket

_MONEY_RANGE = {"what": _MONEY, "why": _WHY}

PROBLEMS = ("platform", "efficiency", "equilibrium", "union", "taxes", "complete")
DEFAULT_PROBLEM = "efficiency"

#: Largest generated |Ω| accepted from a file.
MAX_TYPES = 100_000


def _int(field, x, where, lo=None, hi=None) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise InstanceError(field, f"expected an integer, got {type(x).__name__} {x!r}"[:100], where)
    x = int(x)
    if lo is not None and x < lo or hi is not None and x > hi:
        raise InstanceError(field, f"must be in [{lo}, {hi}], got {x}", where)
    return x


def _num(field, x, where, max_abs=MAX_ABS) -> float:
    return as_real(field, x, where, max_abs=max_abs, **({} if max_abs == MAX_ABS else _MONEY_RANGE))


def _types(spec, where):
    if not isinstance(spec, dict):
        return spec
    check_keys(spec, {"family", "n"}, {"low", "high"}, where, "types.")
    if spec["family"] != "grid":
        raise InstanceError("types.family", f"unknown family {spec['family']!r}; use \"grid\"", where)
    n = _int("types.n", spec["n"], where, 1, MAX_TYPES)
    low = _num("types.low", spec.get("low", 1.0), where, MAX_MONEY)
    high = _num("types.high", spec.get("high", float(n)), where, MAX_MONEY)
    if n > 1 and not high > low:
        raise InstanceError("types.high", f"must exceed types.low = {low}, got {high}", where)
    return np.linspace(low, high, n)


def _prior(spec, n, where):
    if not isinstance(spec, dict):
        return spec
    fam = spec.get("family")
    if fam == "uniform":
        check_keys(spec, {"family"}, set(), where, "prior.")
        return np.full(n, 1.0 / n)
    if fam == "dirichlet":
        check_keys(spec, {"family", "seed"}, {"alpha"}, where, "prior.")
        seed = _int("prior.seed", spec["seed"], where, 0)
        alpha = _num("prior.alpha", spec.get("alpha", 1.0), where)
        if alpha <= 0:
            raise InstanceError("prior.alpha", f"must be > 0, got {alpha}", where)
        p = np.random.default_rng(seed).dirichlet(np.full(n, alpha))
        return p / p.sum()
    raise InstanceError("prior.family", f"unknown family {fam!r}; use \"uniform\" or \"dirichlet\"", where)


def from_dict(data: dict, where: str | None = None) -> InfoDesignMarket:
    general = any(k in data for k in ("u", "pi", "v"))
    common = {"source", "name", "description", "database"}
    if general:
        check_keys(data, {"kind", "u", "pi", "v", "prior", "reservation"}, common | {"types", "fees"}, where)
    else:
        check_keys(data, {"kind", "types", "prior", "reservation", "gamma_u", "gamma_pi"}, common | {"fees"}, where)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InstanceError("name", "must be a string", where)
    if general:
        u = data["u"]
        n = len(u[0]) if isinstance(u, list) and u and isinstance(u[0], list) else None
        market = InfoDesignMarket.from_payoffs(
            u, data["pi"], data["v"], _prior(data["prior"], n, where) if n else data["prior"],
            data["reservation"], types=_types(data.get("types"), where) if "types" in data else None,
            fees=data.get("fees"), name=name, source=data.get("source"), where=where)
    else:
        types = _types(data["types"], where)
        n = len(types) if isinstance(types, (list, np.ndarray)) else None
        prior = _prior(data["prior"], n, where) if n else data["prior"]
        market = InfoDesignMarket(types, prior, data["reservation"], data["gamma_u"], data["gamma_pi"],
                                  data.get("fees"), name=name, source=data.get("source"), where=where)
    if "database" in data:
        from dm_opt.core.validate import as_vector, check_nonnegative

        q = as_vector("database", data["database"], market.n, where=where)
        check_nonnegative("database", q, where)
        if np.any(q > 1.0):     # masses of a unit population (q <= prior); larger ones swamp the LPs' precision
            i = int(np.argmax(q > 1.0))
            raise InstanceError(f"database[{i}]", f"= {q[i]:.6g}: a database is a mass of consumers, each entry "
                                f"must lie in [0, 1] (q <= prior)", where)
        market.database_q = q
    return market


def _check_options(problem: str, options: dict) -> str:
    method = options.get("method", "auto") or "auto"
    if problem == "efficiency":
        if method not in ("auto", "bbm", "pieces", "milp"):
            raise ProblemError(f"--method {method!r} does not apply to info_design efficiency; "
                               f"use auto, bbm, pieces or milp")
    elif problem == "platform":
        if method not in ("auto", "bbm", "lp"):
            raise ProblemError(f"--method {method!r} does not apply to info_design platform; use auto, bbm or lp")
    elif problem == "union":
        if method not in ("auto", "bbm", "pieces"):
            raise ProblemError(f"--method {method!r} does not apply to info_design union; use auto, bbm or pieces")
    elif method != "auto":
        raise ProblemError(f"--method {method!r} does not apply to info_design problem '{problem}' "
                           f"(only --problem and --json are used)")
    if options.get("all_optima"):
        raise ProblemError("--all-optima does not apply to info_design (ties are listed in the output)")
    return method


def _l(a):
    a = np.asarray(a, float)
    return [[_f(v) for v in row] for row in a] if a.ndim == 2 else [_f(v) for v in a]


def _f(v):
    """JSON-safe number: non-finite as "inf"/"-inf"/"nan" (:func:`dm_opt.core.jsonenc.json_number`)."""

    return json_number(v)


def run(market: InfoDesignMarket, problem: str, options: dict):
    """Solve for ``dm-opt solve``; returns ``(json_dict, text)``."""
    import time

    from dm_opt.core.limits import Deadline
    from dm_opt.info_design import lp

    method = _check_options(problem, options)
    dl = Deadline(options.get("time_limit"), field="--time-limit")
    t0 = time.perf_counter()
    head = [market.describe()] + ([f"source: {market.source}"] if market.source else [])
    out: dict = {"kind": "info_design", "problem": problem, "status": "optimal", "n_types": market.n,
                 "n_fees": market.m}
    if problem == "platform":
        q = getattr(market, "database_q", None)
        q = market.prior if q is None else q
        pm = lp._platform_method(market, method)
        intervals = pm == "bbm" or market.n <= 50
        # one LP solve: W(q)'s face is defined by this solution's duals; w is None when not computed
        sol, w = lp.platform_report(market, q, method=pm, intervals=intervals, time_limit=dl)
        stopped = w is None
        out.update(status=str(sol.status), message=sol.message, bound=sol.bound, gap=sol.gap, method=pm, q=_l(q),
                   value=sol.value,
                   welfare=None if w is None else w.value, x=_l(sol.x), supergradient=_l(sol.supergradient),
                   lower=None if sol.lower is None else _l(sol.lower),
                   upper=None if sol.upper is None else _l(sol.upper),
                   consumer_utility=_l(sol.consumer_utility))
        vline = (f"V(q) = {sol.value:.10g}   W(q) = {w.value:.10g}" if not stopped else
                 f"{sol.status}: best V(q) found {sol.value:.10g}, bound {sol.bound:.10g} (gap {sol.gap:.2e}); "
                 f"{sol.message}")
        if not stopped and sol.message:
            vline += f"\n{sol.status}: {sol.message}"
        lines = head + [f"P_q ({pm}) at q = {np.round(q, 6).tolist()}", vline,
                        f"{'ω':>8} {'q':>10} {'λ':>10} {'λ min':>10} {'λ max':>10} {'U':>8}"]
        for i in range(market.n):
            lo = sol.lower[i] if sol.lower is not None else np.nan
            hi = sol.upper[i] if sol.upper is not None else np.nan
            lines.append(f"{market.types[i]:>8.4g} {q[i]:>10.4g} {sol.supergradient[i]:>10.4g} {lo:>10.4g} "
                         f"{hi:>10.4g} {sol.consumer_utility[i]:>8.4g}")
    elif problem == "efficiency":
        r = lp.constrained_efficiency(market, method=method, time_limit=dl)
        out.update(status=str(r.status), method=r.method, welfare=r.welfare, bound=r.bound, gap=r.gap,
                   q=_l(r.q), x=_l(r.x), platform_value=r.platform_value,
                   consumer_utility=_l(r.consumer_utility), pieces=_l(r.pieces),
                   optimal_pieces=list(r.optimal_pieces), message=r.message)
        lines = head + [f"constrained efficiency ({r.method}, {r.status}): W° = {r.welfare:.10g}",
                        f"q° = {np.round(r.q, 8).tolist()}", f"V(q°) = {r.platform_value:.10g}",
                        f"U(ω, x°) = {np.round(r.consumer_utility, 8).tolist()}", r.message]
    elif problem == "equilibrium":
        r = lp.equilibria(market, time_limit=dl)
        fams = [{"pattern": [lp._PATTERN_NAMES[s] for s in p.pattern], "active_pieces": list(p.active),
                 "kind": p.kind, "q": _l(p.q), "zeta": _l(p.zeta), "price": _l(p.price), "x": _l(p.x),
                 "welfare": p.welfare, "welfare_min": p.welfare_min, "welfare_max": p.welfare_max,
                 "efficient": p.efficient, "all_efficient": p.all_efficient,
                 "kkt": p.kkt} for p in r.pieces]
        out.update(efficient_welfare=r.efficient_welfare, complete=r.complete, families=fams,
                   undecided=[{"pattern": list(u[0]), "active_pieces": list(u[1])} for u in r.undecided])
        if r.status is not Termination.OPTIMAL:
            out["status"] = str(r.status)
            out["message"] = r.message
        elif not r.complete:
            out["status"] = "incomplete"
        lines = head + [f"W° = {r.efficient_welfare:.10g}; {len(r.pieces)} equilibrium famil"
                        f"{'y' if len(r.pieces) == 1 else 'ies'}" + ("" if r.complete else
                                                                    f" ({len(r.undecided)} combinations undecided)")]
        for p in r.pieces:
            lines.append(f"  sells {[lp._PATTERN_NAMES[s] for s in p.pattern]}  q = {np.round(p.q, 6).tolist()}  "
                         f"p = {np.round(p.price, 6).tolist()}  welfare ∈ [{p.welfare_min:.6g}, {p.welfare_max:.6g}]  "
                         f"{'efficient' if p.all_efficient else ('partly efficient' if p.welfare_max >= r.efficient_welfare - 1e-7 else 'inefficient')}")
    elif problem == "union":
        r = lp.data_union(market, time_limit=dl, method=method)
        out.update(status=str(r.status), message=r.message, bound=r.bound, gap=r.gap, value=r.value, welfare=r.welfare, q=_l(r.q), x=_l(r.x), prices=_l(r.prices),
                   platform_value=r.platform_value)
        lines = head + [f"data union ({r.status}): members' welfare {r.value:.10g}, welfare − r̄ = {r.welfare:.10g}"
                        + ("" if r.status is Termination.OPTIMAL else f"; bound {r.bound:.10g} (gap {r.gap:.2e})"),
                        f"q = {np.round(r.q, 8).tolist()}", f"payments p = {np.round(r.prices, 8).tolist()}"]
    elif problem == "taxes":
        r = lp.data_taxes(market, time_limit=dl)
        out.update(status=str(r.status), message=r.message, taxes=_l(r.taxes), prices=_l(r.prices), q=_l(r.q), x=_l(r.x), zeta=_l(r.zeta),
                   revenue=r.revenue, no_deficit=r.no_deficit, welfare=r.welfare,
                   efficient_welfare=r.efficient_welfare, is_equilibrium=r.is_equilibrium, checks=dict(r.checks))
        lines = head + [f"data taxes ({r.status}) τ* = {np.round(r.taxes, 8).tolist()}", f"prices p* = {np.round(r.prices, 8).tolist()}",
                        f"q° = {np.round(r.q, 8).tolist()}", f"revenue {r.revenue:.10g} (no deficit: {r.no_deficit}); "
                        f"welfare {r.welfare:.10g} vs W° {r.efficient_welfare:.10g}; equilibrium checks {dict(r.checks)}"]
    else:  # complete
        r = lp.complete_markets(market, time_limit=dl)
        out.update(prices=_l(r.prices), y=_l(r.y), q=_l(r.q), x=_l(r.x), welfare=r.welfare,
                   platform_profit=r.platform_profit, is_equilibrium=r.is_equilibrium, checks=dict(r.checks))
        lines = head + [f"complete markets: welfare {r.welfare:.10g}, platform profit {r.platform_profit:.3g}",
                        f"q = {np.round(r.q, 8).tolist()}", f"equilibrium checks {dict(r.checks)}"]
    out["seconds"] = time.perf_counter() - t0
    return out, "\n".join(lines)


__all__ = ["from_dict", "run", "PROBLEMS", "DEFAULT_PROBLEM"]
