"""One place to create HiGHS instances quietly.

HiGHS prints a copyright banner to file descriptor 1 when the first ``Highs()``
of a process is built — below Python's ``sys.stdout``, so ``output_flag``
cannot stop it — which would corrupt ``dm-opt ... --json`` output.  The first
instance is therefore built with fd 1 pointed at ``/dev/null``; every instance
comes back with ``output_flag`` off.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

_BANNER_SILENCED = False


def silence_banner() -> None:
    """Build (and drop) the process's first ``Highs()`` with fd 1 muted."""
    global _BANNER_SILENCED
    if _BANNER_SILENCED:
        return
    import highspy

    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no usable fd 1 (embedded interpreters): nothing to protect
        highspy.Highs()
        _BANNER_SILENCED = True
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _BANNER_SILENCED = True


def new_highs():
    """A quiet ``highspy.Highs`` instance (banner suppressed, ``output_flag`` off)."""
    import highspy

    silence_banner()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


def set_options(h, **options) -> None:
    """``h.setOptionValue`` for each option, raising :class:`~dm_opt.core.errors.SolverFailed` when
    HiGHS rejects one (it returns ``kError`` and keeps the old value, e.g. a tolerance below
    its minimum — silently solving with the default would void the accuracy claims)."""
    import highspy

    from dm_opt.core.errors import SolverFailed

    for name, value in options.items():
        if h.setOptionValue(name, value) == highspy.HighsStatus.kError:
            raise SolverFailed(f"HiGHS rejected option {name} = {value!r}")


def pass_model(h, lp) -> None:
    """``h.passModel(lp)``, raising :class:`~dm_opt.core.errors.SolverFailed` when HiGHS rejects the
    model (e.g. a coefficient above ``large_matrix_value``: HiGHS then keeps an *empty* model
    and ``run`` reports model status "Empty")."""
    import highspy

    from dm_opt.core.errors import SolverFailed

    if h.passModel(lp) == highspy.HighsStatus.kError:
        raise SolverFailed("HiGHS rejected the model (a coefficient or bound outside its accepted range)")


class _Interrupt:
    hit = False
    timed_out = False


@contextmanager
def interruptible(h, deadline: float | None = None):
    """Ctrl-C during ``h.run()`` stops HiGHS at its next interrupt check (simplex, IPM and
    MIP callbacks) instead of after the whole solve; HiGHS then returns with model status
    ``kInterrupt`` and its incumbent and bound intact.  Yields an object whose ``hit`` says
    whether Ctrl-C arrived.

    ``deadline`` (a ``time.perf_counter()`` value) stops HiGHS the same way once passed
    (``timed_out`` is then set): HiGHS checks its own ``time_limit`` only between some
    steps and was measured overshooting a 2 s limit by 1 s at n = 40, while the interrupt
    callbacks run inside the simplex iterations.  Outside the main thread only the deadline
    is enforced.

    SIGINT is caught by a Python handler that only sets the flag (Python runs signal
    handlers in the main thread between bytecodes, i.e. inside the callback, which HiGHS
    calls from the thread running ``h.run()``); the previous handler is restored on exit.
    Outside the main thread (no signal handlers there) this does nothing.
    """
    import signal
    import threading
    import time

    import highspy

    flag = _Interrupt()
    main = threading.current_thread() is threading.main_thread()
    if not main and deadline is None:
        yield flag
        return
    kinds = (highspy.cb.HighsCallbackType.kCallbackSimplexInterrupt,
             highspy.cb.HighsCallbackType.kCallbackIpmInterrupt,
             highspy.cb.HighsCallbackType.kCallbackMipInterrupt)

    def on_sigint(signum, frame):
        flag.hit = True

    def callback(kind, message, data_out, data_in, user_data):
        if data_in is None:
            return
        if deadline is not None and not flag.timed_out and time.perf_counter() > deadline:
            flag.timed_out = True
        if flag.hit or flag.timed_out:
            data_in.user_interrupt = True

    previous = signal.signal(signal.SIGINT, on_sigint) if main else None
    try:
        h.setCallback(callback, None)
        for k in kinds:
            h.startCallback(k)
        yield flag
    finally:
        for k in kinds:
            h.stopCallback(k)
        if main:
            signal.signal(signal.SIGINT, previous)
