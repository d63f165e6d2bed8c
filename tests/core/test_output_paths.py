"""Files lose nothing: every output path is checked before any work — missing or
read-only directory, a directory as target, an existing file without --force, two outputs that
are the same file — with exit 2 and one line naming the option and the path."""

import os
import shutil
import subprocess

import pytest

from dm_opt.cli import main
from dm_opt.core import safeio as _safeio
from dm_opt.core.errors import ProblemError
from dm_opt.gaussian import figures

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EX1 = os.path.join(ROOT, "models", "ammo", "example1.toml")
BENCH = ["bench", "--families", "wishart", "--n", "4", "--seeds", "1", "--no-progress", "--serial",
         "--methods", "enumerate", "--memory", "none"]


def _read_only(path):
    """Make ``path`` read-only for this process (chmod; ``chattr +i`` when running as root); returns an
    undo function, or skips the test when that is impossible here."""
    mode = os.stat(path).st_mode & 0o777
    os.chmod(path, 0o555 if os.path.isdir(path) else 0o444)
    if not os.access(path, os.W_OK):
        return lambda: os.chmod(path, mode)
    chattr = shutil.which("chattr")                 # root ignores the mode bits
    ok = chattr and subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode == 0
    if not ok or os.access(path, os.W_OK):
        if ok:
            subprocess.run([chattr, "-i", str(path)], capture_output=True)
        os.chmod(path, mode)
        pytest.skip("cannot make a read-only file or directory here")

    def undo():
        subprocess.run([chattr, "-i", str(path)], capture_output=True)
        os.chmod(path, mode)

    return undo


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory nobody can create files in."""
    d = tmp_path / "ro"
    d.mkdir()
    undo = _read_only(d)
    yield d
    undo()


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a figure grid or an instance file is computed/loaded (the check must come first)."""
    def boom(*a, **kw):
        raise AssertionError("work started before the output path was checked")

    for name in ("figure1_data", "figure2_data", "figure3_data"):
        monkeypatch.setattr(figures, name, boom)
    import dm_opt.core.instances as io

    monkeypatch.setattr(io, "load", boom)
    from dm_opt.gaussian.bench import instances

    monkeypatch.setattr(instances, "generated", boom)


def _one_line(capsys, option, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"dm-opt: error: {option}:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err
    return err


# ------------------------------------------------------------------ each command, each failure
def _cases(tmp_path, ro):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    return {
        "missing": (str(tmp_path / "nope" / "x"), "does not exist"),
        "readonly": (str(ro / "x") if ro else None, "is not writable"),
        "directory": (str(tmp_path / "adir"), "is a directory"),
        "parent-is-file": (str(tmp_path / "afile" / "x"), "is not a directory"),
    }


# bench --out is a directory (created with missing parents; tests/gaussian/bench/test_bench_cli.py), so only
# a read-only directory and a file in the way apply to it
_COMBOS = [(cmd, case) for cmd in ("export", "figure --out", "figure --csv")
           for case in ("missing", "readonly", "directory", "parent-is-file")] + \
          [("bench", "readonly"), ("bench", "parent-is-file")]


@pytest.mark.parametrize("command, case", _COMBOS)
def test_unusable_output_path_is_one_line_before_any_work(tmp_path, capsys, request, no_work, case, command):
    ro = request.getfixturevalue("readonly_dir") if case == "readonly" else None
    path, needle = _cases(tmp_path, ro)[case]
    if command == "bench":
        argv, option = BENCH + ["--out", path], "--out"
        needle = "is not writable" if case == "readonly" else "is not a directory"
    elif command == "export":
        argv, option = ["export", EX1, "--out", path], "--out"
    elif command == "figure --out":
        argv, option = ["figure", "fig2", "--out", path], "--out"
    else:
        argv, option = ["figure", "fig2", "--out", str(tmp_path / "ok.png"), "--csv", path], "--csv"
    assert main(argv) == 2
    _one_line(capsys, option, path, needle)
    assert not os.path.exists(str(tmp_path / "ok.png"))


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="Linux /proc")
def test_unwritable_system_directory(capsys, no_work):
    """/proc/self refuses new files even to root."""
    assert main(["export", EX1, "--out", "/proc/self/m.mps"]) == 2
    _one_line(capsys, "--out", "/proc/self/m.mps", "not writable")


