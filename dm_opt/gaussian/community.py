"""Community-structured Gaussian data markets (AMMO Example 2, Figure 3; docs/spec.md §1.4).

``K`` communities of sizes ``n_k``.  User ``i`` in community ``k`` has prior
variance ``s_k``; two distinct users of community ``k`` have correlation
``r_k`` (``within_corr``); a user of ``k`` and one of ``l ≠ k`` have
correlation ``C_kl`` (``cross_corr``).  Signals carry noise ``τ_k²`` (one per
community — per-user noise would break the exchangeability everything below
rests on).  Users are numbered community by community (the first ``n_0``
users form community 0, …).

Block structure
---------------
With ``U`` the ``n×K`` membership matrix (``U_ik = 1`` iff ``i ∈ k``),

    Σ = D + U B Uᵀ,   D = diag(δ_c(i)),   δ_k = s_k (1 − r_k),
    B_kk = s_k r_k = β_k,   B_kl = √(s_k s_l) C_kl  (k ≠ l).

**Positive definiteness without forming Σ.**  A vector that sums to zero on
every block satisfies ``Uᵀx = 0``, hence ``Σx = Dx``: ``δ_k`` is an
eigenvalue of multiplicity ``n_k − 1``.  On the complement, block-constant
vectors ``x = U y``, ``Σ U y = U (diag(δ) + B N) y`` with ``N = diag(n_k)``;
``diag(δ) + B N`` is similar (by ``N^½``) to the symmetric ``K×K`` matrix

    M = diag(δ) + N^½ B N^½,    M_kk = s_k (1 + (n_k − 1) r_k),
                                M_kl = √(n_k n_l s_k s_l) C_kl.

So ``Σ ≻ 0`` ⇔ ``δ_k > 0`` for every community with ``n_k ≥ 2`` and ``M ≻ 0``
(``O(K³)``, independent of ``n``).  The error names the parameter that breaks
it: ``r_k ≥ 1`` (identical users), ``r_k ≤ −1/(n_k − 1)`` (``M_kk ≤ 0``), a
pair with ``n_k n_l C_kl² ≥ (1 + (n_k−1) r_k)(1 + (n_l−1) r_l)`` (a 2×2
principal minor of ``M``), or else the cross correlations jointly.

Leakage from counts (Woodbury on a K×K system)
----------------------------------------------
Permuting users inside a community leaves ``Σ`` and the noise unchanged, so
``I_i(a)`` depends only on the count vector ``m = (m_1..m_K)`` of sharers per
community and on whether ``i`` shares.  With ``d_k = δ_k + τ_k²``,
``G = diag(m_k / d_k)`` and ``R(m) = I + G^½ B G^½`` (SPD: its eigenvalues are
those of ``D_A^{-½}(Σ_AA + τ²)D_A^{-½}`` restricted to block-constant vectors,
hence ``≥ min τ²/d > 0``), Woodbury gives for the signal covariance
``S = Σ_AA + diag(τ²_A) = D_A + U_A B U_Aᵀ``

    U_Aᵀ S⁻¹ U_A = G^½ R⁻¹ G^½ =: Q,
    e_iᵀ S⁻¹ U_A = (1/d_k) e_kᵀ (I − B Q)           (i ∈ A ∩ k),
    (S⁻¹)_ii = 1/d_k − u_k / d_k²,   u_k := (B − B Q B)_kk.

``u_k`` is the posterior variance of the community-``k`` common component.
Then the posterior variance ``P_ii = σ_i² − Σ_iA S⁻¹ Σ_Ai`` is, using
``Σ_Ai = U_A B e_k + [i ∈ A] δ_k e_i``:

    non-sharer of k:  P^n_k(m) = δ_k + u_k(m)
    sharer of k:      P^s_k(m) = δ_k τ_k²/d_k + u_k(m) τ_k⁴/d_k²

(both without cancellation), ``I = s_k − P`` and the own-signal gain of a
sharer ``g_k(m) = (P^s_k)² / (τ_k² − P^s_k)`` (docs/spec.md §1.1).  Everything costs
one ``K×K`` Cholesky-type solve per count vector, vectorised over batches.
"""

from __future__ import annotations

import numbers
import weakref

import numpy as np

