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

from dm_opt.core.errors import InstanceError
from dm_opt.core.instances import check_keys
from dm_opt.gaussian.community import CommunityMarket
from dm_opt.gaussian.io.market import optima_lines, result_header, solve_for_cli
from dm_opt.gaussian.objectives import PROBLEMS

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
    res = solve_for_cli(market, problem, options)
    return res.to_dict(), format_result(market, res)


def format_result(market: CommunityMarket, res) -> str:
    lines = result_header(market.name or "community market", f"n = {market.n}, K = {market.K}", market, res)
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
    return "\n".join(lines + optima_lines(res, limit=20, width=200))


__all__ = ["from_dict", "run", "PROBLEMS", "DEFAULT_PROBLEM"]
