"""Unknown valuations: virtual values, the optimal mechanism of Thm B-2, VCG pricing (AMMO §5.2, App. B).

The platform does not know the values of privacy ``v_i``; it knows their
distributions ``F_i`` (independent across users).  Users report values; by the
revelation principle the platform picks a direct mechanism ``(a(v), p(v))``.

* **Virtual value** (Myerson, procurement side): ``Φ_i(v) = v + F_i(v) / f_i(v)``; Assumption 2
  asks it to be nondecreasing; discrete tables have an exact analogue (:mod:`.distributions`).
* **Allocation** (Thm B-2): ``a^E(v) = argmax_a Σ (1 − Φ_i(v_i)) I_i(a) + Φ_i(v_i) I_i(a_{−i}, 0)``,
  the equilibrium objective with ``Φ`` in place of ``v``, solved by :func:`dm_opt.solve`; its
  step function ``A_i(x, v_{−i})`` has exact breakpoints (:mod:`.allocation`).
* **Payments** (Thm B-2, eq. B-18):
  ``p_i(v) = ∫_{v_i}^{v_max} A_i(x, v_{−i}) dx + v_i A_i(v_i, v_{−i})``, an exact finite sum;
  the IC check of the mechanism (:mod:`.payments`).
* **Expected platform payoff** (Thm B-2): exact for discrete tables, seeded Monte Carlo with a
  95% confidence interval otherwise (:mod:`.expected_payoff`).
* **VCG pricing** (Prop B-1): first best plus one extra optimisation per user (:mod:`.vcg_pricing`).
* **Efficiency**: Prop B-2's surplus bound and the Thm B-3 classification (:mod:`.efficiency`).
* **Ironing** when Assumption 2 fails (Myerson): :mod:`.ironing`.
* The ``dm-opt report`` section: :mod:`.report`.

Modules, in dependency order (none imports a later one): ``distributions``, ``market``,
``allocation``, ``payments``, ``expected_payoff``, ``vcg_pricing``, ``efficiency``, ``ironing``,
``report``.  Everything public is re-exported here.

Known gap in the paper (reported by the tests, see ``docs/extensions_valuations_taxes.md``):
the IC proof of Thm B-2 works with the *rent* ``p_i − v A_i`` and ignores that a
misreport can change the others' sharing decisions and hence the externality
``v_i I_i(a_{−i}, 0)``; :func:`ic_violations` checks both notions.
"""

from dm_opt.core.errors import AssumptionWarning
from dm_opt.gaussian.valuations.allocation import (
    AllocationSteps,
    allocation_steps,
    virtual_objective,
)
from dm_opt.gaussian.valuations.distributions import (
    ContinuousValuation,
    DiscreteValuation,
    Valuation,
    as_valuation,
    check_assumption2,
    discrete,
    truncated_exponential,
    uniform,
)
from dm_opt.gaussian.valuations.efficiency import ThmB3Case, prop_b2_bound, thm_b3_case
from dm_opt.gaussian.valuations.expected_payoff import ExpectedPayoff, expected_platform_payoff
from dm_opt.gaussian.valuations.ironing import (
    IRONING_GRID,
    IronedContinuousValuation,
    IronedDiscreteValuation,
    iron,
    iron_discrete,
    ironed_market,
    mixture,
)
from dm_opt.gaussian.valuations.market import ValuationMarket
from dm_opt.gaussian.valuations.payments import (
    ICReport,
    MechanismOutcome,
    ic_violations,
    mechanism,
    user_utility,
)
from dm_opt.gaussian.valuations.report import valuation_report
from dm_opt.gaussian.valuations.vcg_pricing import VCGOutcome, vcg

__all__ = [
    "AssumptionWarning", "Valuation", "ContinuousValuation", "DiscreteValuation", "uniform",
    "truncated_exponential", "discrete", "as_valuation", "check_assumption2", "ValuationMarket",
    "virtual_objective", "AllocationSteps", "allocation_steps", "MechanismOutcome", "mechanism",
    "user_utility", "ICReport", "ic_violations", "ExpectedPayoff", "expected_platform_payoff",
    "prop_b2_bound", "VCGOutcome", "vcg", "ThmB3Case", "thm_b3_case",
    "valuation_report", "IRONING_GRID", "IronedContinuousValuation", "IronedDiscreteValuation", "iron",
    "iron_discrete", "ironed_market", "mixture",
]

# Re-exported without being in ``__all__`` (redundant aliases): what the single module offered
# besides its ``__all__`` -- its constants, the private helpers, and the names it had imported.
from dm_opt.core.errors import InstanceError as InstanceError
from dm_opt.core.errors import LimitExceeded as LimitExceeded
from dm_opt.core.errors import ProblemError as ProblemError
from dm_opt.core.limits import Deadline as Deadline
from dm_opt.core.result import Termination as Termination
from dm_opt.core.validate import MAX_ABS as MAX_ABS
from dm_opt.core.validate import as_real as as_real
from dm_opt.core.validate import as_vector as as_vector
from dm_opt.gaussian.market import GaussianMarket as GaussianMarket
from dm_opt.gaussian.objectives import LeakageObjective as LeakageObjective
from dm_opt.gaussian.parametric import Line as Line
from dm_opt.gaussian.parametric import Stopped as Stopped
from dm_opt.gaussian.parametric import envelope_search as envelope_search
from dm_opt.gaussian.parametric import interrupted as interrupted
from dm_opt.gaussian.parametric import json_num as json_num
from dm_opt.gaussian.parametric import no_partial_answer as no_partial_answer
from dm_opt.gaussian.valuations.allocation import _allocation_steps as _allocation_steps
from dm_opt.gaussian.valuations.allocation import _assumption2_ok as _assumption2_ok
from dm_opt.gaussian.valuations.allocation import _incumbent_note as _incumbent_note
from dm_opt.gaussian.valuations.allocation import _phi_range as _phi_range
from dm_opt.gaussian.valuations.distributions import ASSUMPTION2_GRID as ASSUMPTION2_GRID
from dm_opt.gaussian.valuations.distributions import ASSUMPTION2_RTOL as ASSUMPTION2_RTOL
from dm_opt.gaussian.valuations.distributions import TRUNCEXPON_MAX_RANGE as TRUNCEXPON_MAX_RANGE
from dm_opt.gaussian.valuations.efficiency import THRESHOLD_RTOL as THRESHOLD_RTOL
from dm_opt.gaussian.valuations.expected_payoff import MAX_EXACT_PROFILES as MAX_EXACT_PROFILES
from dm_opt.gaussian.valuations.payments import _coarse_payment_bounds as _coarse_payment_bounds
from dm_opt.gaussian.valuations.payments import _discrete_payment as _discrete_payment
from dm_opt.gaussian.valuations.payments import _mechanism as _mechanism
