"""Competitive equilibria of the GLP economy (Definition (a)–(d)), enumerated as families by
(supply pattern × face of ``V``), each described exactly by an LP where it is linear."""

from __future__ import annotations

import itertools
import time

import numpy as np
from scipy.optimize import linprog

from dm_opt.core.errors import LimitExceeded
from dm_opt.core.limits import Deadline, Stopped
from dm_opt.core.result import Termination, frozen_array
from dm_opt.info_design.common import _scale, mechanism_from_y, obedience_matrix
from dm_opt.info_design.lp._cvxpy import _cp, _solve
from dm_opt.info_design.lp.efficiency import constrained_efficiency
from dm_opt.info_design.lp.pieces import value_pieces
from dm_opt.info_design.market import InfoDesignMarket
from dm_opt.info_design.results import (
    FULL,
    MID,
    PATTERN_NAMES,
    ZERO,
    EfficiencyResult,
    EquilibriaResult,
    EquilibriumPiece,
    ValuePieces,
)

#: The old private name of :data:`~dm_opt.info_design.results.PATTERN_NAMES`.
_PATTERN_NAMES = PATTERN_NAMES
#: Largest |Ω| for :func:`equilibria`.  Why it stops there: the enumeration visits every (supply
#: pattern, face of V) combination — ``3^|Ω|`` patterns × the faces of V (sets of pieces jointly
#: optimal somewhere; for the slides' merchant every set of uniform prices can tie, ``2^|Ω| − 1``
#: faces) — with one LP each (plus three for a nonempty family): ``6^|Ω|`` LPs for the slides'
#: merchant.  Measured (benchmarks machine, loaded): |Ω| = 3: 189 combinations, 24 s; |Ω| = 4:
#: 1215, 90 s; |Ω| = 5: 7533, of which 77 of 243 patterns in 120 s; |Ω| = 8 would be 1.7·10⁶ LPs.
#: Families whose price weights multiply the database (``|S| ≥ 2`` pieces, a free database of
#: dimension ≥ 2 or a type selling out) are bilinear and need SCIP (``pyscipopt``); without it they
#: are reported as undecided (status ``feasible``).  ``max_n=`` raises the limit at the caller's risk.
EQUILIBRIA_MAX_N = 4
#: A bilinear family whose largest interior slack (SCIP, feasibility tolerance 1e-6)
#: is below this is treated as empty.
SCIP_SLACK_TOL = 1e-5



def _faces(L: np.ndarray, tol: float) -> list[tuple]:
    """Subsets ``S`` of gradients all optimal at a common ``q`` in the simplex."""
    K, n = L.shape
    out = []

    def feasible(S):
        k0 = S[0]
        A_eq = [np.ones(n)] + [L[k] - L[k0] for k in S[1:]]
        b_eq = [1.0] + [0.0] * (len(S) - 1)
        A_ub = np.array([L[k0] - L[l] for l in range(K) if l not in S]) if K > len(S) else None
        b_ub = np.zeros(K - len(S)) if K > len(S) else None
        r = linprog(np.zeros(n), A_ub=A_ub, b_ub=b_ub, A_eq=np.array(A_eq), b_eq=b_eq,
                    bounds=[(0, None)] * n, method="highs")
        return r.status == 0

    level = [(k,) for k in range(K)]
    while level:
        ok = [S for S in level if feasible(list(S))]
        out.extend(ok)
        nxt = set()
        for S in ok:
            for k in range(S[-1] + 1, K):
                nxt.add(S + (k,))
        level = sorted(nxt)
    return out


