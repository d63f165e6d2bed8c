"""Common side constraints for ``dm_opt.solve(..., constraints=...)``.

Accepted as a :class:`SideConstraints` or a plain dict with the same keys::

    {"max_sharers": 5, "min_sharers": 1, "budget": 2.0,
     "force_in": [0, 3], "force_out": [7]}

* ``max_sharers`` / ``min_sharers``: bounds on ``|A|``;
* ``budget``: total payments ``Σ_{i∈A} p_i(a) ≤ budget`` with the problem's
  prices (Thm 2 for ``equilibrium``, Thm 6 for ``decorrelated``); not
  defined for ``first_best`` (no prices);
* ``force_in`` / ``force_out``: users who must / must not share;
* ``linear``: any linear rows ``lb ≤ A a ≤ ub`` on the profile, given as a
  :class:`scipy.optimize.LinearConstraint` (or a list of them, or ``(A, lb, ub)``).

``constraints`` itself may also be a ``LinearConstraint``, or a list mixing
``LinearConstraint`` objects, dicts and :class:`SideConstraints` (merged; a key
given twice must have the same value, forced users and linear rows are
concatenated)::

    from scipy.optimize import LinearConstraint
    dm_opt.solve(m, "first_best", "bnb",
                 constraints=[LinearConstraint([[1, 1, 0, 0]], ub=1),        # conflict pair
                              {"max_sharers": 3}])

Linear rows (:class:`LinearRows`) are checked with a relative slack
``LINEAR_RTOL · Σ_j |A_ij|`` per row (far above the round-off of ``A a`` for a
binary ``a``); an empty system (e.g. ``lb > ub`` in some row) gives status
``infeasible``.

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

import math
import numbers
import sys
from dataclasses import dataclass

import numpy as np

from dm_opt.core.errors import InstanceError, ProblemError
from dm_opt.core.validate import describe

#: Slack allowed on the budget when checking a profile (absolute, in payment units).
BUDGET_TOL = 1e-9
#: Relative slack of a linear row ``lb ≤ A_i a ≤ ub``: a profile is feasible when every row holds
#: within ``LINEAR_RTOL · Σ_j |A_ij|`` (the round-off of ``A_i a`` for a binary ``a`` is ~n·1e-16 of that sum).
LINEAR_RTOL = 1e-9


class LinearRows:
    """Linear side constraints ``lb ≤ A a ≤ ub`` on the sharing profile (``A``: (m, n) float).

    Immutable arrays; ``slack[i] = LINEAR_RTOL · Σ_j |A_ij|`` is the tolerance of the exact
    check :meth:`feasible` and the amount by which the MIP backends relax each row (they then
    check every incumbent with :meth:`feasible`, so a relaxed model never returns a violator).
    """

    __slots__ = ("A", "lb", "ub", "slack", "_amin", "_amax", "_lp")

    def __init__(self, A, lb, ub):
        A = np.array(A, dtype=float, copy=True)
        lb = np.array(lb, dtype=float, copy=True)
        ub = np.array(ub, dtype=float, copy=True)
        self.A, self.lb, self.ub = A, lb, ub
        self.slack = LINEAR_RTOL * np.sum(np.abs(A), axis=1)
        self._amin = np.sum(np.minimum(A, 0.0), axis=1)       # smallest activity of a binary profile
        self._amax = np.sum(np.maximum(A, 0.0), axis=1)
        self._lp = None                                        # HiGHS LP of lp_feasible, built on first use
        for arr in (A, lb, ub, self.slack, self._amin, self._amax):
            arr.setflags(write=False)

    @property
    def m(self) -> int:
        return int(self.A.shape[0])

    @property
    def n(self) -> int:
        return int(self.A.shape[1])

    def __repr__(self) -> str:
        return f"LinearRows(m={self.m}, n={self.n})"

    @staticmethod
    def stack(parts: list) -> "LinearRows | None":
        parts = [p for p in parts if p is not None and p.m]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return LinearRows(np.vstack([p.A for p in parts]), np.concatenate([p.lb for p in parts]),
                          np.concatenate([p.ub for p in parts]))

    def feasible(self, profile) -> bool:
        """Exact check of a binary profile: every row within its slack."""
        r = self.A @ np.asarray(profile, dtype=float)
        return bool(np.all(r >= self.lb - self.slack) and np.all(r <= self.ub + self.slack))

    def empty_reason(self) -> str:
        """A reason when some row alone admits no binary profile ('' otherwise)."""
        bad = np.flatnonzero((self._amax < self.lb - self.slack) | (self._amin > self.ub + self.slack)
                             | (self.lb > self.ub + 2 * self.slack))
        if bad.size:
            i = int(bad[0])
            return (f"linear row {i}: no 0/1 profile has {self.lb[i]:.6g} ≤ A_{i}·a ≤ {self.ub[i]:.6g} "
                    f"(A_{i}·a ranges over [{self._amin[i]:.6g}, {self._amax[i]:.6g}])")
        return ""

    def propagate(self, state: np.ndarray) -> np.ndarray | None:
        """Bound propagation at a node: ``state[i]`` 0 free, 1 in, 2 out (as in ``bnb``).

        Returns ``None`` when some row cannot be met by any completion (the node holds no
        feasible profile), else a copy of ``state`` with the users every feasible completion
        must fix (in or out) fixed, to a fixpoint.  Valid with the slack of :meth:`feasible`
        (a node is dropped only if every completion violates some row by more than twice it).
        """
        st = np.array(state, dtype=np.int8, copy=True)
        A, lb, ub, tol = self.A, self.lb, self.ub, 2.0 * self.slack
        if A.shape[0] == 0:
            return st
        while True:
            inn = st == 1
            free = st == 0
            base = A[:, inn].sum(axis=1)
            Af = A[:, free]
            lo = base + np.minimum(Af, 0.0).sum(axis=1)
            hi = base + np.maximum(Af, 0.0).sum(axis=1)
            if np.any(lo > ub + tol) or np.any(hi < lb - tol):
                return None
            if not free.any():
                return st
            # a free user whose choice alone would push a row out of range is fixed the other way
            absf = np.abs(Af)
            over_ub = (lo[:, None] + absf > ub[:, None] + tol[:, None]) & (absf > 0)
            under_lb = (hi[:, None] - absf < lb[:, None] - tol[:, None]) & (absf > 0)
            # over_ub: the user must take the value minimising that row's activity; under_lb: maximising
            if not (over_ub.any() or under_lb.any()):
                return st
            fj = np.flatnonzero(free)
            want = np.zeros(fj.size, dtype=np.int8)       # 1: in, 2: out, 3: conflict
            pos = Af > 0
            # over_ub: A>0 -> out, A<0 -> in; under_lb: A>0 -> in, A<0 -> out
            need_in = (over_ub & ~pos) | (under_lb & pos)
            need_out = (over_ub & pos) | (under_lb & ~pos)
            any_in = need_in.any(axis=0)
            any_out = need_out.any(axis=0)
            if np.any(any_in & any_out):
                return None
            want[any_in] = 1
            want[any_out] = 2
            st[fj[want > 0]] = want[want > 0]

    def lp_feasible(self, state: np.ndarray) -> bool:
        """Whether the LP relaxation over the node's free users (in ``[0, 1]``) has a point with
        every row within twice its slack; ``True`` when at most one row is undecided (its
        activity range is then the LP's, already checked by :meth:`propagate`) or when HiGHS
        does not prove infeasibility (no pruning without a proof).  One HiGHS instance per
        :class:`LinearRows`, re-used with new column bounds."""
        st = np.asarray(state)
        inn = st == 1
        free = st == 0
        if not free.any():
            return self.feasible(inn)
        base = self.A[:, inn].sum(axis=1)
        Af = self.A[:, free]
        lo = base + np.minimum(Af, 0.0).sum(axis=1)
        hi = base + np.maximum(Af, 0.0).sum(axis=1)
        undecided = (lo < self.lb - 2 * self.slack) | (hi > self.ub + 2 * self.slack)
        if int(np.sum(undecided)) <= 1:
            return True
        import highspy

        if self._lp is None:
            from dm_opt.core.highs import new_highs, set_options

            h = new_highs()
            n = self.n
            h.addVars(n, np.zeros(n), np.ones(n))
            for q in range(self.m):
                nz = np.flatnonzero(self.A[q])
                h.addRow(float(self.lb[q] - 2 * self.slack[q]), float(self.ub[q] + 2 * self.slack[q]), nz.size,
                         nz.astype(np.int32), self.A[q, nz])
            set_options(h, presolve="off", random_seed=0)
            self._lp = h
        h = self._lp
        idx = np.arange(self.n, dtype=np.int32)
        h.changeColsBounds(self.n, idx, np.where(inn, 1.0, 0.0), np.where(st == 2, 0.0, 1.0))
        h.run()
        return h.getModelStatus() != highspy.HighsModelStatus.kInfeasible


def _linear_from(obj, n: int, field: str) -> "LinearRows":
    """One ``LinearConstraint`` / ``(A, lb, ub)`` / :class:`LinearRows` as validated rows."""
    if isinstance(obj, LinearRows):
        A, lb, ub = obj.A, obj.lb, obj.ub
    elif isinstance(obj, tuple) and len(obj) == 3:
        A, lb, ub = obj
    elif hasattr(obj, "A") and hasattr(obj, "lb") and hasattr(obj, "ub"):      # scipy LinearConstraint
        A, lb, ub = obj.A, obj.lb, obj.ub
    else:
        raise InstanceError(field, f"expected a scipy.optimize.LinearConstraint or (A, lb, ub), "
                                   f"got {type(obj).__name__}")
    if hasattr(A, "toarray"):
        A = A.toarray()
    _only_numbers(f"{field}.A", A)
    try:
        A = np.array(A, dtype=float)
    except (TypeError, ValueError, RuntimeError):      # (RuntimeError: lists nested beyond numpy's 32 dimensions)
        raise InstanceError(f"{field}.A", "must be a numeric matrix (rows of equal length)") from None
    except OverflowError:           # an integer beyond the float range
        raise InstanceError(f"{field}.A", "has an entry too large for a float; rescale the row") from None
    if A.ndim == 1:
        A = A[None, :]
    if A.ndim != 2 or A.shape[1] != n:
        raise InstanceError(f"{field}.A", f"must have shape (m, {n}) for a market of {n} users, "
                                          f"got {A.shape}")
    if not np.all(np.isfinite(A)):
        raise InstanceError(f"{field}.A", "must be finite")
    # a row whose Σ_j |A_ij| overflows has an infinite activity and slack: every profile passed the
    # exact check (A = [[1e308, 1e308]], ub = 1e308 returned (1, 1) as optimal)
    with np.errstate(over="ignore"):
        wide = ~np.isfinite(np.sum(np.abs(A), axis=1))
    if np.any(wide):
        raise InstanceError(f"{field}.A", f"row {int(np.argmax(wide))}: the sum of |A_ij| overflows the float "
                                          "range; rescale the row")
    m = A.shape[0]
    out = []
    for name, b, default in (("lb", lb, -np.inf), ("ub", ub, np.inf)):
        _only_numbers(f"{field}.{name}", b)
        try:
            b = np.array(default if b is None else b, dtype=float)
        except (TypeError, ValueError, RuntimeError):
            raise InstanceError(f"{field}.{name}", "must be numbers") from None
        except OverflowError:       # an integer beyond the float range (use inf for no bound)
            raise InstanceError(f"{field}.{name}", "has an entry too large for a float; use inf for no bound") from None
        if b.ndim > 1 or (b.ndim == 1 and b.size not in (1, m)):
            raise InstanceError(f"{field}.{name}", f"must be a number or have {m} entries, got shape {b.shape}")
        b = np.broadcast_to(b.reshape(-1) if b.ndim else b, (m,)).astype(float)
        if np.any(np.isnan(b)):
            raise InstanceError(f"{field}.{name}", "must not be NaN")
        out.append(b)
    return LinearRows(A, out[0], out[1])


@dataclass(frozen=True, eq=False)
class SideConstraints:
    max_sharers: int | None = None
    min_sharers: int | None = None
    budget: float | None = None
    force_in: tuple = ()
    force_out: tuple = ()
    linear: LinearRows | None = None

    #: keys of the dict form
    KEYS = ("max_sharers", "min_sharers", "budget", "force_in", "force_out", "linear")

    @classmethod
    def from_any(cls, obj, n: int) -> "SideConstraints | None":
        """Validate ``obj`` against a market of ``n`` users: None, a dict (keys :attr:`KEYS`), a
        :class:`SideConstraints`, a :class:`scipy.optimize.LinearConstraint`, or a list/tuple of
        those (merged).  Returns ``None`` when nothing is constrained."""
        if obj is None:
            return None
        if isinstance(obj, (list, tuple)) and not _is_triple(obj):
            return cls._merge([cls.from_any(item, n) for item in obj])
        if isinstance(obj, dict):
            allowed = set(cls.KEYS)
            unknown = set(obj) - allowed
            if unknown:
                raise InstanceError(f"constraints.{sorted(unknown)[0]}",
                                    f"unknown side constraint; allowed: {', '.join(sorted(allowed))} "
                                    f"(any other linear condition on the profile: 'linear' with a "
                                    f"scipy.optimize.LinearConstraint)")
            obj = cls(**obj)
        elif not isinstance(obj, cls) and hasattr(obj, "A") and hasattr(obj, "lb") and hasattr(obj, "ub"):
            obj = cls(linear=obj)
        if not isinstance(obj, cls):
            raise InstanceError("constraints", f"expected a dict, SideConstraints, scipy.optimize.LinearConstraint "
                                               f"or a list of them, got {type(obj).__name__}")
        for key in ("max_sharers", "min_sharers"):
            val = getattr(obj, key)
            if val is not None and (isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < 0):
                raise InstanceError(f"constraints.{key}", f"must be a nonnegative integer, got {describe(val)}")
        if obj.budget is not None:
            if isinstance(obj.budget, bool) or not isinstance(obj.budget, numbers.Real) or not _finite(obj.budget):
                raise InstanceError("constraints.budget", f"must be a finite number, got {describe(obj.budget)}")
        fi = _users("force_in", obj.force_in, n)
        fo = _users("force_out", obj.force_out, n)
        both = set(fi) & set(fo)
        if both:
            raise InstanceError("constraints.force_in", f"user {min(both)} is also in force_out")
        lin = obj.linear
        if lin is not None:
            items = lin if isinstance(lin, list) or (isinstance(lin, tuple) and not _is_triple(lin)) else [lin]
            lin = LinearRows.stack([_linear_from(q, n, "constraints.linear") for q in items])
        out = cls(obj.max_sharers, obj.min_sharers, None if obj.budget is None else float(obj.budget), fi, fo,
                  lin)
        return None if out.is_empty else out

    @classmethod
    def _merge(cls, parts: list) -> "SideConstraints | None":
        parts = [p for p in parts if p is not None]
        if not parts:
            return None
        kw: dict = {}
        for key in ("max_sharers", "min_sharers", "budget"):
            vals = {getattr(p, key) for p in parts if getattr(p, key) is not None}
            if len(vals) > 1:
                raise InstanceError(f"constraints.{key}", f"given twice with different values {sorted(vals)}")
            kw[key] = vals.pop() if vals else None
        kw["force_in"] = tuple(sorted({u for p in parts for u in p.force_in}))
        kw["force_out"] = tuple(sorted({u for p in parts for u in p.force_out}))
        both = set(kw["force_in"]) & set(kw["force_out"])
        if both:
            raise InstanceError("constraints.force_in", f"user {min(both)} is also in force_out")
        kw["linear"] = LinearRows.stack([p.linear for p in parts])
        return cls(**kw)

    @property
    def is_empty(self) -> bool:
        return (self.max_sharers is None and self.min_sharers is None and self.budget is None
                and not self.force_in and not self.force_out and self.linear is None)

    def empty_reason(self, n: int) -> str:
        """A reason when the counting / forcing / single linear rows alone admit no profile ('' otherwise);
        a cheap pre-check, not a complete one (the backends prove the rest)."""
        k_in, k_free = len(self.force_in), n - len(self.force_out)
        if self.min_sharers is not None and self.max_sharers is not None and self.min_sharers > self.max_sharers:
            return f"min_sharers = {self.min_sharers} > max_sharers = {self.max_sharers}"
        if self.max_sharers is not None and k_in > self.max_sharers:
            return f"{k_in} users forced in but max_sharers = {self.max_sharers}"
        if self.min_sharers is not None and k_free < self.min_sharers:
            return f"min_sharers = {self.min_sharers} but only {k_free} users may share"
        if self.linear is not None:
            state = np.zeros(n, dtype=np.int8)
            state[list(self.force_in)] = 1
            state[list(self.force_out)] = 2
            why = self.linear.empty_reason()
            if why:
                return why
            if self.linear.propagate(state) is None:
                return "the linear rows (with the forced users) admit no 0/1 profile (bound propagation)"
        return ""

    def check_problem(self, problem: str) -> None:
        if self.budget is not None and problem not in ("equilibrium", "decorrelated"):
            raise ProblemError(f"a budget on payments needs prices; problem '{problem}' has none "
                               f"(use equilibrium or decorrelated)")

    def search_profile(self, n: int, weights=None, time_limit: float = 10.0):
        """A profile satisfying the counting, forcing and linear constraints (not the budget),
        maximising ``weights · a`` (a cheap proxy; zeros by default), from a small pure-binary
        HiGHS model with every linear row relaxed by its slack.

        Returns ``("infeasible", None)`` when HiGHS proves that model infeasible — then no profile
        satisfies the constraints, since the model relaxes them — ``("found", a)`` with ``a``
        checked exactly (:meth:`LinearRows.feasible` and the counts), or ``("unknown", None)``.
        The MIP backends use it to settle infeasibility on a model without the posterior block
        (whose round-off made SCIP's presolve call a feasible model infeasible) and to start
        from a feasible incumbent.
        """
        import highspy

        from dm_opt.core.highs import new_highs, set_options
        from dm_opt.core.status import highs_has_solution

        h = new_highs()
        lo = np.zeros(n)
        hi = np.ones(n)
        lo[list(self.force_in)] = 1.0
        hi[list(self.force_out)] = 0.0
        w = np.zeros(n) if weights is None else np.asarray(weights, dtype=float)
        h.addVars(n, lo, hi)
        h.changeColsIntegrality(n, np.arange(n, dtype=np.int32),
                                np.array([highspy.HighsVarType.kInteger] * n))
        h.changeColsCost(n, np.arange(n, dtype=np.int32), w)
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        idx = np.arange(n, dtype=np.int32)
        if self.min_sharers is not None or self.max_sharers is not None:
            h.addRow(-np.inf if self.min_sharers is None else float(self.min_sharers),
                     np.inf if self.max_sharers is None else float(self.max_sharers), n, idx, np.ones(n))
        lin = self.linear
        if lin is not None:
            for q in range(lin.m):
                nz = np.flatnonzero(lin.A[q])
                if not (np.isfinite(lin.lb[q]) or np.isfinite(lin.ub[q])):
                    continue
                h.addRow(float(lin.lb[q] - lin.slack[q]), float(lin.ub[q] + lin.slack[q]), nz.size,
                         nz.astype(np.int32), lin.A[q, nz])
        set_options(h, time_limit=float(time_limit), random_seed=0, mip_rel_gap=1e-4)
        h.run()
        ms = h.getModelStatus()
        if ms == highspy.HighsModelStatus.kInfeasible:
            return "infeasible", None
        if not highs_has_solution(h):
            return "unknown", None
        a = np.clip(np.rint(np.asarray(h.getSolution().col_value)), 0, 1).astype(np.int8)
        k = int(a.sum())
        ok = ((lin is None or lin.feasible(a)) and (self.max_sharers is None or k <= self.max_sharers)
              and (self.min_sharers is None or k >= self.min_sharers)
              and all(a[i] == 1 for i in self.force_in) and all(a[i] == 0 for i in self.force_out))
        return ("found", a) if ok else ("unknown", None)

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
        if self.linear is not None and not self.linear.feasible(a):
            return False
        if self.budget is not None:
            self.check_problem(problem)
            if float(np.sum(market.prices(a, problem))) > self.budget + BUDGET_TOL:
                return False
        return True


def _only_numbers(field: str, x) -> None:
    """Refuse what ``np.array(x, dtype=float)`` would coerce without a word: booleans, numeric strings
    (``"1"``), complex numbers (imaginary part dropped) and masked arrays (the data under the mask).
    Anything else (ragged, too deep, out of float range) is left to the conversion's own message."""
    ma = sys.modules.get("numpy.ma")
    if ma is not None and isinstance(x, ma.MaskedArray):
        raise InstanceError(field, "is a masked array; give plain numbers (fill or drop the masked entries)")
    if isinstance(x, np.ndarray) and x.dtype != object:
        if x.dtype.kind not in "iuf":
            raise InstanceError(field, f"expected real numbers, got an array of dtype {x.dtype}")
        return
    try:
        items = np.array(x, dtype=object).flat
    except (TypeError, ValueError, RuntimeError, RecursionError):
        return
    for item in items:
        if isinstance(item, (bool, np.bool_, str, bytes, complex, np.complexfloating)):
            raise InstanceError(field, f"expected real numbers, found {type(item).__name__} {describe(item)}")


def _ndim(x) -> int:
    """``np.ndim`` of user data; a ragged nest of lists (which numpy refuses) counts as 2-d, so a
    ragged ``A`` of a triple is reported by :func:`_linear_from` as ``constraints.linear.A``."""
    try:
        return int(np.ndim(x))
    except (ValueError, TypeError, OverflowError, RuntimeError):
        return 2


def _finite(x) -> bool:
    """Whether the real number ``x`` is finite (an integer beyond the float range is not)."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def _is_triple(obj) -> bool:
    """``(A, lb, ub)`` with a matrix-like first entry (not a list of three constraints)."""
    return (isinstance(obj, tuple) and len(obj) == 3 and not isinstance(obj[0], (dict, SideConstraints))
            and not hasattr(obj[0], "lb") and _ndim(obj[0]) in (1, 2) and _ndim(obj[1]) <= 1
            and not hasattr(obj[0], "keys"))


def _users(field: str, users, n: int) -> tuple:
    try:
        if isinstance(users, (str, bytes, dict)):      # list("01") would be the users '0' and '1'
            raise TypeError
        items = list(users)
    except TypeError:
        raise InstanceError(f"constraints.{field}", f"must be a list of user indices, got {describe(users)}") from None
    out = []
    for u in items:
        if isinstance(u, bool) or not isinstance(u, numbers.Integral) or not (0 <= u < n):
            raise InstanceError(f"constraints.{field}", f"user index {describe(u)} is not in 0..{n - 1}")
        out.append(int(u))
    return tuple(sorted(set(out)))


@dataclass
class RowSearch:
    """Outcome of :func:`branch_on_rows`."""

    profile: np.ndarray | None
    value: float
    bound: float
    complete: bool                 # every node closed (else a limit stopped the search)
    nodes: int
    subsolves: int
    message: str = ""


def repair(rows: LinearRows, state: np.ndarray, profile: np.ndarray) -> np.ndarray | None:
    """Greedy primal heuristic: flip free users of ``profile`` (each at most once) that move the
    most violated row towards its bounds, largest ``|A_qj|`` first, until every row holds
    (returns the profile) or no flip helps (``None``)."""
    a = np.asarray(profile, dtype=np.int8).copy()
    movable = np.asarray(state) == 0
    for _ in range(a.size + 1):
        r = rows.A @ a.astype(float)
        over = np.maximum(r - rows.ub, rows.lb - r) - rows.slack
        if np.all(over <= 0):
            return a
        q = int(np.argmax(over / np.maximum(rows.slack, 1e-300)))
        a_q = rows.A[q] * (1.0 if r[q] > rows.ub[q] else -1.0)
        helps = movable & (((a_q > 0) & (a == 1)) | ((a_q < 0) & (a == 0)))
        if not helps.any():
            return None
        cand = np.flatnonzero(helps)
        j = int(cand[np.argmax(np.abs(a_q[cand]))])
        a[j] ^= 1
        movable[j] = False
    return None


def branch_on_rows(rows: LinearRows, state0: np.ndarray, relaxed, *, slack: float, time_limit=None,
                   node_limit: int | None = None, evaluate=None) -> RowSearch:
    """Exact maximisation under linear rows by branching on the rows' violations, around an exact
    solver of the problem *without* the rows.

    ``relaxed(state, seconds_left)`` maximises over the completions of ``state`` (0 free, 1 in,
    2 out; counts, forced users and budgets are its business) and returns ``(profile, value,
    upper, done)``: the best profile found (``None`` if none exists: the node is empty), its exact
    value, a valid upper bound on that node's optimum, and whether it finished (not stopped by a
    limit).  Its optimum over a node bounds the node's optimum under the rows (fewer
    constraints), so:

    * a node whose ``upper ≤ incumbent + slack`` is pruned (``slack``: the caller's share of the
      tie tolerance — the answer is then within ``slack`` plus the relaxed solver's own tolerance);
    * a node whose relaxed optimum satisfies every row (:meth:`LinearRows.feasible`) is solved;
    * otherwise the most violated row picks a free user ``j`` that moves it towards its bounds
      (largest ``|A_qj|``); children: ``j`` flipped from the relaxed optimum's value, and ``j``
      kept — that child has the same relaxed optimum, which is carried over, not re-solved.

    Nodes are reduced by :meth:`LinearRows.propagate` and pruned by :meth:`LinearRows.lp_feasible`
    first; best-first on the upper bounds.  With ``evaluate(profile) -> exact value`` (``-inf``
    when a constraint other than the rows fails), every violating relaxed optimum is also
    repaired greedily (:func:`repair`) into a candidate incumbent.  Every branching fixes a free user, so the search is
    finite.  At a limit the bound is the largest upper bound of the open nodes (or the incumbent).
    """
    import heapq
    import time

    t0 = time.perf_counter()
    best_a, best = None, -np.inf
    counter = 0
    heap: list = [(-np.inf, counter, np.asarray(state0, dtype=np.int8).copy(), None)]
    nodes = subsolves = 0

    def left():
        return None if time_limit is None else max(0.0, float(time_limit) - (time.perf_counter() - t0))

    while heap:
        negU, _, state, carried = heap[0]
        if -negU <= best + slack:
            heap.clear()
            break
        if (time_limit is not None and left() <= 0) or (node_limit is not None and nodes >= node_limit):
            break
        heapq.heappop(heap)
        nodes += 1
        state = rows.propagate(state)
        if state is None:
            continue
        if carried is not None and (np.any(carried[0][state == 1] != 1) or np.any(carried[0][state == 2] != 0)):
            carried = None              # propagation fixed a user against the carried optimum: solve again
        if carried is None:
            if not rows.lp_feasible(state):
                continue
            profile, value, upper, done = relaxed(state, left())
            subsolves += 1
            if not done:
                # stopped inside the relaxed solve: keep the node open with its proven bound
                counter += 1
                heapq.heappush(heap, (-upper, counter, state, None))
                if profile is not None and rows.feasible(profile) and value > best:
                    best_a, best = np.asarray(profile, dtype=np.int8).copy(), value
                elif profile is not None and evaluate is not None:
                    cand_a = repair(rows, state, profile)
                    v = -np.inf if cand_a is None else float(evaluate(cand_a))
                    if v > best:
                        best_a, best = cand_a, v
                break
            if profile is None:
                continue
        else:
            profile, value, upper = carried
        profile = np.asarray(profile, dtype=np.int8)
        if upper <= best + slack:
            continue
        r = rows.A @ profile.astype(float)
        over = np.maximum(r - rows.ub, rows.lb - r) - rows.slack
        if np.all(over <= 0):
            if value > best:
                best_a, best = profile.copy(), value
            continue
        if evaluate is not None and carried is None:
            cand_a = repair(rows, state, profile)
            if cand_a is not None:
                v = float(evaluate(cand_a))
                if v > best:
                    best_a, best = cand_a, v
                if upper <= best + slack:
                    continue
        free = state == 0
        j = -1
        for q in np.argsort(-over / np.maximum(rows.slack, 1e-300)):
            if over[q] <= 0:
                break
            # users whose flip moves row q towards its bounds
            sign = 1.0 if r[q] > rows.ub[q] else -1.0       # activity must fall (1) or rise (−1)
            a_q = rows.A[q] * sign
            helps = free & (((a_q > 0) & (profile == 1)) | ((a_q < 0) & (profile == 0)))
            if helps.any():
                cand = np.flatnonzero(helps)
                j = int(cand[np.argmax(np.abs(a_q[cand]))])
                break
        if j < 0:
            # no free user can repair a violated row: the relaxed optimum's fixings violate it,
            # so the node holds no feasible profile (propagation would have caught it)
            continue
        flip = state.copy()
        flip[j] = 2 if profile[j] == 1 else 1
        keep = state.copy()
        keep[j] = 1 if profile[j] == 1 else 2
        counter += 1
        heapq.heappush(heap, (-upper, counter, flip, None))
        counter += 1
        heapq.heappush(heap, (-upper, counter, keep, (profile, value, upper)))
    complete = not heap
    bound = best if complete else max(best, max(-item[0] for item in heap))
    return RowSearch(best_a, best, bound, complete, nodes, subsolves)
