"""``dm-opt bench`` outputs for users outside the repository: versions and commit in the metadata,
the profile as a list of user indices, a partial performance profile marked partial, and a
missing matplotlib reported on stderr."""

import csv
import json
import subprocess
import sys

import pytest

from dm_opt.cli import main
from dm_opt.gaussian.bench import report
from dm_opt.gaussian.bench.runner import GridRun, profile_indices

TINY = ["bench", "--families", "straddle", "--n", "5", "--seeds", "1", "--time-limit", "10", "--no-progress",
        "--serial", "--methods", "enumerate", "--memory", "none"]


@pytest.fixture
def fake_git(monkeypatch):
    """``git rev-parse HEAD`` answered without running git (``calls`` records the commands)."""
    calls = []
    real_run = subprocess.run
    answer = {"rc": 0, "out": "0123456789abcdef0123456789abcdef01234567\n"}

    def run(cmd, *args, **kw):
        if list(cmd[:1]) != ["git"]:
            return real_run(cmd, *args, **kw)
        calls.append((cmd, kw.get("cwd")))
        if answer.get("raise"):
            raise answer["raise"]
        return subprocess.CompletedProcess(cmd, answer["rc"], answer["out"], "")

    monkeypatch.setattr(report.subprocess, "run", run)
    return calls, answer


def test_metadata_records_versions_and_commit(tmp_path, capsys, fake_git):
    calls, _ = fake_git
    assert main(TINY + ["--out", str(tmp_path / "o")]) == 0
    meta = json.loads((tmp_path / "o" / "runs.json").read_text())["meta"]
    import numba
    import numpy

    v = meta["versions"]
    assert set(v) == {"dm_opt", "numpy", "numba", "highspy"}
    assert v["numpy"] == numpy.__version__ and v["numba"] == numba.__version__
    assert v["dm_opt"] is not None
    assert meta["git_commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert calls and calls[0][0] == ["git", "rev-parse", "HEAD"]


@pytest.mark.parametrize("how", ["not a checkout", "no git", "garbage"])
def test_commit_quietly_absent(tmp_path, capsys, fake_git, how):
    _, answer = fake_git
    if how == "not a checkout":
        answer.update(rc=128, out="")
    elif how == "no git":
        answer["raise"] = FileNotFoundError("git")
    else:
        answer["out"] = "fatal: something\n"
    assert report.git_commit() is None
    assert main(TINY + ["--out", str(tmp_path / "o")]) == 0
    meta = json.loads((tmp_path / "o" / "runs.json").read_text())["meta"]
    assert "git_commit" not in meta
    assert capsys.readouterr().err == ""                 # quietly


def test_profile_column_is_a_list_of_indices(tmp_path, capsys, fake_git):
    assert profile_indices([0, 1, 0, 0, 1]) == [1, 4]
    assert profile_indices([0, 0]) == [] and profile_indices([]) is None
    assert main(TINY + ["--out", str(tmp_path / "o")]) == 0
    run = json.loads((tmp_path / "o" / "runs.json").read_text())["runs"][0]
    import dm_opt
    from dm_opt.gaussian.bench import InstanceSpec

    r = dm_opt.solve(InstanceSpec("x", "straddle", 5, 0).build(), "equilibrium", "enumerate")
    expected = [int(i) for i in range(5) if r.profile[i]]
    assert run["profile"] == expected
    with open(tmp_path / "o" / "runs.csv") as fh:
        row = next(csv.DictReader(fh))
    assert row["profile"] == "[" + ", ".join(map(str, expected)) + "]"
    assert json.loads(row["profile"]) == expected


def test_nobody_shares_is_a_profile_and_agrees(fake_git):
    """``[]`` (nobody shares) is a returned profile: checked against the reference, not 'n/a'."""
    from dm_opt.gaussian.bench.runner import check_agreement

    def row(method, obj, profile):
        return {"instance": "p", "problem": "equilibrium", "method": method, "status": "optimal",
                "objective": obj, "bound": obj, "profile": profile, "agreement": "n/a", "tie_tol": 1e-12}

    rows = [row("enumerate", 1.0, []), row("other", 1.0, [])]
    assert check_agreement(rows) == [] and rows[1]["agreement"] == "agree"


def _png_text(path) -> dict:
    from PIL import Image

    with Image.open(path) as im:
        return dict(im.text)


def _rows():
    return [{"index": 0, "instance": "a", "family": "f", "n": 4, "seed": 0, "problem": "equilibrium",
             "method": "enumerate", "role": "method", "status": "optimal", "agreement": "agree", "objective": 1.0,
             "ref_objective": 1.0, "bound": 1.0, "gap": 0.0, "build_seconds": 0.0, "solve_seconds": 0.01,
             "seconds": 0.01, "nodes": 16, "peak_mib": None, "profile": [0], "message": "", "check_message": "",
             "tie_tol": 0.0, "compile_seconds": 0.0}]


def test_partial_profile_png_is_marked(tmp_path, fake_git):
    pytest.importorskip("matplotlib")
    grid = GridRun(rows=_rows(), interrupted=True, disagreements=[])
    paths = report.write_outputs(tmp_path, grid, instances=[], time_limit=10)
    text = _png_text(paths["profile"])
    assert "PARTIAL" in text["Title"] and "interrupted" in text["Partial"]
    assert text["Description"].startswith("PARTIAL")
    (tmp_path / "c").mkdir()
    full = report.write_outputs(tmp_path / "c", GridRun(rows=_rows(), interrupted=False, disagreements=[]),
                                instances=[], time_limit=10)
    text = _png_text(full["profile"])
    assert "PARTIAL" not in text["Title"] and "Partial" not in text


def test_partial_profile_title_says_partial(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    titles = []
    orig = matplotlib.axes.Axes.set_title

    def spy(self, label, *a, **kw):
        titles.append(label)
        return orig(self, label, *a, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", spy)
    from dm_opt.gaussian.bench.summary import plot_performance_profile

    assert plot_performance_profile(_rows(), tmp_path / "p.png", partial="interrupted after 1 run(s)")
    assert titles and titles[-1].startswith("PARTIAL:") and "interrupted after 1 run(s)" in titles[-1]
    assert matplotlib.figure is not None


def test_missing_matplotlib_reported_one_line(tmp_path, capsys, monkeypatch, fake_git):
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # import matplotlib -> ImportError
    assert main(TINY + ["--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "matplotlib" in ln]
    assert len(lines) == 1
    assert "profile.png" in lines[0] and "pip install dm-opt[plot]" in lines[0]
    assert not (tmp_path / "o" / "profile.png").exists()
    # the Python API warns instead
    from dm_opt.core.errors import DmOptWarning

    (tmp_path / "p").mkdir()
    with pytest.warns(DmOptWarning, match=r"pip install dm-opt\[plot\]"):
        report.write_outputs(tmp_path / "p", GridRun(rows=_rows(), interrupted=False, disagreements=[]),
                             instances=[], time_limit=10)