def equilibria(market: InfoDesignMarket, *, pieces: ValuePieces | None = None,
               efficiency: EfficiencyResult | None = None,
               max_n: int = EQUILIBRIA_MAX_N, bilinear: str = "auto", time_limit=None) -> EquilibriaResult:
    """Every competitive equilibrium of a small economy (GLP Definition (a)–(d)).

    An equilibrium is ``q* = ζ* q̄``, ``x*`` optimal in ``P_{q*}``,
    ``p* ∈ ∂V(q*)`` (zero profit and optimality of ``q*`` for the platform,
    module docstring) and consumers' optimality: ``p*(ω) + U(ω,x*) ≥ r̄`` if
    ``q*(ω) > 0`` and ``≤ r̄`` if ``q*(ω) < q̄(ω)``.

    ``∂V(q) = conv{λ^k optimal at q} + cone{e_ω : q(ω) = 0}``.  We enumerate
    the faces ``S`` (sets of gradients jointly optimal somewhere) and the
    supply patterns (none/some/all per type), and describe each combination
    exactly by one LP when it is linear: the price is fixed on every selling
    type (``|S| = 1`` or the gradients agree there), or the database is
    pinned down by the pattern, or the database moves on a ray (homogeneity of
    degree one lets us divide by its length).  Other combinations (only
    possible for ``|Ω| ≥ 3``) have bilinear terms ``θ_k q(ω)`` (price weights ×
    database); with ``bilinear="scip"`` (``"auto"``: when pyscipopt is
    installed) they are decided by SCIP's spatial branch-and-bound (global
    optimum of the interior slack, so emptiness is decided up to SCIP's
    feasibility tolerance 1e-6; their welfare range is over the closure of the
    family); otherwise they are reported as ``undecided``.

    Convention for non-selling types (``q*(ω) = 0``): ``P_{q*}`` leaves
    ``x*(·|ω)`` free, so the consumer condition uses the most favourable
    choice for not selling, ``U = min_a u(a,ω)`` (the slides use ``U*(2) = 0``
    in the no-trade equilibrium of the two-type example), and the smallest
    price in ``∂V`` for that coordinate (raising ``p(ω)`` along ``e_ω`` only
    attracts sellers).

    ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`) and
    Ctrl-C stop the enumeration between (pattern, face) combinations; the
    families found so far are returned with ``complete=False`` and the status.
    """
    cp = _cp()
    if market.n > max_n:
        raise LimitExceeded(f"equilibrium enumeration is for |Ω| ≤ {max_n} (got {market.n}): it solves one LP per "
                            f"(supply pattern, face of V) combination, 3^|Ω| patterns × up to 2^|Ω| − 1 faces "
                            f"(EQUILIBRIA_MAX_N; pass max_n= to raise it at your own risk)")
    dl = Deadline.of(time_limit)
    t0 = time.perf_counter()
    pieces = pieces or value_pieces(market, time_limit=dl)
    eff = efficiency or (constrained_efficiency(market, pieces=pieces, time_limit=dl)
                         if pieces.status is Termination.OPTIMAL else None)
    if eff is None or eff.status is not Termination.OPTIMAL:
        st = pieces.status if eff is None else eff.status
        return EquilibriaResult((), np.nan if eff is None else eff.welfare, False, (),
                                np.asarray(pieces.gradients), time.perf_counter() - t0, st,
                                "stopped before W° was known (pieces of V / constrained efficiency)")
    L = np.asarray(pieces.gradients)
    K = L.shape[0]
    n = market.n
    qbar = market.prior
    scale = _scale(market)
    tol = 1e-7 * scale
    umin = market.u.min(axis=0)
    G, _ = obedience_matrix(market)
    faces = _faces(L, 1e-9)
    if bilinear == "auto":
        try:
            import pyscipopt  # noqa: F401
            use_scip = True
        except ImportError:
            use_scip = False
    else:
        use_scip = bilinear in ("scip", "scip-all")
    # the origin: every gradient is optimal at q = 0
    faces_all = tuple(range(K))
    found, undecided = [], []
    choices = [(ZERO,) if qbar[w] <= 0 else (ZERO, MID, FULL) for w in range(n)]
    status, done, total = Termination.OPTIMAL, [0], int(np.prod([len(c) for c in choices]))
    try:
        _equilibria_loop(market, choices, faces, faces_all, L, qbar, G, umin, tol, eff, bilinear, use_scip,
                         cp, found, undecided, dl, done)
    except Stopped as stop:
        status = stop.status
    except KeyboardInterrupt:
        status = Termination.INTERRUPTED
    # the same equilibria can be found from a face and its sub-faces; keep distinct families
    uniq = []
    for p in found:
        if not any(p.pattern == o.pattern and np.allclose(p.q, o.q, atol=1e-7)
                   and np.allclose(p.price, o.price, atol=1e-7)
                   and abs(p.welfare_min - o.welfare_min) <= tol and abs(p.welfare_max - o.welfare_max) <= tol
                   for o in uniq):
            uniq.append(p)
    stopped = status is not Termination.OPTIMAL
    msg = f"stopped ({status}) after {done[0]} of {total} supply patterns" if stopped else ""
    if undecided and not stopped:
        # finished, but the list is not proven complete: never "optimal" with pieces missing
        status = Termination.FEASIBLE
        msg = (f"{len(undecided)} (supply pattern, face) combinations need a bilinear description that is "
               f"not solved exactly here (listed in 'undecided'); the families listed are genuine equilibria")
    return EquilibriaResult(tuple(uniq), eff.welfare, not undecided and not stopped, tuple(undecided), L,
                            time.perf_counter() - t0, status, msg)


