"""The allocation of Thm B-2 and its step function ``A_i(x, v_{−i})`` (AMMO App. B).

* **Allocation** (Thm B-2): ``a^E(v) = argmax_a Σ (1 − Φ_i(v_i)) I_i(a) + Φ_i(v_i) I_i(a_{−i}, 0)``,
  i.e. the equilibrium objective with ``Φ`` in place of ``v``
  (``LeakageObjective.weighted(1 − Φ, Φ)``: :func:`virtual_objective`).
* ``A_i(x, v_{−i}) = I_i(a^E(x, v_{−i})) − I_i(a_{−i}^E(x, v_{−i}), 0) = a_i g_i(P_ii)``
  depends on ``x`` only through ``φ = Φ_i(x)`` and, as a function of ``φ``,
  is minus the slope of the convex envelope ``max_a (b_a − φ A_i(a))``: a
  nonincreasing step function whose breakpoints are found *exactly* by
  :func:`dm_opt.gaussian.parametric.envelope_search` (solver calls only, no grid),
  then mapped to ``x`` by inverting ``Φ_i`` (Brent's method to ~1e-15 relative):
  :func:`allocation_steps`.  The payment integral of eq. (B-18) is then an exact finite sum
  (:mod:`dm_opt.gaussian.valuations.payments`).
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
from dm_opt.gaussian.objectives import LeakageObjective
from dm_opt.gaussian.parametric import Line, Stopped, envelope_search, no_partial_answer, solve_exact
from dm_opt.gaussian.valuations.market import ValuationMarket


def virtual_objective(phi: np.ndarray) -> LeakageObjective:
    """Thm B-2's allocation objective ``Σ (1 − Φ_i) I_i(a) + Φ_i I_i(a_{−i}, 0)``."""
    phi = np.asarray(phi, dtype=float)
    return LeakageObjective.weighted(1.0 - phi, phi, name="virtual_equilibrium")


def _assumption2_ok(vm: ValuationMarket, i: int) -> bool:
    return not any(f"user {i} " in msg for msg in vm.assumption2_failures)


def _incumbent_note(stop: Stopped) -> str:
    res = stop.result
    if res is None or not res.has_solution:
        return ""
    return (f"; best profile found {''.join(str(int(x)) for x in res.profile)} with objective "
            f"{res.objective:.10g} <= optimum <= {res.bound:.10g}")


@dataclass(frozen=True)
class AllocationSteps(Result):
    """``A_i(x, v_{−i})`` over ``x ∈ [x_lo, x_hi]`` as a nonincreasing step function.

    ``edges`` (K+1,) ascending in ``x``; ``A`` (K,) value on ``[edges[k], edges[k+1]]``;
    ``phi_edges`` the breakpoints in virtual-value space (exact envelope breakpoints).
    ``A`` is 0 beyond ``edges[-1]``.

    A search stopped by a time limit or Ctrl-C (``status`` ``time_limit``/``interrupted``)
    keeps its proven steps (a prefix of the range) and covers the rest by intervals on which
    only ``A_lower[k] ≤ A_i ≤ A_upper[k]`` is proven (``A[k]`` is NaN there): the slopes of the
    optimal lines at the interval's two ends, because ``A_i`` is minus a subgradient of the convex
    envelope in ``φ`` (nonincreasing) and ``Φ_i`` is nondecreasing (Assumption 2).  For a complete
    search ``A_lower == A_upper == A``.

    Result protocol (:class:`~dm_opt.core.result.Result`): a step function has no scalar
    objective (``objective``/``bound`` are NaN; the integral is :meth:`integral_bounds`); the steps
    returned are always an answer in hand (``solution_status`` ``feasible`` after a stop);
    ``seconds`` is the wall-clock time of the search.
    """

    family: ClassVar[str] = "gaussian"

    user: int
    edges: np.ndarray
    phi_edges: np.ndarray
    A: np.ndarray
    solver_calls: int
    A_lower: np.ndarray | None = None
    A_upper: np.ndarray | None = None
    status: Termination = Termination.OPTIMAL
    message: str = ""
    seconds: float = field(default=0.0, compare=False)     # wall-clock; not part of the answer

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.A_lower is None:
            object.__setattr__(self, "A_lower", self.A)
        if self.A_upper is None:
            object.__setattr__(self, "A_upper", self.A)

    @property
    def complete(self) -> bool:
        return self.status is Termination.OPTIMAL

    def _has_answer(self) -> bool:
        return True                # returned only when something was proven (steps or bounds)

    def integral(self) -> float:
        """``∫_{edges[0]}^{edges[-1]} A(x) dx`` (exact finite sum; complete searches only)."""
        if not self.complete:
            raise ProblemError(f"A_{self.user}(x) was not fully resolved ({self.status}: {self.message}); "
                               f"use integral_bounds()")
        return float(np.dot(self.A, np.diff(self.edges)))

    def integral_bounds(self) -> tuple[float, float]:
        """Proven ``(lower, upper)`` on ``∫ A(x) dx`` (equal, the exact integral, when complete)."""
        w = np.diff(self.edges)
        return float(np.dot(self.A_lower, w)), float(np.dot(self.A_upper, w))

    def __call__(self, x: float) -> float:
        """``A_i(x)`` for ``x ≥ edges[0]`` (0 beyond ``edges[-1]``)."""
        if x < self.edges[0]:
            raise ProblemError(f"x = {x} is below the searched range starting at {self.edges[0]}")
        if x > self.edges[-1]:
            return 0.0
        k = min(max(int(np.searchsorted(self.edges, x, side="right")) - 1, 0), self.A.size - 1)
        if np.isnan(self.A[k]):
            raise ProblemError(f"A_{self.user}({x}) was not resolved ({self.status}); proven bounds "
                               f"[{self.A_lower[k]:.10g}, {self.A_upper[k]:.10g}]")
        return float(self.A[k])


