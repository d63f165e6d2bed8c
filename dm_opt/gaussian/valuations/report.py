"""The unknown-valuations section of ``dm-opt report`` (AMMO §5.2, App. B)."""

from __future__ import annotations

import numpy as np

from dm_opt.core.limits import Deadline
from dm_opt.core.result import Termination
from dm_opt.gaussian.objectives import LeakageObjective
from dm_opt.gaussian.parametric import Stopped, no_partial_answer, solve_exact
from dm_opt.gaussian.valuations.efficiency import prop_b2_bound, thm_b3_case
from dm_opt.gaussian.valuations.market import ValuationMarket
from dm_opt.gaussian.valuations.payments import mechanism


def valuation_report(vm: ValuationMarket, reported=None, *, method: str = "auto",
                     time_limit=None) -> tuple[dict, str]:
    """Unknown-valuation section of ``dm-opt report``: virtual values, Thm B-2 allocation and its surplus
    at the reports, Prop B-2's bound, the Thm B-3 case, and the VCG (Prop B-1) surplus = first best.

    ``time_limit`` (seconds or a shared Deadline): the allocation and the first best must be
    proven optimal within it (else :class:`~dm_opt.core.errors.LimitExceeded`); payments left
    unfinished are reported with the mechanism's status."""
    dl = Deadline.of(time_limit)
    v = vm._reported(reported)
    out = mechanism(vm, v, method=method, time_limit=dl)
    if out.status is Termination.INTERRUPTED:       # Ctrl-C caught inside a solve: stop the report too
        raise KeyboardInterrupt
    case = thm_b3_case(vm, v)
    bound = prop_b2_bound(vm, v)
    try:
        fb = solve_exact(dl, vm.market, LeakageObjective.for_problem("first_best", v), method)
    except Stopped as s:
        no_partial_answer(s.status, f"first best not proven optimal ({s.message})")
    d = {"virtual_values": out.virtual_values.tolist(), "mechanism_profile": [int(x) for x in out.profile],
         "mechanism_surplus": out.surplus, "first_best_surplus": fb.surplus, "prop_b2_bound": bound,
         "thm_b3_case": case.case, "low_phi": list(case.low_phi),
         "part2_thresholds": {str(k): x for k, x in case.part2_thresholds.items()},
         "part4_thresholds": {str(k): x for k, x in case.part4_thresholds.items()},
         "assumption2_failures": list(vm.assumption2_failures), "mechanism_status": str(out.status)}
    text = "\n".join([
        "unknown valuations (AMMO §5.2, App. B):",
        f"  virtual values Φ(v): {np.array2string(out.virtual_values, precision=6)}",
        f"  Thm B-2 allocation {''.join(str(int(x)) for x in out.profile)}, surplus {out.surplus:.8g} "
        f"(first best {fb.surplus:.8g}; VCG of Prop B-1 attains it)",
        f"  Prop B-2 bound on that surplus: {bound:.8g}",
        f"  Thm B-3: {case.case}; V_Φ^(l) = {list(case.low_phi)}"
        + ("; predicts efficient" if case.predicts_efficient else "")
        + ("; predicts inefficient" if case.predicts_inefficient else ""),
    ] + [f"  WARNING: {msg}" for msg in vm.assumption2_failures])
    return d, text


__all__ = ["valuation_report"]
