"""Instance files (TOML): what market and what numbers, never how to solve.

Every file has ``kind = "..."`` and a ``source`` line naming the paper and
example.  Files are parsed as data only (TOML); nothing in them is evaluated or
imported.  Each kind is parsed by one module listed in :data:`KIND_MODULES`
(imported on demand), which provides ``from_dict(data: dict, where: str)`` → the market
object (validating every field), and optionally ``to_dict(market)`` for :func:`save`.
What can be solved for a kind is the family's problem table (:mod:`dm_opt.core.dispatch`);
how a result is printed, the family's ``cli`` module.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import stat
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Union

from dm_opt.core.errors import InstanceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: a path argument: ``str`` or ``pathlib.Path``
StrPath = Union[str, "os.PathLike[str]"]

#: kind -> module implementing it
KIND_MODULES: dict[str, str] = {
    "gaussian_market": "dm_opt.gaussian.io.market",
    "community_market": "dm_opt.gaussian.io.community",
    "gaussian_mixture": "dm_opt.gaussian.io.mixture",
    "two_platforms": "dm_opt.gaussian.io.platforms",
    "info_design": "dm_opt.info_design.io",
    "gaussian_valuations": "dm_opt.gaussian.io.valuations",
    "gaussian_taxes": "dm_opt.gaussian.io.taxes",
    "sharing_network": "dm_opt.sharing.io",
}

#: Largest instance file read (bytes); larger files are refused before parsing.
MAX_FILE_BYTES = 64 * 1024 * 1024


def kind_module(kind: object, where: str | None = None) -> ModuleType:
    """The module handling ``kind`` (raises InstanceError for unknown kinds)."""
    if not isinstance(kind, str):
        raise InstanceError("kind", f"must be a string, got {type(kind).__name__}", where)
    if kind not in KIND_MODULES:
        raise InstanceError("kind", f"unknown kind '{kind}'; choose one of {', '.join(sorted(KIND_MODULES))}", where)
    return importlib.import_module(KIND_MODULES[kind])


def _file_kind(mode: int) -> str | None:
    """What a non-regular file is (``None`` for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def read_bytes(path: StrPath, limit: int | None = None, field: str = "file") -> bytes:
    """The bytes of the regular file ``path``, refusing anything else and anything over ``limit``.

    Pipes, devices, sockets and directories are refused before reading (a FIFO would block
    ``open`` forever, ``/dev/zero`` never ends); the file is opened non-blocking and checked
    again on the open descriptor (no race with a file swapped in between), and at most
    ``limit + 1`` bytes are read whatever ``st_size`` says (default limit :data:`MAX_FILE_BYTES`).
    """
    limit = MAX_FILE_BYTES if limit is None else limit
    where = os.fspath(path)
    try:
        what = _file_kind(os.stat(where).st_mode)
        if what is not None:
            raise InstanceError(field, f"is {what}, expected a regular .toml instance file", where)
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as fh:
            what = _file_kind(os.fstat(fh.fileno()).st_mode)
            if what is not None:
                raise InstanceError(field, f"is {what}, expected a regular .toml instance file", where)
            raw = fh.read(limit + 1)
    except InstanceError:
        raise
    except IsADirectoryError:
        raise InstanceError(field, "is a directory, expected a .toml instance file", where) from None
    except FileNotFoundError:
        raise InstanceError(field, "not found (nor a shipped model name; `dm-opt models` lists them)",
                            where) from None
    except OSError as exc:
        raise InstanceError(field, f"cannot be read ({exc.strerror or exc})", where) from None
    if len(raw) > limit:
        raise InstanceError(field, f"is larger than {limit} bytes, the limit for an instance file", where)
    return raw


def read_toml(path: StrPath) -> dict[str, Any]:
    """Parse a TOML file into a dict, with errors naming the file."""
    where = os.fspath(path)
    raw = read_bytes(where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InstanceError("file", f"is not UTF-8 text (byte {exc.start})", where) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InstanceError("file", f"invalid TOML: {exc}", where) from None
    except RecursionError:
        raise InstanceError("file", "invalid TOML: nested too deeply", where) from None


def from_dict(data: dict[str, Any], where: str | None = None) -> Any:
    """Build a market from an already-parsed instance table."""
    if not isinstance(data, dict):
        raise InstanceError("file", "top level must be a table", where)
    if "kind" not in data:
        raise InstanceError("kind", f"missing; add e.g. kind = \"gaussian_market\" "
                            f"(one of {', '.join(sorted(KIND_MODULES))})", where)
    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise InstanceError("source", "must be a string naming the paper and example", where)
    return kind_module(data["kind"], where).from_dict(data, where)


def models_dir() -> str:
    """The folder of the models shipped with the package (``dm_opt/models``)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")


def shipped_models() -> list[tuple[str, str]]:
    """``(name, source line)`` of every shipped model, e.g. ``("ammo/example1", "AMMO … Example 1")``;
    a name works wherever a path does (:func:`load`, ``dm-opt solve``)."""
    root = models_dir()
    out = []
    for family in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        folder = os.path.join(root, family)
        if not os.path.isdir(folder):
            continue
        for f in sorted(os.listdir(folder)):
            if f.endswith(".toml"):
                try:
                    source = read_toml(os.path.join(folder, f)).get("source", "")
                except InstanceError:          # pragma: no cover - shipped files are tested
                    source = ""
                out.append((f"{family}/{f[:-5]}", str(source)))
    return out


def resolve(path: StrPath) -> str:
    """``path`` itself when it names an existing file (or anything but a model name), else the
    shipped model of that name (``"ammo/example1"`` or ``"ammo/example1.toml"``; see
    :func:`shipped_models`).  A path is always preferred: a local file shadows a model name."""
    where = os.fspath(path)
    if os.path.exists(where) or not isinstance(where, str) or os.path.isabs(where):
        return where
    name = where[:-5] if where.endswith(".toml") else where
    if name.startswith("models/"):
        name = name[len("models/"):]
    parts = name.split("/")
    if len(parts) == 2 and all(p and p not in (".", "..") for p in parts):
        candidate = os.path.join(models_dir(), parts[0], parts[1] + ".toml")
        if os.path.isfile(candidate):
            return candidate
    return where


def load(path: StrPath) -> Any:
    """Load and validate an instance file — a path, or the name of a shipped model such as
    ``"ammo/example1"`` (``dm-opt models`` lists them); errors name the file and the field."""
    _check_path("path", path)
    where = resolve(path)
    return from_dict(read_toml(where), where)


def _check_path(field: str, path: Any) -> None:
    """A file path is a non-empty ``str`` or ``os.PathLike`` (one message naming ``field``)."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        shown = " ".join(repr(path).split())
        raise InstanceError(field, f"must be a file path or a shipped model name, got "
                                   f"{shown if len(shown) <= 60 else shown[:57] + '...'}")


def save(market: Any, path: StrPath, *, force: bool = False) -> str:
    """Write ``market`` as an instance file that :func:`load` reads back to an equal market.

    The kind's module provides ``to_dict(market) -> dict`` (the fields of docs/instances.md), or
    else the market its own ``to_dict()`` method (the information-design and sharing markets);
    ``path`` is checked before anything is written (:func:`dm_opt.core.safeio.check_output_file`:
    an existing file needs ``force=True``), and the text is loaded back before it is written (a
    market whose table would not load is refused with :class:`ProblemError`, nothing written).
    Returns the path written.
    """
    import numpy as np

    from dm_opt.core import safeio, tomlw
    from dm_opt.core.errors import ProblemError

    _check_path("path", path)
    if not isinstance(force, (bool, np.bool_)):       # force="no" would be truthy and overwrite
        raise ProblemError(f"force must be True or False, got {force!r}"[:200])
    kind = getattr(market, "kind", None)
    if kind not in KIND_MODULES:
        raise ProblemError(f"cannot save a {type(market).__name__}: it has no instance-file kind")
    mod = kind_module(kind)
    to_dict: Callable[[Any], dict[str, Any]] | None = getattr(mod, "to_dict", None)
    if to_dict is None:
        to_dict = getattr(type(market), "to_dict", None)
        if to_dict is None:
            raise ProblemError(f"saving markets of kind '{kind}' is not supported yet")
    where = safeio.check_output_file(os.fspath(path), "path", force)
    data = {"kind": kind, **{k: v for k, v in to_dict(market).items() if k != "kind"}}
    text = tomlw.dumps(data)
    try:        # what is written must load (a to_dict drifting from its loader is caught before writing)
        from_dict(tomllib.loads(text), where)
    except (InstanceError, tomllib.TOMLDecodeError) as exc:
        raise ProblemError(f"cannot save this {type(market).__name__}: the file would not load back ({exc})") from None
    # the temporary file is created exclusively ("x"): a user's file that happens to be named
    # <path>.tmp is never overwritten (nor moved onto path)
    for i in range(1000):
        tmp = f"{where}.tmp{i or ''}"
        try:
            fh = open(tmp, "x", encoding="utf-8")
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise ProblemError(f"path: cannot write {where}: {exc.strerror or exc}") from None
    else:
        raise ProblemError(f"path: cannot write {where}: no free temporary name {where}.tmp*")
    try:
        with fh:
            fh.write(text)
        os.replace(tmp, where)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return where


def check_keys(data: Mapping[str, Any], required: set[str], optional: set[str], where: str | None,
               prefix: str = "") -> None:
    """Reject missing required keys and unknown keys (typos) with one clear message."""
    for key in sorted(required):
        if key not in data:
            raise InstanceError(prefix + key, "missing", where)
    unknown = sorted(set(data) - required - optional)
    if unknown:
        raise InstanceError(prefix + unknown[0],
                            f"unknown field; allowed: {', '.join(sorted(required | optional))}", where)
