"""Packaged models (usable by name from any directory), --version, solve --help."""

import json
import os
import subprocess
import sys

import pytest

import dm_opt
from dm_opt.cli import main
from dm_opt.core.instances import resolve, shipped_models


def test_every_shipped_model_loads_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = [n for n, _ in shipped_models()]
    assert "ammo/example1" in names and "glp/two_type" in names and "rj/example_3_5" in names
    for name, source in shipped_models():
        assert source, f"{name} has no source line"
        if "n1e6" in name:
            continue                                   # 10^6 users: loaded in the community tests
        m = dm_opt.load(name)
        assert m is not None
        assert dm_opt.load(name + ".toml").__class__ is m.__class__


def test_a_local_file_shadows_a_model_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ammo").mkdir()
    (tmp_path / "ammo" / "example1.toml").write_text('kind = "gaussian_market"\ncov = [[2.0]]\nvalues = [0.5]\n')
    assert resolve("ammo/example1.toml") == "ammo/example1.toml"
    assert dm_opt.load("ammo/example1.toml").n == 1
    assert dm_opt.load("ammo/example1").n == 2                  # the name without .toml is the shipped model


def test_cli_models_and_solve_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["models"]
    assert {"name": "ammo/example1", "source": dm_opt.load("ammo/example1").source} in listed
    assert main(["solve", "ammo/example1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "optimal" and out["objective"] == pytest.approx(0.25)
    assert main(["solve", "no/such_model"]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "dm-opt models" in err and len(err.strip().splitlines()) == 1


def test_version():
    assert dm_opt.__version__ and dm_opt.__version__ != "0+unknown"
    r = subprocess.run([sys.executable, "-m", "dm_opt.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"dm-opt {dm_opt.__version__}"


def test_solve_help_lists_every_kind_problems_and_methods(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["solve", "--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    from dm_opt.core.instances import KIND_MODULES

    for kind in KIND_MODULES:
        assert f"  {kind} " in out, kind
    for m in ("enumerate", "bnb", "milp", "misocp-scip", "community"):
        assert m in out


def test_text_output_survives_a_non_utf8_console(tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="cp1252")
    for args in (["solve", "glp/two_type", "--problem", "platform"], ["solve", "glp/two_type"]):
        r = subprocess.run([sys.executable, "-m", "dm_opt.cli", *args], capture_output=True, env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr.decode("cp1252", "replace")
        assert b"Traceback" not in r.stderr


def test_save_round_trips_a_gaussian_market(tmp_path):
    import numpy as np

    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 6))
    m = dm_opt.GaussianMarket(A @ A.T / 6 + 0.3 * np.eye(6), rng.uniform(0, 2, 6), rng.uniform(0.5, 2, 6),
                              name="saved", source="a test")
    path = dm_opt.save(m, tmp_path / "m.toml")
    back = dm_opt.load(path)
    assert np.array_equal(back.cov, m.cov) and np.array_equal(back.values, m.values)
    assert np.array_equal(back.noise_var, m.noise_var) and back.name == "saved" and back.source == "a test"
    assert dm_opt.solve(back, "equilibrium").objective == dm_opt.solve(m, "equilibrium").objective
    with pytest.raises(FileExistsError):
        dm_opt.save(m, path)                                   # never overwritten without force
    dm_opt.save(m, path, force=True)
    over_mixture = dm_opt.TwoPlatformMarket(dm_opt.load("ammo/mixture_example"),     # no instance file holds it
                                            dm_opt.JoiningValues.linear([9.0] * 4, [0.01] * 4))
    with pytest.raises(dm_opt.ProblemError, match="cannot save a two-platform market over a MixtureMarket"):
        dm_opt.save(over_mixture, tmp_path / "g.toml")
    assert not (tmp_path / "g.toml").exists()
