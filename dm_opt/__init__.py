"""dm_opt: exact optimisation models for data markets.

Public API (docs/spec.md §4)::

    import dm_opt
    m = dm_opt.load("models/ammo/example1.toml")
    r = dm_opt.solve(m, problem="equilibrium", method="auto")
    r.profile, r.objective, r.prices, r.leakage, r.surplus, r.bound, r.gap

``import dm_opt`` is light: the names below (and every submodule, e.g.
``dm_opt.gaussian``) are imported on first access (PEP 562), so the ``dm-opt``
console script can start, and be interrupted, before numpy/numba are loaded.
``from dm_opt import solve`` and ``dm_opt.solve`` work exactly as before.
"""

import importlib as _importlib
from typing import TYPE_CHECKING, Any

from dm_opt.core import log as _log  # noqa: F401  (the 'dm_opt' logger, quiet by default)
from dm_opt.core import numba_cache as _numba_cache
from dm_opt.core.errors import (
    AssumptionError,
    AssumptionWarning,
    BackendUnavailable,
    DisagreementWarning,
    DmOptError,
    DmOptWarning,
    InstanceError,
    LimitExceeded,
    NoOptimalSolution,
    NumbaCacheWarning,
    ProblemError,
    SolverFailed,
)


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return "0+unknown"
    try:
        return version("dm-opt")
    except PackageNotFoundError:       # running from a source tree that was never installed
        return "0+unknown"


if TYPE_CHECKING:   # what the lazy names below are, for type checkers (never imported at run time here)
    from dm_opt.core.dispatch import solve
    from dm_opt.core.instances import load, save
    from dm_opt.core.result import Result
    from dm_opt.core.status import SolutionStatus, Termination
    from dm_opt.gaussian.community import CommunityMarket
    from dm_opt.gaussian.leakage import MixtureMarket, MutualInformationMarket, TabulatedMarket, check_properties
    from dm_opt.gaussian.market import GaussianMarket, UserEquilibria
    from dm_opt.gaussian.objectives import LeakageObjective
    from dm_opt.gaussian.platforms import JoiningValues, TwoPlatformMarket
    from dm_opt.gaussian.result import SolveResult
    from dm_opt.info_design.market import InfoDesignMarket
    from dm_opt.sharing.market import SharingMarket

    __version__: str

_numba_cache.install()    # truncated numba cache files of dm_opt kernels: delete, recompile, warn once

#: public name -> submodule defining it (imported on first access)
_LAZY: dict[str, str] = {
    "solve": ".core.dispatch",
    "load": ".core.instances",
    "save": ".core.instances",
    "GaussianMarket": ".gaussian.market",
    "UserEquilibria": ".gaussian.market",
    "CommunityMarket": ".gaussian.community",
    "InfoDesignMarket": ".info_design.market",
    "LeakageObjective": ".gaussian.objectives",
    "SharingMarket": ".sharing.market",
    "MixtureMarket": ".gaussian.leakage",
    "MutualInformationMarket": ".gaussian.leakage",
    "TabulatedMarket": ".gaussian.leakage",
    "check_properties": ".gaussian.leakage",
    "JoiningValues": ".gaussian.platforms",
    "TwoPlatformMarket": ".gaussian.platforms",
    "SolveResult": ".gaussian.result",
    "Termination": ".core.status",
    "SolutionStatus": ".core.status",
    "Result": ".core.result",
}


#: what ``import dm_opt`` used to import eagerly, in that order: loaded together on first access,
#: so every ``dm_opt.X.Y`` that worked after a plain ``import dm_opt`` still works
_EAGER = (".core.dispatch", ".gaussian.api", ".core.instances", ".gaussian.market", ".gaussian.community",
          ".info_design.market",
          ".gaussian.objectives", ".sharing.market", ".gaussian.leakage", ".gaussian.platforms", ".core.result")


def _load_all() -> None:
    for mod in _EAGER:
        _importlib.import_module(mod, __name__)
    g = globals()
    for name, mod in _LAZY.items():
        g.setdefault(name, getattr(_importlib.import_module(mod, __name__), name))


def _importing() -> bool:
    """Whether a dm_opt module is being executed (then ``from .. import x`` must import only ``x``)."""
    import sys

    return any(getattr(getattr(m, "__spec__", None), "_initializing", False)
               for k, m in list(sys.modules.items()) if k.startswith(__name__ + "."))


def __getattr__(name: str) -> Any:
    """Import the public API (or a submodule) on first access; afterwards they are plain attributes."""
    if name == "__version__":      # read from the package metadata on first use (importlib.metadata costs ~0.1 s)
        globals()["__version__"] = v = _version()
        return v
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    g = globals()
    if not _importing():
        _load_all()
        if name in g:
            return g[name]
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
    else:
        try:
            value = _importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    g[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def to_pyomo(market: Any, problem: Any = "first_best", **kw: Any) -> Any:
    """The MILP of docs/spec.md §1.2 as a Pyomo ``ConcreteModel`` (see :mod:`dm_opt.gaussian.backends.milp.pyomo`).

    Imported on first call: Pyomo is not loaded by ``import dm_opt``.
    """
    from dm_opt.gaussian.backends.milp.pyomo import to_pyomo as _to_pyomo

    return _to_pyomo(market, problem, **kw)

__all__ = [
    "to_pyomo",
    "InfoDesignMarket",
    "SharingMarket",
    "MixtureMarket", "MutualInformationMarket", "TabulatedMarket", "check_properties", "JoiningValues",
    "TwoPlatformMarket",
    "solve", "load", "save", "GaussianMarket", "CommunityMarket", "UserEquilibria", "LeakageObjective", "SolveResult",
    "Termination", "DmOptError", "InstanceError", "LimitExceeded", "ProblemError",
    "BackendUnavailable", "SolverFailed", "NoOptimalSolution", "AssumptionError", "DmOptWarning",
    "AssumptionWarning", "DisagreementWarning", "NumbaCacheWarning", "SolutionStatus", "Result",
]
