"""Exact branch-and-bound from monotone interval bounds (SPEC §1.3), ``method="bnb"``.

Maximises any :class:`~dm_opt.gaussian.objectives.LeakageObjective`

    f(a) = Σ_i c_i I_i(a) + Σ_{i∈A} (d_i I_i(a) − e_i own_i(a) − k_i)

(first best, equilibrium and de-correlated equilibrium are special cases)
over profiles ``a ∈ {0,1}^n``, optionally subject to
:class:`~dm_opt.gaussian.constraints.SideConstraints`.

A node fixes some users in (``IN``) and some out; the rest are ``FREE``.
Leakage is monotone (Lemma 1; Property 3), so every completion has
``I(IN) ≤ I(a) ≤ I(IN ∪ FREE)``; own leakage ``own_i = I_i(a) − I_i(a_{−i},0)``
is nonincreasing in the others' set (submodularity, Lemma 1; Property 4), so
it lies between its values at the two extreme completions.  The sum of the
per-user maxima over those ranges bounds ``f`` on the node
(:func:`dm_opt.gaussian.kernels.bnb.node_bound` for the Gaussian market,
:func:`oracle_node_bound` for any leakage oracle).  For the Gaussian market a
second, modular bound from Woodbury identities (:func:`~dm_opt.gaussian.kernels.bnb.modular_bound`)
charges each free user the least leakage change her choice causes to the
others; the node bound is the smaller one (10–60× fewer nodes at n = 40–50).
Both extreme completions are themselves profiles and are tried as incumbents
at every node.  Validity proofs: ``docs/exact_solvers_bnb.md``.

Two implementations of the same search:

* **Gaussian fast path** (:class:`~dm_opt.gaussian.market.GaussianMarket`):
  compiled depth-first search with one posterior-state update per child along
  the path (:mod:`.bnb_kernels`, :mod:`dm_opt.gaussian.kernels.posterior`);
* **generic path** (any object with ``n``, ``values``, ``leakage(a)``,
  ``own_leakage(a)``, see :mod:`dm_opt.gaussian.leakage.base`): the same bounds from
  oracle calls, four per node.  Also used for ``search="best"`` (best-first)
  on Gaussian markets, with fresh posterior solves per node.

Lemma 3 (users with ``v_i ≤ 1`` share in every equilibrium), generalised to
any objective with ``c, d, e ≥ 0``, ``k_i ≤ 0``, ``d_i ≥ 0`` and ``c_i + d_i ≥ e_i``:
adding such a user to any profile weakly increases ``f`` (proof in
``docs/exact_solvers_bnb.md``; for the equilibrium it is the paper's proof of
Lemma 3, with equality possible when ``v_i = 1`` — footnote 10), so some
optimum contains all of them and they are fixed in at the root.  Only done
without side constraints (a constraint can make adding a user infeasible).
"""

from __future__ import annotations

import heapq
import sys
import time
from dataclasses import dataclass

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.core.limits import adapt_chunk
from dm_opt.core.registry import Backend, RawSolution, register
from dm_opt.core.result import Termination
from dm_opt.gaussian.constraints import BUDGET_TOL, SideConstraints
from dm_opt.gaussian.kernels.bnb import dfs_chunk, modular_bound, node_bound
from dm_opt.gaussian.kernels.posterior import fresh_state

#: Default pruning tolerance as a fraction of the tie tolerance: a node is pruned when its
#: bound is at most ``incumbent + PRUNE_FRACTION · tol``, so the returned profile is within
#: ``PRUNE_FRACTION · tol`` (plus round-off ≪ tol) of the optimum — a tie in the sense of ``tol``.
PRUNE_FRACTION = 0.5
#: Extra slack (absolute, payment units, relative to the payment scale) on budget screens
#: computed from the carried posterior states; candidates are then checked exactly.
BUDGET_SCREEN_RTOL = 1e-9
#: Target wall time of one compiled chunk (s) between limit checks / progress lines.
CHUNK_SECONDS = 0.05
#: Seconds between progress lines on stderr.
PROGRESS_EVERY = 1.0

ORDERS = ("dynamic", "deviation", "index", "weight")
SEARCHES = ("depth", "best")


