"""User-supplied leakage as a table of set functions (AMMO §5.1; small n).

``table[m, i] = 𝓘_i(a)`` where the profile ``a`` has bit mask ``m``
(bit ``i`` ↔ user ``i``: ``m = Σ_i a_i 2^i``), shape ``(2^n, n)``.  Any
measure can be entered this way; whether it satisfies the paper's
Properties 1–4 (which the results of §3 rely on) is checked separately by
:func:`dm_opt.gaussian.leakage.properties.check_properties` — the constructor only
validates shape and finiteness (and, optionally, nonnegativity).
"""

from __future__ import annotations

import numbers
from typing import Callable

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.validate import as_array, as_profile, as_vector
from dm_opt.gaussian.leakage.base import OracleMarketMixin

#: Largest n a table is accepted for (2^n rows).
MAX_TABLE_N = 20


def profile_mask(a: np.ndarray) -> int:
    return int(np.dot(a.astype(np.int64), np.int64(1) << np.arange(a.shape[0], dtype=np.int64)))


class TabulatedMarket(OracleMarketMixin):
    """Leakage given by a table ``(2^n, n)`` indexed by profile mask.

    Parameters
    ----------
    table : array (2^n, n)
        ``table[m, i] = 𝓘_i(profile with mask m)``; finite.  Leakage measures
        are nonnegative: negative entries are rejected.
    values : array (n,) or float
        Values of privacy ``v_i ≥ 0``.
    dependence : array (n, n) of bool, optional
        ``dependence[i, j]``: users ``i`` and ``j`` have non-independent
        information (needed to check Properties 1–2; unknown if omitted).
    """

    kind = "tabulated_leakage"

    def __init__(self, table, values, *, dependence=None, name: str | None = None,
                 source: str | None = None, where: str | None = None):
        arr = as_array("table", table, ndim=2, where=where)
        rows, n = arr.shape
        if n < 1 or n > MAX_TABLE_N:
            raise InstanceError("table", f"needs 1..{MAX_TABLE_N} columns (one per user), got {n}", where)
        if rows != 1 << n:
            raise InstanceError("table", f"needs 2^n = {1 << n} rows (one per profile mask) for n = {n} "
                                f"users, got {rows}", where)
        if np.any(arr < 0):
            m, i = np.argwhere(arr < 0)[0]
            raise InstanceError(f"table[{m},{i}]", f"leakage must be >= 0, got {arr[m, i]}", where)
        if np.any(arr[0] != 0):
            i = int(np.argmax(arr[0] != 0))
            raise InstanceError(f"table[0,{i}]", f"nobody shares in profile 0, so leakage must be 0, "
                                f"got {arr[0, i]}", where)
        arr = arr.copy()
        arr.setflags(write=False)
        self._table = arr
        if isinstance(values, numbers.Real) and not isinstance(values, bool):
            values = [values] * n
        self._values = as_vector("values", values, n, where=where, nonnegative=True)
        self._values.setflags(write=False)
        if dependence is not None:
            dep = np.asarray(dependence)
            if dep.shape != (n, n) or dep.dtype != bool:
                raise InstanceError("dependence", f"must be an ({n}, {n}) boolean matrix, got "
                                    f"shape {dep.shape} dtype {dep.dtype}", where)
            if np.any(dep != dep.T):
                i, j = np.argwhere(dep != dep.T)[0]
                raise InstanceError(f"dependence[{i},{j}]", "must be symmetric", where)
            dep = dep.copy()
            np.fill_diagonal(dep, False)
            dep.setflags(write=False)
        self._dependence = dep if dependence is not None else None
        self.name = name
        self.source = source

    @classmethod
    def from_function(cls, n: int, leak: Callable[[frozenset], np.ndarray], values, **kw) -> "TabulatedMarket":
        """Build the table from ``leak(A) -> (n,)`` for every sharing set ``A`` (small n)."""
        if not isinstance(n, numbers.Integral) or not (1 <= n <= MAX_TABLE_N):
            raise InstanceError("n", f"must be an integer in 1..{MAX_TABLE_N}, got {n!r}")
        rows = []
        for m in range(1 << n):
            rows.append(np.asarray(leak(frozenset(i for i in range(n) if (m >> i) & 1)), dtype=float))
        return cls(np.vstack(rows), values, **kw)

    @classmethod
    def from_market(cls, market, **kw) -> "TabulatedMarket":
        """Tabulate any oracle market (e.g. a GaussianMarket) — for tests and comparisons."""
        n = market.n
        rows = [np.asarray(market.leakage(((m >> np.arange(n)) & 1).astype(np.int8)), float)
                for m in range(1 << n)]
        table = np.vstack(rows)
        table[0] = 0.0  # exact zero (the Gaussian evaluates σ² − σ², already 0 up to round-off)
        return cls(np.maximum(table, 0.0), market.values, **kw)

    @property
    def n(self) -> int:
        return self._table.shape[1]

    @property
    def table(self) -> np.ndarray:
        return self._table

    def dependence(self) -> np.ndarray | None:
        return self._dependence

    def __repr__(self) -> str:
        return f"<TabulatedMarket n={self.n}>"

    def leakage_and_own(self, profile):
        a = as_profile("profile", profile, self.n)
        m = profile_mask(a)
        leak = self._table[m].copy()
        without = self._table[m & ~(1 << np.arange(self.n, dtype=np.int64)), np.arange(self.n)]
        own = np.where(a == 1, leak - without, 0.0)
        return leak, own

    def leakage(self, profile) -> np.ndarray:
        return self.leakage_and_own(profile)[0]

    def own_leakage(self, profile) -> np.ndarray:
        """``𝓘_i(a) − 𝓘_i(a_{−i}, 0)`` for sharers (table difference), 0 otherwise."""
        return self.leakage_and_own(profile)[1]

    def leakage_block(self, lo: int, count: int):
        n = self.n
        masks = np.arange(lo, lo + count, dtype=np.int64)
        bits = np.int64(1) << np.arange(n, dtype=np.int64)
        leak = self._table[masks]
        share = (masks[:, None] & bits[None, :]) != 0
        without = self._table[masks[:, None] & ~bits[None, :], np.arange(n)[None, :]]
        return leak.copy(), np.where(share, leak - without, 0.0)
