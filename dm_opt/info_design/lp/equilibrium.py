"""Competitive equilibria of the GLP economy (Definition (a)–(d)), enumerated as families by
(supply pattern × face of ``V``), each described exactly by an LP where it is linear."""

from __future__ import annotations

import heapq
import itertools
import numbers
import time

import numpy as np
from scipy.optimize import linprog

from dm_opt.core.errors import LimitExceeded, ProblemError
from dm_opt.core.limits import Deadline, Stopped
from dm_opt.core.result import Termination, frozen_array
from dm_opt.info_design.common import PIECES_MAX_N, _scale, mechanism_from_y, obedience_matrix
from dm_opt.info_design.lp._cvxpy import _cp, _solve
from dm_opt.info_design.lp.efficiency import constrained_efficiency
from dm_opt.info_design.lp.pieces import value_pieces
from dm_opt.info_design.lp.platform import _platform_method
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
#: Largest |Ω| for :func:`equilibria` (``enumeration="cells"``, with the closed form of V; LP-found
#: pieces stop at ``PIECES_MAX_N``).  Why it stops there: the search is over up to ``3^|Ω|`` supply
#: patterns inside each of up to ``2^|Ω| − 1`` cells of V (slides' merchant); the LP relaxations cut
#: most of them, but nothing bounds the tree (or a bilinear family's branch-and-bound) polynomially.
#: Measured CPU seconds per instance in docs/info_design.md ("Conventions and limits").
#: ``max_n=`` raises the limit at the caller's risk.
EQUILIBRIA_MAX_N = 8
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
               max_n: int | None = None, bilinear: str = "auto", enumeration: str = "auto",
               time_limit=None) -> EquilibriaResult:
    """Every competitive equilibrium of a small economy (GLP Definition (a)–(d)).

    An equilibrium is ``q* = ζ* q̄``, ``x*`` optimal in ``P_{q*}``,
    ``p* ∈ ∂V(q*)`` (zero profit and optimality of ``q*`` for the platform,
    module docstring) and consumers' optimality: ``p*(ω) + U(ω,x*) ≥ r̄`` if
    ``q*(ω) > 0`` and ``≤ r̄`` if ``q*(ω) < q̄(ω)``.

    ``∂V(q) = conv{λ^k optimal at q} + cone{e_ω : q(ω) = 0}``.  The face enumeration
    (``enumeration="faces"``) goes over the faces ``S`` (sets of gradients jointly optimal somewhere) and the
    supply patterns (none/some/all per type), and describe each combination
    exactly by one LP when it is linear: the price is fixed on every selling
    type (``|S| = 1`` or the gradients agree there), or the database is
    pinned down by the pattern, or the database moves on a ray (homogeneity of
    degree one lets us divide by its length).  Other combinations (only
    possible for ``|Ω| ≥ 3``) have bilinear terms ``θ_k q(ω)`` (price weights ×
    database); with ``bilinear="scip"`` (``"auto"``: when pyscipopt is
    installed; ``"none"``: never) they are decided by SCIP's spatial branch-and-bound (global
    optimum of the interior slack, so emptiness is decided up to SCIP's
    feasibility tolerance 1e-6; their welfare range is over the closure of the
    family); otherwise they are reported as ``undecided``.

    Convention for non-selling types (``q*(ω) = 0``): ``P_{q*}`` leaves
    ``x*(·|ω)`` free, so the consumer condition uses the most favourable
    choice for not selling, ``U = min_a u(a,ω)`` (the slides use ``U*(2) = 0``
    in the no-trade equilibrium of the two-type example), and the smallest
    price in ``∂V`` for that coordinate (raising ``p(ω)`` along ``e_ω`` only
    attracts sellers).

    ``enumeration``: ``"cells"`` (``"auto"``) enumerates the cells of V exactly (the set ``S`` of
    pieces optimal at ``q`` is exactly ``S``, so every equilibrium lies in one family) and, inside
    each cell, the supply patterns depth first, cutting a partial pattern whose LP relaxation
    (McCormick envelopes of ``p(ω) q(ω)``; unassigned types unconstrained) has no interior point;
    a surviving family is decided by one LP when every product ``p(ω) q(ω)`` is linear (the price is
    constant on ``ω`` over the cell, or ``q(ω)`` is pinned by the pattern and the cell), otherwise by
    a McCormick branch-and-bound on HiGHS LPs (:func:`_cell_bnb`; emptiness up to
    :data:`SCIP_SLACK_TOL`, as for SCIP; a family not settled within :data:`BILINEAR_MAX_NODES`
    nodes is listed as undecided).  For ``|Ω| ≤`` :data:`EQUILIBRIA_MAX_N` with the closed form of V
    (slides' merchant, ``Ω ⊆ A``), ``≤ PIECES_MAX_N`` otherwise.  ``"faces"`` (``"auto"`` with
    ``bilinear="scip"``/``"scip-all"``) is the (supply pattern × face) enumeration above, for
    ``|Ω| ≤`` :data:`EQUILIBRIA_FACES_MAX_N`.  ``max_n`` raises either limit at your own risk.

    ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`) and
    Ctrl-C stop the enumeration between LPs; the
    families found so far are returned with ``complete=False`` and the status.
    """
    if not isinstance(enumeration, str) or enumeration not in ("auto", "cells", "faces"):
        raise ProblemError(f"enumeration={enumeration!r}: use 'auto', 'cells' or 'faces'")
    # checked here, not where used: a misspelt bilinear used to fall through to the HiGHS path silently
    if not isinstance(bilinear, str) or bilinear not in ("auto", "scip", "scip-all", "none"):
        raise ProblemError(f"bilinear={bilinear!r}: use 'auto', 'scip', 'scip-all' or 'none'")
    if max_n is not None and (isinstance(max_n, bool) or not isinstance(max_n, numbers.Integral) or max_n < 1):
        raise ProblemError(f"max_n must be a positive integer (a limit on |Ω|), got {max_n!r}")
    if enumeration == "auto":
        enumeration = "faces" if bilinear in ("scip", "scip-all") else "cells"
    if enumeration == "faces":
        limit = EQUILIBRIA_FACES_MAX_N if max_n is None else max_n
        if market.n > limit:
            raise LimitExceeded(f"equilibrium enumeration is for |Ω| ≤ {limit} (got {market.n}) with "
                                f"enumeration='faces': it solves one LP per (supply pattern, face of V) "
                                f"combination, 3^|Ω| patterns × up to 2^|Ω| − 1 faces (EQUILIBRIA_FACES_MAX_N; "
                                f"enumeration='cells' goes further; max_n= raises it at your own risk)")
    else:
        limit = EQUILIBRIA_MAX_N if max_n is None else max_n
        if market.n > limit:
            raise LimitExceeded(
                f"equilibrium enumeration is for |Ω| ≤ {limit} (got {market.n}): it searches the supply patterns "
                f"(3^|Ω|) inside every cell of V (up to 2^|Ω| − 1 for the slides' merchant), and the measured time "
                f"grows about 6-fold per type (EQUILIBRIA_MAX_N, docs/info_design.md; max_n= raises it at your "
                f"own risk)")
        if pieces is None and max_n is None and _platform_method(market, "auto") != "bbm" \
                and market.n > PIECES_MAX_N:
            raise LimitExceeded(
                f"equilibrium enumeration without the closed form of V is for |Ω| ≤ {PIECES_MAX_N} (got "
                f"{market.n}): the pieces of V are then found by vertex enumeration (PIECES_MAX_N) before the "
                f"supply patterns are searched; the closed form (slides' merchant, Ω ⊆ A) goes to "
                f"|Ω| ≤ {EQUILIBRIA_MAX_N}")
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
    if enumeration == "cells":
        return _cells_result(market, L, eff, dl, t0)
    cp = _cp()
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


