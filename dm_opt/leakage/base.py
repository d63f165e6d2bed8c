"""The leakage-oracle protocol (AMMO §5.1) and the market methods every oracle shares.

A *leakage oracle market* is any object with

* ``n`` — number of users;
* ``values`` — values of privacy ``v_i ≥ 0``, shape (n,);
* ``leakage(a)`` — leaked information ``I_i(a)`` for a 0/1 profile ``a``, shape (n,);
* ``own_leakage(a)`` — ``I_i(a) − I_i(a_{−i}, 0)`` for sharers, 0 for non-sharers, shape (n,).

:class:`~dm_opt.markets.gaussian.GaussianMarket` satisfies it (mean squared
error, §2.2); so do :class:`~dm_opt.leakage.mutual_information.MutualInformationMarket`,
:class:`~dm_opt.leakage.tabulated.TabulatedMarket` and
:class:`~dm_opt.leakage.mixture.MixtureMarket`.  Every problem of the paper is a
:class:`~dm_opt.markets.objectives.LeakageObjective`

    f(a) = Σ_i c_i I_i(a) + Σ_{i∈A} (d_i I_i(a) − e_i own_i(a) − k_i)

(for the Gaussian MSE oracle ``own_i = g_i(P_ii)``), so the same objective
table (first best, equilibrium, de-correlated, weighted) applies to any
oracle.  The derivations of Prop 1, Thm 1/2, Lemma 5 and Thm 6 use only
Properties 1–4 (Appendix A, "Proof of Generalization of Lemma 3 under
Properties 1–4"), which :func:`dm_opt.leakage.properties.check_properties`
verifies for a given oracle.

:class:`OracleMarketMixin` supplies, from ``leakage``/``own_leakage`` alone,
the methods :func:`dm_opt.solve` needs to finish a result (``evaluate``,
``prices``, ``surplus``, ``decorrelated_*``, ``objective``), plus the block
evaluation :meth:`OracleMarketMixin.leakage_block` used by exhaustive
enumeration (subclasses override it with a compiled walk where they can).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import InstanceError
from ..markets.objectives import LeakageObjective
from ..validate import as_profile, as_vector


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


def objective_values(objective: LeakageObjective, profiles: np.ndarray, leak: np.ndarray,
                     own: np.ndarray) -> np.ndarray:
    """``f(a)`` for a batch: profiles, leak, own of shape (m, n) → values (m,)."""
    a = profiles.astype(float)
    sharer = objective.d * leak - objective.e * own - objective.k
    return leak @ objective.c + np.einsum("mi,mi->m", a, sharer)


class OracleMarketMixin:
    """Market methods computed from ``leakage``/``own_leakage`` (any oracle).

    Subclasses set ``self._values`` (validated, read-only), ``self.name`` and
    ``self.source`` and implement ``n``, ``leakage`` and ``own_leakage``.
    """

    kind = "leakage_oracle"
    name: str | None = None
    source: str | None = None

    # ------------------------------------------------------------------ data
    @property
    def values(self) -> np.ndarray:
        return self._values

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

    def _profile(self, profile) -> np.ndarray:
        return as_profile("profile", profile, self.n)

    # -------------------------------------------------------------- leakage
    def leakage_and_own(self, profile) -> tuple[np.ndarray, np.ndarray]:
        """``(I(a), own(a))`` in one call (subclasses share the work where they can)."""
        a = self._profile(profile)
        return np.asarray(self.leakage(a), float), np.asarray(self.own_leakage(a), float)

    def leakage_without(self, profile) -> np.ndarray:
        """``I_i(a_{−i}, 0)``: leakage about ``i`` from the others' data only."""
        leak, own = self.leakage_and_own(profile)
        return leak - own

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

    # ------------------------------------------------------- prices/payoffs
    def prices(self, profile, problem: str = "equilibrium") -> np.ndarray:
        """Least prices sustaining ``profile`` (Thm 2: ``v_i own_i(a)``; Thm 6: ``v_i I_i(a)`` for sharers)."""
        a = self._profile(profile)
        if problem == "equilibrium":
            return self.values * np.asarray(self.own_leakage(a), float)
        if problem == "decorrelated":
            return np.where(a == 1, self.values * np.asarray(self.leakage(a), float), 0.0)
        if problem == "first_best":
            return np.zeros(self.n)
        LeakageObjective.for_problem(problem, self.values)  # raises the uniform error
        raise AssertionError("unreachable")

    def surplus(self, profile) -> float:
        """Social surplus ``Σ (1 − v_i) I_i(a)`` (§3.1)."""
        return float(np.dot(1.0 - self.values, self.leakage(self._profile(profile))))

    def decorrelated_leakage(self, profile) -> np.ndarray:
        """``Ĩ_i(a)`` of Lemma 5: ``I_i(a)`` for sharers, 0 for non-sharers."""
        a = self._profile(profile)
        return np.where(a == 1, np.asarray(self.leakage(a), float), 0.0)

    def decorrelated_surplus(self, profile) -> float:
        """``Σ (1 − v_i) Ĩ_i(a)`` (Thm 6)."""
        return float(np.dot(1.0 - self.values, self.decorrelated_leakage(profile)))

    def platform_profit(self, profile, prices=None) -> float:
        """``U(a, p) = Σ_i I_i(a) − Σ_{i∈A} p_i`` (eq. 2); default prices of Thm 2."""
        a = self._profile(profile)
        p = self.prices(a) if prices is None else as_vector("prices", prices, self.n)
        return float(np.sum(self.leakage(a)) - np.dot(a, p))

    def user_payoffs(self, profile, prices=None) -> np.ndarray:
        """``u_i = a_i p_i − v_i I_i(a)``, shape (n,); default prices of Thm 2."""
        a = self._profile(profile)
        p = self.prices(a) if prices is None else as_vector("prices", prices, self.n)
        return a * p - self.values * np.asarray(self.leakage(a), float)

    # ------------------------------------------------------------ objectives
    def objective(self, problem: str) -> LeakageObjective:
        return LeakageObjective.for_problem(problem, self.values)

    def evaluate(self, objective: LeakageObjective | str, profile) -> float:
        """Exact value of ``objective`` at ``profile`` (fresh oracle call)."""
        return evaluate_objective(self, objective, profile)


def evaluate_objective(market, objective: LeakageObjective | str, profile) -> float:
    """``f(a) = Σ c I(a) + Σ_{i∈A}(d I(a) − e own(a) − k)`` from any protocol object."""
    if isinstance(objective, str):
        objective = LeakageObjective.for_problem(objective, np.asarray(market.values, float))
    if objective.n != market.n:
        raise InstanceError("objective", f"has {objective.n} weights for a market of {market.n} users")
    a = as_profile("profile", profile, market.n)
    if hasattr(market, "leakage_and_own"):
        leak, own = market.leakage_and_own(a)
    else:
        leak, own = market.leakage(a), market.own_leakage(a)
    leak = np.asarray(leak, float)
    own = np.asarray(own, float)
    return float(objective_values(objective, a[None, :], leak[None, :], own[None, :])[0])


#: What :func:`dm_opt.solve` uses of a market besides the protocol (provided by :class:`OracleMarketMixin`).
SOLVE_METHODS = ("n", "values", "leakage", "own_leakage", "sigma2", "objective", "evaluate", "prices",
                 "surplus", "decorrelated_leakage", "decorrelated_surplus")


def missing_market_methods(obj) -> list[str]:
    """Names :func:`dm_opt.solve` needs that ``obj`` lacks (empty list: solvable)."""
    return [name for name in SOLVE_METHODS if not hasattr(obj, name)]
