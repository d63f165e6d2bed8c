"""Leakage oracles behind one small protocol (AMMO §2.2, §5.1, §5.3).

* :class:`~dm_opt.gaussian.market.GaussianMarket` — mean squared error (the baseline);
* :class:`MutualInformationMarket` — ``I(X_i; S_A)`` (§5.1, Appendix A);
* :class:`TabulatedMarket` — any user-supplied set functions (small n);
* :class:`MixtureMarket` — μ-expected leakage for an unknown ``Σ`` (§5.3, Thm 5);
* :class:`LiteralDecorrelatedMarket` — the literal de-correlation ``S̃ = Σ⁻¹S`` (§6.2; Lemma 5 is idealised);
* :func:`check_properties` — Properties 1–4 of §5.1.
"""

from dm_opt.gaussian.leakage.base import (
    LeakageOracle,
    OracleMarketMixin,
    evaluate_objective,
    is_leakage_market,
)
from dm_opt.gaussian.leakage.decorrelation import LiteralDecorrelatedMarket
from dm_opt.gaussian.leakage.mixture import MixtureMarket
from dm_opt.gaussian.leakage.mutual_information import MutualInformationMarket
from dm_opt.gaussian.leakage.properties import PropertyReport, PropertyViolation, check_properties
from dm_opt.gaussian.leakage.tabulated import TabulatedMarket

__all__ = [
    "LeakageOracle", "OracleMarketMixin", "evaluate_objective", "is_leakage_market", "LiteralDecorrelatedMarket",
    "MixtureMarket",
    "MutualInformationMarket", "TabulatedMarket", "check_properties", "PropertyReport", "PropertyViolation",
]
