"""``dm-opt solve`` output of the information-design (GLP) family: formatting only.

:func:`report` turns a result of :mod:`dm_opt.info_design.problems` into the family's JSON fields
and the text for the terminal; it never solves and never prints (the caller writes the text, and
handles the terminal's encoding: the text contains ``Ω``, ``r̄``, ``λ``, ``∂``).
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.jsonenc import jsonable
from dm_opt.core.result import Termination
from dm_opt.info_design.results import PATTERN_NAMES


def _head(market) -> list:
    return [market.describe()] + ([f"source: {market.source}"] if market.source else [])


def _platform(market, r):
    sol, w, q, pm = r.solution, r.welfare, np.asarray(r.q), r.method
    stopped = w is None
    out = dict(message=sol.message, bound=sol.bound, gap=sol.gap, method=pm, q=q, value=sol.value,
               welfare=None if w is None else w.value, x=sol.x, supergradient=sol.supergradient,
               lower=sol.lower, upper=sol.upper, consumer_utility=sol.consumer_utility)
    vline = (f"V(q) = {sol.value:.10g}   W(q) = {w.value:.10g}" if not stopped else
             f"{sol.status}: best V(q) found {sol.value:.10g}, bound {sol.bound:.10g} (gap {sol.gap:.2e}); "
             f"{sol.message}")
    if not stopped and sol.message:
        vline += f"\n{sol.status}: {sol.message}"
    lines = [f"P_q ({pm}) at q = {np.round(q, 6).tolist()}", vline,
             f"{'ω':>8} {'q':>10} {'λ':>10} {'λ min':>10} {'λ max':>10} {'U':>8}"]
    for i in range(market.n):
        lo = sol.lower[i] if sol.lower is not None else np.nan
        hi = sol.upper[i] if sol.upper is not None else np.nan
        lines.append(f"{market.types[i]:>8.4g} {q[i]:>10.4g} {sol.supergradient[i]:>10.4g} {lo:>10.4g} "
                     f"{hi:>10.4g} {sol.consumer_utility[i]:>8.4g}")
    return out, lines


def _efficiency(market, r):
    out = dict(method=r.method, welfare=r.welfare, bound=r.bound, gap=r.gap, q=r.q, x=r.x,
               platform_value=r.platform_value, consumer_utility=r.consumer_utility, pieces=r.pieces,
               optimal_pieces=list(r.optimal_pieces), message=r.message)
    lines = [f"constrained efficiency ({r.method}, {r.status}): W° = {r.welfare:.10g}",
             f"q° = {np.round(r.q, 8).tolist()}", f"V(q°) = {r.platform_value:.10g}",
             f"U(ω, x°) = {np.round(r.consumer_utility, 8).tolist()}", r.message]
    return out, lines


def _verdict(p, w0: float) -> str:
    if p.all_efficient:
        return "efficient"
    return "partly efficient" if p.welfare_max >= w0 - 1e-7 else "inefficient"


def _equilibrium(market, r):
    fams = [{"pattern": [PATTERN_NAMES[s] for s in p.pattern], "active_pieces": list(p.active),
             "kind": p.kind, "q": p.q, "zeta": p.zeta, "price": p.price, "x": p.x,
             "welfare": p.welfare, "welfare_min": p.welfare_min, "welfare_max": p.welfare_max,
             "efficient": p.efficient, "all_efficient": p.all_efficient, "kkt": p.kkt} for p in r.pieces]
    out = dict(efficient_welfare=r.efficient_welfare, complete=r.complete, families=fams,
               undecided=[{"pattern": list(u[0]), "active_pieces": list(u[1])} for u in r.undecided])
    if r.status is not Termination.OPTIMAL:
        out["message"] = r.message
    nf = len(r.pieces)
    lines = [f"W° = {r.efficient_welfare:.10g}; {nf} equilibrium famil{'y' if nf == 1 else 'ies'}"
             + ("" if r.complete else f" ({len(r.undecided)} combinations undecided)")]
    for p in r.pieces:
        lines.append(f"  sells {[PATTERN_NAMES[s] for s in p.pattern]}  q = {np.round(p.q, 6).tolist()}  "
                     f"p = {np.round(p.price, 6).tolist()}  welfare ∈ [{p.welfare_min:.6g}, {p.welfare_max:.6g}]  "
                     f"{_verdict(p, r.efficient_welfare)}")
    return out, lines


def _union(market, r):
    out = dict(message=r.message, bound=r.bound, gap=r.gap, value=r.value, welfare=r.welfare, q=r.q, x=r.x,
               prices=r.prices, platform_value=r.platform_value)
    lines = [f"data union ({r.status}): members' welfare {r.value:.10g}, welfare − r̄ = {r.welfare:.10g}"
             + ("" if r.status is Termination.OPTIMAL else f"; bound {r.bound:.10g} (gap {r.gap:.2e})"),
             f"q = {np.round(r.q, 8).tolist()}", f"payments p = {np.round(r.prices, 8).tolist()}"]
    return out, lines


def _taxes(market, r):
    out = dict(message=r.message, taxes=r.taxes, prices=r.prices, q=r.q, x=r.x, zeta=r.zeta, revenue=r.revenue,
               no_deficit=r.no_deficit, welfare=r.welfare, efficient_welfare=r.efficient_welfare,
               is_equilibrium=r.is_equilibrium, checks=dict(r.checks))
    lines = [f"data taxes ({r.status}) τ* = {np.round(r.taxes, 8).tolist()}",
             f"prices p* = {np.round(r.prices, 8).tolist()}", f"q° = {np.round(r.q, 8).tolist()}",
             f"revenue {r.revenue:.10g} (no deficit: {r.no_deficit}); welfare {r.welfare:.10g} vs "
             f"W° {r.efficient_welfare:.10g}; equilibrium checks {dict(r.checks)}"]
    return out, lines


def _complete(market, r):
    out = dict(prices=r.prices, y=r.y, q=r.q, x=r.x, welfare=r.welfare, platform_profit=r.platform_profit,
               is_equilibrium=r.is_equilibrium, checks=dict(r.checks))
    if r.message:
        out["message"] = r.message
    lines = [f"complete markets: welfare {r.welfare:.10g}, platform profit {r.platform_profit:.3g}",
             f"q = {np.round(r.q, 8).tolist()}", f"equilibrium checks {dict(r.checks)}"]
    return out, lines


_FORMATS = {"platform": _platform, "efficiency": _efficiency, "equilibrium": _equilibrium, "union": _union,
            "taxes": _taxes, "complete": _complete}


def report(market, problem: str, result) -> tuple[dict, str]:
    """``(fields, text)`` for ``dm-opt solve``: the family's JSON fields (``n_types``, ``n_fees`` and the
    problem's own; strict JSON through :func:`dm_opt.core.jsonenc.jsonable`, non-finite numbers as
    strings) and the lines for the terminal."""
    fields, lines = _FORMATS[problem](market, result)
    out = {"n_types": market.n, "n_fees": market.m, **fields}
    return jsonable(out), "\n".join(_head(market) + lines)


__all__ = ["report"]
