"""The Gaussian data market of Acemoglu, Makhdoumi, Malekian & Ozdaglar (AMMO).

Users ``i = 1..n`` have types ``X ~ N(0, Σ)`` and signals ``S_i = X_i + Z_i``
with ``Z_i ~ N(0, τ_i²)`` (the paper: ``τ_i² = 1``).  For a sharing profile
``a ∈ {0,1}^n`` the platform's posterior covariance of ``X`` given ``S_A`` is

    P(a) = (Σ⁻¹ + T diag(a))⁻¹ = Σ − Σ_{:A} (Σ_AA + diag τ²_A)⁻¹ Σ_{A:},   T = diag(1/τ²)

(the two forms are equal by Woodbury; we evaluate the right-hand one by a
solve with the ``|A|×|A|`` signal covariance, which is well conditioned — its
eigenvalues are at least ``min τ²`` — and never form ``Σ⁻¹``).  Leakage is ``I_i(a) = σ_i² − P_ii(a)`` (§2.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InstanceError, LimitExceeded
from ..validate import as_covariance, as_profile, as_vector
from .objectives import LeakageObjective

#: Tolerance deciding a user's indifference between sharing and not (user equilibria).
INDIFFERENCE_TOL = 1e-10


@dataclass(frozen=True)
class UserEquilibria:
    """The complete lattice ``𝒜(p)`` of user equilibria at prices ``p`` (Lemma 2).

    ``least`` and ``greatest`` come from monotone best-response iteration from
    the all-0 and all-1 profiles (Tarski); ``all`` lists every user equilibrium
    (by enumeration, ``n ≤ 16``) or is ``None`` when not requested.
    """

    least: np.ndarray
    greatest: np.ndarray
    all: tuple | None = None


class GaussianMarket:
    """A Gaussian data market (AMMO §2).

    Parameters
    ----------
    cov : array (n, n)
        Covariance ``Σ`` of the users' types; symmetric positive definite.
    values : array (n,)
        Values of privacy ``v_i ≥ 0``.
    noise_var : array (n,) or float, optional
        Noise variances ``τ_i² > 0`` of the signals ``S_i = X_i + Z_i``; default 1.
    name, source : str, optional
        Labels carried into results and reports (``source`` names the paper/example).

    Raises
    ------
    InstanceError
        Naming the field (``cov``, ``values[i]``, ``noise_var[i]``) and the problem.
    """

    kind = "gaussian_market"

    def __init__(self, cov, values, noise_var=None, *, name: str | None = None,
                 source: str | None = None, where: str | None = None):
        cov, chol = as_covariance("cov", cov, where=where)
        n = cov.shape[0]
        values = as_vector("values", values, n, where=where, nonnegative=True)
        if noise_var is None:
            noise_var = np.ones(n)
        noise_var = as_vector("noise_var", noise_var, n, where=where, positive=True)
        for arr in (values, noise_var):
            arr.setflags(write=False)
        self._cov = cov
        self._chol = chol
        self._values = values
        self._noise_var = noise_var
        self._sigma2 = np.diag(cov).copy()
        self._sigma2.setflags(write=False)
        self.name = name
        self.source = source

    # ------------------------------------------------------------------ data
    @property
    def n(self) -> int:
        return self._cov.shape[0]

    @property
    def cov(self) -> np.ndarray:
        return self._cov

    @property
    def values(self) -> np.ndarray:
        return self._values

    @property
    def noise_var(self) -> np.ndarray:
        return self._noise_var

    @property
    def sigma2(self) -> np.ndarray:
        """Prior variances ``σ_i² = Σ_ii`` (the largest possible leakage)."""
        return self._sigma2

    def with_values(self, values) -> "GaussianMarket":
        """The same market with other values of privacy (e.g. virtual values)."""
        return GaussianMarket(self._cov, values, self._noise_var, name=self.name, source=self.source)

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<GaussianMarket{label} n={self.n}>"

    # ------------------------------------------------------------ posterior
    def _profile(self, profile) -> np.ndarray:
        return as_profile("profile", profile, self.n)

    def posterior_cov(self, profile) -> np.ndarray:
        """Posterior covariance ``P(a)`` of ``X`` given ``S_A``, shape (n, n)."""
        a = self._profile(profile)
        return self._posterior(np.flatnonzero(a), full=True)

    def _posterior(self, shared: np.ndarray, full: bool):
        """Posterior covariance (``full``) or its diagonal, for sharing set ``shared``."""
        if shared.size == 0:
            return self._cov.copy() if full else self._sigma2.copy()
        C = self._cov[np.ix_(shared, shared)] + np.diag(self._noise_var[shared])
        B = self._cov[shared, :]
        # C is SPD with eigenvalues >= min τ², so a direct solve is well conditioned.  (numpy's
        # LAPACK, not scipy.linalg.solve_triangular: the latter is 10-1000x slower on the small
        # matrices met here, with scipy's bundled threaded OpenBLAS.)
        X = np.linalg.solve(C, B)
        if full:
            P = self._cov - B.T @ X
            return 0.5 * (P + P.T)
        return self._sigma2 - np.einsum("ki,ki->i", B, X)

    def posterior_var(self, profile) -> np.ndarray:
        """``diag P(a)``: the platform's mean squared error per user, shape (n,)."""
        a = self._profile(profile)
        return self._posterior(np.flatnonzero(a), full=False)

    # -------------------------------------------------------------- leakage
    def leakage(self, profile) -> np.ndarray:
        """Leaked information ``I_i(a) = σ_i² − P_ii(a)`` (§2.2), shape (n,)."""
        return self._sigma2 - self.posterior_var(profile)

    def own_leakage(self, profile) -> np.ndarray:
        """``I_i(a) − I_i(a_{−i}, 0)`` for every user, shape (n,).

        For a sharer this is ``g_i(P_ii(a)) = P_ii² / (τ_i² − P_ii)`` (Thm 2,
        eq. 5, in posterior form — SPEC §1.1); for a non-sharer it is 0.
        """
        a = self._profile(profile)
        x = self._posterior(np.flatnonzero(a), full=False)
        return self._own_gain(a, x)

    def _own_gain(self, a: np.ndarray, x: np.ndarray) -> np.ndarray:
        # g_i is only defined for sharers (P_ii < τ_i²); a non-sharer's P_ii may exceed τ_i².
        share = a == 1
        return np.where(share, own_signal_gain(np.where(share, x, 0.0), self._noise_var), 0.0)

    def leakage_without(self, profile) -> np.ndarray:
        """``I_i(a_{−i}, 0)``: leakage about ``i`` from the others' data only (the data externality)."""
        return self.leakage(profile) - self.own_leakage(profile)

    # ------------------------------------------------------- prices/payoffs
    def prices(self, profile, problem: str = "equilibrium") -> np.ndarray:
        """Least prices sustaining ``profile`` as a user equilibrium, shape (n,).

        ``equilibrium``: ``p_i = v_i (I_i(a) − I_i(a_{−i},0))`` for sharers (Thm 2);
        ``decorrelated``: ``p_i = v_i I_i(a)`` for sharers (Thm 6);
        ``first_best``: zeros (the planner sets no prices).
        """
        a = self._profile(profile)
        if problem == "equilibrium":
            return self._values * self.own_leakage(a)
        if problem == "decorrelated":
            return np.where(a == 1, self._values * self.leakage(a), 0.0)
        if problem == "first_best":
            return np.zeros(self.n)
        LeakageObjective.for_problem(problem, self._values)  # raises the uniform error
        raise AssertionError("unreachable")

    def surplus(self, profile) -> float:
        """Social surplus ``Σ_i (1 − v_i) I_i(a)`` (§3.1); prices cancel."""
        return float(np.dot(1.0 - self._values, self.leakage(profile)))

    def decorrelated_leakage(self, profile) -> np.ndarray:
        """``Ĩ_i(a)`` of Lemma 5: ``I_i(a)`` for sharers, 0 for non-sharers."""
        a = self._profile(profile)
        return np.where(a == 1, self.leakage(a), 0.0)

    def decorrelated_surplus(self, profile) -> float:
        """Social surplus after de-correlation ``Σ (1 − v_i) Ĩ_i(a)`` (Thm 6)."""
        return float(np.dot(1.0 - self._values, self.decorrelated_leakage(profile)))

    def platform_profit(self, profile, prices=None) -> float:
        """``U(a, p) = Σ_i I_i(a) − Σ_{i∈A} p_i`` (eq. 2); default prices of Thm 2."""
        a = self._profile(profile)
        p = self.prices(a) if prices is None else as_vector("prices", prices, self.n)
        return float(self.leakage(a).sum() - np.dot(a, p))

    def user_payoffs(self, profile, prices=None) -> np.ndarray:
        """``u_i = a_i p_i − v_i I_i(a)`` (§2.2), shape (n,); default prices of Thm 2."""
        a = self._profile(profile)
        p = self.prices(a) if prices is None else as_vector("prices", prices, self.n)
        return a * p - self._values * self.leakage(a)

    # ------------------------------------------------------------ objectives
    def objective(self, problem: str) -> LeakageObjective:
        """The weighted-leakage objective of ``problem`` (see :mod:`.objectives`)."""
        return LeakageObjective.for_problem(problem, self._values)

    def evaluate(self, objective: LeakageObjective | str, profile) -> float:
        """Exact value of ``objective`` at ``profile`` (fresh Cholesky solve)."""
        if isinstance(objective, str):
            objective = self.objective(objective)
        if objective.n != self.n:
            raise InstanceError("objective", f"has {objective.n} weights for a market of {self.n} users")
        a = self._profile(profile)
        x = self._posterior(np.flatnonzero(a), full=False)
        leak = self._sigma2 - x
        own = self._own_gain(a, x)
        val = np.dot(objective.c, leak) + np.sum(a * (objective.d * leak - objective.e * own - objective.k))
        return float(val)

    # ------------------------------------------------------- user equilibria
    def _share_threshold(self, a: np.ndarray) -> np.ndarray:
        """``v_i (I_i(1, a_{−i}) − I_i(0, a_{−i}))``: the least price making ``i`` share given ``a_{−i}``.

        With ``s_i`` the posterior variance of ``X_i`` from the others' data,
        the gain of sharing is ``s_i² / (s_i + τ_i²)`` (eq. 5).  From ``P_ii(a)``:
        ``s_i = P_ii`` if ``i`` does not share, and ``s_i = P_ii τ²/(τ² − P_ii)``
        if she does (undoing her own signal).
        """
        x = self._posterior(np.flatnonzero(a), full=False)
        t2 = self._noise_var
        share = a == 1
        s = np.where(share, np.where(share, x, 0.0) * t2 / (t2 - np.where(share, x, 0.0)), x)
        return self._values * s * s / (s + t2)

    def best_response(self, a, prices, prefer_share: bool) -> np.ndarray:
        """Each user's best response to ``a_{−i}``; ``prefer_share`` breaks indifference."""
        a = self._profile(a)
        p = as_vector("prices", prices, self.n)
        thr = self._share_threshold(a)
        if prefer_share:
            return (p >= thr - INDIFFERENCE_TOL).astype(np.int8)
        return (p > thr + INDIFFERENCE_TOL).astype(np.int8)

    def user_equilibria(self, prices, *, all: bool = False, max_n: int = 16) -> UserEquilibria:
        """User equilibria ``𝒜(p)`` at prices ``p`` (Definition 1, Lemma 2).

        The least (greatest) equilibrium is the limit of best-response iteration
        from all-0 (all-1), resolving indifference towards not sharing (sharing);
        the game is supermodular (Lemma 1 ⇒ increasing differences), so the
        iteration is monotone and stops within ``n`` rounds.  With ``all=True``
        every equilibrium is listed by enumeration (``n ≤ max_n``).  A user is
        indifferent when ``|p_i − threshold| ≤`` :data:`INDIFFERENCE_TOL`.
        """
        p = as_vector("prices", prices, self.n)
        least = np.zeros(self.n, dtype=np.int8)
        for _ in range(self.n + 1):
            nxt = self.best_response(least, p, prefer_share=False)
            if np.array_equal(nxt, least):
                break
            least = nxt
        greatest = np.ones(self.n, dtype=np.int8)
        for _ in range(self.n + 1):
            nxt = self.best_response(greatest, p, prefer_share=True)
            if np.array_equal(nxt, greatest):
                break
            greatest = nxt
        every = None
        if all:
            if self.n > max_n:
                raise LimitExceeded(
                    f"listing all user equilibria enumerates 2^n profiles; n = {self.n} exceeds "
                    f"max_n = {max_n} (the least and greatest equilibria are still available)"
                )
            from ..solvers.kernels import enumerate_user_equilibria

            masks = enumerate_user_equilibria(self._cov, self._noise_var, self._values, p, INDIFFERENCE_TOL)
            every = tuple(_mask_to_profile(int(m), self.n) for m in sorted(masks))
        return UserEquilibria(least, greatest, every)


def own_signal_gain(x: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
    """``g_i(x) = x² / (τ_i² − x)`` (SPEC §1.1): own-signal leakage of a sharer with ``P_ii = x``."""
    return x * x / (noise_var - x)


def _mask_to_profile(mask: int, n: int) -> np.ndarray:
    return np.array([(mask >> i) & 1 for i in range(n)], dtype=np.int8)
