"""Competition over data prices, proven against every price (AMMO §4.2, Thm 4, Thm B-1).

Second stage (users) for given price vectors ``(p¹, p²)``:

* :func:`second_stage` — every pure user equilibrium and, for ``n = 2``, every
  *extreme* mixed one (exact vertex enumeration of the 5×5 bimatrix game's
  best-response polytopes, degenerate games included), with Thm B-1's selection
  rule: the equilibrium with the highest sum of platform payoffs ``U¹ + U²``.

First stage (platforms).  Fix the opponent's price ``q``.  User ``i``'s choice
can only change where her price ``p_i`` from the deviating platform ``k`` equals

    p_i = [payoff of option o] − [payoff of sharing on k without the price],

for some option ``o`` of hers and some actions of the others — the breakpoints
``p = f_12(q)`` of the proof of Thm B-1 (:func:`price_breakpoints`, at most
``4·5^(n−1)`` per user).  For ``n`` users only the deviator's price *to user i*
enters user ``i``'s conditions, so the prices making a joint action ``r`` a user
equilibrium form a box ``B_r`` whose faces are breakpoints of *feasible* actions
(those whose price-free conditions hold); these, with ``≤ 8`` strict-dominance
levels per user, are :func:`relevant_breakpoints` (derivation in its docstring) —
typically a dozen or two per user instead of ``4·5^(n−1)``.  Their product and the
open intervals between them cut ``ℝ^n_+`` into finitely many *cells*; on a cell the
set ``E`` of pure user equilibria and the dominance relation of every user are
constant, and both are products of per-user tables (evaluated by broadcasting).
Every platform payoff ``U^k_r(p) = Σ_{i∈J_k(r)} 𝓘_i(S_k(r)) − Σ_{i∈S_k(r)} p_i`` (eq. 8)
is nonincreasing in ``p``, so :func:`best_response` computes the *supremum over
every price vector* ``p ∈ ℝ^n_+`` exactly:

* ``rule="pessimistic"`` (Definition 2 / footnote 14: the deviator gets the worst
  user equilibrium) and ``rule="optimistic"`` (the best one): per cell the sup is
  at the cell's lower corner — a breakpoint vector, approached from above on open
  intervals ("just above an indifference price");
* ``rule="max_sum"`` (Thm B-1's selection among the pure equilibria; ties in the
  sum go against the deviator): per cell and per candidate outcome a small LP
  (the selection depends on ``p`` through ``U^k``), branch-and-bound on the
  optimistic value so that few LPs are solved.

Cells with no pure user equilibrium are counted; there (and wherever the
second stage could select a mixed equilibrium) the deviator's expected payoff
is bounded by ``max U^k_r`` over the profiles ``r`` that use no strictly
dominated option — a valid bound for any mixed user equilibrium, constant
structure per cell, hence also exact as a sup (``any_bound``).
pessimistic ≤ max_sum ≤ optimistic ≤ any_bound.

:func:`check_price_equilibrium` decides whether ``(p¹, p²)`` with a selected
user equilibrium is a price equilibrium against every price (``proven``), has a
profitable deviation (a concrete witness price, re-verified), or is undecided
(only a mixed second stage could give a profitable deviation).

Finite game (Thm B-1's existence argument made computable): :func:`finite_price_game`
builds the bimatrix game of the two platforms over finite price levels;
:func:`mixed_price_equilibria` solves it with pygambit (``enummixed``, all extreme
equilibria; ``lcp`` for larger games) or with this module's own exact vertex
enumeration (``solver="enumeration"``), checks every equilibrium in the matrix
independently and reports its regret against *every* price of the continuous
game (exact for the pessimistic/optimistic rules, bracketed for max_sum).

Size limits: the continuum analysis (cells) is exact for ``n ≤ MAX_COMPETITION_N``
(= 4) users and at most ``max_cells`` (default :data:`MAX_CELLS` = 4·10^6) cells;
beyond either it raises :class:`LimitExceeded` naming ``n`` (and the cell count).
Measured on the seeded instances of the tests: n = 3 about 10^4 cells (10 ms),
n = 4 about 10^6 cells (1 s of CPU).  n = 5 would need ~(2·25)^5 ≈ 3·10^8 cells and
the 5^5 joint actions per cell, hence the limit.  :func:`optimistic_best_response`
has a closed form valid for every ``n ≤ 6``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import BackendUnavailable, InstanceError, LimitExceeded, ProblemError
from dm_opt.core.jsonenc import jsonable
from dm_opt.core.result import Result
from dm_opt.core.status import Termination
from dm_opt.core.validate import describe
from dm_opt.gaussian.platforms import PLATFORM_TOL, MixedUserEquilibrium, PlatformOutcome, TwoPlatformMarket, check_tol
from dm_opt.gaussian.platforms.bimatrix import MAX_ENUMERATION_STRATEGIES, bimatrix_equilibria

#: Largest n for the exact continuum analysis (cells of the relevant-breakpoint arrangement).
MAX_COMPETITION_N = 4
#: Default largest number of cells of that arrangement examined by one best response.
MAX_CELLS = 4_000_000
#: Array elements per chunk of cells (bounds memory).
_CELL_CHUNK = 2_000_000
#: Largest number of pure strategies per platform in the finite price game.
MAX_FINITE_STRATEGIES = 400
RULES = ("max_sum", "pessimistic", "optimistic")


def _plain(v):
    """Nested dataclasses (outcomes, best responses) to dicts, recursively, for ``to_dict``."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _to_dict(self) -> dict:
    d = self.protocol_dict()
    for f in dataclasses.fields(self):
        if f.name not in d:
            d[f.name] = jsonable(_plain(getattr(self, f.name)))
    return d


def _check_rule(rule):
    if rule not in RULES:
        raise ProblemError(f"rule must be one of {', '.join(RULES)}; got {rule!r}")