# --------------------------------------------------------------------------- setup
def _writable(x) -> np.ndarray:
    """A writable C-contiguous float copy: the kernels are compiled for one array type
    (read-only arrays would be a second numba specialisation, compiled again)."""
    return np.array(x, dtype=float, order="C")


def net_weight(objective) -> np.ndarray:
    """``c_i + d_i − e_i``: a sharer's net weight on her own leakage (``1 − v_i`` for the three problems)."""
    return objective.c + objective.d - objective.e


def lemma3_users(objective) -> np.ndarray:
    """Users that some optimum lets share (generalised Lemma 3), boolean (n,).

    Valid when every ``c, d, e ≥ 0``; then user ``i`` with ``d_i ≥ 0``,
    ``k_i ≤ 0`` and ``c_i + d_i ≥ e_i`` never lowers ``f`` by sharing:
    ``f(a + i) − f(a) ≥ (c_i + d_i − e_i)·(I_i(a+i) − I_i(a)) − k_i ≥ 0``
    (others' ``c, d`` terms grow by monotonicity, their ``e·own`` terms shrink by
    submodularity — the steps (a), (b) of the proof of Lemma 3).
    """
    c, d, e, k = objective.c, objective.d, objective.e, objective.k
    if np.any(c < 0) or np.any(d < 0) or np.any(e < 0):
        return np.zeros(objective.n, dtype=bool)
    return (k <= 0) & (c + d - e >= 0)


def branching_order(objective, order: str) -> np.ndarray:
    """Static branching order of the users.

    ``deviation`` (default): decreasing ``|c_i + d_i − e_i|`` (``|1 − v_i|``):
    users whose net weight is large are the most decided, so fixing them
    first tightens the bounds fastest; ``weight``: decreasing
    ``|c|+|d|+|e|``; ``index``: 0..n−1.  Ties by index (deterministic).
    """
    n = objective.n
    if order == "index":
        return np.arange(n, dtype=np.int64)
    if order in ("deviation", "dynamic"):
        key = np.abs(net_weight(objective))
    elif order == "weight":
        key = np.abs(objective.c) + np.abs(objective.d) + np.abs(objective.e)
    else:
        raise ProblemError(f"unknown branching order '{order}'; choose one of {', '.join(ORDERS)}")
    return np.lexsort((np.arange(n), -key)).astype(np.int64)


@dataclass
class _Setup:
    state0: np.ndarray          # int8 (n,): 0 free, 1 in, 2 out
    price_kind: int
    budget: float
    min_sh: int
    max_sh: int
    fixed_by_lemma3: int


def _setup(market, objective, cons: SideConstraints | None, lemma3: bool) -> _Setup:
    n = market.n
    state = np.zeros(n, dtype=np.int8)
    price_kind, budget, min_sh, max_sh = 0, np.inf, 0, n
    fixed = 0
    if cons is not None:
        state[list(cons.force_in)] = 1
        state[list(cons.force_out)] = 2
        if cons.max_sharers is not None:
            max_sh = min(n, int(cons.max_sharers))
        if cons.min_sharers is not None:
            min_sh = int(cons.min_sharers)
        if cons.budget is not None:
            cons.check_problem(objective.name)
            price_kind = 1 if objective.name == "equilibrium" else 2
            budget = float(cons.budget)
    elif lemma3:
        mask = lemma3_users(objective)
        state[mask] = 1
        fixed = int(mask.sum())
    return _Setup(state, price_kind, budget, min_sh, max_sh, fixed)


def _trivially_infeasible(setup: _Setup, n: int) -> str:
    """A reason when the counting constraints alone admit no profile ('' otherwise)."""
    n_in = int(np.sum(setup.state0 == 1))
    n_out = int(np.sum(setup.state0 == 2))
    if setup.min_sh > setup.max_sh:
        return f"min_sharers = {setup.min_sh} > max_sharers = {setup.max_sh}"
    if n_in > setup.max_sh:
        return f"{n_in} users forced in but max_sharers = {setup.max_sh}"
    if n - n_out < setup.min_sh:
        return f"min_sharers = {setup.min_sh} but only {n - n_out} users may share"
    return ""


