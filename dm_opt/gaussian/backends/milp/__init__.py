"""Exact mixed-integer models of the Gaussian data market (docs/spec.md §1.2): the model
(:mod:`.model`: standardisation, guaranteed ranges, rows from arrays, HiGHS model), the ``milp``
backend (:mod:`.solve`: outer approximation, certificate, attempts), export to MPS/LP
(:mod:`.export`) and the Pyomo model and exact loop for users' own models (:mod:`.pyomo`).
"""

from dm_opt.gaussian.backends.milp.export import (  # noqa: F401
    export_model,
)
from dm_opt.gaussian.backends.milp.model import (  # noqa: F401
    BINARY_TOL,
    CONVEX_POINTS,
    CUTS,
    DEFAULT_CUTS,
    DEFAULT_TANGENTS,
    HIGHS_FEASIBILITY,
    HIGHS_OPTIONS,
    POSTERIOR_FORMS,
    RANGES,
    STRONGEST_CUTS,
    MilpModel,
    Range,
    RowBlock,
    Standardised,
    _leave_one_out_diagonals,
    _lower,
    _stack_rows,
    _tangent_rows,
    build_model,
    check_range,
    condition_number,
    convex_cut_terms,
    convex_points,
    correlation_and_ratios,
    exact_terms,
    model_value,
    modular_cut_terms,
    own_gain_from_loo,
    probing_cut_terms,
    standardise,
    tangent_coefficients,
    to_highs,
)
from dm_opt.gaussian.backends.milp.solve import (  # noqa: F401
    PRECISION_SAFE,
    RETRY_OPTIONS,
    Milp,
    _attempts,
    _new_tangents,
    _polish,
    _round_profile,
    certify,
    check_highs_options,
    finish_rounds,
    gaussian_side_constraints,
    infeasible_result,
    solve_milp,
    solve_milp_once,
    trivial_bound,
)
