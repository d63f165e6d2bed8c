"""Monotone interval bounds (docs/spec.md §1.3), as one function for any partial profile.

The compiled versions used per node by branch-and-bound are in
:mod:`dm_opt.gaussian.kernels.bnb`; this wrapper computes the two posteriors
from scratch (enumeration and MILP use it for bounds at a time limit).
The original derivation, kept for reference:

Leakage is monotone in the sharing set (Lemma 1), so for any completion ``a``
of a partial profile with fixed-in set ``IN`` and free set ``FREE``,
``I(IN) ≤ I(a) ≤ I(IN ∪ FREE)`` element-wise.  Each term of the weighted
objective ``f(a) = Σ c_i I_i + Σ_{i∈A}(d_i I_i − e_i g_i(σ_i² − I_i) − k_i)`` is then
bounded separately (the sum of separate maxima bounds the maximum of the sum):

* ``c_i I_i``: ``c_i · I_i(IN∪FREE)`` if ``c_i > 0`` else ``c_i · I_i(IN)``;
* a sharer term (``i ∈ IN``, or ``i ∈ FREE`` which may also contribute 0):
  ``d_i I_i`` as above, and ``−e_i g_i(σ_i² − I_i)`` is nondecreasing in
  ``I_i`` when ``e_i ≥ 0`` (``g_i`` increases on ``[0, τ_i²)``), so it is at
  most ``−e_i g_i(P_ii(IN∪FREE))``; for ``e_i < 0`` at most
  ``−e_i g_i(P_ii(IN ∪ {i}))``, bounded by the largest sharer posterior
  ``σ_i² τ_i² / (σ_i² + τ_i²)``.
"""

from __future__ import annotations

import numpy as np

from dm_opt.gaussian.kernels.bnb import (
    interval_parts,
    modular_bound,
    modular_parts,
    node_bound,
    row_lagrange_bound,
    tangent_parts,
)
from dm_opt.gaussian.kernels.posterior import fresh_state, signal_condition


def interval_bound(market, objective, fixed_in: np.ndarray, free: np.ndarray) -> float:
    """Upper bound on ``objective`` over all completions (0/1 masks ``fixed_in``, ``free``).

    The smaller of the per-user interval bound
    (:func:`dm_opt.gaussian.kernels.bnb.node_bound`, each user's terms maximised
    exactly over her posterior-variance interval, the free users' own signal
    included or removed) and the modular Woodbury bound
    (:func:`dm_opt.gaussian.kernels.bnb.modular_bound`); both are valid, see
    ``docs/exact_solvers_bnb.md``.  Users neither fixed in nor free are out.
    """

    n = market.n
    fixed_in = np.asarray(fixed_in, dtype=bool)
    free = np.asarray(free, dtype=bool) & ~fixed_in
    state = np.where(fixed_in, 1, np.where(free, 0, 2)).astype(np.int8)
    S = np.array(market.cov, dtype=float, order="C")
    t2 = np.array(market.noise_var, dtype=float, order="C")
    M_lo, h_lo, _ = fresh_state(S, t2, fixed_in.astype(np.int8))            # at IN
    M_hi, h_hi, _ = fresh_state(S, t2, (fixed_in | free).astype(np.int8))   # at IN ∪ FREE
    x_lo, x_hi = np.diag(M_lo).copy(), np.diag(M_hi).copy()
    args = tuple(np.array(a, dtype=float, order="C") for a in
                 (market.sigma2, market.noise_var, objective.c, objective.d, objective.e, objective.k))
    b1 = node_bound(state, x_lo, h_lo, x_hi, h_hi, *args)
    b2 = modular_bound(state, M_lo, M_hi, x_lo, h_lo, x_hi, h_hi, *args, np.empty(3 * n))
    return float(min(b1, b2))


