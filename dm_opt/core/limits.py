"""Time limits and Ctrl-C for computations made of many solves.

One shape for every long computation in the package: a :class:`Deadline` is
created once from the user's ``time_limit`` (seconds, ``None`` for no limit) and
shared by every sub-solve, which gets :meth:`Deadline.remaining` as its own
limit.  When the budget is spent, or Ctrl-C arrives, the computation stops with
:class:`Stopped` internally and the public function returns its best answer so
far with a status of :class:`~dm_opt.core.result.Termination` (``time_limit`` /
``interrupted``) and a proven bound — never an answer labelled optimal.
"""

from __future__ import annotations

import math
import numbers
import time

from dm_opt.core.errors import LimitExceeded, ProblemError, Stopped
from dm_opt.core.result import Termination

#: Memory (bytes) one model build may take, for the solvers that estimate the size of a
#: model before building it (GLP LPs/MILPs with dense obedience rows, …): a larger model is
#: refused with :class:`~dm_opt.core.errors.LimitExceeded` instead of exhausting the machine.
#: 2 GiB; read at call time, so it can be changed at run time (``dm_opt.core.limits.MEMORY_BUDGET = …``).
MEMORY_BUDGET = 2 * 1024 ** 3


#: Largest time limit accepted (seconds, about 30 years): beyond it clocks and per-node budgets lose
#: meaning (``int(seconds / per_node)`` overflows at 1e308); ``None`` is the way to say "no limit".
MAX_TIME_LIMIT = 1e9


def check_time_limit(time_limit, field: str = "time_limit"):
    """Seconds a computation may still take: ``None`` (no limit) or a positive finite number (as
    float); else :class:`ProblemError` naming ``field``.

    ``time_limit`` is ``None``, a number of seconds, or a :class:`Deadline` shared with a caller
    — then the time *remaining* on it (at least 0.0), not its original budget.
    """
    if time_limit is None:
        return None
    if isinstance(time_limit, Deadline):
        left = time_limit.remaining()
        return None if left is None else max(float(left), 0.0)
    try:
        seconds = float(time_limit) if isinstance(time_limit, numbers.Real) else math.nan
    except (OverflowError, ValueError):     # an int beyond the float range
        seconds = math.inf
    if isinstance(time_limit, bool) or not math.isfinite(seconds) or not seconds > 0:
        shown = " ".join(repr(time_limit).split())
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ProblemError(f"{field} must be a positive number of seconds (or None for no limit), got {shown}")
    if seconds > MAX_TIME_LIMIT:
        hint = "omit it" if field.startswith("-") else "pass None"
        raise ProblemError(f"{field} must be at most {MAX_TIME_LIMIT:g} seconds (about 30 years), got {seconds:g}; "
                           f"{hint} for no limit")
    return seconds


class Deadline:
    """One global time budget shared by every solve of a long computation.

    ``Deadline(time_limit)`` starts the clock (:func:`time.perf_counter`);
    ``Deadline(None)`` never expires.  :meth:`of` passes an existing deadline
    through, so nested computations share the caller's budget.
    """

    def __init__(self, time_limit=None, *, field: str = "time_limit"):
        if isinstance(time_limit, Deadline):
            raise TypeError("Deadline(Deadline(...)): use Deadline.of() to share a deadline")
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

    def reserve(self, seconds: float) -> "Deadline":
        """A deadline ``seconds`` before this one (same limit in messages; no limit stays none):
        inner work stops early enough to leave ``seconds`` for packaging its result."""
        d = Deadline.__new__(Deadline)
        d.time_limit, d.start = self.time_limit, self.start
        d.end = None if self.end is None else self.end - max(float(seconds), 0.0)
        return d


#: After a deadline (or Ctrl-C) a running HiGHS is asked to stop at its next callback and waited
#: for this long, twice.  HiGHS reads its own clock only between some phases (the presolve of
#: the GLP KKT MILP at |Ω| = |A| = 200 overran a 1 s limit by 1–3 s), so a run still going
#: after that is left to finish in a background thread (HiGHS has the same time limit and
#: stops by itself soon after) while the caller returns at once: the limit holds for the caller
#: (the interpreter waits for such a thread at exit, so a process may end that much later).
STOP_GRACE_SECONDS = 0.1
#: ``(thread, Highs)`` of runs left to finish in the background (kept alive until they return).
_BACKGROUND: list = []


