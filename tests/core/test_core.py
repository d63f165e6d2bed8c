"""The shared core: status axes, the HiGHS status map, the result protocol, the registry,
the one Deadline and the dispatch of dm_opt.solve."""

import time

import highspy
import numpy as np
import pytest

import dm_opt
from dm_opt.core import errors, registry
from dm_opt.core.dispatch import family_of, problem_table
from dm_opt.core.limits import Deadline, check_time_limit
from dm_opt.core.result import PROTOCOL, Result, check_protocol
from dm_opt.core.status import (
    HIGHS_TERMINATION,
    SolutionStatus,
    Termination,
    highs_has_solution,
    highs_termination,
    solution_status_of,
)


def test_every_highs_model_status_is_mapped():
    names = [x for x in dir(highspy.HighsModelStatus) if x.startswith("k")]
    assert names
    missing = [x for x in names if x not in HIGHS_TERMINATION]
    assert not missing, f"HiGHS model statuses without a Termination: {missing}"
    assert highs_termination(highspy.HighsModelStatus.kOptimal) is Termination.OPTIMAL
    assert highs_termination(highspy.HighsModelStatus.kTimeLimit) is Termination.TIME_LIMIT
    assert highs_termination(highspy.HighsModelStatus.kSolutionLimit) is Termination.ITERATION_LIMIT
    assert highs_termination(highspy.HighsModelStatus.kInterrupt) is Termination.INTERRUPTED
    assert highs_termination("kNoSuchStatus") is Termination.UNKNOWN


def test_highs_has_solution_reads_the_primal_status():
    from dm_opt.core.highs import new_highs

    h = new_highs()
    assert not highs_has_solution(h)             # nothing solved: info not valid
    h.addVar(0.0, 1.0)
    h.changeColCost(0, -1.0)
    h.run()
    assert highs_has_solution(h)
    assert highs_termination(h.getModelStatus()) is Termination.OPTIMAL


@pytest.mark.parametrize("status, has, expected", [
    ("optimal", True, "optimal"), ("optimal", False, "none"), ("time_limit", True, "feasible"),
    ("feasible", True, "feasible"), ("infeasible", True, "none"), ("error", True, "none"),
    ("interrupted", False, "none"), ("node_limit", True, "feasible")])
def test_two_status_axes(status, has, expected):
    assert solution_status_of(status, has) == SolutionStatus(expected)


def test_termination_values_are_the_documented_ones():
    assert {t.value for t in Termination} == {"optimal", "feasible", "time_limit", "node_limit", "iteration_limit",
                                              "interrupted", "infeasible", "error", "unknown"}
    assert {s.value for s in SolutionStatus} == {"none", "feasible", "optimal"}
    assert str(Termination.TIME_LIMIT) == "time_limit" and Termination.TIME_LIMIT == "time_limit"


def test_every_exception_and_warning_lives_in_core_errors():
    import importlib
    import inspect
    import pkgutil

    for mi in pkgutil.walk_packages(dm_opt.__path__, "dm_opt."):
        if mi.name == "dm_opt.core.errors":
            continue
        mod = importlib.import_module(mi.name)
        for name, obj in vars(mod).items():
            if (inspect.isclass(obj) and issubclass(obj, (Exception, Warning)) and obj.__module__ == mi.name
                    and not name.startswith("_")):
                pytest.fail(f"{mi.name}.{name} is an exception/warning class outside dm_opt.core.errors")
    for name in errors.__all__:
        assert getattr(dm_opt, name, None) is getattr(errors, name) or name == "Stopped", name


def test_gaussian_result_follows_the_protocol():
    m = dm_opt.load("models/ammo/example1.toml")
    r = dm_opt.solve(m, "equilibrium")
    assert isinstance(r, Result)
    assert check_protocol(r) == []
    d = r.to_dict()
    for k in ("status", "solution_status", "objective", "bound", "gap", "seconds", "message"):
        assert k in d
    assert r.raise_for_status() is r
    stopped = dm_opt.solve(dm_opt.GaussianMarket(np.eye(3) + 0.5, [0.5, 1.5, 0.2]), "first_best", "bnb",
                           node_limit=1) if "node_limit" in registry.get_backend("bnb").OPTIONS else None
    if stopped is not None and stopped.status is not Termination.OPTIMAL:
        with pytest.raises(errors.NoOptimalSolution) as ei:
            stopped.raise_for_status()
        assert ei.value.result is stopped
        assert isinstance(ei.value, errors.SolverFailed)


