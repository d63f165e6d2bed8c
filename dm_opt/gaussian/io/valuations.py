"""Instance kind ``gaussian_valuations`` (AMMO §5.2, Appendix B: unknown valuations).

    kind = "gaussian_valuations"
    source = "AMMO §5.2 / Thm B-2 ..."
    cov = [[1.0, 0.5], [0.5, 1.0]]            # or a generator table, as for gaussian_market
    values = [0.3, 0.8]                       # reported (= true) values; must lie in the supports
    noise_var = 1.0                           # optional
    valuations = {dist = "uniform", low = 0.0, high = 1.5}    # one table for everybody, or a list:
    # valuations = [{dist = "truncexpon", scale = 0.5, upper = 2.0}, {dist = "discrete", values = [0.2, 1.1], probs = [0.5, 0.5]}]
    samples = 1000                            # optional: Monte Carlo draws for the expected payoff
    seed = 0                                  # optional: their seed

Problems: ``mechanism`` (Thm B-2 allocation and exact payments at the reported
values), ``vcg`` (Prop B-1), ``expected_payoff`` (Thm B-2: exact for discrete
tables, Monte Carlo with a 95% CI otherwise), and the three problems of
``gaussian_market`` at the reported values.

``--time-limit S`` bounds all the solves of a problem together; the output then
carries ``status`` (``optimal``, ``time_limit``, ``interrupted`` after Ctrl-C —
``dm-opt`` exits 130 for the latter) and, when stopped, what is proven: payments
of some users with intervals for the others, VCG prices with intervals, a partial
exact expectation with a proven interval or a smaller Monte Carlo sample.
"""

from __future__ import annotations

import numbers

from dm_opt.core.errors import InstanceError
from dm_opt.core.instances import check_keys
from dm_opt.gaussian.io import market as _gaussian
from dm_opt.gaussian.parametric import Deadline
from dm_opt.gaussian.valuations import ValuationMarket, expected_platform_payoff, mechanism, vcg

PROBLEMS = ("mechanism", "vcg", "expected_payoff", "first_best", "equilibrium", "decorrelated")
DEFAULT_PROBLEM = "mechanism"
#: ``dm-opt solve`` flags this kind uses (the CLI refuses the others)
CLI_OPTIONS = ("method", "time_limit")

_BASE = {"kind", "cov", "values", "source", "name", "noise_var", "description"}
#: Largest samples × n held by the Monte Carlo expected payoff (80 MB of draws).
MAX_SAMPLE_ENTRIES = 10**7


def from_dict(data: dict, where: str | None = None) -> ValuationMarket:
    check_keys(data, {"kind", "cov", "values", "valuations"},
               {"source", "name", "noise_var", "description", "samples", "seed"}, where)
    base = {k: v for k, v in data.items() if k in _BASE}
    base["kind"] = "gaussian_market"
    market = _gaussian.from_dict(base, where)
    vals = data["valuations"]
    if not isinstance(vals, (dict, list)):
        raise InstanceError("valuations", "must be a table {dist = ...} or a list of tables, one per user", where)
    if isinstance(vals, list) and not all(isinstance(x, dict) for x in vals):
        raise InstanceError("valuations", "every entry must be a table {dist = ...}", where)
    vm = ValuationMarket(market, vals, where=where)
    for key, lo in (("samples", 2), ("seed", 0)):
        if key in data:
            x = data[key]
            if not (isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= lo):
                raise InstanceError(key, f"must be an integer >= {lo}, got {x!r}"[:120], where)
    if data.get("samples", 0) * market.n > MAX_SAMPLE_ENTRIES:     # the draws are held as a samples × n array
        raise InstanceError("samples", f"{data['samples']} draws of {market.n} values exceed the limit of "
                            f"{MAX_SAMPLE_ENTRIES:.0e} sampled values (samples × n)", where)
    vm.samples = int(data.get("samples", 1000))
    vm.seed = int(data.get("seed", 0))
    return vm


def _fmt(x: float, spec: str = ".6g") -> str:
    return "-" if x != x else format(x, spec)          # NaN = not computed


