"""Instance kind ``gaussian_market`` (AMMO).

    kind = "gaussian_market"
    source = "AMMO Example 1"
    name = "example1"                         # optional
    cov = [[1.0, 0.5], [0.5, 1.0]]            # or a generator table:
    # cov = {family = "wishart", n = 30, seed = 1}
    values = [1.0, 1.0]                       # or a scalar, or {family = "uniform", low = 0, high = 2, seed = 2}
    noise_var = 1.0                           # optional, scalar or list (default 1)
"""

from __future__ import annotations

import numbers

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.generators import generate
from dm_opt.core.instances import check_keys
from dm_opt.core.validate import as_array, as_covariance, precheck_noise_ratio
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.objectives import PROBLEMS

DEFAULT_PROBLEM = "equilibrium"


def from_dict(data: dict, where: str | None = None) -> GaussianMarket:
    check_keys(data, {"kind", "cov", "values"}, {"source", "name", "noise_var", "description"}, where)
    cov = data["cov"]
    if isinstance(cov, dict):
        cov = generate("cov", cov, "cov", where)
    elif isinstance(cov, list):     # parsed once here (the checks below and the market reuse the array)
        cov = as_array("cov", cov, ndim=2, where=where, max_abs=None)
    n = len(cov) if isinstance(cov, (list, np.ndarray)) else None
    values = data["values"]
    if isinstance(values, dict):
        if not n:   # the number of users comes from cov: name cov (not values.n) when it has none
            as_covariance("cov", cov, where=where)
        values = generate("values", values, "values", where, n=n)
    elif isinstance(values, numbers.Real) and not isinstance(values, bool) and n is not None:
        values = [values] * n
    noise = data.get("noise_var")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InstanceError("name", "must be a string", where)
    precheck_noise_ratio(cov, noise, where)
    return GaussianMarket(cov, values, noise, name=name, source=data.get("source"), where=where)


def solve_for_cli(market, problem: str, options: dict):
    """``dm_opt.solve`` with the ``dm-opt solve`` options (shared by the Gaussian-type kinds)."""
    from dm_opt.gaussian.api import solve

    return solve(market, problem, options.get("method", "auto"),
                 all_optima=options.get("all_optima", False),
                 time_limit=options.get("time_limit"),
                 progress=options.get("progress", False))


def run(market: GaussianMarket, problem: str, options: dict):
    """Solve for ``dm-opt solve``; returns ``(json_dict, text_table)``."""
    res = solve_for_cli(market, problem, options)
    return res.to_dict(), format_result(market, res)


def result_header(title: str, detail: str, market, res) -> list[str]:
    """Title, source, objective/bound/gap line and message of a result table."""
    lines = [f"{title}: {res.problem}  ({detail}, method = {res.method}, status = {res.status})"]
    if market.source:
        lines.append(f"source: {market.source}")
    lines.append(f"objective {res.objective:.10g}   bound {res.bound:.10g}   gap {res.gap:.3g}   "
                 f"surplus {res.surplus:.10g}   time {res.seconds:.3f}s")
    if res.message:
        lines.append(res.message)
    return lines


def optima_lines(res, limit: int = 50, width: int | None = None) -> list[str]:
    """The tie set of a result, at most ``limit`` profiles of at most ``width`` users each."""
    if res.optima is None:
        return []
    lines = ["", f"{len(res.optima)} optimal profile(s) (ties within {res.tie_tol:.2g}):"]
    for o in res.optima[:limit]:
        shown = o if width is None else o[:width]
        lines.append("  " + "".join(str(int(x)) for x in shown) + ("…" if shown.size < o.size else ""))
    if len(res.optima) > limit:
        lines.append(f"  ... and {len(res.optima) - limit} more (use --json for all)")
    return lines


def format_result(market: GaussianMarket, res) -> str:
    lines = result_header(market.name or "gaussian market", f"n = {market.n}", market, res)
    if res.profile.size:
        lines.append("")
        lines.append(f"{'user':>5} {'v':>9} {'shares':>6} {'leakage':>12} {'price':>12}")
        for i in range(market.n):
            lines.append(f"{i:>5} {market.values[i]:>9.4g} {int(res.profile[i]):>6} "
                         f"{res.leakage[i]:>12.6g} {res.prices[i]:>12.6g}")
    return "\n".join(lines + optima_lines(res))


__all__ = ["from_dict", "run", "PROBLEMS", "DEFAULT_PROBLEM"]
