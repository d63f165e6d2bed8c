"""High-precision brute-force oracle for the Gaussian data market (AMMO; docs/spec.md §1).  Shares nothing with dm_opt.

Written from the paper's definitions, not from the package:

* leakage ``I_i(a) = σ_i² − Var(X_i | S_A) = Σ_{iA} (Σ_AA + D_A)⁻¹ Σ_{Ai}`` with
  ``D_A = diag(τ_j², j ∈ A)`` — computed as ``‖L⁻¹ Σ_{A,i}‖²`` with ``L`` the Cholesky
  factor of ``Σ_AA + D_A``, in mpmath at (at least) 40 significant digits after an
  exact conversion of the float64 data;
* the own gain of a sharer ``I_i(a) − I_i(a_{−i}, 0)`` as the difference of two
  *separate* solves (the second one without user ``i``'s signal) — not the
  own-signal identity ``g_i(P_ii)`` the package uses;
* the objectives of the three problems in the paper's form (see :data:`PROBLEMS`).

Every profile gets its own factorisation.  The sets are visited depth-first in
increasing index order, and the Cholesky factor of ``Σ_AA + D_A`` is extended by
one row from the factor of its prefix ``A \\ {max A}``: the factor of a leading
block *is* the leading block of the factor, so this is, operation for operation,
the fresh factorisation of every set (no rank-one updates, no downdates).

Profiles are tuples of 0/1 of length ``n``; internally a bit mask with bit ``i``
↔ user ``i``.  Everything is cached per :class:`Oracle` instance (one per market).

Precision: the working precision is chosen per instance so that the answers are
correct to well over 30 significant digits *relative to the objective's scale*
for the float64 data as given — 53 bits for the data, plus the exponent span of
the variances and noises (so ``Σ_jj + τ_j²`` is exact), plus the binary digits lost
to the conditioning of the signal covariances, plus 40 decimal digits and a
margin.  :meth:`Oracle.gaussian` accepts ``prec=`` to cross-check at another
precision (done by the tests on the hardest regimes).
"""

from __future__ import annotations

import math
from functools import cached_property

import mpmath
import numpy as np

#: The three problems with a known covariance (AMMO Prop 1, Thm 1, Thm 6 / Lemma 5).
PROBLEMS = ("first_best", "equilibrium", "decorrelated")

#: Decimal digits the oracle guarantees (on top of the loss from conditioning and exponent span).
TARGET_DIGITS = 40


def _context(prec_bits: int) -> mpmath.MPContext:
    ctx = mpmath.MPContext()
    ctx.prec = int(prec_bits)
    return ctx


def working_precision(cov, noise_var) -> int:
    """Bits of working precision for ``(cov, noise_var)`` (see the module docstring)."""
    cov = np.asarray(cov, dtype=float)
    tau2 = np.asarray(noise_var, dtype=float)
    sig2 = np.diag(cov)
    mags = np.concatenate([sig2, tau2])
    span_bits = math.log2(float(np.max(mags)) / float(np.min(mags)))
    # conditioning of Σ_AA + D_A (interlacing: within [λmin(Σ) + min τ², λmax(Σ) + max τ²]); the float
    # eigenvalue of a nearly singular Σ is unreliable, so floor λmin at 1e-17·λmax (Σ passed a float
    # Cholesky, so its true condition number is below ~1e17)
    d = np.sqrt(sig2)
    lam = np.linalg.eigvalsh(cov / d[:, None] / d[None, :])     # correlation matrix: scale-free
    lam_max, lam_min = float(lam[-1]), max(float(lam[0]), 1e-17 * float(lam[-1]))
    r = tau2 / sig2
    cond = (lam_max + float(np.max(r))) / (lam_min + float(np.min(r)))
    cond_bits = math.log2(max(cond, 1.0)) + math.log2(float(np.max(sig2)) / float(np.min(sig2)))
    return int(53 + span_bits + cond_bits + TARGET_DIGITS * math.log2(10) + 64)


def _mask(profile) -> int:
    m = 0
    for i, x in enumerate(profile):
        if int(x) not in (0, 1):
            raise ValueError(f"profile entries must be 0/1, got {profile!r}")
        if int(x):
            m |= 1 << i
    return m


def _profile(mask: int, n: int) -> tuple:
    return tuple((mask >> i) & 1 for i in range(n))


