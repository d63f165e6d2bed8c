"""Weighted-leakage objectives: the one shape every Gaussian-market problem takes.

Every problem of AMMO with a known ``Σ`` maximises, over profiles
``a ∈ {0,1}^n`` with sharing set ``A``,

    f(a) = Σ_i c_i I_i(a) + Σ_{i∈A} [ d_i I_i(a) − e_i g_i(P_ii(a)) − k_i ]

where ``P(a)`` is the posterior covariance, ``I_i(a) = σ_i² − P_ii(a)`` and
``g_i(x) = x² / (τ_i² − x)`` is the own-signal term of docs/spec.md §1.1:
``I_i(a) − I_i(a_{−i}, 0) = g_i(P_ii(a))`` for a sharer ``i`` (Thm 2, eq. 5).

=================  ==============  ==============  ==============  ==================
problem            c (all users)   d (sharers)     e (sharers)     source
=================  ==============  ==============  ==============  ==================
first_best         1 − v           0               0               Prop 1
equilibrium        1               0               v               Thm 1 (+ Thm 2)
decorrelated       0               1 − v           0               Lemma 5, Thm 6
weighted (w, u)    w + u           0               u               Σ w I(a) + Σ u I(a_{−i},0)
=================  ==============  ==============  ==============  ==================

The equilibrium row follows from Thm 1's objective
``Σ (1−v_i) I_i(a) + v_i I_i(a_{−i}, 0)`` and eq. (5): for a sharer
``I_i(a_{−i},0) = I_i(a) − g_i(P_ii(a))``, for a non-sharer ``I_i(a_{−i},0) = I_i(a)``.
The ``weighted`` row is the general form asked for by the extensions
(virtual values, taxes); ``k`` is a constant per sharer (a per-transaction
tax or cost, §6.1), zero for the three named problems.  Solvers only ever see
``(c, d, e, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dm_opt.core.errors import ProblemError

#: Users per block of :meth:`LeakageObjective.scale` (its temporaries stay this small at any n).
SCALE_BLOCK = 1 << 16

#: Problems with a known covariance, in the order the CLI lists them.
PROBLEMS = ("first_best", "equilibrium", "decorrelated")


def _zeros(n: int) -> np.ndarray:
    """A read-only zero weight vector (``np.zeros`` pages are mapped lazily: no pass over memory)."""
    z = np.zeros(n)
    z.setflags(write=False)
    return z


def _frozen(x, own: bool = False) -> np.ndarray:
    """A read-only float copy of ``x``, or ``x`` itself when nothing else can write it.

    ``x`` is kept when it is a read-only float64 array owning its data (no writable base that
    could change it), or when ``own`` says the caller just made it and hands it over.
    """
    arr = np.asarray(x, dtype=float)
    if own and arr.base is None:
        arr.setflags(write=False)
        return arr
    if arr.base is None and not arr.flags.writeable and arr.dtype == np.float64:
        return arr
    arr = np.array(arr, dtype=float)
    arr.setflags(write=False)
    return arr


def _all_finite(x: np.ndarray) -> bool:
    """``np.all(np.isfinite(x))`` without an n-length temporary when the sum is finite.

    A nan or ±inf entry makes the sum nan or ±inf, so a finite sum proves every entry finite; a
    sum that overflows from finite entries falls back to the entrywise test.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(x)):
            return True
    return bool(np.all(np.isfinite(x)))


