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
``4·5^(n−1)`` per user).  The product of the per-user breakpoints and the open
intervals between them cuts ``ℝ^n_+`` into finitely many *cells*; on a cell the
set ``E`` of pure user equilibria and the dominance relation of every user are
constant.  Every platform payoff ``U^k_r(p) = Σ_{i∈S_k(r)} 𝓘_i(S_k(r)) − p_i``
is nonincreasing in ``p``, so :func:`best_response` computes the *supremum over
every price vector* ``p ∈ ℝ^n_+`` exactly:

* ``rule="pessimistic"`` (Definition 2 / footnote 14: the deviator gets the worst
  user equilibrium) and ``rule="optimistic"`` (the best one): per cell the sup is
  at the cell's lower corner — a breakpoint vector, approached from above on open
  intervals ("just above an indifference price");
* ``rule="max_sum"`` (Thm B-1's selection among the pure equilibria; ties in the
  sum go the deviator's way): per cell and per candidate outcome a small LP
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
(= 2; a cell count of ``(2·4·5^(n−1)+2)^n`` makes n = 3 — 8·10^6 cells × 125
actions — impractical); :func:`optimistic_best_response` has a closed form
valid for every ``n ≤ 6``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import BackendUnavailable, InstanceError, LimitExceeded, ProblemError
from dm_opt.core.jsonenc import jsonable
from dm_opt.core.result import Result
from dm_opt.core.status import Termination
from dm_opt.gaussian.platforms import PLATFORM_TOL, MixedUserEquilibrium, PlatformOutcome, TwoPlatformMarket
from dm_opt.gaussian.platforms.bimatrix import MAX_ENUMERATION_STRATEGIES, bimatrix_equilibria

#: Largest n for the exact continuum analysis (cells of the breakpoint arrangement).
MAX_COMPETITION_N = 2
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


def _check_platform(k):
    if k not in (1, 2):
        raise ProblemError(f"platform must be 1 or 2, got {k!r}")


def _check_n(tp: TwoPlatformMarket, what: str):
    if tp.n > MAX_COMPETITION_N:
        raise LimitExceeded(f"n = {tp.n}: {what} is exact for n <= {MAX_COMPETITION_N} users "
                            f"(the breakpoint cells grow as (8*5^(n-1))^n)")


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


@dataclass
class _Cells:
    corner: np.ndarray      # (C, n) lower corner of the closure
    rep: np.ndarray         # (C, n) a point inside the cell
    upper: np.ndarray       # (C, n) upper end (= corner for point coordinates, inf for the last interval)
    open_: np.ndarray       # (C, n) bool: coordinate ranges over an open interval


def _cells(bps: list[np.ndarray]) -> _Cells:
    per = []
    for b in bps:
        c = []
        for j, x in enumerate(b):
            c.append((x, x, x, False))
            if j + 1 < len(b):
                c.append((x, 0.5 * (x + b[j + 1]), b[j + 1], True))
            else:
                c.append((x, x + max(1.0, abs(x)), math.inf, True))
        per.append(c)
    prod = list(itertools.product(*per))
    arr = np.array([[list(t) for t in cell] for cell in prod], dtype=object)
    corner = arr[:, :, 0].astype(float)
    rep = arr[:, :, 1].astype(float)
    upper = arr[:, :, 2].astype(float)
    open_ = arr[:, :, 3].astype(bool)
    return _Cells(corner, rep, upper, open_)


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


def _undominated(tp, pay, tol):
    """``nd[c, r]``: no user's option in r is strictly dominated by another pure option (per cell)."""
    O = tp._O.astype(np.int64)
    C = pay.shape[0]
    m, n = O.shape
    nd = np.ones((C, m), dtype=bool)
    for i in range(n):
        rows = np.flatnonzero(O[:, i] == 0)                 # one row per action of the others
        P = pay[:, rows, i, :]                              # (C, 5^(n-1), 5)
        dom = np.zeros((C, 5), dtype=bool)
        for o in range(5):
            for o2 in range(5):
                if o2 != o:
                    dom[:, o] |= np.all(P[:, :, o2] > P[:, :, o] + tol, axis=1)
        nd &= ~dom[:, O[:, i]]
    return nd


# ---------------------------------------------------------------------------
# best responses
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BestResponse(Result):
    """Supremum of platform ``platform``'s payoff over every price vector ``p ∈ ℝ^n_+`` against ``other``.

    ``value``: the supremum under ``rule`` over prices with a pure user equilibrium;
    ``price``: a price where it is attained, or (``attained`` False) the limit point it is
    approached from inside its cell (e.g. just above a breakpoint) — ``witness`` is then a
    concrete price inside the cell within ``1e-7`` of the supremum;
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


def best_response(tp: TwoPlatformMarket, other_price, platform: int = 1, *, rule: str = "max_sum",
                  tol: float = PLATFORM_TOL) -> BestResponse:
    """Exact supremum of ``U^platform`` over every price vector in ``ℝ^n_+`` (module docstring)."""
    _check_rule(rule)
    _check_platform(platform)
    _check_n(tp, "best_response over every price")
    q = tp._prices(other_price, "other_price")
    k = platform
    so, oo, LUk, Sk, LUo, So = _view(tp, k)
    bps = price_breakpoints(tp, q, k, tol=tol)
    cells = _cells(bps)
    ok, pay = _equilibria_at(tp, k, q, cells.rep, tol)
    nd = _undominated(tp, pay, tol)
    U = LUk[None, :] - cells.corner @ Sk.T                  # (C, m) sup of U_r over the cell
    W = LUo - So @ q                                         # opponent's payoff per action (const in p)
    has = ok.any(axis=1)
    opt = np.where(ok, U, -np.inf).max(axis=1)
    pes = np.where(ok, U, np.inf).min(axis=1)
    pes[~has] = -np.inf
    anyb = np.where(nd, U, -np.inf).max(axis=1)
    no_pure = int((~has).sum())
    no_pure_bound = float(anyb[~has].max()) if no_pure else -math.inf

    def arg(vals):
        c = int(np.argmax(vals))
        return c, float(vals[c])

    # max_sum: exact per cell, branch and bound on the optimistic value.  Within a cell the selection is
    # argmax_r g_r(p), g_r = U^k_r(p) + W_r; actions with the same g (same sharers on k, same constant)
    # form a class whose value is its worst member (ties in the sum go against the deviator, as in
    # Definition 2); a class counts where it is the strict maximiser (sup = LP max over the closure).
    ms_best, ms_arg, lps = -math.inf, None, 0
    if has.any():                                        # pointwise max_sum ≥ pessimistic: a first incumbent
        c0 = int(np.argmax(pes))
        E0 = np.flatnonzero(ok[c0])
        r0 = int(E0[np.argmin(U[c0, E0])])
        ms_best, ms_arg = float(pes[c0]), (c0, r0, cells.corner[c0].copy(), cells.rep[c0].copy())
    order = np.argsort(-opt, kind="stable")
    scale = max(1.0, float(np.abs(LUk).max() + np.abs(W).max()))
    for c in order:
        if opt[c] <= ms_best:
            break
        if not has[c]:
            continue
        E = np.flatnonzero(ok[c])
        G = LUk[E] + W[E]
        classes = []                                     # (members, representative = worst member)
        for idx, r in enumerate(E):
            for cl in classes:
                r0 = cl[0][0]
                if np.array_equal(Sk[r], Sk[r0]) and abs(G[idx] - (LUk[r0] + W[r0])) <= tol * scale:
                    cl[0].append(int(r))
                    break
            else:
                classes.append(([int(r)], None))
        classes = [(mem, min(mem, key=lambda x: LUk[x])) for mem, _ in classes]
        if len(classes) == 1:
            r = classes[0][1]
            if U[c, r] > ms_best:
                ms_best, ms_arg = float(U[c, r]), (int(c), r, cells.corner[c].copy(), cells.rep[c].copy())
            continue
        for mem, r in sorted(classes, key=lambda cl: -U[c, cl[1]]):
            if U[c, r] <= ms_best:
                break
            rivals = [(Sk[cl[0][0]], (LUk[r] + W[r]) - (LUk[cl[0][0]] + W[cl[0][0]]))
                      for cl in classes if cl[0] is not mem]
            lps += 1
            sol = _lp_cell(cells.corner[c], cells.upper[c], cells.open_[c], Sk[r], rivals, tol, strict=True)
            if sol is None:
                continue
            val = float(LUk[r] - Sk[r] @ sol[1])
            if val > ms_best:
                ms_best, ms_arg = val, (int(c), int(r), sol[1], sol[2])
    bounds = {"pessimistic": float(pes.max()) if has.any() else -math.inf,
              "max_sum": ms_best, "optimistic": float(opt.max()) if has.any() else -math.inf,
              "any": float(anyb.max())}
    if rule == "max_sum":
        if ms_arg is None:
            c, r, price, inside = 0, -1, cells.corner[0], cells.rep[0]
        else:
            c, r, price, inside = ms_arg
        value = ms_best
    else:
        vals = opt if rule == "optimistic" else pes
        c, value = arg(vals)
        E = np.flatnonzero(ok[c])
        r = int(E[np.argmax(U[c, E])] if rule == "optimistic" else E[np.argmin(U[c, E])]) if E.size else -1
        price, inside = cells.corner[c], cells.rep[c]
    # a concrete price inside the cell within 1e-7 of the sup (payoffs are linear along the segment)
    pr = np.asarray(price, float)
    op = cells.open_[c]
    attained = bool(np.all(~op | ((pr > cells.corner[c] + tol) & (pr < cells.upper[c] - tol))))
    if attained:
        witness = np.array(price, float)
    else:
        d = np.asarray(inside, float) - np.asarray(price, float)
        slope = float(np.abs(Sk).sum(axis=1).max() * np.abs(d).max()) if r >= 0 else 0.0
        lam = min(1.0, 1e-7 / slope) if slope > 0 else 0.5
        witness = np.asarray(price, float) + lam * d
    return BestResponse(k, rule, float(value), np.array(price, float), bool(attained), witness, int(r), bounds,
                        int(cells.corner.shape[0]), no_pure, no_pure_bound, lps, tuple(bps))


def optimistic_best_response(tp: TwoPlatformMarket, other_price, platform: int = 1, *,
                             tol: float = PLATFORM_TOL) -> tuple[float, np.ndarray, int]:
    """Closed form for any n (≤ 6): ``sup_p max_{r ∈ E(p)} U^k_r(p)``.

    The set of prices making ``r`` a user equilibrium is a box: ``p_i ≥ lo_{r,i}`` for the users
    sharing on k under r, ``p_i ≤ hi_{r,i}`` for the others (and conditions free of p).  So the
    sup is ``max_r LU_k(r) − Σ_{i∈S_k(r)} max(lo_{r,i}, 0)`` over the r whose box meets ``ℝ^n_+``
    (attained at the breakpoint price).  Returns (value, price, action index)."""
    _check_platform(platform)
    q = tp._prices(other_price, "other_price")
    so, oo, LUk, Sk, *_ = _view(tp, platform)
    pay, thr = _free_payoffs(tp, platform, q)
    O = tp._O.astype(np.int64)
    m, n = O.shape
    alt = np.delete(pay, so, axis=2).max(axis=2)                   # best option other than sharing on k
    lo = np.maximum(alt - pay[:, :, so], 0.0)                       # sharers on k need p_i ≥ lo
    own = np.take_along_axis(pay, O[:, :, None], axis=2)[..., 0]
    sharer = O == so
    feas = np.all(sharer | (own >= alt - tol), axis=1)              # price-free conditions of non-sharers
    hi = own - pay[:, :, so]
    feas &= np.all(sharer | (hi >= -tol), axis=1)                   # p_i = 0 ≤ hi for non-sharers
    price = np.where(sharer, lo, 0.0)
    val = np.where(feas, LUk - np.sum(np.where(sharer, lo, 0.0), axis=1), -np.inf)
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
                            tol: float = PLATFORM_TOL) -> EquilibriumCheck:
    """Is ``(p¹, p²)`` with user equilibrium ``outcome`` (default: the rule's selection among the pure
    user equilibria) a price equilibrium against *every* price vector?"""
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
    brs = (best_response(tp, p2, 1, rule=rule, tol=tol), best_response(tp, p1, 2, rule=rule, tol=tol))
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
                             tol: float = PLATFORM_TOL) -> dict:
    """``sup_p Σ_s w_s V_s(p)`` over every ``p ∈ ℝ^n_+`` against the opponent's mixture
    ``[(w_s, q_s)]``, for ``V`` the pessimistic and the optimistic rule and the any-equilibrium
    bound.  Cells are those of the union of the breakpoints against every ``q_s``; on a cell each
    ``V_s`` is nonincreasing (a min/max of nonincreasing payoffs over a constant set), so the sup
    is at the cell's lower corner.  Cells where some ``q_s`` leaves no pure user equilibrium use
    the bound for that term in both rules.  Returns ``{"pessimistic", "optimistic", "any": value,
    "price_*": argmax corner, "no_pure_cells": count}``."""
    _check_platform(platform)
    _check_n(tp, "best_response_to_mixture")
    mix = [(float(w), tp._prices(q, "mixture")) for w, q in mixture if w > 0]
    if not mix or abs(sum(w for w, _ in mix) - 1.0) > 1e-9:
        raise ProblemError("mixture: probabilities must be positive and sum to 1")
    k = platform
    _, _, LUk, Sk, *_ = _view(tp, k)
    cells = _cells(price_breakpoints(tp, None, k, tol=tol, mixture=mix))
    U = LUk[None, :] - cells.corner @ Sk.T
    tot = {"pessimistic": 0.0, "optimistic": 0.0, "any": 0.0}
    no_pure = np.zeros(cells.corner.shape[0], dtype=bool)
    for w, q in mix:
        ok, pay = _equilibria_at(tp, k, q, cells.rep, tol)
        nd = _undominated(tp, pay, tol)
        has = ok.any(axis=1)
        anyb = np.where(nd, U, -np.inf).max(axis=1)
        no_pure |= ~has
        tot["optimistic"] = tot["optimistic"] + w * np.where(has, np.where(ok, U, -np.inf).max(axis=1), anyb)
        tot["pessimistic"] = tot["pessimistic"] + w * np.where(has, np.where(ok, U, np.inf).min(axis=1), anyb)
        tot["any"] = tot["any"] + w * anyb
    out = {"no_pure_cells": int(no_pure.sum())}
    for key, vals in tot.items():
        c = int(np.argmax(vals))
        out[key] = float(vals[c])
        out[f"price_{key}"] = cells.corner[c].copy()
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
    ``None`` when not computed (n > 2)."""

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
    ``continuum`` and n ≤ 2, checked against every price (:class:`MixedPriceEquilibrium`)."""
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
    "BestResponse", "best_response", "optimistic_best_response", "best_response_to_mixture",
    "EquilibriumCheck", "check_price_equilibrium", "FinitePriceGame", "finite_price_game",
    "MixedPriceEquilibrium", "mixed_price_equilibria",
]