def gaussian_leakage_table(ctx, cov, noise_var) -> list:
    """``table[mask][i] = I_i(a)`` (mpf) for every profile, by a Cholesky solve per sharing set.

    ``cov``/``noise_var``: float arrays (converted exactly) or nested lists of mpf of ``ctx``.
    """
    if isinstance(cov, np.ndarray):
        cov = [[ctx.mpf(float(x)) for x in row] for row in cov]                 # exact conversion
    if isinstance(noise_var, np.ndarray):
        noise_var = [ctx.mpf(float(x)) for x in noise_var]
    S, t2 = cov, list(noise_var)
    n = len(S)
    zero = ctx.mpf(0)
    table = [None] * (1 << n)
    table[0] = [zero] * n

    def extend(A, L, W, I, mask):
        # A: users in the set (increasing); L: rows of the Cholesky factor of Σ_AA + D_A;
        # W: rows of L⁻¹ Σ_{A,:};  I_i = Σ_k W[k][i]²
        m = len(A)
        for j in range(A[-1] + 1 if A else 0, n):
            # new row of the factor: l_k = (C_{j,A_k} − Σ_{t<k} l_t L_{k,t}) / L_{k,k}
            row = []
            for k in range(m):
                s = S[j][A[k]] - ctx.fdot(row, L[k][:k]) if k else S[j][A[k]]
                row.append(s / L[k][k])
            dj2 = S[j][j] + t2[j] - ctx.fdot(row, row)
            if not dj2 > 0:
                raise ArithmeticError(f"signal covariance of {A + [j]} is not positive definite at "
                                      f"{ctx.prec} bits")
            dj = ctx.sqrt(dj2)
            w = [(S[j][i] - ctx.fdot(row, [W[k][i] for k in range(m)])) / dj for i in range(n)]
            newI = [I[i] + w[i] * w[i] for i in range(n)]
            nm = mask | (1 << j)
            table[nm] = newI
            extend(A + [j], L + [row + [dj]], W + [w], newI, nm)

    extend([], [], [], [zero] * n, 0)
    return table


