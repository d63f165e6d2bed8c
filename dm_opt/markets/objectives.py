"""Weighted-leakage objectives: the one shape every Gaussian-market problem takes.

Every problem of AMMO with a known ``Σ`` maximises, over profiles
``a ∈ {0,1}^n`` with sharing set ``A``,

    f(a) = Σ_i c_i I_i(a) + Σ_{i∈A} [ d_i I_i(a) − e_i g_i(P_ii(a)) ]

where ``P(a)`` is the posterior covariance, ``I_i(a) = σ_i² − P_ii(a)`` and
``g_i(x) = x² / (τ_i² − x)`` is the own-signal term of SPEC §1.1:
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
(virtual values, taxes): solvers only ever see ``(c, d, e)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ProblemError

#: Problems with a known covariance, in the order the CLI lists them.
PROBLEMS = ("first_best", "equilibrium", "decorrelated")


@dataclass(frozen=True)
class LeakageObjective:
    """``f(a) = Σ c_i I_i(a) + Σ_{i∈A} (d_i I_i(a) − e_i g_i(P_ii(a)))``; arrays of shape (n,)."""

    name: str
    c: np.ndarray
    d: np.ndarray
    e: np.ndarray

    def __post_init__(self):
        for k in ("c", "d", "e"):
            arr = np.array(getattr(self, k), dtype=float)
            arr.setflags(write=False)
            object.__setattr__(self, k, arr)
        if not (self.c.shape == self.d.shape == self.e.shape and self.c.ndim == 1):
            raise ProblemError("objective weights c, d, e must be 1-d arrays of equal length")
        if not (np.all(np.isfinite(self.c)) and np.all(np.isfinite(self.d)) and np.all(np.isfinite(self.e))):
            raise ProblemError("objective weights must be finite")

    @property
    def n(self) -> int:
        return self.c.shape[0]

    @property
    def own_term_sign_ok(self) -> bool:
        """``e ≥ 0``: the sharer term ``−e g`` is then nonincreasing in ``P_ii`` (bounds rely on it)."""
        return bool(np.all(self.e >= 0))

    def scale(self, sigma2: np.ndarray) -> float:
        """A magnitude for the objective: ``Σ (|c|+|d|+|e|) σ²`` (each term is at most this)."""
        return float(np.sum((np.abs(self.c) + np.abs(self.d) + np.abs(self.e)) * sigma2))

    @classmethod
    def for_problem(cls, problem: str, values: np.ndarray) -> "LeakageObjective":
        v = np.asarray(values, dtype=float)
        zero = np.zeros_like(v)
        if problem == "first_best":
            return cls(problem, 1.0 - v, zero, zero)
        if problem == "equilibrium":
            return cls(problem, np.ones_like(v), zero, v)
        if problem == "decorrelated":
            return cls(problem, zero, 1.0 - v, zero)
        raise ProblemError(
            f"unknown problem '{problem}' for a Gaussian market; choose one of {', '.join(PROBLEMS)}"
        )

    @classmethod
    def weighted(cls, w, u, name: str = "weighted") -> "LeakageObjective":
        """``Σ w_i I_i(a) + Σ u_i I_i(a_{−i}, 0)`` (the general form of the extensions)."""
        w = np.asarray(w, dtype=float)
        u = np.asarray(u, dtype=float)
        return cls(name, w + u, np.zeros_like(w), u)
