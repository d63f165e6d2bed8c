"""Files and signals lose nothing: output-path checks before any work, SIGTERM handled like Ctrl-C.

* :func:`check_output_file` / :func:`check_output_dir` — called *before* a command
  computes anything, so that an output in a missing or read-only directory (or one
  that would overwrite a directory, or an existing file without ``--force``) is one
  clear error instead of a traceback after the work is done.  :func:`check_distinct`
  refuses two outputs that resolve to the same file.
* :class:`TerminateAsInterrupt` — while active (``dm-opt`` commands), SIGTERM (what
  ``timeout``, batch schedulers and ``kill`` send) is handled exactly like Ctrl-C: the
  current SIGINT handler is invoked (a backend's own, e.g. HiGHS' "stop at the next
  check", or Python's, which raises :class:`KeyboardInterrupt`), so every Ctrl-C path
  keeps and writes what was computed; ``received`` then tells the CLI to exit 143.
* :func:`deferred_signals` — SIGINT/SIGTERM arriving while results are being written
  are held until the files are complete, then delivered.

Only the standard library is imported here (the console script imports this before
anything heavy).
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import threading

from dm_opt.core.errors import ProblemError

__all__ = ["check_output_file", "check_output_dir", "check_distinct", "Terminated", "TerminateAsInterrupt",
           "deferred_signals", "EXIT_SIGINT", "EXIT_SIGTERM"]

#: Exit statuses after Ctrl-C and after SIGTERM (128 + signal number, as shells report them).
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


# ------------------------------------------------------------------ output paths
def _probe_dir(directory: str) -> str | None:
    """``None`` if a file can be created in ``directory`` (tried for real, then removed), else why not."""
    if not os.access(directory, os.W_OK | os.X_OK):
        return "is not writable"
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=".dm-opt-write-test-", dir=directory)
    except OSError as exc:
        return f"is not writable ({exc.strerror or exc})"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return None


def _force_hint(option: str) -> str:
    return "pass --force to overwrite" if option.startswith("-") else "pass force=True to overwrite"


def check_output_file(path, option: str, force: bool) -> str:
    """Check that file ``path`` can be written; return it.  Raises :class:`~dm_opt.core.errors.ProblemError`
    (message ``"<option>: ..."``) when its directory is missing, not a directory or not writable,
    or ``path`` is a directory; :class:`FileExistsError` when it exists and ``force`` is false."""
    path = os.fspath(path)
    if not path:
        raise ProblemError(f"{option}: empty path")
    if os.path.isdir(path):
        raise ProblemError(f"{option}: {path} is a directory; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(parent):
        raise ProblemError(f"{option}: cannot write {path}: directory {parent} does not exist")
    if not os.path.isdir(parent):
        raise ProblemError(f"{option}: cannot write {path}: {parent} is not a directory")
    if os.path.lexists(path):
        if not force:
            raise FileExistsError(f"{option}: {path} exists; {_force_hint(option)}")
        with contextlib.suppress(OSError):
            mode = os.stat(path).st_mode
            if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):      # writing would block until a reader comes
                raise ProblemError(f"{option}: {path} is a named pipe or socket, not a file; give a file name")
        try:                        # a regular file is opened for appending (nothing changes); never a FIFO
            if not os.access(path, os.W_OK):
                raise PermissionError
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "ab"):
                    pass
        except OSError:
            raise ProblemError(f"{option}: cannot overwrite {path}: the file is not writable") from None
        return path
    why = _probe_dir(parent)
    if why:
        raise ProblemError(f"{option}: cannot write {path}: directory {parent} {why}")
    return path


def check_output_dir(path, option: str, force: bool, files=()) -> str:
    """Check that directory ``path`` can be created (missing parents included) or reused and written.

    An existing non-empty directory needs ``force`` (:class:`FileExistsError`); ``files`` are the
    names that will be written in it (none may be a directory).  Other problems raise
    :class:`~dm_opt.core.errors.ProblemError` naming ``option``.
    """
    path = os.fspath(path)
    if not path:
        raise ProblemError(f"{option}: empty path")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ProblemError(f"{option}: {path} exists and is not a directory")
        if os.listdir(path) and not force:
            raise FileExistsError(f"{option}: {path} exists and is not empty; {_force_hint(option)} "
                                  "or choose another directory")
        for name in files:
            if os.path.isdir(os.path.join(path, name)):
                raise ProblemError(f"{option}: cannot write {os.path.join(path, name)}: it is a directory")
        why = _probe_dir(path)
        if why:
            raise ProblemError(f"{option}: cannot write in {path}: the directory {why}")
        return path
    # created with its missing parents: the nearest existing ancestor must be a writable directory
    ancestor = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(ancestor):
        up = os.path.dirname(ancestor)
        if up == ancestor:
            break
        ancestor = up
    if not os.path.isdir(ancestor):
        raise ProblemError(f"{option}: cannot create {path}: {ancestor} is not a directory")
    why = _probe_dir(ancestor)
    if why:
        raise ProblemError(f"{option}: cannot create {path}: directory {ancestor} {why}")
    return path


def check_distinct(outputs) -> None:
    """Refuse two outputs that are the same file: ``outputs`` = ``[(option, path or None), ...]``."""
    seen: dict[str, str] = {}
    for option, path in outputs:
        if not path:
            continue
        key = os.path.normcase(os.path.realpath(path))
        for other_key, other in seen.items():
            same = key == other_key
            if not same and os.path.exists(path) and os.path.exists(other_key):
                with contextlib.suppress(OSError):
                    same = os.path.samefile(path, other_key)
            if same:
                raise ProblemError(f"{option}: {path} is the same file as {other}; give different paths")
        seen[key] = f"{option} ({path})" if option else path


# ------------------------------------------------------------------ signals
class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``except KeyboardInterrupt`` path keeps partial results."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class TerminateAsInterrupt:
    """Context manager: SIGTERM behaves like Ctrl-C while active; the previous handler is restored on exit.

    Each SIGTERM invokes the SIGINT handler current at that moment (a Python callable such as a
    backend's "stop at the next check" flag), or raises :class:`Terminated` (a
    :class:`KeyboardInterrupt`) when SIGINT has Python's default handler or none.  ``received``
    is true once a SIGTERM arrived.  Outside the main thread it does nothing (Python delivers
    signals to the main thread only).
    """

    def __init__(self):
        self.received = False
        self._previous = None
        self._installed = False

    def _handler(self, signum, frame):
        self.received = True
        current = signal.getsignal(signal.SIGINT)
        if callable(current) and current is not signal.default_int_handler:
            current(signal.SIGINT, frame)
            return
        raise Terminated()

    def __enter__(self):
        if _main_thread():
            try:
                self._previous = signal.signal(signal.SIGTERM, self._handler)
                self._installed = True
            except (ValueError, OSError):   # pragma: no cover - e.g. embedded interpreters
                self._installed = False
        return self

    def __exit__(self, *exc):
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous if self._previous is not None else signal.SIG_DFL)
            self._installed = False
        return False


@contextlib.contextmanager
def deferred_signals():
    """Hold SIGINT and SIGTERM while the block runs (e.g. writing result files), then deliver the
    first one received to the handlers restored on exit (so Ctrl-C still raises, just afterwards)."""
    if not _main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum, frame):
        pending.append(signum)

    previous = {}
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            previous[s] = signal.signal(s, hold)
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        if pending:
            signal.raise_signal(pending[0])
