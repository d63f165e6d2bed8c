"""A minimal TOML writer (top-level keys, inline tables and arrays; nan/inf allowed) for
:func:`dm_opt.core.instances.save` and the fuzz tests.  Numbers are written with ``repr`` so a
saved market reads back bit for bit."""

import math
import re

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k):
    return k if _BARE.match(k) else '"' + _esc(k) + '"'


def _esc(s):
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def value(v):
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):     # numpy arrays and scalars
        v = v.tolist()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + _esc(v) + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def dumps(d):
    return "".join(f"{_key(k)} = {value(v)}\n" for k, v in d.items())
