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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import SolverFailed

#: Safety cap on solver calls in one envelope search (the number of pieces is finite but can be 2^n).
MAX_EVALUATIONS = 100_000


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


def envelope_pieces(evaluate: Callable[[float], Line], lo: float, hi: float, tol: float,
                    max_evaluations: int = MAX_EVALUATIONS) -> list[Piece]:
    """Every piece of ``F(θ) = max_a (b_a − θ s_a)`` on ``[lo, hi]``, left to right.

    ``evaluate(θ)`` must return an optimal line at ``θ`` (exact solver).  Slopes
    are nonincreasing from piece to piece (``F`` is convex).  Zero-width pieces
    (ties exactly at a breakpoint) are dropped.
    """
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        raise ValueError(f"need a finite interval lo <= hi, got [{lo}, {hi}]")
    count = [0]

    def ev(theta: float) -> Line:
        count[0] += 1
        if count[0] > max_evaluations:
            raise SolverFailed(f"envelope search exceeded {max_evaluations} solver calls on [{lo}, {hi}]")
        return evaluate(theta)

    left = ev(lo)
    if hi == lo:
        return [Piece(lo, hi, left)]
    right = ev(hi)
    pieces: list[Piece] = []
    # explicit stack instead of recursion (the number of pieces can be large)
    stack = [(lo, hi, left, right)]
    while stack:
        a, b, l1, l2 = stack.pop()
        ds = l1.slope - l2.slope
        if abs(ds) <= 1e-15 * max(1.0, abs(l1.slope), abs(l2.slope)):
            # parallel lines optimal at both ends of a convex envelope coincide on [a, b]
            pieces.append(Piece(a, b, l1))
            continue
        theta = (l1.intercept - l2.intercept) / ds
        theta = min(max(theta, a), b)
        l3 = ev(theta)
        if l3.value(theta) <= max(l1.value(theta), l2.value(theta)) + tol:
            pieces.append(Piece(a, theta, l1))
            pieces.append(Piece(theta, b, l2))
        else:
            # process the left part first: push right then left
            stack.append((theta, b, l3, l2))
            stack.append((a, theta, l1, l3))
    pieces.sort(key=lambda p: (p.lo, p.hi))
    nonzero = [p for p in pieces if p.hi > p.lo] or pieces[:1]
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