def _check_count(x, field: str) -> int:
    """A size limit (``max_cells``, ``max_strategies``) as a positive int, else one ``ProblemError`` naming it."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 1:
        raise ProblemError(f"{field} must be a positive integer, got {describe(x)}")
    return int(x)


def _check_platform(k):
    if k not in (1, 2):
        raise ProblemError(f"platform must be 1 or 2, got {k!r}")


def _check_n(tp: TwoPlatformMarket, what: str):
    if tp.n > MAX_COMPETITION_N:
        raise LimitExceeded(f"n = {tp.n}: {what} is exact for n <= {MAX_COMPETITION_N} users "
                            f"(the breakpoint cells grow as the product of per-user levels, up to (2·5^n)^n)")


# ---------------------------------------------------------------------------
# second stage
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SecondStage(Result):
    """User equilibria at ``(p¹, p²)`` and Thm B-1's selection.

    ``pure``: every pure user equilibrium (:class:`PlatformOutcome`);
    ``mixed``: for n = 2 every extreme mixed one that is not pure (:class:`MixedUserEquilibrium`),
    else ``None`` (not computed); ``selected``: the equilibrium with the highest ``U¹ + U²``
    among all those (pure and mixed), ``ties`` the others within ``tol`` of it;
    ``selected_pure``: the same rule among the pure ones only (what the price-game
    analysis uses), ``None`` when there is no pure user equilibrium.
    """

    p1: np.ndarray
    p2: np.ndarray
    pure: tuple
    mixed: tuple | None
    selected: object
    ties: tuple
    selected_pure: PlatformOutcome | None
    status: Termination = Termination.OPTIMAL
    family: ClassVar[str] = "gaussian"
    to_dict = _to_dict

    @property
    def objective(self) -> float:
        """``U¹ + U²`` of the selected equilibrium (nan if none)."""
        return _payoff_sum(self.selected) if self.selected is not None else math.nan

    @property
    def mixed_selected(self) -> bool:
        return isinstance(self.selected, MixedUserEquilibrium)


def _payoff_sum(e) -> float:
    return float(e.platform_payoffs[0] + e.platform_payoffs[1])


def user_stage_bimatrix(tp: TwoPlatformMarket, p1, p2):
    """For n = 2: users' payoff matrices ``A``, ``B`` and the platforms' ``V1``, ``V2`` at prices
    ``(p¹, p²)`` (:meth:`TwoPlatformMarket.user_stage_bimatrix`)."""
    return tp.user_stage_bimatrix(p1, p2)


def second_stage(tp: TwoPlatformMarket, p1, p2, *, mixed: bool | None = None, tol: float = PLATFORM_TOL) -> SecondStage:
    """Pure (and, for n = 2, extreme mixed) user equilibria at ``(p¹, p²)`` with Thm B-1's selection."""
    tol = check_tol(tol)
    p1 = tp._prices(p1, "p1")
    p2 = tp._prices(p2, "p2")
    pure = tp.user_equilibria(p1, p2, tol)
    if mixed is None:
        mixed = tp.n == 2
    mix = None
    if mixed:
        # pure equilibria are already in `pure`
        mix = tuple(e for e in tp.mixed_user_equilibria(p1, p2, tol)
                    if not (np.isclose(e.x.max(), 1.0) and np.isclose(e.y.max(), 1.0)))
    cands = list(pure) + list(mix or ())
    sel, ties = None, ()
    if cands:
        best = max(_payoff_sum(e) for e in cands)
        top = [e for e in cands if _payoff_sum(e) >= best - tol]
        sel, ties = top[0], tuple(top[1:])
    sel_pure = None
    if pure:
        sel_pure = max(pure, key=_payoff_sum)
    return SecondStage(p1, p2, tuple(pure), mix, sel, ties, sel_pure)


# ---------------------------------------------------------------------------
# breakpoints and cells
# ---------------------------------------------------------------------------
def _view(tp: TwoPlatformMarket, k: int):
    """(share option of k, share option of the other, LU_k, S_k bits, LU_other, S_other bits)."""
    if k == 1:
        return 2, 4, tp._LU[0], tp._S1bits, tp._LU[1], tp._S2bits
    return 4, 2, tp._LU[1], tp._S2bits, tp._LU[0], tp._S1bits


def _free_payoffs(tp, k, q):
    """``pay[r, i, o]``: user i's payoff of option o (others at r), with the opponent's price q and
    *without* the deviator's price; and ``thr[r, i, o] = pay[r,i,o] − pay[r,i,so]`` (o ≠ so)."""
    so, oo, *_ = _view(tp, k)
    pay = tp._base.copy()
    pay[:, :, oo] += q[None, :]
    thr = pay - pay[:, :, so:so + 1]
    return pay, thr


def _merge(vals: np.ndarray, tol: float) -> np.ndarray:
    vals = np.sort(vals)
    out = [vals[0]]
    for v in vals[1:]:
        if v > out[-1] + tol:
            out.append(v)
    return np.array(out)


def price_breakpoints(tp: TwoPlatformMarket, other_price, platform: int = 1, *, tol: float = PLATFORM_TOL,
                      mixture=None) -> list[np.ndarray]:
    """Per user ``i``, the sorted price levels ``p_i ≥ 0`` of platform ``platform`` at which user ``i``
    can change her choice (``0`` included): the values ``f_12`` of the proof of Thm B-1,
    ``payoff(o) − payoff(share on k, no price)`` for every option ``o`` and every action of the
    others, against the opponent's price ``other_price`` (or every price of ``mixture``, a list of
    ``(probability, price)``)."""
    tol = check_tol(tol)
    _check_platform(platform)
    qs = [tp._prices(other_price, "other_price")] if mixture is None else [tp._prices(q, "mixture") for _, q in mixture]
    so = _view(tp, platform)[0]
    out = []
    for i in range(tp.n):
        vals = [np.zeros(1)]
        for q in qs:
            _, thr = _free_payoffs(tp, platform, q)
            t = np.delete(thr[:, i, :], so, axis=1).ravel()
            vals.append(t[t >= -tol])
        out.append(np.maximum(_merge(np.concatenate(vals), tol), 0.0))
    return [_merge(v, tol) for v in out]


def relevant_breakpoints(tp: TwoPlatformMarket, other_price, platform: int = 1, *, tol: float = PLATFORM_TOL,
                         mixture=None) -> list[np.ndarray]:
    """Per user ``i``, the sorted levels ``p_i ≥ 0`` of the deviator's price at which the set of pure
    user equilibria or user ``i``'s strict-dominance relation can change — the subset of the
    ``f_12`` values (:func:`price_breakpoints`) that matter, for any ``n``.

    Derivation (``n`` users, deviator ``k`` posting ``p``, opponent's price ``q`` fixed).  Write
    ``π_i(o | r)`` for user ``i``'s payoff of option ``o`` when the others play as in the joint action
    ``r``, *without* the deviator's price, and ``s`` for the option "join and share on ``k``".
    Only ``π_i(s | r) + p_i`` involves ``p``, and only through user ``i``'s own price ``p_i``.
    So ``r`` is a pure user equilibrium at ``p`` iff, for every user ``i``,

    * ``r_i = s`` (``i`` shares on ``k``):  ``p_i ≥ lo_{r,i} = max_{o≠s} π_i(o | r) − π_i(s | r)``;
    * ``r_i ≠ s``:  ``π_i(r_i | r) ≥ π_i(o | r)`` for every ``o ≠ s`` (free of ``p``) and
      ``p_i ≤ hi_{r,i} = π_i(r_i | r) − π_i(s | r)``.

    The set of prices making ``r`` a user equilibrium is therefore a *box* ``B_r`` (empty unless the
    price-free conditions hold and ``hi_{r,i} ≥ 0``: ``r`` is *feasible*), and
    ``E(p) = {r feasible : p ∈ B_r}``.  Every face of every ``B_r`` is a hyperplane ``p_i = b`` with
    ``b ∈ {lo_{r,i}, hi_{r,i} : r feasible}``, so ``E`` is constant on every cell of the product of
    these per-user levels (points and the open intervals between them).  Option ``o ≠ s`` is
    strictly dominated by ``s`` iff ``p_i > max_r (π_i(o | r) − π_i(s | r))``, ``s`` by ``o`` iff
    ``p_i < min_r (π_i(o | r) − π_i(s | r))``, and dominance between options other than ``s`` is
    free of ``p``: these ``≤ 8`` levels per user make the any-equilibrium bound constant per cell too.
    Per user at most ``(#feasible actions) + 9`` levels (``0`` included) instead of ``4·5^(n−1)``;
    on Assumption-1 instances the feasible actions are few (15–22 of 625 for ``n = 4`` on the
    seeded instances of the tests), which is what makes the exact sweep tractable for ``n = 3, 4``.

    ``mixture`` (a list of ``(probability, price)``) takes the union over the opponent's prices.
    """
    tol = check_tol(tol)
    _check_platform(platform)
    qs = [tp._prices(other_price, "other_price")] if mixture is None else [tp._prices(q, "mixture") for _, q in mixture]
    out = [[np.zeros(1)] for _ in range(tp.n)]
    for q in qs:
        st = _stage(tp, platform, q, tol)
        for i in range(tp.n):
            out[i].append(st.bound[st.feas, i])
            out[i].append(st.dominance[i])
    return [_merge(np.maximum(v[v >= -tol], 0.0), tol) for v in (np.concatenate(x) for x in out)]


