"""VCG pricing (AMMO Prop B-1): first best for the reports and one extra optimisation per user.

``p_i = h_i(a(v)) − min_a h_i(a)`` with ``h_i(a) = I_i(a) + Σ_{j≠i} (1 − v_j) I_j(a)``.  Truthful
reporting is dominant for the full utility ``p_i − v_i I_i(a)``, so the second best equals the
first best.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dm_opt.core.limits import Deadline
from dm_opt.core.result import Result, Termination
from dm_opt.core.validate import as_vector
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.objectives import LeakageObjective
from dm_opt.gaussian.parametric import Stopped, interrupted, json_num, no_partial_answer, solve_exact
from dm_opt.gaussian.valuations.allocation import _incumbent_note
from dm_opt.gaussian.valuations.market import ValuationMarket


@dataclass(frozen=True)
class VCGOutcome(Result):
    """Prop B-1: first-best ``profile`` for the reports and prices ``p_i ≥ 0`` paid to every user.

    Limits: after a time limit or Ctrl-C (``status``) the first best is still proven (it is
    solved first), ``prices[i]``/``h_min[i]`` are NaN for users whose ``min_a h_i`` was not
    proven, and ``price_bounds[i] = (lo, hi)`` is a proven interval: from the stopped solve's
    incumbent and bound when it has one, else ``min_a h_i ∈ [Σ_j min(w_j, 0) I_j(1), h_i(∅) = 0]``
    (leakage is monotone, ``0 ≤ I_j(a) ≤ I_j(1)``).

    Result protocol (:class:`~dm_opt.core.result.Result`): ``objective`` and ``bound`` are the
    first-best ``surplus`` (solved first, always proven); ``seconds`` is the wall-clock time of
    all solves.
    """

    family: ClassVar[str] = "gaussian"

    reported: np.ndarray
    profile: np.ndarray
    prices: np.ndarray
    surplus: float
    h_at_profile: np.ndarray
    h_min: np.ndarray
    status: Termination = Termination.OPTIMAL
    price_bounds: np.ndarray | None = None
    message: str = ""
    seconds: float = field(default=0.0, compare=False)     # wall-clock; not part of the answer

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.price_bounds is None:
            object.__setattr__(self, "price_bounds", np.column_stack([self.prices, self.prices]))

    @property
    def complete(self) -> bool:
        return self.status is Termination.OPTIMAL

    @property
    def objective(self) -> float:
        return float(self.surplus)

    @property
    def bound(self) -> float:
        return float(self.surplus)

    def utility(self, market: GaussianMarket, user: int, true_value: float) -> float:
        """``p_i − v_i I_i(a)`` for user ``i`` with true value ``true_value``."""
        return float(self.prices[user] - true_value * market.leakage(self.profile)[user])

    def to_dict(self):
        return {**self.protocol_dict(), "status": str(self.status), "message": self.message,
                "reported": self.reported.tolist(), "profile": [int(x) for x in self.profile],
                "prices": [json_num(x) for x in self.prices],
                "price_bounds": [[json_num(x) for x in b] for b in self.price_bounds],
                "surplus": self.surplus}


def vcg(market: GaussianMarket | ValuationMarket, reported=None, *, method: str = "auto",
        time_limit=None) -> VCGOutcome:
    """VCG-style pricing of Prop B-1 (one first-best solve plus one extra solve per user).

    ``a(v) = argmax_a Σ (1 − v_j) I_j(a)`` and
    ``p_i(v) = h_i(a(v)) − min_a h_i(a)``, ``h_i(a) = I_i(a) + Σ_{j≠i} (1 − v_j) I_j(a)``.
    ``min_a h_i`` is solved as ``max_a Σ w_j I_j(a)`` with ``w = −(1 − v)``, ``w_i = −1``.
    User ``i``'s utility ``p_i − v_i I_i(a)`` equals the reported-values surplus at
    ``a`` minus a term independent of her report, so truth-telling is dominant and
    the implemented profile is the first best for the true values.

    ``time_limit`` (seconds) / Ctrl-C: prices for the users done, proven bounds for the others
    (:class:`VCGOutcome`); if the first best is not proven, LimitExceeded / KeyboardInterrupt.
    """
    t0 = time.perf_counter()
    deadline = Deadline.of(time_limit)
    m = market.market if isinstance(market, ValuationMarket) else market
    v = m.values if reported is None else as_vector("reported", reported, m.n, nonnegative=True)
    v = np.asarray(v, dtype=float)
    try:
        fb = solve_exact(deadline, m, LeakageObjective.for_problem("first_best", v), method)
    except Stopped as s:
        no_partial_answer(s.status, f"VCG: first best not proven optimal ({s.message}){_incumbent_note(s)}; "
                          f"no prices computed")
    a = fb.profile
    leak = m.leakage(a)
    leak_all = m.leakage(np.ones(m.n, dtype=np.int8))
    h_at = np.empty(m.n)
    h_min = np.full(m.n, math.nan)
    f_bounds = np.zeros((m.n, 2))             # proven [lower, upper] on max_a Σ (−w_j) I_j(a) = −min_a h_i
    zeros = np.zeros(m.n)
    stop = None
    for i in range(m.n):
        w = 1.0 - v.copy()
        w[i] = 1.0
        h_at[i] = float(np.dot(w, leak))
        f_bounds[i] = 0.0, float(np.sum(np.maximum(-w, 0.0) * leak_all))
        if stop is not None:
            continue
        try:
            res = solve_exact(deadline, m, LeakageObjective.weighted(-w, zeros, name="vcg_min"), method)
            h_min[i] = -float(res.objective)
            f_bounds[i] = res.objective, res.objective
        except Stopped as s:
            stop = s
            if s.result is not None and s.result.has_solution:
                f_bounds[i] = max(0.0, s.result.objective), min(f_bounds[i, 1], s.result.bound)
        except KeyboardInterrupt:
            stop = interrupted()
    # bounds that meet prove the minimum without a solve (e.g. all w_j >= 0: min_a h_i = h_i(∅) = 0)
    met = np.isnan(h_min) & (f_bounds[:, 0] == f_bounds[:, 1])
    h_min[met] = -f_bounds[met, 0]
    prices = h_at - h_min
    bounds = np.column_stack([h_at + f_bounds[:, 0], h_at + f_bounds[:, 1]])
    if stop is None:
        return VCGOutcome(v, a, prices, float(np.dot(1 - v, leak)), h_at, h_min, seconds=time.perf_counter() - t0)
    return VCGOutcome(v, a, prices, float(np.dot(1 - v, leak)), h_at, h_min, stop.status, bounds,
                      f"{stop.message}: prices exact for users {np.flatnonzero(np.isfinite(h_min)).tolist()}, "
                      f"proven bounds for the others", time.perf_counter() - t0)


__all__ = ["VCGOutcome", "vcg"]