from dm_opt.core.errors import InstanceError, LimitExceeded
from dm_opt.core.validate import MAX_ABS, as_array, as_profile, as_real, as_vector, check_noise_ratio
from dm_opt.gaussian.base import LeakageMarketMethods
from dm_opt.gaussian.kernels.posterior import sharer_posterior
from dm_opt.gaussian.market import GaussianMarket

#: Largest n for which :meth:`CommunityMarket.to_gaussian` forms the dense Σ by default.
DENSE_MAX_N = 5000
#: Range of the community variances ``s_k``: the K×K closed forms multiply total values (up to
#: 1e7 users × 1e150) by two variances, and ``u τ⁴`` (τ² ≤ 1e14 s); 1e60 keeps both below 1e280.
COMMUNITY_VARIANCE_RANGE = (1e-60, 1e60)
#: Largest number of users (Σ n_k) and of communities K accepted (memory: O(n) per-user arrays
#: and O(K²) community matrices are built at construction).
MAX_USERS = 10**7
MAX_COMMUNITIES = 1000
#: Value families for per-community value distributions (seeded).
VALUE_FAMILIES = ("constant", "uniform", "lognormal")


def _per_community(field, x, K, where, *, positive=False, nonnegative=False, max_abs=MAX_ABS):
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        x = [x] * K
    arr = as_vector(field, x, where=where, positive=positive, nonnegative=nonnegative, max_abs=max_abs)
    if arr.shape[0] != K:
        raise InstanceError(field, f"expected a scalar or {K} entries (one per community), "
                            f"got {arr.shape[0]}", where)
    return arr


def community_values(sizes, spec, seed=None, where=None, field="values") -> np.ndarray:
    """Per-user values of privacy drawn per community (seeded), shape (n,).

    ``spec`` is a dict ``{"family": F, ...}`` with per-community parameters
    (scalars broadcast over communities):

    * ``constant``: ``value`` — every user of community ``k`` has ``value[k]``;
    * ``uniform``: ``low``, ``high`` — ``U[low_k, high_k]``, ``0 ≤ low ≤ high``;
    * ``lognormal``: ``mean``, ``sigma`` — ``exp(N(mean_k, sigma_k²))``.

    ``seed`` (or ``spec["seed"]``) makes the draw deterministic; community
    ``k`` uses the stream ``default_rng([seed, k])``, so its values do not
    change when other communities are resized.
    """
    sizes = [int(s) for s in sizes]
    K = len(sizes)
    if not isinstance(spec, dict):
        raise InstanceError(field, "expected a table {family = ..., ...}", where)
    spec = dict(spec)
    fam = spec.pop("family", None)
    sd = spec.pop("seed", seed)
    if sd is None:
        sd = 0
    if isinstance(sd, bool) or not isinstance(sd, numbers.Integral) or sd < 0:
        raise InstanceError(f"{field}.seed", f"must be an integer >= 0, got {sd!r}", where)
    params = {"constant": ("value",), "uniform": ("low", "high"), "lognormal": ("mean", "sigma")}
    if not isinstance(fam, str) or fam not in params:
        raise InstanceError(f"{field}.family", f"unknown value family {fam!r}; choose one of "
                            f"{', '.join(VALUE_FAMILIES)}", where)
    unknown = sorted(set(spec) - set(params[fam]))
    if unknown:
        raise InstanceError(f"{field}.{unknown[0]}", f"unknown parameter for family '{fam}'; "
                            f"allowed: {', '.join(params[fam])}, seed", where)
    for key in params[fam]:
        if key not in spec:
            raise InstanceError(f"{field}.{key}", f"missing (family '{fam}')", where)
    p = {k: _per_community(f"{field}.{k}", spec[k], K, where) for k in params[fam]}
    out = []
    for k, nk in enumerate(sizes):
        rng = np.random.default_rng([int(sd), k])
        if fam == "constant":
            if p["value"][k] < 0:
                raise InstanceError(f"{field}.value[{k}]", f"must be >= 0, got {p['value'][k]}", where)
            out.append(np.full(nk, p["value"][k]))
        elif fam == "uniform":
            lo, hi = p["low"][k], p["high"][k]
            if lo < 0 or hi < lo:
                raise InstanceError(f"{field}.low[{k}]", f"need 0 <= low <= high, got low = {lo}, high = {hi}",
                                    where)
            out.append(rng.uniform(lo, hi, nk))
        else:
            if p["sigma"][k] < 0:
                raise InstanceError(f"{field}.sigma[{k}]", f"must be >= 0, got {p['sigma'][k]}", where)
            with np.errstate(over="ignore"):
                draw = np.exp(rng.normal(p["mean"][k], p["sigma"][k], nk))
            if not np.all(draw <= MAX_ABS):
                raise InstanceError(f"{field}.mean[{k}]", f"lognormal draws exp(N({p['mean'][k]:.6g}, "
                                    f"{p['sigma'][k]:.6g}²)) exceed {MAX_ABS:g}, the largest value accepted; "
                                    f"lower mean or sigma", where)
            out.append(draw)
    return np.concatenate(out) if out else np.empty(0)


