"""The linear pieces of ``V`` (``V(q) = min_k λ^k·q``), found exactly for small ``|Ω|``
(vertex enumeration of the regions of ``min_{λ∈Λ} λ·q`` on the simplex; see
:mod:`dm_opt.info_design.lp`)."""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import linprog
from scipy.spatial import HalfspaceIntersection, QhullError

from dm_opt.core.errors import LimitExceeded, SolverFailed
from dm_opt.core.limits import Deadline, Stopped
from dm_opt.core.result import Termination, frozen_array
from dm_opt.info_design import bbm
from dm_opt.info_design.common import PIECES_MAX_N, _scale
from dm_opt.info_design.lp.platform import PlatformLP, _platform_method
from dm_opt.info_design.market import InfoDesignMarket
from dm_opt.info_design.results import PlatformSolution, ValuePieces


def _region_vertices(L: np.ndarray, k: int, tol: float) -> np.ndarray | None:
    """Vertices of ``{q ∈ simplex : (λ^k − λ^j)·q ≤ 0 ∀j}`` (None if not full-dimensional)."""
    n = L.shape[1]
    others = np.delete(L, k, axis=0) - L[k]            # rows: (λ^j − λ^k); need ≥ 0 at q
    if n == 1:
        return np.ones((1, 1))
    # coordinates z = q[:n-1], q[n-1] = 1 − Σ z;  constraint  c·q ≥ 0 → −c[:-1]·z + c[-1]Σz ≤ c[-1]... write A z ≤ b
    A_list, b_list = [], []
    # q_i ≥ 0
    A_list.append(-np.eye(n - 1))
    b_list.append(np.zeros(n - 1))
    A_list.append(np.ones((1, n - 1)))
    b_list.append(np.ones(1))
    if len(others):
        # c·q = c[:-1]·z + c[-1](1 − Σz) ≥ 0  ⇔  −(c[:-1] − c[-1])·z ≤ c[-1]
        A_list.append(-(others[:, :-1] - others[:, -1:]))
        b_list.append(others[:, -1])
    A = np.vstack(A_list)
    b = np.concatenate(b_list)
    norms = np.linalg.norm(A, axis=1)
    keep = norms > 1e-14
    if np.any(~keep & (b < -tol)):
        return None
    A, b, norms = A[keep], b[keep], norms[keep]
    if n == 2:
        lo, hi = 0.0, 1.0
        for a_, b_ in zip(A[:, 0], b, strict=True):
            if a_ > 0:
                hi = min(hi, b_ / a_)
            elif a_ < 0:
                lo = max(lo, b_ / a_)
        if hi - lo <= tol:
            return None
        return np.array([[lo, 1 - lo], [hi, 1 - hi]])
    # Chebyshev centre for an interior point
    res = linprog(np.r_[np.zeros(n - 1), -1.0], A_ub=np.c_[A, norms], b_ub=b,
                  bounds=[(None, None)] * (n - 1) + [(0, 1)], method="highs")
    if res.status != 0 or res.x[-1] <= tol:
        return None
    try:
        hs = HalfspaceIntersection(np.c_[A, -b], res.x[:-1])
    except QhullError:
        # degenerate arrangements (many halfspaces through one vertex): joggled input;
        # vertices move by ~1e-11, far below the 1e-6 test tolerance used on V
        hs = HalfspaceIntersection(np.c_[A, -b], res.x[:-1], qhull_options="QJ")
    Z = hs.intersections
    Q = np.c_[Z, 1 - Z.sum(axis=1)]
    return np.clip(Q, 0.0, None)


def value_pieces(market: InfoDesignMarket, *, platform: PlatformLP | None = None,
                 max_n: int = PIECES_MAX_N, max_rounds: int = 10_000, method: str = "auto",
                 time_limit=None) -> ValuePieces:
    """Every linear piece of ``V`` (exact up to LP tolerances), for ``|Ω| ≤ max_n``.

    ``method="bbm"`` (auto when it applies and no ``platform`` is given) returns
    the closed-form pieces (:func:`dm_opt.info_design.bbm.value_pieces`) for any ``|Ω|``.
    Otherwise (``"lp"``), the algorithm of the module docstring: start from the
    duals at the simplex vertices and barycentre; repeatedly enumerate the
    vertices of each region of ``V_Λ = min_{λ∈Λ} λ·q`` on the simplex and add
    the LP dual wherever ``V < V_Λ``.  Terminates because LP duals are basic
    (finitely many).  ``time_limit`` (seconds or a shared Deadline) and Ctrl-C
    stop the search with the pieces found so far (``status`` says why).
    """
    if _platform_method(market, method if platform is None else "lp") == "bbm":
        return bbm.value_pieces(market)
    if market.n > max_n:
        raise LimitExceeded(f"piece enumeration is for |Ω| ≤ {max_n} (got {market.n}); "
                            f"use method='milp' for constrained efficiency")
    dl = Deadline.of(time_limit)
    t0 = time.perf_counter()
    plat = platform or PlatformLP(market)
    n = market.n
    tol = 1e-6 * _scale(market)
    cache: dict[bytes, PlatformSolution] = {}
    solves = 0

    def solve_at(q):
        nonlocal solves
        key = np.round(q, 12).tobytes()
        if key not in cache:
            dl.check()
            s = plat.solve(q, time_limit=dl)
            if s.status is not Termination.OPTIMAL:
                raise Stopped(s.status, "P_q stopped")
            cache[key] = s
            solves += 1
        return cache[key]

    L: list[np.ndarray] = []

    def add(lam) -> bool:
        for l in L:
            if np.max(np.abs(l - lam)) <= tol:
                return False
        L.append(np.asarray(lam, float))
        return True

    status = Termination.OPTIMAL
    try:
        for q in list(np.eye(n)) + [np.full(n, 1.0 / n)]:
            add(solve_at(q).supergradient)
        for _ in range(max_rounds):
            changed = False
            Lm = np.array(L)
            for k in range(len(Lm)):
                verts = _region_vertices(Lm, k, 1e-10)
                if verts is None:
                    continue
                for qv in verts:
                    s = solve_at(qv)
                    if s.value < float(Lm[k] @ qv) - tol:
                        changed |= add(s.supergradient)
            if not changed:
                break
        else:  # pragma: no cover
            raise SolverFailed("value_pieces: no convergence")
    except Stopped as stop:
        status = stop.status
    except KeyboardInterrupt:
        status = Termination.INTERRUPTED
    if not L:
        return ValuePieces(frozen_array(np.zeros((0, n))), solves, time.perf_counter() - t0, status)
    Lm = np.array(L)
    if status is not Termination.OPTIMAL:     # no time for the pruning below: keep every dual found
        order = np.lexsort(Lm.T[::-1])
        return ValuePieces(frozen_array(Lm[order]), solves, time.perf_counter() - t0, status)
    keep = [k for k in range(len(Lm)) if _region_vertices(Lm, k, 1e-9) is not None]
    G = Lm[keep]
    order = np.lexsort(G.T[::-1])
    return ValuePieces(frozen_array(G[order]), solves, time.perf_counter() - t0, status)


__all__ = ["value_pieces"]
