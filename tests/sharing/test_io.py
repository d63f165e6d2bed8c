"""Instance kind ``sharing_network``: loading, validation, and ``dm-opt solve``."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dm_opt
from dm_opt import InstanceError, SharingMarket
from dm_opt.cli import main
from dm_opt.core.instances import from_dict
from dm_opt.sharing import kernels as K
from dm_opt.sharing import welfare as W
from dm_opt.sharing.problems import PROBLEMS
from tests.support.limits_helpers import CtrlC

MODELS = Path(__file__).resolve().parents[2] / "models" / "rj"
FILES = sorted(MODELS.glob("*.toml"))


def test_model_files_load_with_source():
    assert {f.name for f in FILES} >= {"example_3_5.toml", "remark_3_4.toml", "power_family_12.toml"}
    for f in FILES:
        m = dm_opt.load(f)
        assert isinstance(m, SharingMarket) and m.source and "Rasouli" in m.source


def test_table_file_values():
    m = dm_opt.load(MODELS / "remark_3_4.toml")
    assert m.names == ("1", "2")
    assert m.value(0, []) == 1 and m.value(0, [1]) == 0 and m.value(1, [0]) == 10 and m.value(1, []) == 0
    m = dm_opt.load(MODELS / "example_3_5.toml")
    # agent 1: {1,3} > {1,2} > {1} > {1,2,3}
    v = [m.bilateral_value(0, S) for S in ([2], [1], [], [1, 2])]
    assert v == sorted(v, reverse=True) and len(set(v)) == 4


SOLVABLE = [(f.name, p) for f in FILES for p in PROBLEMS["sharing_network"]
            if not (f.name == "example_3_5.toml" and p == "ordered_match")
            and not (f.name == "power_queries.toml" and p in ("ordered_match", "ordered_match_queries"))
            and not (f.name in ("example_3_5.toml", "remark_3_4.toml") and p == "ordered_match_queries")]


@pytest.mark.parametrize("name, problem", SOLVABLE)
def test_cli_json_parses_and_exits_0(name, problem, capsys):
    assert main(["solve", str(MODELS / name), "--problem", problem, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["problem"] == problem and out["status"] in ("optimal", "node_limit", "time_limit")


def test_cli_text_and_default_problem(capsys):
    assert main(["solve", str(MODELS / "remark_3_4.toml")]) == 0       # default: welfare (eq. 11)
    out = capsys.readouterr().out
    assert "welfare 11" in out and "status optimal" in out
    assert main(["solve", str(MODELS / "remark_3_4.toml"), "--problem", "ordered_match"]) == 0
    out = capsys.readouterr().out
    assert "ordered_match" in out and "0 edges" in out
    assert main(["solve", str(MODELS / "example_3_5.toml"), "--problem", "stability"]) == 0
    assert "0 stable outcome(s) among 8 graphs" in capsys.readouterr().out


def test_cli_json_values_remark_3_4(capsys):
    assert main(["solve", str(MODELS / "remark_3_4.toml"), "--problem", "stability", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stable_graphs"] == [[]]


def test_cli_refuses_ordered_match_when_assumptions_fail(capsys):
    assert main(["solve", str(MODELS / "example_3_5.toml"), "--problem", "ordered_match"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "top_agent" in err[0]


def test_cli_bad_method(capsys):
    assert main(["solve", str(MODELS / "power_family_12.toml"), "--problem", "welfare", "--method", "x"]) == 2
    assert "unknown method" in capsys.readouterr().err


def test_cli_subprocess_json_is_clean_stdout(tmp_path):
    # HiGHS prints a banner on first use: it must not reach stdout
    r = subprocess.run([sys.executable, "-m", "dm_opt.cli", "solve", str(MODELS / "power_queries.toml"),
                        "--problem", "welfare", "--method", "milp", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["method"] == "milp"


def test_cli_bad_file_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "sharing_network"\nfamily = "power"\nsamples = [1, -2]\n')
    r = subprocess.run([sys.executable, "-m", "dm_opt.cli", "solve", str(bad)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "samples[1]" in lines[0] and "Traceback" not in r.stderr


def table(**over):
    d = {"kind": "sharing_network", "family": "table", "agents": ["a", "b"],
         "utility": {"a": {"": 1.0, "b": 0.0}, "b": {"": 0.0, "a": 10.0}}}
    d.update(over)
    return d


def power(**over):
    d = {"kind": "sharing_network", "family": "power", "samples": [10, 20, 30]}
    d.update(over)
    return d


@pytest.mark.parametrize("data, field", [
    ({"kind": "sharing_network"}, "family"),
    (table(family="tables"), "family"),
    (table(name=3), "name"),
    (table(extra=1), "extra"),
    (table(utility=None) | {"utility": 5}, "utility"),
    ({k: v for k, v in table().items() if k != "utility"}, "utility"),
    ({k: v for k, v in table().items() if k != "agents"}, "agents"),
    (table(agents="ab"), "agents"),
    (table(agents=["a", "a"]), "agents"),
    (table(agents=["a,", "b"]), "agents"),
    (table(agents=["a"], utility={"a": {"": 1.0}}), "agents"),
    (table(utility={"a": {"": 1.0, "b": 0.0}, "b": {"": 0.0, "a": 1.0}, "c": {}}), "utility.c"),
    (table(utility={"a": {"": 1.0, "b": 0.0}}), "utility.b"),
    (table(utility={"a": 3, "b": {"": 0.0, "a": 1.0}}), "utility.a"),
    (table(utility={"a": {"": 1.0}, "b": {"": 0.0, "a": 1.0}}), "utility.a"),
    (table(utility={"a": {"": 1.0, "b": 0.0, "z": 1.0}, "b": {"": 0.0, "a": 1.0}}), 'utility.a."z"'),
    (table(utility={"a": {"": 1.0, "a": 0.0}, "b": {"": 0.0, "a": 1.0}}), 'utility.a."a"'),
    (table(utility={"a": {"": 1.0, "b,b": 0.0}, "b": {"": 0.0, "a": 1.0}}), 'utility.a."b,b"'),
    (table(utility={"a": {"": 1.0, "b": "x"}, "b": {"": 0.0, "a": 1.0}}), 'utility.a."b"'),
    (table(utility={"a": {"": 1.0, "b": True}, "b": {"": 0.0, "a": 1.0}}), 'utility.a."b"'),
    (table(utility={"a": {"": 1.0, "b": float("inf")}, "b": {"": 0.0, "a": 1.0}}), 'utility.a."b"'),
    (table(utility={"a": {"": 1.0, "b": 1.0, " b": 2.0}, "b": {"": 0.0, "a": 1.0}}), 'utility.a." b"'),
    (table(cost=-1.0), "cost[0]"),
    (table(max_queries=2), "max_queries"),
    ({k: v for k, v in power().items() if k != "samples"}, "samples"),
    (power(samples=[1, 0, 2]), "samples[1]"),
    (power(n=1), "n"),
    (power(n=True), "n"),
    (power(alpha=[1, 2]), "alpha"),
    (power(beta=-1.0), "beta[0]"),
    (power(cost=[[0, 1], [1, 0]]), "cost"),
    (power(max_queries=[1, 2, 0.5]), "max_queries[2]"),
    (power(samples={"family": "uniform", "low": 1, "high": 2, "seed": 1}), "samples.n"),
    (power(samples={"family": "nope", "n": 3}), "samples.family"),
    (power(utility={}), "utility"),
    (power(agents=["x", "y"]), "names"),
])
def test_validation_errors_name_the_field(data, field):
    with pytest.raises(InstanceError) as ei:
        from_dict(data, "f.toml")
    assert ei.value.field == field and ei.value.where == "f.toml"


def test_power_generator_tables():
    m = from_dict(power(samples={"family": "uniform", "low": 10, "high": 100, "seed": 3}, n=40,
                        alpha={"family": "uniform", "low": 1, "high": 2, "seed": 4}, beta=0.4, cost=0.001))
    assert m.n == 40 and np.all((m.samples >= 10) & (m.samples <= 100)) and np.all(m.beta == 0.4)


# ------------------------------------------------- limits and interruption
def test_cli_time_limit_not_hit_gives_the_exact_answer(capsys):
    f = str(MODELS / "power_family_12.toml")
    assert main(["solve", f, "--json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert main(["solve", f, "--time-limit", "600", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "optimal" and out["gap"] == 0 and out["time_limit"] == 600
    for k in ("objective", "bound", "share", "buyer_values"):
        assert out[k] == ref[k]
    assert main(["solve", f, "--time-limit", "600"]) == 0
    assert "status optimal" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["welfare", "prices", "vcg", "mixed_vcg", "d_mixed_vcg"])
def test_cli_time_limit_hit_reports_status_bound_gap(capsys, problem):
    f = str(MODELS / "power_queries.toml")
    assert main(["solve", f, "--problem", problem, "--time-limit", "1e-9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "time_limit" and "time limit reached" in out["message"]
    exact = W.welfare_max(dm_opt.load(f))
    if problem in ("welfare", "prices"):
        assert out["objective"] <= exact.welfare + 1e-9 <= out["bound"] + 2e-9
        assert out["unsolved"] == list(range(6))
    else:
        assert out["welfare"] <= out["bound"] and out["gap"] >= 0
        assert all(lo <= hi + 1e-12 for lo, hi in zip(out["clarke"], out["clarke_bound"]))
    if problem == "prices":
        assert out["demand_ok"] is None
    assert main(["solve", f, "--problem", problem, "--time-limit", "1e-9"]) == 0
    text = capsys.readouterr().out
    assert "status time_limit" in text and "bound" in text


def test_cli_time_limit_stability_and_checks(capsys):
    assert main(["solve", str(MODELS / "example_3_5.toml"), "--problem", "stability", "--time-limit", "1e-9",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "time_limit" and out["complete"] is False and out["graphs_checked"] < 8
    assert main(["solve", str(MODELS / "example_3_5.toml"), "--problem", "check", "--time-limit", "1e-9"]) == 0
    assert "status time_limit" in capsys.readouterr().out
    # no partial ordered match exists: one line, exit 2
    assert main(["solve", str(MODELS / "power_family_12.toml"), "--problem", "ordered_match",
                 "--time-limit", "1e-9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "time limit" in err


def test_cli_stability_check_undecided_when_interrupted(capsys, monkeypatch):
    """N > 6: ordered match, then the exhaustive check, which says UNDECIDED when stopped."""
    flaky = CtrlC(K.find_deviation_range, 2, after=True)
    monkeypatch.setattr(K, "find_deviation_range", flaky)
    assert main(["solve", str(MODELS / "power_family_12.toml"), "--problem", "stability", "--json"]) == 130
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "interrupted" and out["stable"] is None and out["coalitions_examined"] > 0
    flaky.calls = 0
    assert main(["solve", str(MODELS / "power_family_12.toml"), "--problem", "stability"]) == 130
    assert "UNDECIDED" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["welfare", "prices", "vcg"])
def test_cli_ctrl_c_prints_partial_result_and_exits_130(capsys, monkeypatch, problem):
    real = K.buyer_bnb_run
    calls = []

    def run(*args):
        real(*args)
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt               # Ctrl-C during the fourth buyer problem
        return None

    monkeypatch.setattr(K, "buyer_bnb_run", run)
    f = str(MODELS / "power_family_12.toml")
    assert main(["solve", f, "--problem", problem, "--json"]) == 130
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "interrupted" and "interrupted by the user" in out["message"]
    assert out["bound"] >= out.get("welfare", out["objective"])
    if problem != "vcg":
        assert out["unsolved"] == list(range(3, 12))
        assert "prices" not in out
    calls.clear()
    assert main(["solve", f, "--problem", problem]) == 130
    text = capsys.readouterr().out
    assert "status interrupted" in text and "bound" in text


def _hard_file(tmp_path):
    """N = 400 agents with pair costs and up to 20 queries per seller: the per-buyer
    branch and bound needs minutes (it hits its node limit on some buyers)."""
    rng = np.random.default_rng(5)
    N = 400
    f = tmp_path / "hard.toml"
    f.write_text('kind = "sharing_network"\nsource = "test: random power family"\nfamily = "power"\n'
                 f"samples = {rng.integers(5, 150, N).astype(float).tolist()}\n"
                 f"alpha = {rng.uniform(0.5, 2, N).tolist()}\nbeta = {rng.uniform(0.2, 1.0, N).tolist()}\n"
                 f"cost = {rng.uniform(0, 0.06, (N, N)).tolist()}\nmax_queries = 20\n")
    return f


def test_cli_subprocess_time_limit_on_a_hard_instance(tmp_path):
    f = _hard_file(tmp_path)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "dm_opt.cli", "solve", str(f), "--time-limit", "0.5", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert time.perf_counter() - t < 60
    out = json.loads(r.stdout)
    assert out["status"] == "time_limit" and out["seconds"] < 5
    # how many buyers are left unsolved depends on the machine's speed
    assert out["objective"] <= out["bound"] and 0 < out["gap"] < 1e-3 and len(out["unsolved"]) > 0


@pytest.mark.slow
@pytest.mark.parametrize("method", ["bnb", "milp"])
def test_cli_subprocess_real_ctrl_c(tmp_path, method):
    """A real SIGINT: the partial result is printed (JSON) and the exit status is 130."""
    import signal

    f = _hard_file(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "dm_opt.cli", "solve", str(f), "--method", method, "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)                         # start-up and a few buyer problems
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    d = json.loads(out)
    assert d["status"] == "interrupted" and d["objective"] <= d["bound"] and "interrupted by the user" in d["message"]
    assert "Traceback" not in err
