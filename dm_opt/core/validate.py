"""Validation at the boundary: every constructor and loader funnels user data
through these helpers, which raise :class:`~dm_opt.core.errors.InstanceError`
naming the field and the problem.

They are shared by all market families (Gaussian, information design,
sharing networks); use them instead of ad-hoc checks so that messages stay
uniform.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Sequence

import numpy as np

from dm_opt.core.errors import InstanceError

#: Relative tolerance for accepting a matrix as symmetric; it is then symmetrised.
SYMMETRY_RTOL = 1e-9

#: Largest magnitude accepted for any number given by the user (values of privacy, noise
#: variances, taxes, costs, samples, ...): products of two such numbers (1e300) stay finite,
#: so no later arithmetic overflows.  Documented in docs/instances.md.
MAX_ABS = 1e150
#: Largest magnitude of a covariance entry.  The dense posterior arithmetic works on the
#: noise-scaled matrices (dm_opt.gaussian.kernels.posterior), so leakages stay ≤ Σ_ii and objectives ≤ n·1e300:
#: measured finite and exact on every backend at Σ = 1e150·R with values up to 1e150
#: (tests/core/test_bad_instances.py::test_extreme_but_valid_scales_solve).
MAX_COV_ABS = 1e150
#: Smallest variance ``Σ_ii`` accepted (its reciprocal stays ≤ 1e150).
MIN_VARIANCE = 1e-150


def describe(x, width: int = 60) -> str:
    """``repr(x)`` on one line (runs of whitespace, e.g. the newlines of a numpy array's repr,
    become one space) and at most ``width`` characters: user data quoted in an error message
    never makes it span several lines or pages."""
    try:
        s = repr(x)
    except Exception:                       # a user object whose __repr__ fails
        s = f"<{type(x).__name__}>"
    s = " ".join(s.split())
    return s if len(s) <= width else s[:width - 3] + "..."


_describe = describe


def check_magnitude(field: str, arr, max_abs: float, where: str | None = None,
                    what: str = "numbers", why: str = "so that sums and products stay finite") -> None:
    """Refuse entries with ``|x| > max_abs`` (naming the first one and the accepted range)."""
    arr = np.asarray(arr, dtype=float)
    with np.errstate(invalid="ignore"):
        big = np.abs(arr) > max_abs
    if np.any(big):
        idx = tuple(np.argwhere(big)[0]) if arr.ndim else ()
        name = f"{field}[{','.join(str(int(i)) for i in idx)}]" if arr.ndim else field
        raise InstanceError(name, f"{arr[idx]:.6g} is out of range: {what} must lie in "
                            f"[-{max_abs:g}, {max_abs:g}] ({why}); rescale the units", where)


def as_real(field: str, x, where: str | None = None, *, max_abs: float | None = MAX_ABS,
            what: str = "numbers", why: str = "so that sums and products stay finite") -> float:
    """One finite real number (not a boolean), ``|x| <= max_abs``; integers too large for a float
    are refused like any other out-of-range number."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Real, np.number)):
        raise InstanceError(field, f"expected a real number, got {type(x).__name__} {_describe(x)}", where)
    try:
        f = float(x)
    except OverflowError:
        bound = f"{what} must lie in [-{max_abs:g}, {max_abs:g}] ({why})" if max_abs is not None else "must be finite"
        raise InstanceError(field, f"an integer of {len(str(abs(int(x))))} digits is out of range: {bound}",
                            where) from None
    if not math.isfinite(f):
        raise InstanceError(field, f"must be finite, got {f}", where)
    if max_abs is not None:
        check_magnitude(field, f, max_abs, where, what=what, why=why)
    return f


