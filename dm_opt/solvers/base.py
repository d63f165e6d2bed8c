"""The backend interface and its registry (cvxpy/linopy style).

A backend is one class declaring what it can do (``problems``,
``supports_constraints``, ``supports_all_optima``) and a ``run`` method that
returns a :class:`RawSolution`.  :func:`dm_opt.solve` turns every raw solution
into the same :class:`~dm_opt.result.SolveResult`, re-evaluating the objective
exactly at the returned profile, so backends never format results themselves.

Adding a backend = subclass :class:`Backend`, decorate with :func:`register`,
and add its module to :data:`BACKEND_MODULES` (imported lazily on first use,
never at ``import dm_opt``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendUnavailable, ProblemError
from ..result import Termination

#: name -> module that registers it.  Imported on demand.
BACKEND_MODULES: dict[str, str] = {
    "enumerate": "dm_opt.solvers.enumeration",
    "bnb": "dm_opt.solvers.bnb",
    "milp": "dm_opt.solvers.milp",
    "milp-scip": "dm_opt.solvers.scip",
    "community": "dm_opt.solvers.community",
}

_REGISTRY: dict[str, type["Backend"]] = {}


@dataclass
class RawSolution:
    """What a backend hands back; :func:`dm_opt.solve` completes it into a result."""

    profile: np.ndarray | None            # 0/1 (n,), None if no solution
    status: Termination
    bound: float                           # proven upper bound on the optimum
    optima: list | None = None             # every optimal profile, when asked
    nodes: int = 0
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Backend:
    """Base class of solver backends."""

    name: ClassVar[str] = ""
    problems: ClassVar[frozenset] = frozenset({"first_best", "equilibrium", "decorrelated"})
    #: accepts arbitrary LeakageObjective (c, d, e) weights, not only the named problems
    general_objectives: ClassVar[bool] = True
    supports_all_optima: ClassVar[bool] = False
    supports_constraints: ClassVar[bool] = False
    #: backend-specific keyword options accepted by ``dm_opt.solve(..., **options)``
    OPTIONS: ClassVar[tuple] = ()
    #: importable module the backend needs (optional dependency), checked without importing it
    requires: ClassVar[str | None] = None

    @classmethod
    def is_available(cls) -> bool:
        if cls.requires is None:
            return True
        import importlib.util

        return importlib.util.find_spec(cls.requires) is not None

    @classmethod
    def check_options(cls, options: dict) -> None:
        """Reject unknown backend options with one message listing the allowed ones."""
        unknown = set(options) - set(cls.OPTIONS)
        if unknown:
            raise ProblemError(f"unknown option(s) for method '{cls.name}': {', '.join(sorted(unknown))}; "
                               f"allowed: {', '.join(sorted(cls.OPTIONS)) or 'none'}")

    def run(self, market, objective, *, all_optima: bool, time_limit: float | None,
            constraints, tol: float, progress: bool, options: dict) -> RawSolution:
        raise NotImplementedError


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator adding a backend to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError("backend class needs a name")
    _REGISTRY[cls.name] = cls
    return cls


def get_backend(name: str) -> type[Backend]:
    """The backend class registered as ``name`` (imports its module on first use)."""
    if name not in _REGISTRY:
        module = BACKEND_MODULES.get(name)
        if module is None:
            raise ProblemError(
                f"unknown method '{name}'; available: {', '.join(['auto', *available_methods()])}"
            )
        importlib.import_module(module)
    cls = _REGISTRY[name]
    if not cls.is_available():
        raise BackendUnavailable(f"method '{name}' is not available here (missing optional dependency)")
    return cls


def available_methods() -> list[str]:
    """Names of all known backends (available or not)."""
    return sorted(set(BACKEND_MODULES) | set(_REGISTRY))
