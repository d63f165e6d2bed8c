"""The result protocol shared by every family (Gaussian, information design, sharing).

Every public result — :class:`dm_opt.gaussian.SolveResult`, the information-design LP
solutions, the sharing-network welfare/price results, … — derives from :class:`Result`
and therefore answers the same questions in the same words:

``status``            why the solver stopped (:class:`~dm_opt.core.status.Termination`)
``solution_status``   what is in hand (:class:`~dm_opt.core.status.SolutionStatus`)
``objective``         the objective of the returned answer (re-evaluated exactly where the
                      family can; ``nan`` when the result has no scalar objective)
``bound``             a proven bound on the optimum in the problem's sense (``nan`` if none)
``gap``               :func:`relative_gap` of objective and bound
``seconds``           wall-clock seconds of the solve
``message``           human-readable detail
``extra``             backend statistics
``to_dict()``         JSON-ready dict (strict JSON through :mod:`dm_opt.core.jsonenc`)
``raise_for_status()`` raises :class:`~dm_opt.core.errors.NoOptimalSolution` unless the
                      status is ``optimal``; returns the result otherwise

A family's dataclass provides these as fields or properties; :class:`Result` supplies the
ones it does not (``solution_status``, ``gap``, ``to_dict``, ``raise_for_status``) and
:func:`check_protocol` verifies an instance (used by every family's test catalogue).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np

from dm_opt.core.errors import InstanceError, NoOptimalSolution
from dm_opt.core.status import SolutionStatus, Termination, solution_status_of
from dm_opt.core.validate import describe

#: a result class (or instance) of the protocol, for the methods returning their own type
R = TypeVar("R", bound="Result")

#: The attributes every result has (fields or properties).
PROTOCOL = ("status", "solution_status", "objective", "bound", "gap", "seconds", "message", "extra")


def relative_gap(objective: float, bound: float) -> float:
    """Relative gap ``|bound - objective| / max(|objective|, |bound|, 1e-10)``.

    The same convention as HiGHS/Mittelmann; 0 when the bound is attained; ``inf`` when
    either is not finite.
    """
    if not (np.isfinite(objective) and np.isfinite(bound)):
        return float("inf")
    diff = abs(bound - objective)
    if diff == 0.0:
        return 0.0
    return diff / max(abs(objective), abs(bound), 1e-10)


def frozen_array(a: Any, dtype: Any = None) -> np.ndarray:
    """A read-only copy of ``a`` (results never alias or expose mutable arrays).

    An array already read-only that owns its data (``base is None``) and has the dtype asked for
    is handed over as is: it cannot be written without an explicit ``setflags`` by its owner, and
    the copy would cost a pass over fresh memory (result arrays have 10⁷ entries on community markets).
    """
    if (isinstance(a, np.ndarray) and a.base is None and not a.flags.writeable
            and (dtype is None or a.dtype == np.dtype(dtype))):
        return a
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


class Result:
    """Mixin of the result protocol (see the module docstring).

    Subclasses are (usually frozen) dataclasses with at least ``status``; the defaults below
    are used for protocol attributes a subclass does not define itself.  ``family`` names the
    model family (``gaussian``, ``info_design``, ``sharing``).
    """

    family: ClassVar[str] = ""
    #: every subclass (the families' tests check each against the protocol)
    subclasses: ClassVar[list[type[Result]]] = []

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        Result.subclasses.append(cls)

    # -- defaults (a subclass field or property of the same name takes precedence) ----------
    def __getattr__(self, name: str) -> Any:
        # called only when normal lookup fails: protocol attributes a subclass lacks
        if name == "objective":
            return float("nan")
        if name == "bound":
            return float("nan")
        if name == "gap":
            return relative_gap(float(self.objective), float(self.bound))
        if name == "seconds":
            return 0.0
        if name == "message":
            return ""
        if name == "extra":
            return {}
        if name == "solution_status":
            return self._default_solution_status()
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _has_answer(self) -> bool:
        """Whether an answer with a finite objective is in hand (override where the answer is not
        a scalar: e.g. a mechanism, a graph)."""
        try:
            return math.isfinite(float(self.objective))
        except (TypeError, ValueError):
            return False

    def _default_solution_status(self) -> SolutionStatus:
        return solution_status_of(self.status, self._has_answer())

    @property
    def is_optimal(self) -> bool:
        return Termination(self.status) is Termination.OPTIMAL

    def raise_for_status(self: R) -> R:
        """Return ``self`` if the status is ``optimal``; else raise :class:`NoOptimalSolution`
        (a :class:`~dm_opt.core.errors.SolverFailed`) saying what is in hand."""
        if not self.is_optimal:
            what = getattr(self, "method", "") or type(self).__name__
            raise NoOptimalSolution(
                f"{what} stopped with status '{Termination(self.status)}' "
                f"(solution {self.solution_status}; objective {float(self.objective):.6g}, "
                f"bound {float(self.bound):.6g}, gap {float(self.gap):.3g})"
                + (f": {self.message}" if self.message else ""), result=self)
        return self

    def protocol_dict(self) -> dict[str, Any]:
        """The protocol's fields, in the order of the common ``--json`` schema."""
        return {
            "status": str(Termination(self.status)),
            "solution_status": str(SolutionStatus(self.solution_status)),
            "objective": _num(self.objective),
            "bound": _num(self.bound),
            "gap": _num(self.gap),
            "seconds": float(self.seconds),
            "message": str(self.message),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the protocol fields, then the dataclass's own fields (arrays as lists,
        non-finite numbers as strings), then ``extra``."""
        d = self.protocol_dict()
        if dataclasses.is_dataclass(self):
            for f in dataclasses.fields(self):
                if f.name in d or f.name == "extra" or f.name.startswith("_"):
                    continue
                d[f.name] = _jsonable(getattr(self, f.name))
        extra = self.extra
        if extra:
            d["extra"] = _jsonable(dict(extra))
        return d

    def to_json(self, **kw: Any) -> str:
        """Strict JSON of :meth:`to_dict` (non-finite numbers as ``"inf"``, ``"-inf"``, ``"nan"``)."""
        return json.dumps(_jsonable(self.to_dict()), **{**kw, "allow_nan": False})

    @classmethod
    def from_dict(cls: type[R], d: Mapping[str, Any]) -> R:
        """The result back from :meth:`to_dict` (or its JSON): dataclass fields are read by name,
        ``status`` as a :class:`Termination`, the strings ``"inf"``/``"-inf"``/``"nan"`` as floats
        in numeric fields, lists as arrays in array fields; keys that are not fields (the
        protocol's derived ones, e.g. ``seconds``, ``solution_status``) are ignored."""
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not a dataclass")
        # a malformed dict (hand-edited JSON, another result type's dict) gets one InstanceError naming
        # the field, never a TypeError from the constructor or a result claiming "optimal" with no answer
        if not isinstance(d, Mapping):
            raise InstanceError("result", f"{cls.__name__}.from_dict needs a dict (the output of to_dict), "
                                          f"got {type(d).__name__}")
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.name not in d:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise InstanceError(f.name, f"missing: not a {cls.__name__}.to_dict() output")
                continue
            kw[f.name] = _restore(d[f.name], str(f.type))
            if str(f.type) in _SCALAR_ANNOTATIONS and not (
                    (kw[f.name] is None and "None" in str(f.type))
                    or (isinstance(kw[f.name], numbers.Real) and not isinstance(kw[f.name], bool))):
                raise InstanceError(f.name, f"must be a number (or 'inf', '-inf', 'nan'), got {describe(d[f.name])}")
        if "status" in kw:
            try:
                kw["status"] = Termination(kw["status"])
            except (ValueError, TypeError):
                raise InstanceError("status", f"must be one of {', '.join(str(t) for t in Termination)}, "
                                              f"got {describe(d['status'])}") from None
        try:
            out = cls(**kw)
        except (TypeError, ValueError) as exc:
            raise InstanceError("result", f"not a valid {cls.__name__}: {describe(str(exc), 120)}") from None
        if out.is_optimal and not out._has_answer():
            raise InstanceError("objective", f"status optimal needs a finite objective, got "
                                             f"{describe(d.get('objective'))}")
        tie = getattr(out, "tie_tol", None)
        if out.is_optimal and tie is not None:
            # the certificate of "optimal" (docs/spec.md): bound - objective <= tie_tol, both finite
            if not (math.isfinite(float(tie)) and tie >= 0):
                raise InstanceError("tie_tol", f"must be a finite number >= 0, got {describe(d.get('tie_tol'))}")
            if not float(out.bound) - float(out.objective) <= tie:
                raise InstanceError("bound", f"status optimal needs bound - objective <= tie_tol = {tie:.3g}, "
                                             f"got bound {describe(d.get('bound'))}, "
                                             f"objective {describe(d.get('objective'))}")
        return out

    @classmethod
    def from_json(cls: type[R], text: str) -> R:
        """:meth:`from_dict` of a JSON string (:meth:`to_json`'s output)."""
        return cls.from_dict(json.loads(text))


_NONFINITE = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}


