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
* :meth:`TwoPlatformMarket.mixed_user_equilibria` — mixed user equilibria for
  two users (exact vertex enumeration of the 5×5 bimatrix game, every extreme one);
* :meth:`TwoPlatformMarket.first_best` — the surplus-maximising joint action;
* :meth:`TwoPlatformMarket.monopoly` — the single-platform benchmark (all
  users join, footnote 13; sharing = Stackelberg equilibrium of Thm 1).

What is *proven against every price* (n ≤ 4) — best responses over the breakpoint cells,
equilibrium checks, the finite price game and its mixed equilibria — is in
:mod:`dm_opt.gaussian.platforms.competition`.

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
import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from dm_opt.core.errors import InstanceError, LimitExceeded, ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Result, Termination
from dm_opt.core.validate import as_array, as_vector, describe
from dm_opt.gaussian.platforms.bimatrix import bimatrix_equilibria

#: Largest n for the exact 5^n enumeration of joint user actions (5^6 = 15625 actions).
MAX_PLATFORM_N = 6
#: Array elements per chunk when testing many price pairs at once (bounds memory).
_CHUNK_ELEMENTS = 4_000_000
#: Absolute tolerance deciding indifference and ties (payoff units).
PLATFORM_TOL = 1e-9

#: user options: (platform, shares)
OPTIONS = ((0, 0), (1, 0), (1, 1), (2, 0), (2, 1))


def check_tol(tol, field: str = "tol") -> float:
    """``tol`` as a finite float ``>= 0`` (a tie tolerance in payoff units), else one ``ProblemError`` naming it:
    a negative or NaN tolerance silently empties every equilibrium set, an infinite one admits every action."""
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (0.0 <= float(tol) < math.inf):
        raise ProblemError(f"{field} must be a finite number >= 0 (payoff units), got {describe(tol)}")
    return float(tol)


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
        base = as_vector("joining.base", base, n, where=kw.get("where"))
        slope = as_vector("joining.slope", slope, n, where=kw.get("where"))
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

    ``σ_j²`` is the prior variance for a :class:`GaussianMarket` (the paper's
    statement) and the oracle's ``sigma2`` (largest leakage ``𝓘_j(V)``,
    Property 3) otherwise.
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
    # σ_j²: the prior variance for the Gaussian MSE market (as in the paper); for other oracles
    # their ``sigma2`` (largest leakage 𝓘_j(V)), else 𝓘_j(V) from the oracle.
    sigma2 = getattr(market, "sigma2", None)
    if sigma2 is None:
        sigma2 = market.leakage(np.ones(n, dtype=np.int8))
    sigma2 = np.asarray(sigma2, float)
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
class MixedUserEquilibrium:
    """A mixed user equilibrium of two users: ``x``, ``y`` are probabilities (5,) over :data:`OPTIONS`.

    ``OPTIONS`` = (out, join 1, join 1 and share, join 2, join 2 and share);
    ``user_payoffs`` expected (2,); ``platform_payoffs`` expected (U¹, U²).
    """

    x: np.ndarray
    y: np.ndarray
    user_payoffs: np.ndarray
    platform_payoffs: tuple

    @property
    def is_pure(self) -> bool:
        return bool(np.isclose(self.x.max(), 1.0) and np.isclose(self.y.max(), 1.0))


@dataclass(frozen=True)
class PriceEquilibrium:
    """A price pair of the candidate set with a user equilibrium no platform deviates from (within the set)."""

    p1: np.ndarray
    p2: np.ndarray
    outcome: PlatformOutcome
    efficient: bool
    undecided_deviations: int


