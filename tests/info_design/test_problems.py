"""The family's problem table (dm_opt/info_design/problems.py), its CLI formatting
(dm_opt/info_design/cli.py) and the result protocol of every result class."""

import json

import numpy as np
import pytest

import dm_opt
from dm_opt.core.errors import ProblemError
from dm_opt.core.result import Result, check_protocol
from dm_opt.info_design import cli, lp, problems, results
from tests.info_design.cases import GLP


def test_table_shape():
    assert set(problems.PROBLEMS) == {"info_design"} and problems.DEFAULT_PROBLEM == {"info_design": "efficiency"}
    assert list(problems.PROBLEMS["info_design"]) == ["platform", "efficiency", "equilibrium", "union", "taxes",
                                                      "complete"]
    assert set(problems.CLI_OPTIONS["info_design"]) == {"method", "time_limit"}


@pytest.mark.parametrize("problem", list(problems.PROBLEMS["info_design"]))
def test_report_is_strict_json_and_text(problem):
    market = dm_opt.load(GLP / "two_type.toml")
    r = dm_opt.solve(market, problem)
    assert check_protocol(r) == [] and r.family == "info_design"
    fields, text = cli.report(market, problem, r)
    json.dumps(fields, allow_nan=False)
    json.dumps(r.to_dict(), allow_nan=False)
    assert fields["n_types"] == 2 and text.startswith(market.describe())


def test_unknown_method_and_options_are_refused():
    market = dm_opt.load(GLP / "two_type.toml")
    with pytest.raises(ProblemError, match="milp.*platform.*auto, bbm, lp"):
        dm_opt.solve(market, "platform", method="milp")
    with pytest.raises(ProblemError, match="equilibrium"):
        dm_opt.solve(market, "equilibrium", method="pieces")
    with pytest.raises(ProblemError, match="unknown option"):
        dm_opt.solve(market, "efficiency", options={"gap": 1})
    with pytest.raises(ProblemError, match="unknown problem"):
        dm_opt.solve(market, "first_best")


def test_platform_problem_at_a_database_and_its_protocol():
    market = dm_opt.load(GLP / "two_type.toml")
    r = dm_opt.solve(market, "platform", method="lp", q=[0.3, 0.3])
    assert r.method == "lp" and r.objective == pytest.approx(0.3) and r.welfare is not None
    np.testing.assert_allclose(r.solution.lower, [0, 0], atol=1e-7)
    np.testing.assert_allclose(r.solution.upper, [1, 1], atol=1e-7)


def test_every_result_class_derives_from_result():
    for name in results.__all__:
        cls = getattr(results, name)
        if isinstance(cls, type):
            assert issubclass(cls, Result) and cls.family == "info_design", name
    assert lp.PlatformSolution is results.PlatformSolution


def test_stopped_result_raises_for_status():
    from dm_opt.core.errors import NoOptimalSolution
    from dm_opt.core.limits import Deadline

    market = dm_opt.load(GLP / "grid_10.toml")
    r = dm_opt.solve(market, "efficiency", method="milp", time_limit=Deadline(1e-6))
    assert r.status == "time_limit" and str(r.solution_status) in ("feasible", "none")
    with pytest.raises(NoOptimalSolution):
        r.raise_for_status()
