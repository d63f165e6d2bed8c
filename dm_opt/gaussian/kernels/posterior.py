"""The one home of the Gaussian posterior arithmetic (AMMO §2.2, Thm 2 eq. 5; docs/spec.md §1.1).

Every leakage and own-signal gain dm_opt reports — the exact evaluation of a
profile, the enumeration walk, branch-and-bound nodes, user equilibria, the
oracle markets — comes from the functions here.

Why a representation of its own
-------------------------------
The textbook forms lose every digit when a user's noise is small relative to
her variance (``r_i = τ_i²/σ_i²`` tiny): a sharer's posterior variance is then
``P_ii ≈ τ_i²`` and the own-signal gain ``g_i = P_ii²/(τ_i² − P_ii)`` divides by
a difference of two nearly equal numbers, while ``P_ii`` itself comes out of
``σ² − (…)`` with an absolute error of a few ulps of ``σ²``.  At ``r = 1e-8`` the
gain is pure round-off.  The covariance *downdate* (removing a signal,
``P + P_{:k}P_{k:}/(τ_k² − P_kk)``) has the same cancellation.

So the state of a sharing set ``A`` is kept in the *mixed* form

* ``M`` (n×n): the posterior covariance of ``W`` given ``S_A``, where
  ``W_i = Z_i`` (her noise) for a sharer and ``W_i = X_i`` for a non-sharer.
  Since ``X_i = S_i − Z_i`` with ``S_i`` observed, ``M`` equals the posterior
  covariance ``P`` up to the signs of the sharers' rows and columns — the same
  numbers — but a sharer's row is computed at its own scale ``τ_i``, never as a
  small difference of ``σ``-sized numbers;
* ``h`` (n,): for a sharer ``h_i = τ_i² − P_ii = τ_i⁴ (C⁻¹)_ii`` with
  ``C = Σ_AA + diag τ²_A`` (undefined for non-sharers), accumulated as a sum of
  positive terms.

Adding a signal (``k`` starts sharing), with ``s = M_kk + τ_k²`` (a sum) and
``m = M_{:k}`` (the old column)::

    M_ij ← M_ij − m_i m_j / s            (i, j ≠ k)
    M_kj ← −τ_k² m_j / s,   M_kk ← τ_k² m_k / s
    h_i  ← h_i + m_i² / s   (sharers i ≠ k),   h_k ← τ_k⁴ / s

Every step is a Schur-complement step (as in Cholesky) or a sum of positive
terms, so the state is accurate to a few ulps times the number of steps, row by
row at each row's own scale.  Then for every user

    leakage      I_i(a) = σ_i² − M_ii
    own gain     I_i(a) − I_i(a_{−i}, 0) = M_ii² / h_i       (sharers; = P'²/(P'+τ²))
    leave-own-out variance  P'_i = τ_i² M_ii / h_i           (sharers)

with no cancelling difference.  *Removing* a signal is never done by a
downdate: the searches keep the states of their ancestors (depth-first, add
only) and a fresh state is built by adds from the prior.

Accuracy (docs/spec.md §1.1): the relative accuracy of what is computed here is
governed by the conditioning of the scaled signal covariance, bounded up front
by :func:`signal_condition`; markets beyond :data:`MAX_SIGNAL_CONDITION` are
refused at construction.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Largest bound on the condition number of the scaled signal covariance (see
#: :func:`signal_condition`) for which dm_opt guarantees objectives within 1e-9 × the
#: objective's scale; markets beyond it are refused (InstanceError) at construction.
#: Measured (50-digit oracle, random Σ with condition numbers 1e8–1e16 and noise ratios
#: 1e-6–1e-14, n = 5, every profile): worst leakage/own-gain error 1.6e-13 × Σ σ_i² up to
#: κ = 1e14; the limit keeps two orders of magnitude in hand.
MAX_SIGNAL_CONDITION = 1e12


def signal_condition(cov: np.ndarray, noise_var: np.ndarray) -> float:
    """Upper bound on the condition number of ``D^{-1/2}(Σ_AA + diag τ²_A)D^{-1/2}`` over all ``A``.

    ``D = diag Σ``.  With ``R = D^{-1/2} Σ D^{-1/2}`` (the correlation matrix) and
    ``r_i = τ_i²/σ_i²`` (noise ratios), every scaled signal covariance is a
    principal submatrix of ``R + diag r``, whose eigenvalues lie in
    ``[λ_min(R) + min r, λ_max(R) + max r]`` (Weyl; Cauchy interlacing for the
    submatrices).  ``λ_min(R)`` is taken conservatively as its computed value
    less ``n·eps·λ_max(R)`` (the eigensolver's absolute error).
    """
    s = np.sqrt(np.diag(cov))
    R = cov / s[:, None] / s[None, :]
    lam = np.linalg.eigvalsh(R)
    n = cov.shape[0]
    lam_max = float(lam[-1])
    lam_min = max(float(lam[0]) - n * np.finfo(float).eps * lam_max, 0.0)
    r = noise_var / np.diag(cov)
    lo = lam_min + float(np.min(r))
    if lo <= 0.0:
        return float("inf")
    return (lam_max + float(np.max(r))) / lo


@njit(cache=True, nogil=True)
def add_signal(M, h, shared, k, tau2):
    """User ``k`` (not sharing) starts sharing: update the state ``(M, h)`` in place (O(n²))."""
    n = M.shape[0]
    m = M[:, k].copy()
    s = m[k] + tau2[k]
    t = tau2[k] / s
    for i in range(n):
        if i == k:
            continue
        fi = m[i] / s
        if shared[i]:
            h[i] += m[i] * fi
        for j in range(i, n):
            if j == k:
                continue
            M[i, j] -= fi * m[j]
            M[j, i] = M[i, j]
    for j in range(n):
        M[k, j] = -t * m[j]
        M[j, k] = M[k, j]
    M[k, k] = t * m[k]
    h[k] = tau2[k] * t
    shared[k] = True


@njit(cache=True, nogil=True)
def add_signal_rows(D, h, Q, rows, n_rows, users, shared, k, kq, tau2, m):
    """:func:`add_signal` restricted to ``diag M`` (``D``), ``h`` and some rows of ``M``.

    ``Q`` holds rows of ``M``: ``Q[q]`` is row ``users[q]``; the rows ``rows[:n_rows]``
    are updated (if ``kq``, the row of user ``k``, is among them it becomes her new
    noise row).  Costs ``O(n · n_rows)``: the searches only read the rows of users
    still to be decided, so they carry those instead of the whole matrix.  ``m`` is
    scratch of shape (n,) (no allocation in the hot loop).
    """
    n = D.shape[0]
    for j in range(n):
        m[j] = Q[kq, j]
    s = m[k] + tau2[k]
    t = tau2[k] / s
    for i in range(n):
        if i == k:
            continue
        fi = m[i] / s
        if shared[i]:
            h[i] += m[i] * fi
        D[i] -= fi * m[i]
    for r in range(n_rows):
        q = rows[r]
        if q == kq:
            for j in range(n):
                Q[q, j] = -t * m[j]
            Q[q, k] = t * m[k]
            continue
        fu = m[users[q]] / s
        for j in range(n):
            if j != k:
                Q[q, j] -= fu * m[j]
        Q[q, k] = -t * m[users[q]]
    D[k] = t * m[k]
    h[k] = tau2[k] * t
    shared[k] = True


@njit(cache=True, nogil=True)
def remove_signal_rows(D, h, Q, rows, n_rows, users, shared, k, kq, tau2, m):
    """User ``k`` (sharing) stops sharing: the inverse of :func:`add_signal_rows`.

    A downdate: for every other sharer ``h_i ← h_i − m_i²/h_k`` may cancel.  Returns
    the largest cancellation factor ``h_i(old)/h_i(new)`` (≥ 1): the relative error of
    the state grows by about that factor, so callers rebuild the state fresh when the
    product of these factors gets large (:data:`DOWNDATE_AMPLIFICATION_MAX`).  ``m`` is
    scratch of shape (n,).
    """
    n = D.shape[0]
    for j in range(n):
        m[j] = Q[kq, j]
    hk = h[k]
    t2 = tau2[k]
    amp = 1.0
    for i in range(n):
        if i == k:
            continue
        fi = m[i] / hk
        if shared[i]:
            old = h[i]
            h[i] = old - m[i] * fi
            if h[i] <= 0.0:
                amp = np.inf
            elif old / h[i] > amp:
                amp = old / h[i]
        D[i] += fi * m[i]
    for r in range(n_rows):
        q = rows[r]
        if q == kq:
            for j in range(n):
                Q[q, j] = -t2 * m[j] / hk
            Q[q, k] = t2 * m[k] / hk
            continue
        fu = m[users[q]] / hk
        for j in range(n):
            if j != k:
                Q[q, j] += fu * m[j]
        Q[q, k] = -t2 * m[users[q]] / hk
    D[k] = t2 * m[k] / hk
    h[k] = 0.0
    shared[k] = False
    return amp


#: Largest accumulated cancellation factor of downdates before a state is rebuilt fresh
#: (the state then keeps about 16 − 3 = 13 significant digits).
DOWNDATE_AMPLIFICATION_MAX = 1e3


@njit(cache=True, nogil=True)
def fresh_state(S, tau2, a):
    """``(M, h, shared)`` of profile ``a`` (int8, shape (n,)) built by adds from the prior ``Σ``."""
    n = S.shape[0]
    M = S.copy()
    h = np.zeros(n)
    shared = np.zeros(n, dtype=np.bool_)
    for k in range(n):
        if a[k]:
            add_signal(M, h, shared, k, tau2)
    return M, h, shared


@njit(cache=True, nogil=True)
def own_gain(x, h):
    """Own-signal gain of a sharer from her state entries ``x = M_ii = P_ii`` and ``h_i``."""
    if h <= 0.0:
        return 0.0
    return x * x / h


@njit(cache=True, nogil=True)
def leave_own_out(x, h, t2):
    """``P'_i``: a sharer's posterior variance without her own signal (``τ² x / h``)."""
    if h <= 0.0:
        return x
    return t2 * x / h


@njit(cache=True, nogil=True)
def leak_own(S, tau2, a):
    """``(I(a), own(a))``, shape (n,) each, of profile ``a`` from a fresh state."""
    M, h, shared = fresh_state(S, tau2, a)
    n = S.shape[0]
    leak = np.empty(n)
    own = np.zeros(n)
    for i in range(n):
        leak[i] = S[i, i] - M[i, i]
        if shared[i]:
            own[i] = own_gain(M[i, i], h[i])
    return leak, own


@njit(cache=True, nogil=True)
def objective_value(D, h, shared, sig2, c, d, e, k):
    """``f(a) = Σ c_i I_i + Σ_{i∈A} (d_i I_i − e_i own_i − k_i)`` from ``diag M`` and ``h``."""
    val = 0.0
    for i in range(D.shape[0]):
        leak = sig2[i] - D[i]
        val += c[i] * leak
        if shared[i]:
            val += d[i] * leak - e[i] * own_gain(D[i], h[i]) - k[i]
    return val


@njit(cache=True, nogil=True)
def fresh_objective(S, tau2, c, d, e, k, a):
    """Objective at profile ``a`` from a fresh state (the exact evaluation used by the searches)."""
    M, h, shared = fresh_state(S, tau2, a)
    n = S.shape[0]
    D = np.empty(n)
    sig2 = np.empty(n)
    for i in range(n):
        D[i] = M[i, i]
        sig2[i] = S[i, i]
    return objective_value(D, h, shared, sig2, c, d, e, k)


@njit(cache=True, nogil=True)
def share_threshold(x, h, shared_i, t2):
    """``I_i(1, a_{−i}) − I_i(0, a_{−i})``: the gain of sharing given the others (eq. 5).

    A non-sharer's state entry is ``s = P_ii`` (gain ``s²/(s+τ²)``); a sharer's is her
    own gain ``x²/h``.
    """
    if shared_i:
        return own_gain(x, h)
    return x * x / (x + t2)


def leakage_and_own(cov: np.ndarray, noise_var: np.ndarray, profile: np.ndarray):
    """NumPy entry point: ``(I(a), own(a))`` for one profile (shape (n,) each)."""
    return leak_own(np.ascontiguousarray(cov, dtype=float), np.ascontiguousarray(noise_var, dtype=float),
                    np.ascontiguousarray(profile, dtype=np.int8))


def posterior_cov(cov: np.ndarray, noise_var: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """Posterior covariance ``P(a)`` (shape (n, n)) from the mixed state (signs restored)."""
    M, _, shared = fresh_state(np.ascontiguousarray(cov, dtype=float),
                               np.ascontiguousarray(noise_var, dtype=float),
                               np.ascontiguousarray(profile, dtype=np.int8))
    sign = np.where(shared, -1.0, 1.0)
    return M * sign[:, None] * sign[None, :]


# ------------------------------------------------------------------ closed forms (numpy)
def own_signal_gain(x: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
    """``g_i(x) = x² / (τ_i² − x)`` (eq. 5 in posterior form): own-signal gain of a sharer with ``P_ii = x``.

    The formula as a function of ``x``, for models whose variable is ``P_ii`` (the MILP's
    tangent tables).  It cancels when ``x ≈ τ_i²`` (small noise): to *evaluate* a profile
    use :func:`leakage_and_own`.
    """
    return x * x / (noise_var - x)


def sharer_posterior(delta, tau2, u):
    """``(P^s, own gain)`` of a sharer of community ``k`` from ``u_k`` (the one home of this arithmetic).

    ``P^s = δτ²/d + uτ⁴/d²`` and ``h = τ² − P^s = τ⁴(d − u)/d²`` (``d = δ + τ²``), so the
    own-signal gain ``(P^s)²/(τ² − P^s) = (P^s)²/h`` is computed without the difference
    ``τ² − P^s``, which cancels when the noise is small (docs/spec.md §1.1).  ``delta``,
    ``tau2`` broadcast against ``u``.
    """
    d = delta + tau2
    t4 = tau2 * tau2
    Ps = delta * tau2 / d + u * t4 / (d * d)
    h = t4 * (d - u) / (d * d)
    return Ps, Ps * Ps / h