#: Largest cancellation (in ulps) allowed in a sharer's ``d − u`` (:meth:`CommunityMarket._check_numerics`).
COMMUNITY_CANCEL_MAX = 1e4


class CommunityMarket(LeakageMarketMethods):
    """A Gaussian data market with ``K`` exchangeable communities (AMMO Example 2).

    Parameters
    ----------
    sizes : sequence of K ints ≥ 1
        Community sizes ``n_k``; ``n = Σ n_k`` users, numbered community by community.
    variance : float or (K,)
        Prior variances ``s_k = σ_i²`` of the users of each community (> 0).
    within_corr : float or (K,)
        Correlation ``r_k`` between two distinct users of community ``k``.
    cross_corr : float or (K, K)
        Correlation ``C_kl`` between a user of ``k`` and one of ``l ≠ k``; a
        matrix must be symmetric with unit diagonal (the diagonal is not
        used — within-community correlation is ``within_corr``).
    values : (n,) array, or dict
        Values of privacy ``v_i ≥ 0`` per user, or a per-community
        distribution (see :func:`community_values`).
    noise_var : float or (K,)
        Signal noise ``τ_k² > 0`` per community (default 1, as in the paper).
    seed : int, optional
        Seed for a ``values`` distribution.

    Raises
    ------
    InstanceError
        Naming the field, e.g. ``within_corr[1]`` or ``cross_corr[0,1]``, and why
        ``Σ`` would not be positive definite (see the module docstring).
    """

    kind = "community_market"

    def __init__(self, sizes, variance=1.0, within_corr=0.0, cross_corr=0.0, values=None,
                 noise_var=1.0, *, seed=None, name: str | None = None, source: str | None = None,
                 where: str | None = None):
        sz = as_array("sizes", sizes, ndim=1, where=where)
        if sz.size == 0:
            raise InstanceError("sizes", "needs at least one community", where)
        if np.any(sz != np.round(sz)) or np.any(sz < 1):
            i = int(np.argmax((sz != np.round(sz)) | (sz < 1)))
            raise InstanceError(f"sizes[{i}]", f"must be an integer >= 1, got {sz[i]}", where)
        if sz.size > MAX_COMMUNITIES:
            raise InstanceError("sizes", f"{sz.size} communities exceed the limit {MAX_COMMUNITIES}", where)
        if float(sz.sum()) > MAX_USERS:
            i = int(np.argmax(sz))
            raise InstanceError(f"sizes[{i}]" if sz[i] > MAX_USERS else "sizes",
                                f"{float(sz.sum()):.6g} users in all exceed the limit {MAX_USERS:.0e}", where)
        self._sizes = sz.astype(np.int64)
        K = self.K
        self._s = _per_community("variance", variance, K, where, positive=True, max_abs=None)
        lo, hi = COMMUNITY_VARIANCE_RANGE
        for k in range(K):
            if not lo <= self._s[k] <= hi:
                raise InstanceError(f"variance[{k}]", f"{self._s[k]:.6g} is out of range: community variances must "
                                    f"lie in [{lo:g}, {hi:g}] (the community closed forms multiply them by total "
                                    f"values); rescale the units", where)
        self._r = _per_community("within_corr", within_corr, K, where)
        for k in range(K):
            if abs(self._r[k]) > 1:
                raise InstanceError(f"within_corr[{k}]", f"is a correlation, must lie in [-1, 1], "
                                    f"got {self._r[k]}", where)
        if isinstance(cross_corr, numbers.Real) and not isinstance(cross_corr, bool):
            C = np.full((K, K), as_real("cross_corr", cross_corr, where))
            np.fill_diagonal(C, 1.0)
        else:
            C = as_array("cross_corr", cross_corr, ndim=2, where=where)
            if C.shape != (K, K):
                raise InstanceError("cross_corr", f"expected a scalar or a {K}x{K} matrix, got shape {C.shape}",
                                    where)
        for k in range(K):
            if C[k, k] != 1.0:
                raise InstanceError(f"cross_corr[{k},{k}]", f"diagonal must be 1 (within-community "
                                    f"correlation is within_corr), got {C[k, k]}", where)
            for l in range(k + 1, K):
                if abs(C[k, l] - C[l, k]) > 1e-12:
                    raise InstanceError(f"cross_corr[{k},{l}]", f"must be symmetric: {C[k, l]} vs "
                                        f"[{l},{k}] = {C[l, k]}", where)
                if abs(C[k, l]) > 1:
                    raise InstanceError(f"cross_corr[{k},{l}]", f"is a correlation, must lie in [-1, 1], "
                                        f"got {C[k, l]}", where)
        self._C = 0.5 * (C + C.T)
        self._tau2 = _per_community("noise_var", noise_var, K, where, positive=True)
        check_noise_ratio(self._s, self._tau2, where, variance_field=lambda k: f"variance[{k}]")
        self._check_positive_definite(where)
        n = int(self._sizes.sum())
        if values is None:
            raise InstanceError("values", "missing: give one value of privacy per user or a "
                                "per-community distribution {family = ...}", where)
        if isinstance(values, dict):
            values = community_values(self._sizes, values, seed, where)
        values = as_vector("values", values, n, where=where, nonnegative=True)
        values.setflags(write=False)
        self._values = values
        self._starts = np.concatenate([[0], np.cumsum(self._sizes)])
        self.name = name
        self.source = source
        self._cache = {}
        for arr in (self._s, self._r, self._C, self._tau2):
            arr.setflags(write=False)
        # fixed K×K data of the closed forms (computed once: the hot paths call them per solve)
        self._B = self._make_B()
        self._delta = self._s * (1.0 - self._r)
        for arr in (self._B, self._delta):
            arr.setflags(write=False)
        self._check_numerics(where)

    def _check_numerics(self, where):
        """Refuse communities whose own-signal gain the K×K closed form cannot carry to 1e-9.

        A sharer's ``h = τ² − P^s = τ⁴(d − u)/d²`` (:func:`sharer_posterior`) loses
        ``u/(d − u) ≤ β(s + τ²)/d²`` ulps in ``d − u`` (``u ≤ β``; ``d − u = d²/(P' + τ²)``,
        ``P' ≤ s``): large only when ``within_corr`` is close to 1 *and* the noise is small.
        """
        d = self._delta + self._tau2
        beta = np.diag(self._B)
        with np.errstate(over="ignore", divide="ignore"):
            loss = np.maximum(beta, 0.0) * (self._s + self._tau2) / (d * d)
        bad = np.flatnonzero(~(loss <= COMMUNITY_CANCEL_MAX))
        if bad.size:
            k = int(bad[0])
            raise InstanceError(
                f"within_corr[{k}]", f"= {self._r[k]:.12g} with noise ratio {self._tau2[k] / self._s[k]:.3g}: the "
                f"own-signal gain would lose up to {loss[k]:.3g} ulps (the community closed form guarantees 1e-9 "
                f"of the objective's scale up to {COMMUNITY_CANCEL_MAX:.0e}); lower within_corr or raise noise_var",
                where)

    # ------------------------------------------------------------ structure
    @property
    def K(self) -> int:
        return int(self._sizes.shape[0])

    @property
    def n(self) -> int:
        return int(self._sizes.sum())

    @property
    def sizes(self) -> np.ndarray:
        return self._sizes

    @property
    def variance(self) -> np.ndarray:
        return self._s

    @property
    def within_corr(self) -> np.ndarray:
        return self._r

    @property
    def cross_corr(self) -> np.ndarray:
        return self._C

    @property
    def community_noise_var(self) -> np.ndarray:
        """``τ_k²`` per community, shape (K,)."""
        return self._tau2

    @property
    def community(self) -> np.ndarray:
        """Community index of every user, shape (n,)."""
        c = self.__dict__.get("_community")
        if c is None:
            # built on first use: the solvers never need it (users are numbered community by
            # community), and at n = 10⁷ it is 80 MB
            c = np.repeat(np.arange(self.K), self._sizes)
            c.setflags(write=False)
            self._community = c
        return c

    @property
    def noise_var(self) -> np.ndarray:
        """``τ_i²`` per user, shape (n,)."""
        return np.repeat(self._tau2, self._sizes)        # users are numbered community by community

    @property
    def sigma2(self) -> np.ndarray:
        """Prior variances ``σ_i²`` per user, shape (n,), read-only.

        Built on first use and kept: every ``dm_opt.solve`` asks for it (the tie tolerance's
        scale, and ``hasattr`` checks of the market protocol), and at ``n = 10⁷`` each fresh
        copy is an 80 MB pass over new memory.
        """
        s2 = self.__dict__.get("_sigma2")
        if s2 is None:
            s2 = np.repeat(self._s, self._sizes)
            s2.setflags(write=False)
            self._sigma2 = s2
        return s2

    @property
    def B(self) -> np.ndarray:
        """The K×K common-component matrix ``B`` of ``Σ = D + U B Uᵀ``."""
        if hasattr(self, "_B"):
            return self._B
        return self._make_B()

    def _make_B(self) -> np.ndarray:
        sq = np.sqrt(self._s)
        B = self._C * np.outer(sq, sq)
        np.fill_diagonal(B, self._s * self._r)
        return B

    @property
    def delta(self) -> np.ndarray:
        """Idiosyncratic variances ``δ_k = s_k (1 − r_k)``, shape (K,)."""
        if hasattr(self, "_delta"):
            return self._delta
        return self._s * (1.0 - self._r)

    def community_matrix(self) -> np.ndarray:
        """``M = diag(δ) + N^½ B N^½``: Σ's eigenvalues off the ``δ_k`` are M's (module docstring)."""
        sn = np.sqrt(self._sizes.astype(float))
        return np.diag(self.delta) + self.B * np.outer(sn, sn)

    def eigenvalues(self) -> tuple[np.ndarray, np.ndarray]:
        """``(eig(M), δ)``: all eigenvalues of Σ are ``eig(M)`` and ``δ_k`` (multiplicity ``n_k − 1``)."""
        return np.linalg.eigvalsh(self.community_matrix()), self.delta

    def _check_positive_definite(self, where):
        n, r = self._sizes, self._r
        for k in range(self.K):
            if n[k] >= 2 and r[k] >= 1.0:
                raise InstanceError(f"within_corr[{k}]", f"= {r[k]} makes the {n[k]} users of community {k} "
                                    f"perfectly correlated (Σ singular: eigenvalue s(1 - r) = 0); use a value < 1",
                                    where)
            if 1.0 + (n[k] - 1) * r[k] <= 0:
                raise InstanceError(f"within_corr[{k}]", f"= {r[k]} is too negative for a community of "
                                    f"{n[k]} users: Σ is positive definite only if within_corr > -1/(n_k - 1) "
                                    f"= {-1.0 / (n[k] - 1):.6g}", where)
        M = self.community_matrix()
        try:
            np.linalg.cholesky(M)
            # decided on the unit-diagonal scaling of M: the test must not depend on the units of s
            d = 1.0 / np.sqrt(np.diag(M))
            ok = np.linalg.eigvalsh(M * d[:, None] * d[None, :])[0] > 1e-12
        except np.linalg.LinAlgError:
            ok = False
        if ok:
            return
        a = 1.0 + (n - 1) * r
        for k in range(self.K):
            for l in range(k + 1, self.K):
                if n[k] * n[l] * self._C[k, l] ** 2 >= a[k] * a[l]:
                    lim = np.sqrt(a[k] * a[l] / (n[k] * n[l]))
                    raise InstanceError(
                        f"cross_corr[{k},{l}]",
                        f"= {self._C[k, l]} is too large in magnitude for communities of {n[k]} and {n[l]} users "
                        f"with within_corr {r[k]:.6g} and {r[l]:.6g}: Σ is positive definite only if "
                        f"|cross_corr| < sqrt((1+(n_k-1) r_k)(1+(n_l-1) r_l)/(n_k n_l)) = {lim:.6g}", where)
        w, V = np.linalg.eigh(M)
        top = np.argsort(-np.abs(V[:, 0]))[:3]
        raise InstanceError(
            "cross_corr",
            f"the cross-community correlations are jointly inconsistent: the K×K community matrix "
            f"diag(s(1-r)) + N^½ B N^½ has smallest eigenvalue {w[0]:.3g} <= 0 (mostly communities "
            f"{', '.join(str(int(t)) for t in sorted(top))}); reduce the cross correlations", where)

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<CommunityMarket{label} n={self.n} K={self.K}>"

    def objective(self, problem: str):
        """The weighted-leakage objective of ``problem`` (as for every market), the last one remembered.

        Its ``n``-length weights cost a few array passes at ``n = 10⁷``; ``dm_opt.solve`` and the
        community backend both ask for it, so the most recent one is kept (by a weak reference:
        it lives as long as a caller holds it; the values are read-only, so it cannot go stale).
        """
        last = getattr(self, "_last_objective", None)
        obj = last[1]() if last is not None and last[0] == problem else None
        if obj is None:
            obj = super().objective(problem)
            self._last_objective = (problem, weakref.ref(obj))
        return obj

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_last_objective", None)       # a weak reference does not pickle (Dask workers)
        state.pop("_sigma2", None)               # derived, n-length: rebuilt on first use
        state.pop("_community", None)
        return state

    # ---------------------------------------------------------- dense view
    def cov_dense(self, max_n: int = DENSE_MAX_N) -> np.ndarray:
        """The dense ``n×n`` Σ (for verification only; refuses ``n > max_n``)."""
        if self.n > max_n:
            raise LimitExceeded(f"forming the dense covariance needs n² = {self.n ** 2} entries; "
                                f"n = {self.n} exceeds max_n = {max_n}")
        c = self.community
        S = self.B[np.ix_(c, c)]
        S[np.diag_indices(self.n)] += self.delta[c]
        return S

    def to_gaussian(self, max_n: int = DENSE_MAX_N):
        """The same market as a dense :class:`~dm_opt.gaussian.market.GaussianMarket`."""
        return GaussianMarket(self.cov_dense(max_n), self._values, self.noise_var,
                              name=self.name, source=self.source)

    # ------------------------------------------------- count-vector algebra
    def own_gain_from_counts(self, counts) -> np.ndarray:
        """Own-signal gain of a sharer per community (meaningful where ``m_k ≥ 1``), same shape as ``counts``."""
        Pn, _ = self.posterior_from_counts(counts)
        return sharer_posterior(self.delta, self._tau2, Pn - self.delta)[1]

    def posterior_from_counts(self, counts) -> tuple[np.ndarray, np.ndarray]:
        """Posterior variances ``(P^n, P^s)`` of a non-sharer / sharer per community.

        ``counts``: (K,) or (N, K) sharer counts; returns arrays of the same shape.
        ``P^s_k`` is meaningful only where ``m_k ≥ 1``.  Formulas: module docstring.
        """
        m = np.asarray(counts, dtype=float)
        single = m.ndim == 1
        M = m[None, :] if single else m
        Z, X = self._woodbury(M)
        u = np.diag(self.B)[None, :] - np.einsum("nik,nik->nk", Z, X)
        Pn = self.delta[None, :] + u
        Ps = sharer_posterior(self.delta, self._tau2, u)[0]
        if single:
            return Pn[0], Ps[0]
        return Pn, Ps

    def _woodbury(self, M):
        """``(Z, X) = (G^½ B, R⁻¹ G^½ B)`` for count rows ``M`` (N, K): ``B Q B = Zᵀ X`` (module docstring)."""
        K = self.K
        d = self.delta + self._tau2
        B = self.B
        gh = np.sqrt(M / d)                                   # G^½, (N, K)
        Z = gh[:, :, None] * B[None, :, :]                    # G^½ B
        R = np.eye(K)[None] + Z * gh[:, None, :]              # I + G^½ B G^½
        X = np.linalg.solve(R, Z)                             # R⁻¹ G^½ B
        return Z, X

    def common_posterior(self, counts) -> np.ndarray:
        """Posterior covariance ``B − B Q B`` of the K community common components, shape (N, K, K).

        ``counts`` (N, K).  Its diagonal is ``u(m)`` (:meth:`posterior_from_counts`: ``P^n = δ + u``).
        Adding ``t`` sharers to a community ``k`` with none observes its common component with
        noise ``d_k/t``, so (Kalman / Schur complement) ``u_l`` becomes
        ``U_ll − t U_lk²/(t U_kk + d_k)`` — used by the incumbent heuristic to scan one count.
        """
        M = np.asarray(counts, dtype=float)
        Z, X = self._woodbury(M)
        return self.B[None] - np.einsum("nik,nil->nkl", Z, X)

    def common_variance_without(self, counts) -> np.ndarray:
        """``x_k = u_k(m with m_k = 0)`` for every row of ``counts`` (N, K) and every ``k``, shape (N, K).

        The ``k``-th diagonal entry of ``B − B Q B`` alone: one solve with one right-hand side
        (``R x = G^½ B e_k``) per row and ``k``, the same Woodbury form as :meth:`posterior_from_counts`.
        """
        M = np.asarray(counts, dtype=float)
        N, K = M.shape
        d = self.delta + self._tau2
        B = self.B
        gh = np.repeat(np.sqrt(M / d)[:, None, :], K, axis=1)          # (N, K, K): row k has m_k zeroed
        gh[:, np.arange(K), np.arange(K)] = 0.0
        z = gh * B.T[None, :, :]                                       # z[n, k, :] = G'^½ B e_k
        R = np.eye(K)[None, None] + gh[:, :, :, None] * B[None, None] * gh[:, :, None, :]
        y = np.linalg.solve(R, z[..., None])[..., 0]
        return np.diag(B)[None, :] - np.einsum("nki,nki->nk", z, y)

    def counts(self, profile) -> np.ndarray:
        """Sharers per community ``m_k``, shape (K,) int."""
        a = as_profile("profile", profile, self.n)
        return self._counts_of(a)

    # ------------------------------------------------------------ posterior
    def posterior_var(self, profile) -> np.ndarray:
        """``diag P(a)`` per user, shape (n,) (from the K×K closed form)."""
        a = self._profile(profile)
        Pn, Ps = self._posterior_cached(self._counts_of(a))
        return self._per_user(a, Pn, Ps)

    def _per_user(self, a, non, sharer) -> np.ndarray:
        """Per-user array: ``non[k]`` for the non-sharers of community ``k``, ``sharer[k]`` for its sharers.

        One allocation (users are numbered community by community); at ``n = 10⁷`` the
        temporaries of ``np.where`` over gathered arrays cost more than the K×K algebra.
        """
        out = np.repeat(np.asarray(non, dtype=float), self._sizes)
        st = self._starts
        mask = a.view(np.bool_) if a.dtype == np.int8 else a == 1     # a profile is 0/1
        for k in range(self.K):
            np.copyto(out[st[k]:st[k + 1]], sharer[k], where=mask[st[k]:st[k + 1]])
        return out

    def _counts_of(self, a) -> np.ndarray:
        """Sharers per community of a validated profile (users are numbered community by community)."""
        st = self._starts
        return np.array([np.count_nonzero(a[st[k]:st[k + 1]]) for k in range(self.K)], dtype=np.int64)

    def _posterior_cached(self, m):
        key = ("posterior", m.astype(np.int64).tobytes())
        if key not in self._cache:
            if len(self._cache) > 64:
                # drop the posteriors only: the solver's sorted values share this cache (O(n log n) to redo)
                for old in [k for k in self._cache if isinstance(k, tuple) and k[0] == "posterior"]:
                    del self._cache[old]
            self._cache[key] = self.posterior_from_counts(m)
        return self._cache[key]

    def leakage(self, profile) -> np.ndarray:
        """Leaked information ``I_i(a) = σ_i² − P_ii(a)``, shape (n,)."""
        a = self._profile(profile)
        Pn, Ps = self._posterior_cached(self._counts_of(a))
        return self._per_user(a, self._s - Pn, self._s - Ps)

    def result_arrays(self, objective, profile) -> tuple[float, np.ndarray, float, np.ndarray]:
        """``(value, leakage, surplus, prices)`` of a solver's answer from one K×K posterior.

        The same quantities ``dm_opt.solve`` reports for any market — ``evaluate(objective, a)``;
        ``decorrelated_leakage`` / ``decorrelated_surplus`` for the de-correlated problem, else
        ``leakage`` / ``surplus``; prices of Thm 2 (equilibrium), Thm 6 (de-correlated) or zeros —
        with the leakage array built once and the sums taken per (community, sharer or not) group:
        leakage is constant on each group (module docstring), so
        ``f(a) = Σ_k [I^n_k Σ_{k∖A} c + Σ_{k∩A} ((I^s_k) (c + d) − g_k e − k)]`` from the objective's
        own per-user weights and the profile itself (no prefix sums of the solver).  At
        ``n = 10⁷`` the n-length passes, not the algebra, are the cost: one per returned array and
        a few per nonzero weight vector.  ``leakage`` and ``prices`` equal the general methods' bit for
        bit; ``value`` and ``surplus`` differ by the order of summation only.
        """
        if objective.n != self.n:
            raise InstanceError("objective", f"has {objective.n} weights for a market of {self.n} users")
        a = self._profile(profile)
        name = objective.name
        m = self._counts_of(a)
        Pn, Ps = self._posterior_cached(m)
        In, Is = self._s - Pn, self._s - Ps
        gain = self.own_gain_from_counts(m)
        decor = name == "decorrelated"
        leakage = self._per_user(a, np.zeros(self.K) if decor else In, Is)
        mask = a.view(np.bool_)
        st = self._starts
        v = self._values
        weights = [(key, getattr(objective, key)) for key in ("c", "d", "e", "k")
                   if not (hasattr(objective, "is_zero") and objective.is_zero(key))]
        buf = np.empty(int(self._sizes.max()))
        prices = np.zeros(self.n)
        value = 0.0
        surplus = 0.0
        for k in range(self.K):
            sl = slice(st[k], st[k + 1])
            share = mask[sl]
            mk, nk = int(m[k]), int(self._sizes[k])
            non = ~share if mk < nk else None
            sums = {}
            for key, w in weights:          # (Σ over sharers, Σ over non-sharers; only c needs the latter)
                wk = w[sl]
                sums[key] = (float(np.sum(wk[share])) if mk else 0.0,
                             float(np.sum(wk[non])) if non is not None and key == "c" else 0.0)
            zero = (0.0, 0.0)
            c, d, e, kk = (sums.get(key, zero) for key in ("c", "d", "e", "k"))
            value += In[k] * c[1]
            if mk:
                value += Is[k] * c[0] + Is[k] * d[0] - gain[k] * e[0] - kk[0]
            # social surplus Σ (1 − v) I (Ĩ: sharers only, when de-correlated)
            w = buf[:nk]
            np.subtract(1.0, v[sl], out=w)
            if mk:
                surplus += Is[k] * float(np.sum(w[share]))
            if non is not None and not decor:
                surplus += In[k] * float(np.sum(w[non]))
            if mk and name == "equilibrium":          # p_i = v_i g_i for sharers (Thm 2)
                np.multiply(v[sl], gain[k], out=prices[sl], where=share)
            elif mk and decor:                         # p_i = v_i I_i for sharers (Thm 6)
                np.multiply(v[sl], Is[k], out=prices[sl], where=share)
        for arr in (leakage, prices):       # handed over to the result without another copy
            arr.setflags(write=False)
        return float(value), leakage, float(surplus), prices

    def own_leakage(self, profile) -> np.ndarray:
        """``I_i(a) − I_i(a_{−i}, 0) = g_i(P_ii)`` for sharers, 0 otherwise (Thm 2, eq. 5)."""
        return self.leakage_and_own(profile)[1]

    def leakage_and_own(self, profile) -> tuple[np.ndarray, np.ndarray]:
        """``(I(a), own(a))`` from one K×K posterior (own gains by :func:`sharer_posterior`)."""
        a = self._profile(profile)
        m = self._counts_of(a)
        Pn, Ps = self._posterior_cached(m)
        gain = self.own_gain_from_counts(m)
        return self._per_user(a, self._s - Pn, self._s - Ps), self._per_user(a, np.zeros(self.K), gain)

