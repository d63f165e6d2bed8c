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


class _Interrupt:
    hit = False


@contextmanager
def interruptible(h):
    """Ctrl-C during ``h.run()`` stops HiGHS at its next interrupt check (simplex, IPM and
    MIP callbacks) instead of after the whole solve; HiGHS then returns with model status
    ``kInterrupt`` and its incumbent and bound intact.  Yields an object whose ``hit`` says
    whether Ctrl-C arrived.

    SIGINT is caught by a Python handler that only sets the flag (Python runs signal
    handlers in the main thread between bytecodes, i.e. inside the callback, which HiGHS
    calls from the thread running ``h.run()``); the previous handler is restored on exit.
    Outside the main thread (no signal handlers there) this does nothing.
    """
    import signal
    import threading

    import highspy

    flag = _Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    kinds = (highspy.cb.HighsCallbackType.kCallbackSimplexInterrupt,
             highspy.cb.HighsCallbackType.kCallbackIpmInterrupt,
             highspy.cb.HighsCallbackType.kCallbackMipInterrupt)

    def on_sigint(signum, frame):
        flag.hit = True

    def callback(kind, message, data_out, data_in, user_data):
        if flag.hit and data_in is not None:
            data_in.user_interrupt = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        h.setCallback(callback, None)
        for k in kinds:
            h.startCallback(k)
        yield flag
    finally:
        for k in kinds:
            h.stopCallback(k)
        signal.signal(signal.SIGINT, previous)
