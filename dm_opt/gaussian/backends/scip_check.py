"""Branch-and-check with SCIP (``method="scip-check"``, optional extra ``scip``).

SCIP searches over the binaries ``a_i`` and one continuous objective variable ``θ``
(maximised, model units: the objective divided by its scale ``S``) subject to the user's side
constraints as LP rows: the linear rows of :class:`~dm_opt.gaussian.constraints.LinearRows`
(each relaxed by its slack, as in ``milp``), the sharer counts and the forced users.  The
objective itself never enters the LP as a formula: a constraint handler ``θ ≤ f(a)`` supplies it
in two ways.

* **Node cuts** (separation, every node): the node bounds of ``bnb`` are separable in the
  free users' choices — every completion ``a`` of a node satisfies
  ``f(a) ≤ C + Σ_{j∈FREE} (v_in[j] if a_j else v_out[j])``
  (:func:`~dm_opt.gaussian.kernels.bnb.interval_parts`,
  :func:`~dm_opt.gaussian.kernels.bnb.modular_parts` and, when the objective is covered,
  :func:`~dm_opt.gaussian.kernels.bnb.tangent_parts` from the tangent planes of
  :func:`~dm_opt.gaussian.backends.bounds.tangent_planes`, docs/exact_solvers_bnb.md) — so
  ``θ ≤ C + Σ_FREE v_out + Σ_FREE (v_in − v_out) a_j`` is a valid *local* cut of the node's
  subtree; with the rows in the same LP, the LP value is at most ``bnb``'s Lagrangian row bound
  (:func:`~dm_opt.gaussian.kernels.bnb.row_lagrange_bound`) for any multipliers — by LP duality it
  is that bound's minimum over the multipliers, and the LP also keeps the cuts of every ancestor.
  Posteriors of the node's two extreme completions come fresh from
  :func:`~dm_opt.gaussian.kernels.posterior.fresh_state` (``(n, n)`` states, once per node).
* **Check** (enforcement of integral LP solutions, feasibility check of every solution): the
  profile is valued exactly with ``market.evaluate`` (and checked with
  :meth:`SideConstraints.feasible`, which also decides a budget); a solution is feasible only if
  ``θ ≤ f(a)/S``.  An integral LP point with a larger ``θ`` is refused: its profile is recorded
  as a candidate incumbent, then the node's cuts are added if not yet in the LP, else the node is
  branched on the free user chosen by ``bnb``'s strong branching on bounds
  (:func:`~dm_opt.gaussian.kernels.bnb.choose_branch`); a node with every user fixed holds one
  profile and is cut off once it is recorded.  Fractional LP points are branched the same way by
  default (option ``branching="bounds"``; ``None`` or a SCIP rule name such as ``"pscost"``: SCIP's
  rule on the LP's fractional users).

A node whose LP value is within ``tol/2`` of the incumbent is cut off (``bnb``'s pruning rule);
the largest such value is kept and the reported bound is ``max(SCIP's dual bound, that value)``.
Incumbents: a profile meeting the rows (:meth:`SideConstraints.search_profile`) improved by an
exact 1-flip / swap local search, then every checked profile, rounded LP point and extreme
completion of a node, each valued exactly and handed to SCIP with ``θ = f(a)/S``.  The status
comes from :func:`dm_opt.gaussian.backends.milp.certify` (via ``finish_rounds``): ``optimal``
only when the bound is within ``tol`` of the exact value of the returned profile.

SCIP runs without presolve (the model is tiny and must keep one column per user), without
dual reductions or symmetry handling (they would need the objective SCIP cannot see) and, by
default (option ``plugins="lean"``), without its primal heuristics (their points carry the LP's
``θ`` and are refused by the check) and general cut separators.  Option ``depth_limit``: node
cuts at fractional points only down to that depth (deeper nodes keep their ancestors' cuts and
get their own only at integral points).  The CPU seconds of the Python callbacks are
``extra["callback_seconds"]``.
"""

from __future__ import annotations

import time

import numpy as np