def _phi_range(vm: ValuationMarket, i: int, x_lo: float) -> tuple[float, float]:
    """``[Φ_i(x_lo), min(Φ_i(v_max), φ_cap)]`` (see :func:`allocation_steps`)."""
    d = vm.valuations[i]
    m = vm.market
    g_min = float(m.own_leakage(np.ones(m.n, dtype=np.int8))[i])
    phi_cap = float(np.sum(m.sigma2)) / g_min * (1 + 1e-12)
    phi_lo = float(d.virtual_value(x_lo))
    phi_hi = min(float(d.virtual_value(d.upper)) if np.isfinite(d.upper) else math.inf, phi_cap)
    return phi_lo, max(phi_hi, phi_lo)


def _allocation_steps(vm, user, reported, method, x_lo, deadline: Deadline):
    """(steps or None if nothing was proven, envelope search)."""
    t0 = time.perf_counter()
    d = vm.valuations[user]
    if d.is_discrete:
        raise ProblemError("allocation_steps is for continuous distributions; discrete tables are summed exactly")
    i = int(user)
    if not _assumption2_ok(vm, i):
        raise ProblemError(f"Assumption 2 fails for user {i}: the payments of Thm B-2 need Φ nondecreasing "
                           f"(iron it first: dm_opt.gaussian.valuations.ironed_market)")
    v = vm._reported(reported)
    m = vm.market
    phi_all = vm.virtual_values(v)
    x_lo = float(v[i]) if x_lo is None else float(x_lo)
    phi_lo, phi_hi = _phi_range(vm, i, x_lo)

    def evaluate(phi: float) -> Line:
        w = phi_all.copy()
        w[i] = phi
        res = solve_exact(deadline, m, virtual_objective(w), method)
        s = float(m.own_leakage(res.profile)[i])
        return Line(res.objective + phi * s, s, res)

    tol = 1e-9 * (float(np.sum(m.sigma2)) * (1 + float(np.max(np.abs(phi_all)))) + phi_hi * float(np.max(m.sigma2)))
    env = envelope_search(evaluate, phi_lo, phi_hi, tol)
    if not env.pieces and not env.gaps:
        return None, env
    pieces, gaps = env.pieces, env.gaps
    phi_edges = np.array([pieces[0].lo if pieces else gaps[0].lo] + [p.hi for p in pieces] + [g.hi for g in gaps])
    slopes = [p.line.slope for p in pieces]
    A = np.array(slopes + [math.nan] * len(gaps))
    A_lower = np.array(slopes + [(g.right.slope if g.right is not None else 0.0) for g in gaps])   # A_i >= 0
    A_upper = np.array(slopes + [g.left.slope for g in gaps])
    edges = np.array([x_lo] + [d.inverse_virtual_value(p) for p in phi_edges[1:]])
    edges[0] = x_lo
    edges = np.maximum.accumulate(edges)
    return AllocationSteps(i, edges, phi_edges, A, env.evaluations, A_lower, A_upper, env.status, env.message,
                           time.perf_counter() - t0), env


def allocation_steps(vm: ValuationMarket, user: int, reported, *, method: str = "auto",
                     x_lo: float | None = None, time_limit=None) -> AllocationSteps:
    """Exact breakpoints of ``x ↦ A_i(x, v_{−i})`` on ``[x_lo, v_max]`` (default ``x_lo = v_i``).

    Searches the envelope over ``φ ∈ [Φ_i(x_lo), φ_cap]`` where
    ``φ_cap = min(Φ_i(v_max), Σ_j σ_j² / g_i(P_ii(1)))``: above ``Σσ²/g_i(P_ii(1))`` user ``i``
    never shares, because any profile with ``i`` sharing has value at most
    ``Σ_j σ_j² − φ g_i(P_ii(a)) < 0 = f(∅)`` (``g_i`` is increasing and ``P_ii(a) ≥ P_ii(1)``).

    ``time_limit`` (seconds, ``None`` = no limit; or a :class:`~dm_opt.core.limits.Deadline`
    shared with a caller) bounds all the solves together; on expiry or Ctrl-C the proven steps
    and bounds are returned with that ``status`` (see :class:`AllocationSteps`).  If not even
    ``A_i(x_lo)`` was solved: :class:`~dm_opt.core.errors.LimitExceeded` (time) or ``KeyboardInterrupt``.
    """
    deadline = Deadline.of(time_limit)
    st, env = _allocation_steps(vm, user, reported, method, x_lo, deadline)
    if st is None:
        no_partial_answer(env.status, f"allocation steps of user {user}: {env.message} before A_i(x_lo) was solved")
    return st



__all__ = ["virtual_objective", "AllocationSteps", "allocation_steps"]