# ------------------------------------------------------------------- progress
class _Progress:
    def __init__(self, enabled: bool, stream=None):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.last = 0.0

    def __call__(self, nodes, incumbent, bound, force=False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        from dm_opt.core.result import relative_gap

        gap = relative_gap(incumbent, bound) if np.isfinite(incumbent) else float("inf")
        print(f"bnb: nodes {nodes:,}  incumbent {incumbent:.10g}  bound {bound:.10g}  gap {gap:.3g}",
              file=self.stream, flush=True)


# ------------------------------------------------------------- Gaussian DFS
def _gaussian_dfs(market, objective, setup: _Setup, order, prefer_in, *, tol, time_limit,
                  node_limit, progress, order_name, modular) -> RawSolution:
    t0 = time.perf_counter()
    n = market.n
    S = _writable(market.cov)
    tau2 = _writable(market.noise_var)
    sig2 = _writable(market.sigma2)
    c, d, e, k = (_writable(x) for x in (objective.c, objective.d, objective.e, objective.k))
    pv = _writable(market.values)
    cap = n + 2
    st_state = np.zeros((cap, n), dtype=np.int8)
    # column j of the posterior at row j (valid for the node's free users), and diag P
    st_Qlo = np.zeros((cap, n, n))
    st_Qhi = np.zeros((cap, n, n))
    st_Dlo = np.zeros((cap, n))
    st_Dhi = np.zeros((cap, n))
    st_Glo = np.zeros((cap, n))
    st_Ghi = np.zeros((cap, n))
    st_amp = np.ones(cap)
    st_bound = np.full(cap, np.inf)
    st_pos = np.zeros(cap, dtype=np.int64)
    st_state[0] = setup.state0
    # the two extreme completions' posterior states (dm_opt.gaussian.kernels.posterior: rows of M, diag M, h)
    st_Qlo[0], st_Glo[0], _ = fresh_state(S, tau2, (setup.state0 == 1).astype(np.int8))
    st_Qhi[0], st_Ghi[0], _ = fresh_state(S, tau2, (setup.state0 != 2).astype(np.int8))
    st_Dlo[0] = np.diag(st_Qlo[0])
    st_Dhi[0] = np.diag(st_Qhi[0])
    ctl = np.array([1, 0], dtype=np.int64)
    inc_a = np.zeros(n, dtype=np.int8)
    inc_val = np.array([-np.inf])
    prune_tol = PRUNE_FRACTION * tol
    cand_eps = 1e-3 * tol
    pay_scale = float(np.sum(pv * sig2)) + abs(setup.budget if np.isfinite(setup.budget) else 0.0)
    budget_slack = BUDGET_SCREEN_RTOL * (1.0 + pay_scale)

    # start with single nodes: at large n one node (incumbent re-evaluations are O(n³)) can take
    # milliseconds, and the clock is read only between chunks
    chunk = 1
    status = Termination.OPTIMAL
    message = ""
    show = _Progress(progress)

    def open_bound():
        sp = int(ctl[0])
        return float(np.max(st_bound[:sp])) if sp else -np.inf

    try:
        while ctl[0] > 0:
            if node_limit is not None:
                left = node_limit - int(ctl[1])
                if left <= 0:
                    status, message = Termination.NODE_LIMIT, f"node limit {node_limit} reached"
                    break
                todo = min(chunk, left)
            else:
                todo = chunk
            # the root is always processed, so a time-limited run has the root's incumbents
            if time_limit is not None and ctl[1] > 0 and time.perf_counter() - t0 >= time_limit:
                status, message = Termination.TIME_LIMIT, f"time limit {time_limit}s reached"
                break
            c0 = time.perf_counter()
            dfs_chunk(S, tau2, sig2, c, d, e, k, order, prefer_in, pv, setup.price_kind, setup.budget,
                      BUDGET_TOL, budget_slack, setup.min_sh, setup.max_sh, st_state, st_Qlo, st_Qhi,
                      st_Dlo, st_Dhi, st_Glo, st_Ghi, st_amp, st_bound, st_pos, ctl, inc_a, inc_val, prune_tol, cand_eps, np.int64(todo),
                      order_name == "dynamic", modular)
            dt = time.perf_counter() - c0
            chunk = adapt_chunk(chunk, dt, CHUNK_SECONDS, lo=1, hi=1 << 22)
            if time_limit is not None:
                # never schedule more nodes than the time left affords at the last chunk's pace
                per_node = dt / max(todo, 1)
                left_s = time_limit - (time.perf_counter() - t0)
                chunk = max(1, min(chunk, int(left_s / per_node) if per_node > 0 else chunk))
            show(int(ctl[1]), float(inc_val[0]), max(float(inc_val[0]), open_bound()))
    except KeyboardInterrupt:
        # the kernel only writes consistent states: the open nodes are exactly what is left
        status, message = Termination.INTERRUPTED, "interrupted by the user"
    elapsed = time.perf_counter() - t0
    best = float(inc_val[0])
    bound = max(best, open_bound())
    show(int(ctl[1]), best, bound, force=True)
    return _raw(inc_a if np.isfinite(best) else None, best, bound, status, message, int(ctl[1]),
                elapsed, setup, search="depth", path="gaussian")


def _raw(profile, best, bound, status, message, nodes, elapsed, setup, *, search, path) -> RawSolution:
    extra = {"search": search, "path": path, "fixed_by_lemma3": setup.fixed_by_lemma3,
             "incumbent_value": best}
    if profile is None and status is Termination.OPTIMAL:
        return RawSolution(profile=None, status=Termination.INFEASIBLE, bound=-np.inf, nodes=nodes,
                           solve_seconds=elapsed,
                           message=("infeasible side constraints: no profile satisfies them"
                                    + (f" (budget {setup.budget:g} on total payments)"
                                       if np.isfinite(setup.budget) else "")), extra=extra)
    return RawSolution(profile=None if profile is None else np.array(profile, dtype=np.int8), status=status,
                       bound=float(bound), nodes=nodes, solve_seconds=elapsed, message=message, extra=extra)


# ------------------------------------------------------ generic (oracle) path
def oracle_node_bound(state, L_lo, L_hi, own_lo, own_hi, own_single, objective) -> float:
    """Interval bound of a node from oracle values (any monotone submodular leakage).

    ``L_lo, own_lo`` at ``IN``; ``L_hi, own_hi`` at ``IN ∪ FREE``; ``own_single[i] =
    I_i({i}) − I_i(∅)`` (the largest own leakage, by submodularity).  Per user:
    out: ``c I`` over ``[L_lo, L_hi]``; in: ``(c+d) I`` over ``[L_lo, L_hi]`` and
    ``−e own`` over ``[own_hi, own_lo]``; free: the larger of sharing (``I`` over
    ``[L_lo + own_hi, L_hi]`` — her own signal adds at least ``own_hi`` —, ``own``
    over ``[own_hi, own_single]``) and not sharing (``c I`` over ``[L_lo, L_hi − own_hi]``).
    """
    c, d, e, k = objective.c, objective.d, objective.e, objective.k
    cd = c + d
    out = state == 2
    inn = state == 1
    free = state == 0
    total = np.sum(np.where(c > 0, c * L_hi, c * L_lo)[out])
    own_in = np.where(e >= 0, -e * own_hi, -e * own_lo)
    total += np.sum((np.where(cd > 0, cd * L_hi, cd * L_lo) + own_in - k)[inn])
    share = (np.where(cd > 0, cd * L_hi, cd * np.minimum(L_lo + own_hi, L_hi))
             + np.where(e >= 0, -e * own_hi, -e * own_single) - k)
    noshare = np.where(c > 0, c * np.maximum(L_hi - own_hi, L_lo), c * L_lo)
    total += np.sum(np.maximum(share, noshare)[free])
    return float(total)


class _OracleNodes:
    """Node quantities from ``leakage``/``own_leakage`` calls (four per node)."""

    def __init__(self, market, objective, setup):
        self.m, self.obj, self.setup = market, objective, setup
        self.values = np.asarray(market.values, dtype=float)
        n = market.n
        self.own_single = np.zeros(n)
        if np.any(objective.e < 0):
            for i in range(n):
                a = np.zeros(n, dtype=np.int8)
                a[i] = 1
                self.own_single[i] = float(np.asarray(market.own_leakage(a), float)[i])

    def _eval(self, a):
        L = np.asarray(self.m.leakage(a), dtype=float)
        own = np.asarray(self.m.own_leakage(a), dtype=float)
        o = self.obj
        f = float(np.dot(o.c, L) + np.sum(a * (o.d * L - o.e * own - o.k)))
        kind = self.setup.price_kind
        pay = 0.0 if kind == 0 else float(np.sum(a * self.values * (own if kind == 1 else L)))
        return L, own, f, pay

    def __call__(self, state):
        lo = (state == 1).astype(np.int8)
        hi = (state != 2).astype(np.int8)
        L_lo, own_lo, f_lo, pay_lo = self._eval(lo)
        L_hi, own_hi, f_hi, pay_hi = self._eval(hi)
        kind = self.setup.price_kind
        if kind == 1:
            pay_lb = float(np.sum(lo * self.values * own_hi))
        elif kind == 2:
            pay_lb = pay_lo
        else:
            pay_lb = 0.0
        bound = oracle_node_bound(state, L_lo, L_hi, own_lo, own_hi, self.own_single, self.obj)
        return f_lo, f_hi, pay_lo, pay_hi, pay_lb, bound


class _GaussianFreshNodes:
    """Node quantities for a Gaussian market from fresh posterior states (best-first search)."""

    def __init__(self, market, objective, setup, modular=True):
        self.m, self.obj, self.setup, self.modular = market, objective, setup, modular
        self.args = tuple(_writable(x) for x in
                          (market.sigma2, market.noise_var, objective.c, objective.d, objective.e, objective.k))
        self.S = _writable(market.cov)
        self.values = np.asarray(market.values, dtype=float)

    def _eval(self, a):
        M, h, shared = fresh_state(self.S, self.args[1], a)
        x = np.diag(M).copy()
        s2 = self.m.sigma2
        o = self.obj
        L = s2 - x
        g = np.where(shared, x * x / np.where(shared, h, 1.0), 0.0)     # own gains (dm_opt.gaussian.kernels.posterior)
        f = float(np.dot(o.c, L) + np.sum(a * (o.d * L - o.e * g - o.k)))
        kind = self.setup.price_kind
        pay = 0.0 if kind == 0 else float(np.sum(a * self.values * (g if kind == 1 else L)))
        return M, x, h, g, f, pay

    def __call__(self, state):
        lo = (state == 1).astype(np.int8)
        hi = (state != 2).astype(np.int8)
        M_lo, x_lo, h_lo, g_lo, f_lo, pay_lo = self._eval(lo)
        M_hi, x_hi, h_hi, g_hi, f_hi, pay_hi = self._eval(hi)
        kind = self.setup.price_kind
        if kind == 1:
            pay_lb = float(np.sum(lo * self.values * g_hi))
        elif kind == 2:
            pay_lb = pay_lo
        else:
            pay_lb = 0.0
        s2, t2, c, d, e, k = self.args
        bound = float(node_bound(state, x_lo, h_lo, x_hi, h_hi, s2, t2, c, d, e, k))
        if self.modular:
            bound = min(bound, float(modular_bound(state, M_lo, M_hi, x_lo, h_lo, x_hi, h_hi, s2, t2, c, d, e, k,
                                                   np.empty(3 * state.shape[0]))))
        return f_lo, f_hi, pay_lo, pay_hi, pay_lb, bound


def _python_search(market, objective, setup: _Setup, order, prefer_in, evaluate, *, search, tol,
                   time_limit, node_limit, progress, path) -> RawSolution:
    """Depth-first or best-first search driven by ``evaluate(state)`` (exact values per node)."""
    n = market.n
    prune_tol = PRUNE_FRACTION * tol
    budget_ok = setup.budget + BUDGET_TOL
    best, best_a = -np.inf, None
    counter = 0
    # open nodes: (−parent bound, tie-break counter, state); a list used as a stack or a heap
    open_nodes = [(-np.inf, 0, setup.state0.copy())]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    nodes = 0
    status, message = Termination.OPTIMAL, ""
    show = _Progress(progress)
    t0 = time.perf_counter()
    current = None

    def open_bound():
        b = max((-item[0] for item in open_nodes), default=-np.inf)
        if current is not None:
            b = max(b, -current[0])
        return b

    try:
        while open_nodes:
            if node_limit is not None and nodes >= node_limit:
                status, message = Termination.NODE_LIMIT, f"node limit {node_limit} reached"
                break
            if time_limit is not None and nodes > 0 and time.perf_counter() - t0 >= time_limit:
                status, message = Termination.TIME_LIMIT, f"time limit {time_limit}s reached"
                break
            current = heapq.heappop(open_nodes) if search == "best" else open_nodes.pop()
            if search == "best" and -current[0] <= best + prune_tol:
                current = None
                break  # every open node is bounded by the incumbent
            state = current[2]
            nodes += 1
            n_in = int(np.sum(state == 1))
            n_free = int(np.sum(state == 0))
            if n_in > setup.max_sh or n_in + n_free < setup.min_sh:
                current = None
                continue
            f_lo, f_hi, pay_lo, pay_hi, pay_lb, bound = evaluate(state)
            if pay_lb > budget_ok:
                current = None
                continue
            only_lo = n_in == setup.max_sh
            only_hi = n_in + n_free == setup.min_sh
            if n_in >= setup.min_sh and not only_hi and pay_lo <= budget_ok and f_lo > best:
                best, best_a = f_lo, (state == 1).astype(np.int8)
            if (n_free > 0 and n_in + n_free <= setup.max_sh and not only_lo and pay_hi <= budget_ok
                    and f_hi > best):
                best, best_a = f_hi, (state != 2).astype(np.int8)
            if n_free == 0 or only_lo or only_hi or bound <= best + prune_tol:
                current = None
                continue
            free = np.flatnonzero(state == 0)
            u = free[np.argmin(rank[free])]
            kids = []
            for val in ((1, 2) if prefer_in[u] else (2, 1)):
                child = state.copy()
                child[u] = val
                kids.append(child)
            for child in (kids[::-1] if search == "depth" else kids):
                counter += 1
                item = (-bound, counter, child)
                if search == "best":
                    heapq.heappush(open_nodes, item)
                else:
                    open_nodes.append(item)
            current = None
            show(nodes, best, max(best, open_bound()))
    except KeyboardInterrupt:
        status, message = Termination.INTERRUPTED, "interrupted by the user"
    elapsed = time.perf_counter() - t0
    bound = max(best, open_bound()) if status is not Termination.OPTIMAL else best
    show(nodes, best, bound, force=True)
    return _raw(best_a, best, bound, status, message, nodes, elapsed, setup, search=search, path=path)


# ---------------------------------------------------------------- entry point
def branch_and_bound(market, objective, *, constraints=None, tol: float | None = None,
                     time_limit: float | None = None, node_limit: int | None = None,
                     progress: bool = False, order: str = "deviation", search: str = "depth",
                     lemma3: bool = True, generic: bool = False, modular: bool = True) -> RawSolution:
    """Exact maximisation of ``objective`` over sharing profiles by branch-and-bound.

    Parameters
    ----------
    market : GaussianMarket or any leakage oracle (``n``, ``values``, ``leakage``, ``own_leakage``)
    objective : LeakageObjective (shape (n,) weights)
    constraints : SideConstraints, dict or None
    tol : absolute tie tolerance (default ``1e-9 ×`` the objective's scale); nodes whose
        bound is within ``tol/2`` of the incumbent are pruned.
    time_limit : seconds; node_limit : nodes processed.  On either (or Ctrl-C) the
        incumbent is returned with the proven bound ``max(incumbent, open nodes' bounds)``.
    order : branching order (:func:`branching_order`); search : ``depth`` (default,
        compiled for Gaussian markets) or ``best`` (best-first, fresh states per node).
    lemma3 : fix users in by the generalised Lemma 3 (never with side constraints).
    generic : force the oracle path even for a Gaussian market (testing, comparison).
    """
    from dm_opt.gaussian.leakage.base import is_leakage_market
    from dm_opt.gaussian.market import GaussianMarket

    t_entry = time.perf_counter()     # the time limit covers set-up (and loading the kernels) too
    if not is_leakage_market(market):
        raise ProblemError(f"branch-and-bound needs a market with n, values, leakage and own_leakage; "
                           f"got {type(market).__name__}")
    if objective.n != market.n:
        raise ProblemError(f"objective has {objective.n} weights, market has {market.n} users")
    if search not in SEARCHES:
        raise ProblemError(f"unknown search '{search}'; choose one of {', '.join(SEARCHES)}")
    if node_limit is not None and (isinstance(node_limit, bool) or not isinstance(node_limit, (int, np.integer))
                                   or node_limit < 1):
        raise ProblemError(f"node_limit must be a positive integer, got {node_limit!r}")
    cons = SideConstraints.from_any(constraints, market.n)
    if cons is not None:
        cons.check_problem(objective.name)
    if tol is None:
        top = getattr(market, "sigma2", None)     # largest leakage per user
        if top is None:
            top = np.abs(np.asarray(market.leakage(np.ones(market.n, dtype=np.int8)), dtype=float))
        scale = float(np.sum((np.abs(objective.c) + np.abs(objective.d) + np.abs(objective.e))
                             * np.asarray(top) + np.abs(objective.k)))
        tol = 1e-9 * scale
    setup = _setup(market, objective, cons, lemma3)
    reason = _trivially_infeasible(setup, market.n)
    if reason:
        return RawSolution(profile=None, status=Termination.INFEASIBLE, bound=-np.inf,
                           message=f"infeasible side constraints: {reason}",
                           extra={"search": search, "fixed_by_lemma3": 0})
    order_arr = branching_order(objective, order)
    prefer_in = net_weight(objective) > 0
    if time_limit is not None:
        time_limit = max(0.0, float(time_limit) - (time.perf_counter() - t_entry))
    kw = dict(tol=float(tol), time_limit=time_limit, node_limit=node_limit, progress=progress)
    gaussian = isinstance(market, GaussianMarket) and not generic
    if gaussian and search == "depth":
        return _gaussian_dfs(market, objective, setup, order_arr, prefer_in, order_name=order,
                             modular=modular, **kw)
    if not isinstance(market, GaussianMarket):
        _require_bound_properties(market)
    evaluate = (_GaussianFreshNodes(market, objective, setup, modular) if gaussian
                else _OracleNodes(market, objective, setup))
    return _python_search(market, objective, setup, order_arr, prefer_in, evaluate, search=search,
                          path="gaussian-fresh" if gaussian else "oracle", **kw)


def _require_bound_properties(market) -> None:
    """The oracle bounds are valid only under Properties 3–4 of §5.1 (monotone leakage,
    own leakage nonincreasing in the others' set).  Markets whose class proves them
    (``properties_proven = True``: Gaussian MSE, mutual information, mixtures) pass; any
    other oracle (e.g. a user-supplied table) is checked exhaustively, and refused if they
    fail, since the search would otherwise be silently wrong."""
    if getattr(market, "properties_proven", False):
        return
    from dm_opt.gaussian.leakage.properties import MAX_CHECK_N, check_properties

    if market.n > MAX_CHECK_N:
        raise ProblemError(
            f"method 'bnb' needs Properties 3-4 (monotone leakage, submodular own leakage) and cannot "
            f"verify them for this {type(market).__name__} with n = {market.n} > {MAX_CHECK_N}; "
            f"use method='enumerate'")
    report = check_properties(market)
    failed = [p for p in (3, 4) if report.holds.get(p) is False]
    if failed:
        first = report.first(failed[0])
        raise ProblemError(
            f"method 'bnb' is not valid for this market: Property {failed[0]} fails "
            f"({first.detail if first else 'see dm_opt.check_properties'}); use method='enumerate'")


@register
class BranchAndBound(Backend):
    """Exact branch-and-bound with monotone interval bounds (SPEC §1.3); takes side constraints."""

    name = "bnb"
    supports_constraints = True

    OPTIONS = ("node_limit", "order", "search", "lemma3", "generic", "modular")

    def run(self, market, objective, *, all_optima, time_limit, constraints, tol, progress, options):
        self.check_options(options)
        return branch_and_bound(market, objective, constraints=constraints, tol=tol, time_limit=time_limit,
                                progress=progress, **options)
