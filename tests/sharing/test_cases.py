"""The catalogue (tests/sharing/cases.py) run through :func:`dm_opt.solve` with every buyer method."""

import pytest

import dm_opt
from dm_opt.core.result import Result, check_protocol
from dm_opt.core.status import SolutionStatus, Termination
from dm_opt.sharing import bilateral, buyer, mechanisms, prices, queries, welfare
from dm_opt.sharing.problems import CLI_OPTIONS, DEFAULT_PROBLEM, PROBLEMS
from tests.sharing.cases import CASES, KIND, check_result, load, run_case

#: the MILP runs of price ranges and D-mixed-VCG on N = 12 take 8 s each (slow marker; run with -m slow)
SLOW = {("power_12-prices", "milp"), ("power_queries-prices", "milp"), ("power_12-d_mixed_vcg", "milp")}
PARAMS = [pytest.param(c, meth, id=f"{c.name}-{meth}", marks=[pytest.mark.slow] if (c.name, meth) in SLOW else [])
          for c in CASES for meth in c.methods()]


@pytest.mark.parametrize("case, method", PARAMS)
def test_catalogue(case, method):
    if "raises" in case.expect:
        with pytest.raises(case.expect["raises"]):
            run_case(case, method)
        return
    check_result(case, run_case(case, method), case.market())


def test_problem_table_shape():
    assert set(PROBLEMS) == {KIND} and DEFAULT_PROBLEM[KIND] == "welfare" and set(CLI_OPTIONS[KIND]) <= {
        "method", "all_optima", "time_limit"}
    assert set(PROBLEMS[KIND]) == {"ordered_match", "check", "stability", "welfare", "prices", "vcg", "mixed_vcg",
                                   "d_mixed_vcg", "ordered_match_queries"}
    m = load("remark_3_4")
    assert dm_opt.solve(m).objective == 11.0                      # the default problem is welfare
    assert {c.problem for c in CASES} == set(PROBLEMS[KIND])      # every problem has a case


def test_every_result_class_of_the_family_follows_the_protocol():
    classes = [welfare.WelfareResult, prices.PriceResult, mechanisms.MechanismResult, buyer.BuyerSolution,
               bilateral.PropertyCheck, bilateral.AssumptionChecks, bilateral.OrderedMatchResult,
               bilateral.StabilityResult, bilateral.StableOutcomes, bilateral.BilateralWelfare,
               queries.WeightedMatchResult, queries.WeightedStability, queries.WeightedOutcomes]
    for cls in classes:
        assert issubclass(cls, Result) and cls.family == "sharing", cls
    ours = [c for c in Result.subclasses if c.__module__.startswith("dm_opt.sharing")]
    assert set(ours) == set(classes), set(ours) ^ set(classes)


def test_method_names_and_buyer_method_keyword():
    m = load("power_queries")
    a = dm_opt.solve(m, "welfare", buyer_method="enumerate")
    b = dm_opt.solve(m, "welfare", "enumerate")                    # the CLI's --method spelling
    assert a.method == b.method == "enumerate" and a.objective == b.objective
    with pytest.raises(dm_opt.ProblemError, match="unknown method"):
        dm_opt.solve(m, "welfare", "simplex")
    with pytest.raises(dm_opt.ProblemError, match="disagree"):
        dm_opt.solve(m, "welfare", "bnb", buyer_method="milp")
    with pytest.raises(dm_opt.ProblemError, match="unknown method"):
        dm_opt.solve(load("power_family_12"), "ordered_match", "bnb")
    r = dm_opt.solve(m, "welfare", options={"node_limit": 1})       # options reach the buyer search
    assert r.status is dm_opt.Termination.NODE_LIMIT and r.bound >= r.objective


@pytest.mark.parametrize("problem", ["check", "stability", "welfare", "prices", "vcg", "mixed_vcg", "d_mixed_vcg"])
def test_stopped_results_follow_the_protocol(problem):
    """An already spent deadline: every result still follows the protocol, honestly not optimal."""
    market = load("power_queries") if problem != "stability" else load("example_3_5")
    r = dm_opt.solve(market, problem, time_limit=buyer.EXPIRED)
    assert check_protocol(r) == [] and r.status is Termination.TIME_LIMIT and r.message
    assert r.solution_status is not SolutionStatus.OPTIMAL
    with pytest.raises(dm_opt.NoOptimalSolution):
        r.raise_for_status()
    with pytest.raises(dm_opt.LimitExceeded, match="time limit"):
        dm_opt.solve(load("power_family_12"), "ordered_match", time_limit=buyer.EXPIRED)
