"""Unilateral sharing: the welfare-maximising directed graph (RJ §4, eq. 11; §6, eq. 35).

With additive costs social welfare decomposes per buyer (RJ eq. 11), so
:func:`welfare_max` solves the buyer problems of :mod:`dm_opt.sharing.buyer` one by one
(``buyer_method=``) under one deadline; :func:`competitive_prices` adds the prices of
RJ Prop 4.1 and the range of Prop 4.2 (:mod:`dm_opt.sharing.prices`).

**Limits and interruption.**  :func:`welfare_max` and :func:`competitive_prices` take one
``time_limit`` (seconds, or a :class:`dm_opt.core.limits.Deadline` shared with a caller:
mechanisms, the CLI) for every buyer problem together and stop cleanly on Ctrl-C
(``KeyboardInterrupt``): the buyers solved so far keep their exact optimum; the others get
a feasible bundle and the proven bound of :func:`~dm_opt.sharing.buyer.buyer_relaxation`,
so the result always carries a feasible graph, a proven ``bound``, ``gap`` and an honest
``status`` (``time_limit``, ``interrupted``; never ``optimal`` unless every buyer was solved
exactly).  After a stop the relaxation bounds are computed for blocks of buyers at once for
at most :data:`~dm_opt.sharing.buyer.RELAXATION_GRACE_SECONDS`, the remaining buyers get the
cruder bound of :func:`~dm_opt.sharing.buyer.buyer_cap`, and HiGHS runs return within two
grace periods of :data:`dm_opt.core.limits.STOP_GRACE_SECONDS`, so a stopped call returns
within its limit plus well under a second — beyond the ``O(N²)`` it takes to assemble an
``N × N`` result at large ``N``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Result, Termination, relative_gap
from dm_opt.sharing.buyer import (
    BUYER_METHODS,
    EXPIRED,
    MILP_GAP_TOL,
    VALUE_TOL,
    BuyerProblem,
    BuyerSolution,
    allowed_upper,
    buyer_relaxation,
    buyer_value,
    merge_options,
    resolve_buyer_method,
    solve_buyer,
    stop_message,
    stopped_bounds,
)
from dm_opt.sharing.market import SharingMarket
from dm_opt.sharing.prices import PriceResult, support_prices

#: The per-buyer algorithms (``buyer_method=``; also accepted as ``method=``).
METHODS = BUYER_METHODS


@dataclass(frozen=True)
class WelfareResult(Result):
    """Welfare-maximising directed sharing graph (RJ eq. 11).

    ``share[j, i]`` units of ``j``'s data received by buyer ``i`` (``S_i^I`` =
    column ``i``); ``welfare`` (also ``objective``) = ``Σ_i V_i`` at ``share``
    (evaluated exactly with :func:`~dm_opt.sharing.buyer.buyer_value`; equal to
    :meth:`SharingMarket.welfare`, or the sum without the excluded agent when
    ``exclude_agent`` is set); ``buyer_values[i]`` = ``φ_i`` at ``share``;
    ``buyer_bounds[i]`` a proven upper bound of buyer ``i``'s problem (its value
    when solved exactly); ``bound = Σ_i buyer_bounds[i]`` proven and ``gap`` the
    :func:`~dm_opt.core.result.relative_gap`; ``status`` why it stopped
    (``optimal`` only when every buyer problem was solved exactly);
    ``method`` the buyer method used (also ``buyer_method``);
    ``unsolved`` the buyers not solved exactly (limits, Ctrl-C); ``message``
    says why; ``exclude_agent`` the agent isolated and left out of the
    objective (``G*_{−i}`` of RJ eq. 20), or None.
    """

    family: ClassVar[str] = "sharing"

    share: np.ndarray
    welfare: float
    bound: float
    gap: float
    status: Termination
    method: str
    buyer_values: np.ndarray
    exclude_agent: int | None = None
    quality: float = 1.0
    nodes: int = 0
    seconds: float = 0.0
    buyer_bounds: np.ndarray | None = None
    unsolved: tuple = ()
    message: str = ""
    time_limit: float | None = None

    def __post_init__(self):
        if self.buyer_bounds is None:
            object.__setattr__(self, "buyer_bounds", self.buyer_values)
        for name in ("share", "buyer_values", "buyer_bounds"):
            arr = np.array(getattr(self, name), copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "status", Termination(self.status))
        object.__setattr__(self, "unsolved", tuple(int(i) for i in self.unsolved))

    @property
    def objective(self) -> float:
        """``welfare`` (the objective of RJ eq. 11 at ``share``)."""
        return self.welfare

    @property
    def buyer_method(self) -> str:
        return self.method

    @property
    def extra(self) -> dict:
        return {"nodes": int(self.nodes)}

    @property
    def is_optimal(self) -> bool:
        return self.status is Termination.OPTIMAL


def welfare_max(market: SharingMarket, method: str = "auto", *, buyer_method: str | None = None,
                exclude_agent: int | None = None, quality: float = 1.0,
                time_limit: float | Deadline | None = None, options: dict | None = None, **kw) -> WelfareResult:
    """Welfare-maximising directed graph by the per-buyer decomposition (RJ eq. 11).

    ``method`` is ``"auto"`` (the decomposition); ``buyer_method`` the per-buyer algorithm
    (``enumerate``, ``bnb``, ``milp``; :data:`~dm_opt.sharing.buyer.BUYER_METHODS`) — given as
    ``method`` it is accepted too.  ``exclude_agent = i`` gives ``G*_{−i}`` of RJ eq. (20):
    agent ``i`` is isolated (neither buys nor sells) and its value is left out, so the
    objective is ``Σ_{j≠i} V_j``.  ``quality`` < 1 is the fixed base distortion ``w⁰`` of
    D-mixed-VCG (RJ eq. 32).

    Limits
    ------
    time_limit : seconds for the whole call, or a :class:`~dm_opt.core.limits.Deadline`
        shared with a caller (None = no limit).  Buyers are solved in turn; a buyer search
        that is running when the deadline passes stops at its best bundle (bnb, milp), and
        the buyers not reached are not solved.  Ctrl-C stops the same way (status
        ``interrupted``).
    options / keywords : ``node_limit`` nodes per buyer problem (bnb); ``max_rounds``
        outer-approximation rounds per buyer (milp).

    A buyer not solved exactly keeps the better of its search incumbent and the
    bundles of :func:`~dm_opt.sharing.buyer.buyer_relaxation`, and contributes the smaller
    of its search bound and the relaxation bound.  Since welfare is the sum of the
    independent buyer problems (eq. 11), ``bound = Σ_i buyer_bounds[i]`` is a
    proven upper bound on the optimal welfare; ``share`` is always a feasible
    graph (every bundle respects ``max_queries`` and the exclusion).
    """
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    N = market.n
    if not 0.0 < quality <= 1.0:
        raise ProblemError(f"quality must be in (0, 1], got {quality}")
    used = resolve_buyer_method(market, method, buyer_method)
    opts = merge_options(options, kw)
    if exclude_agent is not None:
        exclude_agent = market._check_agent(exclude_agent)
    C = market.cost_matrix()
    excl = () if exclude_agent is None else (exclude_agent,)
    buyers = [i for i in range(N) if i not in excl]
    probs = {i: BuyerProblem(i, C[:, i].copy(), allowed_upper(market, i, excl), quality) for i in buyers}
    sols: dict = {}
    stop = None
    try:
        for i in buyers:
            if dl.expired():
                stop = Termination.TIME_LIMIT
                break
            sol = solve_buyer(market, probs[i], used, time_limit=dl, **opts)
            sols[i] = sol
            if sol.status in (Termination.TIME_LIMIT, Termination.INTERRUPTED):
                stop = sol.status
                break
    except KeyboardInterrupt:
        stop = Termination.INTERRUPTED
    solved = sum(1 for sol in sols.values() if sol.status is Termination.OPTIMAL)
    sols.update(stopped_bounds(market, probs, [i for i in buyers if i not in sols], stop, dl))
    share = np.zeros((N, N), dtype=np.int64)
    vals = np.zeros(N)
    bounds = np.zeros(N)
    nodes = 0
    for i in buyers:
        share[:, i] = sols[i].units
        vals[i] = sols[i].value
        bounds[i] = sols[i].bound
        nodes += sols[i].nodes
    unsolved = tuple(i for i in buyers if sols[i].status is not Termination.OPTIMAL)
    if stop is not None:
        status = stop
        message = (stop_message(stop, f"{solved} of {len(buyers)} buyer problems solved exactly")
                   + "; the other buyers keep their best bundle, bounded by the continuous relaxation"
                   + " (or, past the grace period, by their utility of every allowed unit)")
    elif unsolved:
        status = next(sols[i].status for i in unsolved)
        message = f"buyer problems {list(unsolved)} stopped at a limit ({status}); their bounds are proven"
    else:
        status, message = Termination.OPTIMAL, ""
    welfare = float(vals.sum())
    bound = welfare if status is Termination.OPTIMAL else max(welfare, float(bounds.sum()))
    return WelfareResult(share, welfare, bound, relative_gap(welfare, bound), status, used, vals,
                         None if exclude_agent is None else int(exclude_agent), quality, nodes,
                         time.perf_counter() - t0, bounds, unsolved, message, dl.time_limit)


def competitive_prices(market: SharingMarket, welfare: WelfareResult | None = None, *, method: str = "auto",
                       buyer_method: str | None = None, demand_method: str | None = None, tol: float = VALUE_TOL,
                       time_limit: float | Deadline | None = None, options: dict | None = None,
                       **kw) -> PriceResult:
    """Prices of RJ Prop 4.1 for the welfare-maximising graph, with the range of Prop 4.2
    (:func:`dm_opt.sharing.prices.support_prices`).

    ``welfare`` is the graph to support (default: :func:`welfare_max` with ``buyer_method``,
    computed under the same deadline).  ``time_limit`` (seconds or a shared
    :class:`~dm_opt.core.limits.Deadline`) covers the whole call; on expiry or Ctrl-C the
    result says what is proven (see :class:`~dm_opt.sharing.prices.PriceResult`).
    """
    t0 = time.perf_counter()
    dl = Deadline.of(time_limit)
    used = resolve_buyer_method(market, method, buyer_method)
    opts = merge_options(options, kw)
    if welfare is None:
        welfare = welfare_max(market, buyer_method=used, time_limit=dl, **opts)
    return support_prices(market, welfare, buyer_method=used, demand_method=demand_method, tol=tol,
                          time_limit=dl, start=t0)


__all__ = ["welfare_max", "WelfareResult", "competitive_prices", "PriceResult", "solve_buyer", "BuyerProblem",
           "BuyerSolution", "buyer_value", "buyer_relaxation", "METHODS", "VALUE_TOL", "MILP_GAP_TOL", "EXPIRED"]
