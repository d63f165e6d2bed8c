"""The MILP of SPEC §1.2 as a Pyomo ``ConcreteModel``, for users' own pipelines.

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
``m.V[i, j]``          default ``"mixed"`` layout: ``Q_ij`` if ``a_j = 0``, ``Q_ij/φ_j`` if
                       ``a_j = 1`` (``φ_j = min(ρ_j, 1)``: the gain of user ``j``'s signal
                       when her noise ratio is below 1)
``m.U[i, j]``          ``V_ij a_j`` (McCormick, exact for binary ``a``)
``m.P``, ``m.R``       instead of ``m.V``, ``m.U`` with ``posterior_form="precision"``:
                       ``Q_ij`` and ``Q_ij a_j``
``m.Q[i, j]``          expression: standardised posterior covariance ``Q = D⁻¹P(a)D⁻¹``
                       (mixed: ``V_ij − (1 − φ_j) U_ij``)
``m.leakage[i]``       expression: leakage ``I_i = σ_i² (1 − Q_ii)`` in the market's units
``m.z[i]``             own-signal term ``≥ g_i(P_ii)/σ_i²`` of a sharer (only users with
                       ``e_i > 0``, i.e. equilibrium with ``v_i > 0``)
``m.posterior[i, j]``  the posterior equations (mixed: ``Q + W C = C``, ``C`` the correlation
                       matrix, ``W`` the gains)
``m.mc_upper1`` …      McCormick rows (``mc_upper1``, ``mc_lower1``, ``mc_upper0``, ``mc_lower0``)
``m.sharer_cap[i]``    ``Q_ii ≤ 1 − (1 − κ_i) a_i``, ``κ_i = ρ_i/(1+ρ_i)`` (valid inequality)
``m.tangent[i, q]``    ``z_i ≥`` tangent of ``g̃_i`` at the point whose leave-own-out variance
                       (standardised) is ``m.tangent_table[i][q]``
``m.obj``              the problem's objective divided by ``m.obj_scale`` (maximise)
=====================  ==========================================================

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
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.gaussian.backends.milp import DEFAULT_CUTS, DEFAULT_TANGENTS, build_model, check_range
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.objectives import LeakageObjective


def to_pyomo(market, problem="first_best", *, constraints=None, n_tangents: int = DEFAULT_TANGENTS,
             cuts=DEFAULT_CUTS, posterior_form: str = "mixed"):
    """Pyomo ``ConcreteModel`` of the MILP of SPEC §1.2 (see the module docstring for components).

    Parameters
    ----------
    market : GaussianMarket
    problem : {"first_best", "equilibrium", "decorrelated"} or LeakageObjective
    constraints : dict or SideConstraints, optional
        Common side constraints added as rows ``sharers`` / ``budget`` and variable bounds.
    n_tangents : int
        Points in the equilibrium's tangent table (ignored when no ``z`` is needed).
    posterior_form : str
        As for ``method="milp"``: ``"mixed"`` (default) or ``"mixed-precision"`` (variables
        ``m.V``, ``m.U``), or the plain layout ``"precision"`` (variables ``m.P``, ``m.R``).
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
    if posterior_form == "covariance":
        raise ProblemError("to_pyomo: posterior_form='covariance' needs one variable per symmetric pair; "
                           "use 'mixed' (default), 'mixed-precision' or 'precision'")
    mod = build_model(market, objective, sc, n_tangents=n_tangents, symmetric=False, cuts=cuts,
                      posterior_form=posterior_form)
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
    Pv = pyo.Var(m.N, m.N, bounds=lambda _, i, j: bnd(mod.col_P[i, j]))
    Rv = pyo.Var(m.N, m.N, bounds=lambda _, i, j: bnd(mod.col_R[i, j]))
    pname, rname = ("V", "U") if mixed else ("P", "R")
    setattr(m, pname, Pv)
    setattr(m, rname, Rv)
    m.z = pyo.Var(m.Z, bounds=lambda _, i: bnd(mod.col_z[i]))
    cols = [None] * mod.num_col
    for i in range(n):
        cols[mod.col_a[i]] = m.a[i]
    for i in range(n):
        for j in range(n):
            cols[mod.col_P[i, j]] = Pv[i, j]
            cols[mod.col_R[i, j]] = Rv[i, j]
    phi = mod.phi
    if mixed:
        m.Q = pyo.Expression(m.N, m.N, rule=lambda _, i, j: Pv[i, j] - (1.0 - float(phi[j])) * Rv[i, j])
    else:
        m.Q = pyo.Expression(m.N, m.N, rule=lambda _, i, j: Pv[i, j])
    s2 = market.sigma2
    m.leakage = pyo.Expression(m.N, rule=lambda _, i: float(s2[i]) * (1.0 - m.Q[i, i]))
    for i in zi:
        cols[mod.col_z[i]] = m.z[i]

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
    m.problem = objective.name
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
