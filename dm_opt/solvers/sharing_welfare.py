"""Unilateral sharing with prices (RJ §4; per-query extension §6).

With additive costs (RJ eq. 4 / eq. 35) social welfare decomposes per buyer
(RJ eq. 11):

    max_G Σ_i V_i(G) = Σ_i max_{x_i} φ_i(x_i),   φ_i(x) = U_i(x) − Σ_j x_j c_j(i),

where ``x_i[j]`` is the number of units (0/1 data sets, or queries in §6) that
buyer ``i`` receives from seller ``j``.  Each buyer problem is solved by

* ``enumerate`` — every bundle (table family: every subset via the tabulated
  row; power family: every integer vector, up to :data:`MAX_ENUMERATE_BUNDLES`);
* ``bnb`` — branch and bound for the power family with the exact continuous
  relaxation as bound (:func:`dm_opt.solvers.sharing_kernels.buyer_bnb`);
* ``milp`` — HiGHS (matrix API) with integer ``x`` and an outer approximation
  of the concave value by tangent cuts, refined at the incumbent until the
  cut value equals the true value (exact: the MILP is a relaxation, and at
  termination its optimum is attained by the incumbent).

:func:`competitive_prices` gives the prices of RJ Prop 4.1 (seller ``i``
charges ``c_i(j)`` per unit), the payments of eq. 6, the price range of
Prop 4.2 and an independent check that each buyer's demand at those prices
reproduces the welfare-maximising graph.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from ..errors import LimitExceeded, ProblemError, SolverFailed
from ..markets.sharing import MAX_TABLE_AGENTS, SharingMarket
from ..result import Termination, relative_gap
from . import sharing_kernels as K

METHODS = ("auto", "enumerate", "bnb", "milp")
#: Largest number of bundles one buyer problem may enumerate (power family).
MAX_ENUMERATE_BUNDLES = 1 << 20
#: Absolute tolerance deciding welfare ties and demand checks.
VALUE_TOL = 1e-9
#: Relative gap under which a MILP buyer solution counts as optimal (HiGHS tolerances are ~1e-9).
MILP_GAP_TOL = 1e-7
#: Node limit of the branch and bound per buyer problem.
BNB_NODE_LIMIT = 50_000_000


@dataclass(frozen=True)
class BuyerProblem:
    """One buyer's problem ``max_x U_i(x) − Σ_j x_j p_j`` (RJ eq. 9).

    ``prices[j]`` per unit from seller ``j`` (welfare: ``c_j(i)``),
    ``upper[j]`` the largest number of units (0 excludes ``j``), ``quality``
    scales the samples delivered (D-mixed-VCG base distortion; the table
    family interpolates ``U(∅) + quality·(U(S) − U(∅))``), ``fixed`` maps a
    seller to a forced number of units.
    """

    buyer: int
    prices: np.ndarray
    upper: np.ndarray
    quality: float = 1.0
    fixed: tuple = ()


@dataclass(frozen=True)
class BuyerSolution:
    units: np.ndarray         # (N,) int units received from each seller
    value: float              # φ at ``units`` (evaluated exactly)
    bound: float              # proven upper bound on the optimum
    status: Termination
    nodes: int = 0


def _allowed_upper(market: SharingMarket, i: int, exclude=()) -> np.ndarray:
    ub = market.max_queries.astype(np.int64).copy()
    ub[i] = 0
    for j in exclude:
        ub[int(j)] = 0
    return ub


def buyer_value(market: SharingMarket, i: int, units, prices, quality: float = 1.0) -> float:
    """``U_i(units; quality) − Σ_j units_j prices_j`` evaluated directly."""
    units = np.asarray(units, dtype=np.int64)
    pay = float(units @ np.asarray(prices, dtype=float))
    if market.family == "table":
        mask = 0
        for j in np.flatnonzero(units):
            mask |= 1 << int(j)
        u0 = market.value(i, 0)
        return u0 + quality * (market.value(i, mask) - u0) - pay
    w = units.astype(float) * quality
    w[i] = 0.0
    return market.power_value(i, float(w @ market.query_samples)) - pay


def _solve_enumerate(market, prob: BuyerProblem) -> BuyerSolution:
    i, N = prob.buyer, market.n
    ub = prob.upper.copy()
    fixed = dict(prob.fixed)
    for j, k in fixed.items():
        ub[j] = 0
    if market.family == "table":
        if N > MAX_TABLE_AGENTS:
            raise LimitExceeded(f"enumeration needs N <= {MAX_TABLE_AGENTS}")
        free = [j for j in range(N) if ub[j] > 0]
        fmask = 0
        for j, k in fixed.items():
            if k:
                fmask |= 1 << j
        U = market.utility_table()[i]
        # all subsets of the free sellers, vectorised
        sub = np.zeros(1, dtype=np.int64)
        for j in free:
            sub = np.concatenate([sub, sub | (1 << j)])
        bits = ((sub[:, None] >> np.arange(N)[None, :]) & 1).astype(float)
        masks = sub | fmask
        u0 = U[0]
        val = u0 + prob.quality * (U[masks] - u0) - bits @ prob.prices - sum(prob.prices[j] * k for j, k in fixed.items())
        b = int(np.argmax(val))
        units = bits[b].astype(np.int64)
        for j, k in fixed.items():
            units[j] = k
        v = buyer_value(market, i, units, prob.prices, prob.quality)
        return BuyerSolution(units, v, v, Termination.OPTIMAL, len(sub))
    free = [j for j in range(N) if ub[j] > 0]
    count = int(np.prod([ub[j] + 1 for j in free], dtype=float)) if free else 1
    if count > MAX_ENUMERATE_BUNDLES:
        raise LimitExceeded(f"buyer {i}: {count} bundles exceed the enumeration limit {MAX_ENUMERATE_BUNDLES}; "
                            "use method 'bnb' or 'milp'")
    grids = np.array(list(itertools.product(*[range(ub[j] + 1) for j in free])), dtype=np.int64).reshape(-1, len(free))
    q = market.query_samples[free] * prob.quality
    m0 = market.samples[i] + sum(k * market.query_samples[j] * prob.quality for j, k in fixed.items())
    c0 = sum(k * prob.prices[j] for j, k in fixed.items())
    val = market.alpha[i] * (1.0 - (m0 + grids @ q) ** (-market.beta[i])) - grids @ prob.prices[free] - c0
    b = int(np.argmax(val))
    units = np.zeros(N, dtype=np.int64)
    units[free] = grids[b]
    for j, k in fixed.items():
        units[j] = k
    v = buyer_value(market, i, units, prob.prices, prob.quality)
    return BuyerSolution(units, v, v, Termination.OPTIMAL, len(grids))


def _power_reduced(market, prob: BuyerProblem):
    i = prob.buyer
    ub = prob.upper.copy()
    fixed = dict(prob.fixed)
    for j in fixed:
        ub[j] = 0
    free = np.flatnonzero(ub > 0)
    m0 = market.samples[i] + sum(k * market.query_samples[j] * prob.quality for j, k in fixed.items())
    c0 = sum(k * prob.prices[j] for j, k in fixed.items())
    return free, ub, float(m0), float(c0), fixed


def _solve_bnb(market, prob: BuyerProblem, node_limit: int = BNB_NODE_LIMIT) -> BuyerSolution:
    if market.family != "power":
        raise ProblemError("method 'bnb' needs the power family; use 'enumerate' for tables")
    i, N = prob.buyer, market.n
    free, ub, m0, c0, fixed = _power_reduced(market, prob)
    if np.any(prob.prices[free] < 0):
        raise ProblemError("method 'bnb' needs non-negative prices")
    x, val, bound, nodes = K.buyer_bnb(m0, float(market.alpha[i]), float(market.beta[i]),
                                       np.ascontiguousarray(market.query_samples[free] * prob.quality, dtype=float),
                                       np.ascontiguousarray(prob.prices[free], dtype=float),
                                       np.ascontiguousarray(ub[free], dtype=np.int64), int(node_limit))
    units = np.zeros(N, dtype=np.int64)
    units[free] = x
    for j, k in fixed.items():
        units[j] = k
    v = buyer_value(market, i, units, prob.prices, prob.quality)
    status = Termination.OPTIMAL if nodes <= node_limit else Termination.NODE_LIMIT
    return BuyerSolution(units, v, max(v, bound - c0) if status is not Termination.OPTIMAL else v, status, int(nodes))


def _solve_milp(market, prob: BuyerProblem, max_rounds: int = 200, time_limit: float | None = None) -> BuyerSolution:
    """Outer approximation with HiGHS: ``max y − Σ p_j x_j``, ``y ≤ f(z_t) + f'(z_t)(z − z_t)``
    for tangent points ``z_t``, ``z = Σ q_j x_j``; add a tangent at the incumbent until tight."""
    if market.family != "power":
        raise ProblemError("method 'milp' needs the power family; use 'enumerate' for tables")
    import highspy

    from .highs import silence_banner

    silence_banner()
    i, N = prob.buyer, market.n
    free, ub, m0, c0, fixed = _power_reduced(market, prob)
    a, b = float(market.alpha[i]), float(market.beta[i])
    q = market.query_samples[free] * prob.quality
    n = len(free)

    def f(z):
        return a * (1.0 - (m0 + z) ** (-b))

    def fp(z):
        return a * b * (m0 + z) ** (-b - 1.0)

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-12)
    # tight feasibility so the tangent cuts bind to ~1e-9 (defaults 1e-7/1e-6 leave y above f(z))
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    inf = highspy.kHighsInf
    # columns: x_0..x_{n-1} (integer), y (free above, value of data)
    cost = np.concatenate([-prob.prices[free], [1.0]])
    lo = np.zeros(n + 1)
    hi = np.concatenate([ub[free].astype(float), [a]])
    h.addCols(n + 1, cost, lo, hi, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    if n:
        h.changeColsIntegrality(n, np.arange(n, dtype=np.int32),
                                np.array([highspy.HighsVarType.kInteger] * n))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    zmax = float(q @ ub[free]) if n else 0.0

    def add_tangent(zt):
        # y − f'(zt) Σ q_j x_j ≤ f(zt) − f'(zt) zt
        g = fp(zt)
        idx = np.concatenate([np.arange(n), [n]]).astype(np.int32)
        val = np.concatenate([-g * q, [1.0]])
        h.addRows(1, np.array([-inf]), np.array([f(zt) - g * zt]), n + 1, np.array([0], np.int32), idx, val)

    for zt in np.unique(np.linspace(0.0, zmax, 5)):
        add_tangent(float(zt))
    tried = set()
    status = Termination.OPTIMAL
    x = np.zeros(n)
    rounds = 0
    bound = np.inf
    while True:
        rounds += 1
        h.run()
        ms = h.getModelStatus()
        if ms != highspy.HighsModelStatus.kOptimal:
            if ms == highspy.HighsModelStatus.kTimeLimit:
                status = Termination.TIME_LIMIT
            else:
                raise SolverFailed(f"HiGHS stopped with status {h.modelStatusToString(ms)} on buyer {i}")
        sol = np.asarray(h.getSolution().col_value)
        x = np.round(sol[:n])
        y = sol[n]
        z = float(q @ x) if n else 0.0
        bound = float(h.getInfo().mip_dual_bound)
        if status is not Termination.OPTIMAL:
            break
        if y <= f(z) + 1e-10 * max(1.0, abs(a)) or z in tried or rounds >= max_rounds:
            if rounds >= max_rounds and y > f(z) + 1e-10 * max(1.0, abs(a)):
                status = Termination.NODE_LIMIT
            break
        tried.add(z)
        add_tangent(z)
    units = np.zeros(N, dtype=np.int64)
    units[free] = x.astype(np.int64)
    for j, k in fixed.items():
        units[j] = k
    v = buyer_value(market, i, units, prob.prices, prob.quality)
    # HiGHS' dual bound of the last (relaxed, tangent-cut) MILP bounds the true optimum up to
    # its tolerances; report it rather than claiming the incumbent is exact.
    bound = max(v, bound - c0)
    if status is Termination.OPTIMAL and relative_gap(v, bound) > MILP_GAP_TOL:
        status = Termination.NODE_LIMIT
    return BuyerSolution(units, v, bound, status, rounds)


def _auto(market) -> str:
    if market.family == "table":
        return "enumerate"
    return "bnb"


def solve_buyer(market: SharingMarket, prob: BuyerProblem, method: str = "auto", **kw) -> BuyerSolution:
    """Solve one buyer problem exactly with ``method`` (see module docstring).

    Limits: ``node_limit`` (bnb), ``time_limit`` seconds / ``max_rounds`` (milp); when
    hit, the best bundle is returned with a proven bound and a non-optimal status.
    """
    if method not in METHODS:
        raise ProblemError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "auto":
        method = _auto(market)
    if method == "enumerate":
        return _solve_enumerate(market, prob)
    if method == "bnb":
        return _solve_bnb(market, prob, **{k: v for k, v in kw.items() if k == "node_limit"})
    return _solve_milp(market, prob, **{k: v for k, v in kw.items() if k in ("max_rounds", "time_limit")})


# ----------------------------------------------------------------- welfare
@dataclass(frozen=True)
class WelfareResult:
    """Welfare-maximising directed sharing graph (RJ eq. 11).

    ``share[j, i]`` units of ``j``'s data received by buyer ``i`` (``S_i^I`` =
    column ``i``); ``welfare`` = ``Σ_i V_i`` at ``share`` (evaluated exactly
    with :meth:`SharingMarket.welfare`, or the weighted sum when
    ``exclude_agent``/``quality`` are set); ``buyer_values[i]`` = ``φ_i``;
    ``bound``/``gap`` proven; ``exclude_agent`` the agent isolated and left out
    of the objective (``G*_{−i}`` of RJ eq. 20), or None.
    """

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

    def __post_init__(self):
        for name in ("share", "buyer_values"):
            arr = np.array(getattr(self, name), copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "status", Termination(self.status))


def welfare_max(market: SharingMarket, method: str = "auto", *, exclude_agent: int | None = None,
                quality: float = 1.0, **kw) -> WelfareResult:
    """Welfare-maximising directed graph by the per-buyer decomposition (RJ eq. 11).

    ``exclude_agent = i`` gives ``G*_{−i}`` of RJ eq. (20): agent ``i`` is
    isolated (neither buys nor sells) and its value is left out, so the
    objective is ``Σ_{j≠i} V_j``.  ``quality`` < 1 is the fixed base
    distortion ``w⁰`` of D-mixed-VCG (RJ eq. 32).
    """
    t0 = time.perf_counter()
    N = market.n
    if not 0.0 < quality <= 1.0:
        raise ProblemError(f"quality must be in (0, 1], got {quality}")
    C = market.cost_matrix()
    share = np.zeros((N, N), dtype=np.int64)
    vals = np.zeros(N)
    bound = 0.0
    status = Termination.OPTIMAL
    nodes = 0
    excl = () if exclude_agent is None else (int(exclude_agent),)
    for i in range(N):
        if i in excl:
            continue
        prob = BuyerProblem(i, C[:, i].copy(), _allowed_upper(market, i, excl), quality)
        sol = solve_buyer(market, prob, method, **kw)
        share[:, i] = sol.units
        vals[i] = sol.value
        bound += sol.bound
        nodes += sol.nodes
        if sol.status is not Termination.OPTIMAL:
            status = sol.status
    welfare = float(vals.sum())
    if status is Termination.OPTIMAL:
        bound = welfare
    used = _auto(market) if method == "auto" else method
    return WelfareResult(share, welfare, bound, relative_gap(welfare, bound), status, used, vals,
                         None if exclude_agent is None else int(exclude_agent), quality, nodes,
                         time.perf_counter() - t0)


# ------------------------------------------------------------------ prices
@dataclass(frozen=True)
class PriceResult:
    """Competitive prices (RJ Prop 4.1) and their range (Prop 4.2).

    ``prices[j, i]`` = ``c_j(i)``: what seller ``j`` charges buyer ``i`` per
    unit; ``payments[i]`` = ``t_i`` of RJ eq. 6 (bought − sold);
    ``price_max[j, i]`` = ``p_j^max(i)``: the largest price ``j`` may charge
    ``i`` (others fixed) at which ``i`` still demands its bundle (``inf`` when
    ``i`` buys nothing from ``j``); ``demand_ok`` says every buyer's demand at
    ``prices`` (solved independently with ``demand_method``) attains the same
    value as its bundle in ``share`` — so ``share`` is a demand —
    ``demand_values`` being those optimal values.
    """

    share: np.ndarray
    prices: np.ndarray
    payments: np.ndarray
    price_max: np.ndarray
    demand_ok: bool
    demand_values: np.ndarray
    demand_method: str
    utilities: np.ndarray


def competitive_prices(market: SharingMarket, welfare: WelfareResult | None = None, *, method: str = "auto",
                       demand_method: str | None = None, tol: float = VALUE_TOL) -> PriceResult:
    """Prices of RJ Prop 4.1 for the welfare-maximising graph, with the range of Prop 4.2.

    ``p_j^max(i)`` for a seller ``j`` whose ``w*_j ≥ 1`` units buyer ``i``
    takes: raising the per-unit price by ``δ`` lowers bundles with ``k`` units
    of ``j`` by ``δk``; the bundle stays optimal iff
    ``δ (w*_j − k) ≤ φ* − max_{x: x_j = k} φ(x)`` for every ``k < w*_j``, so
    ``p^max = c_j(i) + min_k (φ* − φ*_{x_j=k}) / (w*_j − k)``.
    """
    if welfare is None:
        welfare = welfare_max(market, method)
    if welfare.exclude_agent is not None or welfare.quality != 1.0:
        raise ProblemError("competitive prices are defined for the undistorted welfare graph with every agent")
    N = market.n
    C = market.cost_matrix()
    share = np.asarray(welfare.share)
    prices = C.copy()
    payments = (share * C).sum(axis=0) - (share * C).sum(axis=1)          # eq. 6
    if demand_method is None:
        demand_method = {"enumerate": "bnb" if market.family == "power" else "enumerate",
                         "bnb": "milp", "milp": "bnb"}.get(welfare.method, "enumerate")
    dvals = np.zeros(N)
    ok = True
    for i in range(N):
        d = solve_buyer(market, BuyerProblem(i, prices[:, i].copy(), _allowed_upper(market, i)), demand_method)
        dvals[i] = d.value
        mine = buyer_value(market, i, share[:, i], prices[:, i])
        if d.value > mine + tol * max(1.0, abs(mine)):
            ok = False
    pmax = np.full((N, N), np.inf)
    np.fill_diagonal(pmax, np.nan)
    for i in range(N):
        phi_star = buyer_value(market, i, share[:, i], prices[:, i])
        for j in np.flatnonzero(share[:, i]):
            w = int(share[j, i])
            best = np.inf
            for k in range(w):
                alt = solve_buyer(market, BuyerProblem(i, prices[:, i].copy(), _allowed_upper(market, i),
                                                       fixed=((int(j), k),)), method)
                best = min(best, (phi_star - alt.value) / (w - k))
            pmax[j, i] = C[j, i] + max(best, 0.0)
    util = market.agent_values(share) - payments
    return PriceResult(share, prices, payments, pmax, ok, dvals, demand_method, util)


__all__ = ["welfare_max", "WelfareResult", "competitive_prices", "PriceResult", "solve_buyer", "BuyerProblem",
           "BuyerSolution", "buyer_value", "METHODS"]
