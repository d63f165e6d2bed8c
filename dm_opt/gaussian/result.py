"""The Gaussian-market result: :class:`SolveResult` (the answer of :func:`dm_opt.solve`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np

from dm_opt.core.errors import NoOptimalSolution
from dm_opt.core.result import Result, _jsonable, _num, frozen_array
from dm_opt.core.status import SolutionStatus, Termination


@dataclass(frozen=True)
class SolveResult(Result):
    family: ClassVar[str] = "gaussian"

    """Answer of :func:`dm_opt.solve` for a Gaussian data market (SPEC §4).

    Attributes
    ----------
    problem, method : str
        What was solved and which backend solved it (``auto`` resolved).
    status : Termination
        Why the solver stopped.
    profile : ndarray of int8, shape (n,)
        The sharing profile ``a`` (1 = shares).  Empty if there is no solution.
    objective : float
        The problem's objective at ``profile``, evaluated exactly (fresh
        Cholesky solve), not copied from the backend.
    bound : float
        Proven upper bound on the optimal objective.
    gap : float
        :func:`relative_gap` of objective and bound (0 for proven optima).
    prices : ndarray (n,)
        Prices sustaining ``profile`` (Thm 2; Thm 6 for ``decorrelated``;
        zeros for ``first_best``).
    leakage : ndarray (n,)
        Leaked information ``I_i`` at ``profile`` (``Ĩ_i`` of Lemma 5 for
        ``decorrelated``: zero for non-sharers).
    surplus : float
        Social surplus ``Σ (1 - v_i) I_i`` at ``profile`` (with ``Ĩ`` for
        ``decorrelated``).
    optima : tuple of ndarray, or None
        Every optimal profile (within ``tie_tol``) when requested with
        ``all_optima=True``; ``None`` when not requested.
    tie_tol : float
        Absolute tolerance deciding ties: profiles whose objective is within
        ``tie_tol`` of the best are optimal.
    nodes : int
        Profiles evaluated (enumeration), nodes (branch-and-bound) or MILP nodes.
    build_seconds, solve_seconds : float
        Model-building and solving time; ``seconds`` is their sum.
    message : str
        Human-readable detail (why a limit was hit, which backend ``auto`` chose).
    extra : mapping
        Backend-specific statistics (rounds of outer approximation, …).
    """

    problem: str
    method: str
    status: Termination
    profile: np.ndarray
    objective: float
    bound: float
    gap: float
    prices: np.ndarray
    leakage: np.ndarray
    surplus: float
    optima: tuple | None = None
    tie_tol: float = 0.0
    nodes: int = 0
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    message: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        object.__setattr__(self, "profile", frozen_array(self.profile, np.int8))
        object.__setattr__(self, "prices", frozen_array(self.prices, float))
        object.__setattr__(self, "leakage", frozen_array(self.leakage, float))
        if self.optima is not None:
            object.__setattr__(
                self, "optima", tuple(frozen_array(o, np.int8) for o in self.optima)
            )
        object.__setattr__(self, "extra", dict(self.extra))

    @property
    def seconds(self) -> float:
        return self.build_seconds + self.solve_seconds

    @property
    def has_solution(self) -> bool:
        return self.profile.size > 0 and self.status is not Termination.INFEASIBLE

    @property
    def is_optimal(self) -> bool:
        return self.status is Termination.OPTIMAL

    @property
    def solution_status(self) -> SolutionStatus:
        """What is in hand (the second status axis): ``optimal`` (proven within ``tie_tol``),
        ``feasible`` (a profile with its exact objective, optimality not proven) or ``none``."""
        if self.is_optimal:
            return SolutionStatus.OPTIMAL
        return SolutionStatus.FEASIBLE if self.has_solution and np.isfinite(self.objective) else SolutionStatus.NONE

    def raise_for_status(self) -> "SolveResult":
        """Return ``self`` if the result is a proven optimum, else raise
        :class:`~dm_opt.core.errors.NoOptimalSolution` (a ``SolverFailed``)."""
        if not self.is_optimal:
            raise NoOptimalSolution(
                f"{self.method} stopped with status '{self.status}' "
                f"(objective {self.objective:.6g}, bound {self.bound:.6g}, gap {self.gap:.3g}): "
                f"{self.message or 'no proven optimum'}", result=self)
        return self

    def to_dict(self) -> dict:
        """JSON-ready dict with the fields of the public contract (SPEC §4)."""
        d = {
            "problem": self.problem,
            "method": self.method,
            "status": str(self.status),
            "solution_status": str(self.solution_status),
            "profile": self.profile.tolist(),
            "objective": _num(self.objective),
            "bound": _num(self.bound),
            "gap": _num(self.gap),
            "prices": [_num(x) for x in self.prices],
            "leakage": [_num(x) for x in self.leakage],
            "surplus": _num(self.surplus),
            "seconds": self.seconds,
            "build_seconds": self.build_seconds,
            "solve_seconds": self.solve_seconds,
            "nodes": self.nodes,
            "tie_tol": self.tie_tol,
            "message": self.message,
        }
        if self.optima is not None:
            d["optima"] = [o.tolist() for o in self.optima]
        if self.extra:
            d["extra"] = {k: _jsonable(v) for k, v in self.extra.items()}
        return d


__all__ = ["SolveResult", "Termination"]