def test_protocol_defaults_for_a_minimal_result():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class R(Result):
        status: Termination
        objective: float

    r = R(Termination.TIME_LIMIT, 1.5)
    assert np.isnan(r.bound) and r.gap == float("inf") and r.seconds == 0.0 and r.message == "" and r.extra == {}
    assert r.solution_status is SolutionStatus.FEASIBLE
    assert check_protocol(r) == []
    with pytest.raises(errors.NoOptimalSolution, match="time_limit"):
        r.raise_for_status()
    assert set(PROTOCOL) <= set(dir(r)) | {"bound", "gap", "seconds", "message", "extra", "solution_status"}


def test_registry_declares_capabilities_per_family():
    assert "bnb" in registry.known_methods("gaussian")
    caps = registry.get_backend("bnb").capabilities()
    assert caps["family"] == "gaussian" and "first_best" in caps["problems"]
    assert set(registry.available_methods("gaussian")) <= set(registry.known_methods("gaussian"))
    with pytest.raises(errors.ProblemError, match="unknown method 'nope'"):
        registry.get_backend("nope")
    with pytest.raises(errors.ProblemError, match="unknown family"):
        registry.known_methods("nofamily")
    assert registry.get_backend("milp-scip", "gaussian").name == "misocp-scip" or not registry.get_backend(
        "misocp-scip").is_available()


def test_auto_does_not_hide_a_backend_bug(monkeypatch):
    """``auto`` may skip a backend only when it is unavailable, never because it is broken."""
    from dm_opt.gaussian import api

    real = registry.get_backend

    def broken(name, family="gaussian"):
        if name == "bnb":
            raise RuntimeError("a bug in the bnb module")
        return real(name, family)

    monkeypatch.setattr(api, "get_backend", broken)
    m = dm_opt.GaussianMarket(np.eye(22) + 0.1, np.full(22, 0.5))
    with pytest.raises(RuntimeError, match="a bug in the bnb module"):
        dm_opt.solve(m, "first_best")

    def unavailable(name, family="gaussian"):
        if name == "bnb":
            raise errors.BackendUnavailable("not installed")
        return real(name, family)

    monkeypatch.setattr(api, "get_backend", unavailable)
    r = dm_opt.solve(m, "first_best", time_limit=60)
    assert r.method != "bnb"


def test_check_time_limit_returns_the_time_remaining():
    d = Deadline(10.0)
    time.sleep(0.05)
    left = check_time_limit(d)
    assert 9.0 < left < 9.96
    assert check_time_limit(None) is None and check_time_limit(Deadline(None)) is None
    assert check_time_limit(2) == 2.0
    spent = Deadline(1e-9)
    time.sleep(0.001)
    assert check_time_limit(spent) == 0.0
    assert Deadline.of(d) is d
    with pytest.raises(errors.ProblemError, match="time_limit"):
        check_time_limit(-1)


def test_dispatch_uses_the_family_problem_table():
    m = dm_opt.load("models/ammo/example1.toml")
    assert family_of(m) == "gaussian"
    table, default = problem_table(m)
    assert default == "equilibrium" and {"first_best", "equilibrium", "decorrelated"} <= set(table)
    r = dm_opt.solve(m, "first_best", time_limit=Deadline(30))
    assert r.problem == "first_best" and r.status is Termination.OPTIMAL
    with pytest.raises(errors.ProblemError, match="unknown problem 'nope'"):
        dm_opt.solve(m, "nope")


def test_results_round_trip_through_json():
    import json

    from dm_opt.gaussian.result import SolveResult

    m = dm_opt.load("ammo/three_users")
    for r in (dm_opt.solve(m, "equilibrium", all_optima=True),
              dm_opt.solve(dm_opt.GaussianMarket(np.eye(3) + 0.5, [0.5, 1.5, 0.2]), "first_best", "bnb",
                           node_limit=1)):
        back = SolveResult.from_json(r.to_json())
        assert back.to_dict() == json.loads(r.to_json())
        assert back.status is r.status and np.array_equal(back.profile, r.profile)
        assert back.objective == r.objective and (back.bound == r.bound or np.isnan(r.bound))
        assert (back.optima is None) == (r.optima is None)
        if r.optima is not None:
            assert all(np.array_equal(a, b) for a, b in zip(back.optima, r.optima))
