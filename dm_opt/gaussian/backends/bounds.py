"""Monotone interval bounds (SPEC §1.3), as one function for any partial profile.

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


def interval_bound(market, objective, fixed_in: np.ndarray, free: np.ndarray) -> float:
    """Upper bound on ``objective`` over all completions (0/1 masks ``fixed_in``, ``free``).

    The smaller of the per-user interval bound
    (:func:`dm_opt.gaussian.kernels.bnb.node_bound`, each user's terms maximised
    exactly over her posterior-variance interval, the free users' own signal
    included or removed) and the modular Woodbury bound
    (:func:`dm_opt.gaussian.kernels.bnb.modular_bound`); both are valid, see
    ``docs/exact_solvers_bnb.md``.  Users neither fixed in nor free are out.
    """
    from dm_opt.gaussian.kernels.bnb import modular_bound, node_bound
    from dm_opt.gaussian.kernels.posterior import fresh_state

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
