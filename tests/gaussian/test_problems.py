"""The Gaussian problem table (dm_opt.gaussian.problems) and the family CLI report (dm_opt.gaussian.cli):
every kind and problem is reachable through ``dm_opt.solve``, returns a result following the
protocol, and is reported as strict JSON fields and text."""

import json

import pytest

import dm_opt
from dm_opt.core.jsonenc import dumps
from dm_opt.core.result import check_protocol
from dm_opt.gaussian import cli, problems
from tests.gaussian.cases import AMMO, EXTENSION_CASES, check_extension

#: a shipped instance file of every kind the table knows (the other oracle kinds have no file format)
FILES = {"gaussian_market": "example1", "community_market": "example2_community", "gaussian_mixture": "mixture_example",
         "gaussian_taxes": "taxes_example", "gaussian_valuations": "valuations_discrete",
         "two_platforms": "two_platforms_example"}


@pytest.mark.parametrize("case", EXTENSION_CASES, ids=lambda c: c.name)
def test_extension_catalogue(case):
    check_extension(case, dm_opt.solve(case.market(), case.problem))


def _kind_problems():
    for kind, file in FILES.items():
        for problem in problems.PROBLEMS[kind]:
            yield kind, file, problem


@pytest.mark.parametrize("kind, file, problem", list(_kind_problems()))
def test_every_problem_follows_the_protocol_and_is_reported(kind, file, problem):
    market = dm_opt.load(AMMO / f"{file}.toml")
    assert market.kind == kind
    res = dm_opt.solve(market, problem, time_limit=300)
    assert check_protocol(res) == []
    fields, text = cli.report(market, problem, res)
    json.dumps(res.to_dict(), allow_nan=False)
    json.loads(dumps(fields))
    assert isinstance(text, str) and text


def test_problem_and_report_tables_agree():
    """Every kind has one problem table (problems.py), a default and CLI flags, and a formatter for
    each of its problems (cli.py); io modules only parse."""
    from dm_opt.core.instances import kind_module

    for kind in FILES:
        mod = kind_module(kind)
        assert not hasattr(mod, "run") and not hasattr(mod, "PROBLEMS"), f"io module of {kind} solves or lists"
        assert problems.DEFAULT_PROBLEM[kind] in problems.PROBLEMS[kind]
        assert set(problems.PROBLEMS[kind]) == set(cli.REPORTS[kind])
        assert set(problems.CLI_OPTIONS[kind]) <= {"method", "all_optima", "time_limit", "progress", "scheduler"}
    assert set(problems.PROBLEMS) == set(problems.DEFAULT_PROBLEM) == set(problems.CLI_OPTIONS)


def test_post_tax_equilibrium_needs_taxes_and_platforms_take_no_method():
    tm = dm_opt.load(AMMO / "taxes_pigovian.toml")                 # no personalised taxes in the file
    with pytest.raises(dm_opt.InstanceError, match="taxes"):
        dm_opt.solve(tm, "post_tax_equilibrium")
    tp = dm_opt.load(AMMO / "two_platforms_example.toml")
    with pytest.raises(dm_opt.ProblemError, match="no methods"):
        dm_opt.solve(tp, "competition", method="enumerate")
    with pytest.raises(dm_opt.ProblemError, match="options"):
        dm_opt.solve(tm, "uniform_sweep", options={"workers": 2})


def test_every_gaussian_result_class_follows_the_protocol():
    """Results that are not problems of the table: the efficiency report, figure data, a benchmark
    grid, an envelope search (and Termination/Result are the shared ones)."""
    from dm_opt.gaussian.bench import generated, run_grid
    from dm_opt.gaussian.diagnostics import efficiency_report
    from dm_opt.gaussian.figures import figure2_data
    from dm_opt.gaussian.parametric import Line, envelope_search

    rep = efficiency_report(dm_opt.load(AMMO / "three_users.toml"))
    fig = figure2_data(rho=0.5, points=3)
    grid = run_grid(generated(["wishart"], [4], seeds=1), ["enumerate"], ["equilibrium"], time_limit=60)
    # F(θ) = max(1 − θ, 0.5): two pieces, breakpoint at θ = 0.5
    env = envelope_search(lambda t: Line(1.0, 1.0) if t < 0.5 else Line(0.5, 0.0), 0.0, 1.0, 1e-12)
    for r in (rep, fig, grid, env):
        assert check_protocol(r) == [], (type(r).__name__, check_protocol(r))
        assert r.family == "gaussian" and str(r.status) == "optimal"
    assert rep.bound >= rep.objective and rep.seconds > 0
    assert env.objective == 0.5 and env.complete and [(p.lo, p.hi) for p in env.pieces] == [(0.0, 0.5), (0.5, 1.0)]