@dataclass
class _Stage:
    """The user stage against the opponent's price ``q``, free of the deviator's price (see
    :func:`relevant_breakpoints`): ``free[r, i, o] = π_i(o | r)``; ``feas`` (m,) feasible actions;
    ``sharer`` (m, n); ``bound`` (m, n) ``lo`` for sharers, ``hi`` for the others; ``dominance[i]`` the
    dominance levels of user ``i``."""
    so: int
    free: np.ndarray
    feas: np.ndarray
    sharer: np.ndarray
    bound: np.ndarray
    dominance: list


def _stage(tp, k, q, tol) -> _Stage:
    so = _view(tp, k)[0]
    free, thr = _free_payoffs(tp, k, q)
    O = tp._O.astype(np.int64)
    m, n = O.shape
    alt = np.delete(free, so, axis=2).max(axis=2)
    own = np.take_along_axis(free, O[:, :, None], axis=2)[..., 0]
    sharer = O == so
    lo = alt - free[:, :, so]
    hi = own - free[:, :, so]
    feas = np.all(sharer | ((own >= alt - tol) & (hi >= -tol)), axis=1)
    dominance = []
    for i in range(n):
        d = np.delete(thr[O[:, i] == 0, i, :], so, axis=1)        # one row per action of the others
        dominance.append(np.concatenate([d.min(axis=0), d.max(axis=0)]))
    return _Stage(so, free, feas, sharer, np.where(sharer, lo, hi), dominance)


class _Arrangement:
    """The cells of a product of per-user levels ``bps`` (a point cell at each level and an open
    interval above it), kept per coordinate: cell ``c`` is the tuple ``np.unravel_index(c, shape)``.
    Per user ``corner`` (lower end), ``rep`` (a point inside), ``upper`` (upper end; ``inf`` above the
    last level) and ``open_``."""

    def __init__(self, bps, max_cells: int, n_users: int):
        self.bps = tuple(bps)
        self.shape = tuple(2 * b.size for b in bps)
        self.size = int(np.prod([float(s) for s in self.shape]))
        if self.size > max_cells:
            raise LimitExceeded(f"n = {n_users}: the breakpoint arrangement has {self.size} cells "
                                f"(levels per user {[b.size for b in bps]}), more than max_cells = {max_cells}")
        self.corner, self.rep, self.upper, self.open_ = [], [], [], []
        for b in bps:
            nxt = np.r_[b[1:], math.inf]
            top = b[-1] + max(1.0, abs(b[-1]))
            self.corner.append(np.repeat(b, 2))
            self.rep.append(np.ravel(np.column_stack([b, np.where(np.isfinite(nxt), 0.5 * (b + nxt), top)])))
            self.upper.append(np.ravel(np.column_stack([b, nxt])))
            self.open_.append(np.tile([False, True], b.size))

    def index(self, c):
        return np.unravel_index(c, self.shape)

    def cell(self, c: int):
        idx = self.index(int(c))
        return tuple(np.array([a[i][j] for i, j in enumerate(idx)]) for a in (self.corner, self.rep, self.upper,
                                                                              self.open_))

    def blocks(self, width: int):
        """Yield ``(start, stop, lead)``: the cells whose leading coordinates are the positions ``lead``
        (a tuple) — consecutive in ``np.unravel_index`` order — with at most about ``_CELL_CHUNK / width``
        cells per block (the per-cell arrays have ``width`` columns)."""
        L = 0
        while L < len(self.shape) - 1 and int(np.prod(self.shape[L:])) * width > _CELL_CHUNK:
            L += 1
        per = int(np.prod(self.shape[L:]))
        for b, lead in enumerate(np.ndindex(*self.shape[:L])):
            yield b * per, (b + 1) * per, lead


def _undominated_user(tp, st: _Stage, i: int, x: np.ndarray, tol: float) -> np.ndarray:
    """``nd[j, o]``: user ``i``'s option ``o`` is not strictly dominated by another pure option when the
    deviator offers her ``x[j]`` (the others' actions range over every joint action)."""
    rows = np.flatnonzero(tp._O[:, i] == 0)                 # one row per action of the others
    P = np.broadcast_to(st.free[rows, i, :], (x.size, rows.size, 5)).copy()
    P[:, :, st.so] += x[:, None]
    dom = np.zeros((x.size, 5), dtype=bool)
    for o in range(5):
        for o2 in range(5):
            if o2 != o:
                dom[:, o] |= np.all(P[:, :, o2] > P[:, :, o] + tol, axis=1)
    return ~dom


@dataclass
class _Tables:
    """Per-coordinate tables of one user stage on an arrangement: actions ``F`` (feasible) with
    ``M[i][pos, f]`` = user ``i``'s condition for ``F[f]`` holds at level position ``pos``; actions ``A``
    (every option undominated somewhere) with ``ND[i][pos, a]`` = user ``i``'s option in ``A[a]`` is
    not strictly dominated at ``pos``."""
    F: np.ndarray
    M: list
    A: np.ndarray
    ND: list


def _tables(tp, st: _Stage, arr: _Arrangement, tol: float) -> _Tables:
    O = tp._O.astype(np.int64)
    F = np.flatnonzero(st.feas)
    M, ND = [], []
    for i in range(tp.n):
        x = arr.rep[i][:, None]
        b = st.bound[F, i][None, :]
        M.append(np.where(st.sharer[F, i][None, :], x >= b - tol, x <= b + tol))
        ND.append(_undominated_user(tp, st, i, arr.rep[i], tol))
    A = np.flatnonzero(np.all(np.stack([ND[i].any(axis=0)[O[:, i]] for i in range(tp.n)], axis=1), axis=1))
    return _Tables(F, M, A, [ND[i][:, O[A, i]] for i in range(tp.n)])


def _members(tab: _Tables, idx) -> np.ndarray:
    """``ok[c, f]``: ``F[f]`` is a user equilibrium in the cells ``idx`` (product over users)."""
    ok = tab.M[0][idx[0]]
    for i in range(1, len(idx)):
        ok = ok & tab.M[i][idx[i]]
    return ok


