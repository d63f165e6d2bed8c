"""cvxpy as the modelling layer of the small GLP LPs (``P_q`` for one-off solves, the piece LPs,
the equilibrium LPs), solved by HiGHS.  cvxpy is imported on first use (:func:`_cp`): it takes
about a second to import and the closed-form path never needs it."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import warnings

from dm_opt.core.errors import ProblemError, SolverFailed
from dm_opt.core.highs import silence_banner
from dm_opt.core.limits import Deadline
from dm_opt.info_design.common import LARGE_LP_OPTIONS, LP_OPTIONS, MIN_SOLVE_SECONDS


def _cp():
    import cvxpy as cp

    silence_banner()
    return cp


@dataclasses.dataclass
class CvxpyOptions:
    """The user's cvxpy options for the LPs of one ``dm_opt.solve`` call (checked by
    :mod:`dm_opt.info_design.problems`): ``solver`` (a cvxpy solver name), ``solver_options``
    (keywords of ``Problem.solve``, replacing dm_opt's HiGHS defaults key by key) and ``verbose``.
    ``solves`` counts the LPs that used them."""

    solver: str = "HIGHS"
    solver_options: dict = dataclasses.field(default_factory=dict)
    verbose: bool = False
    solves: int = 0


#: the options in force (a context variable, so the LP classes need not pass them along)
_OPTIONS: contextvars.ContextVar = contextvars.ContextVar("dm_opt_info_design_cvxpy_options", default=None)


@contextlib.contextmanager
def cvxpy_options(options: CvxpyOptions):
    """Every :func:`_solve` inside the ``with`` block uses ``options``."""
    token = _OPTIONS.set(options)
    try:
        yield options
    finally:
        _OPTIONS.reset(token)


def _solve(prob, what: str, large: bool = False, time_limit=None):
    """Solve a cvxpy LP with HiGHS; returns cvxpy's status (``"user_limit"`` when the time ran
    out first).

    ``time_limit`` (seconds, or a :class:`~dm_opt.core.limits.Deadline`) covers cvxpy's
    compilation too: the problem is compiled first (cached for parametrised problems) and
    HiGHS gets what is left; nothing is solved when nothing is left.
    """
    cp = _cp()
    opts = dict(LARGE_LP_OPTIONS if large else LP_OPTIONS)
    solver, verbose, user = cp.HIGHS, False, _OPTIONS.get()
    if user is not None:                 # dm_opt.solve(..., options={...}): the defaults are HiGHS options
        user.solves += 1
        solver, verbose = user.solver, user.verbose
        opts = {**(opts if solver == cp.HIGHS else {}), **user.solver_options}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # cvxpy's "may be inaccurate" at a time limit
            if time_limit is None:
                prob.solve(solver=solver, verbose=verbose, **opts)
                return _user_answer_status(prob, user)
            if not isinstance(time_limit, Deadline) and float(time_limit) <= 0:
                return "user_limit"           # a budget already spent (a float of remaining seconds)
            dl = Deadline.of(time_limit)
            if dl.expired():                  # not even the compilation
                return "user_limit"
            data, chain, inverse = prob.get_problem_data(solver, solver_opts=dict(opts))
            left = dl.remaining()
            if left is not None and left <= 0:
                return "user_limit"
            if left is not None and solver == cp.HIGHS:     # other solvers: checked between LPs only
                t = max(float(left), MIN_SOLVE_SECONDS)
                if "highs_options" in opts:
                    opts["highs_options"] = {**opts["highs_options"], "time_limit": t}
                else:
                    opts["time_limit"] = t
            solution = chain.solve_via_data(prob, data, False, verbose, opts)
            prob.unpack_results(solution, chain, inverse)
    except cp.error.SolverError as exc:  # pragma: no cover - backend failure
        raise SolverFailed(f"{solver} failed on {what}: {exc}") from None
    except ProblemError:                 # _user_answer_status: not a refusal of the options themselves
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:    # a solver refusing the user's solver_options
        if user is None or not user.solver_options:
            raise
        # (OverflowError: a negative count for an unsigned option, e.g. CLARABEL max_iter=-5); the solver's
        # own text may run over several lines: one line, shortened
        why = " ".join(str(exc).split())
        why = why if len(why) <= 200 else why[:197] + "..."
        raise ProblemError(f"options['solver_options']: {solver} refused them ({why})") from None
    return _user_answer_status(prob, user)


#: Largest constraint violation (relative to the constraint's magnitude, at least 1) accepted from a
#: solve with the user's ``options``: looser tolerances (e.g. HiGHS ``primal_feasibility_tolerance``)
#: must not turn an infeasible point into an "optimal" answer.
USER_OPTIONS_VIOLATION_TOL = 1e-6


def _user_answer_status(prob, user) -> str:
    """``prob.status``, after checking that an "optimal" answer of a solve with the user's options
    satisfies the constraints (else :class:`ProblemError` naming ``options``).  dm_opt's own settings
    keep HiGHS' default tolerances and are not re-checked."""
    if user is None or prob.status != "optimal":
        return prob.status
    import numpy as np

    worst = 0.0
    for c in prob.constraints:
        viol = np.max(np.abs(np.asarray(c.violation(), dtype=float)), initial=0.0)
        size = max([1.0] + [float(np.max(np.abs(np.asarray(a.value, dtype=float)), initial=0.0))
                            for a in c.args if a.value is not None])
        worst = max(worst, float(viol) / size)
    if not worst <= USER_OPTIONS_VIOLATION_TOL:
        raise ProblemError(f"options: the {user.solver} answer violates the LP's constraints by {worst:.3g} "
                           f"(relative; above {USER_OPTIONS_VIOLATION_TOL:g}): loosened solver_options tolerances?")
    return prob.status


def _stopped_status(status: str) -> bool:
    return status in ("user_limit", "optimal_inaccurate", "infeasible_inaccurate", "unbounded_inaccurate")



__all__ = ["CvxpyOptions", "cvxpy_options"]
