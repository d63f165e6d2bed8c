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

from dm_opt.core.errors import InstanceError
from dm_opt.core.instances import check_keys
from dm_opt.core.validate import as_real, as_vector
from dm_opt.gaussian.io import market as _gaussian
from dm_opt.gaussian.taxes import TaxedMarket

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


def to_dict(market: TaxedMarket) -> dict:
    """The instance table of ``market`` (:func:`dm_opt.save`), the inverse of :func:`from_dict`.

    ``cov``, ``values``, ``noise_var`` (and ``name``, ``source``) as the Gaussian market's own
    ``to_dict`` writes them; ``taxes`` (n,) or a scalar and ``t_max`` only when set.
    """
    d = _gaussian.to_dict(market.market)
    d["kind"] = "gaussian_taxes"
    if market.taxes is not None:      # an (n,) array as loaded, or what a caller gave (a list, a scalar)
        d["taxes"] = market.taxes.tolist() if hasattr(market.taxes, "tolist") else market.taxes
    if market.t_max is not None:
        d["t_max"] = float(market.t_max)
    return d


__all__ = ["from_dict", "to_dict"]
