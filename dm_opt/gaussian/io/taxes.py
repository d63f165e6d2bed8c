"""Instance kind ``gaussian_taxes`` (AMMO §6.1: taxes on data transactions).

    kind = "gaussian_taxes"
    source = "AMMO §6.1 ..."
    cov = [[1.0, 0.9], [0.9, 1.0]]            # as for gaussian_market
    values = [1.2, 1.2]
    noise_var = 1.0                           # optional
    taxes = [0.0, 0.5]                        # optional: personalised taxes to evaluate (scalar = uniform)
    t_max = 5.0                               # optional: upper end of the uniform-tax sweep

Problems: ``uniform_sweep`` (exact piecewise surplus in a uniform tax and the
best uniform tax), ``pigovian`` (personalised taxes implementing the first
best, verified by solving the post-tax equilibrium), ``post_tax_equilibrium``
(at the file's ``taxes``), and the three problems of ``gaussian_market``.

``--time-limit S`` bounds all the solves of a problem together.  A stopped sweep
prints the pieces proven so far (``status`` ``time_limit``, or ``interrupted``
after Ctrl-C — ``dm-opt`` exits 130) and the range ``[0, covered]`` they tile;
``pigovian``/``post_tax_equilibrium`` are all-or-nothing (an error naming the
incumbent and its bound if the limit is hit).
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.instances import check_keys
from dm_opt.core.validate import as_real, as_vector
from dm_opt.gaussian.io import market as _gaussian
from dm_opt.gaussian.parametric import Deadline
from dm_opt.gaussian.taxes import TaxedMarket, pigovian_taxes, uniform_tax_sweep, verify_taxes

PROBLEMS = ("uniform_sweep", "pigovian", "post_tax_equilibrium", "first_best", "equilibrium", "decorrelated")
DEFAULT_PROBLEM = "uniform_sweep"
#: ``dm-opt solve`` flags this kind uses (the CLI refuses the others)
CLI_OPTIONS = ("method", "time_limit")

_BASE = {"kind", "cov", "values", "source", "name", "noise_var", "description"}


def from_dict(data: dict, where: str | None = None) -> TaxedMarket:
    check_keys(data, {"kind", "cov", "values"}, {"source", "name", "noise_var", "description", "taxes", "t_max"},
               where)
    base = {k: v for k, v in data.items() if k in _BASE}
    base["kind"] = "gaussian_market"
    market = _gaussian.from_dict(base, where)
    taxes = None
    if "taxes" in data:
        taxes = as_vector("taxes", data["taxes"], market.n, where=where, nonnegative=True)
    t_max = None
    if "t_max" in data:
        t_max = as_real("t_max", data["t_max"], where)
        if not t_max > 0:
            raise InstanceError("t_max", f"must be a positive finite number, got {t_max!r}", where)
    return TaxedMarket(market, taxes, t_max)


def _profile(a) -> str:
    return "".join(str(int(x)) for x in a)


def run(tm: TaxedMarket, problem: str, options: dict):
    m = tm.market
    deadline = Deadline(options.get("time_limit"), field="--time-limit")   # one budget for all solves
    method = options.get("method", "auto")
    if method == "auto":
        method = "enumerate"       # tie lists (all optima) need enumeration
    if problem in ("first_best", "equilibrium", "decorrelated"):
        return _gaussian.run(m, problem, options)
    head = f"{m.name or 'gaussian market'} (n = {m.n})" + (f"\nsource: {m.source}" if m.source else "")
    if problem == "uniform_sweep":
        sw = uniform_tax_sweep(m, t_max=tm.t_max, method=method, time_limit=deadline)
        lines = [head, f"uniform tax sweep on [0, {sw.t_max:.6g}] ({sw.solver_calls} solver calls; exact breakpoints)"
                 f"   (status = {sw.status})"]
        if not sw.complete:
            lines.append(f"status: {sw.status} -- PARTIAL RESULT, not optimal ({sw.message}); nothing is claimed "
                         f"for t in ({sw.covered:.10g}, {sw.t_max:.6g}]")
        lines.append(f"{'t from':>14} {'t to':>14} {'profile':>{max(8, m.n)}} {'sharers':>7} {'surplus':>14}")
        for p in sw.pieces:
            lines.append(f"{p.lo:>14.10g} {p.hi:>14.10g} {_profile(p.profile):>{max(8, m.n)}} {p.sharers:>7} "
                         f"{p.surplus:>14.8g}" + ("  (ties not checked)" if not p.ties_checked else
                                                 "" if p.surplus_min == p.surplus_max else
                                                 f"  (ties: surplus in [{p.surplus_min:.6g}, {p.surplus_max:.6g}])"))
        within = "" if sw.complete else f" within the swept [0, {sw.covered:.10g}]"
        lines.append(f"best uniform tax{within}: any t in [{sw.best.lo:.10g}, {sw.best.hi:.10g}] "
                     f"(e.g. {sw.best_tax:.6g}), surplus {sw.best.surplus:.8g}")
        if sw.shutdown_tax is not None:
            lines.append(f"the market shuts down (nobody shares) for t > {sw.shutdown_tax:.10g}")
        return sw.to_dict(), "\n".join(lines)
    if problem in ("pigovian", "post_tax_equilibrium"):
        if problem == "pigovian":
            taxes = pigovian_taxes(m, method=method, time_limit=deadline)
        else:
            if tm.taxes is None:
                raise InstanceError("taxes", "missing: post_tax_equilibrium needs taxes = [...] in the file")
            taxes = tm.taxes
        out = verify_taxes(m, taxes, method=method, time_limit=deadline)
        lines = [head, f"{problem}: taxes {np.array2string(out.taxes, precision=6)}",
                 f"post-tax equilibrium {_profile(out.profile)} ({len(out.optima)} optimum/optima), surplus "
                 f"{out.surplus:.10g} (range over optima [{out.surplus_min:.10g}, {out.surplus_max:.10g}])",
                 f"first best {_profile(out.first_best_profile)}, surplus {out.first_best_surplus:.10g}; "
                 f"implements the first best: {'yes' if out.implements_first_best else 'no'}",
                 f"tax revenue {out.tax_revenue:.6g}"]
        return {"status": "optimal", **out.to_dict()}, "\n".join(lines)
    raise InstanceError("problem", f"unknown problem {problem!r}")


__all__ = ["from_dict", "run", "PROBLEMS", "DEFAULT_PROBLEM"]
