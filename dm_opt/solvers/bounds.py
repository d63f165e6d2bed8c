"""Monotone interval bounds (SPEC §1.3).

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

from ..markets.gaussian import own_signal_gain


def interval_bound(market, objective, fixed_in: np.ndarray, free: np.ndarray) -> float:
    """Upper bound on ``objective`` over all completions (0/1 masks ``fixed_in``, ``free``)."""
    n = market.n
    fixed_in = np.asarray(fixed_in, dtype=bool)
    free = np.asarray(free, dtype=bool)
    lo_set = np.flatnonzero(fixed_in)
    hi_set = np.flatnonzero(fixed_in | free)
    x_lo = market._posterior(lo_set, full=False)    # posterior variances at IN (largest)
    x_hi = market._posterior(hi_set, full=False)    # at IN ∪ FREE (smallest)
    s2, t2 = market.sigma2, market.noise_var
    I_lo, I_hi = s2 - x_lo, s2 - x_hi
    c, d, e = objective.c, objective.d, objective.e
    total = float(np.sum(np.where(c > 0, c * I_hi, c * I_lo)))
    x_share_max = s2 * t2 / (s2 + t2)               # largest P_ii of any sharer
    sharer = np.where(d > 0, d * I_hi, d * I_lo)
    sharer = sharer + np.where(e >= 0, -e * own_signal_gain(np.minimum(x_hi, x_share_max), t2),
                               -e * own_signal_gain(x_share_max, t2))
    sharer = sharer - objective.k
    total += float(np.sum(sharer[fixed_in]))
    total += float(np.sum(np.maximum(sharer[free & ~fixed_in], 0.0)))
    return total
