"""The market with valuation distributions: a Gaussian market whose values are private (AMMO §5.2)."""

from __future__ import annotations

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.validate import as_vector
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.valuations.distributions import Valuation, as_valuation, check_assumption2


class ValuationMarket:
    """A Gaussian market whose values of privacy are private information (AMMO §5.2).

    Parameters
    ----------
    market : GaussianMarket
        ``Σ``, ``τ²``; its ``values`` are the *true/reported* values ``v`` used by
        default (e.g. in instance files).
    valuations : sequence of Valuation (or frozen scipy distributions / spec tables), length n
        The distributions ``F_i`` known to the platform.
    """

    kind = "gaussian_valuations"
    #: Monte Carlo draws and seed for the expected payoff (instance fields ``samples``, ``seed``).
    samples: int = 1000
    seed: int = 0

    def __init__(self, market: GaussianMarket, valuations, *, where: str | None = None, warn: bool = True):
        if not isinstance(market, GaussianMarket):
            raise InstanceError("market", f"expected a GaussianMarket, got {type(market).__name__}", where)
        single = isinstance(valuations, (Valuation, dict)) or hasattr(valuations, "dist")
        if single:   # one distribution for everybody: errors name "valuations", not "valuations[i]"
            valuations = [as_valuation(valuations, "valuations", where)] * market.n
        elif isinstance(valuations, (str, bytes)) or not hasattr(valuations, "__iter__"):
            raise InstanceError("valuations", f"expected a distribution or a list of {market.n} "
                                f"(one per user), got {type(valuations).__name__}", where)
        valuations = list(valuations)
        if len(valuations) != market.n:
            raise InstanceError("valuations", f"expected {market.n} distributions (one per user), "
                                f"got {len(valuations)}", where)
        self.market = market
        self.valuations = tuple(as_valuation(d, f"valuations[{i}]", where) for i, d in enumerate(valuations))
        for i, (d, v) in enumerate(zip(self.valuations, market.values, strict=True)):
            if not d.contains(float(v)):
                raise InstanceError(f"values[{i}]", f"{v} is outside the support of valuations[{i}] "
                                    f"({d.describe()})", where)
        self.assumption2_failures = tuple(check_assumption2(self.valuations, warn=warn))
        self.name = market.name
        self.source = market.source

    @property
    def n(self) -> int:
        return self.market.n

    def virtual_values(self, reported=None) -> np.ndarray:
        """``Φ_i(v_i)`` for the reported values (default: the market's values), shape (n,)."""
        v = self._reported(reported)
        return np.array([float(d.virtual_value(x)) for d, x in zip(self.valuations, v, strict=True)])

    def _reported(self, reported) -> np.ndarray:
        if reported is None:
            return np.asarray(self.market.values, dtype=float)
        v = as_vector("reported", reported, self.n, nonnegative=True)
        for i, (d, x) in enumerate(zip(self.valuations, v, strict=True)):
            if not d.contains(float(x)):
                raise InstanceError(f"reported[{i}]", f"{x} is outside the support ({d.describe()})")
        return v

    def __repr__(self):
        return f"<ValuationMarket n={self.n}>"


__all__ = ["ValuationMarket"]
