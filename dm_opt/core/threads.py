"""Limit the BLAS thread pools around dm_opt's searches (threadpoolctl, optional).

The exact searches do many *small* dense solves (K×K per count vector in
``method="community"``, node updates in ``method="bnb"``).  A multi-threaded
BLAS (OpenBLAS, MKL) gains nothing on matrices that small but synchronises its
threads on every call; on a loaded machine a thread that is descheduled stalls
the others, and two-thread OpenBLAS was measured up to 40× slower than one
thread for these solves (``benchmarks/blas_threads.py``).  So the searches run
inside :func:`blas_threads`, which pins the BLAS pools to :data:`BLAS_LIMIT`
threads for the duration of the block and restores them afterwards.

Without threadpoolctl (an ordinary dependency, but a bare environment may lack
it) the context manager does nothing.  The limit is process-wide (BLAS pools are
shared by the threads of a process): solves running in parallel threads share it,
and the first to finish restores the pools' size — a matter of speed, never of results.
"""

from __future__ import annotations

import contextlib
import sys
import threading

__all__ = ["BLAS_LIMIT", "blas_threads", "available"]

#: Threads per BLAS pool inside :func:`blas_threads` when no limit is passed; ``None`` disables
#: the pinning (the pools keep their size; used by ``benchmarks/blas_threads.py`` to compare).
BLAS_LIMIT: int | None = 1

_UNSET = object()
_LOCK = threading.Lock()
_controller = None


def _get_controller():
    """A cached ``ThreadpoolController``, or None without threadpoolctl.

    Building one scans the loaded shared libraries (about 10 ms), so it is kept, and rebuilt
    when modules were imported since (a new module may have loaded another BLAS, e.g. SciPy's).
    """
    global _controller
    if _controller is False:
        return None
    key = len(sys.modules)
    if _controller is None or _controller[0] != key:
        with _LOCK:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                _controller = False
                return None
            _controller = (len(sys.modules), ThreadpoolController())
    return _controller[1]


def available() -> bool:
    """Whether threadpoolctl is installed (otherwise :func:`blas_threads` is a no-op)."""
    return _get_controller() is not None


@contextlib.contextmanager
def blas_threads(limit=_UNSET):
    """``with blas_threads(): ...`` runs the block with at most ``limit`` threads per BLAS pool.

    ``limit``: a positive int, or ``None`` for no limit; default :data:`BLAS_LIMIT` (read at
    call time).  The pools' previous sizes are restored on exit, also on an exception.  A no-op
    when threadpoolctl is missing or when ``limit`` is ``None``.
    """
    if limit is _UNSET:
        limit = BLAS_LIMIT
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    ctl = None if limit is None else _get_controller()
    if ctl is None:
        yield
        return
    with ctl.limit(limits=limit, user_api="blas"):
        yield
