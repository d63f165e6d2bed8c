"""The two status axes of every dm_opt result, as in Pyomo's ``contrib.solver``.

* :class:`Termination` — *why the solver stopped*;
* :class:`SolutionStatus` — *what is in hand* when it stopped.

They are independent on purpose: a branch-and-bound stopped by its time limit has
``Termination.TIME_LIMIT`` and usually ``SolutionStatus.FEASIBLE`` (an incumbent whose
objective is exact, optimality not proven).  Only ``Termination.OPTIMAL`` comes with
``SolutionStatus.OPTIMAL``, and only when the certificate of ``docs/spec.md`` §1.1 holds
(finite objective re-evaluated at the returned answer, ``bound − objective ≤`` the tie
tolerance).

HiGHS' model statuses are mapped in one place, :func:`highs_termination`, and its primal
solution status in :func:`highs_has_solution` (no magic numbers elsewhere).
"""

from __future__ import annotations

import enum


class Termination(str, enum.Enum):
    """Why a solve stopped.  Compares equal to its string value (``status == "optimal"``)."""

    OPTIMAL = "optimal"                  # proven optimal: gap within the tie tolerance
    FEASIBLE = "feasible"                # finished, but the bound does not prove the answer optimal
                                         # within the tolerance (the true gap is reported)
    TIME_LIMIT = "time_limit"            # stopped by the time limit; best answer so far returned
    NODE_LIMIT = "node_limit"            # stopped by a node limit (branch-and-bound, MIP nodes)
    ITERATION_LIMIT = "iteration_limit"  # stopped by an iteration/round limit (outer-approximation
                                         # rounds, simplex iterations, HiGHS solution limit)
    INTERRUPTED = "interrupted"          # stopped by the user (Ctrl-C / SIGTERM); best answer returned
    INFEASIBLE = "infeasible"            # proven: no answer satisfies the constraints
    ERROR = "error"                      # numerical or backend failure
    UNKNOWN = "unknown"                  # the backend gave no reason

    def __str__(self) -> str:            # prints as "optimal", not "Termination.OPTIMAL"
        return self.value

    @property
    def is_limit(self) -> bool:
        """Stopped early by a limit or the user (an answer may be in hand, not proven)."""
        return self in (Termination.TIME_LIMIT, Termination.NODE_LIMIT, Termination.ITERATION_LIMIT,
                        Termination.INTERRUPTED)


class SolutionStatus(str, enum.Enum):
    """What is in hand when the solver stopped."""

    NONE = "none"            # no answer (infeasible, error before any incumbent, …)
    FEASIBLE = "feasible"    # an answer whose objective is exact; optimality not proven
    OPTIMAL = "optimal"      # a proven optimum (only with Termination.OPTIMAL)

    def __str__(self) -> str:
        return self.value


def solution_status_of(status, has_answer: bool) -> SolutionStatus:
    """The second axis from the first and whether an answer with a finite objective is in hand."""
    status = Termination(status)
    if status is Termination.OPTIMAL and has_answer:
        return SolutionStatus.OPTIMAL
    if has_answer and status not in (Termination.INFEASIBLE, Termination.ERROR):
        return SolutionStatus.FEASIBLE
    return SolutionStatus.NONE


#: HiGHS model status name -> Termination (``highspy.HighsModelStatus.<name>``).
HIGHS_TERMINATION = {
    "kOptimal": Termination.OPTIMAL,
    "kInfeasible": Termination.INFEASIBLE,
    "kUnboundedOrInfeasible": Termination.ERROR,   # our models are bounded; unbounded = a bug
    "kUnbounded": Termination.ERROR,
    "kTimeLimit": Termination.TIME_LIMIT,
    "kIterationLimit": Termination.ITERATION_LIMIT,
    "kSolutionLimit": Termination.ITERATION_LIMIT,
    "kObjectiveBound": Termination.ITERATION_LIMIT,
    "kObjectiveTarget": Termination.ITERATION_LIMIT,
    "kInterrupt": Termination.INTERRUPTED,
    "kHighsInterrupt": Termination.INTERRUPTED,
    "kMemoryLimit": Termination.ERROR,
    "kNotset": Termination.UNKNOWN,
    "kLoadError": Termination.ERROR,
    "kModelError": Termination.ERROR,
    "kPresolveError": Termination.ERROR,
    "kSolveError": Termination.ERROR,
    "kPostsolveError": Termination.ERROR,
    "kModelEmpty": Termination.ERROR,
    "kUnknown": Termination.UNKNOWN,
}


def highs_termination(model_status) -> Termination:
    """:class:`Termination` of a ``highspy.HighsModelStatus`` (or its name)."""
    name = getattr(model_status, "name", str(model_status))
    return HIGHS_TERMINATION.get(name, Termination.UNKNOWN)


def highs_has_solution(h) -> bool:
    """Does the ``highspy.Highs`` instance ``h`` hold a primal feasible point?  (``info.valid`` is
    false when HiGHS was stopped before solving anything; its fields then read 0.)"""
    import highspy

    info = h.getInfo()
    return bool(info.valid) and info.primal_solution_status == int(
        highspy.SolutionStatus.kSolutionStatusFeasible)


__all__ = ["Termination", "SolutionStatus", "solution_status_of", "HIGHS_TERMINATION",
           "highs_termination", "highs_has_solution"]