from dm_opt.core.errors import ProblemError, SolverFailed
from dm_opt.core.registry import Backend, RawSolution, register
from dm_opt.core.result import Termination
from dm_opt.gaussian.backends.bounds import TANGENT_SLACK_MAX, tangent_planes, tangent_slack
from dm_opt.gaussian.backends.milp import BINARY_TOL, finish_rounds, gaussian_side_constraints, infeasible_result
from dm_opt.gaussian.backends.scip import check_scip_options, optimize_interruptible
from dm_opt.gaussian.kernels.bnb import choose_branch, interval_parts, modular_parts, tangent_parts
from dm_opt.gaussian.kernels.posterior import fresh_state

#: SCIP's feasibility tolerance (model units), as for ``misocp-scip``.
FEASTOL = 1e-9
#: The tie tolerance in model units (at most; the model unit is ``min(scale, tol / MODEL_TOL)``): far above
#: SCIP's epsilons, so that its node comparisons resolve differences of ``tol``.
MODEL_TOL = 1e-6
#: A node cut is added when the LP point violates it by more than this (model units).
CUT_VIOLATION = 1e-10
#: Exact evaluations allowed in one run of the incumbent local search.
LOCAL_SEARCH_EVALS = 4000
#: Warm starts (option ``warm_start``): ``"local"`` local search from a profile meeting the rows;
#: ``"bnb"`` also ``bnb``'s incumbent after :data:`BNB_WARM_NODES` nodes.
WARM_STARTS = ("local", "bnb")
BNB_WARM_NODES = 2000
#: SCIP plug-ins (option ``plugins``): ``"lean"`` — its primal heuristics and general cut separators
#: off; ``"default"`` — SCIP's defaults.
PLUGINS = ("lean", "default")


