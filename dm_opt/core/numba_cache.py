"""Self-healing on-disk cache for dm_opt's ``@njit(cache=True)`` kernels.

Numba keeps compiled kernels in ``.nbi`` (index) and ``.nbc`` (data) files — in
``__pycache__`` next to the module, or under ``NUMBA_CACHE_DIR``.  A truncated or
otherwise unreadable file (disk full, a copy or a job killed half-way) makes numba
raise ``UnpicklingError`` / ``EOFError`` on *every* first call of that kernel, until
the file is deleted by hand.

:func:`install` (called by ``import dm_opt``) wraps numba's
``Cache.load_overload`` / ``Cache.save_overload`` for functions defined in dm_opt
modules only: when loading fails, the kernel's index and data files — and any other
truncated cache file in the same directory (checked with :mod:`pickletools`, nothing
is unpickled) — are deleted, numba compiles from source (always correct; it is what
happens without a cache) and saves a fresh cache, and **one**
:class:`NumbaCacheWarning` is issued per process.  If the files cannot be deleted,
caching is disabled for that kernel (compiled in memory each run) and the warning
says so.  Functions of other packages are untouched.

``import dm_opt`` does not import numba: when numba is not loaded yet, a one-shot
import hook applies the wrapper right after ``numba.core.caching`` is imported.

:func:`has_cache_index` tells, without importing numba, whether a kernel's compiled code is
probably in numba's cache (the first-call choice of :func:`dm_opt.gaussian.kernels.bnb.pick_dfs`:
compile, or run the same code in Python).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from dm_opt.core.errors import NumbaCacheWarning

__all__ = ["NumbaCacheWarning", "has_cache_index", "index_path", "install", "is_intact"]

_TARGET = "numba.core.caching"
_LOCK = threading.Lock()
_warned = False


def _ours(cache) -> bool:
    mod = getattr(getattr(cache, "_py_func", None), "__module__", None) or ""
    return mod == "dm_opt" or mod.startswith("dm_opt.")


def is_intact(path: str) -> bool:
    """Whether a numba cache file is a complete pickle stream (``.nbi``: two pickles; ``.nbc``:
    one), by scanning opcodes only (no object is built).  Unreadable files count as intact
    (not ours to judge)."""
    import io
    import pickletools

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return True
    stream = io.BytesIO(data)
    try:
        for _ in range(2 if path.endswith(".nbi") else 1):
            for _op in pickletools.genops(stream):
                pass
    except Exception:   # noqa: BLE001 - any malformed stream (ValueError, struct errors, ...)
        return False
    return stream.tell() == len(data)


def _files_of(cache) -> tuple[list[str], str | None]:
    """The index and data files of one kernel, and its cache directory."""
    import glob

    cf = getattr(cache, "_cache_file", None)
    index = getattr(cf, "_index_path", None)
    if not index:
        return [], None
    base = index[:-len(".nbi")] if index.endswith(".nbi") else index
    return [index] + glob.glob(glob.escape(base) + ".*.nbc"), os.path.dirname(index)


def _heal(cache, exc: BaseException) -> None:
    """Delete the broken cache files of ``cache``'s kernel (and truncated siblings), warn once."""
    global _warned
    import glob
    import warnings

    files, directory = _files_of(cache)
    if directory:
        files += [p for p in glob.glob(os.path.join(glob.escape(directory), "*.nb[ic]")) if not is_intact(p)]
    removed, failed = 0, []
    for p in sorted(set(files)):
        try:
            os.remove(p)
            removed += 1
        except FileNotFoundError:
            pass
        except OSError:
            failed.append(p)
    if failed or not files:
        with contextlib.suppress(Exception):
            cache.disable()
    name = getattr(getattr(cache, "_py_func", None), "__qualname__", "?")
    with _LOCK:
        first, _warned = not _warned, True
    if not first:
        return
    what = (f"deleted {removed} cache file(s) in {directory}; recompiling" if not failed and files else
            f"could not delete {failed[0] if failed else 'its files'}; compiling without the cache")
    warnings.warn(f"numba cache of dm_opt kernel {name} was unreadable ({type(exc).__name__}: {exc}); {what}",
                  NumbaCacheWarning, stacklevel=2)


def _patch(caching) -> None:
    """Wrap ``caching.Cache.load_overload`` / ``save_overload`` (once)."""
    Cache = getattr(caching, "Cache", None)
    load, save = getattr(Cache, "load_overload", None), getattr(Cache, "save_overload", None)
    if load is None or save is None or getattr(load, "_dm_opt_guard", False):
        return

    def load_overload(self, sig, target_context):
        try:
            return load(self, sig, target_context)
        except Exception as exc:
            if not _ours(self):
                raise
            _heal(self, exc)
            return None             # numba compiles from source, then saves a fresh cache

    def save_overload(self, sig, data):
        try:
            return save(self, sig, data)
        except Exception as exc:
            if not _ours(self):
                raise
            _heal(self, exc)        # the compiled kernel is in memory: losing the cache must not crash
            try:
                return save(self, sig, data)
            except Exception:       # noqa: BLE001
                with contextlib.suppress(Exception):
                    self.disable()
                return None

    load_overload._dm_opt_guard = True
    load_overload.__wrapped__ = load
    save_overload.__wrapped__ = save
    Cache.load_overload = load_overload
    Cache.save_overload = save_overload


