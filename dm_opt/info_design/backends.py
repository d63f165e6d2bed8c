"""The methods of the information-design (GLP) family, declared in the one backend registry
(:mod:`dm_opt.core.registry`): what each solves and when it applies.

The problems themselves are run by :mod:`dm_opt.info_design.problems` (``method=`` picks one of
these); the classes here only declare capabilities, for ``available_methods("info_design")``,
the docs and the test catalogue (``tests/info_design/cases.py``).
"""

from __future__ import annotations

from typing import ClassVar

from dm_opt.core.errors import ProblemError
from dm_opt.core.registry import Backend, register
from dm_opt.info_design import bbm
from dm_opt.info_design.common import PIECES_MAX_N

#: ``options`` of the methods whose LPs are cvxpy models (the piece LPs and ``P_q`` of ``pieces``, the
#: equilibrium LPs): ``solver`` (a cvxpy solver name, default ``"HIGHS"``), ``solver_options``
#: (keywords of cvxpy's ``Problem.solve``; with HiGHS they replace dm_opt's defaults key by key) and
#: ``verbose`` (the solver's log); checked by :func:`dm_opt.info_design.problems.cvxpy_options`.
CVXPY_OPTIONS = ("solver", "solver_options", "verbose")
#: cvxpy solvers accepted as ``options["solver"]``: the GLP LPs are tested with each
#: (tests/info_design/test_problems.py).  HiGHS (default), SciPy (HiGHS too) and SCIP return vertex
#: solutions; Clarabel (interior point) answers within its own tolerance (about 1e-8 on the
#: shipped models).  First-order solvers (OSQP, SCS) are refused: their answers come back
#: "optimal_inaccurate", which dm_opt cannot tell apart from a stopped solve.
CVXPY_LP_SOLVERS = ("HIGHS", "SCIPY", "SCIP", "CLARABEL")


class InfoDesignBackend(Backend):
    """A method of the GLP family (a declaration: solving goes through :func:`dm_opt.solve`)."""

    family: ClassVar[str] = "info_design"
    general_objectives: ClassVar[bool] = False
    problems: ClassVar[frozenset] = frozenset()

    @classmethod
    def applies(cls, market) -> bool:
        """Whether the method can solve its problems on ``market`` (beyond the problem list)."""
        return True

    def run(self, market, objective, **kw):
        raise ProblemError(f"method '{self.name}' of the info_design family is run by dm_opt.solve(market, problem, "
                           f"method='{self.name}')")


@register
class ClosedForm(InfoDesignBackend):
    """BBM's surplus triangle (:mod:`dm_opt.info_design.bbm`): the slides' merchant, positive types, Ω ⊆ A."""

    name = "bbm"
    problems = frozenset({"platform", "efficiency", "union"})

    @classmethod
    def applies(cls, market) -> bool:
        return bbm.applies(market)


@register
class PlatformLPMethod(InfoDesignBackend):
    """``P_q`` as an LP (highspy; cvxpy for :class:`~dm_opt.info_design.lp.PlatformLP`)."""

    name = "lp"
    problems = frozenset({"platform"})


@register
class Pieces(InfoDesignBackend):
    """One LP per linear piece of V (exact; piece enumeration for ``|Ω| ≤`` PIECES_MAX_N)."""

    name = "pieces"
    problems = frozenset({"efficiency", "union"})
    OPTIONS = CVXPY_OPTIONS

    @classmethod
    def applies(cls, market) -> bool:
        return market.n <= PIECES_MAX_N


@register
class KKTMilp(InfoDesignBackend):
    """The KKT MILP of ``P_q`` with a bounded dual (HiGHS MIP)."""

    name = "milp"
    problems = frozenset({"efficiency"})


#: method name -> module registering it (read by :mod:`dm_opt.core.registry`)
BACKEND_MODULES = {"bbm": __name__, "lp": __name__, "pieces": __name__, "milp": __name__}

__all__ = ["InfoDesignBackend", "BACKEND_MODULES", "CVXPY_OPTIONS", "CVXPY_LP_SOLVERS"]