class _Check:
    """The state shared by the constraint handler's callbacks (exact values in model units)."""

    def __init__(self, market, objective, cons, S, tol_m, depth_limit):
        self.market, self.objective, self.cons = market, objective, cons
        self.name = objective.name
        self.S, self.tol_m = S, tol_m
        self.n = market.n
        self.depth_limit = depth_limit
        self.cov = np.array(market.cov, dtype=float, order="C")
        self.t2 = np.array(market.noise_var, dtype=float, order="C")
        self.args = tuple(np.array(x, dtype=float, order="C") for x in
                          (market.sigma2, market.noise_var, objective.c, objective.d, objective.e, objective.k))
        self.work = np.empty(3 * self.n)
        self.planes = None               # (A, B, Bmax, slack in objective units) or None
        self.values: dict[bytes, float] = {}
        self.best_a, self.best_val = None, -np.inf
        self.pending: list = []
        self.done_nodes: set = set()
        self.pruned_max = -np.inf
        self.stats = {"evaluations": 0, "node_cuts": 0, "cut_nodes": 0, "branched": 0, "tie_cutoffs": 0,
                      "callback_seconds": 0.0}
        self.error: BaseException | None = None
        self.model = None
        self.avars: list = []
        self.theta = None
        self._post_key, self._post = None, None

    # ------------------------------------------------------------ exact values
    def value(self, a: np.ndarray) -> float:
        """``f(a)/S`` from ``market.evaluate`` when ``a`` meets the side constraints exactly, else ``-inf``."""
        key = a.tobytes()
        v = self.values.get(key)
        if v is None:
            if self.cons is not None and not self.cons.feasible(self.market, self.name, a):
                v = -np.inf
            else:
                v = self.market.evaluate(self.objective, a) / self.S
                self.stats["evaluations"] += 1
            self.values[key] = v
        return v

    def consider(self, a: np.ndarray, search: bool = True) -> float:
        v = self.value(a)
        if v > self.best_val:
            self.best_a, self.best_val = a.copy(), v
            if search:
                self.local_search()
            self.pending.append(self.best_a)
        return v

    def local_search(self) -> None:
        """First-improvement 1-flip and swap moves from the incumbent (exact values, bounded work)."""
        budget = self.stats["evaluations"] + LOCAL_SEARCH_EVALS
        improved = True
        while improved and self.stats["evaluations"] < budget:
            improved = False
            a = self.best_a
            moves = [(i,) for i in range(self.n)]
            ones, zeros = np.flatnonzero(a == 1), np.flatnonzero(a == 0)
            moves += [(i, j) for i in ones for j in zeros]
            for mv in moves:
                if self.stats["evaluations"] >= budget:
                    break
                b = a.copy()
                for i in mv:
                    b[i] ^= 1
                if self.value(b) > self.best_val:
                    self.best_a, self.best_val = b, self.value(b)
                    improved = True
                    break

    def flush(self) -> None:
        """Hand the new incumbents to SCIP (``θ = f(a)/S``; SCIP checks them with :meth:`check`)."""
        m = self.model
        for a in self.pending:
            if self.value(a) < self.best_val:
                continue
            sol = m.createSol()
            for v, x in zip(self.avars, a, strict=True):
                m.setSolVal(sol, v, float(x))
            m.setSolVal(sol, self.theta, float(self.value(a)))
            m.trySol(sol, printreason=False)
        self.pending = []

    # ------------------------------------------------------------ node bounds
    def node_state(self) -> np.ndarray:
        st = np.zeros(self.n, dtype=np.int8)
        for i, v in enumerate(self.avars):
            if v.getLbLocal() > 0.5:
                st[i] = 1
            elif v.getUbLocal() < 0.5:
                st[i] = 2
        return st

    def node_posteriors(self, state: np.ndarray):
        """Fresh posterior states at the node's extreme completions ``IN`` and ``IN ∪ FREE``
        (cached for the current SCIP node: separation, enforcement and branching share them)."""
        key = state.tobytes()
        if self._post_key != key:
            M_lo, h_lo, _ = fresh_state(self.cov, self.t2, (state == 1).astype(np.int8))
            M_hi, h_hi, _ = fresh_state(self.cov, self.t2, (state != 2).astype(np.int8))
            self._post = (M_lo, h_lo, np.diag(M_lo).copy(), M_hi, h_hi, np.diag(M_hi).copy())
            self._post_key = key
        return self._post

    def node_parts(self, state: np.ndarray) -> list:
        """``[(const, v_out, v_in)]`` of the separable node bounds (objective units): every completion
        ``a`` has ``f(a) ≤ const + Σ_FREE (v_in[j] if a_j else v_out[j])`` for each entry."""
        n = self.n
        M_lo, h_lo, x_lo, M_hi, h_hi, x_hi = self.node_posteriors(state)
        out = []
        v_out, v_in = np.zeros(n), np.zeros(n)
        c0 = interval_parts(state, x_lo, h_lo, x_hi, h_hi, *self.args, v_out, v_in)
        out.append((float(c0), v_out, v_in))
        v_out, v_in = np.zeros(n), np.zeros(n)
        c0 = modular_parts(state, M_lo, M_hi, x_lo, h_lo, x_hi, h_hi, *self.args, self.work, v_out, v_in)
        out.append((float(c0), v_out, v_in))
        if self.planes is not None:
            A, B, Bmax, slack = self.planes
            v_out, v_in = np.zeros(n), np.zeros(n)
            c0 = tangent_parts(state, A, B, Bmax, v_out, v_in)
            out.append((float(c0) + slack, v_out, v_in))
        return out

    def branch_user(self, state: np.ndarray) -> int:
        """bnb's strong branching on bounds (:func:`~dm_opt.gaussian.kernels.bnb.choose_branch`)."""
        M_lo, h_lo, x_lo, M_hi, h_hi, x_hi = self.node_posteriors(state)
        n = self.n
        j = choose_branch(state, M_lo, M_hi, x_lo, h_lo, x_hi, h_hi, *self.args, np.empty(n), np.empty(n),
                          np.empty(n, dtype=np.int8))[0]
        return int(j)

    def cut_rows(self, state: np.ndarray) -> list:
        """Each node bound as ``(rhs, coef)`` in model units: ``θ − Σ_FREE coef_j a_j ≤ rhs``."""
        free = state == 0
        rows = []
        for c0, v_out, v_in in self.node_parts(state):
            rhs = (c0 + float(np.sum(v_out[free]))) / self.S
            coef = np.where(free, (v_in - v_out) / self.S, 0.0)
            if np.isfinite(rhs) and np.all(np.isfinite(coef)):
                rows.append((rhs, coef))
        return rows

    def add_cuts(self, rows, a_lp, theta_lp, local: bool) -> int:
        import pyscipopt as ps  # noqa: F401  (loaded by the caller)

        m = self.model
        added = 0
        for rhs, coef in rows:
            if theta_lp - float(coef @ a_lp) - rhs <= CUT_VIOLATION:
                continue
            row = m.createEmptyRowUnspec(name="node_bound", lhs=None, rhs=rhs, local=local, removable=True)
            m.cacheRowExtensions(row)
            m.addVarToRow(row, self.theta, 1.0)
            for j in np.flatnonzero(coef):
                m.addVarToRow(row, self.avars[j], -float(coef[j]))
            m.flushRowExtensions(row)
            m.addCut(row, forcecut=True)
            added += 1
        self.stats["node_cuts"] += added
        return added

    def lp_point(self):
        return np.array([v.getLPSol() for v in self.avars]), float(self.theta.getLPSol())

    # ------------------------------------------------------------ callbacks
    def separate(self) -> str:
        m = self.model
        node = m.getCurrentNode()
        num = node.getNumber()
        a_lp, theta_lp = self.lp_point()
        if num not in self.done_nodes and (self.depth_limit is None or node.getDepth() <= self.depth_limit):
            self.done_nodes.add(num)
            state = self.node_state()
            self.stats["cut_nodes"] += 1
            # the node's extreme completions and the rounded LP point as incumbents
            for a in ((state == 1), (state != 2), np.where(state == 0, a_lp > 0.5, state == 1)):
                self.consider(a.astype(np.int8))
            self.flush()
            if self.add_cuts(self.cut_rows(state), a_lp, theta_lp, local=node.getDepth() > 0):
                return "separated"
        if theta_lp <= self.best_val + 0.5 * self.tol_m:
            # bnb's pruning rule: nothing in the node beats the incumbent by more than tol/2
            self.pruned_max = max(self.pruned_max, theta_lp)
            self.stats["tie_cutoffs"] += 1
            return "cutoff"
        return "didnotfind"

    def enforce(self, lp: bool) -> str:
        """An integral point (LP or pseudo solution): exact value, then cut, branch or cut off."""
        m = self.model
        if lp:
            a_lp, theta = self.lp_point()
        else:
            a_lp = np.array([m.getSolVal(None, v) for v in self.avars])
            theta = np.inf
        a = np.clip(np.rint(a_lp), 0, 1).astype(np.int8)
        v = self.consider(a)
        self.flush()
        if lp and np.all(np.abs(a_lp - a) <= BINARY_TOL) and theta <= v:
            return "feasible"
        state = self.node_state()
        free = np.flatnonzero(state == 0)
        if free.size == 0:
            return "cutoff"                    # the node's one profile is recorded above
        node = m.getCurrentNode()
        if lp and node.getNumber() not in self.done_nodes:
            self.done_nodes.add(node.getNumber())
            self.stats["cut_nodes"] += 1
            rows = self.cut_rows(state)
            if self.add_cuts(rows, a_lp, theta, local=node.getDepth() > 0):
                return "separated"
        j = self.branch_user(state)
        m.branchVar(self.avars[j if j >= 0 and state[j] == 0 else int(free[0])])
        self.stats["branched"] += 1
        return "branched"

    def check(self, sol) -> bool:
        m = self.model
        av = np.array([m.getSolVal(sol, v) for v in self.avars])
        a = np.clip(np.rint(av), 0, 1).astype(np.int8)
        if np.any(np.abs(av - a) > BINARY_TOL):
            return False
        return m.getSolVal(sol, self.theta) <= self.value(a)


