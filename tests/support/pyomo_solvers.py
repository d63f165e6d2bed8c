"""The Pyomo HiGHS interface of this installation, for the Pyomo tests (skips when there is none)."""

import pytest


def pyomo_highs():
    """``appsi_highs`` or ``highs`` as a Pyomo solver, whichever this Pyomo build has."""
    pyo = pytest.importorskip("pyomo.environ")
    for name in ("appsi_highs", "highs"):
        try:
            s = pyo.SolverFactory(name)
            if s.available(exception_flag=False):
                return s
        except Exception:  # pragma: no cover - depends on the Pyomo build
            continue
    pytest.skip("no HiGHS interface in this Pyomo installation")
