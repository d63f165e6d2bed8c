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


def export_model(market: GaussianMarket, problem: str, path: str, fmt: str = "mps", *,
                 n_tangents: int = DEFAULT_TANGENTS) -> str:
    """Write the MILP (maximisation, model units) to ``path`` in MPS or LP format via HiGHS ``writeModel``.

    First best and de-correlated equilibrium are exact.  The equilibrium is written with its
    initial tangent table (``n_tangents`` points per user): a *relaxation* whose optimum is an
    upper bound; re-evaluate its profile exactly, or use ``method="milp"`` for the OA loop.
    The model is standardised (``P_i_j`` = ``P_ij/(σ_iσ_j)``, objective = value / S); a comment
    line at the top of the file says which model it is and gives ``S``.  Returns that note.
    """
    import os
    import tempfile

    if fmt not in ("mps", "lp"):
        raise ProblemError(f"format must be 'mps' or 'lp', got {fmt!r}")
    objective = market.objective(problem)
    check_range(market, objective, "export")
    model = build_model(market, objective, None, n_tangents=n_tangents)
    h = to_highs(model, names=True)
    units = (f"standardised units: P_i_j = P_ij/(sigma_i sigma_j), objective = value / S with "
             f"S = {model.scale:.17g}")
    if np.any(model.col_z >= 0):
        note = (f"dm_opt {problem} n={market.n}: RELAXATION with an initial tangent table of {n_tangents} "
                f"points per user for g(x)=x^2/(rho-x) (perspective cuts); its optimum is an upper bound, "
                f"re-evaluate the profile exactly; {units}")
    else:
        note = (f"dm_opt {problem} n={market.n}: exact MILP (docs/spec.md §1.2), maximise; columns a_i are the sharing "
                f"binaries; {units}")
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