def rows_node_bounds(market, objective, state, rows, sweeps: int = 3, planes_at=None) -> dict:
    """The node bounds under linear rows, from fresh posteriors (tests and diagnostics).

    ``state`` (n,) 0 free, 1 in, 2 out; ``rows`` a :class:`~dm_opt.gaussian.constraints.LinearRows`.
    Returns the interval and modular bounds (``"interval"``, ``"modular"``: valid for every
    completion) and their Lagrangian versions (``"interval_rows"``, ``"modular_rows"``:
    :func:`~dm_opt.gaussian.kernels.bnb.row_lagrange_bound`, valid for every completion meeting the
    rows within twice their slack), with ``λ`` started at 0 and ``sweeps`` coordinate rounds.
    With ``planes_at`` (a relaxed profile) also the tangent-plane bound at that point and its
    Lagrangian version (``"tangent"``, ``"tangent_rows"``; absent when :func:`tangent_planes`
    does not cover the objective).
    """
    state = np.asarray(state, dtype=np.int8)
    n = state.size
    S = np.array(market.cov, dtype=float, order="C")
    t2 = np.array(market.noise_var, dtype=float, order="C")
    M_lo, h_lo, _ = fresh_state(S, t2, (state == 1).astype(np.int8))
    M_hi, h_hi, _ = fresh_state(S, t2, (state != 2).astype(np.int8))
    x_lo, x_hi = np.diag(M_lo).copy(), np.diag(M_hi).copy()
    args = tuple(np.array(a, dtype=float, order="C") for a in
                 (market.sigma2, market.noise_var, objective.c, objective.d, objective.e, objective.k))
    A = np.array(rows.A, dtype=float, order="C")
    act_in = A @ (state == 1)
    L = rows.lb - 2 * rows.slack - act_in
    U = rows.ub + 2 * rows.slack - act_in
    out = {}
    v_in, v_out = np.empty(n), np.empty(n)
    scratch = (np.empty(n), np.empty(n + 1), np.empty(n + 1))
    free = state == 0
    const = interval_parts(state, x_lo, h_lo, x_hi, h_hi, *args, v_out, v_in)
    out["interval"] = float(const + np.sum(np.maximum(v_in, v_out)[free]))
    out["interval_rows"] = float(row_lagrange_bound(state, const, v_out, v_in, A, L, U, np.zeros(rows.m), sweeps,
                                                    *scratch))
    const = modular_parts(state, M_lo, M_hi, x_lo, h_lo, x_hi, h_hi, *args, np.empty(3 * n), v_out, v_in)
    out["modular"] = float(const + np.sum(np.maximum(v_in, v_out)[free]))
    out["modular_rows"] = float(row_lagrange_bound(state, const, v_out, v_in, A, L, U, np.zeros(rows.m), sweeps,
                                                   *scratch))
    planes = None if planes_at is None else tangent_planes(S, t2, objective, planes_at)
    if planes is not None:
        PA, PB = planes
        const = tangent_parts(state, PA, PB, np.maximum(PB[0], PB[1]), v_out, v_in)
        out["tangent"] = float(const + np.sum(np.maximum(v_in, v_out)[free]))
        out["tangent_rows"] = float(row_lagrange_bound(state, const, v_out, v_in, A, L, U, np.zeros(rows.m),
                                                       sweeps, *scratch))
    return out


# ------------------------------------------------------------- tangent planes
#: Slack added to a tangent-plane bound per unit of ``n · eps · κ · scale`` (round-off of the
#: relaxed posterior, ``κ`` = :func:`~dm_opt.gaussian.kernels.posterior.signal_condition`).
TANGENT_SLACK_FACTOR = 100.0
#: Tangent planes are used only when that slack is below this fraction of the tie tolerance.
TANGENT_SLACK_MAX = 0.05


