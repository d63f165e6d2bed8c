"""Instance kind ``info_design``: loading, validation errors naming the field, and
``dm-opt solve`` for every problem (JSON parses, exit 0; bad input exits 2 with one
line on stderr)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dm_opt
from dm_opt import InstanceError
from dm_opt.cli import main
from dm_opt.core.instances import from_dict

ROOT = Path(__file__).resolve().parents[2]
GLP = ROOT / "models" / "glp"
BASE = {"kind": "info_design", "source": "test", "types": [1.0, 2.0], "prior": [0.4, 0.6],
        "reservation": 0.5, "gamma_u": 1.0, "gamma_pi": 0.0}


def test_every_glp_file_loads_and_names_its_source():
    files = sorted(GLP.glob("*.toml"))
    assert len(files) >= 6
    for f in files:
        m = dm_opt.load(f)
        assert isinstance(m, dm_opt.InfoDesignMarket)
        assert m.source and ("Galperti" in m.source or "GLP" in m.source)


def test_two_type_file_matches_slides_assumptions():
    m = dm_opt.load(GLP / "two_type.toml")
    assert m.gamma_pi == 0 < m.gamma_u and m.prior[0] < m.prior[1]
    assert m.reservation < (1 + m.gamma_u) / 2


def test_generators_are_deterministic():
    d = dict(BASE, types={"family": "grid", "n": 10, "low": 1.0, "high": 10.0},
             prior={"family": "dirichlet", "seed": 3})
    a, b = from_dict(d), from_dict(d)
    np.testing.assert_array_equal(a.prior, b.prior)
    np.testing.assert_array_equal(a.types, np.arange(1.0, 11.0))
    u = from_dict(dict(BASE, prior={"family": "uniform"}))
    np.testing.assert_allclose(u.prior, [0.5, 0.5])


def test_general_payoff_file():
    d = {"kind": "info_design", "prior": [0.5, 0.5], "reservation": 0.1,
         "u": [[1, 2], [0, 1]], "pi": [[1, 1], [0, 2]], "v": [[1, 1], [0, 2]]}
    m = from_dict(d)
    assert m.is_general and m.m == 2


@pytest.mark.parametrize("change, field", [
    ({"colour": 1}, "colour"),
    ({"types": None}, "types"),
    ({"gamma_u": "x"}, "gamma_u"),
    ({"prior": [0.5, 0.6]}, "prior"),
    ({"types": [2.0, 1.0]}, "types[1]"),
    ({"types": {"family": "grid", "n": 0}}, "types.n"),
    ({"types": {"family": "grid", "n": 3, "low": 2.0, "high": 1.0}}, "types.high"),
    ({"types": {"family": "wishart", "n": 3}}, "types.family"),
    ({"types": {"family": "grid", "n": 2, "step": 1}}, "types.step"),
    ({"prior": {"family": "dirichlet"}}, "prior.seed"),
    ({"prior": {"family": "dirichlet", "seed": 1, "alpha": -1.0}}, "prior.alpha"),
    ({"prior": {"family": "zipf"}}, "prior.family"),
    ({"database": [0.1, -0.2]}, "database[1]"),
    ({"database": [0.1]}, "database"),
    ({"fees": [3.0, 1.0]}, "fees[1]"),
    ({"name": 3}, "name"),
])
def test_field_errors(change, field):
    d = dict(BASE)
    for k, v in change.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    with pytest.raises(InstanceError) as e:
        from_dict(d, "x.toml")
    assert e.value.field == field


def test_general_missing_matrix():
    d = {"kind": "info_design", "prior": [0.5, 0.5], "reservation": 0.1, "u": [[1, 2], [0, 1]],
         "pi": [[1, 1], [0, 2]]}
    with pytest.raises(InstanceError) as e:
        from_dict(d)
    assert e.value.field == "v"


@pytest.mark.parametrize("problem", ["platform", "efficiency", "equilibrium", "union", "taxes", "complete"])
def test_cli_json_every_problem(problem, capsys):
    rc = main(["solve", str(GLP / "two_type.toml"), "--problem", problem, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    d = json.loads(out)
    assert d["problem"] == problem and d["kind"] == "info_design"
    if problem == "efficiency":
        assert abs(d["welfare"] - 0.4) < 1e-9 and np.allclose(d["q"], [0.4, 0.4])
    if problem == "taxes":
        assert d["is_equilibrium"] and d["no_deficit"]


def test_cli_text_output(capsys):
    assert main(["solve", str(GLP / "two_type_no_trade.toml"), "--problem", "equilibrium"]) == 0
    out = capsys.readouterr().out
    assert "equilibrium famil" in out and "none" in out


def test_cli_subprocess_json_is_clean_stdout():
    """HiGHS' banner must not reach stdout (it would break --json)."""
    r = subprocess.run([sys.executable, "-m", "dm_opt.cli", "solve", str(GLP / "two_type.toml"), "--json"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    json.loads(r.stdout)


@pytest.mark.parametrize("argv, needle", [
    (["--method", "milp"], "--method"),
    (["--all-optima"], "--all-optima"),
    (["--method", "pieces"], "--method"),
    (["--problem", "first_best"], "--problem"),
])
def test_cli_rejects_irrelevant_flags(argv, needle, capsys):
    rc = main(["solve", str(GLP / "two_type.toml"), "--problem", "platform"] + argv
              if "--problem" not in argv else ["solve", str(GLP / "two_type.toml")] + argv)
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.count("\n") == 1


def test_cli_bad_file_exit_2(tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text('kind = "info_design"\ntypes = [1.0, 2.0]\nprior = [0.5, 0.6]\nreservation = 0.1\n'
                 'gamma_u = 1.0\ngamma_pi = 0.0\n')
    rc = main(["solve", str(f), "--json"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "prior" in err


def test_cli_too_large_for_enumeration_exit_2(capsys):
    rc = main(["solve", str(GLP / "grid_10.toml"), "--problem", "equilibrium"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1


def test_cli_efficiency_honours_time_limit(capsys):
    """The KKT MILP stops at --time-limit and reports its best allocation with bound and gap."""
    rc = main(["solve", str(GLP / "grid_10.toml"), "--problem", "efficiency", "--method", "milp",
               "--time-limit", "0.01", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["status"] == "time_limit"          # the MILP needs about a second here
    assert out["bound"] >= out["welfare"] - 1e-9 and out["gap"] > 0
