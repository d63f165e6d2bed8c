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

from dm_opt.core.errors import InstanceError, LimitExceeded
from dm_opt.core.validate import as_covariance, as_vector, check_noise_ratio
from dm_opt.gaussian.base import LeakageMarketMethods
from dm_opt.gaussian.kernels import posterior
from dm_opt.gaussian.kernels.enumeration import enumerate_user_equilibria
from dm_opt.gaussian.kernels.posterior import own_signal_gain  # noqa: F401  (public here too)

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
        for label, text in (("name", name), ("source", source)):    # printed in reports, written by save()
            if text is not None and not isinstance(text, str):
                raise InstanceError(label, f"must be a string, got {type(text).__name__}", where)
        cov, chol = as_covariance("cov", cov, where=where)
        n = cov.shape[0]
        values = as_vector("values", values, n, where=where, nonnegative=True)
        noise_given = noise_var is not None
        if noise_var is None:
            noise_var = np.ones(n)
        noise_var = as_vector("noise_var", noise_var, n, where=where, positive=True)
        for arr in (values, noise_var):
            arr.setflags(write=False)
        check_numerical_range(cov, noise_var, where=where, noise_given=noise_given)
        self._cov = cov
        self._chol = chol
        self._values = values
        self._noise_var = noise_var
        self._sigma2 = np.diag(cov).copy()
        self._sigma2.setflags(write=False)
        self.name = name
        self.source = source
        self._memo = None           # (profile bytes, fresh state diagonal): see _state

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
    # All posterior arithmetic lives in dm_opt.gaussian.kernels.posterior (the mixed state (M, h): accurate
    # when noise is small relative to variance, where P_ii ≈ τ² and x²/(τ²−x) loses every digit).
    def posterior_cov(self, profile) -> np.ndarray:
        """Posterior covariance ``P(a)`` of ``X`` given ``S_A``, shape (n, n)."""
        return posterior.posterior_cov(self._cov, self._noise_var, self._profile(profile))

    def _state(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(diag M, h, shared)`` of the fresh state of profile ``a`` (int8, shape (n,)).

        The last profile's is kept: a result is finished by its objective, leakage, prices and
        surplus at one profile, and each fresh state costs O(n³) (1–4 s at n = 1500–3000).  The
        market's data are read-only, so the memo cannot go stale; it is one tuple, replaced
        atomically, so threads sharing the market read a consistent entry.  Callers must not
        modify the arrays."""
        key = a.tobytes()
        memo = self._memo
        if memo is not None and memo[0] == key:
            return memo[1]
        M, h, shared = posterior.fresh_state(self._cov, self._noise_var, np.ascontiguousarray(a, dtype=np.int8))
        state = (np.diag(M).copy(), h, shared)      # writable: compiled callers take one array type
        self._memo = (key, state)
        return state

    def posterior_state_diag(self, profile) -> tuple[np.ndarray, np.ndarray]:
        """``(diag P(a), h(a))``, shape (n,) each: ``h_i = τ_i² − P_ii`` for sharers (0 otherwise),
        computed without cancellation (:mod:`dm_opt.gaussian.kernels.posterior`); own gains are ``x²/h``."""
        D, h, shared = self._state(self._profile(profile))
        return D.copy(), np.where(shared, h, 0.0)

    def posterior_var(self, profile) -> np.ndarray:
        """``diag P(a)``: the platform's mean squared error per user, shape (n,)."""
        return self._sigma2 - self.leakage(profile)

    # -------------------------------------------------------------- leakage
    def leakage(self, profile) -> np.ndarray:
        """Leaked information ``I_i(a) = σ_i² − P_ii(a)`` (§2.2), shape (n,)."""
        return self.leakage_and_own(profile)[0]

    def own_leakage(self, profile) -> np.ndarray:
        """``I_i(a) − I_i(a_{−i}, 0)`` for every user, shape (n,).

        For a sharer this is ``g_i(P_ii(a)) = P_ii² / (τ_i² − P_ii) = P'²/(P'+τ_i²)``
        (Thm 2, eq. 5; ``P'`` her posterior variance without her own signal),
        computed without the cancelling difference (:mod:`dm_opt.gaussian.kernels.posterior`); for a
        non-sharer it is 0.
        """
        return self.leakage_and_own(profile)[1]

    def leakage_and_own(self, profile) -> tuple[np.ndarray, np.ndarray]:
        """``(I(a), own(a))`` from one fresh posterior state
        (:func:`dm_opt.gaussian.kernels.posterior.leakage_and_own`)."""
        D, h, shared = self._state(self._profile(profile))
        return posterior.state_leakage_and_own(self._sigma2, D, h, shared)

    def evaluate(self, objective, profile) -> float:
        """Exact value of ``objective`` at ``profile`` from a fresh posterior state.

        The same compiled arithmetic (:func:`dm_opt.gaussian.kernels.posterior.fresh_objective`) that the
        searches use for their candidates and incumbents, so a certificate compares like
        with like, bit for bit.
        """
        if isinstance(objective, str):
            objective = self.objective(objective)
        if objective.n != self.n:
            raise InstanceError("objective", f"has {objective.n} weights for a market of {self.n} users")
        D, h, shared = self._state(self._profile(profile))
        return posterior.state_objective(D, h, shared, self._sigma2.copy(), objective.c, objective.d, objective.e,
                                         objective.k)

    # ------------------------------------------------------- user equilibria
    def _share_threshold(self, a: np.ndarray) -> np.ndarray:
        """``v_i (I_i(1, a_{−i}) − I_i(0, a_{−i}))``: the least price making ``i`` share given ``a_{−i}``.

        With ``s_i`` the posterior variance of ``X_i`` from the others' data, the
        gain of sharing is ``s_i² / (s_i + τ_i²)`` (eq. 5): for a sharer that is her
        own gain at ``a``; for a non-sharer, her own gain at ``(a_{−i}, 1)``.
        """
        leak, own = self.leakage_and_own(a)
        x = self._sigma2 - leak            # s_i = P_ii for a non-sharer
        t2 = self._noise_var
        share = a == 1
        gain = np.where(share, own, x * x / (x + t2))
        return self._values * gain

    def best_response(self, a, prices, prefer_share: bool) -> np.ndarray:
        """Each user's best response to ``a_{−i}``; ``prefer_share`` breaks indifference."""
        a = self._profile(a)
        p = as_vector("prices", prices, self.n, max_abs=None)
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
        p = as_vector("prices", prices, self.n, max_abs=None)
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
            masks = enumerate_user_equilibria(self._cov, self._noise_var, self._values, p, INDIFFERENCE_TOL)
            every = tuple(_mask_to_profile(int(m), self.n) for m in sorted(masks))
        return UserEquilibria(least, greatest, every)


#: Noise ratios ``τ_i²/σ_i²`` accepted (beyond them the posterior state under/overflows or
#: carries no digit of the own-signal gain; docs/spec.md §1.1).
NOISE_RATIO_RANGE = (1e-14, 1e14)


def check_numerical_range(cov: np.ndarray, noise_var: np.ndarray, where: str | None = None, *,
                          noise_given: bool = True) -> None:
    """Refuse markets whose answers dm_opt cannot compute to 1e-9 × the objective's scale.

    Two conditions (docs/spec.md §1.1, measured in tests/reliability/test_numerics.py):
    every noise ratio ``τ_i²/σ_i²`` within :data:`NOISE_RATIO_RANGE`, and the bound
    :func:`dm_opt.gaussian.kernels.posterior.signal_condition` on the condition number of the scaled signal
    covariances at most :data:`dm_opt.gaussian.kernels.posterior.MAX_SIGNAL_CONDITION` (it is large only when
    Σ is nearly singular *and* some noise is small relative to the variances).
    """
    # names the variance or the noise, whichever is out of scale (the variance if no noise was given)
    check_noise_ratio(np.diag(cov), noise_var, where, noise_given=noise_given)
    ratio = noise_var / np.diag(cov)
    # The correlation matrix R has unit diagonal, so its eigenvalues lie in [0, n] and the bound of
    # signal_condition is at most (n + max r)/min r: when that (doubled for round-off in λ_max) is
    # within the limit, the O(n³) eigendecomposition cannot refuse the market and is skipped (at
    # n = 5000 it takes tens of seconds, before any --time-limit applies).
    if (2.0 * cov.shape[0] + float(np.max(ratio))) / float(np.min(ratio)) <= posterior.MAX_SIGNAL_CONDITION:
        return
    kappa = posterior.signal_condition(cov, noise_var)
    if not kappa <= posterior.MAX_SIGNAL_CONDITION:
        i = int(np.argmin(ratio))
        raise InstanceError(
            "cov", f"with noise_var the signal covariance may have condition number {kappa:.3g} (Σ is nearly "
            f"singular and the smallest noise ratio τ²/Σ_ii is {ratio[i]:.3g} at user {i}); dm_opt guarantees its "
            f"accuracy up to {posterior.MAX_SIGNAL_CONDITION:.0e}: rescale, merge nearly collinear users or raise "
            f"their noise",
            where=where)


def _mask_to_profile(mask: int, n: int) -> np.ndarray:
    return np.array([(mask >> i) & 1 for i in range(n)], dtype=np.int8)
