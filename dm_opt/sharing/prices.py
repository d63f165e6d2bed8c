"""Competitive prices of unilateral sharing (RJ Prop 4.1) and their range (Prop 4.2).

Seller ``j`` charges buyer ``i`` its cost ``c_j(i)`` per unit (per query in §6, eq. 35);
the payments are RJ eq. 6.  :func:`support_prices` checks independently that every
buyer's demand at those prices (solved with ``demand_method``) attains the value of its
bundle in the welfare graph, and computes the largest price ``p_j^max(i)`` of Prop 4.2
at which the bundle stays demanded.  :func:`dm_opt.sharing.welfare.competitive_prices`
is the entry point (it computes the welfare graph when none is given).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Result, Termination
from dm_opt.sharing.buyer import (
    VALUE_TOL,
    BuyerProblem,
    allowed_upper,
    buyer_value,
    check_buyer_method,
    solve_buyer,
    stop_message,
)
from dm_opt.sharing.market import SharingMarket

if TYPE_CHECKING:                                   # annotations only (welfare imports this module)
    from dm_opt.sharing.welfare import WelfareResult


@dataclass(frozen=True)
class PriceResult(Result):
    """Competitive prices (RJ Prop 4.1) and their range (Prop 4.2).

    ``prices[j, i]`` = ``c_j(i)``: what seller ``j`` charges buyer ``i`` per
    unit; ``payments[i]`` = ``t_i`` of RJ eq. 6 (bought − sold);
    ``price_max[j, i]`` = ``p_j^max(i)``: the largest price ``j`` may charge
    ``i`` (others fixed) at which ``i`` still demands its bundle (``inf`` when
    ``i`` buys nothing from ``j``; ``nan`` when a limit stopped the run before it
    was computed exactly); ``demand_ok`` says every buyer's demand at
    ``prices`` (solved independently with ``demand_method``) attains the same
    value as its bundle in ``share`` — so ``share`` is a demand —
    ``demand_values`` being those optimal values (the best values found when
    stopped).  ``demand_ok`` is None when a limit stopped the check before it was
    decided (False is always proven: a strictly better bundle was found).
    ``status`` is ``optimal`` only when the welfare graph is optimal and every
    check finished; ``message`` says what was left undone.  ``objective`` and
    ``bound`` are the welfare of ``share`` and its proven bound (``graph``: the
    :class:`~dm_opt.sharing.welfare.WelfareResult` supported).
    """

    family: ClassVar[str] = "sharing"

    share: np.ndarray
    prices: np.ndarray
    payments: np.ndarray
    price_max: np.ndarray
    demand_ok: bool | None
    demand_values: np.ndarray
    demand_method: str
    utilities: np.ndarray
    status: Termination = Termination.OPTIMAL
    message: str = ""
    objective: float = float("nan")
    bound: float = float("nan")
    seconds: float = 0.0
    graph: WelfareResult | None = None
    time_limit: float | None = None

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.pop("graph", None)                        # its fields are the welfare problem's (share, values, ...)
        return d


def support_prices(market: SharingMarket, welfare: WelfareResult, *, buyer_method: str = "auto",
                   demand_method: str | None = None, tol: float = VALUE_TOL,
                   time_limit: float | Deadline | None = None, start: float | None = None) -> PriceResult:
    """Prices of RJ Prop 4.1 supporting the graph ``welfare``, with the range of Prop 4.2.

    ``p_j^max(i)`` for a seller ``j`` whose ``w*_j ≥ 1`` units buyer ``i``
    takes: raising the per-unit price by ``δ`` lowers bundles with ``k`` units
    of ``j`` by ``δk``; the bundle stays optimal iff
    ``δ (w*_j − k) ≤ φ* − max_{x: x_j = k} φ(x)`` for every ``k < w*_j``, so
    ``p^max = c_j(i) + min_k (φ* − φ*_{x_j=k}) / (w*_j − k)`` (buyer problems solved
    with ``buyer_method``).

    ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`); on expiry
    or Ctrl-C the result says what is proven: ``demand_ok`` False (a violation was found)
    or None (undecided), ``price_max`` ``nan`` where not computed exactly, and a
    non-optimal ``status``.  Prop 4.1's prices support the welfare-maximising graph; for a
    graph that is not proven optimal (``welfare.status``) the status says so.
    """
    t0 = time.perf_counter() if start is None else start
    dl = Deadline.of(time_limit)
    if welfare.exclude_agent is not None or welfare.quality != 1.0:
        raise ProblemError("competitive prices are defined for the undistorted welfare graph with every agent")
    method = check_buyer_method(market, buyer_method)
    N = market.n
    C = market.cost_matrix()
    share = np.asarray(welfare.share)
    prices = C.copy()
    payments = (share * C).sum(axis=0) - (share * C).sum(axis=1)          # eq. 6
    if demand_method is None:
        demand_method = {"enumerate": "bnb" if market.family == "power" else "enumerate",
                         "bnb": "milp", "milp": "bnb"}.get(welfare.method, "enumerate")
    demand_method = check_buyer_method(market, demand_method)
    dvals = np.full(N, np.nan)
    pmax = np.full((N, N), np.inf)
    np.fill_diagonal(pmax, np.nan)
    for i in range(N):
        pmax[np.flatnonzero(share[:, i]), i] = np.nan        # filled below when computed exactly
    violated = False
    decided = 0
    pmax_done = 0
    pmax_total = int(np.count_nonzero(share))
    stop = None
    limited = None                                            # a buyer problem stopped at a node/round limit
    if welfare.status is Termination.INTERRUPTED:
        stop = Termination.INTERRUPTED
    try:
        for i in range(N) if stop is None else ():
            if dl.expired():
                stop = Termination.TIME_LIMIT
                break
            d = solve_buyer(market, BuyerProblem(i, prices[:, i].copy(), allowed_upper(market, i)), demand_method,
                            time_limit=dl)
            dvals[i] = d.value
            mine = buyer_value(market, i, share[:, i], prices[:, i])
            if d.value > mine + tol * max(1.0, abs(mine)):
                violated = True                                   # a strictly better bundle: proven
                decided += 1
            elif d.status is Termination.OPTIMAL or d.bound <= mine + tol * max(1.0, abs(mine)):
                decided += 1
            if d.status in (Termination.TIME_LIMIT, Termination.INTERRUPTED):
                stop = d.status
                break
            if d.status is not Termination.OPTIMAL:
                limited = limited or d.status
        for i in range(N) if stop is None else ():
            phi_star = buyer_value(market, i, share[:, i], prices[:, i])
            for j in np.flatnonzero(share[:, i]):
                w = int(share[j, i])
                best = np.inf
                exact = True
                for k in range(w):
                    if dl.expired():
                        stop = Termination.TIME_LIMIT
                        break
                    alt = solve_buyer(market, BuyerProblem(i, prices[:, i].copy(), allowed_upper(market, i),
                                                           fixed=((int(j), k),)), method, time_limit=dl)
                    if alt.status is not Termination.OPTIMAL:
                        exact = False
                        if alt.status in (Termination.TIME_LIMIT, Termination.INTERRUPTED):
                            stop = alt.status
                            break
                        limited = limited or alt.status
                    best = min(best, (phi_star - alt.value) / (w - k))
                if stop is not None:
                    break
                if exact:
                    pmax[j, i] = C[j, i] + max(best, 0.0)
                    pmax_done += 1
            if stop is not None:
                break
    except KeyboardInterrupt:
        stop = Termination.INTERRUPTED
    ok = False if violated else (True if decided == N else None)
    util = market.agent_values(share) - payments
    notes = []
    if stop is not None:
        notes.append(stop_message(stop, f"{decided} of {N} demand checks and {pmax_done} of {pmax_total} "
                                  "price maxima (Prop 4.2)"))
    if welfare.status is not Termination.OPTIMAL:
        notes.append(f"the sharing graph is not proven welfare-maximising (welfare status {welfare.status})")
    if stop is None and pmax_done < pmax_total:
        notes.append("some price maxima are nan: a buyer problem stopped at a limit")
    if stop is None and ok is None:
        notes.append("some demand checks are undecided: a buyer problem stopped at a limit")
    if stop is not None:
        status = stop
    elif welfare.status is not Termination.OPTIMAL:
        status = welfare.status
    elif ok is None or pmax_done < pmax_total:
        status = limited or Termination.FEASIBLE
    else:
        status = Termination.OPTIMAL
    return PriceResult(share, prices, payments, pmax, ok, dvals, demand_method, util, status, "; ".join(notes),
                       float(welfare.welfare), float(welfare.bound), time.perf_counter() - t0, welfare,
                       dl.time_limit)


__all__ = ["PriceResult", "support_prices"]