def _handler(ctx: _Check):
    import pyscipopt as ps

    R = ps.SCIP_RESULT
    codes = {"separated": R.SEPARATED, "cutoff": R.CUTOFF, "didnotfind": R.DIDNOTFIND, "feasible": R.FEASIBLE,
             "branched": R.BRANCHED}

    def guarded(fn, fallback):
        # an exception inside a SCIP callback would be swallowed: keep it, stop SCIP, re-raise later
        t = time.thread_time()          # CPU of this thread: the callbacks run on the solving thread
        try:
            return fn()
        except BaseException as exc:           # noqa: BLE001  (re-raised after the solve)
            if ctx.error is None:
                ctx.error = exc
            ctx.model.interruptSolve()
            return fallback
        finally:
            ctx.stats["callback_seconds"] += time.thread_time() - t

    class CheckHandler(ps.Conshdlr):
        def conssepalp(self, constraints, nusefulconss):
            return {"result": guarded(lambda: codes[ctx.separate()], R.DIDNOTFIND)}

        def consenfolp(self, constraints, nusefulconss, solinfeasible):
            return {"result": guarded(lambda: codes[ctx.enforce(True)], R.INFEASIBLE)}

        def consenfops(self, constraints, nusefulconss, solinfeasible, objinfeasible):
            return {"result": guarded(lambda: codes[ctx.enforce(False)], R.INFEASIBLE)}

        def conscheck(self, constraints, solution, checkintegrality, checklprows, printreason, completely):
            ok = guarded(lambda: ctx.check(solution), False)
            return {"result": R.FEASIBLE if ok else R.INFEASIBLE}

        def conslock(self, constraint, locktype, nlockspos, nlocksneg):
            # θ ≤ f(a): every variable may make it fail in both directions (no dual reductions)
            model = self.model
            for v in [*ctx.avars, ctx.theta]:
                if constraint is not None and not constraint.isOriginal():
                    v = model.getTransformedVar(v)
                model.addVarLocksType(v, locktype, nlockspos + nlocksneg, nlockspos + nlocksneg)

    return CheckHandler()