def _cell_values(tp, k, tab: _Tables, arr: _Arrangement, lead, with_any: bool = True):
    """For the block of cells with leading positions ``lead`` (:meth:`_Arrangement.blocks`), flattened
    in cell order: (has a pure equilibrium, optimistic, pessimistic, any-equilibrium bound), each the
    supremum of the deviator's payoff over the cell (at its lower corner).  The per-user tables are
    broadcast over the block's remaining coordinates (E and the dominance relation are products)."""
    _, _, LUk, Sk, *_ = _view(tp, k)
    L, n = len(lead), tp.n
    rest = arr.shape[L:]

    def grid(i, tbl):                                       # user i's table on the block, axes (rest..., cols)
        if i < L:
            return tbl[lead[i]]
        shp = [1] * len(rest) + [tbl.shape[1]]
        shp[i - L] = tbl.shape[0]
        return tbl.reshape(shp)

    def payoff(acts):                                       # U^k of acts at the cells' lower corners
        U = LUk[acts] - sum(arr.corner[i][lead[i]] * Sk[acts, i] for i in range(L))
        for i in range(L, n):
            U = U - grid(i, arr.corner[i][:, None] * Sk[acts, i][None, :])
        return np.broadcast_to(U, tuple(rest) + (acts.size,))

    ok = grid(0, tab.M[0])
    for i in range(1, n):
        ok = ok & grid(i, tab.M[i])
    ok = np.broadcast_to(ok, tuple(rest) + (tab.F.size,))
    U = payoff(tab.F)
    has = ok.any(axis=-1)
    opt = np.where(ok, U, -np.inf).max(axis=-1, initial=-np.inf)
    pes = np.where(ok, U, np.inf).min(axis=-1, initial=np.inf)
    pes[~has] = -np.inf
    if not with_any:
        return tuple(np.ravel(a) for a in (has, opt, pes))
    nd = grid(0, tab.ND[0])
    for i in range(1, n):
        nd = nd & grid(i, tab.ND[i])
    nd = np.broadcast_to(nd, tuple(rest) + (tab.A.size,))
    anyb = np.where(nd, payoff(tab.A), -np.inf).max(axis=-1, initial=-np.inf)
    return tuple(np.ravel(a) for a in (has, opt, pes, anyb))


