"""The MILP of SPEC §1.2 as a Pyomo ``ConcreteModel``, for users' own pipelines.

``to_pyomo(market, problem)`` returns the model of :mod:`dm_opt.solvers.milp`
(the same arrays, so the two can never disagree) with named components:

=====================  ==========================================================
component              meaning
=====================  ==========================================================
``m.N``                users ``0..n-1``
``m.a[i]``             sharing binaries (1 = user ``i`` shares)
``m.P[i, j]``          posterior covariance ``P(a) = (Σ⁻¹ + T diag a)⁻¹`` (full n×n)
``m.R[i, j]``          ``P_ij a_j`` (McCormick, exact for binary ``a``)
``m.z[i]``             own-signal term ``≥ g_i(P_ii)`` of a sharer (only users with
                       ``e_i > 0``, i.e. equilibrium with ``v_i > 0``)
``m.posterior[i, j]``  ``(P Σ⁻¹ + R T)_ij = δ_ij``
``m.mc_upper1`` …      McCormick rows (``mc_upper1``, ``mc_lower1``, ``mc_upper0``, ``mc_lower0``)
``m.sharer_cap[i]``    ``P_ii ≤ σ_i² − (σ_i² − κ_i) a_i`` (valid inequality)
``m.tangent[i, q]``    ``z_i ≥`` tangent of ``g_i`` at ``m.tangent_table[i][q]``
``m.obj``              the problem's objective (maximise)
=====================  ==========================================================

First best and de-correlated equilibrium are exact MILPs.  For the
equilibrium the model carries the *initial tangent table* (``n_tangents``
points per user, evenly spaced on ``[P_ii(1,…,1), σ_i²τ_i²/(σ_i²+τ_i²)]``) and
is a relaxation: its optimal value is an upper bound, and its profile must be
re-evaluated with :meth:`GaussianMarket.evaluate` (``dm_opt.solve(...,
method="milp")`` runs the outer-approximation loop that closes the gap).

Users add side constraints as ordinary Pyomo components::

    m = dm_opt.to_pyomo(market, "first_best")
    m.user0_out = pyo.Constraint(expr=m.a[0] == 0)
    m.at_most_3 = pyo.Constraint(expr=sum(m.a[i] for i in m.N) <= 3)
    pyo.SolverFactory("appsi_highs").solve(m)
"""

from __future__ import annotations

import numpy as np

from ..errors import ProblemError
from ..markets.gaussian import GaussianMarket
from ..markets.objectives import LeakageObjective
from .milp import DEFAULT_CUTS, DEFAULT_TANGENTS, build_model


def to_pyomo(market, problem="first_best", *, constraints=None, n_tangents: int = DEFAULT_TANGENTS,
             cuts=DEFAULT_CUTS):
    """Pyomo ``ConcreteModel`` of the MILP of SPEC §1.2 (see the module docstring for components).

    Parameters
    ----------
    market : GaussianMarket
    problem : {"first_best", "equilibrium", "decorrelated"} or LeakageObjective
    constraints : dict or SideConstraints, optional
        Common side constraints added as rows ``sharers`` / ``budget`` and variable bounds.
    n_tangents : int
        Points in the equilibrium's tangent table (ignored when no ``z`` is needed).
    """
    import pyomo.environ as pyo
    from pyomo.core.expr.numeric_expr import LinearExpression

    from .constraints import SideConstraints

    if not isinstance(market, GaussianMarket):
        raise ProblemError(f"MILP backend is Gaussian-MSE-only (GaussianMarket); got {type(market).__name__}")
    objective = problem if isinstance(problem, LeakageObjective) else market.objective(problem)
    sc = SideConstraints.from_any(constraints, market.n)
    if sc is not None:
        sc.check_problem(objective.name)
    mod = build_model(market, objective, sc, n_tangents=n_tangents, symmetric=False, cuts=cuts)
    n = market.n
    m = pyo.ConcreteModel(name=f"dm_opt_{objective.name}")
    m.N = pyo.RangeSet(0, n - 1)
    zi = [int(i) for i in np.flatnonzero(mod.col_z >= 0)]
    m.Z = pyo.Set(initialize=zi)

    lo, hi = mod.col_lo, mod.col_hi

    def bnd(j):
        return (None if lo[j] == -np.inf else float(lo[j]), None if hi[j] == np.inf else float(hi[j]))

    m.a = pyo.Var(m.N, within=pyo.Binary, bounds=lambda _, i: bnd(mod.col_a[i]))
    m.P = pyo.Var(m.N, m.N, bounds=lambda _, i, j: bnd(mod.col_P[i, j]))
    m.R = pyo.Var(m.N, m.N, bounds=lambda _, i, j: bnd(mod.col_R[i, j]))
    m.z = pyo.Var(m.Z, bounds=lambda _, i: bnd(mod.col_z[i]))
    cols = [None] * mod.num_col
    for i in range(n):
        cols[mod.col_a[i]] = m.a[i]
    for i in range(n):
        for j in range(n):
            cols[mod.col_P[i, j]] = m.P[i, j]
            cols[mod.col_R[i, j]] = m.R[i, j]
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
    return m


def profile_of(model) -> np.ndarray:
    """The 0/1 profile of a solved :func:`to_pyomo` model (values rounded to the nearest integer)."""
    import pyomo.environ as pyo

    return np.array([int(round(pyo.value(model.a[i]))) for i in model.N], dtype=np.int8)
