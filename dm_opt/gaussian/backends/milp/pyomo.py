"""The MILP of docs/spec.md §1.2 as a Pyomo ``ConcreteModel``, for users' own pipelines.

``to_pyomo(market, problem)`` returns the model of :mod:`dm_opt.gaussian.backends.milp`
(the same arrays, so the two can never disagree) with named components.

**Units.**  Like the ``milp`` backend, the model is *standardised* so that its
coefficients stay in a range a MIP solver handles whatever the units of ``Σ``:
types are divided by ``σ_i = √Σ_ii`` (``m.Q[i, j]`` is ``P_ij/(σ_iσ_j)``, so
``m.Q[i, i] ∈ [0, 1]``), noise variances become ``ρ_i = τ_i²/σ_i²``, and the
objective is divided by its scale ``S`` (``m.obj_scale``): the problem's value is
``pyo.value(m.obj) * m.obj_scale`` (:func:`objective_value`).  ``m.sigma2[i]`` holds
``σ_i²``.  Instances outside the ``milp`` backend's guaranteed range are refused
(:func:`dm_opt.gaussian.backends.milp.check_range`).

=====================  ==========================================================
component              meaning
=====================  ==========================================================
``m.N``                users ``0..n-1``
``m.a[i]``             sharing binaries (1 = user ``i`` shares)
``m.P[i, j]``          plain ``"precision"`` layout (the default where :func:`strongest_form`
                       finds it safe): ``Q_ij``, one variable per pair ``i ≤ j`` (``symmetric``)
``m.R[i, j]``          ``Q_ij a_j`` (McCormick, exact for binary ``a``)
``m.V``, ``m.U``       instead of ``m.P``, ``m.R`` in the ``"mixed"`` layouts: ``V_ij = Q_ij``
                       if ``a_j = 0``, ``Q_ij/φ_j`` if ``a_j = 1`` (``φ_j = min(ρ_j, 1)``: the gain
                       of user ``j``'s signal when her noise ratio is below 1), ``U_ij = V_ij a_j``
``m.Q[i, j]``          expression: standardised posterior covariance ``Q = D⁻¹P(a)D⁻¹``
                       (mixed: ``V_ij − (1 − φ_j) U_ij``)
``m.leakage[i]``       expression: leakage ``I_i = σ_i² (1 − Q_ii)`` in the market's units
``m.z[i]``             own-signal term ``≥ g_i(P_ii)/σ_i²`` of a sharer (only users with
                       ``e_i > 0``, i.e. equilibrium with ``v_i > 0``)
``m.posterior[i, j]``  the posterior equations (precision: ``Q Λ + R T = I``, ``Λ = C⁻¹``,
                       ``T = diag 1/ρ``; mixed: ``Q + W C = C``, ``W`` the gains)
``m.mc_upper1`` …      McCormick rows (``mc_upper1``, ``mc_lower1``, ``mc_upper0``, ``mc_lower0``)
``m.sharer_cap[i]``    ``Q_ii ≤ 1 − (1 − κ_i) a_i``, ``κ_i = ρ_i/(1+ρ_i)`` (valid inequality)
``m.modular``          objective ``≤`` ``bnb``'s root modular bound, linear in ``a`` (valid inequality;
                       default, :data:`STRONGEST_CUTS`)
``m.probing[j]``       objective ``≤`` ``bnb``'s modular bound at the children ``a_j = 0`` / ``1``, with
                       products ``a_j a_l`` as ``m.w[j, l]`` (``j < l``; rows ``m.w_first``,
                       ``m.w_second``, ``m.w_both``: McCormick, exact at binary ``a``) (default)
``m.convex_lower``     ``Q_ii ≥`` gradient cuts of the convex ``Q_ii(a)`` at relaxed points ``t·1``;
``m.convex_upper``     ``Q_ii ≤ 1 − Σ_j C_ij²/(ρ_j + r_j) a_j`` (valid inequalities, default)
``m.tangent[i, q]``    ``z_i ≥`` tangent of ``g̃_i`` at the point whose leave-own-out variance
                       (standardised) is ``m.tangent_table[i][q]``
``m.obj``              the problem's objective divided by ``m.obj_scale`` (maximise)
=====================  ==========================================================

Default model (``posterior_form="auto"``, ``cuts=None``): the strongest one measured — the
symmetric precision layout plus the ``modular``, ``probing`` and ``convex`` cuts (:func:`strongest_form`); the model of
earlier versions is ``to_pyomo(..., posterior_form="mixed", cuts=("sharer",))``.

First best and de-correlated equilibrium are exact MILPs.  For the
equilibrium the model carries the *initial tangent table* (``n_tangents``
points per user, evenly spaced in the leave-own-out variance) and
is a relaxation: its optimal value is an upper bound, and its profile must be
re-evaluated with :meth:`GaussianMarket.evaluate` (``dm_opt.solve(...,
method="milp")`` runs the outer-approximation loop that closes the gap).

Users add side constraints as ordinary Pyomo components::

    m = dm_opt.to_pyomo(market, "first_best")
    m.user0_out = pyo.Constraint(expr=m.a[0] == 0)
    m.at_most_3 = pyo.Constraint(expr=sum(m.a[i] for i in m.N) <= 3)
    pyo.SolverFactory("appsi_highs").solve(m)
    value = objective_value(m)          # in the problem's units

**Exact answers in a user-extended model** (every problem, the equilibrium included):
:func:`solve_exact` runs the outer-approximation loop of the ``milp`` backend around *any*
Pyomo MIP solver — solve, value the profile exactly, add tangent cuts at its points (and a
no-good cut when it comes back with the gap open) — and returns the profile with a bound and
a certificate::

    m = dm_opt.to_pyomo(market, "equilibrium")
    m.not_both = pyo.Constraint(expr=m.a[0] + m.a[1] <= 1)
    sol = solve_exact(m, pyo.SolverFactory("appsi_highs"))
    sol.status, sol.profile, sol.objective, sol.bound     # "optimal" only when certified
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.core.result import Result
from dm_opt.gaussian.backends.milp import DEFAULT_TANGENTS, STRONGEST_CUTS, build_model, check_range
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.objectives import LeakageObjective

# ``to_pyomo``'s default valid inequalities are :data:`~dm_opt.gaussian.backends.milp.STRONGEST_CUTS`
# (imported above): ``sharer``; ``modular`` (bnb's root bound as one row, :func:`modular_cut_terms`);
# ``probing`` (its bounds at the root's children a_j = 0 / 1, :func:`probing_cut_terms`); ``convex``
# (gradient and Woodbury bounds on Q_ii, :func:`convex_cut_terms`).  Each holds at every profile, so
# under any side constraint.  Measured (docs/exact_solvers_milp.md, "Root gaps"): LP root gap at
# n = 30 at most half of the original "mixed" model's on Wishart seeds 0–2, every problem.


def strongest_form(market) -> tuple[str, tuple]:
    """``(posterior_form, cuts)`` of the strongest model :func:`to_pyomo` and ``dm-opt export`` build by default.

    The symmetric plain ``"precision"`` layout (one ``P_ij`` per pair ``i ≤ j``) has the tightest
    LP relaxation of the layouts, and the cuts of :data:`STRONGEST_CUTS` tighten it further
    (docs/exact_solvers_milp.md, "Root gaps": at n = 30, Wishart seeds 0–2, the LP gap is at most
    half of the original ``"mixed"`` model's for every problem).  The plain layout is used only
    where the ``milp`` backend measured it exact (:data:`~dm_opt.gaussian.backends.milp.PRECISION_SAFE`:
    noise ratios in ``[1e-3, 1e2]``, ``κ(C) ≤ 1e4``); elsewhere ``"mixed"`` (whose coefficients stay
    at most 1) with the same cuts except ``convex`` (its gradients ``Q_ij²/ρ_j`` grow like ``1/ρ``).
    """
    from dm_opt.gaussian.backends.milp import PRECISION_SAFE, condition_number, correlation_and_ratios

    C, rho = correlation_and_ratios(market)
    lo, hi, kmax = PRECISION_SAFE
    safe = bool(np.min(rho) >= lo and np.max(rho) <= hi and condition_number(C) <= kmax)
    if safe:
        return "precision", STRONGEST_CUTS
    return "mixed", tuple(c for c in STRONGEST_CUTS if c != "convex")


def to_pyomo(market, problem="first_best", *, constraints=None, n_tangents: int = DEFAULT_TANGENTS,
             cuts=None, posterior_form: str = "auto", symmetric: bool = True):
    """Pyomo ``ConcreteModel`` of the MILP of docs/spec.md §1.2 (see the module docstring for components).

    Parameters
    ----------
    market : GaussianMarket
    problem : {"first_best", "equilibrium", "decorrelated"} or LeakageObjective
    constraints : dict, LinearConstraint, SideConstraints or a list of them, optional
        The forms of ``dm_opt.solve``: counts as the row ``sharers``, the budget as ``budget``,
        linear rows as the block ``linear`` (relaxed by their slack), forced users as bounds.
    n_tangents : int
        Points in the equilibrium's tangent table (ignored when no ``z`` is needed).
    cuts : tuple of str, optional
        Valid inequalities (:data:`~dm_opt.gaussian.backends.milp.CUTS`); default
        :data:`STRONGEST_CUTS` (``sharer``, ``modular``, ``probing``, ``convex``).
    posterior_form : str
        ``"auto"`` (default): the strongest layout :func:`strongest_form` measured safe for this
        market — the symmetric ``"precision"`` layout (variables ``m.P``, ``m.R``) or else
        ``"mixed"``.  Or as for ``method="milp"``: ``"mixed"``, ``"mixed-precision"`` (variables
        ``m.V``, ``m.U``), ``"precision"``, ``"covariance"`` (``m.P``, ``m.R``).  The model of
        earlier versions is ``posterior_form="mixed", cuts=("sharer",)``.
    symmetric : bool
        Plain layouts only: one ``m.P[i, j]`` per pair ``i ≤ j`` (``True``, the tighter
        relaxation) or one per ordered pair.
    """
    import pyomo.environ as pyo
    from pyomo.core.expr.numeric_expr import LinearExpression

    from dm_opt.gaussian.constraints import SideConstraints

    if not isinstance(market, GaussianMarket):
        raise ProblemError(f"MILP backend is Gaussian-MSE-only (GaussianMarket); got {type(market).__name__}")
    objective = problem if isinstance(problem, LeakageObjective) else market.objective(problem)
    sc = SideConstraints.from_any(constraints, market.n)
    if sc is not None:
        sc.check_problem(objective.name)
    check_range(market, objective, "to_pyomo")
    auto_form, auto_cuts = strongest_form(market)
    if posterior_form == "auto":
        posterior_form = auto_form
    mod = build_model(market, objective, sc, n_tangents=n_tangents, symmetric=symmetric,
                      cuts=auto_cuts if cuts is None else tuple(cuts), posterior_form=posterior_form)
    mixed = mod.layout == "mixed"
    n = market.n
    m = pyo.ConcreteModel(name=f"dm_opt_{objective.name}")
    m.N = pyo.RangeSet(0, n - 1)
    zi = [int(i) for i in np.flatnonzero(mod.col_z >= 0)]
    m.Z = pyo.Set(initialize=zi)

    lo, hi = mod.col_lo, mod.col_hi

    def bnd(j):
        return (None if lo[j] == -np.inf else float(lo[j]), None if hi[j] == np.inf else float(hi[j]))

    m.a = pyo.Var(m.N, within=pyo.Binary, bounds=lambda _, i: bnd(mod.col_a[i]))
    # symmetric plain layout: one column per pair i ≤ j (col_P[i, j] == col_P[j, i]), so m.P[i, j] for i ≤ j
    sym = bool(np.all(mod.col_P == mod.col_P.T))
    pidx = [(i, j) for i in range(n) for j in range(i if sym else 0, n)]
    Pv = pyo.Var(pidx, bounds=lambda _, i, j: bnd(mod.col_P[i, j]))
    Rv = pyo.Var(m.N, m.N, bounds=lambda _, i, j: bnd(mod.col_R[i, j]))
    pname, rname = ("V", "U") if mixed else ("P", "R")
    setattr(m, pname, Pv)
    setattr(m, rname, Rv)
    m.z = pyo.Var(m.Z, bounds=lambda _, i: bnd(mod.col_z[i]))
    cols = [None] * mod.num_col
    for i in range(n):
        cols[mod.col_a[i]] = m.a[i]
    for i, j in pidx:
        cols[mod.col_P[i, j]] = Pv[i, j]
    for i in range(n):
        for j in range(n):
            cols[mod.col_R[i, j]] = Rv[i, j]
    phi = mod.phi
    if mixed:
        m.Q = pyo.Expression(m.N, m.N, rule=lambda _, i, j: Pv[i, j] - (1.0 - float(phi[j])) * Rv[i, j])
    else:
        m.Q = pyo.Expression(m.N, m.N, rule=lambda _, i, j: Pv[min(i, j), max(i, j)] if sym else Pv[i, j])
    s2 = market.sigma2
    m.leakage = pyo.Expression(m.N, rule=lambda _, i: float(s2[i]) * (1.0 - m.Q[i, i]))
    for i in zi:
        cols[mod.col_z[i]] = m.z[i]
    if mod.col_w is not None and np.any(mod.col_w >= 0):
        # cut "probing": w_jl = a_j a_l (j < l), exact at binary a through the rows w_first, w_second, w_both
        wpairs = [(i, j) for i in range(n) for j in range(i + 1, n) if mod.col_w[i, j] >= 0]
        m.w = pyo.Var(wpairs, bounds=lambda _, i, j: bnd(mod.col_w[i, j]))
        for i, j in wpairs:
            cols[mod.col_w[i, j]] = m.w[i, j]

    A = mod.A
    indptr, indices, data = A.indptr, A.indices, A.data

    def row_expr(r):
        s, e = indptr[r], indptr[r + 1]
        return LinearExpression(constant=0.0, linear_coefs=data[s:e].tolist(),
                                linear_vars=[cols[c] for c in indices[s:e]])

    def make_rule(block):
        index = block.index

        def rule(_, *idx):
            r = block.start + pos[idx]
            l, h = mod.row_lo[r], mod.row_hi[r]
            if l == h:
                return row_expr(r) == float(l)
            return (None if l == -np.inf else float(l), row_expr(r), None if h == np.inf else float(h))

        pos = {tuple(ix): q for q, ix in enumerate(index)}
        return rule

    for block in mod.blocks:
        if block.index == [()]:
            r = block.start
            l, h = mod.row_lo[r], mod.row_hi[r]
            setattr(m, block.name, pyo.Constraint(expr=(None if l == -np.inf else float(l), row_expr(r),
                                                        None if h == np.inf else float(h))))
        else:
            setattr(m, block.name, pyo.Constraint([tuple(ix) for ix in block.index], rule=make_rule(block)))
        getattr(m, block.name).doc = block.doc
    nzc = np.flatnonzero(mod.cost)
    m.obj = pyo.Objective(expr=LinearExpression(constant=float(mod.offset), linear_coefs=mod.cost[nzc].tolist(),
                                                linear_vars=[cols[j] for j in nzc]),
                          sense=pyo.maximize)
    m.tangent_table = {i: list(map(float, mod.tangents[i])) for i in zi}
    # for solve_exact: R_ii = a_i Q_ii as (variable, coefficient), the standardised market, the objective
    m.dm_r_diag = {i: (cols[mod.diag_r[i][0][0]], float(mod.diag_r[i][1][0])) for i in zi}
    m.dm_rho = [float(v) for v in mod.std.rho]
    m.dm_corr = mod.std.corr
    m.dm_market = market
    m.dm_constraints = sc            # checked exactly by solve_exact (the budget row is a relaxation)
    m.dm_objective = objective
    m.problem = objective.name
    m.posterior_form, m.cuts = posterior_form, tuple(auto_cuts if cuts is None else cuts)
    m.exact = not zi
    m.obj_scale = float(mod.scale)
    m.sigma2 = [float(v) for v in market.sigma2]
    return m


def objective_value(model) -> float:
    """The problem's value at a solved :func:`to_pyomo` model, in the problem's units
    (``pyo.value(model.obj) * model.obj_scale``)."""
    import pyomo.environ as pyo

    return float(pyo.value(model.obj)) * model.obj_scale


def profile_of(model) -> np.ndarray:
    """The 0/1 profile of a solved :func:`to_pyomo` model (values rounded to the nearest integer)."""
    import pyomo.environ as pyo

    return np.array([int(round(pyo.value(model.a[i]))) for i in model.N], dtype=np.int8)


@dataclass
class ExactSolution(Result):
    """Result of :func:`solve_exact` (the problem's units; the protocol of :mod:`dm_opt.core.result`)."""

    family: ClassVar[str] = "gaussian"

    status: str                 # "optimal" (certified), "feasible", "infeasible", "iteration_limit", "error"
    profile: np.ndarray | None
    objective: float
    bound: float
    rounds: int
    message: str = ""


def solve_exact(model, solver, *, tol: float | None = None, max_rounds: int = 100,
                solve_kwargs: dict | None = None) -> ExactSolution:
    """Solve a (possibly user-extended) :func:`to_pyomo` model exactly with any Pyomo MIP solver.

    Each round: ``solver.solve(model)``; the solver's dual bound ``results.problem.upper_bound``
    bounds every profile not yet excluded (the model relaxes them: tangents under-estimate the
    own-signal term); the profile is valued exactly (:meth:`GaussianMarket.evaluate`); for
    the equilibrium, tangent cuts at the profile's exact leave-own-out variances are added to
    ``model.dm_cuts``; a profile that comes back, or has no new tangent, while the gap is open
    gets a no-good cut (its exact value kept, as in the ``milp`` loop).  ``bound = min over
    rounds of max(round bound, best excluded value)``.  Status ``optimal`` only when
    ``bound − objective ≤ tol`` (default ``1e-9 · m.obj_scale``) and no round's bound fell more
    than ``tol`` below the exact value of a profile it covered (that would show the solver's
    round-off; status ``error``).  The user's own constraints are the solver's business: the
    profile is the solver's, re-valued exactly.  The side constraints given to :func:`to_pyomo`
    (``constraints=``) are checked exactly (:meth:`SideConstraints.feasible`): the model's budget row
    is a relaxation for the equilibrium and a linear row holds only to the solver's feasibility
    tolerance, so a profile that fails the exact check is never returned; it gets a no-good cut
    (and its tangents), as in the ``milp`` loop.  Set the solver's relative MIP gap to 0 for
    fewer rounds (a gap above ``tol`` is closed by no-good rounds otherwise).
    """
    import pyomo.environ as pyo

    from dm_opt.gaussian.backends.milp import exact_terms, tangent_coefficients

    market, objective = model.dm_market, model.dm_objective
    S = float(model.obj_scale)
    tol = 1e-9 * S if tol is None else float(tol)
    if not hasattr(model, "dm_cuts"):
        model.dm_cuts = pyo.ConstraintList()
    rho = np.asarray(model.dm_rho)
    sc = getattr(model, "dm_constraints", None)
    best, best_a = -np.inf, None
    bound, excluded_best, deficit = np.inf, -np.inf, 0.0
    seen: dict = {}
    excluded: set = set()
    status, message = "iteration_limit", f"stopped after max_rounds = {max_rounds}"
    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        res = solver.solve(model, load_solutions=False, **(solve_kwargs or {}))
        tc = str(res.solver.termination_condition)
        if "infeasible" in tc.lower():
            if best_a is None:
                status, message = "infeasible", "the solver reports the model infeasible"
            else:
                bound = min(bound, excluded_best)
                status, message = ("optimal", "") if bound - best <= tol else ("error", "infeasible after exclusions")
            break
        if tc not in ("optimal", "maxTimeLimit", "maxIterations", "maxEvaluations", "userInterrupt", "feasible"):
            status, message = "error", f"the solver stopped with termination condition {tc}"
            break
        model.solutions.load_from(res)
        ub = res.problem.upper_bound
        round_bound = float(ub) * S if ub is not None and np.isfinite(float(ub)) else np.inf
        a = profile_of(model)
        key = a.tobytes()
        repeat = key in seen
        if not repeat:
            ok = sc is None or sc.feasible(market, objective.name, a)
            seen[key] = float(market.evaluate(objective, a)) if ok else -np.inf
        val = seen[key]
        if val > best:
            best, best_a = val, a.copy()
        bound = min(bound, max(round_bound, excluded_best))
        if np.isfinite(round_bound):
            covered = max((v for k, v in seen.items() if k not in excluded), default=-np.inf)
            deficit = max(deficit, covered - round_bound)
        if bound - best <= tol:
            status, message = "optimal", ""
            break
        new = 0
        if model.dm_r_diag:
            _, s = exact_terms(model.dm_corr, rho, a)
            for i, (rvar, rcoef) in model.dm_r_diag.items():
                if a[i] != 1 or not np.isfinite(s[i]) or s[i] <= 0:
                    continue
                if any(abs(s[i] - q) <= 1e-12 * max(1.0, s[i]) for q in model.tangent_table[i]):
                    continue
                model.tangent_table[i].append(float(s[i]))
                _, dg, c0 = tangent_coefficients(np.array([s[i]]), rho[i])
                # perspective tangent: z_i − g̃'(t) R_ii + (s²/ρ) a_i ≥ 0
                model.dm_cuts.add(model.z[i] - float(dg[0]) * rcoef * rvar + float(c0[0]) * model.a[i] >= 0)
                new += 1
        if repeat or new == 0 or val == -np.inf:
            ones = [i for i in model.N if a[i] == 1]
            zeros = [i for i in model.N if a[i] == 0]
            model.dm_cuts.add(sum(1 - model.a[i] for i in ones) + sum(model.a[i] for i in zeros) >= 1)
            excluded.add(key)
            excluded_best = max(excluded_best, val)
    if status == "optimal" and deficit > tol:
        status, message = "error", (f"a round's bound fell {deficit:.3g} below the exact value of a profile it "
                                    f"covered (solver round-off above tol = {tol:.3g}); not certified")
    if status == "iteration_limit" and best_a is not None:
        bound = max(bound, best)
    return ExactSolution(status, best_a, float(best), float(bound), rounds, message)
