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

from ..errors import LimitExceeded
from ..validate import as_covariance, as_vector
from .base import LeakageMarketMethods

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


class GaussianMarket(LeakageMarketMethods):
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
        return self.leakage_and_own(profile)[1]

    def leakage_and_own(self, profile) -> tuple[np.ndarray, np.ndarray]:
        """``(I(a), own(a))`` from one posterior solve."""
        a = self._profile(profile)
        x = self._posterior(np.flatnonzero(a), full=False)
        return self._sigma2 - x, self._own_gain(a, x)

    def _own_gain(self, a: np.ndarray, x: np.ndarray) -> np.ndarray:
        # g_i is only defined for sharers (P_ii < τ_i²); a non-sharer's P_ii may exceed τ_i².
        share = a == 1
        return np.where(share, own_signal_gain(np.where(share, x, 0.0), self._noise_var), 0.0)

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
