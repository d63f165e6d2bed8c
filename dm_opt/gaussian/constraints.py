"""Common side constraints for ``dm_opt.solve(..., constraints=...)``.

Accepted as a :class:`SideConstraints` or a plain dict with the same keys::

    {"max_sharers": 5, "min_sharers": 1, "budget": 2.0,
     "force_in": [0, 3], "force_out": [7]}

* ``max_sharers`` / ``min_sharers``: bounds on ``|A|``;
* ``budget``: total payments ``Σ_{i∈A} p_i(a) ≤ budget`` with the problem's
  prices (Thm 2 for ``equilibrium``, Thm 6 for ``decorrelated``); not
  defined for ``first_best`` (no prices);
* ``force_in`` / ``force_out``: users who must / must not share.

:meth:`SideConstraints.feasible` is the exact check every backend's answer is
verified with (and the filter the tests apply to enumeration).

:func:`dm_opt.solve` validates ``constraints`` with :meth:`SideConstraints.from_any`
and :meth:`SideConstraints.check_problem` before any backend runs, and
``method="auto"`` then picks a backend with ``supports_constraints`` (``bnb``).
How ``bnb`` honours each constraint exactly (pruning by counts, forced users,
a lower bound on payments from Prop 2, exact checks of every incumbent) is in
``docs/exact_solvers_bnb.md``.  No feasible profile gives status ``infeasible``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from dm_opt.core.errors import InstanceError, ProblemError

#: Slack allowed on the budget when checking a profile (absolute, in payment units).
BUDGET_TOL = 1e-9


@dataclass(frozen=True)
class SideConstraints:
    max_sharers: int | None = None
    min_sharers: int | None = None
    budget: float | None = None
    force_in: tuple = ()
    force_out: tuple = ()

    @classmethod
    def from_any(cls, obj, n: int) -> "SideConstraints | None":
        """Validate ``obj`` (None, dict or SideConstraints) against a market of ``n`` users."""
        if obj is None:
            return None
        if isinstance(obj, dict):
            allowed = {"max_sharers", "min_sharers", "budget", "force_in", "force_out"}
            unknown = set(obj) - allowed
            if unknown:
                raise InstanceError(f"constraints.{sorted(unknown)[0]}",
                                    f"unknown side constraint; allowed: {', '.join(sorted(allowed))}")
            obj = cls(**obj)
        if not isinstance(obj, cls):
            raise InstanceError("constraints", f"expected a dict or SideConstraints, got {type(obj).__name__}")
        for key in ("max_sharers", "min_sharers"):
            val = getattr(obj, key)
            if val is not None and (isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < 0):
                raise InstanceError(f"constraints.{key}", f"must be a nonnegative integer, got {val!r}")
        if obj.budget is not None:
            if isinstance(obj.budget, bool) or not isinstance(obj.budget, numbers.Real) or not np.isfinite(obj.budget):
                raise InstanceError("constraints.budget", f"must be a finite number, got {obj.budget!r}")
        fi = _users("force_in", obj.force_in, n)
        fo = _users("force_out", obj.force_out, n)
        both = set(fi) & set(fo)
        if both:
            raise InstanceError("constraints.force_in", f"user {min(both)} is also in force_out")
        out = cls(obj.max_sharers, obj.min_sharers, None if obj.budget is None else float(obj.budget), fi, fo)
        return None if out.is_empty else out

    @property
    def is_empty(self) -> bool:
        return (self.max_sharers is None and self.min_sharers is None and self.budget is None
                and not self.force_in and not self.force_out)

    def check_problem(self, problem: str) -> None:
        if self.budget is not None and problem not in ("equilibrium", "decorrelated"):
            raise ProblemError(f"a budget on payments needs prices; problem '{problem}' has none "
                               f"(use equilibrium or decorrelated)")

    def feasible(self, market, problem: str, profile) -> bool:
        """Exact check of ``profile`` (fresh solve for the payments)."""
        a = np.asarray(profile, dtype=np.int8)
        k = int(a.sum())
        if self.max_sharers is not None and k > self.max_sharers:
            return False
        if self.min_sharers is not None and k < self.min_sharers:
            return False
        if any(a[i] != 1 for i in self.force_in) or any(a[i] != 0 for i in self.force_out):
            return False
        if self.budget is not None:
            self.check_problem(problem)
            if float(np.sum(market.prices(a, problem))) > self.budget + BUDGET_TOL:
                return False
        return True


def _users(field: str, users, n: int) -> tuple:
    try:
        items = list(users)
    except TypeError:
        raise InstanceError(f"constraints.{field}", f"must be a list of user indices, got {users!r}") from None
    out = []
    for u in items:
        if isinstance(u, bool) or not isinstance(u, numbers.Integral) or not (0 <= u < n):
            raise InstanceError(f"constraints.{field}", f"user index {u!r} is not in 0..{n - 1}")
        out.append(int(u))
    return tuple(sorted(set(out)))
