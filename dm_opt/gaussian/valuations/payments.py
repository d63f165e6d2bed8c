"""The platform's optimal mechanism with unknown valuations: payments of Thm B-2 and its IC check (AMMO App. B).

* **Payments** (Thm B-2, eq. B-18):
  ``p_i(v) = ∫_{v_i}^{v_max} A_i(x, v_{−i}) dx + v_i A_i(v_i, v_{−i})``, an exact finite sum over
  the steps of :func:`~dm_opt.gaussian.valuations.allocation.allocation_steps`.  For discrete
  tables the payment is the exact sum ``v^k A(v^k) + Σ_{m>k} (v^m − v^{m−1}) A(v^m)``.

Known gap in the paper (reported by the tests, see ``docs/extensions_valuations_taxes.md``):
the IC proof of Thm B-2 works with the *rent* ``p_i − v A_i`` and ignores that a
misreport can change the others' sharing decisions and hence the externality
``v_i I_i(a_{−i}, 0)``; :func:`ic_violations` checks both notions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Result, Termination
from dm_opt.gaussian.parametric import Stopped, interrupted, json_num, no_partial_answer, solve_exact
from dm_opt.gaussian.valuations.allocation import (
    _allocation_steps,
    _assumption2_ok,
    _incumbent_note,
    _phi_range,
    virtual_objective,
)
from dm_opt.gaussian.valuations.market import ValuationMarket


@dataclass(frozen=True)
class MechanismOutcome(Result):
    """Thm B-2 at one report vector ``v``.

    ``profile`` is ``a^E(v)``; ``payments`` ``p_i^E(v)`` (0 for non-sharers);
    ``allocation`` ``A_i(v_i, v_{−i})``; ``rents`` ``p_i − v_i A_i`` (information rents, ≥ 0);
    ``virtual_objective`` the maximised virtual objective; ``platform_payoff``
    ``Σ I_i(a) − Σ p_i``; ``surplus`` ``Σ (1 − v_i) I_i(a)`` at the reported values;
    ``steps`` the exact step functions used for continuous users (``None`` for discrete).

    Limits: ``status`` is ``optimal`` when every payment is exact.  After a time limit or
    Ctrl-C (``time_limit``/``interrupted``) the allocation is still a proven optimum (it is
    solved first; without it there is no outcome), ``payments_exact[i]`` says whose payments
    were completed, the others are NaN (so are their rents and ``platform_payoff``), and
    ``payment_bounds[i] = (lo, hi)`` / ``platform_payoff_bounds`` are proven intervals
    (equal to the payment for exact users).  For a user not reached, ``A_i(x) ∈ [0, A_i(v_i)]``
    on ``[v_i, x_max]`` and 0 beyond (``A_i`` nonincreasing: envelope slope, Φ nondecreasing),
    so ``p_i ∈ [v_i A_i, v_i A_i + A_i (x_max − v_i)]``; partly searched users use the proven
    steps and the gap bounds of :class:`AllocationSteps` (discrete tables: the levels solved
    so far, ``0 ≤ A_m ≤`` the last solved level).

    Result protocol (:class:`~dm_opt.core.result.Result`): ``objective`` is ``platform_payoff``
    (NaN until every payment is exact), ``bound`` the upper end of ``platform_payoff_bounds``; the
    allocation is always proven, so an outcome after a stop is ``feasible``; ``seconds`` is the
    wall-clock time of the allocation and payment solves.
    """

    family: ClassVar[str] = "gaussian"

    reported: np.ndarray
    virtual_values: np.ndarray
    profile: np.ndarray
    payments: np.ndarray
    allocation: np.ndarray
    rents: np.ndarray
    virtual_objective: float
    platform_payoff: float
    surplus: float
    steps: tuple = field(default_factory=tuple)
    result: object = None
    status: Termination = Termination.OPTIMAL
    payment_bounds: np.ndarray | None = None
    payments_exact: np.ndarray | None = None
    platform_payoff_bounds: tuple | None = None
    message: str = ""
    seconds: float = field(default=0.0, compare=False)     # wall-clock; not part of the answer

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.payment_bounds is None:
            object.__setattr__(self, "payment_bounds", np.column_stack([self.payments, self.payments]))
        if self.payments_exact is None:
            object.__setattr__(self, "payments_exact", np.ones(len(self.payments), dtype=bool))
        if self.platform_payoff_bounds is None:
            object.__setattr__(self, "platform_payoff_bounds", (self.platform_payoff, self.platform_payoff))

    @property
    def complete(self) -> bool:
        return self.status is Termination.OPTIMAL

    @property
    def objective(self) -> float:
        return float(self.platform_payoff)

    @property
    def bound(self) -> float:
        return float(self.platform_payoff_bounds[1])

    def _has_answer(self) -> bool:
        return True                # the allocation is proven optimal whenever an outcome exists

    def to_dict(self) -> dict:
        num = lambda xs: [json_num(x) for x in xs]   # noqa: E731  (NaN = not computed -> null)
        return {
            **self.protocol_dict(),
            "status": str(self.status), "message": self.message,
            "reported": self.reported.tolist(), "virtual_values": self.virtual_values.tolist(),
            "profile": [int(x) for x in self.profile], "payments": num(self.payments),
            "payments_exact": [bool(x) for x in self.payments_exact],
            "payment_bounds": [num(b) for b in self.payment_bounds],
            "allocation": self.allocation.tolist(), "rents": num(self.rents),
            "virtual_objective": self.virtual_objective, "platform_payoff": json_num(self.platform_payoff),
            "platform_payoff_bounds": num(self.platform_payoff_bounds),
            "surplus": self.surplus,
            "breakpoints": {str(s.user): s.edges.tolist() for s in self.steps if s is not None},
        }


def _coarse_payment_bounds(vm: ValuationMarket, i: int, v: np.ndarray, A_v: float) -> tuple[float, float]:
    """``p_i ∈ [v_i A_i(v_i), v_i A_i(v_i) + top (x_max − v_i)]`` without any further solve (see MechanismOutcome)."""
    d = vm.valuations[i]
    m = vm.market
    if _assumption2_ok(vm, i):
        top = A_v                                            # A_i nonincreasing in x
    else:                                                    # any sharer's own leakage is at most g_i(P_ii({i}))
        top = float(m.own_leakage(np.eye(m.n, dtype=np.int8)[i])[i])
    if d.is_discrete:
        x_hi = d.upper
    else:
        x_hi = max(d.inverse_virtual_value(_phi_range(vm, i, float(v[i]))[1]), float(v[i]))
    base = float(v[i]) * A_v
    return base, base + top * (x_hi - float(v[i]))


def _discrete_payment(vm: ValuationMarket, i: int, v: np.ndarray, phi: np.ndarray, method: str,
                      deadline: Deadline, A_k: float):
    """(lower, upper, stop or None): the exact sum ``v^k A_k + Σ_{m>k} (v^m − v^{m−1}) A_m`` when every level
    was solved (``A_k`` is the allocation's own term); after a stop, the unsolved ``A_m ∈ [0, A_last]``."""
    d = vm.valuations[i]
    k = d.index(float(v[i]))
    m = vm.market
    A = np.zeros(d.values.size)
    A[k] = A_k                                   # = the solve at Φ_i = φ^k, which is the allocation itself
    done = k + 1
    stop = None
    try:
        for j in range(k + 1, d.values.size):
            w = phi.copy()
            w[i] = d.phi_table[j]
            res = solve_exact(deadline, m, virtual_objective(w), method)
            A[j] = float(m.own_leakage(res.profile)[i])
            done = j + 1
    except Stopped as s:
        stop = s
    except KeyboardInterrupt:
        stop = interrupted()
    gaps = np.diff(d.values)
    if stop is None:
        exact = float(d.values[k] * A[k] + np.dot(gaps[k:], A[k + 1:]))
        return exact, exact, None
    known = float(d.values[k] * A[k] + np.dot(gaps[k:done - 1], A[k + 1:done]))
    top = A[done - 1] if _assumption2_ok(vm, i) else float(m.own_leakage(np.eye(m.n, dtype=np.int8)[i])[i])
    return known, known + float(top) * float(np.sum(gaps[done - 1:])), stop


def _mechanism(vm: ValuationMarket, v: np.ndarray, method: str, deadline: Deadline) -> MechanismOutcome:
    """Thm B-2 at ``v``; raises :class:`Stopped` if the allocation itself is not proven optimal."""
    t0 = time.perf_counter()
    m = vm.market
    phi = vm.virtual_values(v)
    res = solve_exact(deadline, m, virtual_objective(phi), method)
    a = res.profile
    own = m.own_leakage(a)
    payments = np.zeros(m.n)
    bounds = np.zeros((m.n, 2))
    exact = np.ones(m.n, dtype=bool)
    steps = []
    stop = None
    for i in range(m.n):
        if a[i] == 0:
            steps.append(None)       # A_i(x) ≤ A_i(v_i) = 0 for x ≥ v_i: payment 0
            continue
        d = vm.valuations[i]
        if not _assumption2_ok(vm, i):     # discrete tables too: a non-monotone A breaks IC silently
            raise ProblemError(f"Assumption 2 fails for user {i}: the payments of Thm B-2 need Φ nondecreasing "
                               f"(iron it first: dm_opt.gaussian.valuations.ironed_market)")
        lo = hi = None
        st = None
        if stop is None:
            try:
                if d.is_discrete:
                    lo, hi, stop = _discrete_payment(vm, i, v, phi, method, deadline, float(own[i]))
                else:
                    st, env = _allocation_steps(vm, i, v, method, None, deadline)
                    if st is not None:
                        blo, bhi = st.integral_bounds()
                        lo, hi = blo + v[i] * own[i], bhi + v[i] * own[i]
                    if not env.complete:
                        stop = Stopped(env.status, env.message)
                exact[i] = stop is None
            except KeyboardInterrupt:
                stop = interrupted()
                exact[i] = False
                lo = hi = None
        else:
            exact[i] = False
        if lo is None:
            lo, hi = _coarse_payment_bounds(vm, i, v, float(own[i]))
        bounds[i] = lo, hi
        payments[i] = lo if exact[i] else math.nan
        steps.append(st)
    leak = m.leakage(a)
    status = Termination.OPTIMAL if stop is None else stop.status
    message = "" if stop is None else (
        f"{stop.message}: payments exact for users {np.flatnonzero(exact & (a == 1)).tolist()}, "
        f"proven bounds for users {np.flatnonzero(~exact).tolist()}")
    total = float(leak.sum())
    return MechanismOutcome(
        reported=v, virtual_values=phi, profile=a, payments=payments, allocation=own,
        rents=payments - v * own, virtual_objective=float(res.objective),
        platform_payoff=float(total - payments.sum()), surplus=float(np.dot(1 - v, leak)),
        steps=tuple(steps), result=res, status=status, payment_bounds=bounds, payments_exact=exact,
        platform_payoff_bounds=(total - float(bounds[:, 1].sum()), total - float(bounds[:, 0].sum())),
        message=message, seconds=time.perf_counter() - t0,
    )


def mechanism(vm: ValuationMarket, reported=None, *, method: str = "auto", time_limit=None) -> MechanismOutcome:
    """The platform's optimal mechanism (Thm B-2) at reports ``reported`` (default: the market's values).

    ``time_limit``: seconds for all solves together (``None`` = no limit).  On expiry or Ctrl-C
    the outcome has status ``time_limit``/``interrupted``, exact payments for the users completed
    and proven bounds for the others (:class:`MechanismOutcome`).  If the allocation itself was
    not proven optimal there is no mechanism: :class:`~dm_opt.core.errors.LimitExceeded` (time limit)
    or ``KeyboardInterrupt`` (Ctrl-C).
    """
    deadline = Deadline.of(time_limit)
    v = vm._reported(reported)
    try:
        return _mechanism(vm, v, method, deadline)
    except Stopped as s:
        no_partial_answer(s.status, f"Thm B-2 allocation not proven optimal ({s.message}){_incumbent_note(s)}; "
                          f"no payments computed")


def user_utility(vm: ValuationMarket, user: int, true_value: float, outcome: MechanismOutcome) -> tuple[float, float]:
    """User ``i``'s (rent, full utility) at ``outcome`` when her true value is ``true_value``.

    rent = ``p_i − v A_i`` (the quantity in the IC proof, eq. B-17);
    full = ``a_i p_i − v I_i(a)`` (§2.2 payoff, includes the externality ``v I_i(a_{−i},0)``).
    """
    i = int(user)
    rent = outcome.payments[i] - true_value * outcome.allocation[i]
    full = outcome.payments[i] - true_value * float(vm.market.leakage(outcome.profile)[i])
    return float(rent), float(full)


@dataclass(frozen=True)
class ICReport(Result):
    """Largest gains from misreporting on a grid: ``rent_gain`` (B-17) and ``full_gain`` (§2.2 payoff).

    ``checked`` of ``grid_size`` grid points were evaluated; with ``status`` ``time_limit`` /
    ``interrupted`` (``checked < grid_size``) the gains are those of the points checked — lower
    bounds on the grid's largest gains.

    Result protocol (:class:`~dm_opt.core.result.Result`): two gains, no single scalar objective
    (``objective``/``bound`` are NaN); the gains of the points checked are an answer in hand
    (``feasible`` after a stop); ``seconds`` is the wall-clock time of the check.
    """

    family: ClassVar[str] = "gaussian"

    user: int
    true_value: float
    rent_gain: float
    rent_argmax: float
    full_gain: float
    full_argmax: float
    status: Termination = Termination.OPTIMAL
    checked: int = 0
    grid_size: int = 0
    message: str = ""
    seconds: float = field(default=0.0, compare=False)     # wall-clock; not part of the answer

    def _has_answer(self) -> bool:
        return True


def ic_violations(vm: ValuationMarket, user: int, reported=None, *, grid=None, method: str = "auto",
                  time_limit=None) -> ICReport:
    """Best misreport of ``user`` on ``grid`` (default: 41 points over the support, or the table).

    ``time_limit`` (seconds) / Ctrl-C: the grid points checked so far are reported with that status.
    """
    t0 = time.perf_counter()
    deadline = Deadline.of(time_limit)
    v = vm._reported(reported)
    i = int(user)
    d = vm.valuations[i]
    if grid is None:
        if d.is_discrete:
            grid = d.values
        else:
            hi = d.upper if np.isfinite(d.upper) else float(d.dist.ppf(1 - 1e-6))
            grid = np.linspace(d.lower, hi, 41)
    grid = np.asarray(grid, dtype=float)
    try:
        truth = _mechanism(vm, v, method, deadline)
    except Stopped as s:
        no_partial_answer(s.status, f"IC check of user {i}: truthful mechanism not solved ({s.message})")
    if not truth.payments_exact[i]:
        no_partial_answer(truth.status, f"IC check of user {i}: truthful payment not computed ({truth.message})")
    r0, f0 = user_utility(vm, i, v[i], truth)
    best_r, arg_r, best_f, arg_f = 0.0, float(v[i]), 0.0, float(v[i])
    status, message, checked = Termination.OPTIMAL, "", 0
    try:
        for x in grid:
            w = v.copy()
            w[i] = x
            out = _mechanism(vm, w, method, deadline)
            if out.payments_exact[i]:                # only user i's payment matters here
                r, f = user_utility(vm, i, v[i], out)
                if r - r0 > best_r:
                    best_r, arg_r = r - r0, float(x)
                if f - f0 > best_f:
                    best_f, arg_f = f - f0, float(x)
                checked += 1
            if not out.complete:                     # stopped inside: do not start another point
                status, message = out.status, out.message
                break
    except Stopped as s:
        status, message = s.status, s.message
    except KeyboardInterrupt:
        status, message = Termination.INTERRUPTED, "interrupted by the user"
    if status is not Termination.OPTIMAL:
        message = f"{message}: {checked} of {grid.size} grid points checked"
    return ICReport(i, float(v[i]), best_r, arg_r, best_f, arg_f, status, checked, int(grid.size), message,
                    time.perf_counter() - t0)


__all__ = ["MechanismOutcome", "mechanism", "user_utility", "ICReport", "ic_violations"]
