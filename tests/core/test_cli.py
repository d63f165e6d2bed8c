"""The command line: tables, JSON, exit codes and one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from dm_opt.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EX1 = os.path.join(ROOT, "models", "ammo", "example1.toml")
THREE = os.path.join(ROOT, "models", "ammo", "three_users.toml")


def test_solve_json_has_contract_fields(capsys):
    assert main(["solve", EX1, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("profile", "objective", "prices", "leakage", "surplus", "bound", "gap", "method", "status", "seconds"):
        assert key in out
    assert out["profile"] == [1, 1] and out["status"] == "optimal" and out["method"] == "enumerate"


def test_solve_table_and_all_optima(capsys):
    assert main(["solve", THREE, "--all-optima"]) == 0
    out = capsys.readouterr().out
    assert "3 optimal profile(s)" in out and "110" in out and "011" in out
    assert main(["solve", THREE, "--all-optima", "--json", "--problem", "first_best"]) == 0
    assert json.loads(capsys.readouterr().out)["optima"] == [[0, 0, 0]]


@pytest.mark.parametrize("argv,fragment", [
    (["solve", "nope.toml"], "not found"),
    (["solve", EX1, "--problem", "bogus"], "--problem"),
    (["solve", EX1, "--method", "bogus"], "unknown method"),
    (["solve", EX1, "--time-limit", "-3"], "time-limit"),
    (["solve", EX1, "--time-limit", "abc"], "time-limit"),
    (["solve"], "file"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dm-opt: error:")
    assert fragment in err


def test_console_script_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "gaussian_market"\ncov = [[1.0, 2.0], [2.0, 1.0]]\nvalues = [1.0, 1.0]\n')
    proc = subprocess.run([sys.executable, "-m", "dm_opt.cli", "solve", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "cov: must be positive definite" in proc.stderr


@pytest.mark.parametrize("path,flag", [
    ("models/ammo/valuations_uniform.toml", ["--all-optima"]),        # (--time-limit applies to every kind)
    ("models/ammo/taxes_example.toml", ["--all-optima"]),
    ("models/ammo/two_platforms_example.toml", ["--method", "bnb"]),
    ("models/rj/remark_3_4.toml", ["--all-optima"]),
])
def test_flags_a_kind_does_not_use_are_refused(capsys, path, flag):
    """A flag is never silently ignored: kinds that do not use it refuse it (exit 2, one line)."""
    assert main(["solve", os.path.join(ROOT, path)] + flag) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag[0] in err and "does not apply" in err


def test_import_is_light_and_the_api_is_complete():
    """`import dm_opt.cli` (the console script) loads no numpy/numba, so Ctrl-C during start-up is
    handled by `main`; every public name and the submodule chains that worked after a plain
    `import dm_opt` still work (imported on first access)."""
    code = (
        "import sys, dm_opt, dm_opt.cli\n"
        "heavy = sorted(m for m in ('numpy', 'numba', 'scipy', 'highspy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "for name in dm_opt.__all__:\n"
        "    assert getattr(dm_opt, name) is not None, name\n"
        "assert dm_opt.core.registry.get_backend and dm_opt.gaussian.market.GaussianMarket is dm_opt.GaussianMarket\n"
        "assert dm_opt.core.dispatch.solve is dm_opt.solve and dm_opt.gaussian.api.solve\n"
        "assert dm_opt.core.instances.read_toml\n"
        "assert not hasattr(dm_opt, 'no_such_thing')\n"
        "ns = {}\n"
        "exec('from dm_opt import *', ns)\n"
        "assert set(dm_opt.__all__) <= set(ns)\n"
        "m = dm_opt.load(sys.argv[1])\n"
        "assert dm_opt.solve(m).status is dm_opt.Termination.OPTIMAL\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, EX1], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_summary_and_full_flags(capsys):
    import json

    assert main(["solve", "ammo/example2_community", "--summary", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["summary"] is True and "profile" not in d and d["status"] == "optimal"
    assert main(["solve", "ammo/example2_community", "--full", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["profile"]) == 20
    assert main(["solve", "glp/two_type", "--summary"]) == 2
    assert "applies to Gaussian kinds only" in capsys.readouterr().err
    assert main(["solve", "ammo/example1", "--summary", "--full"]) == 2
