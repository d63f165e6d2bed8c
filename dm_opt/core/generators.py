"""Seeded instance generators (linopy ``benchmarks/registry.py`` style).

Each covariance family maps ``(n, seed, **params)`` to a positive definite
``Σ``; value families map ``(n, seed, **params)`` to values of privacy.  The
same registry serves instance files (``cov = {family = "wishart", n = 30,
seed = 1}``), the benchmark harness and the tests, so an instance is fully
named by ``(family, n, seed, params)``.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Callable

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.validate import as_array

#: Largest n a generator builds a dense n×n covariance for (memory/time guard).
MAX_DENSE_N = 5000
#: Largest ``n × df`` for the Wishart generator's ``n × df`` Gaussian matrix (memory guard: 200 MB).
MAX_WISHART_ENTRIES = 25_000_000
#: Integer parameters of the generators (must be integers, not floats or booleans) and their ranges.
INT_PARAMS = {"df": (1, MAX_WISHART_ENTRIES), "bandwidth": (0, MAX_DENSE_N)}

COV_FAMILIES: dict[str, Callable[..., np.ndarray]] = {}
VALUE_FAMILIES: dict[str, Callable[..., np.ndarray]] = {}


def _register(table):
    def deco(fn):
        table[fn.__name__] = fn
        return fn
    return deco


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


@_register(COV_FAMILIES)
def wishart(n: int, seed: int = 0, df: int | None = None, normalize: bool = True) -> np.ndarray:
    """``G Gᵀ / df`` with ``G`` an ``n × df`` standard normal matrix (``df = n + 2`` by default),
    rescaled to unit variances when ``normalize``."""
    df = n + 2 if df is None else int(df)
    G = _rng(seed).standard_normal((n, df))
    S = G @ G.T / df
    if normalize:
        d = 1.0 / np.sqrt(np.diag(S))
        S = S * d[:, None] * d[None, :]
    return 0.5 * (S + S.T)


@_register(COV_FAMILIES)
def equicorrelated(n: int, seed: int = 0, rho: float = 0.3, variance: float = 1.0) -> np.ndarray:
    """``variance · ((1−ρ) I + ρ 11ᵀ)``; positive definite for ``−1/(n−1) < ρ < 1``."""
    return variance * ((1.0 - rho) * np.eye(n) + rho * np.ones((n, n)))


@_register(COV_FAMILIES)
def block(n: int, seed: int = 0, sizes=None, within: float = 0.3, across=0.05,
          variance: float = 1.0) -> np.ndarray:
    """Community structure: ``len(sizes)`` blocks; correlation ``within`` inside a block and
    ``across`` (scalar or K×K matrix) between blocks.  Default: two equal blocks."""
    if sizes is None:
        sizes = [n // 2, n - n // 2]
    sizes = [int(s) for s in sizes]
    if sum(sizes) != n:
        raise InstanceError("cov.sizes", f"block sizes sum to {sum(sizes)}, expected n = {n}")
    K = len(sizes)
    A = np.full((K, K), float(across)) if np.ndim(across) == 0 else np.asarray(across, float)
    if A.shape != (K, K):
        raise InstanceError("cov.across", f"expected a scalar or a {K}x{K} matrix, got shape {A.shape}")
    labels = np.repeat(np.arange(K), sizes)
    R = A[labels][:, labels]
    same = labels[:, None] == labels[None, :]
    R = np.where(same, within, R)
    np.fill_diagonal(R, 1.0)
    return variance * R


@_register(COV_FAMILIES)
def banded(n: int, seed: int = 0, bandwidth: int = 2, strength: float = 0.5) -> np.ndarray:
    """Sparse banded ``Σ = I + strength · B Bᵀ`` with ``B`` random and lower-banded; unit variances."""
    rng = _rng(seed)
    B = np.zeros((n, n))
    for k in range(min(int(bandwidth), n - 1) + 1):
        B += np.diag(rng.standard_normal(n - k), -k)
    S = np.eye(n) + strength * (B @ B.T) / (bandwidth + 1)
    d = 1.0 / np.sqrt(np.diag(S))
    S = S * d[:, None] * d[None, :]
    return 0.5 * (S + S.T)


@_register(VALUE_FAMILIES)
def uniform(n: int, seed: int = 0, low: float = 0.0, high: float = 2.0) -> np.ndarray:
    """Values of privacy i.i.d. uniform on ``[low, high]``."""
    return _rng(seed).uniform(low, high, size=n)


@_register(VALUE_FAMILIES)
def straddle(n: int, seed: int = 0, spread: float = 0.5) -> np.ndarray:
    """Values straddling 1 (half below, half above, uniform within ``spread``): the hard cases."""
    rng = _rng(seed)
    v = 1.0 + rng.uniform(0.0, spread, size=n) * np.where(np.arange(n) % 2 == 0, -1.0, 1.0)
    return rng.permutation(v)


@_register(VALUE_FAMILIES)
def constant(n: int, seed: int = 0, value: float = 1.0) -> np.ndarray:
    """Every user has the same value of privacy."""
    return np.full(n, float(value))


def _param(name: str, key: str, val, default, n: int, where):
    """Validate one generator parameter from a file (type, shape, range); returns the clean value."""
    if isinstance(default, bool):
        if not isinstance(val, bool):
            raise InstanceError(name, f"must be true or false, got {val!r}"[:120], where)
        return val
    if isinstance(val, bool):
        raise InstanceError(name, f"must be numeric, got the boolean {str(val).lower()} "
                            f"(booleans are never numbers)", where)
    if key in INT_PARAMS:
        lo, hi = INT_PARAMS[key]
        if not isinstance(val, numbers.Integral) or not lo <= val <= hi:
            raise InstanceError(name, f"must be an integer in [{lo}, {hi}], got {val!r}"[:120], where)
        if key == "df" and n * val > MAX_WISHART_ENTRIES:
            raise InstanceError(name, f"n × df = {n * val} exceeds {MAX_WISHART_ENTRIES} (memory limit of the "
                                f"Wishart generator)", where)
        return int(val)
    if key == "sizes":
        if not isinstance(val, list) or not 1 <= len(val) <= n:
            raise InstanceError(name, f"must be a list of 1..n = {n} block sizes, got {val!r}"[:120], where)
        for i, x in enumerate(val):
            if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 1:
                raise InstanceError(f"{name}[{i}]", f"must be a positive integer, got {x!r}"[:120], where)
        return [int(x) for x in val]
    if key == "across" and isinstance(val, list):
        return as_array(name, val, ndim=2, where=where)
    if not isinstance(val, numbers.Real):
        raise InstanceError(name, f"must be numeric, got {type(val).__name__} {val!r}"[:120], where)
    return float(as_array(name, val, ndim=0, where=where))


def generate(kind: str, spec: dict, field: str, where: str | None = None, n: int | None = None) -> np.ndarray:
    """Call a registered generator from an instance-file table ``{family = ..., n = ..., seed = ...}``."""
    table = COV_FAMILIES if kind == "cov" else VALUE_FAMILIES
    spec = dict(spec)
    fam = spec.pop("family", None)
    if not isinstance(fam, str):
        raise InstanceError(f"{field}.family",
                            f"missing or not a string; choose one of {', '.join(sorted(table))}", where)
    if fam not in table:
        raise InstanceError(f"{field}.family",
                            f"unknown generator '{fam}'; choose one of {', '.join(sorted(table))}", where)
    fn = table[fam]
    if n is not None:
        if "n" in spec and spec["n"] != n:
            raise InstanceError(f"{field}.n", f"is {spec['n']} but the market has n = {n}", where)
        spec["n"] = n
    if "n" not in spec:
        raise InstanceError(f"{field}.n", "missing (number of users)", where)
    nn = spec["n"]
    if isinstance(nn, bool) or not isinstance(nn, int) or nn < 1:
        raise InstanceError(f"{field}.n", f"must be a positive integer, got {nn!r}", where)
    if nn > MAX_DENSE_N:
        raise InstanceError(f"{field}.n", f"{nn} users is too many for a dense covariance (limit {MAX_DENSE_N}; "
                            f"use kind = \"community_market\" for large structured markets)", where)
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InstanceError(f"{field}.seed", f"must be a nonnegative integer, got {seed!r}", where)
    params = inspect.signature(fn).parameters
    for key, val in spec.items():
        if key not in params:
            raise InstanceError(f"{field}.{key}", f"unknown parameter for generator '{fam}'; "
                                f"allowed: {', '.join(params)}", where)
        if key in ("n", "seed"):
            continue
        spec[key] = _param(f"{field}.{key}", key, val, params[key].default, nn, where)
    try:
        out = fn(**spec)
    except InstanceError as exc:  # raised inside a generator: add the file name
        raise InstanceError(exc.field, exc.problem, exc.where or where) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise InstanceError(field, f"generator '{fam}' failed: {exc}", where) from None
    return np.asarray(out, dtype=float)