def relaxed_posterior(cov: np.ndarray, noise_var: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``P(a) = (Σ⁻¹ + diag(a/τ²))⁻¹`` for a *relaxed* profile ``a ∈ [0, 1]ⁿ``.

    For 0/1 profiles it is the posterior covariance.  Computed without ``Σ⁻¹`` as
    ``Σ − Σ W (T + W Σ W)⁻¹ W Σ`` with ``W = diag √a``, ``T = diag τ²`` (Woodbury; the
    matrix factored is a scaled signal covariance, conditioned as in
    :func:`~dm_opt.gaussian.kernels.posterior.signal_condition`).
    """
    S = np.asarray(cov, dtype=float)
    w = np.sqrt(np.clip(np.asarray(a, dtype=float), 0.0, 1.0))
    C = w[:, None] * S * w[None, :] + np.diag(np.asarray(noise_var, dtype=float))
    L = np.linalg.cholesky(C)
    Y = np.linalg.solve(L, w[:, None] * S)
    P = S - Y.T @ Y
    return 0.5 * (P + P.T)


def tangent_planes(cov, noise_var, objective, at):
    """Global linear upper bounds on every user's term, from tangents at the relaxed point ``at``.

    Returns ``(A, B)`` of shapes (2, n) and (2, n, n) (``B[s, i, i] = 0``) such that for
    every profile ``a ∈ {0,1}ⁿ`` and user ``i`` with ``a_i = s``, her term of ``f``,
    ``T_i(a) = c_i I_i(a) + a_i (d_i I_i(a) − e_i g_i(P_ii(a)) − k_i)``, satisfies
    ``T_i(a) ≤ A[s, i] + Σ_{j≠i} B[s, i, j] a_j``; or ``None`` when the objective is not
    covered (some ``c_i < 0`` or ``e_i < 0``, or a sharer term increasing somewhere).

    Why (docs/exact_solvers_bnb.md): ``P_ii(a)`` is convex in relaxed ``a ∈ [0,1]ⁿ``
    (matrix inversion is operator convex and ``Σ⁻¹ + diag(a/τ²)`` is affine in ``a``).
    With her own choice fixed at ``s``, ``T_i = φ_i^s(P_ii)`` with ``φ^0(x) = c(σ²−x)`` and
    ``φ^1(x) = (c+d)(σ²−x) − e x²/(τ²−x) − k``; both are concave, and nonincreasing on
    every ``x ≥ P_ii(1)`` when ``c ≥ 0``, ``e ≥ 0`` and ``φ^1'(P_ii(1)) ≤ 0`` (checked).  A
    concave nonincreasing function of a convex function is concave, so ``T_i`` is a
    concave function of ``a_{−i} ∈ [0,1]^{n−1}`` and lies below its tangent at
    ``(at_{−i}, s)``, whose slopes are ``−φ'(x)·P_ij²/τ_j² ≥ 0`` (``∂P_ii/∂a_j =
    −P_ij²/τ_j²``), with ``P`` the relaxed posterior at ``(at_{−i}, s)``: row ``i`` of
    ``P(at)`` scaled by ``τ_i²/(τ_i² + (s − at_i) P_ii)`` (Sherman–Morrison).
    """
    c, d, e, k = (np.asarray(x, dtype=float) for x in (objective.c, objective.d, objective.e, objective.k))
    if np.any(c < 0) or np.any(e < 0):
        return None
    S = np.asarray(cov, dtype=float)
    t2 = np.asarray(noise_var, dtype=float)
    s2 = np.diag(S).copy()
    n = S.shape[0]
    at = np.clip(np.asarray(at, dtype=float), 0.0, 1.0)
    cd = c + d
    x_all = np.diag(relaxed_posterior(S, t2, np.ones(n)))
    h_all = t2 - x_all
    if np.any(h_all <= 0) or np.any(-cd - e * ((t2 / h_all) ** 2 - 1.0) > 0):
        return None
    P = relaxed_posterior(S, t2, at)
    p = np.diag(P)
    A = np.zeros((2, n))
    B = np.zeros((2, n, n))
    for s in (0, 1):
        delta = s - at
        den = t2 + delta * p
        R = P * (t2 / den)[:, None]                 # row i: P(at with a_i = s)_i
        x = np.diag(R).copy()
        if s == 0:
            phi = c * (s2 - x)
            slope = c                               # −φ'
        else:
            h = t2 * (t2 - at * p) / den            # τ² − x without cancellation
            phi = cd * (s2 - x) - e * x * x / h - k
            slope = cd + e * ((t2 / h) ** 2 - 1.0)
        G = R * R / t2[None, :]
        np.fill_diagonal(G, 0.0)
        B[s] = slope[:, None] * G
        A[s] = phi - B[s] @ at
    return A, B


def tangent_slack(cov, noise_var, objective) -> float:
    """Absolute slack covering the round-off of :func:`tangent_planes` (see ``TANGENT_SLACK_FACTOR``).

    ``n · eps · κ · max(1, max σ_i²/τ_i²)² · scale``: the relaxed posterior ``P = Σ − YᵀY`` is
    accurate to about ``eps · κ · σ²`` in absolute terms, and a sharer's ``h = τ² − x`` (``x ≈ τ²``
    when her noise is small) then carries a relative error of about ``eps · (σ²/τ²)²``, which the
    own-signal term and its slopes inherit.  Without the ratio factor, planes at ``σ²/τ² ≈ 1e8``
    cut off the optimum of a 5-user equilibrium with rows
    (tests/reliability/test_bad_inputs_round3.py); with it they are simply not used there."""
    S = np.asarray(cov, dtype=float)
    t2 = np.asarray(noise_var, dtype=float)
    kappa = signal_condition(S, t2)
    ratio = max(1.0, float(np.max(np.diag(S) / t2)))
    return float(TANGENT_SLACK_FACTOR * S.shape[0] * np.finfo(float).eps * kappa * ratio * ratio
                 * objective.scale(np.diag(S)))
