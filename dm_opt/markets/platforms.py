"""Two platforms competing with data prices (AMMO §4, Assumption 1, Lemma 4, Thm 4, Thm B-1).

Timing (§4): platforms simultaneously post price vectors ``p¹, p² ∈ ℝⁿ``;
then every user ``i`` picks ``b_i ∈ {0, 1, 2}`` (stay out / join platform 1 /
join platform 2) and, if she joins, whether to share (``a_i``).  With
``J_k`` the users on platform ``k`` and ``S_k ⊆ J_k`` its sharers,

    user i on k:   u_i = c_i(J_k) + a_i p_i^k − v_i 𝓘_i(S_k)        (staying out: 0)
    platform k:    U^k = Σ_{i∈J_k} 𝓘_i(S_k) − Σ_{i∈S_k} p_i^k          (eq. 8)
    surplus:       Σ_i c_i(J_{b_i}) + (1 − v_i) 𝓘_i(S_{b_i})            (prices cancel)

Leakage ``𝓘_i(S_k)`` is that of the platform the user joins, computed by any
leakage oracle (:class:`GaussianMarket`, mutual information, a table, a
mixture) on the sharing set of that platform only; no information flows
between platforms (eq. 8).

What is computed exactly (small ``n``: ``5^n`` joint user actions):

* :meth:`TwoPlatformMarket.user_equilibria` — every pure user equilibrium
  for given ``(p¹, p²)`` (each user's action is a best reply among her 5
  options, indifference within ``tol`` allowed) and each platform's payoff;
* :meth:`TwoPlatformMarket.first_best` — the surplus-maximising joint action;
* :meth:`TwoPlatformMarket.monopoly` — the single-platform benchmark (all
  users join, footnote 13; sharing = Stackelberg equilibrium of Thm 1).

What is *searched* (not proven for the continuous game): :meth:`search_equilibria`
scans a finite candidate set ``𝒫`` of price vectors and returns every pair
``(p¹, p²) ∈ 𝒫²`` with a user equilibrium from which no platform gains by a
unilateral deviation *within 𝒫*.  Deviations are judged as in Definition 2 /
footnote 14 (``deviation="paper"``: a deviation is unprofitable if *some*
user equilibrium after it gives the deviator no more), or more strictly
(``deviation="robust"``: *every* user equilibrium after it gives no more).
Pure equilibria may fail to exist (Thm B-1 only guarantees mixed ones);
deviations to price pairs without any pure user equilibrium are reported as
undecided.  Prices outside ``𝒫`` are never examined.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import InstanceError, LimitExceeded
from ..validate import as_array, as_vector

#: Largest n for the exact 5^n enumeration of joint user actions.
MAX_PLATFORM_N = 8
#: Absolute tolerance deciding indifference and ties (payoff units).
PLATFORM_TOL = 1e-9

#: user options: (platform, shares)
OPTIONS = ((0, 0), (1, 0), (1, 1), (2, 0), (2, 1))


def _mask(users) -> int:
    return int(sum(1 << int(i) for i in users))


class JoiningValues:
    """Joining values ``c_i(J)`` (§4): ``table[m, i] = c_i(J)`` for the set ``J`` with mask ``m``.

    Convention of the paper: ``c_i(J) = 0`` whenever ``i ∉ J``; the table
    must respect it (entries for ``i ∉ J`` must be 0).  Shape ``(2^n, n)``.
    """

    def __init__(self, table, *, where: str | None = None, field_name: str = "joining"):
        arr = as_array(field_name, table, ndim=2, where=where)
        rows, n = arr.shape
        if n < 1 or rows != 1 << n:
            raise InstanceError(field_name, f"needs 2^n rows (one per set J, by bit mask) for n = {n} users, "
                                f"got {rows}", where)
        masks = np.arange(rows, dtype=np.int64)
        member = ((masks[:, None] >> np.arange(n)) & 1).astype(bool)
        bad = (~member) & (arr != 0)
        if bad.any():
            m, i = np.argwhere(bad)[0]
            raise InstanceError(f"{field_name}[{m},{i}]", f"c_i(J) must be 0 when user {i} is not in J "
                                f"(the paper's normalisation), got {arr[m, i]}", where)
        arr = arr.copy()
        arr.setflags(write=False)
        self.table = arr

    @property
    def n(self) -> int:
        return self.table.shape[1]

    @classmethod
    def linear(cls, base, slope, n: int | None = None, **kw) -> "JoiningValues":
        """Parametric family ``c_i(J) = base_i + slope_i (|J| − 1)`` for ``i ∈ J`` (network effect per member)."""
        if n is None:
            n = len(base) if not isinstance(base, numbers.Real) else len(slope)
        base = as_vector("joining.base", base, n)
        slope = as_vector("joining.slope", slope, n)
        masks = np.arange(1 << n, dtype=np.int64)
        member = ((masks[:, None] >> np.arange(n)) & 1).astype(float)
        size = member.sum(axis=1, keepdims=True)
        return cls(member * (base[None, :] + slope[None, :] * (size - 1.0)), **kw)

    @classmethod
    def from_function(cls, n: int, c: Callable[[int, frozenset], float], **kw) -> "JoiningValues":
        """``c(i, J)`` for every user and set (``i ∈ J``); 0 is used for ``i ∉ J``."""
        table = np.zeros((1 << n, n))
        for m in range(1 << n):
            J = frozenset(i for i in range(n) if (m >> i) & 1)
            for i in J:
                table[m, i] = float(c(i, J))
        return cls(table, **kw)

    def value(self, i: int, J) -> float:
        return float(self.table[_mask(J), i])


@dataclass(frozen=True)
class Assumption1Report:
    """Check of Assumption 1: (1) ``c_i`` strictly increasing in ``J ∋ i``; (2) ``c_i({i}) > max_j v_j σ_j²``.

    ``σ_j²`` is the largest leakage about ``j``, ``𝓘_j(V)`` (Property 3).
    """

    part1: bool
    part2: bool
    violations: tuple

    @property
    def holds(self) -> bool:
        return self.part1 and self.part2

    def __str__(self) -> str:
        head = "Assumption 1 holds" if self.holds else "Assumption 1 FAILS"
        return "\n".join([head, *("  " + v for v in self.violations)])


def check_assumption1(joining: JoiningValues, market, max_violations: int = 20) -> Assumption1Report:
    """Check Assumption 1 of §4 for joining values and a leakage oracle market."""
    n = joining.n
    if market.n != n:
        raise InstanceError("joining", f"is for {n} users, the market has {market.n}")
    T = joining.table
    viol = []
    part1 = True
    masks = np.arange(1 << n, dtype=np.int64)
    for j in range(n):
        bj = np.int64(1) << j
        base = masks[(masks & bj) == 0]
        for i in range(n):
            if i == j:
                continue
            sel = base[(base >> i) & 1 == 1]            # J ∋ i, j ∉ J
            bad = sel[T[sel | bj, i] <= T[sel, i]]
            if bad.size:
                part1 = False
                for m in bad[:max(0, max_violations - len(viol))]:
                    J = sorted(k for k in range(n) if (m >> k) & 1)
                    viol.append(f"part 1: c_{i}(J ∪ {{{j}}}) = {T[m | bj, i]:.6g} is not > c_{i}(J) = "
                                f"{T[m, i]:.6g} for J = {J}")
    sigma2 = np.asarray(market.leakage(np.ones(n, dtype=np.int8)), float)
    worst = float(np.max(np.asarray(market.values, float) * sigma2))
    single = T[1 << np.arange(n), np.arange(n)]
    part2 = bool(np.all(single > worst))
    for i in np.flatnonzero(single <= worst):
        viol.append(f"part 2: c_{i}({{{i}}}) = {single[i]:.6g} is not > max_j v_j σ_j² = {worst:.6g}")
    return Assumption1Report(part1, part2, tuple(viol))


@dataclass(frozen=True)
class PlatformOutcome:
    """A joint user action with its payoffs.

    ``b`` (n,) in {0, 1, 2} joining decisions; ``a`` (n,) 0/1 sharing (0 if not joined);
    ``platform_payoffs`` = (U¹, U²); ``user_payoffs`` (n,); ``surplus`` incl. joining values.
    """

    b: np.ndarray
    a: np.ndarray
    platform_payoffs: tuple
    user_payoffs: np.ndarray
    surplus: float

    def describe(self) -> str:
        parts = []
        for k in (1, 2):
            J = [i for i in range(len(self.b)) if self.b[i] == k]
            S = [i for i in J if self.a[i]]
            parts.append(f"platform {k}: joined {J}, shared {S}")
        out = [i for i in range(len(self.b)) if self.b[i] == 0]
        if out:
            parts.append(f"out {out}")
        return "; ".join(parts)


@dataclass(frozen=True)
class PriceEquilibrium:
    """A price pair of the candidate set with a user equilibrium no platform deviates from (within the set)."""

    p1: np.ndarray
    p2: np.ndarray
    outcome: PlatformOutcome
    efficient: bool
    undecided_deviations: int


@dataclass(frozen=True)
class SearchResult:
    """Outcome of :meth:`TwoPlatformMarket.search_equilibria` (see the module docstring for its limits)."""

    equilibria: tuple
    candidates: int
    pairs_without_user_equilibrium: int
    deviation: str
    first_best_surplus: float
    monopoly_surplus: float
    extra: dict = field(default_factory=dict)

    @property
    def efficient_exists(self) -> bool:
        return any(e.efficient for e in self.equilibria)


class TwoPlatformMarket:
    """Two competing platforms over a leakage oracle ``market`` with joining values (§4).

    Parameters
    ----------
    market : leakage-oracle market (``GaussianMarket``, ``MutualInformationMarket``, ...)
        Supplies ``values`` ``v`` and leakage ``𝓘_i(S)`` of a sharing set.
    joining : JoiningValues or array (2^n, n)
    require_assumption1 : bool
        Raise :class:`InstanceError` if Assumption 1 fails (default True: the
        paper imposes it throughout §4; pass False to study instances outside it,
        e.g. the slides' constant joining value).
    """

    kind = "two_platforms"

    def __init__(self, market, joining, *, require_assumption1: bool = True, name: str | None = None,
                 source: str | None = None, where: str | None = None):
        if not isinstance(joining, JoiningValues):
            joining = JoiningValues(joining, where=where)
        n = market.n
        if joining.n != n:
            raise InstanceError("joining", f"is for {joining.n} users, the market has {n}", where)
        if n > MAX_PLATFORM_N:
            raise LimitExceeded(f"two-platform analysis enumerates 5^n joint actions; n = {n} exceeds "
                                f"{MAX_PLATFORM_N}")
        self.market = market
        self.joining = joining
        self.assumption1 = check_assumption1(joining, market)
        if require_assumption1 and not self.assumption1.holds:
            raise InstanceError("joining", "violates Assumption 1 of AMMO §4: " + self.assumption1.violations[0]
                                + " (pass require_assumption1=False to analyse it anyway)", where)
        self.name = name
        self.source = source
        self._values = np.asarray(market.values, float)
        masks = np.arange(1 << n, dtype=np.int64)
        prof = ((masks[:, None] >> np.arange(n)) & 1).astype(np.int8)
        L = np.vstack([np.asarray(market.leakage(a), float) for a in prof])
        L[0] = 0.0
        self._L = L                                       # 𝓘_i(S) by mask of S
        self._build_actions()

    @property
    def n(self) -> int:
        return self.market.n

    @property
    def values(self) -> np.ndarray:
        return self._values

    def leakage_of_set(self, S) -> np.ndarray:
        """``𝓘(S)`` for a sharing set on one platform, shape (n,)."""
        return self._L[_mask(S)].copy()

    # ------------------------------------------------------------ tabulation
    def _build_actions(self):
        n = self.n
        m = 5 ** n
        O = np.array(list(itertools.product(range(5), repeat=n)), dtype=np.int8)[:, ::-1]  # user 0 fastest
        bits = np.int64(1) << np.arange(n, dtype=np.int64)
        plat = np.array([o[0] for o in OPTIONS], dtype=np.int8)[O]
        share = np.array([o[1] for o in OPTIONS], dtype=np.int8)[O]
        J1 = ((plat == 1) * bits).sum(axis=1)
        J2 = ((plat == 2) * bits).sum(axis=1)
        S1 = ((share * (plat == 1)) * bits).sum(axis=1)
        S2 = ((share * (plat == 2)) * bits).sum(axis=1)
        C, L, v = self.joining.table, self._L, self._values
        base = np.zeros((m, n, 5))                   # payoff of user i taking option o, others fixed, no prices
        for i in range(n):
            bi = bits[i]
            for o, (k, s) in enumerate(OPTIONS):
                if k == 0:
                    continue
                J = (J1 if k == 1 else J2) & ~bi
                S = (S1 if k == 1 else S2) & ~bi
                base[:, i, o] = C[J | bi, i] - v[i] * L[S | (bi if s else 0), i]
        idx = np.arange(m)
        own = base[idx[:, None], np.arange(n)[None, :], O.astype(np.int64)]
        # leakage-side platform payoffs and surplus (price-free parts)
        rows = np.arange(n)[None, :]
        LU1 = np.sum(L[S1][:, :] * (plat == 1), axis=1)
        LU2 = np.sum(L[S2][:, :] * (plat == 2), axis=1)
        leak_self = np.where(plat == 1, L[S1][idx[:, None], rows], np.where(plat == 2, L[S2][idx[:, None], rows], 0.0))
        cval = np.where(plat == 1, C[J1][idx[:, None], rows], np.where(plat == 2, C[J2][idx[:, None], rows], 0.0))
        self._O, self._plat, self._share = O, plat, share
        self._base, self._own = base, own
        self._LU = (LU1, LU2)
        self._S1bits = (share * (plat == 1)).astype(float)
        self._S2bits = (share * (plat == 2)).astype(float)
        self._surplus = np.sum(cval + (1.0 - v)[None, :] * leak_self, axis=1)
        self._leak_self, self._cval = leak_self, cval

    def _prices(self, p, name):
        return as_vector(name, p, self.n)

    def _eq_indices(self, p1, p2, tol):
        add = np.zeros((self.n, 5))
        add[:, 2] = p1
        add[:, 4] = p2
        pay = self._base + add[None, :, :]
        cur = self._own + np.where(self._O == 2, p1[None, :], 0.0) + np.where(self._O == 4, p2[None, :], 0.0)
        ok = np.all(cur >= pay.max(axis=2) - tol, axis=1)
        return np.flatnonzero(ok)

    def _eq_matrix(self, p1, P2, tol):
        """``ok[l, r]``: joint action ``r`` is a user equilibrium at ``(p1, P2[l])`` (batched over ``l``)."""
        K = P2.shape[0]
        add = np.zeros((K, self.n, 5))
        add[:, :, 2] = p1[None, :]
        add[:, :, 4] = P2
        best = (self._base[None, :, :, :] + add[:, None, :, :]).max(axis=3)          # (K, m, n)
        cur = (self._own[None, :, :] + np.where(self._O == 2, p1[None, :], 0.0)[None, :, :]
               + np.where(self._O == 4, 1.0, 0.0)[None, :, :] * P2[:, None, :])
        return np.all(cur >= best - tol, axis=2)

    def _platform_payoffs(self, idx, p1, p2):
        U1 = self._LU[0][idx] - self._S1bits[idx] @ p1
        U2 = self._LU[1][idx] - self._S2bits[idx] @ p2
        return U1, U2

    def _outcome(self, r: int, p1, p2) -> PlatformOutcome:
        U1, U2 = self._platform_payoffs(np.array([r]), p1, p2)
        up = self._own[r] + np.where(self._O[r] == 2, p1, 0.0) + np.where(self._O[r] == 4, p2, 0.0)
        return PlatformOutcome(self._plat[r].copy(), self._share[r].copy(), (float(U1[0]), float(U2[0])),
                               up, float(self._surplus[r]))

    # ------------------------------------------------------------- analyses
    def user_equilibria(self, p1, p2, tol: float = PLATFORM_TOL) -> list[PlatformOutcome]:
        """Every pure user equilibrium at prices ``(p¹, p²)`` (exact enumeration of 5^n joint actions)."""
        p1 = self._prices(p1, "p1")
        p2 = self._prices(p2, "p2")
        return [self._outcome(int(r), p1, p2) for r in self._eq_indices(p1, p2, tol)]

    def surplus(self, b, a) -> float:
        """``Σ_i c_i(J_{b_i}) + (1 − v_i) 𝓘_i(S_{b_i})`` for joining ``b`` (0/1/2) and sharing ``a``."""
        b = np.asarray(b)
        a = np.asarray(a)
        total = 0.0
        for k in (1, 2):
            J = np.flatnonzero(b == k)
            S = np.flatnonzero((b == k) & (a == 1))
            leak = self._L[_mask(S)]
            total += float(np.sum(self.joining.table[_mask(J), J] + (1.0 - self._values[J]) * leak[J]))
        return total

    def first_best(self, tol: float = PLATFORM_TOL) -> tuple[float, list[PlatformOutcome]]:
        """Maximal surplus over all joint actions and every maximiser."""
        best = float(self._surplus.max())
        z = np.zeros(self.n)
        rows = np.flatnonzero(self._surplus >= best - tol)
        return best, [self._outcome(int(r), z, z) for r in rows]

    def monopoly(self) -> tuple[float, np.ndarray]:
        """Single platform (footnote 13: everybody joins): Stackelberg equilibrium sharing (Thm 1) and its surplus.

        The sharing profile maximises ``Σ 𝓘_i(a) − v_i own_i(a)`` over ``2^n``
        profiles (smallest mask among ties within :data:`PLATFORM_TOL`);
        surplus ``Σ c_i(V) + (1 − v_i) 𝓘_i(a)``.
        """
        n = self.n
        from ..leakage.base import evaluate_objective

        best, best_a = -np.inf, None
        for m in range(1 << n):
            a = ((m >> np.arange(n)) & 1).astype(np.int8)
            val = evaluate_objective(self.market, "equilibrium", a)
            if val > best + PLATFORM_TOL:
                best, best_a = val, a
        full = (1 << n) - 1
        s = float(np.sum(self.joining.table[full]) + np.dot(1.0 - self._values, self._L[_mask(np.flatnonzero(best_a))]))
        return s, best_a

    def candidate_prices(self, levels=None, max_candidates: int = 200) -> np.ndarray:
        """The finite candidate set ``𝒫`` (rows = price vectors), product of per-user price levels.

        Default levels for user ``i`` (the critical prices of Thm 2 and of the
        proof of Thm 4, clipped at 0): ``0``, and for every sharing set ``S ∋ i``
        and every joining-value gain ``Δc = c_i(J') − c_i(J)`` (``i ∈ J ⊂ J'``):
        ``v_i(𝓘_i(S) − 𝓘_i(S∖i))``, ``𝓘_i(S)``, and these two plus/minus ``Δc``.
        ``levels`` overrides them (a list of n lists).
        """
        n = self.n
        if levels is None:
            L, v, C = self._L, self._values, self.joining.table
            levels = []
            for i in range(n):
                bi = 1 << i
                Ss = [m for m in range(1 << n) if m & bi]
                base = {v[i] * (L[m, i] - L[m & ~bi, i]) for m in Ss} | {L[m, i] for m in Ss}
                gains = {C[m | (1 << j), i] - C[m, i] for m in Ss for j in range(n) if not (m >> j) & 1}
                lv = {0.0} | base | {x + g for x in base for g in gains} | {x - g for x in base for g in gains}
                levels.append(sorted({round(max(x, 0.0), 12) for x in lv}))
        else:
            if len(levels) != n:
                raise InstanceError("levels", f"needs one list of price levels per user ({n}), got {len(levels)}")
            levels = [sorted(set(as_vector(f"levels[{i}]", lv).tolist())) for i, lv in enumerate(levels)]
        total = int(np.prod([len(lv) for lv in levels]))
        if total > max_candidates:
            raise LimitExceeded(f"candidate set has {total} price vectors (> max_candidates = {max_candidates}); "
                                f"pass coarser levels or raise max_candidates (pairs grow as its square)")
        return np.array(list(itertools.product(*levels)), dtype=float)

    def search_equilibria(self, candidates=None, *, deviation: str = "paper", tol: float = PLATFORM_TOL,
                          max_candidates: int = 200) -> SearchResult:
        """Pure price equilibria within the candidate set ``𝒫`` (rows of ``candidates``; default :meth:`candidate_prices`).

        For every ``(p¹, p²) ∈ 𝒫²`` all pure user equilibria are enumerated;
        a pair with user equilibrium ``e`` is returned when, for every
        ``q ∈ 𝒫``, platform 1's payoff after deviating to ``(q, p²)`` is at most
        ``U¹(e) + tol`` in *some* (``deviation="paper"``, Definition 2) or
        *every* (``"robust"``) user equilibrium there, and symmetrically for
        platform 2.  ``efficient`` compares the surplus with :meth:`first_best`.
        """
        if deviation not in ("paper", "robust"):
            raise InstanceError("deviation", f"must be 'paper' or 'robust', got {deviation!r}")
        P = self.candidate_prices(max_candidates=max_candidates) if candidates is None else \
            as_array("candidates", candidates, ndim=2)
        if P.shape[1] != self.n:
            raise InstanceError("candidates", f"rows must be price vectors of length {self.n}, got {P.shape[1]}")
        K = P.shape[0]
        eqs = [[None] * K for _ in range(K)]
        dev1 = np.full((K, K), np.nan)   # platform 1's deviation payoff at (j, l)
        dev2 = np.full((K, K), np.nan)
        pick = np.min if deviation == "paper" else np.max
        empty = 0
        for j in range(K):
            ok = self._eq_matrix(P[j], P, tol)
            for l in range(K):
                idx = np.flatnonzero(ok[l])
                eqs[j][l] = idx
                if idx.size == 0:
                    empty += 1
                    continue
                U1, U2 = self._platform_payoffs(idx, P[j], P[l])
                dev1[j, l] = pick(U1)
                dev2[j, l] = pick(U2)
        fb, _ = self.first_best(tol)
        mono, _ = self.monopoly()
        found = []
        for j in range(K):
            for l in range(K):
                idx = eqs[j][l]
                if idx.size == 0:
                    continue
                U1, U2 = self._platform_payoffs(idx, P[j], P[l])
                d1, d2 = dev1[:, l], dev2[j, :]
                und = int(np.isnan(d1).sum() + np.isnan(d2).sum())
                best1 = np.nanmax(d1) if np.any(~np.isnan(d1)) else -np.inf
                best2 = np.nanmax(d2) if np.any(~np.isnan(d2)) else -np.inf
                for r, u1, u2 in zip(idx, U1, U2):
                    if best1 <= u1 + tol and best2 <= u2 + tol:
                        out = self._outcome(int(r), P[j], P[l])
                        found.append(PriceEquilibrium(P[j].copy(), P[l].copy(), out,
                                                      bool(out.surplus >= fb - max(tol, 1e-9 * abs(fb))), und))
        return SearchResult(tuple(found), K, empty, deviation, fb, mono)
