"""De-correlation as it literally works (AMMO §6.2, Lemma 5, Thm 6).

The paper's de-correlation scheme has each user share ``S̃ = Σ⁻¹ S`` instead of
her own signal, so that the shared data carry no information about the users
who do not share.  Lemma 5 states that the leakage is then ``Ĩ_i(a) = I_i(a)``
for sharers and 0 for non-sharers; dm_opt's ``problem="decorrelated"`` (and
:meth:`~dm_opt.gaussian.base.LeakageMarketMethods.decorrelated_leakage`) use that
*idealised* form.

With the literal transform the platform sees ``Y_A = (Σ⁻¹ S)_A``.  Since
``Cov(X, Y_A) = Σ Σ⁻¹ E_A = E_A``, a non-sharer indeed leaks nothing, but a sharer
``i`` leaks

    Ĩ_i(a) = [Cov(Y_A)⁻¹]_ii,     Cov(Y_A) = (Σ⁻¹ (Σ + D_τ) Σ⁻¹)_AA,

which equals Lemma 5's ``I_i(a)`` when everyone shares (``Cov(Y)⁻¹ = Σ(Σ+D)⁻¹Σ``)
but not in general: with two users, correlation ``ρ``, ``τ² = 1`` and
``a = (1, 0)``, user 1 leaks ``(1 − ρ²)²/2`` (0.2048 at ``ρ = 0.6``), not
``I_1 = 1/2``.  :class:`LiteralDecorrelatedMarket` is that market as a leakage
oracle: a non-sharer's leakage is 0, so its equilibrium prices are
``v_i Ĩ_i(a)``, the platform's objective is ``Σ_{i∈A} (1 − v_i) Ĩ_i(a)`` — its
social surplus — and the first-best, equilibrium and de-correlated objectives
coincide.  Every solver that takes a leakage oracle solves it.

Accuracy: ``Σ⁻¹`` is formed (by Cholesky), so results carry the conditioning of
``Σ``; this market is for studying the transform on moderate instances.
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.validate import as_profile
from dm_opt.gaussian.leakage.base import OracleMarketMixin
from dm_opt.gaussian.market import GaussianMarket


class LiteralDecorrelatedMarket(OracleMarketMixin):
    """The Gaussian market after the literal de-correlation ``S̃ = Σ⁻¹ S`` (§6.2).

    Parameters are those of :class:`~dm_opt.gaussian.market.GaussianMarket`
    (``cov`` (n, n) SPD, ``values`` (n,) ≥ 0, ``noise_var`` (n,) > 0, default 1).
    """

    kind = "literal_decorrelated"

    def __init__(self, cov, values, noise_var=None, *, name: str | None = None,
                 source: str | None = None, where: str | None = None):
        self.gaussian = GaussianMarket(cov, values, noise_var, name=name, source=source, where=where)
        self._values = self.gaussian.values
        self.name = name
        self.source = source
        S = self.gaussian.cov
        L = np.linalg.cholesky(S)
        Linv = np.linalg.solve(L, np.eye(S.shape[0]))
        prec = Linv.T @ Linv                                   # Σ⁻¹
        B = prec @ (S + np.diag(self.gaussian.noise_var)) @ prec
        self._cov_y = 0.5 * (B + B.T)                          # Cov(Σ⁻¹ S)

    @property
    def n(self) -> int:
        return self.gaussian.n

    def __repr__(self) -> str:
        return f"<LiteralDecorrelatedMarket n={self.n}>"

    def leakage(self, profile) -> np.ndarray:
        """``Ĩ_i(a) = [Cov(Y_A)⁻¹]_ii`` for sharers, 0 for non-sharers, shape (n,)."""
        a = as_profile("profile", profile, self.n)
        A = np.flatnonzero(a)
        out = np.zeros(self.n)
        if A.size:
            C = self._cov_y[np.ix_(A, A)]
            Lc = np.linalg.cholesky(C)
            Li = np.linalg.solve(Lc, np.eye(A.size))
            out[A] = np.einsum("ki,ki->i", Li, Li)            # diag of C⁻¹ = Li^T Li
        return out

    def own_leakage(self, profile) -> np.ndarray:
        """``Ĩ_i(a) − Ĩ_i(a_{−i}, 0) = Ĩ_i(a)`` for sharers (a non-sharer leaks nothing)."""
        return self.leakage(profile)

    def idealised_leakage(self, profile) -> np.ndarray:
        """Lemma 5's ``Ĩ``: ``I_i(a)`` of the original market for sharers, 0 otherwise."""
        return self.gaussian.decorrelated_leakage(profile)


__all__ = ["LiteralDecorrelatedMarket"]
