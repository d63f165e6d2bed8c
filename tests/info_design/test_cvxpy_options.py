"""``dm_opt.solve(glp_market, ..., options={...})``: the options of the GLP problems whose LPs are
cvxpy models (``solver``, ``solver_options``, ``verbose``) reach cvxpy's ``Problem.solve``, are
checked before any work (unknown keys and bad values named) and are never dropped silently.

The answers with each accepted solver are checked against the catalogue's values from the
papers (tests/info_design/cases.py), not against the default solver's answer."""

from __future__ import annotations

import warnings

import pytest

import dm_opt
from dm_opt.core.errors import DmOptWarning, ProblemError
from dm_opt.info_design.backends import CVXPY_LP_SOLVERS
from tests.info_design.cases import CASES, check_result

cp = pytest.importorskip("cvxpy")
INSTALLED = [s for s in CVXPY_LP_SOLVERS if s in cp.installed_solvers()]
CASE = {c.name: c for c in CASES}
#: a line each solver's own log prints (verbose), and no other solver's does
LOG_MARK = {"HIGHS": "HiGHS run time", "SCIPY": "Solver terminated with message", "SCIP": "SCIP Status",
            "CLARABEL": "Clarabel.rs"}


@pytest.mark.parametrize("solver", CVXPY_LP_SOLVERS)
@pytest.mark.parametrize("problem", ["efficiency", "union"])
def test_every_accepted_solver_gives_the_papers_values(solver, problem):
    if solver not in INSTALLED:
        pytest.skip(f"cvxpy solver {solver} not installed")
    case = CASE["second_price_general"]         # general payoffs: no closed form, the piece LPs run
    r = dm_opt.solve(case.market(), problem, method="pieces", options={"solver": solver.lower()})
    check_result(case, problem, r)


def test_equilibrium_lps_take_the_options_too(capfd):
    case = CASE["three_type_consumer"]
    solver = "SCIPY" if "SCIPY" in INSTALLED else "HIGHS"
    r = dm_opt.solve(case.market(), "equilibrium", options={"solver": solver, "verbose": True})
    check_result(case, "equilibrium", r)
    assert LOG_MARK[solver] in capfd.readouterr().out      # verbose: the solver's own log


def test_the_solver_named_is_the_one_run(capfd):
    market = CASE["second_price_general"].market()
    for solver in INSTALLED:
        dm_opt.solve(market, "efficiency", options={"solver": solver, "verbose": True})
        out = capfd.readouterr().out
        assert LOG_MARK[solver] in out
        assert all(LOG_MARK[other] not in out for other in INSTALLED if other != solver)
    dm_opt.solve(market, "efficiency")
    assert capfd.readouterr().out == ""                                   # quiet by default


def test_solver_options_reach_the_solver():
    market = CASE["second_price_general"].market()
    # a valid HiGHS option changes nothing in the answer; an invalid one is refused by HiGHS itself
    r = dm_opt.solve(market, "efficiency", options={"solver_options": {"simplex_strategy": 1}})
    check_result(CASE["second_price_general"], "efficiency", r)
    with pytest.raises(ProblemError, match=r"solver_options.*HIGHS refused.*no_such_option"):
        dm_opt.solve(market, "efficiency", options={"solver_options": {"no_such_option": 1}})
    if "CLARABEL" in INSTALLED:
        with pytest.raises(ProblemError, match=r"solver_options.*CLARABEL refused.*bogus"):
            dm_opt.solve(market, "efficiency", options={"solver": "CLARABEL", "solver_options": {"bogus": 2}})
    # a limit the solver honours shows in the status: Clarabel stopped after 2 iterations is not optimal
    if "CLARABEL" in INSTALLED:
        r = dm_opt.solve(market, "efficiency", options={"solver": "CLARABEL", "solver_options": {"max_iter": 2}})
        assert str(r.status) != "optimal"


@pytest.mark.parametrize("options, match", [
    ({"gap": 1}, r"unknown option\(s\).*'efficiency'.*gap; allowed: solver, solver_options, verbose"),
    ({"solver": "HIGHS", "Verbose": True}, r"unknown option\(s\).*Verbose"),
    ({"solver": "OSQP"}, r"options\['solver'\] = 'OSQP'.*HIGHS, SCIPY, SCIP, CLARABEL"),
    ({"solver": "no_such_solver"}, r"options\['solver'\]"),
    ({"solver": 3}, r"options\['solver'\] = 3"),
    ({"verbose": 1}, r"options\['verbose'\] must be true or false"),
    ({"solver_options": [("a", 1)]}, r"options\['solver_options'\] must be a dict"),
    ({"solver_options": {1: 2}}, r"options\['solver_options'\] must be a dict"),
])
def test_bad_options_are_named_before_any_work(options, match):
    with pytest.raises(ProblemError, match=match):
        dm_opt.solve(CASE["second_price_general"].market(), "efficiency", options=options)


def test_methods_and_problems_without_cvxpy_refuse_options():
    market = CASE["three_type_consumer"].market()
    for problem, method in (("efficiency", "bbm"), ("efficiency", "milp"), ("union", "bbm"),
                            ("platform", "auto"), ("platform", "lp"), ("complete", "auto")):
        with pytest.raises(ProblemError, match=r"unknown option\(s\).*solver; allowed: none"):
            dm_opt.solve(market, problem, method=method, options={"solver": "HIGHS"})
    with pytest.raises(ProblemError, match="options must be a dict"):
        dm_opt.solve(market, "efficiency", options=["solver"])


def test_options_never_dropped_silently():
    market = CASE["three_type_consumer"].market()            # auto picks the closed form: no cvxpy LP
    with pytest.warns(DmOptWarning, match="options were not used.*'efficiency'"):
        r = dm_opt.solve(market, "efficiency", options={"solver": "HIGHS"})
    check_result(CASE["three_type_consumer"], "efficiency", r)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm_opt.solve(CASE["second_price_general"].market(), "efficiency", options={"solver": "HIGHS"})


def test_options_do_not_leak_into_later_solves(capfd):
    market = CASE["second_price_general"].market()
    with pytest.raises(ProblemError):
        dm_opt.solve(market, "efficiency", options={"verbose": True, "solver_options": {"no_such_option": 1}})
    capfd.readouterr()
    r = dm_opt.solve(market, "efficiency")                  # defaults again: quiet, HiGHS
    check_result(CASE["second_price_general"], "efficiency", r)
    assert capfd.readouterr().out == ""


def test_time_limit_with_options():
    market = CASE["second_price_general"].market()
    r = dm_opt.solve(market, "efficiency", method="pieces", time_limit=60, options={"solver": "HIGHS"})
    check_result(CASE["second_price_general"], "efficiency", r)
    r = dm_opt.solve(market, "efficiency", method="pieces", time_limit=1e-9, options={"solver": "HIGHS"})
    assert str(r.status) == "time_limit" and r.bound >= 3.3 - 1e-9
