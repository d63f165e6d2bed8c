"""Strict JSON for every ``--json`` output and :meth:`SolveResult.to_json` (one encoding).

JSON (RFC 8259) has no infinities and no NaN; Python's :func:`json.dumps` writes
the non-standard tokens ``Infinity`` / ``NaN`` by default, which most other
parsers reject.  dm_opt therefore writes every non-finite number as a **string**:

* ``+inf`` → ``"inf"``, ``-inf`` → ``"-inf"``, NaN → ``"nan"``

(``float("inf")``, ``float("nan")`` and ``numpy.float64`` read them back).  A value
that is *absent* (not computed) is ``null``, never a number.  Numpy scalars and
arrays become plain numbers and lists; tuples and sets become lists; enums become
their value.  :func:`dumps` always passes ``allow_nan=False``, so a non-finite
float that escaped the conversion is an error here, never invalid output.
"""

from __future__ import annotations

import enum
import json
import math

__all__ = ["json_number", "jsonable", "dumps", "dump", "NONFINITE"]

#: The strings written for non-finite numbers.
NONFINITE = ("inf", "-inf", "nan")


def json_number(x):
    """``x`` as a JSON-safe number: a finite float, or ``"inf"`` / ``"-inf"`` / ``"nan"``;
    ``None`` stays ``None``."""
    if x is None:
        return None
    x = float(x)
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "nan"
    return "inf" if x > 0 else "-inf"


def jsonable(obj):
    """A copy of ``obj`` made of dict / list / str / int / finite float / bool / None only."""
    t = type(obj)                 # fast paths for the plain types (lists of a million floats happen)
    if t is float:
        return obj if obj - obj == 0.0 else json_number(obj)
    if t is int or t is str or t is bool or obj is None:
        return obj
    if t is list:
        return [jsonable(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return json_number(obj)
    if isinstance(obj, dict):
        return {_key(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    np = _numpy()
    if np is not None:
        if isinstance(obj, np.ndarray):
            return jsonable(obj.tolist())
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return json_number(obj)
    if hasattr(obj, "to_dict"):
        return jsonable(obj.to_dict())
    return obj                      # json.dumps raises TypeError for anything else


def dumps(obj, **kw) -> str:
    """:func:`json.dumps` of :func:`jsonable` ``(obj)`` with ``allow_nan=False`` (strict JSON)."""
    kw["allow_nan"] = False
    return json.dumps(jsonable(obj), **kw)


def dump(obj, fh, **kw) -> None:
    """:func:`json.dump` counterpart of :func:`dumps`."""
    kw["allow_nan"] = False
    json.dump(jsonable(obj), fh, **kw)


def _key(k):
    if isinstance(k, enum.Enum):
        k = k.value
    if isinstance(k, (str, int, bool)) or k is None:
        return k
    if isinstance(k, float):
        return json_number(k) if not math.isfinite(k) else k
    np = _numpy()
    if np is not None and isinstance(k, np.generic):
        return _key(k.item())
    return str(k)


def _numpy():
    import sys

    return sys.modules.get("numpy")      # never import numpy just for this: arrays imply it is loaded
