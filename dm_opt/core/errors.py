"""Exception hierarchy: one root, a few precise subclasses (python-mip style).

Every error raised on purpose by dm_opt derives from :class:`DmOptError`, so a
pipeline can catch ``dm_opt.DmOptError`` and know it is a diagnosed problem,
not a bug.  Messages name the offending field and say what would fix it.
"""

from __future__ import annotations


class DmOptError(Exception):
    """Root of all dm_opt errors."""


class InstanceError(DmOptError, ValueError):
    """Invalid model data: a field is missing, malformed or inconsistent.

    ``field`` names the offending field (``"cov"``, ``"values[3]"``, …) and
    ``where`` the file or constructor it came from, when known.
    """

    def __init__(self, field: str, problem: str, where: str | None = None):
        self.field = field
        self.problem = problem
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{field}: {problem}")


class ProblemError(DmOptError, ValueError):
    """An unknown problem, method or option was requested."""


class LimitExceeded(DmOptError):
    """A request exceeds a configured size limit (e.g. enumeration with n too large)."""


class BackendUnavailable(DmOptError):
    """A solver backend is not installed or cannot handle the request."""


class SolverFailed(DmOptError):
    """A backend stopped without a usable answer (numerical failure, crash)."""


class NoOptimalSolution(SolverFailed):
    """``result.raise_for_status()`` on a result whose status is not ``optimal``; ``result`` is
    the result (with whatever answer and bound it holds)."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class AssumptionError(DmOptError):
    """A method was asked to run on data violating an assumption it needs (e.g. RJ Prop 3.1 for
    ordered match)."""


# ---------------------------------------------------------------- warnings
class DmOptWarning(UserWarning):
    """Root of dm_opt's warnings."""


class AssumptionWarning(DmOptWarning):
    """Data violate an assumption of the paper (e.g. AMMO Assumption 2: Φ nondecreasing)."""


class DisagreementWarning(DmOptWarning):
    """A method's answer contradicts exhaustive enumeration (or another exact method)."""


class NumbaCacheWarning(DmOptWarning):
    """dm_opt found an unreadable numba cache file, deleted it and recompiled."""


# ---------------------------------------------------------------- internal control flow
class Stopped(Exception):
    """Internal control flow: a long computation must stop (time limit, or Ctrl-C).

    ``status`` is ``Termination.TIME_LIMIT`` or ``Termination.INTERRUPTED``; ``result`` an
    optional non-optimal partial result that caused it.  Never escapes a public function: they
    return a partial answer or raise :class:`LimitExceeded`.
    """

    def __init__(self, status, message: str, result=None):
        from dm_opt.core.status import Termination

        super().__init__(message)
        self.status = Termination(status)
        self.message = message
        self.result = result


__all__ = ["DmOptError", "InstanceError", "ProblemError", "LimitExceeded", "BackendUnavailable",
           "SolverFailed", "NoOptimalSolution", "AssumptionError", "DmOptWarning", "AssumptionWarning",
           "DisagreementWarning", "NumbaCacheWarning", "Stopped"]