def _any_bound_at(tp, k, tab: _Tables, arr: _Arrangement, cells) -> np.ndarray:
    """The any-equilibrium bound (see :func:`_cell_values`) at the listed cells only (by gathering)."""
    _, _, LUk, Sk, *_ = _view(tp, k)
    out = np.empty(cells.size)
    step = max(1, _CELL_CHUNK // max(1, tab.A.size + tp.n))
    for lo in range(0, cells.size, step):
        idx = arr.index(cells[lo:lo + step])
        nd = tab.ND[0][idx[0]]
        U = LUk[tab.A][None, :] - arr.corner[0][idx[0]][:, None] * Sk[tab.A, 0][None, :]
        for i in range(1, tp.n):
            nd = nd & tab.ND[i][idx[i]]
            U = U - arr.corner[i][idx[i]][:, None] * Sk[tab.A, i][None, :]
        out[lo:lo + step] = np.where(nd, U, -np.inf).max(axis=1, initial=-np.inf)
    return out


def _any_bound_max(tp, k, tab: _Tables, arr: _Arrangement) -> float:
    """``max`` over every cell of the any-equilibrium bound, without visiting the cells: the allowed
    actions form a product over users, so per action each sharer on k takes the lowest level where
    her option is undominated, and the other users any level where theirs is."""
    _, _, LUk, Sk, *_ = _view(tp, k)
    cost = np.zeros(tab.A.size)
    allowed = np.ones(tab.A.size, dtype=bool)
    for i in range(tp.n):
        nd = tab.ND[i]                                       # (P_i, |A|)
        allowed &= nd.any(axis=0)
        low = np.where(nd, arr.corner[i][:, None], np.inf).min(axis=0)
        cost += np.where(Sk[tab.A, i] > 0, low, 0.0)
    vals = np.where(allowed, LUk[tab.A] - cost, -np.inf)
    return float(vals.max(initial=-np.inf))


def _equilibria_at(tp, k, q, P, tol):
    """``ok[c, r]``: action r is a pure user equilibrium when k posts ``P[c]`` and the other ``q``;
    ``pay[c, r, i, o]`` full payoffs."""
    so = _view(tp, k)[0]
    free, _ = _free_payoffs(tp, k, q)
    pay = np.broadcast_to(free, (P.shape[0],) + free.shape).copy()
    pay[:, :, :, so] += P[:, None, :]
    O = tp._O.astype(np.int64)
    m, n = O.shape
    own = np.take_along_axis(pay, O[None, :, :, None].repeat(P.shape[0], axis=0), axis=3)[..., 0]
    ok = np.all(own >= pay.max(axis=3) - tol, axis=2)
    return ok, pay


# ---------------------------------------------------------------------------
# best responses
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BestResponse(Result):
    """Supremum of platform ``platform``'s payoff over every price vector ``p ∈ ℝ^n_+`` against ``other``.

    ``value``: the supremum under ``rule`` over prices with a pure user equilibrium;
    ``price``: a price where it is attained, or (``attained`` False) the limit point it is
    approached from inside its cell (e.g. just above a breakpoint) — ``witness`` is then a
    concrete price inside the cell, at most ``1e-7/n`` above the limit point in each open coordinate
    (payoff within ``1e-7`` of the supremum; for a max_sum value from an LP, a point on the segment
    to the LP's interior point, at least ``100·tol`` inside);
    ``outcome``: the user equilibrium (index into the 5^n joint actions) giving it;
    ``bounds``: the suprema under all three rules (``pessimistic ≤ max_sum ≤ optimistic``) and
    ``any``: an upper bound valid for every user equilibrium, mixed ones included;
    ``cells``: cells of the breakpoint arrangement; ``no_pure_cells``: cells without a pure user
    equilibrium, ``no_pure_bound`` the bound on the deviator's payoff there (−inf if none);
    ``lps``: linear programs solved (rule max_sum).
    """

    platform: int
    rule: str
    value: float
    price: np.ndarray
    attained: bool
    witness: np.ndarray
    outcome: int
    bounds: dict
    cells: int
    no_pure_cells: int
    no_pure_bound: float
    lps: int
    breakpoints: tuple = field(default_factory=tuple)
    status: Termination = Termination.OPTIMAL
    family: ClassVar[str] = "gaussian"
    to_dict = _to_dict

    @property
    def objective(self) -> float:
        return self.value

    @property
    def bound(self) -> float:
        return self.value


def _small_lp(c, G, h, tol):
    """max c·x s.t. G x ≤ h for a pointed region and bounded objective, by vertex enumeration
    (dimension ≤ 3 here): every nonsingular choice of ``d`` rows is solved and the feasible
    vertices compared.  Returns (value, x) or None if infeasible.  Exact up to round-off; used
    instead of an LP solver because the programs are tiny and numerous."""
    d = c.size
    m = G.shape[0]
    combos = np.array(list(itertools.combinations(range(m), d)))
    M = G[combos]                                           # (K, d, d)
    det = np.linalg.det(M)
    good = np.abs(det) > 1e-12
    if not good.any():
        return None
    X = np.linalg.solve(M[good], h[combos[good]][..., None])[..., 0]
    scale = 1.0 + np.abs(h).max()
    feas = np.all(X @ G.T <= h[None, :] + tol * scale, axis=1)
    if not feas.any():
        return None
    X = X[feas]
    vals = X @ c
    j = int(np.argmax(vals))
    return float(vals[j]), X[j]


def _lp_cell(lo, hi, is_open, S_r, others, tol, strict=False):
    """max −S_r·p over the closure of {p in the cell : (S_r − S_r')·p ≤ d_r' for the rivals}, which must
    meet the (relatively open) cell — with the rival constraints strict when ``strict``; None if it does
    not.  Returns (max of −S_r·p, maximiser, a point inside)."""
    n = lo.size
    A = np.array([S_r - Sr2 for Sr2, _ in others]).reshape(-1, n)
    b = np.array([d for _, d in others], dtype=float)
    # cell constraints as rows (with a column for the slack t): -p_i + t <= -lo_i (open) / -p_i <= -lo_i and
    # p_i <= lo_i (point); p_i + t <= hi_i (open, finite hi)
    rows, rhs = [], []
    for i in range(n):
        e = np.zeros(n + 1)
        e[i] = -1.0
        if is_open[i]:
            e[n] = 1.0
        rows.append(e)
        rhs.append(-lo[i])
        if not is_open[i]:
            e = np.zeros(n + 1)
            e[i] = 1.0
            rows.append(e)
            rhs.append(lo[i])
        elif np.isfinite(hi[i]):
            e = np.zeros(n + 1)
            e[i], e[n] = 1.0, 1.0
            rows.append(e)
            rhs.append(hi[i])
    for a, d in zip(A, b, strict=True):
        rows.append(np.concatenate([a, [1.0 if strict else 0.0]]))
        rhs.append(d)
    t_row = np.zeros(n + 1)
    t_row[n] = 1.0
    G = np.vstack(rows + [t_row])
    h = np.array(rhs + [1.0])
    if is_open.any() or (strict and A.shape[0]):
        sol = _small_lp(t_row, G, h, tol)
        if sol is None or sol[0] <= 1e-12:
            return None
        p_inside = sol[1][:n]
    else:
        if A.shape[0] and np.any(A @ lo > b + tol):
            return None
        p_inside = lo.copy()
    # closure: drop the slack column (t = 0)
    sol = _small_lp(-np.asarray(S_r, float), G[:-1, :n], h[:-1], tol)
    if sol is None:
        return None
    return sol[0], sol[1], p_inside


def _sweep(tp, k, tab: _Tables, arr: _Arrangement):
    """Per-cell (has, optimistic, pessimistic) over the whole arrangement, in blocks; the any-equilibrium
    bound only where it is needed: its max over the cells without a pure equilibrium, and over all."""
    C = arr.size
    has = np.zeros(C, dtype=bool)
    opt, pes = np.empty(C), np.empty(C)
    for lo, hi, lead in arr.blocks(tab.F.size + tp.n):
        has[lo:hi], opt[lo:hi], pes[lo:hi] = _cell_values(tp, k, tab, arr, lead, with_any=False)
    none = np.flatnonzero(~has)
    no_pure_bound = float(_any_bound_at(tp, k, tab, arr, none).max()) if none.size else -math.inf
    return has, opt, pes, no_pure_bound, _any_bound_max(tp, k, tab, arr)


def best_response(tp: TwoPlatformMarket, other_price, platform: int = 1, *, rule: str = "max_sum",
                  tol: float = PLATFORM_TOL, max_cells: int = MAX_CELLS, all_bounds: bool = True) -> BestResponse:
    """Exact supremum of ``U^platform`` over every price vector in ``ℝ^n_+`` (module docstring), for
    ``n ≤`` :data:`MAX_COMPETITION_N` users and at most ``max_cells`` cells of the arrangement of
    :func:`relevant_breakpoints` (else :class:`LimitExceeded` naming ``n`` and the cell count).
    ``all_bounds=False`` skips the max_sum LPs when ``rule`` is another one (``bounds["max_sum"]`` is
    then nan)."""
    tol = check_tol(tol)
    max_cells = _check_count(max_cells, "max_cells")
    _check_rule(rule)
    _check_platform(platform)
    _check_n(tp, "best_response over every price")
    q = tp._prices(other_price, "other_price")
    k = platform
    so, oo, LUk, Sk, LUo, So = _view(tp, k)
    bps = relevant_breakpoints(tp, q, k, tol=tol)
    arr = _Arrangement(bps, max_cells, tp.n)
    tab = _tables(tp, _stage(tp, k, q, tol), arr, tol)
    has, opt, pes, no_pure_bound, any_max = _sweep(tp, k, tab, arr)
    W = LUo - So @ q                                         # opponent's payoff per action (const in p)
    no_pure = int((~has).sum())

    def cell_eq(c):
        """(equilibria E of cell c as action indices, U^k of each at the corner, corner, rep, upper, open)."""
        corner, rep, upper, op = arr.cell(c)
        ok = _members(tab, [np.array([j]) for j in arr.index(int(c))])[0]
        E = tab.F[ok]
        return E, LUk[E] - Sk[E] @ corner, corner, rep, upper, op

    # max_sum: exact per cell, branch and bound on the optimistic value.  Within a cell the selection is
    # argmax_r g_r(p), g_r = U^k_r(p) + W_r; actions with the same g (same sharers on k, same constant)
    # form a class whose value is its worst member (ties in the sum go against the deviator, as in
    # Definition 2); a class counts where it is the strict maximiser (sup = LP max over the closure).
    ms_best, ms_arg, lps = -math.inf, None, 0
    if has.any():                                        # pointwise max_sum ≥ pessimistic: a first incumbent
        c0 = int(np.argmax(pes))
        E0, U0, corner0, rep0, *_ = cell_eq(c0)
        ms_best, ms_arg = float(pes[c0]), (c0, int(E0[np.argmin(U0)]), corner0, rep0, False)
    if rule != "max_sum" and not all_bounds:
        cand = np.zeros(0, dtype=np.int64)
    else:
        cand = np.flatnonzero(opt > ms_best)             # only cells that can beat the incumbent
    order = cand[np.argsort(-opt[cand], kind="stable")]
    scale = max(1.0, float(np.abs(LUk).max() + np.abs(W).max()))
    for c in order:
        if opt[c] <= ms_best:
            break
        if not has[c]:
            continue
        E, UE, corner, rep, upper, op = cell_eq(c)
        Uc = dict(zip(E.tolist(), UE.tolist(), strict=True))
        classes = []                                     # members, grouped by (sharers on k, g constant)
        for r in E:
            for cl in classes:
                r0 = cl[0]
                if np.array_equal(Sk[r], Sk[r0]) and abs((LUk[r] + W[r]) - (LUk[r0] + W[r0])) <= tol * scale:
                    cl.append(int(r))
                    break
            else:
                classes.append([int(r)])
        classes = [(mem, min(mem, key=lambda x: LUk[x])) for mem in classes]
        if len(classes) == 1:
            r = classes[0][1]
            if Uc[r] > ms_best:
                ms_best, ms_arg = float(Uc[r]), (int(c), r, corner, rep, False)
            continue
        for mem, r in sorted(classes, key=lambda cl: -Uc[cl[1]]):
            if Uc[r] <= ms_best:
                break
            rivals = [(Sk[cl[0][0]], (LUk[r] + W[r]) - (LUk[cl[0][0]] + W[cl[0][0]]))
                      for cl in classes if cl[0] is not mem]
            lps += 1
            sol = _lp_cell(corner, upper, op, Sk[r], rivals, tol, strict=True)
            if sol is None:
                continue
            val = float(LUk[r] - Sk[r] @ sol[1])
            if val > ms_best:
                ms_best, ms_arg = val, (int(c), int(r), sol[1], sol[2], True)
    bounds = {"pessimistic": float(pes.max()) if has.any() else -math.inf,
              "max_sum": ms_best if (rule == "max_sum" or all_bounds) else math.nan,
              "optimistic": float(opt.max()) if has.any() else -math.inf,
              "any": any_max}
    if rule == "max_sum":
        if ms_arg is None:
            c, r, price, inside, from_lp = 0, -1, *arr.cell(0)[:2], False
        else:
            c, r, price, inside, from_lp = ms_arg
        value = ms_best
    else:
        vals = opt if rule == "optimistic" else pes
        c = int(np.argmax(vals))
        value = float(vals[c])
        E, UE, price, inside, *_ = cell_eq(c)
        from_lp = False
        r = int(E[np.argmax(UE)] if rule == "optimistic" else E[np.argmin(UE)]) if E.size else -1
    corner, _, upper, op = arr.cell(c)
    # a concrete price strictly inside the cell whose payoff is within ~1e-7 of the sup (U^k has slope 0 or
    # −1 per coordinate).  Every open coordinate must clear its lower end by far more than ``tol``, or the
    # equilibrium test (which allows ``tol``) still sees the boundary's extra user equilibria.
    pr = np.asarray(price, float)
    attained = bool(np.all(~op | ((pr > corner + tol) & (pr < upper - tol))))
    eps = 1e-7 / tp.n
    if attained:
        witness = pr.copy()
    elif not from_lp:
        # E is constant on the cell: a balanced step of ≤ eps into every open coordinate
        width = np.where(np.isfinite(upper), upper - corner, 2.0 * eps)
        witness = corner + np.where(op, np.minimum(0.5 * width, eps), 0.0)
    else:
        # an LP point on the closure: move along the segment to the LP's strictly feasible point
        d = np.asarray(inside, float) - pr
        mov = op & (d > 0)
        lam = min(1.0, eps / float(np.abs(d).max())) if np.abs(d).max() > 0 else 0.0
        if mov.any():
            lam = min(1.0, max(lam, 100.0 * tol / float(d[mov].min())))
        witness = pr + lam * d
    return BestResponse(k, rule, float(value), np.array(price, float), bool(attained), witness, int(r), bounds,
                        int(arr.size), no_pure, no_pure_bound, lps, tuple(bps))


def optimistic_best_response(tp: TwoPlatformMarket, other_price, platform: int = 1, *,
                             tol: float = PLATFORM_TOL) -> tuple[float, np.ndarray, int]:
    """Closed form for any n (≤ 6): ``sup_p max_{r ∈ E(p)} U^k_r(p)``.

    The set of prices making ``r`` a user equilibrium is a box: ``p_i ≥ lo_{r,i}`` for the users
    sharing on k under r, ``p_i ≤ hi_{r,i}`` for the others (and conditions free of p).  So the
    sup is ``max_r LU_k(r) − Σ_{i∈S_k(r)} max(lo_{r,i}, 0)`` over the r whose box meets ``ℝ^n_+``
    (attained at the breakpoint price).  Returns (value, price, action index)."""
    tol = check_tol(tol)
    _check_platform(platform)
    q = tp._prices(other_price, "other_price")
    LUk = _view(tp, platform)[2]
    st = _stage(tp, platform, q, tol)                               # boxes B_r (relevant_breakpoints)
    price = np.where(st.sharer, np.maximum(st.bound, 0.0), 0.0)     # sharers on k need p_i ≥ lo
    val = np.where(st.feas, LUk - price.sum(axis=1), -np.inf)
    r = int(np.argmax(val))
    return float(val[r]), price[r].copy(), r


# ---------------------------------------------------------------------------
# equilibrium check against every price
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EquilibriumCheck(Result):
    """``verdict``: ``equilibrium`` (no profitable deviation to any price under ``rule``, and none
    possible through a mixed second stage either when ``robust``), ``not_equilibrium`` (``deviation``
    = (platform, witness price, payoff) re-verified by a direct second-stage computation) or
    ``undecided`` (only price cells whose second stage is mixed could hold a profitable deviation).
    ``gains[k−1] = sup U^k − U^k(outcome)``."""

    p1: np.ndarray
    p2: np.ndarray
    outcome: PlatformOutcome
    rule: str
    verdict: str
    gains: tuple
    best_responses: tuple
    robust: bool
    deviation: tuple | None
    message: str
    status: Termination = Termination.OPTIMAL
    family: ClassVar[str] = "gaussian"
    to_dict = _to_dict

    @property
    def objective(self) -> float:
        """The largest gain from deviating (≤ 0 at a proven equilibrium)."""
        return float(max(self.gains))


def check_price_equilibrium(tp: TwoPlatformMarket, p1, p2, *, rule: str = "max_sum", outcome=None,
                            tol: float = PLATFORM_TOL, max_cells: int = MAX_CELLS) -> EquilibriumCheck:
    """Is ``(p¹, p²)`` with user equilibrium ``outcome`` (default: the rule's selection among the pure
    user equilibria) a price equilibrium against *every* price vector?  Exact for
    ``n ≤`` :data:`MAX_COMPETITION_N` users (two :func:`best_response` calls, ``max_cells`` each)."""
    tol = check_tol(tol)
    max_cells = _check_count(max_cells, "max_cells")
    _check_rule(rule)
    _check_n(tp, "check_price_equilibrium")
    p1 = tp._prices(p1, "p1")
    p2 = tp._prices(p2, "p2")
    st = second_stage(tp, p1, p2, mixed=False, tol=tol)
    if not st.pure:
        raise ProblemError("p1, p2: no pure user equilibrium at these prices (the second stage is mixed)")
    if outcome is None:
        outcome = st.selected_pure
    elif not any(np.array_equal(o.b, outcome.b) and np.array_equal(o.a, outcome.a) for o in st.pure):
        raise ProblemError("outcome: not a user equilibrium at (p1, p2)")
    if rule == "max_sum" and _payoff_sum(outcome) < _payoff_sum(st.selected_pure) - tol:
        raise ProblemError(f"outcome: U1 + U2 = {_payoff_sum(outcome):.10g} is below the highest sum "
                           f"{_payoff_sum(st.selected_pure):.10g} (Thm B-1 selects the highest)")
    brs = (best_response(tp, p2, 1, rule=rule, tol=tol, max_cells=max_cells, all_bounds=False),
           best_response(tp, p1, 2, rule=rule, tol=tol, max_cells=max_cells, all_bounds=False))
    gains = tuple(br.value - outcome.platform_payoffs[j] for j, br in enumerate(brs))
    robust = all(br.bounds["any"] <= outcome.platform_payoffs[j] + tol for j, br in enumerate(brs))
    dev = None
    if max(gains) > tol:
        j = int(np.argmax(gains))
        br = brs[j]
        w = br.witness
        pp1, pp2 = (w, p2) if j == 0 else (p1, w)
        st2 = second_stage(tp, pp1, pp2, mixed=False, tol=tol)
        pays = [o.platform_payoffs[j] for o in st2.pure]
        pays = [o.platform_payoffs[j] for o in st2.pure]
        if rule == "max_sum":          # the worst of the max-sum equilibria for the deviator
            best = max((_payoff_sum(o) for o in st2.pure), default=-math.inf)
            pays = [o.platform_payoffs[j] for o in st2.pure if _payoff_sum(o) >= best - tol]
        got = (max if rule == "optimistic" else min)(pays, default=-math.inf)
        dev = (j + 1, w, got)
        verdict = "not_equilibrium"
        msg = (f"platform {j + 1} gains {gains[j]:.6g} by deviating (sup {br.value:.10g} vs "
               f"{outcome.platform_payoffs[j]:.10g}); witness payoff {got:.10g}")
    elif any(br.no_pure_cells and br.no_pure_bound > outcome.platform_payoffs[j] + tol for j, br in enumerate(brs)):
        verdict = "undecided"
        msg = "no profitable deviation to prices with a pure user equilibrium; prices with only mixed ones remain"
    else:
        verdict = "equilibrium"
        msg = "no profitable deviation to any price" + (" (robust to every user equilibrium, mixed included)"
                                                        if robust else "")
    return EquilibriumCheck(p1, p2, outcome, rule, verdict, gains, brs, robust, dev, msg)


# ---------------------------------------------------------------------------
# best response to a mixed price strategy (pessimistic / optimistic rules, exact)
# ---------------------------------------------------------------------------
def best_response_to_mixture(tp: TwoPlatformMarket, mixture, platform: int = 1, *,
                             tol: float = PLATFORM_TOL, max_cells: int = MAX_CELLS) -> dict:
    """``sup_p Σ_s w_s V_s(p)`` over every ``p ∈ ℝ^n_+`` against the opponent's mixture
    ``[(w_s, q_s)]``, for ``V`` the pessimistic and the optimistic rule and the any-equilibrium
    bound.  Cells are those of the union of the relevant breakpoints against every ``q_s``
    (:func:`relevant_breakpoints`); on a cell each ``V_s`` is nonincreasing (a min/max of
    nonincreasing payoffs over a constant set), so the sup is at the cell's lower corner.  Cells where
    some ``q_s`` leaves no pure user equilibrium use the bound for that term in both rules.  Returns
    ``{"pessimistic", "optimistic", "any": value, "price_*": argmax corner, "no_pure_cells": count}``."""
    tol = check_tol(tol)
    max_cells = _check_count(max_cells, "max_cells")
    _check_platform(platform)
    _check_n(tp, "best_response_to_mixture")
    mix = [(float(w), tp._prices(q, "mixture")) for w, q in mixture if w > 0]
    if not mix or abs(sum(w for w, _ in mix) - 1.0) > 1e-9:
        raise ProblemError("mixture: probabilities must be positive and sum to 1")
    k = platform
    arr = _Arrangement(relevant_breakpoints(tp, None, k, tol=tol, mixture=mix), max_cells, tp.n)
    tabs = [(w, _tables(tp, _stage(tp, k, q, tol), arr, tol)) for w, q in mix]
    C = arr.size
    tot = {"pessimistic": np.zeros(C), "optimistic": np.zeros(C), "any": np.zeros(C)}
    no_pure = np.zeros(C, dtype=bool)
    width = max(max(t.F.size, t.A.size) for _, t in tabs) + tp.n
    for lo, hi, lead in arr.blocks(width):
        for w, tab in tabs:
            has, opt, pes, anyb = _cell_values(tp, k, tab, arr, lead)
            no_pure[lo:hi] |= ~has
            tot["optimistic"][lo:hi] += w * np.where(has, opt, anyb)
            tot["pessimistic"][lo:hi] += w * np.where(has, pes, anyb)
            tot["any"][lo:hi] += w * anyb
    out = {"no_pure_cells": int(no_pure.sum())}
    for key, vals in tot.items():
        c = int(np.argmax(vals))
        out[key] = float(vals[c])
        out[f"price_{key}"] = arr.cell(c)[0]
    return out


# ---------------------------------------------------------------------------
# the finite price game and its mixed equilibria
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FinitePriceGame(Result):
    """The platforms' bimatrix game over finite price levels (Thm B-1 made finite).

    ``strategies1`` (K1, n), ``strategies2`` (K2, n): price vectors (products of per-user levels);
    ``U1``, ``U2`` (K1, K2): payoffs at the second-stage equilibrium selected by Thm B-1's rule
    (highest ``U¹ + U²`` among every user equilibrium: pure, and for n = 2 mixed; ties broken by
    the first pure equilibrium in action order); ``mixed_stage[s, t]``: the selection was a mixed
    user equilibrium; ``ties``: pairs whose selection was tied with a different payoff split.
    """

    levels: tuple
    strategies1: np.ndarray
    strategies2: np.ndarray
    U1: np.ndarray
    U2: np.ndarray
    mixed_stage: np.ndarray
    ties: int
    status: Termination = Termination.OPTIMAL
    family: ClassVar[str] = "gaussian"
    to_dict = _to_dict


def finite_price_game(tp: TwoPlatformMarket, levels=None, *, max_strategies: int = MAX_FINITE_STRATEGIES,
                      tol: float = PLATFORM_TOL) -> FinitePriceGame:
    """Build the finite price game.  ``levels``: one list of price levels per user, shared by both
    platforms (default: the breakpoints of both platforms against the opponent's zero price,
    :func:`price_breakpoints`).  Both platforms choose from the product of the levels."""
    tol = check_tol(tol)
    max_strategies = _check_count(max_strategies, "max_strategies")
    n = tp.n
    if levels is None:
        z = np.zeros(n)
        b1, b2 = price_breakpoints(tp, z, 1, tol=tol), price_breakpoints(tp, z, 2, tol=tol)
        levels = [_merge(np.concatenate([b1[i], b2[i]]), tol) for i in range(n)]
    else:
        if len(levels) != n:
            raise InstanceError("levels", f"needs one list of price levels per user ({n}), got {len(levels)}")
        levels = [np.unique(np.asarray(lv, float)) for lv in levels]
        if any(lv.size == 0 or np.any(lv < 0) or not np.all(np.isfinite(lv)) for lv in levels):
            raise InstanceError("levels", "every user needs a nonempty list of finite prices >= 0")
    K = int(np.prod([lv.size for lv in levels]))
    if K > max_strategies:
        raise LimitExceeded(f"levels: {K} price vectors per platform exceed max_strategies = {max_strategies}")
    P = np.array(list(itertools.product(*levels)), dtype=float)
    m = tp._O.shape[0]
    U1 = np.zeros((K, K))
    U2 = np.zeros((K, K))
    mixed = np.zeros((K, K), dtype=bool)
    ties = 0
    for s in range(K):
        ok, _ = _equilibria_at(tp, 2, P[s], P, tol)          # rows t: platform 2 posts P[t], platform 1 P[s]
        U1r = tp._LU[0][None, :] - P[s] @ tp._S1bits.T      # (1, m)
        U2r = tp._LU[1][None, :] - P @ tp._S2bits.T         # (K, m)
        tot = np.where(ok, U1r + U2r, -np.inf)
        for t in range(K):
            if ok[t].any():
                best = tot[t].max()
                top = np.flatnonzero(tot[t] >= best - tol)
                r = int(top[0])
                ties += int(np.ptp(U1r[0, top]) > tol)
                U1[s, t], U2[s, t] = U1r[0, r], U2r[t, r]
            else:
                st = second_stage(tp, P[s], P[t], tol=tol)
                if st.selected is None:
                    raise ProblemError(f"no user equilibrium computed at p1 = {P[s]}, p2 = {P[t]} (n = {n} > 2: "
                                       f"mixed user equilibria are computed for n = 2 only)")
                U1[s, t], U2[s, t] = st.selected.platform_payoffs
                mixed[s, t] = True
    del m
    return FinitePriceGame(tuple(np.asarray(lv) for lv in levels), P, P.copy(), U1, U2, mixed, ties)


@dataclass(frozen=True)
class MixedPriceEquilibrium(Result):
    """A mixed equilibrium ``(σ¹, σ²)`` of a :class:`FinitePriceGame`.

    ``payoffs``: expected ``(U¹, U²)``; ``regret``: the largest gain of a pure deviation *within the
    finite game* (≤ tol: verified); ``continuum``: per platform the supremum of its expected payoff
    over *every* price vector against the other's mixture under the pessimistic / optimistic rule
    and the any-equilibrium bound (:func:`best_response_to_mixture`), so
    ``continuum[k]["optimistic"] − payoffs[k] ≤ 0`` proves the pair is also an equilibrium of the
    continuous game (with a pure second stage); the values are exact when
    ``continuum[k]["no_pure_cells"] == 0``, otherwise the terms of opponent prices leaving no pure
    user equilibrium use the any-equilibrium bound (so both rules' values are then upper bounds);
    ``None`` when not computed (``continuum=False`` or n > :data:`MAX_COMPETITION_N`)."""

    sigma1: np.ndarray
    sigma2: np.ndarray
    payoffs: tuple
    regret: float
    continuum: tuple | None
    solver: str
    status: Termination = Termination.OPTIMAL
    family: ClassVar[str] = "gaussian"
    to_dict = _to_dict

    @property
    def objective(self) -> float:
        return float(sum(self.payoffs))

    def continuum_gain(self, rule: str = "optimistic") -> float:
        """Largest gain of deviating to any price (under ``rule``) over both platforms."""
        if self.continuum is None:
            return math.nan
        return max(self.continuum[k][rule] - self.payoffs[k] for k in (0, 1))


def _gambit_equilibria(U1, U2, solver):
    try:
        import pygambit as gbt
    except ImportError as exc:                                   # pragma: no cover - depends on the env
        raise BackendUnavailable("pygambit is not installed (pip install pygambit); use "
                                 "solver='enumeration' for small games") from exc
    game = gbt.Game.from_arrays(U1, U2)
    if solver == "gambit":
        res = gbt.nash.enummixed_solve(game, rational=False)
    else:
        res = gbt.nash.lcp_solve(game, rational=False)
    p1, p2 = game.players
    out = []
    for eq in res.equilibria:
        x = np.array([float(eq[p1][s]) for s in p1.strategies])
        y = np.array([float(eq[p2][s]) for s in p2.strategies])
        out.append((x, y))
    return out


def mixed_price_equilibria(tp: TwoPlatformMarket, game: FinitePriceGame, *, solver: str = "gambit",
                           continuum: bool = True, tol: float = 1e-9) -> list[MixedPriceEquilibrium]:
    """Mixed equilibria of the finite price game.

    ``solver``: ``"gambit"`` (pygambit ``enummixed``: every extreme equilibrium), ``"gambit-lcp"``
    (pygambit Lemke–Howson ``lcp``: some equilibria, for larger games) or ``"enumeration"`` (this
    module's exact vertex enumeration, ≤ :data:`MAX_ENUMERATION_STRATEGIES` strategies).  Every
    equilibrium is re-verified in the matrix (``regret ≤ tol`` or it is dropped) and, when
    ``continuum`` and n ≤ :data:`MAX_COMPETITION_N`, checked against every price
    (:class:`MixedPriceEquilibrium`)."""
    tol = check_tol(tol)
    if solver not in ("gambit", "gambit-lcp", "enumeration"):
        raise ProblemError(f"solver must be 'gambit', 'gambit-lcp' or 'enumeration'; got {solver!r}")
    U1, U2 = game.U1, game.U2
    pairs = bimatrix_equilibria(U1, U2, tol) if solver == "enumeration" else _gambit_equilibria(U1, U2, solver)
    out = []
    for x, y in pairs:
        x = np.maximum(x, 0.0) / np.maximum(x, 0.0).sum()
        y = np.maximum(y, 0.0) / np.maximum(y, 0.0).sum()
        v1, v2 = float(x @ U1 @ y), float(x @ U2 @ y)
        regret = max(float((U1 @ y).max() - v1), float((x @ U2).max() - v2))
        if regret > tol * max(1.0, abs(v1), abs(v2)):
            continue
        cont = None
        if continuum and tp.n <= MAX_COMPETITION_N:
            m1 = [(w, game.strategies1[s]) for s, w in enumerate(x) if w > 1e-12]
            m2 = [(w, game.strategies2[t]) for t, w in enumerate(y) if w > 1e-12]
            ws1 = sum(w for w, _ in m1)
            ws2 = sum(w for w, _ in m2)
            cont = (best_response_to_mixture(tp, [(w / ws2, q) for w, q in m2], 1),
                    best_response_to_mixture(tp, [(w / ws1, q) for w, q in m1], 2))
        out.append(MixedPriceEquilibrium(x, y, (v1, v2), regret, cont, solver))
    return out


__all__ = [
    "MAX_COMPETITION_N", "MAX_FINITE_STRATEGIES", "MAX_ENUMERATION_STRATEGIES", "RULES",
    "bimatrix_equilibria", "user_stage_bimatrix", "SecondStage", "second_stage", "price_breakpoints",
    "relevant_breakpoints", "MAX_CELLS",
    "BestResponse", "best_response", "optimistic_best_response", "best_response_to_mixture",
    "EquilibriumCheck", "check_price_equilibrium", "FinitePriceGame", "finite_price_game",
    "MixedPriceEquilibrium", "mixed_price_equilibria",
]