class _PatchingLoader:
    """Runs the real loader of ``numba.core.caching``, then :func:`_patch`."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        with contextlib.suppress(Exception):    # never break numba's own import
            _patch(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _Hook:
    """One-shot meta-path finder: wraps the loader of ``numba.core.caching`` when it is imported."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader)
        return spec


def install() -> None:
    """Guard dm_opt's numba caches (now if numba is loaded, else when it is)."""
    mod = sys.modules.get(_TARGET)
    if mod is not None:
        _patch(mod)
        return
    if not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())


# ------------------------------------------------------------------ is a kernel cached?
def _usable_dir(path: str) -> bool:
    """Whether numba's locator would take ``path`` (it creates the directory and writes a file in it):
    an existing writable directory, or a missing one under a writable existing ancestor."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def _user_cache_dir() -> str | None:
    if sys.platform.startswith("linux"):
        return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "numba")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/numba")
    return None


def index_path(py_func) -> str | None:
    """Where numba (0.5x-0.6x, ``numba.core.caching``) keeps the cache index of ``py_func``, found
    without importing numba by the rules of its locators, first usable of: ``NUMBA_CACHE_DIR``
    (``numba.config.CACHE_DIR`` once numba is loaded) ``/<dir>_<sha1 of the source directory>``, the
    ``__pycache__`` next to the source, the user-wide cache directory.  File name
    ``<module>.<qualname>-<first line>.py<major><minor><abiflags>.nbi``.  ``None`` when the rules do
    not apply (``NUMBA_CACHE_LOCATOR_CLASSES`` set, a source not on disk, an unknown platform)."""
    import hashlib
    import inspect

    if os.environ.get("NUMBA_CACHE_LOCATOR_CLASSES"):
        return None
    try:
        source = os.path.abspath(inspect.getfile(py_func))
    except TypeError:
        return None
    if not os.path.isfile(source):
        return None
    numba = sys.modules.get("numba")
    user = getattr(getattr(numba, "config", None), "CACHE_DIR", None) if numba is not None else None
    if user is None:
        user = os.environ.get("NUMBA_CACHE_DIR", "")
    folder = os.path.dirname(source)
    sub = os.path.basename(folder) + "_" + hashlib.sha1(folder.encode()).hexdigest()
    wide = _user_cache_dir()
    candidates = ([os.path.join(user, sub)] if user else []) + [os.path.join(folder, "__pycache__")]
    candidates += [os.path.join(wide, sub)] if wide else []
    for directory in candidates:
        if _usable_dir(directory):
            break
    else:
        return None
    base = os.path.splitext(os.path.basename(source))[0]
    qualname = py_func.__qualname__.replace("<", "").replace(">", "")
    name = (f"{base}.{qualname}-{py_func.__code__.co_firstlineno}"
            f".py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}")
    return os.path.join(directory, name + ".nbi")


def _numba_version() -> str | None:
    """The installed numba's version from its ``_version.py`` (importlib.metadata costs ~0.2 s)."""
    import importlib.util
    import re

    try:
        spec = importlib.util.find_spec("numba")
        with open(os.path.join(os.path.dirname(spec.origin), "_version.py"), encoding="utf-8") as fh:
            found = re.search(r'"version":\s*"([^"]+)"', fh.read())
    except Exception:   # noqa: BLE001 - no numba, an unusual layout: unknown
        return None
    return found.group(1) if found else None


def has_cache_index(py_func) -> bool:
    """Whether numba's cache holds compiled code of ``py_func`` for its current source: the index file
    (:func:`index_path`) exists, was written by the installed numba version, and carries the
    source's stamp (numba 0.6x: the SHA-256 of the source file; older numba: ``(mtime, size)``).
    Nothing is unpickled but the version string.  It does not check the signature or the CPU a
    cached entry was compiled for: a ``True`` can still mean a compilation (as without this check).
    ``True`` when it cannot tell (the rules of :func:`index_path` do not apply)."""
    import hashlib
    import inspect
    import pickle
    import struct

    path = index_path(py_func)
    if path is None:
        return True
    try:
        with open(path, "rb") as fh:
            version = pickle.load(fh)
            rest = fh.read()
        source = inspect.getfile(py_func)
        with open(source, "rb") as fh:
            digest = hashlib.sha256(fh.read()).digest()
    except FileNotFoundError:
        return False
    except Exception:   # noqa: BLE001 - unreadable / truncated index: numba will recompile
        return False
    installed = _numba_version()
    if installed is not None and version != installed:
        return False
    if digest in rest:
        return True
    # numba < 0.6x stamps (st_mtime, st_size): the mtime pickled as a binary float (opcode "G")
    return b"G" + struct.pack(">d", os.stat(source).st_mtime) in rest
