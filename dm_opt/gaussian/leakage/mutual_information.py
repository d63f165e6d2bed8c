"""Gaussian mutual-information leakage (AMMO §5.1, Appendix A "Mutual Information Satisfies Properties 1-4").

The paper's alternative leakage measure is the mutual information between a
user's type and the data shared, ``𝓘_i(a) = I(X_i; (X_j : a_j = 1))``.  In the
Gaussian model of §2 the data a user shares is her *signal*
``S_j = X_j + Z_j`` (the platform never sees ``X_j``), so we implement

    𝓘_i(a) = I(X_i; S_A) = ½ log(σ_i² / P_ii(a))      [nats]

with ``P(a)`` the posterior covariance of :class:`GaussianMarket` (for jointly
Gaussian variables ``I(X; Y) = ½ log(Var X / Var(X | Y))``).  Reading the
paper's formula literally with noiseless types would make every sharer's own
leakage infinite (``I(X_i; X_i) = ∞`` for a continuous type); the signal
version is its finite counterpart and tends to it as ``τ² → 0``.

Own-signal term (the analogue of eq. 5 / docs/spec.md §1.1): with ``s`` the posterior
variance of ``X_i`` from the others' signals, sharing gives
``P_ii = s τ²/(s + τ²)``, hence for a sharer

    𝓘_i(a) − 𝓘_i(a_{−i}, 0) = ½ log(s / P_ii) = −½ log(1 − P_ii(a)/τ_i²) = ½ log(τ_i²/h_i),

with ``h_i = τ_i² − P_ii`` from the posterior state (:mod:`dm_opt.gaussian.kernels.posterior`), so prices
need no extra solve and small noise loses no digits.
The measure satisfies Properties 1–4 for any distribution (Appendix A);
``tests/gaussian/leakage`` checks this numerically on random instances.
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.validate import as_profile
from dm_opt.gaussian.leakage._kernels import diag_block
from dm_opt.gaussian.leakage.base import OracleMarketMixin, masks_to_profiles
from dm_opt.gaussian.market import GaussianMarket


def mi_from_posterior(sigma2: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``½ log(σ² / x)`` elementwise (x = posterior variance)."""
    return 0.5 * np.log(sigma2 / x)


def mi_own_from_posterior(h: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
    """``−½ log(1 − x/τ²) = ½ log(τ²/h)``: a sharer's own-signal mutual information.

    ``h = τ² − x`` comes from the posterior state (:mod:`dm_opt.gaussian.kernels.posterior`), so the
    small-noise case (``x ≈ τ²``) keeps its digits.
    """
    return 0.5 * np.log(noise_var / h)


class MutualInformationMarket(OracleMarketMixin):
    """AMMO market with leakage ``I(X_i; S_A)`` (nats) instead of the MSE reduction.

    Parameters are those of :class:`~dm_opt.gaussian.market.GaussianMarket`
    (``cov`` (n, n) SPD, ``values`` (n,) ≥ 0, ``noise_var`` (n,) > 0, default 1),
    validated by it.  ``values`` are per nat of leaked information.
    """

    #: Properties 1–4 of §5.1 hold for every instance (proved in AMMO Appendix A / by linearity of μ),
    #: so bound-based solvers need not check them.
    properties_proven = True

    kind = "gaussian_mutual_information"

    def __init__(self, cov, values, noise_var=None, *, name: str | None = None,
                 source: str | None = None, where: str | None = None):
        self.gaussian = GaussianMarket(cov, values, noise_var, name=name, source=source, where=where)
        self._values = self.gaussian.values
        self.name = name
        self.source = source

    @property
    def n(self) -> int:
        return self.gaussian.n

    @property
    def cov(self) -> np.ndarray:
        return self.gaussian.cov

    @property
    def noise_var(self) -> np.ndarray:
        return self.gaussian.noise_var

    def __repr__(self) -> str:
        return f"<MutualInformationMarket n={self.n}>"

    def dependence(self) -> np.ndarray:
        """``Σ_ij ≠ 0`` (i ≠ j): for jointly Gaussian types, dependence ⇔ nonzero covariance."""
        dep = self.cov != 0
        np.fill_diagonal(dep, False)
        return dep

    def _both(self, a: np.ndarray, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        leak = mi_from_posterior(self.gaussian.sigma2, x)
        share = a == 1
        own = np.where(share, mi_own_from_posterior(np.where(share, h, 1.0), self.noise_var), 0.0)
        return leak, own

    def leakage_and_own(self, profile):
        a = as_profile("profile", profile, self.n)
        return self._both(a, *self.gaussian.posterior_state_diag(a))

    def leakage(self, profile) -> np.ndarray:
        """``I(X_i; S_A) = ½ log(σ_i² / P_ii(a))`` in nats, shape (n,)."""
        return self.leakage_and_own(profile)[0]

    def own_leakage(self, profile) -> np.ndarray:
        """``−½ log(1 − P_ii(a)/τ_i²)`` for sharers, 0 otherwise, shape (n,)."""
        return self.leakage_and_own(profile)[1]

    def leakage_block(self, lo: int, count: int):
        x, h = diag_block(self.cov, self.noise_var, lo, count)
        a = masks_to_profiles(lo, count, self.n)
        return self._both(a, x, h)
