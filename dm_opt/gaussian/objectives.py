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

#: Problems with a known covariance, in the order the CLI lists them.
PROBLEMS = ("first_best", "equilibrium", "decorrelated")


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
            object.__setattr__(self, "k", np.zeros_like(np.asarray(self.c, dtype=float)))
        for key in ("c", "d", "e", "k"):
            arr = np.array(getattr(self, key), dtype=float)
            arr.setflags(write=False)
            object.__setattr__(self, key, arr)
        if not (self.c.shape == self.d.shape == self.e.shape == self.k.shape and self.c.ndim == 1):
            raise ProblemError("objective weights c, d, e, k must be 1-d arrays of equal length")
        if not all(np.all(np.isfinite(getattr(self, key))) for key in ("c", "d", "e", "k")):
            raise ProblemError("objective weights must be finite")

    @property
    def n(self) -> int:
        return self.c.shape[0]

    @property
    def own_term_sign_ok(self) -> bool:
        """``e ≥ 0``: the sharer term ``−e g`` is then nonincreasing in ``P_ii`` (bounds rely on it)."""
        return bool(np.all(self.e >= 0))

    def scale(self, sigma2: np.ndarray) -> float:
        """A magnitude for the objective: ``Σ (|c|+|d|+|e|) σ² + |k|`` (each term is at most this)."""
        return float(np.sum((np.abs(self.c) + np.abs(self.d) + np.abs(self.e)) * sigma2 + np.abs(self.k)))

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
    def weighted(cls, w, u, name: str = "weighted", k=None) -> "LeakageObjective":
        """``Σ w_i I_i(a) + Σ u_i I_i(a_{−i}, 0) − Σ_{i∈A} k_i`` (the general form of the extensions)."""
        w = np.asarray(w, dtype=float)
        u = np.asarray(u, dtype=float)
        return cls(name, w + u, np.zeros_like(w), u, None if k is None else np.asarray(k, dtype=float))