def test_bench_out_in_readonly_directory(readonly_dir, capsys, no_work):
    assert main(BENCH + ["--out", str(readonly_dir / "a" / "b")]) == 2
    _one_line(capsys, "--out", "cannot create", "not writable")


def test_bench_existing_nonempty_needs_force_and_output_names_must_not_be_directories(tmp_path, capsys):
    out = tmp_path / "o"
    (out / "runs.json").mkdir(parents=True)
    assert main(BENCH + ["--out", str(out)]) == 2
    _one_line(capsys, "--out", "exists and is not empty", "--force")
    assert main(BENCH + ["--out", str(out), "--force"]) == 2
    _one_line(capsys, "--out", "runs.json", "is a directory")


# ------------------------------------------------------------------ overwrite policy (uniform)
def test_existing_file_needs_force_everywhere(tmp_path, capsys, monkeypatch):
    target = tmp_path / "exists.out"
    target.write_text("keep me")
    for argv, option in ((["export", EX1, "--out", str(target)], "--out"),
                         (["figure", "fig2", "--out", str(target)], "--out"),
                         (["figure", "fig2", "--out", str(tmp_path / "new.png"), "--csv", str(target)], "--csv")):
        assert main(argv) == 2
        _one_line(capsys, option, str(target), "exists; pass --force to overwrite")
        assert target.read_text() == "keep me"
    assert main(["export", EX1, "--out", str(target), "--force"]) == 0
    assert target.read_text() != "keep me"


def test_force_does_not_overwrite_a_readonly_file(tmp_path, capsys):
    target = tmp_path / "ro.mps"
    target.write_text("keep me")
    undo = _read_only(target)
    try:
        assert main(["export", EX1, "--out", str(target), "--force"]) == 2
        _one_line(capsys, "--out", "cannot overwrite", "not writable")
        assert target.read_text() == "keep me"
    finally:
        undo()


# ------------------------------------------------------------------ two outputs, one file
@pytest.mark.parametrize("how", ["same", "dot", "symlink", "hardlink"])
def test_figure_out_and_csv_the_same_file_is_refused(tmp_path, capsys, no_work, how, monkeypatch):
    monkeypatch.chdir(tmp_path)
    png = tmp_path / "a.png"
    csv = {"same": "a.png", "dot": "./sub/../a.png", "symlink": "b.png", "hardlink": "c.png"}[how]
    (tmp_path / "sub").mkdir()
    if how in ("symlink", "hardlink"):
        png.write_bytes(b"old")
        (tmp_path / "b.png").symlink_to(png) if how == "symlink" else os.link(png, tmp_path / "c.png")
    argv = ["figure", "fig1", "--out", "a.png", "--csv", csv] + (["--force"] if how in ("symlink", "hardlink") else [])
    assert main(argv) == 2
    _one_line(capsys, "--csv", "same file as --out")
    if how in ("symlink", "hardlink"):
        assert png.read_bytes() == b"old"


def test_make_figure_api_checks_first(tmp_path, no_work):
    with pytest.raises(ProblemError, match="csv_path: .* same file as out"):
        figures.make_figure("fig2", str(tmp_path / "a.png"), str(tmp_path / "a.png"))
    with pytest.raises(ProblemError, match="out: cannot write .*does not exist"):
        figures.make_figure("fig2", str(tmp_path / "no" / "a.png"))
    (tmp_path / "e.png").write_text("x")
    with pytest.raises(FileExistsError, match="force=True"):
        figures.make_figure("fig2", str(tmp_path / "e.png"))


def test_check_helpers_accept_good_paths(tmp_path):
    assert _safeio.check_output_file(tmp_path / "x.png", "--out", False) == str(tmp_path / "x.png")
    assert _safeio.check_output_dir(tmp_path / "a" / "b", "--out", False) == str(tmp_path / "a" / "b")
    assert not os.path.exists(tmp_path / "a")                   # checking creates nothing
    assert [p.name for p in tmp_path.iterdir()] == []           # the write probe leaves nothing behind
    _safeio.check_distinct([("--out", str(tmp_path / "x.png")), ("--csv", str(tmp_path / "x.csv")), ("--z", None)])
