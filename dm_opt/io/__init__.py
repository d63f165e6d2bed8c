"""Instance files (TOML): what market and what numbers, never how to solve.

Every file has ``kind = "..."`` and a ``source`` line naming the paper and
example.  Files are parsed as data only (TOML); nothing in them is evaluated or
imported.  Each kind is handled by one module listed in :data:`KIND_MODULES`
(imported on demand), which provides

* ``from_dict(data: dict, where: str)`` → the market object (validating every field),
* ``PROBLEMS`` (tuple of problem names) and ``DEFAULT_PROBLEM``,
* ``run(market, problem, options: dict) -> (json_dict, text)`` for ``dm-opt solve``.
"""

from __future__ import annotations

import importlib
import os
import sys

from ..errors import InstanceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: kind -> module implementing it
KIND_MODULES: dict[str, str] = {
    "gaussian_market": "dm_opt.io.gaussian",
    "community_market": "dm_opt.io.community",
    "gaussian_mixture": "dm_opt.io.mixture",
    "two_platforms": "dm_opt.io.platforms",
    "info_design": "dm_opt.io.info_design",
    "gaussian_valuations": "dm_opt.io.valuations",
    "gaussian_taxes": "dm_opt.io.taxes",
    "sharing_network": "dm_opt.io.sharing",
}

#: Largest instance file read (bytes); larger files are refused before parsing.
MAX_FILE_BYTES = 64 * 1024 * 1024


def kind_module(kind, where: str | None = None):
    """The module handling ``kind`` (raises InstanceError for unknown kinds)."""
    if not isinstance(kind, str):
        raise InstanceError("kind", f"must be a string, got {type(kind).__name__}", where)
    if kind not in KIND_MODULES:
        raise InstanceError("kind", f"unknown kind '{kind}'; choose one of {', '.join(sorted(KIND_MODULES))}", where)
    return importlib.import_module(KIND_MODULES[kind])


def read_toml(path) -> dict:
    """Parse a TOML file into a dict, with errors naming the file."""
    where = os.fspath(path)
    try:
        size = os.path.getsize(where)
        if size > MAX_FILE_BYTES:
            raise InstanceError("file", f"is {size} bytes; the limit is {MAX_FILE_BYTES}", where)
        with open(where, "rb") as fh:
            raw = fh.read()
    except InstanceError:
        raise
    except IsADirectoryError:
        raise InstanceError("file", "is a directory, expected a .toml instance file", where) from None
    except FileNotFoundError:
        raise InstanceError("file", "not found", where) from None
    except OSError as exc:
        raise InstanceError("file", f"cannot be read ({exc.strerror or exc})", where) from None
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


def from_dict(data: dict, where: str | None = None):
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


def load(path):
    """Load and validate an instance file; errors name the file and the field."""
    where = os.fspath(path)
    return from_dict(read_toml(where), where)


def check_keys(data: dict, required: set, optional: set, where: str | None, prefix: str = "") -> None:
    """Reject missing required keys and unknown keys (typos) with one clear message."""
    for key in sorted(required):
        if key not in data:
            raise InstanceError(prefix + key, "missing", where)
    unknown = sorted(set(data) - required - optional)
    if unknown:
        raise InstanceError(prefix + unknown[0], f"unknown field; allowed: {', '.join(sorted(required | optional))}", where)