def _equilibria_loop(market, choices, faces, faces_all, L, qbar, G, umin, tol, eff, bilinear, use_scip,
                     cp, found, undecided, dl, done) -> None:
    """The (supply pattern × face) enumeration of :func:`equilibria`; appends to
    ``found``/``undecided`` (and counts patterns in ``done[0]``) so a stop keeps
    everything decided so far."""
    n = market.n
    for pattern in itertools.product(*choices):
        dl.check()
        done[0] += 1
        pat = np.array(pattern)
        Z, F = pat == ZERO, pat == FULL
        pos = ~Z
        face_list = [faces_all] if not pos.any() else faces
        for S in face_list:
            dl.check()
            LS = L[list(S)]
            # linear-algebra view of the database set: q_Z = 0, q_F = q̄_F, (λ^k − λ^k0)·q = 0
            rows = [np.eye(n)[w] for w in np.flatnonzero(Z | F)] + [LS[i] - LS[0] for i in range(1, len(S))]
            rhs = [0.0 if Z[w] else qbar[w] for w in np.flatnonzero(Z | F)] + [0.0] * (len(S) - 1)
            price_fixed = bool(np.all(np.ptp(LS[:, pos], axis=0) <= tol)) if pos.any() else True
            Amat = np.array(rows) if rows else np.zeros((0, n))
            rank = np.linalg.matrix_rank(Amat, tol=1e-9) if len(rows) else 0
            dim = n - rank
            if price_fixed:
                kind = "fixed-price"
            elif bilinear == "scip-all":     # testing: decide every non-fixed-price family by SCIP
                kind = "bilinear"
                found_p = _equilibrium_scip(market, G, LS, S, pat, Amat, np.array(rhs), umin, eff.welfare,
                                            L, eff.piece_values, dl)
                if found_p is None:
                    undecided.append((pattern, S))
                elif found_p is not False:
                    found.append(found_p)
                continue
            elif dim == 0:
                kind = "fixed-database"
            elif dim == 1 and not F.any():
                kind = "ray"
            else:
                piece = _equilibrium_scip(market, G, LS, S, pat, Amat, np.array(rhs), umin, eff.welfare,
                                          L, eff.piece_values, dl) if use_scip else None
                if piece is None:
                    undecided.append((pattern, S))
                elif piece is not False:
                    found.append(piece)
                continue
            piece = _equilibrium_lp(cp, market, G, LS, S, pat, kind, Amat, np.array(rhs), umin, tol, eff.welfare,
                                    L, eff.piece_values)
            if piece is not None:
                found.append(piece)


