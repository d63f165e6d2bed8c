"""Exact breakpoints of a one-parameter family of weighted-leakage problems.

Several extensions of AMMO optimise a weighted-leakage objective in which one
scalar ``θ`` enters linearly:

* unknown valuations (Thm B-2): user ``i``'s virtual value ``φ = Φ_i(x)`` multiplies
  her own-signal term, ``f_φ(a) = Σ_j I_j(a) − Σ_{j∈A, j≠i} Φ_j g_j − φ · a_i g_i(P_ii(a))``;
* a uniform per-transaction tax ``t`` (§6.1): ``f_t(a) = f(a) − t · |A|``.

For each profile ``a`` the value is a line ``b_a − θ s_a`` in ``θ``; the optimum
``F(θ) = max_a (b_a − θ s_a)`` is the upper envelope of finitely many lines, a
convex piecewise-linear function whose pieces are exactly the intervals on
which the optimal profile (hence ``s``: ``A_i`` for valuations, ``|A|`` for
taxes) is constant.  :func:`envelope_pieces` finds every piece with the
Eisner–Severance recursion, calling the *exact solver* only: solve at both
ends, intersect the two optimal lines, solve at the intersection; if nothing
beats the two lines there, the intersection is a breakpoint, otherwise the new
line splits the interval.  It needs at most ``2·(pieces) − 1`` solves and no
grid, and every breakpoint is the exact intersection of two lines whose
``b``, ``s`` come from fresh Cholesky evaluations (relative accuracy ~1e-13).

Tie tolerance: a profile that beats the envelope by at most ``tol`` at an
intersection is treated as tied (``tol`` is the solver's tie tolerance,
``1e-9 ×`` the objective's scale).  By the envelope identity
``∫_{θ_a}^{θ_b} s(θ) dθ = F(θ_a) − F(θ_b)`` a missed piece changes any integral of
``s`` over ``θ`` by at most ``tol``.

Limits and interruption: one :class:`~dm_opt.core.limits.Deadline` shares the time
budget among many exact solves and :func:`solve_exact` turns any solve that is not a
proven optimum (time limit, or Ctrl-C caught by a backend) into :class:`Stopped`; :func:`envelope_search` then
returns what is proven — pieces tiling a prefix of ``[lo, hi]`` and :class:`Gap` s
(optimal lines at both ends; by convexity ``F`` lies between them and the chord,
and the slope between the two end slopes) — with status ``time_limit`` /
``interrupted``.  :func:`no_partial_answer` is the exit when nothing is proven.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from dm_opt.core import limits as _limits
from dm_opt.core.errors import LimitExceeded, SolverFailed
from dm_opt.core.jsonenc import json_number
from dm_opt.core.limits import Stopped
from dm_opt.core.result import Result, Termination
from dm_opt.gaussian import api

#: Safety cap on solver calls in one envelope search (the number of pieces is finite but can be 2^n).
MAX_EVALUATIONS = 100_000


# ---------------------------------------------------------------------------
# exact solves within one shared Deadline (dm_opt.core.limits.Deadline)
# ---------------------------------------------------------------------------
def solve_exact(deadline, market, objective, method, **kw):
    """:func:`dm_opt.gaussian.api.solve` within the time left on ``deadline``; returns only proven optima.

    ``deadline`` is a :class:`~dm_opt.core.limits.Deadline` (or seconds / ``None``, turned into
    one).  A ``time_limit``/``interrupted``/``node_limit`` answer raises :class:`Stopped`
    (carrying the answer: incumbent and proven bound); ``infeasible``/``error`` raise
    :class:`~dm_opt.core.errors.SolverFailed` (a failure, not a limit), so a non-optimal solve
    can never be used as if it were exact.
    """
    deadline = _limits.Deadline.of(deadline)
    left = deadline.remaining()
    if left is not None and left <= 0:
        raise Stopped(Termination.TIME_LIMIT, deadline.message())
    res = api.solve(market, objective, method, time_limit=left, **kw)
    if res.status is Termination.OPTIMAL:
        return res
    if res.status is Termination.INTERRUPTED:
        raise Stopped(res.status, "interrupted by the user", res)
    if res.status is Termination.TIME_LIMIT:
        raise Stopped(res.status, deadline.message(), res)
    if res.status is Termination.NODE_LIMIT:
        raise Stopped(res.status, res.message or "node limit reached", res)
    res.raise_for_status()
    return res  # pragma: no cover


def interrupted() -> Stopped:
    """The :class:`Stopped` for a Ctrl-C (KeyboardInterrupt) caught outside a solve."""
    return Stopped(Termination.INTERRUPTED, "interrupted by the user")


def no_partial_answer(status, message: str):
    """Stop with nothing proven: re-raise Ctrl-C as :class:`KeyboardInterrupt` (the CLI exits 130),
    or raise :class:`~dm_opt.core.errors.LimitExceeded` for a time limit (never a non-optimal answer)."""
    if Termination(status) is Termination.INTERRUPTED:
        raise KeyboardInterrupt(message)
    raise LimitExceeded(message)


def json_num(x):
    """A float for JSON where NaN means "not computed": ``None`` (null) for NaN, else
    :func:`dm_opt.core.jsonenc.json_number` (``"inf"``/``"-inf"`` for infinities)."""
    x = float(x)
    return None if math.isnan(x) else json_number(x)


@dataclass(frozen=True)
class Line:
    """The optimal profile at some ``θ`` as a line ``value(θ) = intercept − θ · slope``."""

    intercept: float
    slope: float
    payload: Any = None          # the solver result (profile, …)

    def value(self, theta: float) -> float:
        return self.intercept - theta * self.slope


@dataclass(frozen=True)
class Piece:
    """``[lo, hi]`` on which ``line`` is optimal (its profile is an optimum for every θ inside)."""

    lo: float
    hi: float
    line: Line


@dataclass(frozen=True)
class Gap:
    """``[lo, hi]`` not resolved when a search stopped: ``left`` is optimal at ``lo``, ``right`` at ``hi``
    (``None`` if ``hi`` was never solved).

    Proven: ``F`` is convex, so on ``[lo, hi]`` ``max(left, right) ≤ F ≤`` the chord, and the optimal
    slope ``s(θ)`` (minus a subgradient of ``F``) lies in ``[right.slope, left.slope]``.
    """

    lo: float
    hi: float
    left: Line
    right: Line | None


@dataclass(frozen=True)
class Envelope(Result):
    """Result of :func:`envelope_search`: proven ``pieces`` (left to right) and unresolved ``gaps``.

    Complete (``status`` optimal): the pieces tile ``[lo, hi]`` and there are no gaps.  Stopped
    (``time_limit``/``interrupted``): the pieces tile a prefix ``[lo, covered_hi]`` (the search is
    depth-first, left part first) and the gaps tile ``[covered_hi, hi]``; both empty if not even
    ``F(lo)`` was solved.
    """

    lo: float
    hi: float
    pieces: tuple
    gaps: tuple
    status: Termination
    message: str
    evaluations: int
    family: ClassVar[str] = "gaussian"

    @property
    def objective(self) -> float:
        """``F`` at the right end of the proven pieces (``nan`` if none is proven)."""
        return self.pieces[-1].line.value(self.pieces[-1].hi) if self.pieces else float("nan")

    @property
    def bound(self) -> float:
        return self.objective if self.complete else float("nan")

    @property
    def extra(self) -> dict:
        return {"evaluations": self.evaluations, "covered_hi": self.covered_hi, "gaps": len(self.gaps)}

    def to_dict(self) -> dict:
        return {**self.protocol_dict(), "lo": self.lo, "hi": self.hi, "covered_hi": self.covered_hi,
                "pieces": [[json_number(p.lo), json_number(p.hi)] for p in self.pieces],
                "gaps": [[json_number(g.lo), json_number(g.hi)] for g in self.gaps],
                "evaluations": self.evaluations}

    @property
    def complete(self) -> bool:
        return self.status is Termination.OPTIMAL

    @property
    def covered_hi(self) -> float:
        return self.pieces[-1].hi if self.pieces else self.lo


def _merge_pieces(pieces: list, tol: float) -> list:
    pieces = sorted(pieces, key=lambda p: (p.lo, p.hi))
    nonzero = [p for p in pieces if p.hi > p.lo] or pieces[:1]
    if not nonzero:
        return []
    # a line found at an intersection splits its interval in two: merge adjacent pieces of the same line
    merged = [nonzero[0]]
    for p in nonzero[1:]:
        q = merged[-1]
        same = (abs(p.line.slope - q.line.slope) <= 1e-15 * max(1.0, abs(p.line.slope))
                and abs(p.line.value(p.lo) - q.line.value(p.lo)) <= tol)
        if same:
            merged[-1] = Piece(q.lo, p.hi, q.line)
        else:
            merged.append(p)
    return merged


def envelope_search(evaluate: Callable[[float], Line], lo: float, hi: float, tol: float,
                    max_evaluations: int = MAX_EVALUATIONS) -> Envelope:
    """Every piece of ``F(θ) = max_a (b_a − θ s_a)`` on ``[lo, hi]``, stopping cleanly.

    ``evaluate(θ)`` must return an optimal line at ``θ`` (exact solver, e.g. through
    :func:`solve_exact`).  If it raises :class:`Stopped` (time limit, or Ctrl-C caught
    by a backend) or a :class:`KeyboardInterrupt` arrives, the search returns what is
    proven: the pieces found so far (a prefix of ``[lo, hi]``) and the unresolved
    :class:`Gap` s, with the stop's status.  Interval endpoints are only dropped from the
    work list after their solve succeeded, so the gaps cover exactly what is unproven.
    """
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        raise ValueError(f"need a finite interval lo <= hi, got [{lo}, {hi}]")
    count = [0]

    def ev(theta: float) -> Line:
        count[0] += 1
        if count[0] > max_evaluations:
            raise SolverFailed(f"envelope search exceeded {max_evaluations} solver calls on [{lo}, {hi}]")
        return evaluate(theta)

    pieces: list[Piece] = []
    stack: list = []
    left = None
    status, message = Termination.OPTIMAL, ""
    try:
        left = ev(lo)
        if hi == lo:
            return Envelope(lo, hi, (Piece(lo, hi, left),), (), status, message, count[0])
        right = ev(hi)
        # explicit stack instead of recursion (the number of pieces can be large); the top is the
        # leftmost open interval, so proven pieces always form a prefix of [lo, hi]
        stack.append((lo, hi, left, right))
        while stack:
            a, b, l1, l2 = stack[-1]
            ds = l1.slope - l2.slope
            if abs(ds) <= 1e-15 * max(1.0, abs(l1.slope), abs(l2.slope)):
                # parallel lines optimal at both ends of a convex envelope coincide on [a, b]
                stack.pop()
                pieces.append(Piece(a, b, l1))
                continue
            theta = (l1.intercept - l2.intercept) / ds
            theta = min(max(theta, a), b)
            l3 = ev(theta)
            stack.pop()
            if l3.value(theta) <= max(l1.value(theta), l2.value(theta)) + tol:
                pieces.append(Piece(a, theta, l1))
                pieces.append(Piece(theta, b, l2))
            else:
                # process the left part first: push right then left
                stack.append((theta, b, l3, l2))
                stack.append((a, theta, l1, l3))
    except Stopped as stop:
        status, message = stop.status, stop.message
    except KeyboardInterrupt:
        status, message = Termination.INTERRUPTED, "interrupted by the user"
    if status is Termination.OPTIMAL:
        return Envelope(lo, hi, tuple(_merge_pieces(pieces, tol)), (), status, message, count[0])
    if left is None:
        return Envelope(lo, hi, (), (), status, message, count[0])
    if not stack:                                   # stopped while solving at hi
        gaps = (Gap(lo, hi, left, None),)
    else:
        gaps = tuple(Gap(a, b, l1, l2) for a, b, l1, l2 in reversed(stack))
    return Envelope(lo, hi, tuple(_merge_pieces(pieces, tol)), gaps, status, message, count[0])


def envelope_pieces(evaluate: Callable[[float], Line], lo: float, hi: float, tol: float,
                    max_evaluations: int = MAX_EVALUATIONS) -> list[Piece]:
    """Every piece of ``F(θ) = max_a (b_a − θ s_a)`` on ``[lo, hi]``, left to right.

    ``evaluate(θ)`` must return an optimal line at ``θ`` (exact solver).  Slopes
    are nonincreasing from piece to piece (``F`` is convex).  Zero-width pieces
    (ties exactly at a breakpoint) are dropped.  All or nothing: a stopped search
    (see :func:`envelope_search`, which returns partial answers) re-raises Ctrl-C as
    :class:`KeyboardInterrupt` and a time limit as :class:`~dm_opt.core.errors.LimitExceeded`.
    """
    env = envelope_search(evaluate, lo, hi, tol, max_evaluations)
    if not env.complete:
        no_partial_answer(env.status, f"envelope search on [{lo}, {hi}] stopped: {env.message}")
    return list(env.pieces)
