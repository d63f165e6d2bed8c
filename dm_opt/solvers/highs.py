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
