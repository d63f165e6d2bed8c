"""Is the mechanism of Thm B-2 efficient?  Prop B-2's surplus bound and the Thm B-3 classification
(AMMO App. B: the analogues of Lemma 3 and Thm 3 with virtual values)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dm_opt.core.result import Result, Termination
from dm_opt.gaussian.valuations.market import ValuationMarket


def prop_b2_bound(vm: ValuationMarket, reported=None) -> float:
    """Prop B-2: ``Σ_{v_i ≤ 1} (1 − v_i) I_i(V) − Σ_{v_i > 1} (v_i − 1) I_i(V_Φ^{(l)})``,
    an upper bound on the surplus of ``a^E(v)``; ``V_Φ^{(l)} = {i : Φ_i(v_i) ≤ 1}``."""
    v = vm._reported(reported)
    m = vm.market
    phi = vm.virtual_values(v)
    low = v <= 1
    I_all = m.leakage(np.ones(m.n, dtype=np.int8))
    I_phi = m.leakage((phi <= 1).astype(np.int8))
    return float(np.sum((1 - v[low]) * I_all[low]) - np.sum((v[~low] - 1) * I_phi[~low]))


#: Relative margin by which a value must clear a threshold to count (at equality the proofs give ties).
THRESHOLD_RTOL = 1e-9


@dataclass(frozen=True)
class ThmB3Case(Result):
    """Which part of Thm B-3 applies at the reports ``v`` (correlation = ``|Σ_ij| > corr_tol``).

    ``low`` = ``V^(l)`` (v ≤ 1), ``low_phi`` = ``V_Φ^(l)`` (Φ(v) ≤ 1), ``high`` = ``V^(h)``.
    Parts: ``part1`` (high users uncorrelated with everybody and ``V^(l) = V_Φ^(l)``: efficient);
    ``part2`` (a high user correlated with ``V_Φ^(l)``; ``part2_thresholds[j] = 1 + Σ_{V^(l)} σ² / I_j(V_Φ^(l))``,
    the analogue of Thm 3.2's proof: above it the equilibrium surplus is negative);
    ``part3`` (high users correlated only with low users whose Φ > 1: no computable threshold);
    ``part4`` (high users correlated only among themselves; ``part4_thresholds[i]`` is the bound on
    ``Φ_i(v_i)`` from Thm 3.3's proof applied to virtual values: below it some high user shares);
    ``none`` (high users uncorrelated with everybody but some low-value user has Φ > 1 — the case the
    paper's part 1 excludes) or ``no_high_value_users``.

    Result protocol (:class:`~dm_opt.core.result.Result`): a closed-form classification, always
    complete (``status`` ``optimal``), with no scalar objective (``objective``/``bound`` NaN).
    """

    family: ClassVar[str] = "gaussian"

    case: str
    high: tuple
    low: tuple
    low_phi: tuple
    part2_thresholds: dict = field(default_factory=dict)
    part4_thresholds: dict = field(default_factory=dict)
    predicts_efficient: bool = False
    predicts_inefficient: bool = False

    @property
    def status(self) -> Termination:
        return Termination.OPTIMAL

    def _has_answer(self) -> bool:
        return True


def thm_b3_case(vm: ValuationMarket, reported=None, corr_tol: float | None = None) -> ThmB3Case:
    """Classify the reports by Thm B-3 (analogue of Thm 3 with virtual values)."""
    v = vm._reported(reported)
    m = vm.market
    phi = vm.virtual_values(v)
    S = m.cov
    if corr_tol is None:
        corr_tol = 1e-12 * float(np.max(m.sigma2))
    high = [int(i) for i in np.flatnonzero(v > 1)]
    low = [int(i) for i in np.flatnonzero(v <= 1)]
    low_phi = [int(i) for i in np.flatnonzero(phi <= 1)]
    corr = lambda i, j: abs(S[i, j]) > corr_tol
    key = (tuple(high), tuple(low), tuple(low_phi))
    if not high:
        return ThmB3Case("no_high_value_users", *key, predicts_efficient=(low == low_phi))
    h_phi = [j for j in high if any(corr(j, l) for l in low_phi)]
    if h_phi:
        a = np.zeros(m.n, dtype=np.int8)
        a[low_phi] = 1
        I = m.leakage(a)
        total_low = float(np.sum(m.sigma2[low])) if low else 0.0
        thr = {j: (1.0 + total_low / I[j] if I[j] > 0 else math.inf) for j in h_phi}
        return ThmB3Case("part2", *key, part2_thresholds=thr,
                         predicts_inefficient=any(v[j] > t * (1 + THRESHOLD_RTOL) for j, t in thr.items()))
    if any(corr(j, l) for j in high for l in low):
        return ThmB3Case("part3", *key)
    hh = sorted({x for i in high for k in high if i < k and corr(i, k) for x in (i, k)})
    if hh:
        thr = {}
        for i in hh:
            a = np.zeros(m.n, dtype=np.int8)
            a[i] = 1
            I = m.leakage(a)
            thr[i] = float((I[i] + sum(I[k] for k in high if k != i)) / I[i])
        return ThmB3Case("part4", *key, part4_thresholds=thr,
                         predicts_inefficient=any(phi[i] < t * (1 - THRESHOLD_RTOL) for i, t in thr.items()))
    if low == low_phi:
        return ThmB3Case("part1", *key, predicts_efficient=True)
    return ThmB3Case("none", *key)


__all__ = ["prop_b2_bound", "THRESHOLD_RTOL", "ThmB3Case", "thm_b3_case"]