@dataclass(frozen=True)
class SearchResult(Result):
    """Outcome of :meth:`TwoPlatformMarket.search_equilibria` (see the module docstring for its limits).

    ``status`` ``optimal`` = every pair of ``𝒫²`` was examined.  After a time limit or Ctrl-C
    (``time_limit``/``interrupted``) only the pairs with both prices among the first
    ``candidates_covered`` candidates were examined (``pairs_checked`` of ``candidates²``):
    each equilibrium listed is still verified against the *full* deviation set 𝒟, but pairs
    not examined may hold more equilibria (``efficient_exists`` False proves nothing then).
    """

    family: ClassVar[str] = "gaussian"

    equilibria: tuple
    candidates: int
    pairs_without_user_equilibrium: int
    deviation: str
    first_best_surplus: float
    monopoly_surplus: float
    extra: dict = field(default_factory=dict)
    status: Termination = Termination.OPTIMAL
    candidates_covered: int | None = None
    message: str = ""

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.candidates_covered is None:
            object.__setattr__(self, "candidates_covered", self.candidates)

    @property
    def complete(self) -> bool:
        return self.status is Termination.OPTIMAL

    @property
    def pairs_checked(self) -> int:
        return int(self.candidates_covered) ** 2

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
        return as_vector(name, p, self.n, max_abs=None)     # (derived candidates reach v σ² + c)

    def _eq_indices(self, p1, p2, tol):
        add = np.zeros((self.n, 5))
        add[:, 2] = p1
        add[:, 4] = p2
        pay = self._base + add[None, :, :]
        cur = self._own + np.where(self._O == 2, p1[None, :], 0.0) + np.where(self._O == 4, p2[None, :], 0.0)
        ok = np.all(cur >= pay.max(axis=2) - tol, axis=1)
        return np.flatnonzero(ok)

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
        tol = check_tol(tol)
        p1 = self._prices(p1, "p1")
        p2 = self._prices(p2, "p2")
        return [self._outcome(int(r), p1, p2) for r in self._eq_indices(p1, p2, tol)]

    def mixed_user_equilibria(self, p1, p2, tol: float = 1e-9) -> list["MixedUserEquilibrium"]:
        """Every extreme mixed user equilibrium at ``(p¹, p²)`` for two users (Definition 2's user stage).

        The user stage is a finite game, so a mixed equilibrium always exists (Nash; the first
        step of Thm B-1).  For ``n = 2`` it is a 5×5 bimatrix game, solved exactly by vertex
        enumeration of its best-response polytopes (:func:`~dm_opt.gaussian.platforms.bimatrix.
        bimatrix_equilibria`): complete also for degenerate games (exact indifferences, common at
        critical prices), where every equilibrium is a convex combination, within a maximal Nash
        subset, of the extreme ones returned.  Pure equilibria appear as degenerate mixtures.
        """
        tol = check_tol(tol)
        if self.n != 2:
            raise LimitExceeded(f"mixed user equilibria are implemented for n = 2 users (bimatrix game); n = {self.n}")
        A, B, V1, V2 = self.user_stage_bimatrix(p1, p2)
        return [MixedUserEquilibrium(x, y, np.array([x @ A @ y, x @ B @ y]), (float(x @ V1 @ y), float(x @ V2 @ y)))
                for x, y in bimatrix_equilibria(A, B, tol)]

    def user_stage_bimatrix(self, p1, p2):
        """For ``n = 2``: the users' payoff matrices ``A``, ``B`` (5×5, rows = user 0's options) and
        the platforms' ``V1``, ``V2`` at prices ``(p¹, p²)`` (options in the order of ``_O``)."""
        if self.n != 2:
            raise LimitExceeded(f"n = {self.n}: the user stage is a bimatrix game only for n = 2 users")
        p1 = self._prices(p1, "p1")
        p2 = self._prices(p2, "p2")
        o0, o1 = self._O[:, 0].astype(int), self._O[:, 1].astype(int)
        up = self._own + (self._O == 2) * p1[None, :] + (self._O == 4) * p2[None, :]
        U1, U2 = self._platform_payoffs(np.arange(25), p1, p2)
        mats = [np.zeros((5, 5)) for _ in range(4)]
        for M, vals in zip(mats, (up[:, 0], up[:, 1], U1, U2), strict=True):
            M[o0, o1] = vals
        return tuple(mats)

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
        tol = check_tol(tol)
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
        from dm_opt.gaussian.leakage.base import evaluate_objective

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
            levels = [sorted(set(as_vector(f"levels[{i}]", lv, max_abs=None).tolist())) for i, lv in enumerate(levels)]
        total = int(np.prod([len(lv) for lv in levels]))
        if total > max_candidates:
            raise LimitExceeded(f"candidate set has {total} price vectors (> max_candidates = {max_candidates}); "
                                f"pass coarser levels or raise max_candidates (pairs grow as its square)")
        return np.array(list(itertools.product(*levels)), dtype=float)

    def search_equilibria(self, candidates=None, *, deviation: str = "paper", tol: float = PLATFORM_TOL,
                          max_candidates: int = 200, eps: float | None = None,
                          time_limit: float | None = None) -> SearchResult:
        """Pure price equilibria within the candidate set ``𝒫`` (rows of ``candidates``; default
        :meth:`candidate_prices`).  For a proof against *every* price see
        :func:`dm_opt.gaussian.platforms.competition.check_price_equilibrium`.

        For every ``(p¹, p²) ∈ 𝒫²`` all pure user equilibria are enumerated; a
        pair with user equilibrium ``e`` is returned when no platform has a
        profitable deviation in the *deviation set* ``𝒟 = 𝒫 ∪ (𝒫 + ε·1_i)``
        (each candidate, and each candidate with one user's price raised by
        ``ε``: "just above an indifference price", the Bertrand move a finite
        grid otherwise misses).  A deviation of platform 1 to ``(q, p²)`` is
        unprofitable if its payoff is at most ``U¹(e) + tol`` in *some*
        (``deviation="paper"``, Definition 2 / footnote 14) or *every*
        (``"robust"``) user equilibrium at ``(q, p²)``; symmetrically for
        platform 2.  Deviations to pairs without a pure user equilibrium are
        counted as undecided.  ``efficient`` compares the surplus with
        :meth:`first_best`.  ``eps`` defaults to ``1e-6 ×`` the largest
        leakage ``Σ_i 𝓘_i(V)``.

        The candidates are processed in order: step ``s`` computes both platforms'
        best deviations against candidate ``s`` and decides the pairs ``(j, s)``,
        ``(s, j)`` with ``j ≤ s``, so after ``c`` steps exactly the pairs in the first
        ``c`` candidates squared are decided.  ``time_limit`` (seconds, ``None`` = no
        limit; checked between steps, the first step always runs) and Ctrl-C stop
        after the last complete step and return those pairs' equilibria with status
        ``time_limit``/``interrupted`` (:class:`SearchResult`).  Ctrl-C during the
        first step re-raises ``KeyboardInterrupt`` (nothing decided).
        """
        tol = check_tol(tol)
        deadline = Deadline.of(time_limit)
        if deviation not in ("paper", "robust"):
            raise InstanceError("deviation", f"must be 'paper' or 'robust', got {deviation!r}")
        P = self.candidate_prices(max_candidates=max_candidates) if candidates is None else \
            as_array("candidates", candidates, ndim=2, max_abs=None)
        if P.shape[1] != self.n:
            raise InstanceError("candidates", f"rows must be price vectors of length {self.n}, got {P.shape[1]}")
        n, K = self.n, P.shape[0]
        if eps is None:
            eps = 1e-6 * max(float(self._L[-1].sum()), 1e-12)
        bumps = [P + eps * np.eye(n)[i][None, :] for i in range(n)]
        D = np.vstack([P, *bumps])                          # 𝒟 ⊇ 𝒫 (𝒫 first)
        paper = deviation == "paper"
        U1_of = self._LU[0][None, :] - D @ self._S1bits.T   # (|𝒟|, m): platform 1's payoff, by its price
        U2_of = self._LU[1][None, :] - D @ self._S2bits.T

        def pick(ok, U):                                    # per row: min/max of U over user equilibria
            if paper:
                return np.where(ok, U, np.inf).min(axis=1)
            return np.where(ok, U, -np.inf).max(axis=1)

        def top_two(vals):                                  # best deviation value, its row, runner-up
            order = np.argsort(-vals, kind="stable")
            return vals[order[0]], int(order[0]), (vals[order[1]] if vals.shape[0] > 1 else -np.inf)

        def excluding(top, row):                            # a "deviation" to the current price is none
            return top[2] if top[1] == row else top[0]

        def deviations(ok, U):                              # (top_two of the best deviation values, undecided)
            has = ok.any(axis=1)
            vals = np.full(D.shape[0], -np.inf)
            vals[has] = pick(ok[has], U[has])
            return top_two(vals), int((~has).sum())

        fb, _ = self.first_best(tol)
        mono, _ = self.monopoly()
        tops1, und1 = [], []        # platform 1's deviations against p² = P[l]
        tops2, und2 = [], []        # platform 2's deviations against p¹ = P[j]
        found = []                  # ((l, j, r), equilibrium): sorted at the end (p² index, p¹ index, action)
        empty = 0
        covered = 0
        status, message = Termination.OPTIMAL, ""
        try:
            for s in range(K):
                if s > 0 and deadline.expired():
                    status, message = Termination.TIME_LIMIT, deadline.message()
                    break
                # ok2[q, r]: r is a user equilibrium at (P[s], D[q]); ok1[q, r]: at (D[q], P[s])
                ok2 = self._eq_matrix_rows(D, P[s], first=False, tol=tol)
                ok1 = self._eq_matrix_rows(D, P[s], first=True, tol=tol)
                t2, u2 = deviations(ok2, U2_of)
                t1, u1 = deviations(ok1, U1_of)
                T1, UN1, T2, UN2 = tops1 + [t1], und1 + [u1], tops2 + [t2], und2 + [u2]
                # pairs (j, s), j ≤ s: p¹ = P[j], p² = P[s] (rows j of ok1)
                J = np.arange(s + 1)
                b1 = np.array([excluding(T1[s], j) for j in J])
                b2 = np.array([excluding(T2[j], s) for j in J])
                good = ok1[:s + 1] & (b1[:, None] <= U1_of[:s + 1] + tol) & (b2[:, None] <= U2_of[s][None, :] + tol)
                new = [((s, int(j), int(r)), int(j), s) for j, r in zip(*np.nonzero(good), strict=True)]
                new_empty = int((~ok1[:s + 1].any(axis=1)).sum())
                # pairs (s, l), l < s: p¹ = P[s], p² = P[l] (rows l of ok2)
                if s:
                    L = np.arange(s)
                    b1 = np.array([excluding(T1[l], s) for l in L])
                    b2 = np.array([excluding(T2[s], l) for l in L])
                    good = ok2[:s] & (b1[:, None] <= U1_of[s][None, :] + tol) & (b2[:, None] <= U2_of[:s] + tol)
                    new += [((int(l), s, int(r)), s, int(l)) for l, r in zip(*np.nonzero(good), strict=True)]
                    new_empty += int((~ok2[:s].any(axis=1)).sum())
                eqs = []
                for key, j, l in new:
                    out = self._outcome(key[2], P[j], P[l])
                    eqs.append((key, PriceEquilibrium(P[j].copy(), P[l].copy(), out,
                                                      bool(out.surplus >= fb - max(tol, 1e-9 * abs(fb))),
                                                      int(UN1[l] + UN2[j]))))
                # commit the step (a Ctrl-C above leaves the previous steps intact)
                tops1, und1, tops2, und2 = T1, UN1, T2, UN2
                found += eqs
                empty += new_empty
                covered = s + 1
        except KeyboardInterrupt:
            if covered == 0:
                raise
            status, message = Termination.INTERRUPTED, "interrupted by the user"
        found.sort(key=lambda x: x[0])
        if status is not Termination.OPTIMAL:
            message = (f"{message}: examined the pairs within the first {covered} of {K} candidates "
                       f"({covered ** 2} of {K ** 2} pairs)")
        return SearchResult(tuple(e for _, e in found), K, empty, deviation, fb, mono,
                            {"deviation_set": int(D.shape[0]), "eps": eps}, status, covered, message)

    def _eq_matrix_rows(self, Q, p_other, *, first: bool, tol: float):
        """``ok[q, r]``: action ``r`` is a user equilibrium when one platform posts ``Q[q]`` and the other
        ``p_other``."""
        if first:
            return self._eq_matrix_general(Q, np.broadcast_to(p_other, Q.shape), tol)
        return self._eq_matrix_general(np.broadcast_to(p_other, Q.shape), Q, tol)

    def _eq_matrix_general(self, P1, P2, tol):
        """``ok[q, r]``: joint action ``r`` is a user equilibrium at ``(P1[q], P2[q])``; rows in bounded chunks."""
        m = self._O.shape[0]
        out = np.empty((P1.shape[0], m), dtype=bool)
        step = max(1, _CHUNK_ELEMENTS // (m * self.n * 5))
        sh1 = (self._O == 2)[None, :, :]
        sh2 = (self._O == 4)[None, :, :]
        # best reply value = max(price-free options, share on 1 + p¹, share on 2 + p²), as three maxima
        free = np.maximum(np.maximum(self._base[:, :, 0], self._base[:, :, 1]), self._base[:, :, 3])
        s1 = np.ascontiguousarray(self._base[:, :, 2])
        s2 = np.ascontiguousarray(self._base[:, :, 4])
        for lo in range(0, P1.shape[0], step):
            A1, A2 = P1[lo:lo + step, None, :], P2[lo:lo + step, None, :]
            best = np.maximum(np.maximum(free[None], s1[None] + A1), s2[None] + A2)    # (chunk, m, n)
            cur = self._own[None, :, :] + sh1 * A1 + sh2 * A2
            out[lo:lo + step] = np.all(cur >= best - tol, axis=2)
        return out
