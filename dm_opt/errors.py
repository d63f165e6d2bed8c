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
