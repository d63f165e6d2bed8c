"""The backend interface and the one backend registry of every family (cvxpy/linopy style).

A backend is one class declaring what it can do — ``family``, ``problems``,
``supports_constraints``, ``supports_all_optima``, ``general_objectives``, its keyword
``OPTIONS`` and the optional dependency it ``requires`` — and a ``run`` method returning a
:class:`RawSolution`.  The family's entry point (for the Gaussian market,
:func:`dm_opt.gaussian.api.solve`) checks the request against these capabilities and the
options against ``OPTIONS`` before any work, then turns the raw solution into the family's
result, re-evaluating the objective exactly, so backends never format results themselves.

Adding a backend = subclass :class:`Backend`, decorate with :func:`register`, and list its
module in the family's ``BACKEND_MODULES`` (``dm_opt.<family>.backends``; imported lazily on
first use, never at ``import dm_opt``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from dm_opt.core.errors import BackendUnavailable, ProblemError
from dm_opt.core.status import Termination

#: family -> module whose ``BACKEND_MODULES`` maps method names to the modules registering them
#: (named, not imported: the core imports no family).
FAMILY_BACKENDS: dict[str, str] = {
    "gaussian": "dm_opt.gaussian.backends",
    "info_design": "dm_opt.info_design.backends",
    "sharing": "dm_opt.sharing.backends",
}
#: old method name -> current name (accepted with the new name in ``result.method``)
ALIASES: dict[tuple[str, str], str] = {("gaussian", "milp-scip"): "misocp-scip"}

_REGISTRY: dict[str, dict[str, type["Backend"]]] = {}


def backend_modules(family: str = "gaussian") -> dict[str, str]:
    """Method name -> module registering it, for ``family`` (empty if the family has none)."""
    mod = FAMILY_BACKENDS.get(family)
    if mod is None:
        raise ProblemError(f"unknown family '{family}'; one of {', '.join(sorted(FAMILY_BACKENDS))}")
    try:
        return dict(getattr(importlib.import_module(mod), "BACKEND_MODULES", {}))
    except ModuleNotFoundError as exc:
        if exc.name != mod:
            raise
        return {}


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
    family: ClassVar[str] = "gaussian"
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


    @classmethod
    def capabilities(cls) -> dict:
        """What the backend declares (for ``dm-opt solve --help``, the docs and the catalogues)."""
        return {"family": cls.family, "problems": sorted(cls.problems),
                "general_objectives": cls.general_objectives, "supports_all_optima": cls.supports_all_optima,
                "supports_constraints": cls.supports_constraints, "options": sorted(cls.OPTIONS),
                "requires": cls.requires, "available": cls.is_available()}


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator adding a backend to the registry of ``cls.family`` under ``cls.name``."""
    if not cls.name:
        raise ValueError("backend class needs a name")
    _REGISTRY.setdefault(cls.family, {})[cls.name] = cls
    return cls


def unregister(name: str, family: str = "gaussian") -> None:
    """Remove a backend (tests register throw-away backends)."""
    _REGISTRY.get(family, {}).pop(name, None)


def get_backend(name: str, family: str = "gaussian") -> type[Backend]:
    """The backend class registered as ``name`` in ``family`` (imports its module on first use).

    Raises :class:`ProblemError` for an unknown name (listing the known ones) and
    :class:`BackendUnavailable` when its optional dependency is missing.
    """
    name = ALIASES.get((family, name), name)
    reg = _REGISTRY.setdefault(family, {})
    if name not in reg:
        module = backend_modules(family).get(name)
        if module is None:
            raise ProblemError(
                f"unknown method '{name}'; available: {', '.join(['auto', *known_methods(family)])}")
        importlib.import_module(module)
    cls = reg[name]
    if not cls.is_available():
        raise BackendUnavailable(f"method '{name}' is not available here (missing optional dependency "
                                 f"'{cls.requires}')")
    return cls


def known_methods(family: str = "gaussian") -> list[str]:
    """Names of every backend of ``family``, installed or not."""
    return sorted(set(backend_modules(family)) | set(_REGISTRY.get(family, {})))


def available_methods(family: str = "gaussian") -> list[str]:
    """Names of the backends of ``family`` that can run here (optional dependencies installed)."""
    out = []
    for name in known_methods(family):
        try:
            get_backend(name, family)
        except BackendUnavailable:
            continue
        out.append(name)
    return out


__all__ = ["Backend", "RawSolution", "register", "unregister", "get_backend", "known_methods",
           "available_methods", "backend_modules", "FAMILY_BACKENDS", "ALIASES"]
