"""Time limits and Ctrl-C for computations made of many solves.

One shape for every long computation in the package: a :class:`Deadline` is
created once from the user's ``time_limit`` (seconds, ``None`` for no limit) and
shared by every sub-solve, which gets :meth:`Deadline.remaining` as its own
limit.  When the budget is spent, or Ctrl-C arrives, the computation stops with
:class:`Stopped` internally and the public function returns its best answer so
far with a status of :class:`~dm_opt.result.Termination` (``time_limit`` /
``interrupted``) and a proven bound — never an answer labelled optimal.
"""

from __future__ import annotations

import math
import numbers
import time

from .errors import ProblemError
from .result import Termination


class Stopped(Exception):
    """Internal control flow: a long computation must stop (time limit, or Ctrl-C).

    ``status`` is :attr:`Termination.TIME_LIMIT` or :attr:`Termination.INTERRUPTED`;
    ``result`` an optional non-optimal partial result that caused it.  Never escapes
    a public function: they return a partial answer or raise
    :class:`~dm_opt.errors.LimitExceeded`.
    """

    def __init__(self, status, message: str, result=None):
        super().__init__(message)
        self.status = Termination(status)
        self.message = message
        self.result = result


def check_time_limit(time_limit, field: str = "time_limit"):
    """``None`` or a positive finite number of seconds (as float); else :class:`ProblemError` naming ``field``."""
    if time_limit is None:
        return None
    if isinstance(time_limit, Deadline):
        return time_limit.time_limit
    if (isinstance(time_limit, bool) or not isinstance(time_limit, numbers.Real)
            or not math.isfinite(float(time_limit)) or not float(time_limit) > 0):
        raise ProblemError(f"{field} must be a positive number of seconds (or None for no limit), "
                           f"got {time_limit!r}")
    return float(time_limit)


class Deadline:
    """One global time budget shared by every solve of a long computation.

    ``Deadline(time_limit)`` starts the clock (:func:`time.perf_counter`);
    ``Deadline(None)`` never expires.  :meth:`of` passes an existing deadline
    through, so nested computations share the caller's budget.
    """

    def __init__(self, time_limit=None, *, field: str = "time_limit"):
        self.time_limit = check_time_limit(time_limit, field)
        self.start = time.perf_counter()
        self.end = None if self.time_limit is None else self.start + self.time_limit

    @classmethod
    def of(cls, time_limit, field: str = "time_limit") -> "Deadline":
        """``time_limit`` itself if it is a :class:`Deadline` (shared with a caller), else a new one."""
        return time_limit if isinstance(time_limit, Deadline) else cls(time_limit, field=field)

    def remaining(self) -> float | None:
        """Seconds left (``None`` without a limit; may be ≤ 0)."""
        return None if self.end is None else self.end - time.perf_counter()

    def expired(self) -> bool:
        return self.end is not None and time.perf_counter() >= self.end

    def message(self) -> str:
        return f"time limit of {self.time_limit:g} s reached"

    def check(self) -> None:
        """Raise :class:`Stopped` (status ``time_limit``) if the budget is spent."""
        if self.expired():
            raise Stopped(Termination.TIME_LIMIT, self.message())


def adapt_chunk(chunk: int, seconds: float, target: float, *, lo: int = 1, hi: int = 1 << 24) -> int:
    """Next piece size for a compiled kernel run in pieces of about ``target`` seconds (the
    time limit and Ctrl-C are honoured between pieces): double it when the last piece took
    under half the target (at most ``hi``), halve it when over twice (only while above ``lo``)."""
    if seconds < target / 2:
        return min(chunk * 2, hi)
    if seconds > 2 * target and chunk > lo:
        return chunk // 2
    return chunk


__all__ = ["Deadline", "Stopped", "check_time_limit", "adapt_chunk"]
