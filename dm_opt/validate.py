"""Validation at the boundary: every constructor and loader funnels user data
through these helpers, which raise :class:`~dm_opt.errors.InstanceError`
naming the field and the problem.

They are shared by all market families (Gaussian, information design,
sharing networks); use them instead of ad-hoc checks so that messages stay
uniform.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

from .errors import InstanceError

#: Relative tolerance for accepting a matrix as symmetric; it is then symmetrised.
SYMMETRY_RTOL = 1e-9


def _describe(x) -> str:
    s = repr(x)
    return s if len(s) <= 60 else s[:57] + "..."


def as_array(field: str, x, *, ndim: int | None = None, shape: Sequence[int] | None = None,
             where: str | None = None, dtype=float) -> np.ndarray:
    """Convert ``x`` to a finite numeric array of the given ``ndim``/``shape``."""
    if isinstance(x, (str, bytes)) or x is None or isinstance(x, dict):
        raise InstanceError(field, f"expected numbers, got {type(x).__name__} {_describe(x)}", where)
    try:
        if isinstance(x, np.ndarray):
            arr = x
        else:
            arr = np.array(x, dtype=object)
            # Reject booleans and strings explicitly: np.asarray would coerce them.
            for item in arr.flat:
                if isinstance(item, (bool, np.bool_)) or not isinstance(item, (numbers.Real, np.number)):
                    raise InstanceError(
                        field, f"expected real numbers, found {type(item).__name__} {_describe(item)}", where
                    )
        arr = np.array(arr, dtype=dtype, copy=True)  # never alias (we freeze our copies)
    except InstanceError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise InstanceError(field, f"not a numeric array ({exc})", where) from None
    if arr.dtype == object:
        raise InstanceError(field, "ragged or non-numeric array", where)
    if ndim is not None and arr.ndim != ndim:
        raise InstanceError(field, f"expected a {ndim}-d array, got shape {arr.shape}", where)
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise InstanceError(field, f"expected shape {tuple(shape)}, got {arr.shape}", where)
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        idx = ",".join(str(int(i)) for i in bad)
        raise InstanceError(f"{field}[{idx}]", f"must be finite, got {arr[tuple(bad)]}", where)
    return arr


def check_nonnegative(field: str, arr: np.ndarray, where: str | None = None) -> None:
    if np.any(arr < 0):
        i = int(np.argmax(arr < 0))
        raise InstanceError(f"{field}[{i}]", f"must be >= 0, got {arr.flat[i]}", where)


def check_positive(field: str, arr: np.ndarray, where: str | None = None) -> None:
    if np.any(arr <= 0):
        i = int(np.argmax(arr <= 0))
        raise InstanceError(f"{field}[{i}]", f"must be > 0, got {arr.flat[i]}", where)


def as_vector(field: str, x, n: int | None = None, *, where: str | None = None,
              nonnegative: bool = False, positive: bool = False, min_len: int = 1) -> np.ndarray:
    """A finite 1-d float vector of length ``n`` (scalars are broadcast when ``n`` is given)."""
    if n is not None and isinstance(x, numbers.Real) and not isinstance(x, bool):
        x = [x] * n
    arr = as_array(field, x, ndim=1, where=where)
    if n is not None and arr.shape[0] != n:
        raise InstanceError(field, f"expected length {n} (one entry per user), got {arr.shape[0]}", where)
    if arr.shape[0] < min_len:
        raise InstanceError(field, f"needs at least {min_len} entries, got {arr.shape[0]}", where)
    if nonnegative:
        check_nonnegative(field, arr, where)
    if positive:
        check_positive(field, arr, where)
    return arr


def as_covariance(field: str, x, *, where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A symmetric positive definite matrix and its lower Cholesky factor.

    Symmetry is accepted up to a relative tolerance :data:`SYMMETRY_RTOL` and
    then enforced exactly; positive definiteness is decided by Cholesky.
    """
    arr = as_array(field, x, ndim=2, where=where)
    n, m = arr.shape
    if n != m:
        raise InstanceError(field, f"must be square, got shape {arr.shape}", where)
    if n == 0:
        raise InstanceError(field, "must have at least one user (got a 0x0 matrix)", where)
    scale = max(float(np.max(np.abs(arr))), 1e-300)
    asym = np.abs(arr - arr.T)
    if np.max(asym) > SYMMETRY_RTOL * scale:
        i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
        raise InstanceError(
            field,
            f"must be symmetric: [{i},{j}] = {arr[i, j]} but [{j},{i}] = {arr[j, i]}",
            where,
        )
    arr = 0.5 * arr + 0.5 * arr.T   # (not 0.5 (A + Aᵀ): that overflows near the float limit)
    diag = np.diag(arr)
    if np.any(diag <= 0):
        i = int(np.argmax(diag <= 0))
        raise InstanceError(f"{field}[{i},{i}]", f"variance must be > 0, got {diag[i]}", where)
    try:
        chol = np.linalg.cholesky(arr)
    except np.linalg.LinAlgError:
        w = np.linalg.eigvalsh(arr)
        raise InstanceError(
            field,
            f"must be positive definite (Cholesky failed; smallest eigenvalue {w[0]:.3g})",
            where,
        ) from None
    if not np.all(np.isfinite(chol)) or np.min(np.diag(chol)) <= 0:
        raise InstanceError(field, "must be positive definite (Cholesky factor is singular)", where)
    arr.setflags(write=False)
    return arr, chol


def as_profile(field: str, a, n: int) -> np.ndarray:
    """A 0/1 sharing profile of length ``n`` as int8 (accepts bools and 0.0/1.0)."""
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise InstanceError(field, f"not an array ({exc})") from None
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InstanceError(field, f"expected a 0/1 vector of length {n}, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if not np.issubdtype(arr.dtype, np.number):
        raise InstanceError(field, f"expected 0/1 entries, got dtype {arr.dtype}")
    if not np.all((arr == 0) | (arr == 1)):
        i = int(np.argmax(~((arr == 0) | (arr == 1))))
        raise InstanceError(f"{field}[{i}]", f"must be 0 or 1, got {arr[i]}")
    return arr.astype(np.int8)