def _status_lines(status, message: str) -> list[str]:
    if str(status) == "optimal":
        return []
    return [f"status: {status} -- PARTIAL RESULT, not optimal ({message})"]


def run(vm: ValuationMarket, problem: str, options: dict):
    method = options.get("method", "auto")
    if problem in ("first_best", "equilibrium", "decorrelated"):
        return _gaussian.run(vm.market, problem, options)
    time_limit = Deadline(options.get("time_limit"), field="--time-limit")
    if problem == "mechanism":
        out = mechanism(vm, method=method, time_limit=time_limit)
        d = out.to_dict()
        lines = [f"{vm.name or 'gaussian market'}: optimal mechanism with unknown valuations (Thm B-2), n = {vm.n}"
                 f"   (status = {out.status})"]
        if vm.source:
            lines.append(f"source: {vm.source}")
        lines += _status_lines(out.status, out.message)
        pp = (f"{out.platform_payoff:.10g}" if out.complete else
              f"in [{out.platform_payoff_bounds[0]:.10g}, {out.platform_payoff_bounds[1]:.10g}]")
        lines.append(f"virtual objective {out.virtual_objective:.10g}   platform payoff {pp}"
                     f"   surplus {out.surplus:.10g}")
        lines.append(f"{'user':>5} {'v':>9} {'Phi(v)':>9} {'shares':>6} {'A_i':>12} {'payment':>12} {'rent':>12}"
                     + ("" if out.complete else "   payment bounds"))
        for i in range(vm.n):
            row = (f"{i:>5} {out.reported[i]:>9.4g} {out.virtual_values[i]:>9.4g} {int(out.profile[i]):>6} "
                   f"{out.allocation[i]:>12.6g} {_fmt(out.payments[i]):>12} {_fmt(out.rents[i]):>12}")
            if not out.payments_exact[i]:
                lo, hi = out.payment_bounds[i]
                row += f"   [{lo:.8g}, {hi:.8g}]"
            lines.append(row)
        for s in out.steps:
            if s is not None:
                lines.append(f"user {s.user}: A_i(x) steps at x = {', '.join(f'{e:.10g}' for e in s.edges)}"
                             + ("" if s.complete else " (last intervals unresolved: bounds only)"))
        return d, "\n".join(lines)
    if problem == "vcg":
        out = vcg(vm.market, method=method, time_limit=time_limit)
        lines = [f"{vm.name or 'gaussian market'}: VCG pricing (Prop B-1), first-best profile "
                 f"{''.join(str(int(x)) for x in out.profile)}, surplus {out.surplus:.10g}   (status = {out.status})"]
        lines += _status_lines(out.status, out.message)
        lines.append(f"{'user':>5} {'v':>9} {'price':>12}" + ("" if out.complete else "   price bounds"))
        for i in range(vm.n):
            row = f"{i:>5} {out.reported[i]:>9.4g} {_fmt(out.prices[i]):>12}"
            if out.prices[i] != out.prices[i]:
                row += f"   [{out.price_bounds[i][0]:.8g}, {out.price_bounds[i][1]:.8g}]"
            lines.append(row)
        return out.to_dict(), "\n".join(lines)
    if problem == "expected_payoff":
        e = expected_platform_payoff(vm, samples=vm.samples, seed=vm.seed, method=method, time_limit=time_limit)
        if e.method == "exact" and str(e.status) != "optimal":
            text = (f"expected platform payoff (Thm B-2, exact, {e.samples} of {e.requested} report vectors summed): "
                    f"proven in [{e.lower:.10g}, {e.upper:.10g}]   (status = {e.status})")
        else:
            text = (f"expected platform payoff (Thm B-2, {e.method}, {e.samples} report vectors): {e.mean:.10g}"
                    + (f"  95% CI [{e.ci_low:.6g}, {e.ci_high:.6g}] (seed {e.seed})" if e.method == "monte_carlo"
                       else "") + f"   (status = {e.status})")
        text = "\n".join([text] + _status_lines(e.status, e.message))
        return e.to_dict(), text
    raise InstanceError("problem", f"unknown problem {problem!r}")


__all__ = ["from_dict", "run", "PROBLEMS", "DEFAULT_PROBLEM"]