def _equilibrium_lp(cp, market, G, LS, S, pat, kind, Amat, rhs, umin, tol, W0, L=None, piece_values=None,
                    price=None):
    """One (face, pattern) family as an LP; None if it is empty.

    ``fixed-price``: variables (q, y), price ``λ^S(ω)`` constant on sellers.
    ``fixed-database``: q is the unique solution of ``Amat q = rhs``; variables (θ, y).
    ``ray``: q = t·d (no type sells out), variables (θ, ŷ) with ``Σ_a ŷ = d``;
    every condition is homogeneous of degree one in t, so t ∈ (0, t_max) is free.
    """
    n, m = market.n, market.m
    qbar, rbar = market.prior, market.reservation
    Z, M_, F = pat == ZERO, pat == MID, pat == FULL
    theta = cp.Variable(len(S), nonneg=True)
    y = cp.Variable((m, n), nonneg=True)
    slack = cp.Variable()
    p = LS.T @ theta if price is None else price            # a price on the face
    cons = [cp.sum(theta) == 1, slack <= 1.0]
    if G.shape[0]:
        cons.append(G @ cp.reshape(y, (m * n,), order="C") >= 0)
    Uy = cp.sum(cp.multiply(market.u, y), axis=0)             # Σ_a u(a,ω) y(a,ω)
    for w in np.flatnonzero(Z):                               # non-sellers (convention in docstring)
        cons.append(p[w] + umin[w] <= rbar)
    tmax = 1.0
    if kind == "fixed-price":
        q = cp.Variable(n, nonneg=True)
        cons += [q <= qbar]
        if len(Amat):
            cons.append(Amat @ q == rhs)
        for w in np.flatnonzero(M_):
            cons += [slack <= q[w], slack <= qbar[w] - q[w]]
        qconst = None
    else:
        if kind == "fixed-database":
            qconst = np.linalg.lstsq(Amat, rhs, rcond=None)[0]
            if np.max(np.abs(Amat @ qconst - rhs)) > 1e-9 * max(1.0, np.max(np.abs(rhs))):
                return None
            qconst[np.abs(qconst) < 1e-13] = 0.0
            if np.any(qconst < -1e-12) or np.any(qconst > qbar + 1e-12):
                return None
            if np.any(qconst[M_] <= 1e-12) or np.any(qconst[M_] >= qbar[M_] - 1e-12):
                return None
        else:
            qconst = _null_direction(Amat)
            if qconst is None or np.any(qconst[M_] <= 1e-12) or np.any(qconst[F] > 0):
                return None
            tmax = float(np.min(qbar[M_] / qconst[M_])) if M_.any() else 1.0
        q = qconst
    cons.append(cp.sum(y, axis=0) == q)
    for k in range(len(S)):                                   # every λ^k (k ∈ S) optimal at q
        cons.append(cp.sum(cp.multiply(market.v, y)) >= LS[k] @ q)
    for w in np.flatnonzero(~Z):
        if kind == "fixed-price":
            pw = float(LS[0, w]) if price is None else float(price[w])
            lhs = pw * q[w] + Uy[w] - rbar * q[w]
        else:
            lhs = p[w] * float(q[w]) + Uy[w] - rbar * float(q[w])
        cons.append(lhs == 0 if pat[w] == MID else lhs >= 0)
    prob = cp.Problem(cp.Maximize(slack), cons)
    st = _solve(prob, "equilibrium LP")
    if st != "optimal" or prob.value <= 1e-9:
        return None
    smax = float(prob.value)
    wexpr = cp.sum(cp.multiply(market.v + market.u, y)) - rbar * cp.sum(q)
    rng = {}
    for sense in ("min", "max"):
        pr = cp.Problem(cp.Minimize(wexpr) if sense == "min" else cp.Maximize(wexpr), cons)
        st = _solve(pr, "equilibrium welfare range")
        rng[sense] = float(pr.value) if st == "optimal" else np.nan
    prw = cp.Problem(cp.Maximize(wexpr), cons + [slack >= 0.5 * smax])
    _solve(prw, "equilibrium witness")
    yv = np.clip(np.asarray(y.value, float), 0, None)
    pv = np.asarray(LS.T @ np.asarray(theta.value, float), float) if price is None else np.asarray(price, float)
    if kind == "ray":
        t = 0.5 * tmax
        qv, yv = t * qconst, t * yv
        wmin, wmax = min(0.0, tmax * rng["min"]), max(0.0, tmax * rng["max"])
    else:
        qv = np.clip(np.asarray(q.value, float), 0, None) if qconst is None else qconst
        wmin, wmax = rng["min"], rng["max"]
    witness_w = float(np.sum((market.v + market.u) * yv) - rbar * qv.sum())
    x = mechanism_from_y(market, yv, qv)
    zeta = np.where(qbar > 0, qv / np.where(qbar > 0, qbar, 1.0), 0.0)
    efftol = 1e-6 * max(1.0, abs(W0)) * _scale(market)
    kkt = False
    if L is not None and piece_values is not None:
        Vq = float(np.sum(market.v * yv))
        opt_k = np.flatnonzero(L @ qv <= Vq + efftol)          # gradients optimal at the witness
        kkt = bool(np.any(np.asarray(piece_values)[opt_k] <= witness_w + efftol))
    return EquilibriumPiece(
        pattern=tuple(int(s) for s in pat), active=tuple(int(k) for k in S), kind=kind, q=frozen_array(qv),
        zeta=frozen_array(zeta), x=frozen_array(x), price=frozen_array(pv), welfare=witness_w,
        welfare_min=float(wmin), welfare_max=float(wmax),
        efficient=bool(witness_w >= W0 - efftol), all_efficient=bool(wmin >= W0 - efftol), kkt=kkt)


