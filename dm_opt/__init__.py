"""dm_opt: exact optimisation models for data markets.

Public API (SPEC §4)::

    import dm_opt
    m = dm_opt.load("models/ammo/example1.toml")
    r = dm_opt.solve(m, problem="equilibrium", method="auto")
    r.profile, r.objective, r.prices, r.leakage, r.surplus, r.bound, r.gap
"""

from .api import solve
from .errors import (BackendUnavailable, DmOptError, InstanceError, LimitExceeded, ProblemError,
                     SolverFailed)
from .io import load
from .markets.gaussian import GaussianMarket, UserEquilibria
from .markets.community import CommunityMarket
from .markets.info_design import InfoDesignMarket
from .markets.objectives import LeakageObjective
from .markets.sharing import SharingMarket
from .leakage import MixtureMarket, MutualInformationMarket, TabulatedMarket, check_properties
from .markets.platforms import JoiningValues, TwoPlatformMarket
from .result import SolveResult, Termination

__version__ = "0.1.0"


def to_pyomo(market, problem="first_best", **kw):
    """The MILP of SPEC §1.2 as a Pyomo ``ConcreteModel`` (see :mod:`dm_opt.solvers.pyomo_model`).

    Imported on first call: Pyomo is not loaded by ``import dm_opt``.
    """
    from .solvers.pyomo_model import to_pyomo as _to_pyomo

    return _to_pyomo(market, problem, **kw)

__all__ = [
    "to_pyomo",
    "InfoDesignMarket",
    "SharingMarket",
    "MixtureMarket", "MutualInformationMarket", "TabulatedMarket", "check_properties", "JoiningValues",
    "TwoPlatformMarket",
    "solve", "load", "GaussianMarket", "CommunityMarket", "UserEquilibria", "LeakageObjective", "SolveResult",
    "Termination", "DmOptError", "InstanceError", "ProblemError", "LimitExceeded",
    "BackendUnavailable", "SolverFailed",
]
