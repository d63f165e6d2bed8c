"""Market methods shared by every leakage market (AMMO §2–3, §6.2).

Everything the economics derives from the two primitive maps of a market —
``leakage(a)`` (``I_i(a)``) and ``own_leakage(a)`` (``I_i(a) − I_i(a_{−i}, 0)``
for sharers, 0 otherwise) — lives here once: least sustaining prices (Thm 2,
Thm 6), surplus (§3.1), de-correlated leakage (Lemma 5), payoffs (eq. 2) and the
exact value of any :class:`~dm_opt.gaussian.objectives.LeakageObjective`.
:class:`~dm_opt.gaussian.market.GaussianMarket`,
:class:`~dm_opt.gaussian.community.CommunityMarket` and the oracle markets of
:mod:`dm_opt.gaussian.leakage` inherit it and only say how they compute leakage
(``leakage_and_own`` computes both from one posterior where it can).
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.validate import as_profile, as_vector
from dm_opt.gaussian.objectives import LeakageObjective


def objective_values(objective: LeakageObjective, profiles: np.ndarray, leak: np.ndarray,
                     own: np.ndarray) -> np.ndarray:
    """``f(a)`` for a batch: profiles, leak, own of shape (m, n) → values (m,)."""
    a = profiles.astype(float)
    sharer = objective.d * leak - objective.e * own - objective.k
    return leak @ objective.c + np.einsum("mi,mi->m", a, sharer)


class LeakageMarketMethods:
    """Prices, surplus, payoffs and objective values from ``leakage``/``own_leakage``.

    Subclasses set ``self._values`` (validated, read-only) and implement ``n``,
    ``leakage`` and ``own_leakage``; they may override :meth:`leakage_and_own`
    to compute both in one pass.
    """

    name: str | None = None
    source: str | None = None

    @property
    def values(self) -> np.ndarray:
        """Values of privacy ``v_i``, shape (n,)."""
        return self._values

    def _profile(self, profile) -> np.ndarray:
        return as_profile("profile", profile, self.n)

    # -------------------------------------------------------------- leakage
    def leakage_and_own(self, profile) -> tuple[np.ndarray, np.ndarray]:
        """``(I(a), own(a))`` in one call (subclasses share the work where they can)."""
        a = self._profile(profile)
        return np.asarray(self.leakage(a), float), np.asarray(self.own_leakage(a), float)

    def leakage_without(self, profile) -> np.ndarray:
        """``I_i(a_{−i}, 0)``: leakage about ``i`` from the others' data only (the data externality)."""
        leak, own = self.leakage_and_own(profile)
        return leak - own

    # ------------------------------------------------------- prices/payoffs
    def prices(self, profile, problem: str = "equilibrium") -> np.ndarray:
        """Least prices sustaining ``profile`` as a user equilibrium, shape (n,).

        ``equilibrium``: ``p_i = v_i (I_i(a) − I_i(a_{−i},0))`` for sharers (Thm 2);
        ``decorrelated``: ``p_i = v_i I_i(a)`` for sharers (Thm 6);
        ``first_best``: zeros (the planner sets no prices).
        """
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
        """Social surplus ``Σ_i (1 − v_i) I_i(a)`` (§3.1); prices cancel."""
        return float(np.dot(1.0 - self.values, self.leakage(self._profile(profile))))

    def decorrelated_leakage(self, profile) -> np.ndarray:
        """``Ĩ_i(a)`` of Lemma 5: ``I_i(a)`` for sharers, 0 for non-sharers."""
        a = self._profile(profile)
        return np.where(a == 1, np.asarray(self.leakage(a), float), 0.0)

    def decorrelated_surplus(self, profile) -> float:
        """Social surplus after de-correlation ``Σ (1 − v_i) Ĩ_i(a)`` (Thm 6)."""
        return float(np.dot(1.0 - self.values, self.decorrelated_leakage(profile)))

    def platform_profit(self, profile, prices=None) -> float:
        """``U(a, p) = Σ_i I_i(a) − Σ_{i∈A} p_i`` (eq. 2); default prices of Thm 2."""
        a = self._profile(profile)
        p = self.prices(a) if prices is None else as_vector("prices", prices, self.n, max_abs=None)
        return float(np.sum(self.leakage(a)) - np.dot(a, p))

    def user_payoffs(self, profile, prices=None) -> np.ndarray:
        """``u_i = a_i p_i − v_i I_i(a)`` (§2.2), shape (n,); default prices of Thm 2."""
        a = self._profile(profile)
        p = self.prices(a) if prices is None else as_vector("prices", prices, self.n, max_abs=None)
        return a * p - self.values * np.asarray(self.leakage(a), float)

    # ------------------------------------------------------------ objectives
    def objective(self, problem: str) -> LeakageObjective:
        """The weighted-leakage objective of ``problem`` (see :mod:`.objectives`)."""
        return LeakageObjective.for_problem(problem, self.values)

    def evaluate(self, objective: LeakageObjective | str, profile) -> float:
        """Exact value of ``objective`` at ``profile`` (fresh leakage computation)."""
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
