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
from .markets.objectives import LeakageObjective
from .result import SolveResult, Termination

__version__ = "0.1.0"

__all__ = [
    "solve", "load", "GaussianMarket", "CommunityMarket", "UserEquilibria", "LeakageObjective", "SolveResult",
    "Termination", "DmOptError", "InstanceError", "ProblemError", "LimitExceeded",
    "BackendUnavailable", "SolverFailed",
]
