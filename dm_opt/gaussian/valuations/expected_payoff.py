"""Expected platform payoff of Thm B-2's mechanism (AMMO App. B).

``E_v[max_a Σ (1 − Φ_i) I_i(a) + Φ_i I_i(a_{−i},0)]``, by exact summation over the product of
supports for discrete tables and by seeded Monte Carlo with a 95% normal confidence interval
otherwise.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import LimitExceeded, ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Result, Termination
from dm_opt.gaussian.parametric import Stopped, interrupted, json_num, no_partial_answer, solve_exact
from dm_opt.gaussian.valuations.allocation import virtual_objective
from dm_opt.gaussian.valuations.market import ValuationMarket

#: Largest number of valuation profiles summed exactly by :func:`expected_platform_payoff`.
MAX_EXACT_PROFILES = 200_000


@dataclass(frozen=True)
class ExpectedPayoff(Result):
    """``E_v[platform payoff]`` (Thm B-2).  ``method`` is ``"exact"`` (discrete tables, a finite sum;
    ``std_error = 0``) or ``"monte_carlo"`` (``samples`` draws with ``seed``; 95% normal CI).

    Limits: ``status`` ``optimal`` = every requested term was computed.  After a time limit or
    Ctrl-C: *exact* — ``mean`` is NaN and ``[lower, upper]`` (also ``ci_low``, ``ci_high``) is a
    proven interval for the expectation: the ``samples`` report vectors done contribute exactly,
    each remaining one between 0 (nobody shares) and ``F(φ_min)`` — the optimum at the smallest
    virtual values, the objective being nonincreasing in every ``Φ_j`` — or ``Σ_j I_j(1)`` if that
    vector was not solved; *Monte Carlo* — mean and CI of the ``samples`` draws done (of
    ``requested``), a smaller but still unbiased sample.  ``lower``/``upper`` are NaN for Monte Carlo.

    Result protocol (:class:`~dm_opt.core.result.Result`): ``objective`` is ``mean``; ``bound`` the
    proven upper end ``upper`` of an exact sum (NaN for Monte Carlo, which proves nothing);
    ``seconds`` is the wall-clock time of all solves.
    """

    family: ClassVar[str] = "gaussian"

    mean: float
    ci_low: float
    ci_high: float
    std_error: float
    method: str
    samples: int
    seed: int | None = None
    status: Termination = Termination.OPTIMAL
    lower: float = math.nan
    upper: float = math.nan
    requested: int | None = None
    message: str = ""
    seconds: float = field(default=0.0, compare=False)     # wall-clock; not part of the answer

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.requested is None:
            object.__setattr__(self, "requested", self.samples)

    @property
    def objective(self) -> float:
        return float(self.mean)

    @property
    def bound(self) -> float:
        if self.method != "exact":
            return math.nan
        return float(self.mean if math.isnan(self.upper) else self.upper)

    def to_dict(self):
        d = {**self.protocol_dict(), **self.__dict__}
        d["status"] = str(self.status)
        for k in ("mean", "ci_low", "ci_high", "std_error", "lower", "upper"):
            d[k] = json_num(d[k])
        return d


def expected_platform_payoff(vm: ValuationMarket, *, samples: int = 1000, seed: int = 0,
                             method: str = "auto", max_profiles: int = MAX_EXACT_PROFILES,
                             time_limit=None) -> ExpectedPayoff:
    """``E_v[max_a Σ (1 − Φ_i(v_i)) I_i(a) + Φ_i(v_i) I_i(a_{−i}, 0)]`` (Thm B-2).

    All-discrete: exact sum over ``Π_i |support_i|`` report vectors (at most
    ``max_profiles``).  Otherwise Monte Carlo with ``samples`` seeded draws and a
    95% confidence interval ``mean ± 1.96 · sd / √samples``.  ``time_limit`` (seconds) /
    Ctrl-C: partial sums with proven bounds, or fewer draws (see :class:`ExpectedPayoff`);
    with nothing computed (or fewer than 2 draws) LimitExceeded / KeyboardInterrupt.
    """
    t0 = time.perf_counter()
    deadline = Deadline.of(time_limit)
    m = vm.market
    if all(d.is_discrete for d in vm.valuations):
        sizes = [d.values.size for d in vm.valuations]
        total = int(np.prod(sizes, dtype=np.int64))
        if total > max_profiles:
            raise LimitExceeded(f"exact expectation sums {total} report vectors > max_profiles = {max_profiles}; "
                                f"pass a larger max_profiles")
        idx_min = tuple(int(np.argmin(d.phi_table)) for d in vm.valuations)
        mean = mass = 0.0
        done = 0
        top = None
        stop = None
        try:
            for idx in itertools.product(*(range(s) for s in sizes)):
                prob = float(np.prod([d.probs[k] for d, k in zip(vm.valuations, idx, strict=True)]))
                phi = np.array([d.phi_table[k] for d, k in zip(vm.valuations, idx, strict=True)])
                value = solve_exact(deadline, m, virtual_objective(phi), method).objective
                mean += prob * value
                mass += prob
                done += 1
                if idx == idx_min:
                    top = float(value)
        except Stopped as s:
            stop = s
        except KeyboardInterrupt:
            stop = interrupted()
        if stop is None:
            return ExpectedPayoff(mean, mean, mean, 0.0, "exact", total, None, lower=mean, upper=mean,
                                  seconds=time.perf_counter() - t0)
        if done == 0:
            no_partial_answer(stop.status, f"expected payoff: {stop.message} before the first report vector")
        if top is None:
            top = float(np.sum(m.leakage(np.ones(m.n, dtype=np.int8))))
        rest = max(0.0, 1.0 - mass)
        lo, hi = mean, mean + rest * top
        return ExpectedPayoff(math.nan, lo, hi, math.nan, "exact", done, None, stop.status, lo, hi, total,
                              f"{stop.message}: {done} of {total} report vectors summed "
                              f"(probability {mass:.6g}); the rest bounded in [0, {top:.6g}] each",
                              time.perf_counter() - t0)
    if not (isinstance(samples, int) and samples >= 2):
        raise ProblemError(f"samples must be an integer >= 2, got {samples!r}")
    rng = np.random.default_rng(seed)
    draws = np.column_stack([d.sample(rng, samples) for d in vm.valuations])
    vals = np.empty(samples)
    done = 0
    stop = None
    try:
        for s in range(samples):
            phi = np.array([float(d.virtual_value(x)) for d, x in zip(vm.valuations, draws[s], strict=True)])
            vals[s] = solve_exact(deadline, m, virtual_objective(phi), method).objective
            done += 1
    except Stopped as st:
        stop = st
    except KeyboardInterrupt:
        stop = interrupted()
    if stop is not None and done < 2:
        no_partial_answer(stop.status, f"expected payoff: {stop.message} after {done} Monte Carlo draws (need 2)")
    vals = vals[:done]
    mean = float(vals.mean())
    se = float(vals.std(ddof=1) / math.sqrt(done))
    if stop is None:
        return ExpectedPayoff(mean, mean - 1.96 * se, mean + 1.96 * se, se, "monte_carlo", samples, seed,
                              seconds=time.perf_counter() - t0)
    return ExpectedPayoff(mean, mean - 1.96 * se, mean + 1.96 * se, se, "monte_carlo", done, seed, stop.status,
                          requested=samples, message=f"{stop.message}: {done} of {samples} draws",
                          seconds=time.perf_counter() - t0)


__all__ = ["MAX_EXACT_PROFILES", "ExpectedPayoff", "expected_platform_payoff"]
