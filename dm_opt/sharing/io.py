"""Instance kind ``sharing_network`` (RJ, *Data Sharing Markets*).

Table family (small N; every partner set of every agent must be given)::

    kind = "sharing_network"
    source = "RJ Remark 3.4"
    family = "table"
    agents = ["1", "2"]                 # agent names (the paper's labels)
    cost = 0.0                          # optional: scalar, [per sender] or [[c_i(j)]]
    [utility.1]                         # U_1(S): keys are partner sets, names joined by ","
    "" = 1.0                            # alone: S_1 = {1}
    "2" = 0.0                           # S_1 = {1, 2}
    [utility.2]
    "" = 0.0
    "1" = 10.0

Power family (value concave in samples received)::

    kind = "sharing_network"
    source = "..."
    family = "power"
    samples = [120, 80, 60]             # or {family = "uniform", n = 50, low = 10, high = 1000, seed = 1}
    alpha = 1.0                         # scalar, list or generator table
    beta = 0.5
    cost = 0.001                        # scalar, [per sender] or [[c_i(j)]]
    max_queries = 1                     # optional, §6 per-query extension
    query_samples = [...]               # optional, samples per query (default: samples)
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.generators import generate
from dm_opt.core.instances import check_keys
from dm_opt.core.jsonenc import json_number
from dm_opt.core.validate import as_real
from dm_opt.sharing.market import MAX_TABLE_AGENTS, SharingMarket

PROBLEMS = ("ordered_match", "check", "stability", "welfare", "prices", "vcg", "mixed_vcg", "d_mixed_vcg")
DEFAULT_PROBLEM = "welfare"   # defined for every instance (ordered_match refuses when Prop 3.1 fails)
#: ``dm-opt solve`` flags this kind uses (the CLI refuses the others)
CLI_OPTIONS = ("method", "time_limit")
#: Base quality ``w⁰`` used by ``--problem d_mixed_vcg`` (RJ eq. 32).
D_MIXED_BASE_QUALITY = 0.5

_COMMON = {"kind", "family", "source", "name", "description", "agents", "cost", "max_queries"}


def _names(data, n, where):
    names = data.get("agents")
    if names is None:
        if n is None:
            raise InstanceError("agents", "missing (list of agent names, e.g. [\"1\", \"2\", \"3\"])", where)
        return [str(k + 1) for k in range(n)]
    if not isinstance(names, list) or not all(isinstance(s, str) and s for s in names):
        raise InstanceError("agents", "must be a list of non-empty strings", where)
    if len(set(names)) != len(names):
        raise InstanceError("agents", "agent names must be distinct", where)
    if any("," in s for s in names):
        raise InstanceError("agents", "agent names may not contain ','", where)
    return names


def _vector(data, key, n, where, default=None):
    v = data.get(key, default)
    if isinstance(v, dict):
        return generate("values", v, key, where, n=n)
    return v            # (a scalar is broadcast by SharingMarket, which names it without an index)


def from_dict(data: dict, where: str | None = None) -> SharingMarket:
    family = data.get("family")
    if family not in ("table", "power"):
        raise InstanceError("family", f"must be \"table\" or \"power\", got {family!r}", where)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InstanceError("name", "must be a string", where)
    if family == "table":
        check_keys(data, {"kind", "family", "utility"}, _COMMON, where)
        names = _names(data, None, where)
        n = len(names)
        if n < 2 or n > MAX_TABLE_AGENTS:
            raise InstanceError("agents", f"table family needs 2..{MAX_TABLE_AGENTS} agents, got {n}", where)
        util = data["utility"]
        if not isinstance(util, dict):
            raise InstanceError("utility", "must be a table keyed by agent name", where)
        index = {s: k for k, s in enumerate(names)}
        for key in util:
            if key not in index:
                raise InstanceError(f"utility.{key}", f"unknown agent; agents are {', '.join(names)}", where)
        values = {}
        for k, s in enumerate(names):
            if s not in util:
                raise InstanceError(f"utility.{s}", "missing (every agent needs a utility table)", where)
            row = util[s]
            if not isinstance(row, dict):
                raise InstanceError(f"utility.{s}", "must be a table mapping partner sets to numbers", where)
            vals = {}
            for setkey, v in row.items():
                fld = f"utility.{s}.\"{setkey}\""
                parts = [p.strip() for p in setkey.split(",")] if setkey.strip() else []
                bad = [p for p in parts if p not in index or p == s]
                if bad:
                    raise InstanceError(fld, f"'{bad[0]}' is not another agent (agents: {', '.join(names)})", where)
                if len(set(parts)) != len(parts):
                    raise InstanceError(fld, "lists an agent twice", where)
                v = as_real(fld, v, where)
                fs = frozenset(index[p] for p in parts)
                if fs in vals:
                    raise InstanceError(fld, "the same partner set is given twice", where)
                vals[fs] = float(v)
            values[k] = vals
        for k, s in enumerate(names):
            others = [j for j in range(n) if j != k]
            for m in range(1 << len(others)):
                fs = frozenset(others[b] for b in range(len(others)) if (m >> b) & 1)
                if fs not in values[k]:
                    key = ",".join(names[j] for j in sorted(fs))
                    raise InstanceError(f"utility.{s}", f"missing value for partner set \"{key}\" "
                                        f"(give all {1 << len(others)} sets)", where)
        return SharingMarket.from_sets(n, values, cost=data.get("cost"), max_queries=data.get("max_queries"),
                                       names=names, name=name, source=data.get("source"), where=where)
    check_keys(data, {"kind", "family", "samples"}, _COMMON | {"alpha", "beta", "query_samples", "n"}, where)
    n = data.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise InstanceError("n", f"must be an integer >= 2, got {n!r}", where)
    samples = data["samples"]
    if isinstance(samples, dict):
        samples = generate("values", samples, "samples", where, n=n)
    if n is None and isinstance(samples, (list, np.ndarray)):
        n = len(samples)
    names = _names(data, n, where) if "agents" in data else None
    return SharingMarket.power(samples, alpha=_vector(data, "alpha", n, where, 1.0),
                               beta=_vector(data, "beta", n, where, 0.5),
                               cost=data.get("cost", 0.0), query_samples=_vector(data, "query_samples", n, where),
                               max_queries=data.get("max_queries"), names=names, name=name,
                               source=data.get("source"), where=where)


# --------------------------------------------------------------------- run
def _edges_named(market, edges):
    return [[market.names[int(i)], market.names[int(j)]] for i, j in edges]


def _check_dict(c):
    return {"property": c.property, "holds": c.holds, "method": c.method, "agent": c.agent,
            "pair": list(c.pair), "base_set": list(c.base_set), "added_set": list(c.added_set),
            "message": c.message}


def _num(x):
    """JSON-safe float: "inf"/"-inf"/"nan" if not finite (:func:`dm_opt.core.jsonenc.json_number`)."""

    return json_number(x)


def _status_line(status, bound_text: str = "", message: str = "") -> str:
    line = f"status {status}" + (f"   {bound_text}" if bound_text else "")
    return line + (f"\n{message}" if message else "")


def run(market: SharingMarket, problem: str, options: dict):
    """Solve for ``dm-opt solve``; returns ``(json_dict, text)``.

    ``options["time_limit"]`` (seconds) is one deadline for the whole problem
    (welfare, pivots, prices, checks); when it expires, or on Ctrl-C, the partial
    result is returned with its proven bound and status ``time_limit`` /
    ``interrupted`` (the CLI exits 130 for the latter).  Where no partial answer
    exists (ordered match) a time limit raises ``LimitExceeded`` and Ctrl-C
    propagates.
    """
    from dm_opt.core.result import Termination
    from dm_opt.sharing import bilateral as B
    from dm_opt.sharing import mechanisms as M
    from dm_opt.sharing import welfare as W

    method = options.get("method", "auto") or "auto"
    time_limit = W.check_time_limit(options.get("time_limit"), "--time-limit")
    deadline = W.make_deadline(time_limit)
    title = f"{market.name or 'sharing network'}: {problem}  (N = {market.n}, family = {market.family})"
    lines = [title]
    if market.source:
        lines.append(f"source: {market.source}")
    out: dict = {"problem": problem, "kind": market.kind, "family": market.family, "n": market.n,
                 "agents": list(market.names), "time_limit": time_limit}
    if method not in W.METHODS:
        from dm_opt.core.errors import ProblemError
        raise ProblemError(f"--method: unknown method {method!r} for kind sharing_network; "
                           f"choose one of {', '.join(W.METHODS)}")
    if problem == "check":
        checks = [B.check_top_agent(market), ]
        status, message = "optimal", ""
        if W.expired(deadline):
            status, message = "time_limit", "time limit reached before the limited complementarity check"
            checks.append(B.PropertyCheck("limited_complementarity", None, checks[0].order, "none",
                                          message="not checked: time limit reached"))
        else:
            checks.append(B.check_limited_complementarity(market, checks[0].order))
        out.update(status=status, method="check", checks=[_check_dict(c) for c in checks],
                   order=list(checks[0].order), message=message)
        for c in checks:
            lines.append(f"{c.property}: {c.holds} ({c.method}) {c.message}")
        lines.append(_status_line(status, message=message))
        return out, "\n".join(lines)
    if problem == "ordered_match":
        r = B.ordered_match(market, deadline=deadline)
        out.update(status="optimal", method="ordered_match", edges=r.edges.tolist(),
                   edges_named=_edges_named(market, r.edges), order=r.order.tolist(),
                   oracle_calls=r.oracle_calls, assumptions_hold=r.assumptions_hold,
                   checks=[_check_dict(c) for c in r.checks], seconds=r.seconds)
        lines.append(f"order: {' > '.join(market.names[int(k)] for k in r.order[:30])}"
                     f"{' ...' if market.n > 30 else ''}")
        lines.append(f"{len(r.edges)} edges, {r.oracle_calls} oracle calls, {r.seconds:.3f}s")
        for i, j in r.edges[:100]:
            lines.append(f"  {market.names[int(i)]} -- {market.names[int(j)]}")
        return out, "\n".join(lines)
    if problem == "stability":
        if market.n <= B.MAX_OUTCOME_AGENTS:
            r = B.stable_outcomes(market, deadline=deadline)
            out.update(status=str(r.status), method="enumerate", stable_graphs=[g.tolist() for g in r.graphs],
                       graphs_checked=r.graphs_checked, graphs_total=r.graphs_total, complete=r.graphs_checked
                       == r.graphs_total, message=r.message, seconds=r.seconds)
            if r.graphs_checked == r.graphs_total:
                lines.append(f"{len(r.graphs)} stable outcome(s) among {r.graphs_checked} graphs")
            else:
                lines.append(f"{len(r.graphs)} stable outcome(s) among the first {r.graphs_checked} of "
                             f"{r.graphs_total} graphs (incomplete)")
            for g in r.graphs:
                lines.append("  {" + ", ".join(f"{market.names[i]}-{market.names[j]}" for i, j in g) + "}")
            lines.append(_status_line(r.status, message=r.message))
            return out, "\n".join(lines)
        r = B.ordered_match_stability(market, deadline=deadline)   # undecided if stopped during ordered match
        out.update(status=str(r.status), method="ordered_match+exhaustive_check", edges=r.edges.tolist(),
                   stable=r.stable, coalition=list(r.coalition),
                   deviation=None if r.deviation is None else r.deviation.tolist(),
                   coalitions_examined=r.coalitions_examined, coalitions_total=r.coalitions_total,
                   message=r.message, seconds=r.seconds)
        verdict = {True: "stable", False: "NOT stable", None: "UNDECIDED"}[r.stable]
        lines.append(f"ordered-match graph is {verdict} "
                     f"({r.coalitions_examined} of {r.coalitions_total} coalitions examined)")
        lines.append(_status_line(r.status, message=r.message))
        return out, "\n".join(lines)
    if problem in ("welfare", "prices"):
        r = W.welfare_max(market, method, deadline=deadline)
        out.update(status=str(r.status), method=r.method, objective=r.welfare, bound=_num(r.bound),
                   gap=_num(r.gap), share=r.share.tolist(), buyer_values=r.buyer_values.tolist(),
                   buyer_bounds=[_num(x) for x in r.buyer_bounds], unsolved=list(r.unsolved),
                   message=r.message, seconds=r.seconds)
        lines.append(f"welfare {r.welfare:.10g}   bound {r.bound:.10g}   gap {r.gap:.3g}   "
                     f"status {r.status}   method {r.method}   time {r.seconds:.3f}s")
        if r.message:
            lines.append(r.message)
        for i in range(market.n):
            got = [f"{market.names[j]}" + (f"x{r.share[j, i]}" if r.share[j, i] > 1 else "")
                   for j in np.flatnonzero(r.share[:, i])]
            lines.append(f"  {market.names[i]:>6} receives from {{{', '.join(got)}}}"
                         + ("   (not solved exactly)" if i in r.unsolved else ""))
        if problem == "prices":
            if r.status is Termination.INTERRUPTED:
                lines.append("prices not computed: interrupted")
                return out, "\n".join(lines)
            p = W.competitive_prices(market, r, deadline=deadline)
            pmax = [[_num(x) for x in row] for row in p.price_max]
            out.update(status=str(p.status), prices=p.prices.tolist(), payments=p.payments.tolist(),
                       price_max=pmax, demand_ok=p.demand_ok, demand_method=p.demand_method,
                       utilities=p.utilities.tolist(), message="; ".join(x for x in (r.message, p.message) if x))
            lines.append(f"competitive prices c_j(i) (Prop 4.1); demand reproduces the graph: "
                         f"{'undecided' if p.demand_ok is None else p.demand_ok} (checked with {p.demand_method})")
            for i in range(market.n):
                for j in np.flatnonzero(r.share[:, i]):
                    lines.append(f"  {market.names[j]} -> {market.names[i]}: price {p.prices[j, i]:.6g}, "
                                 f"range [{p.prices[j, i]:.6g}, {p.price_max[j, i]:.6g}] (Prop 4.2)")
            lines.append(_status_line(p.status, message=p.message))
        return out, "\n".join(lines)
    # mechanisms
    base = D_MIXED_BASE_QUALITY if problem == "d_mixed_vcg" else 1.0
    r = M.mixed_vcg(market, method=method, mechanism=problem, base_quality=base, deadline=deadline)
    out.update(status=str(r.status), method=method, mechanism=r.mechanism, base_quality=r.base_quality,
               share=r.share.tolist(), clarke=r.clarke.tolist(), clarke_bound=r.clarke_bound.tolist(),
               pivot_welfare=r.pivot_welfare.tolist(), pivot_bound=r.pivot_bound.tolist(), delta=r.delta,
               data_payment=r.data_payment.tolist(), payment=r.payment.tolist(), quality=r.quality.tolist(),
               values=r.values.tolist(), sw_total=r.sw_total, sw_agents=r.sw_agents,
               vcg_sw_total=r.vcg_sw_total, vcg_sw_agents=r.vcg_sw_agents,
               unreachable=list(r.unreachable), objective=r.sw_total, welfare=r.vcg_sw_total,
               bound=_num(r.welfare_bound), gap=_num(r.gap), message=r.message, seconds=r.seconds)
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
    return out, "\n".join(lines)


__all__ = ["from_dict", "run", "PROBLEMS", "DEFAULT_PROBLEM"]