def _brancher(ctx: _Check):
    """SCIP branching rule: bnb's strong branching on node bounds over every free user (not only the
    LP's fractional ones — the node cuts tighten with the posterior intervals, not with the LP)."""
    import pyscipopt as ps

    R = ps.SCIP_RESULT

    class BoundBranching(ps.Branchrule):
        def branchexeclp(self, allowaddcons):
            t = time.thread_time()
            try:
                state = ctx.node_state()
                j = ctx.branch_user(state)
                if j < 0 or state[j] != 0:
                    return {"result": R.DIDNOTRUN}
                self.model.branchVar(ctx.avars[j])
                ctx.stats["branched"] += 1
                return {"result": R.BRANCHED}
            except BaseException as exc:       # noqa: BLE001  (re-raised after the solve)
                if ctx.error is None:
                    ctx.error = exc
                self.model.interruptSolve()
                return {"result": R.DIDNOTRUN}
            finally:
                ctx.stats["callback_seconds"] += time.thread_time() - t

    return BoundBranching()


def solve_scip_check(market, objective, *, constraints=None, time_limit=None, tol=0.0, warm_start: str = "local",
                     tangent: bool = True, depth_limit: int | None = None, branching: str | None = "bounds",
                     plugins: str = "lean", threads=None, scip_options: dict | None = None,
                     verbose: bool = False) -> RawSolution:
    """The branch-and-check of the module docstring.  ``depth_limit``: node cuts only at nodes up to
    that depth (deeper nodes inherit their ancestors' cuts; ``None``: every node); ``branching``:
    ``"bounds"`` (bnb's strong branching on node bounds at every node), ``None`` (SCIP's default
    rule) or a SCIP branching rule name to prefer (e.g. ``"pscost"``)."""
    import pyscipopt as ps

    t0 = time.perf_counter()
    if warm_start not in WARM_STARTS:
        raise ProblemError(f"warm_start must be one of {', '.join(map(repr, WARM_STARTS))}, got {warm_start!r}")
    if plugins not in PLUGINS:
        raise ProblemError(f"plugins must be one of {', '.join(map(repr, PLUGINS))}, got {plugins!r}")
    if depth_limit is not None and (isinstance(depth_limit, bool) or not isinstance(depth_limit, (int, np.integer))
                                    or depth_limit < 0):
        raise ProblemError(f"depth_limit must be a nonnegative integer or None, got {depth_limit!r}")
    # SCIP's parameter parallel/maxnthreads takes 0..64; checked before any work (int() would truncate 1.5)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or not 0 <= threads <= 64):
        raise ProblemError(f"threads must be an integer from 0 to 64 or None, got {threads!r}")
    deadline = None if time_limit is None else t0 + float(time_limit)
    empty, start = infeasible_result(market, objective, constraints)
    if empty is not None:
        return empty
    n = market.n
    S = objective.scale(np.asarray(market.sigma2, dtype=float))
    if not (S > 0 and np.isfinite(S)):
        S = 1.0
    tol = float(tol)
    if tol > 0:
        # SCIP treats differences below its epsilon (1e-9; sums 1e-6) as zero: with S the objective's
        # full scale, tol/S = 1e-9 sat at that epsilon and optima within ~tol of a pruned node were lost
        # (a wrong "optimal" where every value is ~1e-8 of the scale).  The model unit is tol / MODEL_TOL.
        S = min(S, tol / MODEL_TOL)
    tol_m = tol / S
    ctx = _Check(market, objective, constraints, S, tol_m, depth_limit)

    # ---- warm start (exact values only)
    starts = [np.zeros(n, np.int8), np.ones(n, np.int8), (objective.c + objective.d - objective.k > 0).astype(np.int8)]
    if start is not None:
        starts.append(np.asarray(start, dtype=np.int8))
    for a0 in starts:
        a0 = a0.copy()
        if constraints is not None:
            a0[list(constraints.force_in)] = 1
            a0[list(constraints.force_out)] = 0
        ctx.consider(a0, search=False)
    if ctx.best_a is not None:
        ctx.local_search()
    if warm_start == "bnb":
        from dm_opt.gaussian.backends.bnb import branch_and_bound

        raw = branch_and_bound(market, objective, constraints=constraints, tol=tol, node_limit=BNB_WARM_NODES,
                               time_limit=None if deadline is None else max(0.0, 0.1 * (deadline - t0)))
        if raw.profile is not None:
            ctx.consider(np.asarray(raw.profile, dtype=np.int8))
    if tangent:
        slack = tangent_slack(market.cov, market.noise_var, objective)
        # it grows with (σ²/τ²)²: where h = τ² − x cancels, the planes are simply not used
        if slack <= TANGENT_SLACK_MAX * max(tol, 0.0):
            at = np.full(n, 0.5) if ctx.best_a is None else 0.5 * ctx.best_a + 0.25
            planes = tangent_planes(market.cov, market.noise_var, objective, at)
            if planes is not None:
                A, B = planes
                ctx.planes = (np.ascontiguousarray(A), np.ascontiguousarray(B),
                              np.ascontiguousarray(np.maximum(B[0], B[1])), float(slack))

    # ---- the SCIP model: binaries, θ, side rows, the check handler
    m = ps.Model()
    m.hideOutput(quiet=not verbose)
    ctx.model = m
    m.setParam("randomization/randomseedshift", 0)
    m.setParam("limits/gap", 0.0)
    m.setParam("limits/absgap", 0.5 * tol_m)
    m.setParam("numerics/feastol", FEASTOL)
    # node LP bounds prune nodes: with SCIP's default dual feasibility tolerance (1e-7) a bound could be
    # low by more than tol_m (1e-9 of the scale) and the optimum pruned (a wrong "optimal" at noise
    # ratio 1e8 with rows, tests/reliability/test_numerics_round4.py)
    m.setParam("numerics/dualfeastol", FEASTOL)
    m.setPresolve(ps.SCIP_PARAMSETTING.OFF)
    m.setParam("presolving/maxrestarts", 0)
    m.setParam("misc/allowstrongdualreds", False)
    m.setParam("misc/allowweakdualreds", False)
    m.setParam("misc/usesymmetry", 0)
    m.setParam("misc/catchctrlc", False)
    state0 = np.zeros(n, dtype=np.int8)
    if constraints is not None:
        state0[list(constraints.force_in)] = 1
        state0[list(constraints.force_out)] = 2
    ctx.avars = [m.addVar(name=f"a[{i}]", vtype="B", lb=1.0 if state0[i] == 1 else 0.0,
                          ub=0.0 if state0[i] == 2 else 1.0) for i in range(n)]
    root_rows = ctx.cut_rows(state0)
    top = min(rhs + float(np.sum(np.maximum(coef, 0.0))) for rhs, coef in root_rows)
    ctx.theta = m.addVar(name="theta", vtype="C", lb=None, ub=float(top + abs(top) * 1e-9 + 1e-9))
    for r, (rhs, coef) in enumerate(root_rows):       # the root's node bounds: global cuts
        m.addCons(ctx.theta - ps.quicksum(float(coef[j]) * ctx.avars[j] for j in np.flatnonzero(coef)) <= rhs,
                  name=f"root_bound[{r}]")
    if constraints is not None:
        lin = constraints.linear
        if lin is not None and lin.m and float(np.max(np.abs(lin.A))) >= m.infinity():
            # SCIP raises a bare Exception ("error in input data") on a coefficient it reads as infinite
            raise ProblemError(f"constraints.linear: a coefficient of magnitude {float(np.max(np.abs(lin.A))):.3g} "
                               f"is at or above SCIP's infinity ({m.infinity():g}); method 'scip-check' cannot "
                               f"model it: rescale the row or use method='bnb'")
        if lin is not None:
            for q in range(lin.m):
                nz = np.flatnonzero(lin.A[q])
                expr = ps.quicksum(float(lin.A[q, j]) * ctx.avars[j] for j in nz)
                if np.isfinite(lin.lb[q]):
                    m.addCons(expr >= float(lin.lb[q] - lin.slack[q]), name=f"row_lb[{q}]")
                if np.isfinite(lin.ub[q]):
                    m.addCons(expr <= float(lin.ub[q] + lin.slack[q]), name=f"row_ub[{q}]")
        total = ps.quicksum(ctx.avars)
        if constraints.max_sharers is not None:
            m.addCons(total <= constraints.max_sharers, name="max_sharers")
        if constraints.min_sharers is not None:
            m.addCons(total >= constraints.min_sharers, name="min_sharers")
    hdlr = _handler(ctx)
    m.includeConshdlr(hdlr, "dm_opt_check", "theta <= exact objective (branch-and-check)",
                      sepapriority=1_000_000, enfopriority=-1, chckpriority=-1, sepafreq=1, eagerfreq=1,
                      needscons=True)
    m.addPyCons(m.createCons(hdlr, "check", initial=False, separate=True, enforce=True, check=True,
                             propagate=False))
    m.setObjective(ctx.theta, sense="maximize")
    if plugins == "lean":
        # SCIP's own primal heuristics only propose points the check refuses (θ above f(a)), and
        # its general cuts act on the rows alone: both off (the check handler still separates)
        m.setHeuristics(ps.SCIP_PARAMSETTING.OFF)
        m.setSeparating(ps.SCIP_PARAMSETTING.OFF)
        m.setParam("constraints/dm_opt_check/sepafreq", 1)
    if branching == "bounds":
        m.includeBranchrule(_brancher(ctx), "dm_opt_bounds", "bnb's strong branching on node bounds",
                            priority=1_000_000, maxdepth=-1, maxbounddist=1.0)
    elif branching is not None:
        try:
            m.setParam(f"branching/{branching}/priority", 1_000_000)
        except (KeyError, LookupError):
            raise ProblemError(f"branching: unknown SCIP branching rule {branching!r} (or 'bounds')") from None
    if threads is not None:
        m.setParam("parallel/maxnthreads", int(threads))
    for name, value in (scip_options or {}).items():
        m.setParam(name, value)
    if ctx.best_a is not None:
        ctx.pending = [ctx.best_a]
        sol = m.createSol()
        for v, x in zip(ctx.avars, ctx.best_a, strict=True):
            m.setSolVal(sol, v, float(x))
        m.setSolVal(sol, ctx.theta, float(ctx.best_val))
        m.addSol(sol, free=True)
        ctx.pending = []
    build_seconds = time.perf_counter() - t0
    status, message = Termination.OPTIMAL, ""
    ts = time.perf_counter()
    if deadline is not None:
        left = deadline - time.perf_counter()
        if left <= 0:
            status, message = Termination.TIME_LIMIT, f"time limit {time_limit}s reached before SCIP started"
    if status is Termination.OPTIMAL:
        if deadline is not None:
            m.setParam("limits/time", max(deadline - time.perf_counter(), 0.01))
        try:
            optimize_interruptible(m)
        except Exception as exc:        # pyscipopt raises a bare Exception on SCIP errors
            raise SolverFailed(f"SCIP failed: {exc}") from None
        if ctx.error is not None:
            if isinstance(ctx.error, KeyboardInterrupt):
                status, message = Termination.INTERRUPTED, "interrupted by the user (Ctrl-C)"
            else:
                raise ctx.error
        st = m.getStatus()
        if st in ("optimal", "gaplimit", "infeasible"):
            pass
        elif st in ("timelimit", "userinterrupt", "nodelimit"):
            if status is Termination.OPTIMAL:
                status = {"userinterrupt": Termination.INTERRUPTED, "nodelimit": Termination.NODE_LIMIT}.get(
                    st, Termination.TIME_LIMIT)
                message = f"SCIP status '{st}'"
        else:
            raise SolverFailed(f"SCIP stopped with status '{st}'")
    solve_seconds = time.perf_counter() - ts
    nodes = int(m.getNNodes())
    if status is Termination.TIME_LIMIT and nodes == 0 and m.getStatus() == "unknown":
        dual = top
    elif m.getStatus() == "infeasible":
        dual = -np.inf
    else:
        dual = float(m.getDualbound())
    bound = max(dual, ctx.pruned_max)
    if status is not Termination.OPTIMAL:
        bound = min(bound, top)
    deficit = max(0.0, ctx.best_val - bound) if np.isfinite(ctx.best_val) else 0.0
    if m.getStatus() == "infeasible" and ctx.best_a is not None:
        raise SolverFailed("SCIP reports the model infeasible although a profile satisfying the side constraints "
                           "is known (numerical trouble)")
    extra = {"model_scale": S, "tangent_planes": ctx.planes is not None, "warm_start": warm_start,
             "depth_limit": depth_limit, **ctx.stats}
    return finish_rounds(market, objective, ctx.best_a, ctx.best_val, status, bound, S, tol, deficit, nodes=nodes,
                         build_seconds=build_seconds, solve_seconds=solve_seconds, message=message, extra=extra)


@register
class ScipCheck(Backend):
    """SCIP branch-and-check: exact objective at integral points, bnb's node bounds as local cuts."""

    name = "scip-check"
    supports_constraints = True
    requires = "pyscipopt"
    OPTIONS = ("warm_start", "tangent", "depth_limit", "branching", "plugins", "threads", "scip_options",
               "verbose")

    def run(self, market, objective, *, all_optima, time_limit, constraints, tol, progress, options):
        self.check_options(options)
        options = dict(options)
        options["scip_options"] = check_scip_options(options.get("scip_options"))
        options["verbose"] = bool(options.get("verbose", False))
        sc = gaussian_side_constraints(market, objective, constraints)
        from dm_opt.core.threads import blas_threads  # one BLAS thread for the small dense solves

        with blas_threads():
            return solve_scip_check(market, objective, constraints=sc, time_limit=time_limit, tol=tol, **options)
