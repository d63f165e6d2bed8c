"""Results of the Gaussian family.

:class:`SolveResult` is the answer of :func:`dm_opt.solve` for the leakage problems
(first best, equilibrium, de-correlated, weighted leakage); :class:`ValuationResult` and
:class:`CompetitionResult` put the outcomes of the unknown-valuations problems
(:mod:`dm_opt.gaussian.valuations`) and of two-platform competition
(:mod:`dm_opt.gaussian.platforms`) under the same result protocol
(:mod:`dm_opt.core.result`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np

from dm_opt.core.errors import NoOptimalSolution
from dm_opt.core.jsonenc import json_number as _num
from dm_opt.core.jsonenc import jsonable as _jsonable
from dm_opt.core.result import PROTOCOL, Result, frozen_array
from dm_opt.core.status import SolutionStatus, Termination


@dataclass(frozen=True)
class SolveResult(Result):
    """Answer of :func:`dm_opt.solve` for a Gaussian data market (docs/spec.md §4).

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

    family: ClassVar[str] = "gaussian"

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
        """JSON-ready dict with the fields of the public contract (docs/spec.md §4)."""
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


@dataclass(frozen=True)
class OutcomeResult(Result):
    """A problem's own outcome object (``outcome``: it has ``status``, ``message`` and
    ``to_dict()``) under the result protocol.

    ``objective``/``bound`` are chosen by the problem (see :mod:`dm_opt.gaussian.problems`);
    ``status`` and ``message`` are the outcome's; :meth:`to_dict` is the protocol fields, then
    ``problem`` and ``method``, then the outcome's own fields.
    """

    family: ClassVar[str] = "gaussian"

    problem: str
    method: str
    outcome: Any
    objective: float = math.nan
    bound: float = math.nan
    seconds: float = 0.0

    @property
    def status(self) -> Termination:
        return Termination(self.outcome.status)

    @property
    def message(self) -> str:
        return str(getattr(self.outcome, "message", "") or "")

    @property
    def complete(self) -> bool:
        return self.status is Termination.OPTIMAL

    def outcome_dict(self) -> dict:
        return self.outcome.to_dict()

    def to_dict(self) -> dict:
        own = {k: v for k, v in self.outcome_dict().items() if k not in PROTOCOL}
        if "method" in own:                     # the outcome's own method (e.g. exact | monte_carlo)
            own["estimator"] = own.pop("method")
        return {**self.protocol_dict(), "problem": self.problem, "method": self.method, **_jsonable(own)}


@dataclass(frozen=True)
class ValuationResult(OutcomeResult):
    """``mechanism`` (Thm B-2), ``vcg`` (Prop B-1) or ``expected_payoff`` of a market with unknown
    valuations; ``outcome`` is the :class:`~dm_opt.gaussian.valuations.MechanismOutcome`,
    :class:`~dm_opt.gaussian.valuations.VCGOutcome` or :class:`~dm_opt.gaussian.valuations.ExpectedPayoff`."""


@dataclass(frozen=True)
class CompetitionResult(OutcomeResult):
    """Two platforms competing with data prices (AMMO §4): ``outcome`` is the
    :class:`~dm_opt.gaussian.platforms.SearchResult` of the price-equilibrium search, with the
    first-best and monopoly benchmarks.  ``objective`` is the largest surplus of an equilibrium
    found (``nan`` if none), ``bound`` the first-best surplus (no joint action has more)."""

    first_best_surplus: float = math.nan
    first_best_outcomes: tuple = ()
    monopoly_surplus: float = math.nan
    monopoly_sharing: np.ndarray | None = None
    assumption1: Any = None                 # the market's Assumption 1 report
    #: equilibria listed by :meth:`to_dict` (all are in ``outcome.equilibria``)
    MAX_LISTED: ClassVar[int] = 200

    def outcome_groups(self) -> list:
        """``[((description, surplus, efficient), number of price pairs)]`` of the equilibria found, sorted."""
        groups = Counter((e.outcome.describe(), round(e.outcome.surplus, 10), e.efficient)
                         for e in self.outcome.equilibria)
        return sorted(groups.items())

    def outcome_dict(self) -> dict:
        res = self.outcome
        a1 = self.assumption1
        return {
            "candidates_covered": res.candidates_covered, "pairs_checked": res.pairs_checked,
            "assumption1": None if a1 is None else a1.holds,
            "assumption1_violations": [] if a1 is None else list(a1.violations),
            "candidates": res.candidates, "pairs_without_user_equilibrium": res.pairs_without_user_equilibrium,
            "deviation": res.deviation, "first_best_surplus": self.first_best_surplus,
            "monopoly_surplus": self.monopoly_surplus,
            "monopoly_sharing": [] if self.monopoly_sharing is None else np.asarray(self.monopoly_sharing).tolist(),
            "equilibria_found": len(res.equilibria), "efficient_equilibrium_found": res.efficient_exists,
            "outcomes": [{"outcome": k[0], "surplus": k[1], "efficient": k[2], "price_pairs": c}
                         for k, c in self.outcome_groups()],
            "equilibria": [{"p1": e.p1.tolist(), "p2": e.p2.tolist(), "b": e.outcome.b.tolist(),
                            "a": e.outcome.a.tolist(), "platform_payoffs": list(e.outcome.platform_payoffs),
                            "surplus": e.outcome.surplus, "efficient": e.efficient}
                           for e in res.equilibria[:self.MAX_LISTED]],
        }


__all__ = ["SolveResult", "Termination", "OutcomeResult", "ValuationResult", "CompetitionResult"]