@dataclass(frozen=True)
class LeakageObjective:
    """``f(a) = Σ c_i I_i(a) + Σ_{i∈A} (d_i I_i(a) − e_i g_i(P_ii(a)) − k_i)``; arrays of shape (n,).

    ``k`` defaults to zeros.
    """

    name: str
    c: np.ndarray
    d: np.ndarray
    e: np.ndarray
    k: np.ndarray | None = None

    def __post_init__(self):
        if self.k is None:
            object.__setattr__(self, "k", _zeros(np.shape(self.c)[0] if np.ndim(self.c) == 1 else 0))
        for key in ("c", "d", "e", "k"):
            object.__setattr__(self, key, _frozen(getattr(self, key)))
        if not (self.c.shape == self.d.shape == self.e.shape == self.k.shape and self.c.ndim == 1):
            raise ProblemError("objective weights c, d, e, k must be 1-d arrays of equal length")
        if not all(_all_finite(getattr(self, key)) for key in ("c", "d", "e", "k")):
            raise ProblemError("objective weights must be finite")
        # weights that are identically zero (the named problems' d, e, k): O(n) work on them is skipped
        object.__setattr__(self, "_zero", frozenset(key for key in ("c", "d", "e", "k")
                                                    if not np.any(getattr(self, key))))

    def is_zero(self, key: str) -> bool:
        """Whether weight ``key`` (``"c"``, ``"d"``, ``"e"`` or ``"k"``) is zero for every user."""
        return key in self._zero

    @property
    def n(self) -> int:
        return self.c.shape[0]

    @property
    def own_term_sign_ok(self) -> bool:
        """``e ≥ 0``: the sharer term ``−e g`` is then nonincreasing in ``P_ii`` (bounds rely on it)."""
        return bool(np.all(self.e >= 0))

    def scale(self, sigma2: np.ndarray) -> float:
        """A magnitude for the objective: ``Σ (|c|+|d|+|e|) σ² + |k|`` (each term is at most this)."""
        # the same terms, with identically-zero weights left out (adding an exact 0 changes no bit),
        # formed in blocks in one small buffer: at n = 10⁷ each n-length temporary is a pass over
        # fresh memory.  Blocks are summed pairwise, then their sums (round-off as np.sum's).
        sigma2 = np.asarray(sigma2, dtype=float)
        n = self.n
        if sigma2.shape != (n,):
            sigma2 = np.broadcast_to(sigma2, (n,))
        weights = [getattr(self, key) for key in ("d", "e") if not self.is_zero(key)]
        k = None if self.is_zero("k") else self.k
        buf = np.empty(min(n, SCALE_BLOCK))
        parts = []
        for lo in range(0, n, SCALE_BLOCK):
            hi = min(n, lo + SCALE_BLOCK)
            t = buf[:hi - lo]
            np.abs(self.c[lo:hi], out=t)
            for w in weights:
                t += np.abs(w[lo:hi])
            t *= sigma2[lo:hi]
            if k is not None:
                t += np.abs(k[lo:hi])
            parts.append(np.sum(t))
        return float(np.sum(parts))

    @classmethod
    def for_problem(cls, problem: str, values: np.ndarray) -> "LeakageObjective":
        v = np.asarray(values, dtype=float)
        # one fresh array per nonzero weight, frozen here so __post_init__ need not copy it again
        # (each n-length copy costs a pass and fresh pages at n = 10⁷); the zero weights share one
        # read-only array
        zero = _zeros(v.shape[0] if v.ndim == 1 else 0)
        if problem == "first_best":
            return cls(problem, _frozen(1.0 - v, own=True), zero, zero, zero)
        if problem == "equilibrium":
            return cls(problem, _frozen(np.ones_like(v), own=True), zero, v, zero)
        if problem == "decorrelated":
            return cls(problem, zero, _frozen(1.0 - v, own=True), zero, zero)
        raise ProblemError(
            f"unknown problem '{problem}' for a Gaussian market; choose one of {', '.join(PROBLEMS)}"
        )

    @classmethod
    def weighted(cls, w, u, name: str = "weighted", k=None) -> "LeakageObjective":
        """``Σ w_i I_i(a) + Σ u_i I_i(a_{−i}, 0) − Σ_{i∈A} k_i`` (the general form of the extensions)."""
        w = np.asarray(w, dtype=float)
        u = np.asarray(u, dtype=float)
        return cls(name, _frozen(w + u, own=True), np.zeros(w.shape), u,
                   None if k is None else np.asarray(k, dtype=float))
