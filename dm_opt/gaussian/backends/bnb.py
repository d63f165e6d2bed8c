"""Exact branch-and-bound from monotone interval bounds (docs/spec.md §1.3), ``method="bnb"``.

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

Symmetry chains (option ``symmetry``, default on; Gaussian fast path, no
``force_in``/``force_out``/budget): users whose swap maps ``(Σ, τ²)`` to itself
(*twins*, :func:`twin_classes`: equicorrelated and block markets) are ordered by
dominance (``c, d`` larger, ``e, k`` smaller; for the three problems: smaller
``v``), and the search only visits profiles in which a twin shares only if every
dominating twin does (:func:`symmetry_chains` has the swap proof): branching a user
in also fixes in her dominating twins, out her dominated ones.  An orbit of ``m``
twins then has ``m + 1`` completions instead of ``2^m``.

Incumbent local search (option ``local_search``, default on, no side constraints):
after :data:`LOCAL_SEARCH_AFTER` seconds, and again whenever the elapsed time has
doubled, 1-flip moves from the incumbent, each evaluated exactly from a fresh state,
for at most :data:`LOCAL_SEARCH_SHARE` of the elapsed time.

Tangent planes (option ``tangent``, default ``"auto"``: at the incumbent with linear rows, off
without them — measured there, fewer nodes only rarely and slower per node): global linear
upper bounds on every user's term from the concavity of ``P_ii`` in relaxed profiles
(:func:`dm_opt.gaussian.backends.bounds.tangent_planes`,
:func:`dm_opt.gaussian.kernels.bnb.tangent_bound`).

Linear side rows (option ``row_bound``, default ``"lagrange"``): inside the compiled search —
row-infeasible nodes pruned, forced users branched on first, incumbents checked against the rows,
and every separable node bound (interval, modular, tangent) tightened by a Lagrangian dual over
the rows (:func:`dm_opt.gaussian.kernels.bnb.row_lagrange_bound`, valid for any multipliers).

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
from dm_opt.core.limits import adapt_chunk, check_model_size
from dm_opt.core.registry import Backend, RawSolution, register
from dm_opt.core.result import Termination
from dm_opt.gaussian.backends.bounds import TANGENT_SLACK_MAX, tangent_planes, tangent_slack
from dm_opt.gaussian.base import evaluate_objective
from dm_opt.gaussian.constraints import BUDGET_TOL, SideConstraints
from dm_opt.gaussian.kernels.bnb import dfs_chunk, fresh_value, modular_bound, node_bound, pick_dfs
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
TANGENT_MODES = ("off", "half", "incumbent", "both")
#: Tangent planes at the incumbent are recomputed at most once per this fraction of the elapsed time.
PLANE_REFRESH = 0.1
#: The incumbent local search (option ``local_search``) starts when the search has run this long (s)
LOCAL_SEARCH_AFTER = 1.0
#: … and runs again whenever the elapsed time has doubled, each time for at most this fraction of it.
LOCAL_SEARCH_SHARE = 0.1
#: Twin detection splits candidate groups by one hash key per distinct off-diagonal value when
#: a row has at most this many distinct values (else pairwise exact checks only).
TWIN_KEY_VALUES = 64
SEARCHES = ("depth", "best")
#: How the Gaussian depth-first search handles linear side rows (option ``row_bound``).
ROW_BOUNDS = ("lagrange", "prune", "branch")


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
    symmetry: bool = False
    chained: int = 0


def _setup(market, objective, cons: SideConstraints | None, lemma3: bool, symmetry: bool = True) -> _Setup:
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
    # symmetry chains: valid with counting constraints only (swaps keep the number of sharers)
    sym = bool(symmetry) and (cons is None or (not cons.force_in and not cons.force_out and cons.budget is None
                                               and cons.linear is None))
    return _Setup(state, price_kind, budget, min_sh, max_sh, fixed, sym)


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



def _verified_twins(S, t2, left) -> list[np.ndarray]:
    """Exact twin classes (size ≥ 2) among the candidate users ``left``."""
    out = []
    while left.size > 1:
        r = left[0]
        D = S[left] - S[r]
        D[:, r] = 0.0
        D[np.arange(left.size), left] = 0.0
        same = ~np.any(D != 0.0, axis=1) & (t2[left] == t2[r]) & (S[left, left] == S[r, r])
        cls = left[same]
        if cls.size > 1:
            out.append(np.sort(cls))
        left = left[~same]
    return out


def twin_classes(cov, noise_var) -> list[np.ndarray]:
    """Classes of exchangeable users ("twins"): ``i ~ j`` when swapping them maps ``(Σ, τ²)``
    to itself exactly (``Σ_ii = Σ_jj``, ``τ_i = τ_j``, ``Σ_ik = Σ_jk`` for every ``k ≠ i, j``).

    The relation is an equivalence (a product of such transpositions is an automorphism,
    ``(i k) = (i j)(j k)(i j)``).  Classes of size ≥ 2 only, each sorted by index.
    """
    S = np.asarray(cov, dtype=float)
    t2 = np.asarray(noise_var, dtype=float)
    n = S.shape[0]
    # candidate groups: equal diagonal, noise and sorted off-diagonal row (a necessary condition)
    groups: dict = {}
    for i in range(n):
        off = np.sort(np.delete(S[i], i))
        groups.setdefault((S[i, i], t2[i], off.tobytes()), []).append(i)
    classes = []
    rng = np.random.default_rng(0)
    r = rng.uniform(1.0, 2.0, n)
    for members in groups.values():
        G = np.array(members, dtype=np.int64)
        if G.size < 2:
            continue
        # twins i, j have Σ_{k≠i} S_ik r_k + σ r_i equal, σ = S_ij (the same for a whole class and a
        # value of the shared off-diagonal multiset): split the group by that key, up to round-off
        vals = np.unique(np.delete(S[G[0]], G[0]))
        if vals.size <= TWIN_KEY_VALUES:
            base = S[G] @ r - S[G, G] * r[G]
            scale = np.abs(S[G]) @ r
            for sigma in vals:
                key = base + sigma * r[G]
                o = np.argsort(key)
                cut = np.flatnonzero(np.diff(key[o]) > 1e-9 * (1.0 + scale[o][1:]))
                for part in np.split(G[o], cut + 1):
                    if part.size > 1:
                        classes += _verified_twins(S, t2, part)
            continue
        classes += _verified_twins(S, t2, G)
    # every verified set lies inside one twin class (the relation is an equivalence), so
    # overlapping sets (a class found under two keys) are merged: disjoint classes
    root = np.arange(n)

    def find(i):
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for cls in classes:
        for j in cls[1:]:
            a, b = find(int(cls[0])), find(int(j))
            if a != b:
                root[b] = a
    members: dict = {}
    for cls in classes:
        for i in cls:
            members.setdefault(find(int(i)), set()).add(int(i))
    return [np.array(sorted(v), dtype=np.int64) for _, v in sorted(members.items())]


def symmetry_chains(market, objective, setup) -> tuple[np.ndarray, np.ndarray]:
    """Dominance chains inside twin classes: ``chain_prev[j] = i`` means some optimum has
    ``a_i ≥ a_j`` for every pair of consecutive twins, so the search enforces it.

    Twin ``i`` dominates twin ``j`` when ``c_i ≥ c_j``, ``d_i ≥ d_j``, ``e_i ≤ e_j`` and
    ``k_i ≤ k_j`` (for the three problems: ``v_i ≤ v_j``).  Swapping a sharing ``j`` with a
    non-sharing ``i`` changes ``f`` by ``(c_i−c_j)(X_in−X_out) + (d_i−d_j)X_in −
    (e_i−e_j)own − (k_i−k_j) ≥ 0``, where ``X_in ≥ X_out ≥ 0`` are the sharer's and the
    non-sharer's leakage (the twin's own signal is at least as informative as the other
    twin's) and ``own ≥ 0``; so sorting every class by swaps never lowers ``f``.  Chains
    are broken where consecutive twins are incomparable.
    """
    n = market.n
    prev = np.full(n, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    c, d, e, k = objective.c, objective.d, objective.e, objective.k
    for cls in twin_classes(market.cov, market.noise_var):
        # most dominant first: larger c, larger d, smaller e, smaller k; ties by index
        key = np.lexsort((cls, k[cls], e[cls], -d[cls], -c[cls]))
        srt = cls[key]
        for a, b in zip(srt[:-1], srt[1:]):
            if c[a] >= c[b] and d[a] >= d[b] and e[a] <= e[b] and k[a] <= k[b]:
                prev[b] = a
                nxt[a] = b
    return prev, nxt


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
                  node_limit, progress, order_name, modular, tangent="off", local_search=True,
                  chain_split="median", incumbent=None, between=None, open_out=None, rows=None,
                  row_bound="lagrange") -> RawSolution:
    """Compiled depth-first search from the node ``setup.state0``.

    ``rows`` (:class:`~dm_opt.gaussian.constraints.LinearRows` or ``None``): linear side rows handled
    inside the compiled search (pruning, propagation, incumbents; with ``row_bound="lagrange"`` also
    the Lagrangian node bound, :func:`~dm_opt.gaussian.kernels.bnb.row_lagrange_bound`).

    Hooks for the parallel search (:mod:`dm_opt.gaussian.backends.bnb_parallel`): ``incumbent``
    ``(value, profile)`` — a feasible profile from elsewhere, its exact value the initial cutoff;
    ``between(inc_a, inc_val)`` — called between chunks (may exchange the incumbent in place),
    returns ``None`` or ``(status, message)`` to stop; ``open_out`` — a list that receives
    ``(state, bound)`` of every node left open (each a subtree not yet explored).
    """
    t0 = time.perf_counter()
    n = market.n
    S = _writable(market.cov)
    tau2 = _writable(market.noise_var)
    sig2 = _writable(market.sigma2)
    c, d, e, k = (_writable(x) for x in (objective.c, objective.d, objective.e, objective.k))
    pv = _writable(market.values)
    cap = n + 2
    # two stacks of n×n posterior states along the path: refuse before allocating what the machine
    # does not have (n = 1000 would need ≈ 16 GB)
    check_model_size(f"method 'bnb' at n = {n}", 2 * cap * n * n, 8.0,
                     hint="use a community market (kind community_market) for block-structured Σ, "
                          "or raise dm_opt.core.limits.MEMORY_BUDGET")
    chain_prev, chain_next = symmetry_chains(market, objective, setup) if setup.symmetry else (
        np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64))
    setup.chained = int(np.sum(chain_next >= 0))
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
    if incumbent is not None:
        inc_val[0], inc_a[:] = incumbent
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
    planes = _Planes(market, objective, setup, tol, tangent)
    # local search only without side constraints (a flip may break any of them)
    next_ls = LOCAL_SEARCH_AFTER if (local_search and setup.price_kind == 0 and setup.min_sh == 0 and rows is None
                                     and setup.max_sh >= n and not np.any(setup.state0 == 2)) else np.inf
    if rows is None:
        row_args = (np.zeros((0, n)), np.zeros(0), np.zeros(0), np.zeros(0), 0, np.zeros((2, 0)))
    else:
        row_args = (_writable(rows.A), _writable(rows.lb), _writable(rows.ub), _writable(rows.slack),
                    1 if row_bound == "lagrange" else 0, np.zeros((2 + len(TANGENT_MODES), rows.m)))

    def open_bound():
        sp = int(ctl[0])
        return float(np.max(st_bound[:sp])) if sp else -np.inf

    # a cold numba cache: the same kernel in the interpreter first, compiled only if the search runs on
    run, python_for = pick_dfs(dfs_chunk, n, threads=between is not None)
    kernels = "compiled" if python_for is None else "python"
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
            stop = between(inc_a, inc_val) if between is not None and ctl[1] > 0 else None
            if stop is not None:
                status, message = stop
                break
            if time_limit is not None and ctl[1] > 0 and time.perf_counter() - t0 >= time_limit:
                status, message = Termination.TIME_LIMIT, f"time limit {time_limit}s reached"
                break
            c0 = time.perf_counter()
            if c0 - t0 >= next_ls and np.isfinite(inc_val[0]):
                budget_s = LOCAL_SEARCH_SHARE * (c0 - t0)
                if time_limit is not None:
                    budget_s = min(budget_s, max(0.0, time_limit - (c0 - t0)))
                _local_search(S, tau2, sig2, c, d, e, k, pv, setup.state0, inc_a, inc_val, prune_tol,
                              c0 + budget_s)
                next_ls = 2.0 * (c0 - t0)
                c0 = time.perf_counter()
            planes.refresh(inc_a, float(inc_val[0]), time.perf_counter() - t0)
            if python_for is not None and c0 - t0 >= python_for:
                run, python_for, kernels = dfs_chunk, None, "python, then compiled"
            run(S, tau2, sig2, c, d, e, k, order, prefer_in, pv, setup.price_kind, setup.budget,
                      BUDGET_TOL, budget_slack, setup.min_sh, setup.max_sh, st_state, st_Qlo, st_Qhi,
                      st_Dlo, st_Dhi, st_Glo, st_Ghi, st_amp, st_bound, st_pos, ctl, inc_a, inc_val, prune_tol,
                      cand_eps, np.int64(todo), order_name == "dynamic", modular, chain_prev, chain_next,
                      planes.A, planes.B, planes.Bmax, planes.slack, chain_split == "median", *row_args)
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
    if open_out is not None:
        open_out.extend((st_state[j].copy(), float(st_bound[j])) for j in range(int(ctl[0])))
    show(int(ctl[1]), best, bound, force=True)
    raw = _raw(inc_a if np.isfinite(best) else None, best, bound, status, message, int(ctl[1]),
               elapsed, setup, search="depth", path="gaussian")
    raw.extra["kernels"] = kernels
    return raw


class _Planes:
    """Tangent-plane sets for the node bound (:func:`dm_opt.gaussian.backends.bounds.tangent_planes`).

    ``mode``: ``"off"``; ``"half"`` — one set at the relaxed point with every root-free
    user at 1/2; ``"incumbent"`` — one set at ``(incumbent + 1/2)/2`` on the root-free users,
    recomputed when the incumbent has changed (at most every ``PLANE_REFRESH`` of the
    elapsed time); ``"both"`` — the two sets.  Every set bounds every profile, so
    they can be replaced between chunks.  Off when the objective is not covered or the
    round-off slack is not small against the tie tolerance.
    """

    def __init__(self, market, objective, setup, tol, mode):
        if mode not in TANGENT_MODES:
            raise ProblemError(f"unknown tangent mode '{mode}'; choose one of {', '.join(TANGENT_MODES)}")
        n = market.n
        self.m, self.obj = market, objective
        self.fixed = setup.state0
        self.sets: dict = {}
        self.inc_key = None
        self.last = -np.inf
        self.slack = 0.0
        self.mode = mode
        if mode != "off":
            self.slack = tangent_slack(market.cov, market.noise_var, objective)
            if self.slack > TANGENT_SLACK_MAX * tol:
                self.mode = "off"
        if self.mode in ("half", "both"):
            self._add("half", np.full(n, 0.5))
        self._pack()

    def _point(self, free_values):
        return np.where(self.fixed == 1, 1.0, np.where(self.fixed == 2, 0.0, free_values))

    def _add(self, key, free_values):
        planes = tangent_planes(self.m.cov, self.m.noise_var, self.obj, self._point(free_values))
        if planes is None:
            self.mode = "off"
            self.sets = {}
            return
        A, B = planes
        self.sets[key] = (A, B, np.maximum(B[0], B[1]))

    def _pack(self):
        n = self.m.n
        sets = list(self.sets.values())
        self.A = np.ascontiguousarray(np.array([x[0] for x in sets]).reshape(len(sets), 2, n))
        self.B = np.ascontiguousarray(np.array([x[1] for x in sets]).reshape(len(sets), 2, n, n))
        self.Bmax = np.ascontiguousarray(np.array([x[2] for x in sets]).reshape(len(sets), n, n))

    def refresh(self, inc_a, inc_val, elapsed):
        if self.mode not in ("incumbent", "both") or not np.isfinite(inc_val):
            return
        key = inc_a.tobytes()
        if key == self.inc_key or elapsed - self.last < PLANE_REFRESH * elapsed:
            return
        self.inc_key = key
        self.last = elapsed
        self._add("incumbent", 0.5 * inc_a + 0.25)
        self._pack()


def _local_search(S, tau2, sig2, c, d, e, k, pv, state0, inc_a, inc_val, min_gain, deadline) -> None:
    """1-flip first-improvement local search from the incumbent, in place (until ``deadline``).

    Every candidate is evaluated exactly from a fresh state
    (:func:`~dm_opt.gaussian.kernels.bnb.fresh_value`), so an accepted profile is a
    valid incumbent; users fixed in at the root (Lemma 3) stay in.  A move must gain
    more than ``min_gain``.
    """
    a = inc_a.copy()
    best = float(inc_val[0])
    movable = np.flatnonzero(state0 == 0)
    improved = True
    value = fresh_value.without_compile()       # a search still in the interpreter compiles nothing here
    while improved and time.perf_counter() < deadline:
        improved = False
        for i in movable:
            if time.perf_counter() >= deadline:
                break
            a[i] ^= 1
            val, _ = value(S, tau2, sig2, c, d, e, k, a, pv, 0)
            if val > best + min_gain:
                best = float(val)
                improved = True
            else:
                a[i] ^= 1
    if best > inc_val[0]:
        inc_a[:] = a
        inc_val[0] = best


def _raw(profile, best, bound, status, message, nodes, elapsed, setup, *, search, path) -> RawSolution:
    extra = {"search": search, "path": path, "fixed_by_lemma3": setup.fixed_by_lemma3,
             "symmetry_chained": setup.chained, "incumbent_value": best}
    if profile is None and status is Termination.OPTIMAL:
        return RawSolution(profile=None, status=Termination.INFEASIBLE, bound=-np.inf, nodes=nodes,
                           solve_seconds=elapsed,
                           message=("infeasible side constraints: no profile satisfies them"
                                    + (f" (budget {setup.budget:g} on total payments)"
                                       if np.isfinite(setup.budget) else "")), extra=extra)
    return RawSolution(profile=None if profile is None else np.array(profile, dtype=np.int8), status=status,
                       bound=float(bound), nodes=nodes, solve_seconds=elapsed, message=message, extra=extra)


def _gaussian_rows(market, objective, setup: _Setup, order, prefer_in, *, linear, cons, tol, time_limit,
                   node_limit, progress, **dfs_options) -> RawSolution:
    """Linear side rows on a Gaussian market: :func:`dm_opt.gaussian.constraints.branch_on_rows`
    around the compiled search (which solves each node without the rows, exactly; its optimum
    is within ``PRUNE_FRACTION · tol``, and the row search prunes with the same slack).
    ``dfs_options`` (``order_name``, ``modular``, …) are passed on to :func:`_gaussian_dfs`."""
    import dataclasses

    from dm_opt.gaussian.constraints import branch_on_rows

    t0 = time.perf_counter()
    prune_tol = PRUNE_FRACTION * tol

    def relaxed(state, seconds):
        if not np.any(state == 0):        # every user fixed: the one profile, valued directly
            a = (state == 1).astype(np.int8)
            v = evaluate(a)
            return (a, v, v, True) if np.isfinite(v) else (None, -np.inf, -np.inf, True)
        sub = dataclasses.replace(setup, state0=state, symmetry=False)
        r = _gaussian_dfs(market, objective, sub, order, prefer_in, tol=tol, time_limit=seconds, node_limit=None,
                          progress=False, **dfs_options)
        if r.status is Termination.INFEASIBLE:
            return None, -np.inf, -np.inf, True
        done = r.status is Termination.OPTIMAL
        return r.profile, float(r.extra["incumbent_value"]), float(r.bound) + (prune_tol if done else 0.0), done

    def evaluate(a):          # exact value of a repaired profile; -inf if counts, forced users or budget fail
        if cons is not None and not cons.feasible(market, objective.name, a):
            return -np.inf
        return market.evaluate(objective, a)

    res = branch_on_rows(linear, setup.state0, relaxed, slack=prune_tol, time_limit=time_limit, node_limit=node_limit,
                         evaluate=evaluate)
    elapsed = time.perf_counter() - t0
    status, message = Termination.OPTIMAL, ""
    if not res.complete:
        if time_limit is not None and elapsed >= time_limit:
            status, message = Termination.TIME_LIMIT, f"time limit {time_limit}s reached"
        else:
            status, message = Termination.NODE_LIMIT, f"node limit {node_limit} reached"
    raw = _raw(res.profile, res.value, res.bound, status, message, res.nodes, elapsed, setup, search="depth",
               path="gaussian-rows")
    raw.extra["relaxed_solves"] = res.subsolves
    return raw


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
                   time_limit, node_limit, progress, path, linear=None) -> RawSolution:
    """Depth-first or best-first search driven by ``evaluate(state)`` (exact values per node).

    ``linear`` (:class:`~dm_opt.gaussian.constraints.LinearRows`): a node is first reduced by
    bound propagation (users every feasible completion fixes are fixed; no feasible completion:
    pruned), an extreme completion becomes an incumbent only if it satisfies the rows exactly,
    and a node about to branch is pruned when the LP over its free users is infeasible.  The node
    bounds stay valid: they bound every completion, feasible or not."""
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
            if linear is not None:
                state = linear.propagate(state)
                if state is None:
                    current = None
                    continue
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
            if (n_in >= setup.min_sh and not only_hi and pay_lo <= budget_ok and f_lo > best
                    and (linear is None or linear.feasible(state == 1))):
                best, best_a = f_lo, (state == 1).astype(np.int8)
            if (n_free > 0 and n_in + n_free <= setup.max_sh and not only_lo and pay_hi <= budget_ok
                    and f_hi > best and (linear is None or linear.feasible(state != 2))):
                best, best_a = f_hi, (state != 2).astype(np.int8)
            if n_free == 0 or only_lo or only_hi or bound <= best + prune_tol:
                current = None
                continue
            if linear is not None and linear.m > 1 and not linear.lp_feasible(state):
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
                     lemma3: bool = True, generic: bool = False, modular: bool = True,
                     symmetry: bool = True, tangent: str = "auto", local_search: bool = True,
                     chain_split: str = "median", workers: int | None = None,
                     scheduler: str | None = None, row_bound: str = "lagrange") -> RawSolution:
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
    modular : also use the modular Woodbury bound.
    symmetry : symmetry chains among twin users (module docstring); Gaussian fast path.
    tangent : ``"auto"`` (default: ``"incumbent"`` with linear side rows, else ``"off"``), ``"off"``,
        ``"half"``, ``"incumbent"`` or ``"both"`` tangent-plane sets.
    local_search : 1-flip local search from the incumbent on long runs (no side constraints).
    chain_split : ``"median"`` (default: branch on the middle of a run of free twins) or
        ``"first"`` (on the user the static order names).
    workers, scheduler : parallel search over subtrees on ``workers`` local threads, or on the
        Dask cluster at ``scheduler`` (:mod:`dm_opt.gaussian.backends.bnb_parallel`); Gaussian
        depth-first search only.
    row_bound : linear side rows on the Gaussian depth-first path: ``"lagrange"`` (default: inside the
        compiled search, with the Lagrangian node bound), ``"prune"`` (inside it, pruning only) or
        ``"branch"`` (:func:`dm_opt.gaussian.constraints.branch_on_rows` around the search without rows).
    """
    from dm_opt.gaussian.leakage.base import is_leakage_market
    from dm_opt.gaussian.market import GaussianMarket

    t_entry = time.perf_counter()     # the time limit covers set-up (and loading the kernels) too
    if not is_leakage_market(market):
        raise ProblemError(f"branch-and-bound needs a market with n, values, leakage and own_leakage; "
                           f"got {type(market).__name__}")
    if objective.n != market.n:
        raise ProblemError(f"objective has {objective.n} weights, market has {market.n} users")
    _check_option_types(order=order, search=search, chain_split=chain_split, row_bound=row_bound, tangent=tangent,
                        lemma3=lemma3, generic=generic, modular=modular, symmetry=symmetry,
                        local_search=local_search, progress=progress)
    if search not in SEARCHES:
        raise ProblemError(f"unknown search '{search}'; choose one of {', '.join(SEARCHES)}")
    if chain_split not in ("median", "first"):
        raise ProblemError(f"unknown chain_split '{chain_split}'; choose 'median' or 'first'")
    if row_bound not in ROW_BOUNDS:
        raise ProblemError(f"unknown row_bound '{row_bound}'; choose one of {', '.join(ROW_BOUNDS)}")
    if node_limit is not None and (isinstance(node_limit, bool) or not isinstance(node_limit, (int, np.integer))
                                   or node_limit < 1):
        raise ProblemError(f"node_limit must be a positive integer, got {node_limit!r}")
    cons = SideConstraints.from_any(constraints, market.n)
    if cons is not None:
        cons.check_problem(objective.name)
    if workers is not None or scheduler is not None:
        from dm_opt.gaussian.backends.bnb_parallel import check_parallel

        check_parallel(market, workers, scheduler, search=search, generic=generic, constraints=cons)
    if tol is None:
        top = getattr(market, "sigma2", None)     # largest leakage per user
        if top is None:
            top = np.abs(np.asarray(market.leakage(np.ones(market.n, dtype=np.int8)), dtype=float))
        scale = float(np.sum((np.abs(objective.c) + np.abs(objective.d) + np.abs(objective.e))
                             * np.asarray(top) + np.abs(objective.k)))
        tol = 1e-9 * scale
    setup = _setup(market, objective, cons, lemma3, symmetry)
    reason = _trivially_infeasible(setup, market.n)
    if reason:
        return RawSolution(profile=None, status=Termination.INFEASIBLE, bound=-np.inf,
                           message=f"infeasible side constraints: {reason}",
                           extra={"search": search, "fixed_by_lemma3": 0})
    if not np.any(setup.state0 == 0):
        # every user fixed (forced in/out, or Lemma 3): one candidate profile, decided directly (the
        # compiled search needs a free user to branch on)
        a = (setup.state0 == 1).astype(np.int8)
        path = "gaussian-fresh" if isinstance(market, GaussianMarket) and not generic else "oracle"
        if cons is None or cons.feasible(market, objective.name, a):
            val = float(evaluate_objective(market, objective, a))       # any leakage oracle, exact
            return _raw(a, val, val, Termination.OPTIMAL,
                        "every user is fixed; the one remaining profile is the optimum", 1,
                        time.perf_counter() - t_entry, setup, search=search, path=path)
        return _raw(None, -np.inf, -np.inf, Termination.OPTIMAL, "", 1, time.perf_counter() - t_entry, setup,
                    search=search, path=path)                            # -> infeasible
    order_arr = branching_order(objective, order)
    prefer_in = net_weight(objective) > 0
    if time_limit is not None:
        time_limit = max(0.0, float(time_limit) - (time.perf_counter() - t_entry))
    kw = dict(tol=float(tol), time_limit=time_limit, node_limit=node_limit, progress=progress)
    gaussian = isinstance(market, GaussianMarket) and not generic
    linear = None if cons is None else cons.linear
    if linear is not None:
        # linear rows: depth-first = inside the compiled search (row_bound "lagrange"/"prune") or
        # branch_on_rows around it ("branch"); best-first / generic = the Python search with node propagation
        reason = cons.empty_reason(market.n)
        if reason:
            return RawSolution(profile=None, status=Termination.INFEASIBLE, bound=-np.inf,
                               message=f"infeasible side constraints: {reason}",
                               extra={"search": search, "fixed_by_lemma3": 0})
        kw["linear"] = linear
    if tangent == "auto":
        # with rows the planes at the (feasible) incumbent, combined with the rows by the Lagrangian
        # bound, are far tighter than the extreme completions (docs/exact_solvers_bnb.md); without, slower
        tangent = "incumbent" if linear is not None and row_bound == "lagrange" else "off"
    if gaussian and search == "depth" and linear is None and (workers is not None or scheduler is not None):
        from dm_opt.gaussian.backends.bnb_parallel import parallel_dfs

        return parallel_dfs(market, objective, setup, order_arr, prefer_in, workers=workers, scheduler=scheduler,
                            order_name=order, modular=modular, tangent=tangent, local_search=local_search,
                            chain_split=chain_split, **kw)
    if gaussian and search == "depth" and linear is None:
        return _gaussian_dfs(market, objective, setup, order_arr, prefer_in, order_name=order,
                             modular=modular, tangent=tangent, local_search=local_search,
                             chain_split=chain_split, **kw)
    if gaussian and search == "depth" and row_bound != "branch":
        # linear rows inside the compiled search (propagation, pruning, Lagrangian node bound)
        kw.pop("linear")
        return _gaussian_dfs(market, objective, setup, order_arr, prefer_in, order_name=order, modular=modular,
                             tangent=tangent, local_search=False, chain_split=chain_split, rows=linear,
                             row_bound=row_bound, **kw)
    if gaussian and search == "depth":
        return _gaussian_rows(market, objective, setup, order_arr, prefer_in, order_name=order, cons=cons,
                              modular=modular, tangent=tangent, local_search=local_search,
                             chain_split=chain_split, **kw)
    if not isinstance(market, GaussianMarket):
        _require_bound_properties(market)
    evaluate = (_GaussianFreshNodes(market, objective, setup, modular) if gaussian
                else _OracleNodes(market, objective, setup))
    return _python_search(market, objective, setup, order_arr, prefer_in, evaluate, search=search,
                          path="gaussian-fresh" if gaussian else "oracle", **kw)


