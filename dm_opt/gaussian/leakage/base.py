"""The leakage-oracle protocol (AMMO §5.1) and the market methods every oracle shares.

A *leakage oracle market* is any object with

* ``n`` — number of users;
* ``values`` — values of privacy ``v_i ≥ 0``, shape (n,);
* ``leakage(a)`` — leaked information ``I_i(a)`` for a 0/1 profile ``a``, shape (n,);
* ``own_leakage(a)`` — ``I_i(a) − I_i(a_{−i}, 0)`` for sharers, 0 for non-sharers, shape (n,).

:class:`~dm_opt.gaussian.market.GaussianMarket` satisfies it (mean squared
error, §2.2); so do :class:`~dm_opt.gaussian.leakage.mutual_information.MutualInformationMarket`,
:class:`~dm_opt.gaussian.leakage.tabulated.TabulatedMarket` and
:class:`~dm_opt.gaussian.leakage.mixture.MixtureMarket`.  Every problem of the paper is a
:class:`~dm_opt.gaussian.objectives.LeakageObjective`

    f(a) = Σ_i c_i I_i(a) + Σ_{i∈A} (d_i I_i(a) − e_i own_i(a) − k_i)

(for the Gaussian MSE oracle ``own_i = g_i(P_ii)``), so the same objective
table (first best, equilibrium, de-correlated, weighted) applies to any
oracle.  The derivations of Prop 1, Thm 1/2, Lemma 5 and Thm 6 use only
Properties 1–4 (Appendix A, "Proof of Generalization of Lemma 3 under
Properties 1–4"), which :func:`dm_opt.gaussian.leakage.properties.check_properties`
verifies for a given oracle.

:class:`OracleMarketMixin` adds to the shared market methods
(:class:`~dm_opt.gaussian.base.LeakageMarketMethods`: ``evaluate``, ``prices``,
``surplus``, ``decorrelated_*``, ``objective``) what an oracle needs besides:
``sigma2`` as the largest leakage, and the block evaluation
:meth:`OracleMarketMixin.leakage_block` used by exhaustive enumeration
(subclasses override it with a compiled walk where they can).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from dm_opt.gaussian.base import LeakageMarketMethods, evaluate_objective, objective_values

# evaluate_objective and objective_values are re-exported (used by the generic enumeration)
__all__ = ["LeakageOracle", "OracleMarketMixin", "LeakageMarketMethods", "evaluate_objective",
           "objective_values", "is_leakage_market", "masks_to_profiles", "missing_market_methods",
           "SOLVE_METHODS"]


@runtime_checkable
class LeakageOracle(Protocol):
    """What a solver may assume about a market (see the module docstring)."""

    @property
    def n(self) -> int: ...

    @property
    def values(self) -> np.ndarray: ...

    def leakage(self, profile) -> np.ndarray: ...

    def own_leakage(self, profile) -> np.ndarray: ...


def is_leakage_market(obj) -> bool:
    """True when ``obj`` has ``n``, ``values``, ``leakage`` and ``own_leakage`` (the protocol)."""
    return all(hasattr(obj, name) for name in ("n", "values", "leakage", "own_leakage"))


def masks_to_profiles(lo: int, count: int, n: int) -> np.ndarray:
    """Profiles of the masks ``lo, …, lo + count − 1`` (bit ``i`` ↔ user ``i``), shape (count, n), int8."""
    masks = np.arange(lo, lo + count, dtype=np.int64)
    return ((masks[:, None] >> np.arange(n, dtype=np.int64)[None, :]) & 1).astype(np.int8)


class OracleMarketMixin(LeakageMarketMethods):
    """Market methods for any leakage oracle (see :class:`~dm_opt.gaussian.base.LeakageMarketMethods`).

    Subclasses set ``self._values`` (validated, read-only), ``self.name`` and
    ``self.source`` and implement ``n``, ``leakage`` and ``own_leakage``.
    """

    kind = "leakage_oracle"

    @property
    def sigma2(self) -> np.ndarray:
        """Largest possible leakage per user, ``I_i(1, …, 1)`` (Property 3: monotone), shape (n,).

        Named like :attr:`GaussianMarket.sigma2` (where it is ``σ_i²``) because tie
        tolerances and objective scales are computed from it.
        """
        cached = getattr(self, "_max_leakage", None)
        if cached is None:
            cached = np.abs(np.asarray(self.leakage(np.ones(self.n, dtype=np.int8)), dtype=float))
            cached.setflags(write=False)
            self._max_leakage = cached
        return cached

    def leakage_block(self, lo: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Leakage and own-leakage for masks ``lo … lo+count−1``, each of shape (count, n).

        Default: one oracle call per profile.  Subclasses override it with a
        compiled walk (Gaussian-based oracles) or a table lookup.
        """
        profiles = masks_to_profiles(lo, count, self.n)
        leak = np.empty((count, self.n))
        own = np.empty((count, self.n))
        for r in range(count):
            leak[r], own[r] = self.leakage_and_own(profiles[r])
        return leak, own


#: What :func:`dm_opt.solve` uses of a market besides the protocol (provided by :class:`OracleMarketMixin`).
SOLVE_METHODS = ("n", "values", "leakage", "own_leakage", "sigma2", "objective", "evaluate", "prices",
                 "surplus", "decorrelated_leakage", "decorrelated_surplus")


def missing_market_methods(obj) -> list[str]:
    """Names :func:`dm_opt.solve` needs that ``obj`` lacks (empty list: solvable)."""
    return [name for name in SOLVE_METHODS if not hasattr(obj, name)]
