"""Linear programs of the GLP data economy (docs/spec.md §2), with HiGHS (through cvxpy or highspy).

Everything here rests on one LP, the platform's information-design problem
``P_q`` (GLP slides, "Info-design problem equiv to platform choosing
mechanism"), written in the variables ``y(a, ω) = x(a|ω) q(ω) ≥ 0``::

    V(q) = max  Σ_{a,ω} v(a,ω) y(a,ω)
           s.t. Σ_a y(a,ω) = q(ω)                         ∀ω   (record counts, dual λ(ω))
                Σ_ω (π(a,ω) − π(a',ω)) y(a,ω) ≥ 0         ∀a≠a' (obedience, dual μ(a,a') ≥ 0)

``q`` enters only the right-hand side, so ``V(q) = min_{(λ,μ)∈D} λ·q`` with the
dual polyhedron ``D = {λ(ω) ≥ v(a,ω) + Σ_{a'} μ(a,a')(π(a,ω) − π(a',ω)), μ ≥ 0}``
independent of ``q``: V is concave, piecewise linear and homogeneous of degree
one, and ``∂V(q)`` (supergradients relative to ``q ≥ 0``, which is what the
platform's first-period problem ``max_{q≥0} V(q) − p·q`` needs) is the
λ-projection of the optimal dual face ``{(λ,μ) ∈ D : λ·q = V(q)}``.  Proof of
the last claim: an optimal dual gives ``V(q') ≤ λ·q' = V(q) + λ·(q'−q)``;
conversely a supergradient ``p`` satisfies ``p·q = V(q)`` (take ``q' = tq``)
and ``p·q' ≥ V(q')`` for all ``q' ≥ 0``, which by LP duality puts ``p`` in the
(upward-closed) projection of ``D``.  Coordinates with ``q(ω) = 0`` are
therefore unbounded above.

**Pieces of V.**  The vertices ``λ^k`` of ``proj_λ D`` are exactly the
gradients of V on its full-dimensional linear pieces, and ``V(q) = min_k λ^k·q``.
For ``y`` feasible at ``q``, ``Σ v y ≥ λ^k·q`` already implies that ``y`` is
optimal and ``λ^k ∈ ∂V(q)`` (weak duality), so the bilevel planner problem
(constrained efficiency) splits into one LP per piece::

    W° = max_k max { Σ (v+u)·y − r̄ Σ q : y feasible at q, 0 ≤ q ≤ q̄, Σ v y ≥ λ^k·q }.

:func:`value_pieces` finds every ``λ^k`` exactly for small ``|Ω|`` (adaptive:
``V_Λ = min_{λ∈Λ} λ·q ≥ V`` is linear on each region of the current list, V is
concave, so ``V = V_Λ`` on a region iff it holds at the region's vertices;
a vertex where ``V < V_Λ`` yields a new dual vertex).

Duals: cvxpy's HiGHS interface (cvxpy 1.9, HiGHS 1.16) returns duals for both
equality and inequality constraints of these LPs (``constraint.dual_value``);
for a maximisation the dual of ``Σ_a y = q`` is ``∂V/∂q`` with the sign used
here, and the obedience duals are ``μ ≥ 0``.  This is checked by the tests
(supergradient inequality against an independent scipy oracle, and every
reported λ verified to lie in ``proj D``), so highspy is not called directly.

Tolerances: HiGHS' primal/dual feasibility tolerance is 1e-7; values are
compared with :data:`VALUE_TOL` relative to the instance's payoff scale.

**Models, time limits, memory.**  ``P_q`` for one-off solves (:class:`PlatformLP`), the
piece LPs and the small equilibrium LPs are cvxpy models (compilation counted in the time
limit by :func:`_solve`); the models that grow with ``|A|·|Ω|`` — the live ``P_q``
(:class:`PlatformHighs`), the dual-face LPs of ``∂V(q)``, W(q)'s face LP, the KKT MILP of
constrained efficiency, complete markets — are passed to highspy directly from scipy
arrays (:class:`_HighsModel`), in the suffix-sum form for the slides' merchant
(:func:`_pq_blocks`), and run so that the caller gets control back within
``2 ×`` :data:`dm_opt.core.limits.STOP_GRACE_SECONDS` of the deadline
(:func:`dm_opt.core.limits.run_highs`).  Before building, the size of every such model is
estimated (nonzeros × :data:`HIGHS_LP_BYTES` / :data:`HIGHS_MILP_BYTES` /
:data:`CVXPY_BYTES`) and a model over :data:`dm_opt.core.limits.MEMORY_BUDGET` (2 GiB) is
refused with :class:`~dm_opt.core.errors.LimitExceeded`.  ``status == optimal`` means every
requested part is present; otherwise ``message`` says what is missing.

**Modules** (this package re-exports their public names, so ``lp.solve_platform(...)`` etc. work):
:mod:`~dm_opt.info_design.lp.platform` (``P_q``, ``∂V(q)`` ranges),
:mod:`~dm_opt.info_design.lp.social_welfare` (``W(q)``, :func:`platform_report`),
:mod:`~dm_opt.info_design.lp.pieces` (pieces of V),
:mod:`~dm_opt.info_design.lp.efficiency` (constrained efficiency: piece LPs, KKT MILP),
:mod:`~dm_opt.info_design.lp.equilibrium` (competitive equilibria),
:mod:`~dm_opt.info_design.lp.remedies` (data union, taxes, complete markets); the shared model
layer (tolerances, matrices, :class:`~dm_opt.info_design.common.HighsModel`) is
:mod:`dm_opt.info_design.common`, the results :mod:`dm_opt.info_design.results`.
"""

