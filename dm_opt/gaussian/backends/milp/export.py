"""``dm-opt export``: the model of :mod:`.model` written as MPS or LP for an external solver."""

from __future__ import annotations

import numpy as np

from dm_opt.core.errors import ProblemError, SolverFailed
from dm_opt.gaussian.backends.milp.model import (
    DEFAULT_TANGENTS,
    build_model,
    check_range,
    to_highs,
)
from dm_opt.gaussian.market import GaussianMarket


def export_model(market: GaussianMarket, problem: str, path: str, fmt: str = "mps", *, constraints=None,
                 n_tangents: int = DEFAULT_TANGENTS, posterior_form: str | None = None, cuts=None) -> str:
    """Write the MILP (maximisation, model units) to ``path`` in MPS or LP format via HiGHS ``writeModel``.

    First best and de-correlated equilibrium are exact.  The equilibrium is written with its
    initial tangent table (``n_tangents`` points per user): a *relaxation* whose optimum is an
    upper bound; re-evaluate its profile exactly, or use ``method="milp"`` for the OA loop.
    ``constraints`` takes the forms of ``dm_opt.solve`` (dict keys ``max_sharers``,
    ``min_sharers``, ``budget``, ``force_in``, ``force_out``, ``linear``, a
    ``scipy.optimize.LinearConstraint``, or a list of these): counts are the row ``sharers``,
    linear rows the block ``linear_q`` (relaxed by their slack ``1e-9·Σ|A_q|``, the definition
    of :meth:`SideConstraints.feasible`), forced users column bounds, the budget the row
    ``budget`` (exact for ``decorrelated``, a relaxation for ``equilibrium``).
    ``posterior_form`` and ``cuts`` default to those of :func:`~dm_opt.gaussian.backends.milp.pyomo.to_pyomo`
    (:func:`~dm_opt.gaussian.backends.milp.pyomo.strongest_form`).

    Conventions of the file: the sense is maximise (MPS section ``OBJSENSE MAX``, LP ``max``);
    the model is standardised (``P_i_j`` = ``P_ij/(σ_iσ_j)``) and its objective, *including* the
    constant ``offset``, is the problem's value divided by ``S``.  HiGHS writes the constant in
    MPS as the right-hand side of the objective row with the opposite sign (``RHS Obj = −offset``,
    the convention of CPLEX, Gurobi and HiGHS) and in LP as a constant term.  The comment line
    at the top of the file states which model it is, ``S`` and ``offset``.  Returns that note.
    """
    import os
    import tempfile

    from dm_opt.gaussian.backends.milp.pyomo import strongest_form
    from dm_opt.gaussian.constraints import SideConstraints

    if fmt not in ("mps", "lp"):
        raise ProblemError(f"format must be 'mps' or 'lp', got {fmt!r}")
    objective = market.objective(problem)
    sc = SideConstraints.from_any(constraints, market.n)
    if sc is not None:
        sc.check_problem(objective.name)
    check_range(market, objective, "export")
    form, default_cuts = strongest_form(market)
    form = form if posterior_form is None else posterior_form
    model = build_model(market, objective, sc, n_tangents=n_tangents, posterior_form=form,
                        cuts=default_cuts if cuts is None else cuts)
    h = to_highs(model, names=True)
    units = (f"standardised units: P_i_j = P_ij/(sigma_i sigma_j); objective incl. its constant offset = "
             f"value / S with S = {model.scale:.17g}, offset = {model.offset:.17g} (MPS: RHS of the objective "
             f"row = -offset)")
    rows = "" if sc is None else "; side constraints as rows (linear rows relaxed by their slack 1e-9 sum|A_q|)"
    if model.col_w is not None and np.any(model.col_w >= 0):
        rows += "; columns w_j_l = a_j a_l (McCormick, exact at binary a) of the probing cut rows"
    if np.any(model.col_z >= 0):
        note = (f"dm_opt {problem} n={market.n}: RELAXATION with an initial tangent table of {n_tangents} "
                f"points per user for g(x)=x^2/(rho-x) (perspective cuts); its optimum is an upper bound, "
                f"re-evaluate the profile exactly; maximise{rows}; {units}")
    else:
        note = (f"dm_opt {problem} n={market.n}: exact MILP (docs/spec.md §1.2), maximise; columns a_i are the sharing "
                f"binaries{rows}; {units}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = os.path.join(tmp, f"model.{fmt}")
        st = h.writeModel(tmp_path)
        if str(st).endswith("kError"):
            raise SolverFailed(f"HiGHS could not write the model as {fmt}")
        with open(tmp_path, encoding="utf-8") as fh:
            body = fh.read()
    comment = "* " if fmt == "mps" else "\\ "
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(comment + note + "\n" + body)
    return note