class Oracle:
    """All ``2^n`` profiles of one market, in high precision.

    Build with :meth:`gaussian`, :meth:`mutual_information`, :meth:`mixture` or
    :meth:`tabulated`.  ``leak[mask][i] = I_i(a)`` (mpf).
    """

    def __init__(self, ctx, n: int, values, leak: list, max_leak: list, kind: str):
        self.ctx = ctx
        self.n = n
        self.v = [ctx.mpf(float(x)) for x in np.asarray(values, dtype=float)]
        self.leak = leak
        self.max_leak = max_leak          # σ_i² (Gaussian) or I_i(1, …, 1) (other leakage measures)
        self.kind = kind
        self._values = {}

    # ------------------------------------------------------------ builders
    @classmethod
    def gaussian(cls, cov, noise_var, values, prec: int | None = None) -> "Oracle":
        cov = np.asarray(cov, dtype=float)
        noise_var = np.broadcast_to(np.asarray(noise_var, dtype=float), (cov.shape[0],))
        ctx = _context(prec or working_precision(cov, noise_var))
        leak = gaussian_leakage_table(ctx, cov, noise_var)
        sig2 = [ctx.mpf(float(x)) for x in np.diag(cov)]
        return cls(ctx, cov.shape[0], values, leak, sig2, "gaussian")

    @classmethod
    def community(cls, B, delta, membership, noise_var, values, prec: int | None = None) -> "Oracle":
        """``Σ = D + U B Uᵀ`` built exactly from the float parameters (``Σ_ij = B_{c(i)c(j)} + [i=j] δ_{c(i)}``).

        A community market's float data are ``B`` and ``δ``; its dense float view rounds the diagonal
        ``B_kk + δ_k``, which at within-correlations near 1 (``δ ≪ B_kk``) alone moves the answers by
        ~1e-9 of the scale — so the oracle adds them exactly here.
        """
        B = np.asarray(B, dtype=float)
        delta = np.asarray(delta, dtype=float)
        c = [int(x) for x in membership]
        n = len(c)
        noise_var = np.broadcast_to(np.asarray(noise_var, dtype=float), (n,))
        dense = B[np.ix_(c, c)] + np.diag(delta[c])
        ctx = _context(prec or working_precision(dense, noise_var))
        Bm = [[ctx.mpf(float(x)) for x in row] for row in B]
        dm = [ctx.mpf(float(x)) for x in delta]
        S = [[Bm[c[i]][c[j]] + (dm[c[i]] if i == j else 0) for j in range(n)] for i in range(n)]
        leak = gaussian_leakage_table(ctx, S, np.asarray(noise_var, dtype=float))
        o = cls(ctx, n, values, leak, [S[i][i] for i in range(n)], "gaussian")
        o.cov_mp = S
        return o

    @classmethod
    def mutual_information(cls, cov, noise_var, values, prec: int | None = None) -> "Oracle":
        """Leakage ``I(X_i; S_A) = ½ log(σ_i² / Var(X_i | S_A))`` in nats (AMMO §5.1, Gaussian signals)."""
        cov = np.asarray(cov, dtype=float)
        noise_var = np.broadcast_to(np.asarray(noise_var, dtype=float), (cov.shape[0],))
        ctx = _context(prec or working_precision(cov, noise_var))
        mse = gaussian_leakage_table(ctx, cov, noise_var)
        sig2 = [ctx.mpf(float(x)) for x in np.diag(cov)]
        leak = [[ctx.log(s / (s - x)) / 2 for s, x in zip(sig2, row, strict=True)] for row in mse]
        n = cov.shape[0]
        return cls(ctx, n, values, leak, list(leak[(1 << n) - 1]), "mutual_information")

    @classmethod
    def mixture(cls, probabilities, covariances, noise_var, values, prec: int | None = None) -> "Oracle":
        """μ-expected mean-squared-error leakage (AMMO §5.3): ``Σ_k μ_k I_i(a; Σ^(k))``."""
        covs = [np.asarray(c, dtype=float) for c in covariances]
        n = covs[0].shape[0]
        noise_var = np.broadcast_to(np.asarray(noise_var, dtype=float), (n,))
        ctx = _context(prec or max(working_precision(c, noise_var) for c in covs))
        mus = [ctx.mpf(float(p)) for p in probabilities]
        tables = [gaussian_leakage_table(ctx, c, noise_var) for c in covs]
        leak = [[ctx.fdot(mus, [t[m][i] for t in tables]) for i in range(n)] for m in range(1 << n)]
        return cls(ctx, n, values, leak, list(leak[(1 << n) - 1]), "mixture")

    @classmethod
    def tabulated(cls, table, values, prec: int = 200) -> "Oracle":
        """Leakage given as a table ``(2^n, n)`` indexed by profile mask (exact conversion)."""
        table = np.asarray(table, dtype=float)
        n = table.shape[1]
        ctx = _context(prec)
        leak = [[ctx.mpf(float(x)) for x in row] for row in table]
        return cls(ctx, n, values, leak, list(leak[(1 << n) - 1]), "tabulated")

    # -------------------------------------------------------------- leakage
    def leakage(self, profile) -> list:
        """``I_i(a)`` for every user (mpf)."""
        return list(self.leak[_mask(profile)])

    def leakage_without(self, profile) -> list:
        """``I_i(a_{−i}, 0)``: leakage about ``i`` from a separate solve without ``i``'s signal."""
        m = _mask(profile)
        return [self.leak[m & ~(1 << i)][i] for i in range(self.n)]

    def own_gain(self, profile) -> list:
        """``I_i(a) − I_i(a_{−i}, 0)`` (zero for non-sharers)."""
        m = _mask(profile)
        return [self.leak[m][i] - self.leak[m & ~(1 << i)][i] for i in range(self.n)]

    def share_threshold(self, profile) -> list:
        """``v_i (I_i(1, a_{−i}) − I_i(0, a_{−i}))``: the price at which user ``i`` is indifferent given ``a_{−i}``."""
        m = _mask(profile)
        return [self.v[i] * (self.leak[m | (1 << i)][i] - self.leak[m & ~(1 << i)][i]) for i in range(self.n)]

    # ----------------------------------------------------------- objectives
    def objective(self, problem, profile):
        """The objective at ``profile`` (mpf); ``problem`` a name of :data:`PROBLEMS` or weights ``(c, d, e, k)``."""
        return self._objective_mask(problem, _mask(profile))

    def _objective_mask(self, problem, m: int):
        ctx, n, v = self.ctx, self.n, self.v
        I = self.leak[m]
        one = ctx.mpf(1)
        if problem == "first_best":            # Prop 1: social surplus Σ (1 − v_i) I_i(a)
            return ctx.fsum((one - v[i]) * I[i] for i in range(n))
        if problem == "equilibrium":           # Thm 1: Σ (1 − v_i) I_i(a) + v_i I_i(a_{−i}, 0)
            return ctx.fsum((one - v[i]) * I[i] + v[i] * self.leak[m & ~(1 << i)][i] for i in range(n))
        if problem == "decorrelated":          # Lemma 5 / Thm 6: Σ_{i∈A} (1 − v_i) I_i(a)
            return ctx.fsum((one - v[i]) * I[i] for i in range(n) if (m >> i) & 1)
        if isinstance(problem, tuple) and len(problem) == 4:
            # general weights: Σ c_i I_i(a) + Σ_{i∈A} [d_i I_i(a) − e_i (I_i(a) − I_i(a_{−i},0)) − k_i]
            c, d, e, k = ([ctx.mpf(float(x)) for x in np.asarray(w, dtype=float)] for w in problem)
            terms = [c[i] * I[i] for i in range(n)]
            for i in range(n):
                if (m >> i) & 1:
                    own = I[i] - self.leak[m & ~(1 << i)][i]
                    terms.append(d[i] * I[i] - e[i] * own - k[i])
            return ctx.fsum(terms)
        raise ValueError(f"unknown problem {problem!r}")

    def values(self, problem) -> list:
        """Objective of every profile, indexed by mask (cached)."""
        key = problem if isinstance(problem, str) else tuple(tuple(np.asarray(w, float).tolist()) for w in problem)
        if key not in self._values:
            self._values[key] = [self._objective_mask(problem, m) for m in range(1 << self.n)]
        return self._values[key]

    def best(self, problem):
        """The optimum value (mpf)."""
        return max(self.values(problem))

    def optima(self, problem, tol) -> set:
        """Profiles whose value is within ``tol`` (absolute) of the optimum."""
        vals = self.values(problem)
        best = max(vals)
        return {_profile(m, self.n) for m, x in enumerate(vals) if x >= best - tol}

    def brute_force(self, problem, tol):
        """``(optimum as float, set of optimal profiles within tol)``."""
        return float(self.best(problem)), self.optima(problem, tol)

    def gap(self, problem, profile):
        """``optimum − value(profile)`` (mpf, ≥ 0)."""
        return self.best(problem) - self.objective(problem, profile)

    # ---------------------------------------------------------------- scale
    def weights(self, problem):
        """The problem as ``(c, d, e)`` weights of ``Σ c I + Σ_{A} (d I − e own)`` (floats), re-derived.

        first best: ``c = 1 − v``.  Equilibrium: ``I_i(a_{−i},0) = I_i(a) − own_i(a)`` for a sharer
        and ``= I_i(a)`` for a non-sharer, so ``Σ(1−v)I + v I(a_{−i},0) = Σ I − Σ_{A} v own``:
        ``c = 1, e = v``.  Decorrelated: ``d = 1 − v``.
        """
        v = np.array([float(x) for x in self.v])
        z = np.zeros(self.n)
        if problem == "first_best":
            return 1.0 - v, z, z
        if problem == "equilibrium":
            return np.ones(self.n), z, v
        if problem == "decorrelated":
            return z, 1.0 - v, z
        raise ValueError(problem)

    def scale(self, problem) -> float:
        """``Σ_i (|c_i| + |d_i| + |e_i|) σ_i²`` (``σ_i²`` → ``I_i(1,…,1)`` for non-MSE leakage)."""
        c, d, e = self.weights(problem)
        s = np.array([float(x) for x in self.max_leak])
        return float(math.fsum((abs(c[i]) + abs(d[i]) + abs(e[i])) * s[i] for i in range(self.n)))

    @cached_property
    def profiles(self) -> list:
        return [_profile(m, self.n) for m in range(1 << self.n)]


def is_user_equilibrium(oracle: Oracle, prices, profile, indiff_tol: float) -> bool:
    """No user strictly gains by switching: a sharer has ``p_i ≥ thr_i − tol``, a non-sharer ``p_i ≤ thr_i + tol``.

    A user's payoff is ``a_i p_i − v_i I_i(a)``; switching ``i`` from 0 to 1 gains ``p_i − thr_i``
    with ``thr_i = v_i (I_i(1, a_{−i}) − I_i(0, a_{−i}))`` (AMMO §2.2, Definition 1).
    """
    ctx = oracle.ctx
    thr = oracle.share_threshold(profile)
    for i, a in enumerate(profile):
        p = ctx.mpf(float(prices[i]))
        if a and p < thr[i] - indiff_tol:
            return False
        if not a and p > thr[i] + indiff_tol:
            return False
    return True
