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

from dm_opt.core.errors import InstanceError, ProblemError
from dm_opt.core.instances import check_keys
from dm_opt.core.validate import describe
from dm_opt.gaussian.io import market as _gaussian
from dm_opt.gaussian.valuations import ValuationMarket
from dm_opt.gaussian.valuations.distributions import DiscreteValuation

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
                raise InstanceError(key, f"must be an integer >= {lo}, got {describe(x)}", where)
    if data.get("samples", 0) * market.n > MAX_SAMPLE_ENTRIES:     # the draws are held as a samples × n array
        raise InstanceError("samples", f"{data['samples']} draws of {market.n} values exceed the limit of "
                            f"{MAX_SAMPLE_ENTRIES:.0e} sampled values (samples × n)", where)
    vm.samples = int(data.get("samples", 1000))
    vm.seed = int(data.get("seed", 0))
    return vm


def _valuation_table(dist, field: str) -> dict:
    """The ``{dist = ...}`` table that rebuilds ``dist`` exactly: a discrete table with its ``probs``
    as given (the distribution renormalises them, and renormalising is not idempotent), a uniform
    or truncated exponential with the parameters it was built from (``spec``; its scipy ``loc`` and
    ``scale`` do not give back ``high`` or ``upper`` exactly)."""
    if isinstance(dist, DiscreteValuation):
        return {"dist": "discrete", "values": dist.values.tolist(), "probs": dist.probs_given.tolist()}
    spec = getattr(dist, "spec", None)
    if spec is None:
        raise ProblemError(f"cannot save {field} = {dist.describe()}: instance files hold uniform, truncexpon and "
                           f"discrete valuations only (build it with dm_opt.gaussian.valuations.distributions."
                           f"uniform / truncated_exponential / discrete, or a {{dist = ...}} table)")
    return dict(spec)


def to_dict(market: ValuationMarket) -> dict:
    """The instance table of ``market`` (:func:`dm_opt.save`), the inverse of :func:`from_dict`.

    ``cov``, ``values`` (the reported values), ``noise_var`` as the Gaussian market's own ``to_dict``
    writes them; ``valuations`` as one table when every user has the same distribution object (as
    loading a single table gives), else one table per user; ``samples`` and ``seed`` when they differ
    from the defaults.  Raises :class:`ProblemError` for a distribution no instance file describes.
    """
    d = _gaussian.nested_dict("gaussian_valuations", market, market.market)
    vals = market.valuations
    if all(v is vals[0] for v in vals):
        d["valuations"] = _valuation_table(vals[0], "valuations")
    else:
        d["valuations"] = [_valuation_table(v, f"valuations[{i}]") for i, v in enumerate(vals)]
    for key in ("samples", "seed"):
        if getattr(market, key) != getattr(ValuationMarket, key):
            d[key] = int(getattr(market, key))
    return d


__all__ = ["from_dict", "to_dict"]
