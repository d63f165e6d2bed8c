"""cvxpy as the modelling layer of the small GLP LPs (``P_q`` for one-off solves, the piece LPs,
the equilibrium LPs), solved by HiGHS.  cvxpy is imported on first use (:func:`_cp`): it takes
about a second to import and the closed-form path never needs it."""

from __future__ import annotations

import warnings

from dm_opt.core.errors import SolverFailed
from dm_opt.core.highs import silence_banner
from dm_opt.core.limits import Deadline
from dm_opt.info_design.common import LARGE_LP_OPTIONS, LP_OPTIONS, MIN_SOLVE_SECONDS


def _cp():
    import cvxpy as cp

    silence_banner()
    return cp


def _solve(prob, what: str, large: bool = False, time_limit=None):
    """Solve a cvxpy LP with HiGHS; returns cvxpy's status (``"user_limit"`` when the time ran
    out first).

    ``time_limit`` (seconds, or a :class:`~dm_opt.core.limits.Deadline`) covers cvxpy's
    compilation too: the problem is compiled first (cached for parametrised problems) and
    HiGHS gets what is left; nothing is solved when nothing is left.
    """
    cp = _cp()
    opts = dict(LARGE_LP_OPTIONS if large else LP_OPTIONS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # cvxpy's "may be inaccurate" at a time limit
            if time_limit is None:
                prob.solve(solver=cp.HIGHS, **opts)
                return prob.status
            if not isinstance(time_limit, Deadline) and float(time_limit) <= 0:
                return "user_limit"           # a budget already spent (a float of remaining seconds)
            dl = Deadline.of(time_limit)
            if dl.expired():                  # not even the compilation
                return "user_limit"
            data, chain, inverse = prob.get_problem_data(cp.HIGHS, solver_opts=dict(opts))
            left = dl.remaining()
            if left is not None and left <= 0:
                return "user_limit"
            if left is not None:
                t = max(float(left), MIN_SOLVE_SECONDS)
                if "highs_options" in opts:
                    opts["highs_options"] = {**opts["highs_options"], "time_limit": t}
                else:
                    opts["time_limit"] = t
            solution = chain.solve_via_data(prob, data, False, False, opts)
            prob.unpack_results(solution, chain, inverse)
    except cp.error.SolverError as exc:  # pragma: no cover - backend failure
        raise SolverFailed(f"HiGHS failed on {what}: {exc}") from None
    return prob.status


def _stopped_status(status: str) -> bool:
    return status in ("user_limit", "optimal_inaccurate", "infeasible_inaccurate", "unbounded_inaccurate")



__all__: list = []
