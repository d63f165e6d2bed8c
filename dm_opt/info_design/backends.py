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

__all__ = ["InfoDesignBackend", "BACKEND_MODULES"]
