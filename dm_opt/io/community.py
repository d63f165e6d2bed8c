"""Instance kind ``community_market`` (AMMO Example 2; SPEC §1.4).

    kind = "community_market"
    source = "AMMO Example 2 (Figure 3)"
    name = "example2"                       # optional
    sizes = [10, 10]                        # users per community (numbered community by community)
    variance = 1.0                          # scalar or one per community
    within_corr = 0.05                      # scalar or one per community
    cross_corr = 0.1                        # scalar (every pair) or a K×K matrix with unit diagonal
    noise_var = 1.0                         # optional, scalar or one per community (default 1)
    values = [0.9, ..., 3.0]                # one per user, or a per-community distribution:
    # values = {family = "constant", value = [0.9, 3.0]}
    # values = {family = "uniform", low = [0, 0.5], high = [2, 3], seed = 1}
    # values = {family = "lognormal", mean = [0, 0.2], sigma = 0.5, seed = 1}
"""

from __future__ import annotations

from ..errors import InstanceError
from ..markets.community import CommunityMarket
from ..markets.objectives import PROBLEMS
from . import check_keys

DEFAULT_PROBLEM = "equilibrium"
#: Per-user rows printed by the text table; larger markets are summarised per community.
MAX_ROWS = 60


def from_dict(data: dict, where: str | None = None) -> CommunityMarket:
    check_keys(data, {"kind", "sizes", "values"},
               {"source", "name", "description", "variance", "within_corr", "cross_corr", "noise_var"}, where)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InstanceError("name", "must be a string", where)
    sizes = data["sizes"]
    if not isinstance(sizes, list):
        raise InstanceError("sizes", "must be a list of community sizes, e.g. sizes = [10, 10]", where)
    return CommunityMarket(sizes, data.get("variance", 1.0), data.get("within_corr", 0.0),
                           data.get("cross_corr", 0.0), data["values"], data.get("noise_var", 1.0),
                           name=name, source=data.get("source"), where=where)


def run(market: CommunityMarket, problem: str, options: dict):
    """Solve for ``dm-opt solve``; returns ``(json_dict, text)``."""
    from ..api import solve

    res = solve(market, problem, options.get("method", "auto"),
                all_optima=options.get("all_optima", False),
                time_limit=options.get("time_limit"),
                progress=options.get("progress", False))
    return res.to_dict(), format_result(market, res)


def format_result(market: CommunityMarket, res) -> str:
    title = market.name or "community market"
    lines = [f"{title}: {res.problem}  (n = {market.n}, K = {market.K}, method = {res.method}, "
             f"status = {res.status})"]
    if market.source:
        lines.append(f"source: {market.source}")
    lines.append(f"objective {res.objective:.10g}   bound {res.bound:.10g}   gap {res.gap:.3g}   "
                 f"surplus {res.surplus:.10g}   time {res.seconds:.3f}s")
    if res.message:
        lines.append(res.message)
    if not res.profile.size:
        return "\n".join(lines)
    lines.append("")
    lines.append(f"{'community':>9} {'size':>8} {'sharers':>8} {'max v sharing':>14} {'min v not':>10} "
                 f"{'leak sharer':>12} {'leak other':>12} {'price':>10}")
    a, v, c = res.profile, market.values, market.community
    for k in range(market.K):
        idx = c == k
        sh, no = idx & (a == 1), idx & (a == 0)
        lines.append(
            f"{k:>9} {int(idx.sum()):>8} {int(sh.sum()):>8} "
            f"{(f'{v[sh].max():.4g}' if sh.any() else '-'):>14} {(f'{v[no].min():.4g}' if no.any() else '-'):>10} "
            f"{(f'{res.leakage[sh][0]:.6g}' if sh.any() else '-'):>12} "
            f"{(f'{res.leakage[no][0]:.6g}' if no.any() else '-'):>12} "
            f"{(f'{res.prices[sh].mean():.4g}' if sh.any() else '-'):>10}")
    if market.n <= MAX_ROWS:
        lines.append("")
        lines.append(f"{'user':>5} {'comm':>4} {'v':>9} {'shares':>6} {'leakage':>12} {'price':>12}")
        for i in range(market.n):
            lines.append(f"{i:>5} {int(c[i]):>4} {v[i]:>9.4g} {int(a[i]):>6} {res.leakage[i]:>12.6g} "
                         f"{res.prices[i]:>12.6g}")
    if res.optima is not None:
        lines.append("")
        lines.append(f"{len(res.optima)} optimal profile(s) (ties within {res.tie_tol:.2g}):")
        for o in res.optima[:20]:
            lines.append("  " + "".join(str(int(x)) for x in o[:200]) + ("…" if o.size > 200 else ""))
        if len(res.optima) > 20:
            lines.append(f"  ... and {len(res.optima) - 20} more (use --json for all)")
    return "\n".join(lines)


__all__ = ["from_dict", "run", "PROBLEMS", "DEFAULT_PROBLEM"]