def _restore(v: Any, annotation: str) -> Any:
    """A JSON value back to the type of a field annotated ``annotation`` (a string under
    ``from __future__ import annotations``)."""
    def num(x: Any) -> Any:
        if isinstance(x, str) and x in _NONFINITE:
            return _NONFINITE[x]
        if isinstance(x, list):
            return [num(y) for y in x]
        return x

    if v is None:
        return None
    if "ndarray" in annotation:
        return np.asarray(num(v))
    if annotation.startswith("tuple") and isinstance(v, list):
        return tuple(_restore_item(num(x)) if isinstance(x, list) else num(x) for x in v)
    if "float" in annotation or "int" in annotation:
        return num(v)
    if isinstance(v, list):
        return num(v)
    return v


def _restore_item(x: list) -> Any:
    """An element of a tuple field: an array, or (ragged, e.g. ``(q, x)`` pairs of different shapes) a tuple
    of its restored elements."""
    try:
        return np.asarray(x)
    except ValueError:
        return tuple(_restore_item(y) if isinstance(y, list) else y for y in x)


#: Field annotations read as one number by :meth:`Result.from_dict`.
_SCALAR_ANNOTATIONS = ("float", "int", "float | None", "int | None")


def check_protocol(r: Any) -> list[str]:
    """Violations of the result protocol by the instance ``r`` (empty list: conforms)."""
    bad = []
    if not isinstance(r, Result):
        bad.append(f"{type(r).__name__} does not derive from dm_opt.core.result.Result")
    for name in PROTOCOL:
        try:
            getattr(r, name)
        except Exception as exc:          # noqa: BLE001 - reported, not raised
            bad.append(f"{type(r).__name__}.{name}: {type(exc).__name__}: {exc}")
    if bad:
        return bad
    try:
        Termination(r.status)
    except ValueError:
        bad.append(f"status {r.status!r} is not a Termination")
    try:
        SolutionStatus(r.solution_status)
    except ValueError:
        bad.append(f"solution_status {r.solution_status!r} is not a SolutionStatus")
    if str(r.solution_status) == "optimal" and str(r.status) != "optimal":
        bad.append("solution_status optimal without status optimal")
    try:
        json.dumps(r.to_dict(), allow_nan=False)
    except Exception as exc:              # noqa: BLE001
        bad.append(f"to_dict() is not strict JSON: {exc}")
    return bad


def _num(x: float) -> float | str:
    """JSON-safe number (:func:`dm_opt.core.jsonenc.json_number`: ``"inf"``/``"-inf"``/``"nan"`` if not finite)."""
    x = float(x)
    if x - x == 0.0:              # finite (fast path: called once per user for prices and leakage)
        return x
    from dm_opt.core.jsonenc import json_number

    return json_number(x)


def _jsonable(v: Any) -> Any:
    """Numpy scalars/arrays to plain values, non-finite floats to strings (:func:`dm_opt.core.jsonenc.jsonable`)."""
    from dm_opt.core.jsonenc import jsonable

    return jsonable(v)


__all__ = ["PROTOCOL", "Result", "Termination", "SolutionStatus", "relative_gap", "frozen_array", "check_protocol"]