def as_array(field: str, x, *, ndim: int | None = None, shape: Sequence[int] | None = None,
             where: str | None = None, dtype=float, max_abs: float | None = MAX_ABS) -> np.ndarray:
    """Convert ``x`` to a finite numeric array of the given ``ndim``/``shape``.

    Every entry must satisfy ``|x| <= max_abs`` (default :data:`MAX_ABS`; ``None``: no bound).
    Booleans, strings and tables are refused (a boolean is never a number).
    """
    if isinstance(x, (str, bytes)) or x is None or isinstance(x, dict):
        raise InstanceError(field, f"expected numbers, got {type(x).__name__} {_describe(x)}", where)
    ma = sys.modules.get("numpy.ma")        # a masked array exists only once numpy.ma is loaded (~20 ms to load)
    if ma is not None and isinstance(x, ma.MaskedArray):     # np.array would silently use the data under the mask
        raise InstanceError(field, "is a masked array; give plain numbers (fill or drop the masked entries)",
                            where)
    try:
        if isinstance(x, np.ndarray) and x.dtype != object:
            arr = x
            # only integer and float dtypes: np.array(dtype=float) would coerce booleans, numeric
            # strings ("1") and complex numbers (dropping the imaginary part) without a word
            if arr.dtype.kind not in "iuf":
                raise InstanceError(field, f"expected real numbers, got an array of dtype {arr.dtype}", where)
        else:
            arr = np.array(x, dtype=object)
            # Reject booleans and strings explicitly: np.asarray would coerce them.
            for item in arr.flat:
                if isinstance(item, (bool, np.bool_)) or not isinstance(item, (numbers.Real, np.number)):
                    what = (" (rows of unequal length, or nested deeper than a "
                            f"{'matrix' if ndim == 2 else 'vector' if ndim == 1 else 'array'})"
                            if isinstance(item, (list, tuple, np.ndarray)) else "")
                    raise InstanceError(
                        field, f"expected real numbers, found {type(item).__name__} {_describe(item)}{what}", where
                    )
        arr = np.array(arr, dtype=dtype, copy=True)  # never alias (we freeze our copies)
    except InstanceError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise InstanceError(field, f"not a numeric array ({' '.join(str(exc).split())[:120]})", where) from None
    except (RuntimeError, RecursionError):      # numpy refuses more than 32 (NPY_MAXDIMS 64) nested levels
        raise InstanceError(field, "not a numeric array (lists nested too deeply)", where) from None
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
    if max_abs is not None and arr.size and np.issubdtype(arr.dtype, np.number):
        check_magnitude(field, arr, max_abs, where)
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
              nonnegative: bool = False, positive: bool = False, min_len: int = 1,
              max_abs: float | None = MAX_ABS) -> np.ndarray:
    """A finite 1-d float vector of length ``n`` (scalars are broadcast when ``n`` is given),
    entries at most ``max_abs`` in magnitude (default :data:`MAX_ABS`)."""
    if n is not None and isinstance(x, numbers.Real) and not isinstance(x, bool):
        x = [as_real(field, x, where, max_abs=max_abs)] * n      # a bad scalar is named without an index
    arr = as_array(field, x, ndim=1, where=where, max_abs=max_abs)
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
    arr = as_array(field, x, ndim=2, where=where, max_abs=None)
    if arr.size:
        check_magnitude(field, arr, MAX_COV_ABS, where, what="covariance entries")
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
    if np.any(diag < MIN_VARIANCE):
        i = int(np.argmax(diag < MIN_VARIANCE))
        raise InstanceError(f"{field}[{i},{i}]", f"variance {diag[i]:.6g} is out of range: variances must lie in "
                            f"[{MIN_VARIANCE:g}, {MAX_COV_ABS:g}]; rescale the units", where)
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


def check_noise_ratio(variance, noise, where: str | None = None, *, variance_field=lambda i: f"cov[{i},{i}]",
                      noise_field=lambda i: f"noise_var[{i}]", noise_given: bool = True) -> None:
    """Refuse a noise ratio ``τ_i²/σ_i²`` outside :data:`dm_opt.gaussian.market.NOISE_RATIO_RANGE`
    (the range in which leakage is computed to 1e-9 of the objective's scale), naming the field
    that is out of scale: the variance or the noise, whichever is further from 1 (the variance
    when the noise was not given)."""
    from dm_opt.gaussian.market import NOISE_RATIO_RANGE  # (lazy: markets.gaussian imports this module)

    variance = np.asarray(variance, dtype=float)
    noise = np.asarray(noise, dtype=float)
    with np.errstate(over="ignore", divide="ignore", under="ignore"):
        ratio = noise / variance
    lo, hi = NOISE_RATIO_RANGE
    bad = np.flatnonzero(~((ratio >= lo) & (ratio <= hi)))
    if bad.size:
        i = int(bad[0])
        by_noise = noise_given and abs(np.log(noise[i])) > abs(np.log(variance[i]))
        raise InstanceError(noise_field(i) if by_noise else variance_field(i),
                            f"noise ratio noise_var/variance = {noise[i]:.6g}/{variance[i]:.6g} = {ratio[i]:.3g} "
                            f"is outside [{lo:g}, {hi:g}], the range in which leakage is computed to 1e-9 of the "
                            f"objective's scale; rescale the variance or the noise", where)


def precheck_noise_ratio(cov, noise, where: str | None = None, *, cov_field: str = "cov") -> None:
    """For loaders: the noise-ratio refusal with the right field (``cov[i,i]`` or ``noise_var[i]``)
    before :class:`~dm_opt.gaussian.market.GaussianMarket` checks it.  Does nothing when ``cov`` or
    ``noise`` is malformed: the market's constructor then reports that, with its usual precedence."""
    try:
        arr = as_array(cov_field, cov, ndim=2, max_abs=MAX_COV_ABS)
        n = arr.shape[0]
        if n == 0 or arr.shape != (n, n) or not np.all(np.diag(arr) >= MIN_VARIANCE):
            return
        tau = np.ones(n) if noise is None else as_vector("noise_var", noise, n, positive=True)
    except InstanceError:
        return
    check_noise_ratio(np.diag(arr), tau, where, variance_field=lambda i: f"{cov_field}[{i},{i}]",
                      noise_given=noise is not None)


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
