"""Instance kind ``gaussian_valuations`` (AMMO §5.2, Appendix B: unknown valuations).

    kind = "gaussian_valuations"
    source = "AMMO §5.2 / Thm B-2 ..."
    cov = [[1.0, 0.5], [0.5, 1.0]]            # or a generator table, as for gaussian_market
    values = [0.3, 0.8]                       # reported (= true) values; must lie in the supports
    noise_var = 1.0                           # optional
    valuations = {dist = "uniform", low = 0.0, high = 1.5}    # one table for everybody, or a list:
    # valuations = [{dist = "truncexpon", scale = 0.5, upper = 2.0},
    #               {dist = "discrete", values = [0.2, 1.1], probs = [0.5, 0.5]}]
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
from dm_opt.gaussian.valuations import ValuationMarket

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


__all__ = ["from_dict"]