def _cells_result(market, L, eff, dl, t0) -> EquilibriaResult:
    """:func:`equilibria` with ``enumeration="cells"`` (the enumeration is :func:`_cells_equilibria`)."""
    found, undecided, done = [], [], [0]
    status = Termination.OPTIMAL
    faces = _faces(L, 1e-9)
    total = len(faces)
    try:
        _cells_equilibria(market, L, faces, eff, dl, found, undecided, done)
    except Stopped as stop:
        status = stop.status
    except KeyboardInterrupt:
        status = Termination.INTERRUPTED
    stopped = status is not Termination.OPTIMAL
    msg = (f"stopped ({status}) after {done[0]} of {total} cells of V (the supply patterns of the others "
           f"were not searched)") if stopped else ""
    if undecided and not stopped:
        status = Termination.FEASIBLE
        msg = (f"{len(undecided)} bilinear (supply pattern, cell) families were not settled within "
               f"BILINEAR_MAX_NODES branch-and-bound nodes (listed in 'undecided'); the families listed are "
               f"genuine equilibria")
    return EquilibriaResult(tuple(found), eff.welfare, not undecided and not stopped, tuple(undecided), L,
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
    return _make_piece(market, pat, S, kind, qv, yv, pv, wmin, wmax, W0, L, piece_values)


def _make_piece(market, pat, S, kind, qv, yv, pv, wmin, wmax, W0, L, piece_values) -> EquilibriumPiece:
    """The :class:`EquilibriumPiece` of a family from its witness ``(q, y, p)`` and welfare range:
    the witness' welfare, mechanism, ``ζ = q/q̄``, efficiency against ``W°`` and the slides' KKT test."""
    qbar, rbar = market.prior, market.reservation
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


# ----------------------------------------------------------------------------- exact cells
#: Largest |Ω| of the (supply pattern × face of V) enumeration, ``enumeration="faces"``
#: (``6^|Ω|`` cvxpy LPs for the slides' merchant: 90 s at |Ω| = 4).
EQUILIBRIA_FACES_MAX_N = 4
#: A family decided by one exact LP is nonempty when its largest interior slack exceeds this.
CELL_SLACK_TOL = 1e-9
#: Nodes of the McCormick branch-and-bound allowed per bilinear family and question (nonempty?,
#: welfare max, welfare min); a question not settled within them leaves the family undecided.
BILINEAR_MAX_NODES = 400


class _CellData:
    """What every node LP of :func:`_cells_equilibria` shares: dense obedience rows ``G``,
    ``v``, ``u + v`` and the pieces ``L`` of V (rows ``λ^k``)."""

    def __init__(self, market: InfoDesignMarket, L: np.ndarray):
        self.market, self.L = market, L
        self.n, self.m = market.n, market.m
        G, _ = obedience_matrix(market)
        self.G = G.toarray() if G.shape[0] else np.zeros((0, market.m * market.n))
        self.qbar, self.rbar = market.prior, market.reservation
        self.umin, self.umax = market.u.min(axis=0), market.u.max(axis=0)
        self.scale = _scale(market)
        self.wcoef = (market.v + market.u).ravel()
        self.lps = 0


def _cell_lp(d: _CellData, S, pat, box, obj: str = "slack", smin=None, theta=None):
    """One LP over the family (cell ``S`` of V, supply pattern ``pat``), with the products
    ``r(ω) = p(ω) q(ω)`` of the sellers replaced by their McCormick envelope over ``box``.

    Variables ``(θ ∈ Δ_S, q, y, r, s)``; the price is ``p = Σ_k θ_k λ^k``.  Rows: record counts,
    obedience, ``Σ v y ≥ λ^k·q`` (k ∈ S: y optimal and every λ^k ∈ ∂V(q)), ``λ^k·q = λ^{k0}·q``
    (k ∈ S), the cell's strict rows ``(λ^l − λ^{k0})·q/scale ≥ s`` (l ∉ S: ``S`` is exactly the set
    of pieces optimal at q), the interior rows ``s ≤ q(ω) ≤ q̄(ω) − s`` of partial sellers, and
    the consumer conditions of the assigned types (``pat[ω] < 0``: not yet assigned, no condition).
    ``box = (pl, pu, ql, qu)``: ``pl ≤ p(ω) ≤ pu`` and ``ql ≤ q(ω) ≤ qu`` on the sellers; where one
    of the two intervals is a point the envelope is exact.  ``obj``: ``"slack"`` (max s),
    ``"wmax"``/``"wmin"`` (welfare ``Σ(v+u)y − r̄Σq``, in the max sense: ``wmin`` returns its
    negative) with ``s ≥ smin`` (the family's closure for ``smin = 0``).  ``theta`` fixes the
    price weights.  Returns ``(value, x)`` or ``(None, None)`` if infeasible.
    """
    n, m = d.n, d.m
    S = list(S)
    k = len(S)
    LS = d.L[S]
    Z, M_, F = pat == ZERO, pat == MID, pat == FULL
    pl, pu = box[0], box[1]
    ql = np.where(F, d.qbar, np.where(Z, 0.0, box[2]))
    qu = np.where(F, d.qbar, np.where(Z, 0.0, box[3]))
    mn = m * n
    th, qo, yo, ro, so = 0, k, k + n, k + n + mn, k + 2 * n + mn
    N = so + 1
    sell = M_ | F
    eq, beq, ub, bub = [], [], [], []
    r = np.zeros((1, N))
    r[0, th:th + k] = 1.0
    eq.append(r)
    beq.append([1.0])
    rec = np.zeros((n, N))
    rec[np.arange(n), qo + np.arange(n)] = -1.0
    for a in range(m):
        rec[np.arange(n), yo + a * n + np.arange(n)] = 1.0
    eq.append(rec)
    beq.append(np.zeros(n))
    if k > 1:
        ce = np.zeros((k - 1, N))
        ce[:, qo:qo + n] = (LS[1:] - LS[0]) / d.scale
        eq.append(ce)
        beq.append(np.zeros(k - 1))
    if len(d.G):
        ob = np.zeros((len(d.G), N))
        ob[:, yo:yo + mn] = -d.G
        ub.append(ob)
        bub.append(np.zeros(len(d.G)))
    opt = np.zeros((k, N))
    opt[:, qo:qo + n] = LS / d.scale
    opt[:, yo:yo + mn] = -d.market.v.ravel() / d.scale
    ub.append(opt)
    bub.append(np.zeros(k))
    others = np.setdiff1d(np.arange(len(d.L)), S)
    if len(others):
        st = np.zeros((len(others), N))
        st[:, qo:qo + n] = -(d.L[others] - LS[0]) / d.scale
        st[:, so] = 1.0
        ub.append(st)
        bub.append(np.zeros(len(others)))
    for w in np.flatnonzero(Z):               # non-sellers: smallest price in ∂V, U = min_a u
        r = np.zeros((1, N))
        r[0, th:th + k] = LS[:, w]
        ub.append(r)
        bub.append([d.rbar - d.umin[w]])
    for w in np.flatnonzero(sell):
        lam = LS[:, w]
        c = np.zeros((1, N))                  # r + Σ_a u y − r̄ q  (= 0 partial, ≥ 0 full)
        c[0, ro + w] = 1.0
        c[0, yo + np.arange(m) * n + w] = d.market.u[:, w]
        c[0, qo + w] = -d.rbar
        if M_[w]:
            eq.append(c)
            beq.append([0.0])
            s2 = np.zeros((2, N))
            s2[:, so] = 1.0
            s2[0, qo + w], s2[1, qo + w] = -1.0, 1.0
            ub.append(s2)
            bub.append([0.0, d.qbar[w]])
        else:
            ub.append(-c)
            bub.append([0.0])
        mc = np.zeros((6, N))                 # McCormick envelope of r = p q, and pl ≤ p ≤ pu
        a_, b_ = (pl[w], pu[w]), (ql[w], qu[w])
        mc[0, ro + w], mc[0, qo + w], mc[0, th:th + k] = -1.0, a_[0], b_[0] * lam
        mc[1, ro + w], mc[1, qo + w], mc[1, th:th + k] = -1.0, a_[1], b_[1] * lam
        mc[2, ro + w], mc[2, qo + w], mc[2, th:th + k] = 1.0, -a_[1], -b_[0] * lam
        mc[3, ro + w], mc[3, qo + w], mc[3, th:th + k] = 1.0, -a_[0], -b_[1] * lam
        mc[4, th:th + k], mc[5, th:th + k] = lam, -lam
        ub.append(mc)
        bub.append([a_[0] * b_[0], a_[1] * b_[1], -a_[1] * b_[0], -a_[0] * b_[1], a_[1], -a_[0]])
    lo, hi = np.zeros(N), np.full(N, np.inf)
    hi[th:th + k] = 1.0
    if theta is not None:
        lo[th:th + k] = hi[th:th + k] = theta
    lo[qo:qo + n], hi[qo:qo + n] = ql, qu
    lo[ro:ro + n][sell], hi[ro:ro + n][~sell] = -np.inf, 0.0
    lo[so], hi[so] = (-np.inf if smin is None else smin), 1.0
    cost = np.zeros(N)
    if obj == "slack":
        cost[so] = -1.0
    else:
        sgn = -1.0 if obj == "wmax" else 1.0
        cost[yo:yo + mn] = sgn * d.wcoef
        cost[qo:qo + n] = -sgn * d.rbar
    d.lps += 1
    res = linprog(cost, A_ub=np.vstack(ub), b_ub=np.concatenate([np.ravel(b) for b in bub]),
                  A_eq=np.vstack(eq), b_eq=np.concatenate([np.ravel(b) for b in beq]),
                  bounds=np.c_[lo, np.where(np.isinf(hi), None, hi)], method="highs")
    if res.status != 0:
        return None, None
    return -float(res.fun), res.x


def _cell_parts(d: _CellData, S, x):
    """``(θ, q, y, r, s)`` of an LP solution of :func:`_cell_lp`."""
    n, m, k = d.n, d.m, len(S)
    q = x[k:k + n]
    y = x[k + n:k + n + m * n].reshape(m, n)
    return x[:k], q, y, x[k + n + m * n:k + 2 * n + m * n], x[-1]


def _cell_bnb(d: _CellData, S, pat, box, obj, smin, dl, *, stop_above=None, gap=0.0):
    """Spatial branch-and-bound (McCormick envelopes, HiGHS LPs) for ``max obj`` over one family.

    Every node LP of :func:`_cell_lp` is a relaxation (its value bounds the family's above); a
    lower bound comes from two exact LPs per node, the price weights θ fixed (or the database of the
    sellers fixed) at the node solution.  A node whose envelope is tight at its solution is solved.
    Branches on the seller with the largest envelope error, halving the wider (relative) of its price
    and quantity interval.  ``stop_above``: stop as soon as the exact value exceeds it (a witness),
    or when the bound falls to it (none above it).  Returns ``(decided, value, x, bound)``: ``value``,
    ``x`` the best exact point (``-inf``, None if none), ``bound`` the proven upper bound;
    ``decided`` False when :data:`BILINEAR_MAX_NODES` ran out first."""
    v0, x0 = _cell_lp(d, S, pat, box, obj, smin)
    if v0 is None:
        return True, -np.inf, None, -np.inf
    LS = d.L[list(S)]
    sell = np.flatnonzero((pat == MID) | (pat == FULL))
    width0 = [np.maximum(box[1] - box[0], 1e-300), np.maximum(box[3] - box[2], 1e-300)]
    best, bx = -np.inf, None
    cut = -np.inf                                    # largest bound of a node dropped without a split
    heap = [(-v0, 0, box, x0)]
    count, nodes = 1, 0
    floor = -np.inf if stop_above is None else stop_above
    while heap:
        negub, _, b, x = heapq.heappop(heap)
        if -negub <= max(best + gap, floor):
            return True, best, bx, max(best, cut, -negub)
        if nodes >= BILINEAR_MAX_NODES:
            heapq.heappush(heap, (negub, -1, b, x))
            return False, best, bx, -heap[0][0]
        dl.check()
        nodes += 1
        th, q, _, rr, _ = _cell_parts(d, S, x)
        p = LS.T @ th
        err = np.abs(rr[sell] - p[sell] * q[sell])
        if not len(sell) or err.max(initial=0.0) <= 1e-12 * d.scale:
            if -negub > best:                        # the envelope is exact at this solution
                best, bx = -negub, x
        else:
            tfix = np.clip(th, 0.0, None)
            tfix /= tfix.sum()
            pf = LS.T @ tfix
            fixed_p = (pf.copy(), pf.copy(), b[2], b[3])
            fixed_q = (b[0], b[1], np.clip(q, b[2], b[3]), np.clip(q, b[2], b[3]))
            for bb, theta in ((fixed_p, tfix), (fixed_q, None)):
                val, xe = _cell_lp(d, S, pat, bb, obj, smin, theta)
                if val is not None and val > best:
                    best, bx = val, xe
        if stop_above is not None and best > stop_above:
            return True, best, bx, max(best, cut, -negub)
        if not len(sell) or err.max(initial=0.0) <= 1e-12 * d.scale:
            continue
        if -negub <= max(best + gap, floor):
            cut = max(cut, -negub)
            continue
        w = sell[int(np.argmax(err))]
        rel_p = (b[1][w] - b[0][w]) / width0[0][w]
        rel_q = (b[3][w] - b[2][w]) / width0[1][w]
        j = 0 if rel_p >= rel_q else 2
        mid = 0.5 * (b[j][w] + b[j + 1][w])
        for side in (0, 1):
            nb = [a.copy() for a in b]
            nb[j + 1 - side][w] = mid
            val, xc = _cell_lp(d, S, pat, tuple(nb), obj, smin)
            if val is not None and val > max(best + gap, floor):
                count += 1
                heapq.heappush(heap, (-val, count, tuple(nb), xc))
            elif val is not None:
                cut = max(cut, val)
    return True, best, bx, max(best, cut)


def _pinned(d: _CellData, S, pat) -> np.ndarray:
    """Coordinates of ``q`` fixed by the family's linear equalities (``q_Z = 0``, ``q_F = q̄_F``,
    ``(λ^k − λ^{k0})·q = 0``): those where every vector of the null space of the rows is zero."""
    LS = d.L[list(S)]
    rows = [np.eye(d.n)[w] for w in np.flatnonzero((pat == ZERO) | (pat == FULL))]
    rows += [LS[i] - LS[0] for i in range(1, len(S))]
    if not rows:
        return np.zeros(d.n, bool)
    A = np.array(rows)
    _, sv, Vt = np.linalg.svd(A)
    rank = int(np.sum(sv > 1e-9 * max(1.0, sv.max(initial=0.0))))
    Nul = Vt[rank:]
    return np.all(np.abs(Nul) <= 1e-9, axis=0) if len(Nul) else np.ones(d.n, bool)


def _cell_family(d: _CellData, S, pat, xroot, eff, dl):
    """Decide one leaf family (cell ``S``, full pattern ``pat``) and describe it.

    Returns an :class:`EquilibriumPiece`, ``False`` (empty) or ``None`` (undecided: the
    branch-and-bound of a bilinear family ran out of nodes)."""
    market = d.market
    LS = d.L[list(S)]
    M_ = pat == MID
    varying = np.ptp(LS, axis=0) > 1e-12 * d.scale
    pl, pu = LS.min(axis=0), LS.max(axis=0)
    ql, qu = np.zeros(d.n), d.qbar.astype(float).copy()
    ql[pat == FULL] = d.qbar[pat == FULL]
    qr = _cell_parts(d, S, xroot)[1]
    pin = _pinned(d, S, pat) & M_ & varying
    ql[pin] = qu[pin] = np.clip(qr[pin], 0.0, d.qbar[pin])   # the family's only value there
    bil = M_ & varying & ~pin
    box = (pl, pu, ql, qu)
    if not bil.any():                         # every product p(ω) q(ω) is linear: one exact LP decides
        kind, tol = "linear", CELL_SLACK_TOL
        smax, xs = _cell_lp(d, S, pat, box, "slack")
        if smax is None or smax <= tol:
            return False
    else:
        kind, tol = "bilinear", SCIP_SLACK_TOL
        done, smax, xs, _ = _cell_bnb(d, S, pat, box, "slack", None, dl, stop_above=tol)
        if not done:
            return None
        if smax <= tol:
            return False
    theta = np.clip(_cell_parts(d, S, xs)[0], 0.0, None)
    theta /= theta.sum()
    price = LS.T @ theta
    fixed = (price, price, ql, qu)
    # the witness: the price weights of the found point, welfare maximal with half its interior slack
    sw, _ = _cell_lp(d, S, pat, fixed, "slack", None, theta)
    val, xw = _cell_lp(d, S, pat, fixed, "wmax", 0.5 * max(sw if sw is not None else smax, 0.0), theta)
    if val is None:                           # pragma: no cover - the slack LP just found a point
        val, xw = _cell_lp(d, S, pat, fixed, "wmax", 0.0, theta)
    gap = 1e-6 * max(1.0, abs(eff.welfare)) * d.scale
    rng = []
    for obj in ("wmax", "wmin"):
        ok, _, _, bound = _cell_bnb(d, S, pat, box, obj, 0.0, dl, gap=gap)
        if not ok:
            return None
        rng.append(bound if obj == "wmax" else -bound)    # proven: the range contains the family's
    _, qv, yv, _, _ = _cell_parts(d, S, xw)
    qv = np.clip(qv, 0.0, d.qbar)
    yv = np.clip(yv, 0.0, None)
    wv = float(np.sum((market.v + market.u) * yv) - d.rbar * qv.sum())
    return _make_piece(market, pat, S, kind, qv, yv, price, min(rng[1], wv), max(rng[0], wv), eff.welfare,
                       d.L, eff.piece_values)


def _cell_search(d: _CellData, S, choices, dl):
    """Depth-first search over supply patterns inside the cell ``S``: types are assigned one at a
    time and a partial pattern whose relaxation (:func:`_cell_lp`, envelopes over the whole price and
    quantity ranges, unassigned types unconstrained) has no interior point is cut with all its
    completions.  Returns the full patterns that survive, each with its relaxation solution."""
    n = d.n
    LS = d.L[list(S)]
    lo, hi = LS.min(axis=0), LS.max(axis=0)
    tol = 1e-9 * d.scale
    # per-type necessary conditions (price in [lo, hi], U(ω) in [min u, max u])
    ok = {ZERO: lo + d.umin <= d.rbar + tol,
          MID: (lo + d.umin <= d.rbar + tol) & (hi + d.umax >= d.rbar - tol),
          FULL: hi + d.umax >= d.rbar - tol}
    box = (lo, hi, np.zeros(n), d.qbar.astype(float))
    out = []
    pat = np.full(n, -1)

    def rec(depth):
        dl.check()
        val, x = _cell_lp(d, S, pat, box, "slack")
        if val is None or val <= CELL_SLACK_TOL:
            return
        if depth == n:
            if np.any(pat != ZERO):           # no trade is the one family of the origin (all pieces)
                out.append((pat.copy(), x))
            return
        for c in choices[depth]:
            if ok[c][depth]:
                pat[depth] = c
                rec(depth + 1)
        pat[depth] = -1

    rec(0)
    return out


def _cells_equilibria(market, L, faces, eff, dl, found, undecided, done) -> None:
    """The exact-cell enumeration of :func:`equilibria` (``enumeration="cells"``): for every cell
    ``S`` of V (set of pieces optimal together, exactly), the supply patterns surviving
    :func:`_cell_search`, each decided by :func:`_cell_family`; the no-trade family at the origin
    (every piece optimal) separately.  Appends to ``found``/``undecided`` (``done[0]`` counts cells)."""
    d = _CellData(market, L)
    n, K = market.n, len(L)
    choices = [(ZERO,) if d.qbar[w] <= 0 else (ZERO, MID, FULL) for w in range(n)]
    zero = np.full(n, ZERO)
    allS = tuple(range(K))
    piece = _cell_family(d, allS, zero, np.zeros(K + 2 * n + market.m * n + 1), eff, dl)
    if piece is not None and piece is not False:
        found.append(piece)
    for S in faces:                          # every candidate cell; _cell_search drops non-cells
        for pat, x in _cell_search(d, S, choices, dl):
            piece = _cell_family(d, S, pat, x, eff, dl)
            if piece is None:
                undecided.append((tuple(int(v) for v in pat), S))
            elif piece is not False:
                found.append(piece)
        done[0] += 1


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


__all__ = ["equilibria", "EQUILIBRIA_MAX_N", "EQUILIBRIA_FACES_MAX_N", "SCIP_SLACK_TOL", "SCIP_FAMILY_SECONDS",
           "CELL_SLACK_TOL", "BILINEAR_MAX_NODES"]