#: Seconds SCIP may spend on one bilinear equilibrium family (a family not decided in time is
#: listed as undecided); a shorter time limit of the whole computation wins.
SCIP_FAMILY_SECONDS = 60.0


def _equilibrium_scip(market, G, LS, S, pat, Amat, rhs, umin, W0, L, piece_values, deadline=None):
    """A bilinear (face, pattern) family decided by SCIP (nonconvex QCP, global).

    Same constraints as :func:`_equilibrium_lp` with the price ``p = Σ_k θ_k λ^k``
    multiplying the database on sellers.  Returns an :class:`EquilibriumPiece`
    (kind ``"bilinear"``), ``False`` when the family is empty, ``None`` when SCIP did
    not decide it within :data:`SCIP_FAMILY_SECONDS`; raises
    :class:`~dm_opt.core.limits.Stopped` when ``deadline`` (or Ctrl-C) stopped SCIP."""
    import pyscipopt as ps

    class _Undecided(Exception):
        pass

    n, m = market.n, market.m
    qbar, rbar = market.prior, market.reservation
    Z, M_ = pat == ZERO, pat == MID
    Gd = G.toarray() if G.shape[0] else np.zeros((0, m * n))

    def build(objective: str, smin: float | None):
        mdl = ps.Model()
        mdl.hideOutput()
        left = None if deadline is None else deadline.remaining()
        if left is not None and left <= 0:
            raise Stopped(Termination.TIME_LIMIT, deadline.message())
        mdl.setParam("limits/time", SCIP_FAMILY_SECONDS if left is None else min(SCIP_FAMILY_SECONDS, left))
        th = [mdl.addVar(lb=0, ub=1) for _ in S]
        q = [mdl.addVar(lb=0, ub=float(qbar[w])) for w in range(n)]
        y = [[mdl.addVar(lb=0, ub=float(qbar[w])) for w in range(n)] for _ in range(m)]
        sl = mdl.addVar(lb=-1, ub=1)
        mdl.addCons(ps.quicksum(th) == 1)
        for w in range(n):
            mdl.addCons(ps.quicksum(y[a][w] for a in range(m)) == q[w])
        for r in range(Gd.shape[0]):
            nz = np.flatnonzero(Gd[r])
            mdl.addCons(ps.quicksum(float(Gd[r, j]) * y[j // n][j % n] for j in nz) >= 0)
        for r in range(len(Amat)):
            mdl.addCons(ps.quicksum(float(Amat[r, w]) * q[w] for w in range(n) if Amat[r, w] != 0) == float(rhs[r]))
        vy = ps.quicksum(float(market.v[a, w]) * y[a][w] for a in range(m) for w in range(n))
        for k in range(len(S)):
            mdl.addCons(vy >= ps.quicksum(float(LS[k, w]) * q[w] for w in range(n)))
        for w in np.flatnonzero(Z):
            mdl.addCons(ps.quicksum(float(LS[k, w]) * th[k] for k in range(len(S))) + float(umin[w]) <= rbar)
        for w in np.flatnonzero(~Z):
            lhs = (ps.quicksum(float(LS[k, w]) * th[k] * q[w] for k in range(len(S)))
                   + ps.quicksum(float(market.u[a, w]) * y[a][w] for a in range(m)) - rbar * q[w])
            mdl.addCons(lhs == 0 if pat[w] == MID else lhs >= 0)
        for w in np.flatnonzero(M_):
            mdl.addCons(sl <= q[w])
            mdl.addCons(sl <= float(qbar[w]) - q[w])
        if smin is not None:
            mdl.addCons(sl >= smin)
        wel = ps.quicksum(float(market.v[a, w] + market.u[a, w]) * y[a][w] for a in range(m) for w in range(n)) \
            - rbar * ps.quicksum(q)
        if objective == "slack":
            mdl.setObjective(sl, "maximize")
        else:
            mdl.setObjective(wel, "maximize" if objective == "max" else "minimize")
        mdl.optimize()
        st = mdl.getStatus()
        if st == "userinterrupt":
            raise Stopped(Termination.INTERRUPTED, "interrupted during SCIP")
        if st == "timelimit" and deadline is not None and deadline.expired():
            raise Stopped(Termination.TIME_LIMIT, deadline.message())
        if st in ("infeasible",):
            return None
        if st != "optimal" or mdl.getNSols() == 0:
            raise _Undecided(st)
        sol = mdl.getBestSol()
        return (mdl.getObjVal(), np.array([sol[t] for t in th]), np.array([sol[v] for v in q]),
                np.array([[sol[y[a][w]] for w in range(n)] for a in range(m)]))

    try:
        r = build("slack", None)
        if r is None or r[0] <= SCIP_SLACK_TOL:
            return False
        smax = r[0]
        lo, hi, wit = build("min", 0.0), build("max", 0.0), build("max", 0.5 * smax)
    except _Undecided:
        return None
    if wit is None or lo is None or hi is None:  # pragma: no cover
        return False
    # polish: with the price weights θ fixed the family is linear; the witness comes from HiGHS
    pol = _equilibrium_lp(_cp(), market, G, LS, S, pat, "fixed-price", Amat, rhs, umin, 1e-7, W0, L,
                          piece_values, price=LS.T @ wit[1])
    if pol is None:
        return False
    return EquilibriumPiece(
        pattern=pol.pattern, active=pol.active, kind="bilinear", q=pol.q, zeta=pol.zeta, x=pol.x,
        price=pol.price, welfare=pol.welfare, welfare_min=min(float(lo[0]), pol.welfare),
        welfare_max=max(float(hi[0]), pol.welfare), efficient=pol.efficient,
        all_efficient=bool(min(float(lo[0]), pol.welfare) >= W0 - 1e-6 * max(1.0, abs(W0)) * _scale(market)),
        kkt=pol.kkt)


def _null_direction(A: np.ndarray) -> np.ndarray | None:
    """The nonnegative unit-sum direction spanning ``ker A`` (dim 1), or None."""
    n = A.shape[1]
    if len(A) == 0:
        return None if n != 1 else np.ones(1)
    _, sv, Vt = np.linalg.svd(A)
    d = Vt[-1]
    if np.sum(d) < 0:
        d = -d
    d[np.abs(d) < 1e-12] = 0.0
    if np.any(d < 0) or d.sum() <= 0:
        return None
    return d / d.sum()


__all__ = ["equilibria", "EQUILIBRIA_MAX_N", "SCIP_SLACK_TOL", "SCIP_FAMILY_SECONDS"]