def run_highs(h, end: float | None = None) -> tuple[str, bool]:
    """Run ``h.run()`` (a ``highspy.Highs`` with its own ``time_limit`` option already set) in a
    worker thread, waiting until it returns or until ``end`` (a :func:`time.perf_counter`
    value; None = no limit) plus :data:`STOP_GRACE_SECONDS`.  Ctrl-C (KeyboardInterrupt, or
    SIGTERM turned into one) and the deadline become HiGHS' own interrupt at its next
    simplex/IPM/MIP callback.

    Returns ``(why, abandoned)``: ``why`` is ``""`` when HiGHS returned by itself (read its
    model status), ``"time_limit"`` when the deadline asked it to stop, ``"interrupted"``
    after Ctrl-C; ``abandoned`` is True when it was still running after the grace period
    (then ``h`` must be neither read nor changed until :func:`highs_busy` says it is done).
    """
    import threading

    import highspy

    stop = threading.Event()
    kinds = (highspy.cb.HighsCallbackType.kCallbackSimplexInterrupt,
             highspy.cb.HighsCallbackType.kCallbackIpmInterrupt,
             highspy.cb.HighsCallbackType.kCallbackMipInterrupt)

    def callback(kind, message, data_out, data_in, user_data):
        if stop.is_set() and data_in is not None:
            data_in.user_interrupt = True

    h.setCallback(callback, None)
    for k in kinds:
        h.startCallback(k)
    # not a daemon: a run left in the background is waited for at interpreter exit (a daemon
    # thread still inside HiGHS when the C++ runtime shuts down aborts the process)
    th = threading.Thread(target=h.run, name="dm_opt HiGHS", daemon=False)
    why = ""
    th.start()
    try:
        while th.is_alive():
            if end is not None and time.perf_counter() >= end + STOP_GRACE_SECONDS:
                why = "time_limit"
                break
            th.join(0.05 if end is None else max(min(0.05, end + STOP_GRACE_SECONDS - time.perf_counter()), 0.0))
    except KeyboardInterrupt:
        why = "interrupted"
    if th.is_alive():
        stop.set()
        try:
            th.join(STOP_GRACE_SECONDS)
        except KeyboardInterrupt:
            why = "interrupted"
    if th.is_alive():
        _BACKGROUND[:] = [(t, x) for t, x in _BACKGROUND if t.is_alive()] + [(th, h)]
        return why or "time_limit", True
    for k in kinds:
        h.stopCallback(k)
    return why, False


def highs_busy(h, end: float | None = None) -> bool:
    """Is an abandoned run of ``h`` (see :func:`run_highs`) still going?  Waits for it until ``end``."""
    for t, x in list(_BACKGROUND):
        if x is h and t.is_alive():
            t.join(None if end is None else max(end - time.perf_counter(), 0.0))
            return t.is_alive()
    return False


def adapt_chunk(chunk: int, seconds: float, target: float, *, lo: int = 1, hi: int = 1 << 24) -> int:
    """Next piece size for a compiled kernel run in pieces of about ``target`` seconds (the
    time limit and Ctrl-C are honoured between pieces): double it when the last piece took
    under half the target (at most ``hi``), halve it when over twice (only while above ``lo``)."""
    if seconds < target / 2:
        return min(chunk * 2, hi)
    if seconds > 2 * target and chunk > lo:
        return chunk // 2
    return chunk


def check_model_size(what: str, nonzeros: int, bytes_per_nonzero: float, *, hint: str = "") -> float:
    """Refuse a model whose estimated memory exceeds :data:`MEMORY_BUDGET`.

    ``nonzeros`` is the model's size (constraint-matrix nonzeros plus columns and rows,
    as the caller counts it) and ``bytes_per_nonzero`` the measured cost of one in the
    backend that will hold it; returns the estimate in bytes, or raises
    :class:`~dm_opt.core.errors.LimitExceeded` naming the size, the estimate and the budget.
    """
    est = float(nonzeros) * float(bytes_per_nonzero)
    if est > MEMORY_BUDGET:
        raise LimitExceeded(f"{what}: about {int(nonzeros):,} nonzeros (≈ {est / 2 ** 30:.1f} GiB estimated) "
                            f"exceed the memory budget of {MEMORY_BUDGET / 2 ** 30:.3g} GiB "
                            f"(dm_opt.core.limits.MEMORY_BUDGET)" + (f"; {hint}" if hint else ""))
    return est


__all__ = ["Deadline", "Stopped", "check_time_limit", "adapt_chunk", "check_model_size", "MEMORY_BUDGET",
           "run_highs", "highs_busy", "STOP_GRACE_SECONDS"]