from __future__ import annotations

from dm_opt.info_design.common import (
    CS_TOL,
    CVXPY_BYTES,
    DENSE_WARM_MAX_NNZ,
    FACE_TOL,
    HIGHS_LP_BYTES,
    HIGHS_MILP_BYTES,
    LARGE_LP,
    LP_OPTIONS,
    MIN_SOLVE_SECONDS,
    PIECES_MAX_N,
    VALUE_TOL,
    WARM_SIMPLEX_STRATEGY,
    HighsModel,
    _check_size,
    _HighsModel,
    _obedient,
    _pq_blocks,
    _pq_nnz,
    _scale,
    _threshold_form,
    mechanism_from_y,
    no_information,
    obedience_matrix,
    obedience_slacks,
    payoff_scale,
    planner_bound,
    record_matrix,
    reduced_costs,
    relaxation_bound,
)
from dm_opt.info_design.lp.efficiency import (
    MILP_DUAL_BOUND,
    MILP_REL_GAP,
    PieceLP,
    constrained_efficiency,
    constrained_efficiency_milp,
)
from dm_opt.info_design.lp.equilibrium import (
    _PATTERN_NAMES,
    EQUILIBRIA_MAX_N,
    SCIP_FAMILY_SECONDS,
    SCIP_SLACK_TOL,
    equilibria,
)
from dm_opt.info_design.lp.pieces import value_pieces
from dm_opt.info_design.lp.platform import (
    PLATFORM_METHODS,
    PlatformHighs,
    PlatformLP,
    _DualFace,
    _partial_platform,
    _platform_method,
    platform_sweep,
    solve_platform,
)
from dm_opt.info_design.lp.remedies import _in_dual_polyhedron, complete_markets, data_taxes, data_union
from dm_opt.info_design.lp.social_welfare import FaceLP, platform_report, welfare
from dm_opt.info_design.results import (
    FULL,
    MID,
    ZERO,
    CompleteMarketResult,
    EfficiencyResult,
    EquilibriaResult,
    EquilibriumPiece,
    PlatformReport,
    PlatformSolution,
    TaxResult,
    UnionResult,
    ValuePieces,
    WelfareSolution,
)

#: private names kept importable from ``lp`` (tests and benchmarks use them)
_PRIVATE = (_check_size, _HighsModel, _obedient, _pq_blocks, _pq_nnz, _scale, _threshold_form, _PATTERN_NAMES,
            _DualFace, _partial_platform, _platform_method, _in_dual_polyhedron)

__all__ = [
    "PlatformLP", "PlatformHighs", "PlatformSolution", "solve_platform", "platform_report", "PLATFORM_METHODS",
    "platform_sweep", "FaceLP", "WelfareSolution", "welfare", "PlatformReport",
    "ValuePieces", "value_pieces", "PieceLP", "EfficiencyResult", "constrained_efficiency",
    "constrained_efficiency_milp", "MILP_DUAL_BOUND", "MILP_REL_GAP",
    "record_matrix", "obedience_matrix", "obedience_slacks", "reduced_costs", "mechanism_from_y", "HighsModel",
    "VALUE_TOL", "FACE_TOL", "CS_TOL", "PIECES_MAX_N", "LP_OPTIONS", "LARGE_LP", "WARM_SIMPLEX_STRATEGY",
    "DENSE_WARM_MAX_NNZ", "MIN_SOLVE_SECONDS", "HIGHS_LP_BYTES", "HIGHS_MILP_BYTES", "CVXPY_BYTES",
    "EquilibriumPiece", "EquilibriaResult", "equilibria", "EQUILIBRIA_MAX_N", "SCIP_SLACK_TOL",
    "SCIP_FAMILY_SECONDS", "ZERO", "MID", "FULL",
    "UnionResult", "data_union", "TaxResult", "data_taxes", "CompleteMarketResult", "complete_markets",
    "relaxation_bound", "planner_bound", "no_information", "payoff_scale",
]
