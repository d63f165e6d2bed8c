"""``dm-opt solve`` output for kind ``sharing_network`` (formatting only; nothing is solved here).

:func:`report` turns the result of a problem of :mod:`dm_opt.sharing.problems` into the
family's JSON fields (after the common schema ``kind, name, n, problem, method, status,
solution_status, objective, bound, gap, seconds`` written by :mod:`dm_opt.cli`) and the
text printed on the terminal.
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.jsonenc import json_number
from dm_opt.core.result import Termination
from dm_opt.sharing.bilateral import (
    AssumptionChecks,
    OrderedMatchResult,
    PropertyCheck,
    StabilityResult,
    StableOutcomes,
)
from dm_opt.sharing.market import SharingMarket
from dm_opt.sharing.mechanisms import MechanismResult
from dm_opt.sharing.prices import PriceResult
from dm_opt.sharing.queries import WeightedMatchResult
from dm_opt.sharing.welfare import WelfareResult


def _edges_named(market, edges):
    return [[market.names[int(i)], market.names[int(j)]] for i, j in edges]


def check_dict(c: PropertyCheck) -> dict:
    """JSON fields of one assumption check."""
    return {"property": c.property, "holds": c.holds, "method": c.method, "agent": c.agent,
            "pair": list(c.pair), "base_set": list(c.base_set), "added_set": list(c.added_set),
            "message": c.message}


def _status_line(status, bound_text: str = "", message: str = "") -> str:
    line = f"status {status}" + (f"   {bound_text}" if bound_text else "")
    return line + (f"\n{message}" if message else "")


def _check(market, r: AssumptionChecks, out, lines):
    out.update(method="check", checks=[check_dict(c) for c in r.checks], order=list(r.order), message=r.message)
    for c in r.checks:
        lines.append(f"{c.property}: {c.holds} ({c.method}) {c.message}")
    lines.append(_status_line(r.status, message=r.message))


def _ordered_match(market, r: OrderedMatchResult, out, lines):
    out.update(method="ordered_match", edges=r.edges.tolist(), edges_named=_edges_named(market, r.edges),
               order=r.order.tolist(), oracle_calls=r.oracle_calls, assumptions_hold=r.assumptions_hold,
               checks=[check_dict(c) for c in r.checks])
    lines.append(f"order: {' > '.join(market.names[int(k)] for k in r.order[:30])}"
                 f"{' ...' if market.n > 30 else ''}")
    lines.append(f"{len(r.edges)} edges, {r.oracle_calls} oracle calls, {r.seconds:.3f}s")
    for i, j in r.edges[:100]:
        lines.append(f"  {market.names[int(i)]} -- {market.names[int(j)]}")


def _weighted_match(market, r: WeightedMatchResult, out, lines):
    out.update(method="ordered_match_queries", edges=r.edges.tolist(), weights=r.weights.tolist(),
               edges_named=_edges_named(market, r.edges), order=r.order.tolist(), pairs=r.pairs,
               proposals=r.proposals, values=r.values.tolist(), assumptions_hold=r.assumptions_hold,
               checks=[check_dict(c) for c in r.checks])
    lines.append(f"order: {' > '.join(market.names[int(k)] for k in r.order[:30])}"
                 f"{' ...' if market.n > 30 else ''}")
    lines.append(f"{len(r.edges)} edges, {r.proposals} proposals in {r.pairs} swipes, Σ V = {r.objective:.10g}, "
                 f"{r.seconds:.3f}s")
    for (i, j), (x, y) in zip(r.edges[:100], r.weights[:100]):
        lines.append(f"  {market.names[int(i)]} -- {market.names[int(j)]}: {market.names[int(i)]} runs {x} "
                     f"quer{'y' if x == 1 else 'ies'} on {market.names[int(j)]}'s data, {market.names[int(j)]} "
                     f"runs {y} on {market.names[int(i)]}'s")


def _outcomes(market, r: StableOutcomes, out, lines):
    out.update(method="enumerate", stable_graphs=[g.tolist() for g in r.graphs], graphs_checked=r.graphs_checked,
               graphs_total=r.graphs_total, complete=r.graphs_checked == r.graphs_total, message=r.message)
    if r.graphs_checked == r.graphs_total:
        lines.append(f"{len(r.graphs)} stable outcome(s) among {r.graphs_checked} graphs")
    else:
        lines.append(f"{len(r.graphs)} stable outcome(s) among the first {r.graphs_checked} of "
                     f"{r.graphs_total} graphs (incomplete)")
    for g in r.graphs:
        lines.append("  {" + ", ".join(f"{market.names[i]}-{market.names[j]}" for i, j in g) + "}")
    lines.append(_status_line(r.status, message=r.message))


def _stability(market, r: StabilityResult, out, lines):
    out.update(method="ordered_match+exhaustive_check", edges=r.edges.tolist(), stable=r.stable,
               coalition=list(r.coalition), deviation=None if r.deviation is None else r.deviation.tolist(),
               coalitions_examined=r.coalitions_examined, coalitions_total=r.coalitions_total, message=r.message)
    verdict = {True: "stable", False: "NOT stable", None: "UNDECIDED"}[r.stable]
    lines.append(f"ordered-match graph is {verdict} "
                 f"({r.coalitions_examined} of {r.coalitions_total} coalitions examined)")
    lines.append(_status_line(r.status, message=r.message))


def _welfare(market, r: WelfareResult, out, lines):
    out.update(method=r.method, share=r.share.tolist(), buyer_values=r.buyer_values.tolist(),
               buyer_bounds=[json_number(x) for x in r.buyer_bounds], unsolved=list(r.unsolved),
               message=r.message)
    lines.append(f"welfare {r.welfare:.10g}   bound {r.bound:.10g}   gap {r.gap:.3g}   "
                 f"status {r.status}   method {r.method}   time {r.seconds:.3f}s")
    if r.message:
        lines.append(r.message)
    for i in range(market.n):
        got = [f"{market.names[j]}" + (f"x{r.share[j, i]}" if r.share[j, i] > 1 else "")
               for j in np.flatnonzero(r.share[:, i])]
        lines.append(f"  {market.names[i]:>6} receives from {{{', '.join(got)}}}"
                     + ("   (not solved exactly)" if i in r.unsolved else ""))


def _prices(market, p: PriceResult, out, lines):
    r = p.graph
    _welfare(market, r, out, lines)
    if r.status is Termination.INTERRUPTED:
        lines.append("prices not computed: interrupted")
        return
    pmax = [[json_number(x) for x in row] for row in p.price_max]
    out.update(prices=p.prices.tolist(), payments=p.payments.tolist(), price_max=pmax, demand_ok=p.demand_ok,
               demand_method=p.demand_method, utilities=p.utilities.tolist(),
               message="; ".join(x for x in (r.message, p.message) if x))
    lines.append(f"competitive prices c_j(i) (Prop 4.1); demand reproduces the graph: "
                 f"{'undecided' if p.demand_ok is None else p.demand_ok} (checked with {p.demand_method})")
    for i in range(market.n):
        for j in np.flatnonzero(r.share[:, i]):
            lines.append(f"  {market.names[j]} -> {market.names[i]}: price {p.prices[j, i]:.6g}, "
                         f"range [{p.prices[j, i]:.6g}, {p.price_max[j, i]:.6g}] (Prop 4.2)")
    lines.append(_status_line(p.status, message=p.message))


def _mechanism(market, r: MechanismResult, out, lines):
    out.update(method=r.buyer_method, mechanism=r.mechanism, base_quality=r.base_quality, share=r.share.tolist(),
               clarke=r.clarke.tolist(), clarke_bound=r.clarke_bound.tolist(),
               pivot_welfare=r.pivot_welfare.tolist(), pivot_bound=r.pivot_bound.tolist(), delta=r.delta,
               data_payment=r.data_payment.tolist(), payment=r.payment.tolist(), quality=r.quality.tolist(),
               values=r.values.tolist(), sw_total=r.sw_total, sw_agents=r.sw_agents,
               vcg_sw_total=r.vcg_sw_total, vcg_sw_agents=r.vcg_sw_agents, unreachable=list(r.unreachable),
               welfare=r.vcg_sw_total, message=r.message)
    lines.append(f"Δ = {r.delta:.6g}   SW^T = {r.sw_total:.6g}   SW^A = {r.sw_agents:.6g}   "
                 f"(VCG: SW^T = {r.vcg_sw_total:.6g}, SW^A = {r.vcg_sw_agents:.6g})   Σt = {r.payment.sum():.3g}")
    lines.append(_status_line(r.status, f"welfare of G* {r.vcg_sw_total:.10g}   bound {r.welfare_bound:.10g}   "
                              f"gap {r.gap:.3g}", r.message))
    if r.unreachable:
        lines.append("distortion target unreachable for agents " + ", ".join(market.names[i] for i in r.unreachable))
    exact = r.status is Termination.OPTIMAL
    lines.append(f"{'agent':>6} {'t~':>11} {'t^d':>11} {'t':>11} {'quality':>9}"
                 + ("" if exact else f" {'t~ bound':>11}"))
    for i in range(market.n):
        lines.append(f"{market.names[i]:>6} {r.clarke[i]:>11.5g} {r.data_payment[i]:>11.5g} "
                     f"{r.payment[i]:>11.5g} {r.quality[i]:>9.4g}"
                     + ("" if exact else f" {r.clarke_bound[i]:>11.5g}"))


_FORMATS = [(AssumptionChecks, _check), (OrderedMatchResult, _ordered_match), (WeightedMatchResult, _weighted_match),
            (StableOutcomes, _outcomes),
            (StabilityResult, _stability), (PriceResult, _prices), (WelfareResult, _welfare),
            (MechanismResult, _mechanism)]


def report(market: SharingMarket, problem: str, result) -> tuple[dict, str]:
    """``(family JSON fields, terminal text)`` of ``result``, the answer to ``problem`` on ``market``.

    The fields are those after the common ``--json`` schema: ``family`` (table / power),
    ``agents``, the result's own fields (``method`` is the algorithm actually used, e.g. the
    buyer method of a welfare problem) and ``message``."""
    title = f"{market.name or 'sharing network'}: {problem}  (N = {market.n}, family = {market.family})"
    lines = [title]
    if market.source:
        lines.append(f"source: {market.source}")
    out: dict = {"family": market.family, "agents": list(market.names),
                 "time_limit": getattr(result, "time_limit", None)}
    for cls, fmt in _FORMATS:
        if isinstance(result, cls):
            fmt(market, result, out, lines)
            break
    else:
        raise TypeError(f"no report for {type(result).__name__}")
    return out, "\n".join(lines)


__all__ = ["report", "check_dict"]
