"""Checker for AMMO's Properties 1–4 of a leakage measure (§5.1).

For users ``i, j`` and profiles ``a`` (bit masks, bit ``i`` ↔ user ``i``):

1. *No leakage with independence*: if ``i``'s information is independent of
   everybody else's, ``𝓘_j(a_i=1, a_{−i}) = 𝓘_j(a_i=0, a_{−i})`` for all ``j ≠ i`` and ``a_{−i}``.
2. *Leakage with non-independence*: if ``i`` and ``j`` are non-independent,
   ``𝓘_j(a_i=1, a_{−i}) > 0`` for all ``a_{−i}``.
3. *Monotonicity*: ``a ≥ a'`` ⇒ ``𝓘_i(a) ≥ 𝓘_i(a')`` for all ``i``.
4. *Submodularity* (of a user's own marginal): ``a'_{−i} ≥ a_{−i}`` ⇒
   ``𝓘_i(1, a_{−i}) − 𝓘_i(0, a_{−i}) ≥ 𝓘_i(1, a'_{−i}) − 𝓘_i(0, a'_{−i})``.

Properties 3 and 4 are checked on every covering pair (one more sharer),
which implies them for all comparable pairs by chaining.  Properties 1–2 need
to know which users are (in)dependent — the oracle's ``dependence()`` (n×n
bool) or the ``dependence`` argument; without it they are reported as not
checked.  Cost ``O(2^n n²)`` after tabulating the oracle on all ``2^n``
profiles, so this is for small n (default limit :data:`MAX_CHECK_N`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dm_opt.core.errors import InstanceError, LimitExceeded

MAX_CHECK_N = 16
#: Relative tolerance (times the largest leakage) for the (in)equalities.
CHECK_RTOL = 1e-9

PROPERTY_NAMES = {
    1: "no leakage with independence",
    2: "leakage with non-independence",
    3: "monotonicity",
    4: "submodularity",
}


def _profile_str(mask: int, n: int) -> str:
    return "".join(str((mask >> i) & 1) for i in range(n))


@dataclass(frozen=True)
class PropertyViolation:
    """One failure: ``property`` (1–4) at ``profile`` (bit string, user 0 first) for ``user``.

    ``other`` is the user whose sharing is toggled (the added sharer for 3–4,
    the independent/dependent user ``i`` for 1–2); ``amount`` is how far the
    (in)equality is violated.
    """

    property: int
    user: int
    other: int
    profile: str
    amount: float
    detail: str

    @property
    def name(self) -> str:
        return PROPERTY_NAMES[self.property]

    def __str__(self) -> str:
        return f"Property {self.property} ({self.name}) fails: {self.detail}"


@dataclass(frozen=True)
class PropertyReport:
    """Result of :func:`check_properties`.

    ``holds[p]`` is True/False, or None when property ``p`` could not be
    checked (no dependence structure); ``violations`` lists up to
    ``max_violations`` failures per property, ``counts[p]`` counts all of them.
    """

    n: int
    tol: float
    holds: dict
    counts: dict
    violations: tuple = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """All checked properties hold (unchecked ones do not count as failures)."""
        return all(v is not False for v in self.holds.values())

    @property
    def failed(self) -> list[int]:
        return [p for p, v in self.holds.items() if v is False]

    def first(self, prop: int) -> PropertyViolation | None:
        return next((v for v in self.violations if v.property == prop), None)

    def __str__(self) -> str:
        lines = []
        for p in (1, 2, 3, 4):
            h = self.holds[p]
            status = "not checked (no dependence structure)" if h is None else ("holds" if h else
                                                                                f"FAILS ({self.counts[p]} cases)")
            lines.append(f"Property {p} ({PROPERTY_NAMES[p]}): {status}")
        for v in self.violations:
            lines.append("  " + v.detail)
        return "\n".join(lines)


def leakage_table(oracle) -> np.ndarray:
    """``𝓘_i(a)`` for every mask, shape (2^n, n)."""
    n = oracle.n
    if hasattr(oracle, "leakage_block"):
        return np.asarray(oracle.leakage_block(0, 1 << n)[0], float)
    rows = [np.asarray(oracle.leakage(((m >> np.arange(n)) & 1).astype(np.int8)), float) for m in range(1 << n)]
    return np.vstack(rows)


def check_properties(oracle, *, dependence=None, tol: float | None = None, max_violations: int = 20,
                     max_n: int = MAX_CHECK_N) -> PropertyReport:
    """Check Properties 1–4 of §5.1 for ``oracle`` on all ``2^n`` profiles.

    Parameters
    ----------
    oracle : any leakage-oracle market (``n``, ``leakage``; ``dependence()`` optional)
    dependence : (n, n) bool, optional
        ``dependence[i, j]``: users ``i`` and ``j`` are non-independent.
        A user with an all-False row is independent of everybody (Property 1
        applies to her).  Defaults to ``oracle.dependence()`` when available.
    tol : float, optional
        Absolute slack for the comparisons (default ``1e-9 × max |𝓘|``);
        Property 2 requires leakage ``> tol``.
    """
    n = int(oracle.n)
    if n > max_n:
        raise LimitExceeded(f"checking Properties 1-4 tabulates 2^n profiles; n = {n} exceeds max_n = {max_n}")
    L = leakage_table(oracle)
    if dependence is None and hasattr(oracle, "dependence"):
        dependence = oracle.dependence()
    if dependence is not None:
        dep = np.asarray(dependence)
        if dep.shape != (n, n):
            raise InstanceError("dependence", f"must be ({n}, {n}), got {dep.shape}")
        dep = dep.astype(bool).copy()
        np.fill_diagonal(dep, False)
    else:
        dep = None
    if tol is None:
        tol = CHECK_RTOL * max(float(np.max(np.abs(L))), 1e-300)
    masks = np.arange(1 << n, dtype=np.int64)
    found: dict[int, list] = {1: [], 2: [], 3: [], 4: []}
    counts = {1: 0, 2: 0, 3: 0, 4: 0}

    def record(p, user, other, mask, amount, detail):
        counts[p] += 1
        if len(found[p]) < max_violations:
            found[p].append(PropertyViolation(p, int(user), int(other), _profile_str(int(mask), n),
                                              float(amount), detail))

    for j in range(n):
        bit = np.int64(1) << j
        base = masks[(masks & bit) == 0]          # profiles where j does not share
        up = base | bit
        gain = L[up] - L[base]                    # (2^{n-1}, n): change in 𝓘_i when j starts sharing
        # Property 3: adding a sharer never lowers anybody's leakage
        for r, i in zip(*np.nonzero(gain < -tol)):
            record(3, i, j, base[r], -gain[r, i],
                   f"user {i}'s leakage drops by {-gain[r, i]:.3g} when user {j} starts sharing at "
                   f"profile {_profile_str(int(base[r]), n)}")
        # Property 1: an independent user's sharing changes nobody else's leakage
        if dep is not None and not dep[j].any():
            off = np.abs(gain)
            off[:, j] = 0.0
            for r, i in zip(*np.nonzero(off > tol)):
                record(1, i, j, base[r], off[r, i],
                       f"user {j} is independent of all others, but her sharing changes user {i}'s "
                       f"leakage by {gain[r, i]:.3g} at profile {_profile_str(int(base[r]), n)}")
        # Property 2: a dependent user's sharing always leaks about j's partner
        if dep is not None:
            for i in np.flatnonzero(dep[j]):
                bad = np.flatnonzero(L[up, i] <= tol)
                for r in bad:
                    record(2, i, j, up[r], tol - L[up[r], i],
                           f"users {j} and {i} are dependent, but user {i}'s leakage is "
                           f"{L[up[r], i]:.3g} (not > 0) at profile {_profile_str(int(up[r]), n)}")
    # Property 4: own marginal Δ_i(a_{−i}) = 𝓘_i(1, a_{−i}) − 𝓘_i(0, a_{−i}) is nonincreasing in a_{−i}
    for i in range(n):
        bi = np.int64(1) << i
        for j in range(n):
            if j == i:
                continue
            bj = np.int64(1) << j
            base = masks[((masks & bi) == 0) & ((masks & bj) == 0)]
            d_lo = L[base | bi, i] - L[base, i]
            d_hi = L[base | bi | bj, i] - L[base | bj, i]
            for r in np.flatnonzero(d_hi > d_lo + tol):
                record(4, i, j, base[r], d_hi[r] - d_lo[r],
                       f"user {i}'s own marginal leakage rises from {d_lo[r]:.6g} to {d_hi[r]:.6g} when user "
                       f"{j} also shares (others' profile {_profile_str(int(base[r]), n)})")
    holds = {p: counts[p] == 0 for p in (1, 2, 3, 4)}
    if dep is None:
        holds[1] = holds[2] = None
    violations = tuple(v for p in (1, 2, 3, 4) for v in found[p])
    return PropertyReport(n=n, tol=float(tol), holds=holds, counts=counts, violations=violations)
