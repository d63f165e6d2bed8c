"""``dm-opt bench``: outputs, exit codes (0 / 1 DISAGREE / 2 bad flags), --force, --models."""

import json
import os

import pytest

from dm_opt.cli import main
from dm_opt.gaussian.bench.cli import parse_range

TINY = ["bench", "--families", "wishart", "--n", "4:5", "--seeds", "1", "--time-limit", "10", "--no-progress",
        "--serial"]


def test_parse_range():
    assert parse_range("10:40:5") == [10, 15, 20, 25, 30, 35, 40]
    assert parse_range("4:6") == [4, 5, 6]
    assert parse_range("8,6,6") == [6, 8]


def test_bench_writes_outputs(tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(TINY + ["--methods", "enumerate", "--out", str(out)])
    assert rc == 0
    assert {"runs.csv", "runs.json", "summary.md"} <= set(os.listdir(out))
    data = json.loads((out / "runs.json").read_text())
    assert [r["status"] for r in data["runs"]] == ["optimal", "optimal"]
    assert "| equilibrium | enumerate | 2 | 2 |" in capsys.readouterr().out
    assert "| equilibrium | enumerate | 5 | 1 | 1 |" in (out / "summary.md").read_text()   # by-size table
    # not overwritten without --force
    rc = main(TINY + ["--methods", "enumerate", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--force" in err and err.count("\n") == 1
    assert main(TINY + ["--methods", "enumerate", "--out", str(out), "--force"]) == 0


def test_bench_disagreement_exit_code(tmp_path, capsys, fake_backends):
    # straddle: half the users have v < 1 and share in every equilibrium (Lemma 3), so the
    # all-zero answer of wrong-test is certainly wrong
    rc = main(["bench", "--families", "straddle", "--n", "4", "--seeds", "1", "--no-progress", "--serial",
               "--methods", "wrong-test", "--problems", "equilibrium", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and "DISAGREE: wrong-test" in err
    rows = json.loads((tmp_path / "o" / "runs.json").read_text())["runs"]
    assert any(r["agreement"] == "DISAGREE" for r in rows)


@pytest.mark.parametrize("flags, needle", [
    (["--families", "nope"], "unknown family"),
    (["--families", "wishart", "--methods", "nope"], "unknown method"),
    (["--families", "wishart", "--problems", "nope"], "unknown problem"),
    (["--families", "wishart", "--n", "5:2"], "--n"),
    (["--families", "wishart", "--time-limit", "-1"], "--time-limit"),
    (["--families", "wishart", "--seeds", "0"], "--seeds"),
    ([], "nothing to run"),
    (["--families", "wishart", "--workers", "2", "--scheduler", "tcp://x:1"], "exclusive"),
    (["--models", "/nonexistent/x.toml"], "not found"),
])
def test_bad_flags_exit_2_one_line(tmp_path, capsys, flags, needle):
    rc = main(["bench", "--out", str(tmp_path / "o"), "--no-progress", "--serial"] + flags)
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.count("\n") == 1


def test_bench_models(tmp_path, capsys):
    f = tmp_path / "m.toml"
    f.write_text('kind = "gaussian_market"\nsource = "test"\ncov = {family = "banded", n = 5, seed = 2}\n'
                 'values = {family = "straddle", n = 5, seed = 1}\n')
    rc = main(["bench", "--models", str(f), "--methods", "enumerate", "--out", str(tmp_path / "o"),
               "--no-progress", "--serial", "--memory", "none"])
    assert rc == 0
    data = json.loads((tmp_path / "o" / "runs.json").read_text())
    assert data["runs"][0]["instance"] == str(f) and data["runs"][0]["peak_mib"] is None


def test_ctrl_c_writes_partial_results_exit_130(tmp_path, capsys):
    import numpy as np

    from dm_opt.core import registry as base
    from dm_opt.core.result import Termination

    calls = {"n": 0}

    class Interrupting(base.Backend):
        name = "ctrlc-cli-test"

        def run(self, market, objective, **kw):
            calls["n"] += 1
            if calls["n"] >= 4:          # warm-up + 2 timed runs, then Ctrl-C
                raise KeyboardInterrupt
            a = np.ones(market.n, np.int8)
            return base.RawSolution(a, Termination.OPTIMAL, market.evaluate(objective, a))

    base.register(Interrupting)
    try:
        rc = main(["bench", "--families", "wishart", "--n", "4", "--seeds", "5", "--no-progress", "--serial",
                   "--methods", "ctrlc-cli-test", "--reference-max-n", "0", "--out", str(tmp_path / "o")])
    finally:
        base.unregister("ctrlc-cli-test")
    assert rc == 130 and "interrupted" in capsys.readouterr().err
    data = json.loads((tmp_path / "o" / "runs.json").read_text())
    assert data["meta"]["complete"] is False and len(data["runs"]) == 2


def test_crashing_backend_is_an_error_row_not_a_crash(tmp_path, capsys):
    from dm_opt.core import registry as base

    class Crashing(base.Backend):
        name = "crash-test"

        def run(self, market, objective, **kw):
            raise TypeError("boom")

    base.register(Crashing)
    try:
        rc = main(["bench", "--families", "wishart", "--n", "4", "--seeds", "1", "--no-progress", "--serial",
                   "--methods", "enumerate,crash-test", "--out", str(tmp_path / "o")])
    finally:
        base.unregister("crash-test")
    assert rc == 0
    rows = json.loads((tmp_path / "o" / "runs.json").read_text())["runs"]
    crash = [r for r in rows if r["method"] == "crash-test"][0]
    assert crash["status"] == "error" and "boom" in crash["message"]


def test_default_executor_is_a_local_dask_cluster(tmp_path):
    """Without --serial the grid runs on Dask (one single-threaded local worker) and gives the same answers."""
    pytest.importorskip("distributed")
    out_d, out_s = tmp_path / "d", tmp_path / "s"
    base = ["bench", "--families", "wishart", "--n", "4", "--seeds", "1", "--time-limit", "10",
            "--methods", "enumerate,bnb", "--no-progress"]
    assert main(base + ["--out", str(out_d)]) == 0
    assert main(base + ["--out", str(out_s), "--serial"]) == 0
    rd = json.loads((out_d / "runs.json").read_text())
    rs = json.loads((out_s / "runs.json").read_text())
    assert rd["meta"]["executor"].startswith("LocalCluster") and rs["meta"]["executor"] == "serial"
    key = lambda r: (r["instance"], r["method"], r["problem"])
    assert [(key(r), r["objective"], r["profile"]) for r in sorted(rd["runs"], key=key)] == \
           [(key(r), r["objective"], r["profile"]) for r in sorted(rs["runs"], key=key)]


def _strict(text):
    def reject(token):
        raise ValueError(f"non-standard JSON token {token!r}")
    return json.loads(text, parse_constant=reject)


def test_runs_json_is_strict_with_infinite_bounds(tmp_path, capsys):
    """runs.json is strict JSON: an infinite bound/gap is the string "inf" (dm_opt.core.jsonenc), never Infinity."""
    import numpy as np

    from dm_opt.core import registry as base
    from dm_opt.core.result import Termination

    class NoBound(base.Backend):
        name = "nobound-json-test"

        def run(self, market, objective, **kw):
            return base.RawSolution(np.zeros(market.n, np.int8), Termination.TIME_LIMIT, float("inf"))

    base.register(NoBound)
    try:
        rc = main(["bench", "--families", "wishart", "--n", "4", "--seeds", "1", "--no-progress", "--serial",
                   "--methods", "nobound-json-test", "--reference-max-n", "0", "--memory", "none",
                   "--out", str(tmp_path / "o")])
    finally:
        base.unregister("nobound-json-test")
    assert rc == 0
    data = _strict((tmp_path / "o" / "runs.json").read_text())
    run = data["runs"][0]
    assert run["bound"] == "inf" and run["gap"] == "inf" and isinstance(run["objective"], float)
    assert run["peak_mib"] is None                         # not measured: null, not a number


@pytest.mark.parametrize("make, needle", [
    (lambda p: p / "missing" / "deeper" / "o", None),                  # missing parents are created
    (lambda p: (p / "file").write_text("x") and p / "file", "is not a directory"),
    (lambda p: (p / "file2").write_text("x") and p / "file2" / "o", "is not a directory"),
])
def test_out_dir_checked_before_any_run(tmp_path, capsys, make, needle):
    out = make(tmp_path)
    rc = main(TINY + ["--methods", "enumerate", "--out", str(out)])
    err = capsys.readouterr().err
    if needle is None:
        assert rc == 0 and (out / "runs.json").exists()
    else:
        assert rc == 2 and err.count("\n") == 1 and err.startswith("dm-opt: error: --out:") and needle in err
