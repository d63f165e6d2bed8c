"""Unknown correlation structure (AMMO §5.3, Thm 5): ``Σ ~ μ`` over a finite set.

Platform and users know only ``μ = (μ_1, …, μ_K)`` over covariances
``Σ^(1), …, Σ^(K)``; payoffs are μ-expectations (§5.3):

    𝓘_i(a) = E_{Σ∼μ}[σ_i² − P_ii(a; Σ)],
    𝓘_i(a) − 𝓘_i(a_{−i}, 0) = E_{Σ∼μ}[g_i(P_ii(a; Σ))]     (sharers; eq. 5 per component)

Expectation preserves Properties 1–4 (each holds per component and the
inequalities are linear), so Thm 1/2 and the solvers apply unchanged with the
expected oracle; the equilibrium prices are ``v_i E[g_i(P_ii)]``.
"""

from __future__ import annotations

import numbers

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.validate import as_covariance, as_profile, as_vector
from dm_opt.gaussian.leakage._kernels import diag_block
from dm_opt.gaussian.leakage.base import OracleMarketMixin, masks_to_profiles
from dm_opt.gaussian.market import GaussianMarket

#: Absolute tolerance on ``Σ μ_k = 1``.
PROBABILITY_SUM_TOL = 1e-9


class MixtureMarket(OracleMarketMixin):
    """Gaussian market whose covariance is drawn from a finite distribution ``μ`` (§5.3).

    Parameters
    ----------
    probabilities : array (K,)
        ``μ_k ≥ 0``, summing to 1 (within :data:`PROBABILITY_SUM_TOL`).
    covariances : sequence of K arrays (n, n)
        Each symmetric positive definite (errors name ``covariances[k]``).
    values : array (n,) or float
        Values of privacy ``v_i ≥ 0``.
    noise_var : array (n,) or float, optional
        ``τ_i² > 0`` (same in every component; default 1).
    """

    #: Properties 1–4 of §5.1 hold for every instance (proved in AMMO Appendix A / by linearity of μ),
    #: so bound-based solvers need not check them.
    properties_proven = True

    kind = "gaussian_mixture"

    def __init__(self, probabilities, covariances, values, noise_var=None, *, name: str | None = None,
                 source: str | None = None, where: str | None = None):
        mu = as_vector("probabilities", probabilities, where=where, nonnegative=True)
        total = float(mu.sum())
        if abs(total - 1.0) > PROBABILITY_SUM_TOL:
            raise InstanceError("probabilities", f"must sum to 1, got {total:.12g}", where)
        if isinstance(covariances, np.ndarray) and covariances.ndim == 3:
            covariances = list(covariances)
        if not isinstance(covariances, (list, tuple)):
            raise InstanceError("covariances", f"expected a list of {mu.shape[0]} matrices, "
                                f"got {type(covariances).__name__}", where)
        if len(covariances) != mu.shape[0]:
            raise InstanceError("covariances", f"has {len(covariances)} matrices but probabilities has "
                                f"{mu.shape[0]} entries (one matrix per probability)", where)
        covs = []
        for k, c in enumerate(covariances):
            cov, _ = as_covariance(f"covariances[{k}]", c, where=where)
            if covs and cov.shape != covs[0].shape:
                raise InstanceError(f"covariances[{k}]", f"has shape {cov.shape}, but covariances[0] has "
                                    f"{covs[0].shape} (all components need the same users)", where)
            covs.append(cov)
        n = covs[0].shape[0]
        if isinstance(values, numbers.Real) and not isinstance(values, bool):
            values = [values] * n
        values = as_vector("values", values, n, where=where, nonnegative=True)
        if noise_var is None:
            noise_var = np.ones(n)
        noise_var = as_vector("noise_var", noise_var, n, where=where, positive=True)
        for arr in (mu, values, noise_var):
            arr.setflags(write=False)
        self._mu = mu
        self._values = values
        self._noise_var = noise_var
        self.components = tuple(GaussianMarket(c, values, noise_var) for c in covs)
        self.name = name
        self.source = source

    @property
    def n(self) -> int:
        return self.components[0].n

    @property
    def probabilities(self) -> np.ndarray:
        return self._mu

    @property
    def covariances(self) -> tuple:
        return tuple(m.cov for m in self.components)

    @property
    def noise_var(self) -> np.ndarray:
        return self._noise_var

    def __repr__(self) -> str:
        return f"<MixtureMarket n={self.n} K={len(self.components)}>"

    def dependence(self) -> np.ndarray:
        """``P_μ(Σ_ij ≠ 0) > 0`` for i ≠ j (Thm 5's notion of correlation)."""
        dep = np.zeros((self.n, self.n), dtype=bool)
        for mu, m in zip(self._mu, self.components):
            if mu > 0:
                dep |= m.cov != 0
        np.fill_diagonal(dep, False)
        return dep

    def _accumulate(self, a: np.ndarray, states) -> tuple[np.ndarray, np.ndarray]:
        share = a == 1
        leak = np.zeros(a.shape, dtype=float)
        own = np.zeros(a.shape, dtype=float)
        for mu, m, (x, h) in zip(self._mu, self.components, states):
            leak += mu * (m.sigma2 - x)
            # own gain x²/h (dm_opt.gaussian.kernels.posterior), h = τ² − x carried without cancellation
            own += mu * np.where(share, x * x / np.where(share, h, 1.0), 0.0)
        return leak, own

    def leakage_and_own(self, profile):
        a = as_profile("profile", profile, self.n)
        return self._accumulate(a, [m.posterior_state_diag(a) for m in self.components])

    def leakage(self, profile) -> np.ndarray:
        """``E_μ[σ_i² − P_ii(a; Σ)]``, shape (n,)."""
        return self.leakage_and_own(profile)[0]

    def own_leakage(self, profile) -> np.ndarray:
        """``E_μ[g_i(P_ii(a; Σ))]`` for sharers, 0 otherwise, shape (n,)."""
        return self.leakage_and_own(profile)[1]

    def leakage_block(self, lo: int, count: int):
        a = masks_to_profiles(lo, count, self.n)
        states = [diag_block(m.cov, self._noise_var, lo, count) for m in self.components]
        return self._accumulate(a, states)