_STRING_OPTIONS = ("order", "search", "chain_split", "row_bound", "tangent")


def _check_option_types(**options) -> None:
    """Names and flags of :func:`branch_and_bound` must be a string / a bool: an array would raise numpy's
    truth-value error and a string flag such as ``symmetry="False"`` would be truthy."""
    for name, value in options.items():
        if name in _STRING_OPTIONS:
            if not isinstance(value, str):
                raise ProblemError(f"{name} must be a string, got {type(value).__name__}")
        elif not isinstance(value, (bool, np.bool_)):
            raise ProblemError(f"{name} must be True or False, got {value!r:.40}")


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
    """Exact branch-and-bound with monotone interval bounds (docs/spec.md §1.3); takes side constraints."""

    name = "bnb"
    supports_constraints = True

    OPTIONS = ("node_limit", "order", "search", "lemma3", "generic", "modular", "symmetry", "tangent", "local_search",
               "chain_split", "workers", "scheduler", "row_bound")

    def run(self, market, objective, *, all_optima, time_limit, constraints, tol, progress, options):
        self.check_options(options)
        from dm_opt.core.threads import blas_threads  # one BLAS thread for the small dense solves

        with blas_threads():
            return branch_and_bound(market, objective, constraints=constraints, tol=tol, time_limit=time_limit,
                                    progress=progress, **options)
