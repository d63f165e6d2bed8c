"""AMMO Figures 1–3: solver-produced data against the paper's closed forms (dm_opt.gaussian.figures)."""

import sys

import numpy as np
import pytest

import dm_opt
from dm_opt.cli import main
from dm_opt.gaussian import figures
from dm_opt.gaussian.figures import (
    EXAMPLE2_RHO_MAX,
    equilibrium_surplus_two_users,
    example2_market,
    figure1_data,
    figure2_data,
    figure3_data,
)


def _bisect(f, lo, hi, tol=1e-10):
    """Sign change of f on [lo, hi] (f(lo) and f(hi) of different signs)."""
    flo = f(lo) < 0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if (f(mid) < 0) == flo:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# ------------------------------------------------------------------ Figure 1
@pytest.mark.parametrize("rho", [0.6, 0.8])
def test_figure1_multiplicity_region_is_the_papers_square(rho):
    """Both 00 and 11 are user equilibria exactly on [(2−ρ²)²/(2(4−ρ²)), 1/2]² (Example 1)."""
    data = figure1_data(rho=rho, grid=41, pmax=0.8)
    lo = (2 - rho ** 2) ** 2 / (2 * (4 - rho ** 2))
    p, lab = data.arrays["p"], data.arrays["labels"]
    checked = 0
    for i, p1 in enumerate(p):
        for j, p2 in enumerate(p):
            if min(abs(p1 - lo), abs(p1 - 0.5), abs(p2 - lo), abs(p2 - 0.5)) < 1e-9:
                continue   # on a threshold line a user is indifferent: several sets
            inside = lo < p1 < 0.5 and lo < p2 < 0.5
            assert (lab[i, j] == "00|11") == inside, (p1, p2, lab[i, j])
            if p1 > 0.5 and p2 < lo:
                assert lab[i, j] == "10"
            if p1 > 0.5 and p2 > 0.5:
                assert lab[i, j] == "11"
            checked += 1
    assert checked > 1000
    assert any(lab[i, j] == "00|11" for i in range(len(p)) for j in range(len(p)))


# ------------------------------------------------------------------ Figure 2
@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_figure2_thresholds_match_closed_forms(rho):
    """Equilibrium surplus > 0 for v < 1, < 0 exactly on (1, 4/(2−ρ²)²), = 0 above (§3.4);
    first-best surplus positive below 1 and zero above."""
    upper = 4 / (2 - rho ** 2) ** 2
    data = figure2_data(rho=rho, vmax=3.0, points=158)     # grid avoids both thresholds
    v, eq, fb = data.arrays["v"], data.arrays["equilibrium"], data.arrays["first_best"]
    for x, e, f in zip(v[1:], eq[1:], fb[1:], strict=True):
        assert min(abs(x - 1), abs(x - upper)) > 1e-6
        if x < 1:
            assert e > 0 and f > 0 and e == pytest.approx(f, abs=1e-12)   # efficient below 1
        elif x < upper:
            assert e < 0 and f == 0.0
        else:
            assert e == 0.0 and f == 0.0
    # thresholds located by bisection on solver calls, against the closed forms
    # tol=0: exact ties only (with the default tie tolerance the indifference point at the upper
    # threshold is resolved towards "nobody shares" up to tol/slope ≈ 1e-8 early, by design)
    s = lambda x: equilibrium_surplus_two_users(rho, x, tol=0.0)             # noqa: E731
    assert _bisect(s, 0.5, 1.5) == pytest.approx(1.0, abs=1e-8)
    top = _bisect(lambda x: -1.0 if s(x) < 0 else 1.0, 1.0 + 1e-6, upper + 0.5)
    assert top == pytest.approx(upper, abs=1e-8)


# ------------------------------------------------------------------ Figure 3
@pytest.fixture(scope="module")
def fig3():
    return figure3_data(rho_points=30, vh_points=45, vh_max=10.0, band_points=30, bisect_tol=1e-7)


def test_figure3_curve_continuous_and_region_north_east(fig3):
    r, vh, S, curve = (fig3.arrays[k] for k in ("rho", "v_h", "surplus", "curve"))
    ok = np.isfinite(curve)
    assert ok[r >= 0.05].all() and not ok[r <= 0.03].any()
    c = curve[ok]
    assert np.all(np.diff(c) < 0)                           # decreasing: NE is worse
    # continuity: the curve at every midpoint ρ lies between its neighbours (no jump anywhere)
    idx = np.flatnonzero(ok)
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        mid = 0.5 * (r[a] + r[b])
        sub = figure3_data(rho_points=1, vh_points=45, vh_max=10.0, rho_max=mid, band_points=0,
                           bisect_tol=1e-7).arrays["curve"][0]
        assert curve[b] - 1e-6 <= sub <= curve[a] + 1e-6
    # north-east of the curve: negative; below it and above the all-share band: nonnegative
    for i in range(r.size):
        for j in range(vh.size):
            if np.isfinite(curve[i]) and vh[j] > curve[i] + 1e-6:
                assert S[i, j] < 0 and np.all(S[i:, j] < 0)
            elif vh[j] < (curve[i] if np.isfinite(curve[i]) else np.inf) - 1e-6 and vh[j] > 1.5:
                assert S[i, j] >= 0
    # surplus at the curve is zero up to the bisection tolerance (solver call at the curve ± tol)
    i = int(np.flatnonzero(ok)[len(c) // 2])
    m_lo = example2_market(r[i], v_h=curve[i] - 1e-5)
    m_hi = example2_market(r[i], v_h=curve[i] + 1e-5)
    assert dm_opt.solve(m_lo, "equilibrium").surplus >= 0 > dm_opt.solve(m_hi, "equilibrium").surplus


def test_figure3_grid_equals_solve_and_enumeration(fig3):
    """Grid values = dm_opt.solve on the community market; an all-share band point = enumeration
    of all 2^20 profiles on the dense Σ (the band is not a community-solver artefact)."""
    r, vh, S = fig3.arrays["rho"], fig3.arrays["v_h"], fig3.arrays["surplus"]
    rng = np.random.default_rng(0)
    for _ in range(12):
        i, j = rng.integers(r.size), rng.integers(vh.size)
        res = dm_opt.solve(example2_market(r[i], v_h=vh[j]), "equilibrium")
        assert S[i, j] == pytest.approx(res.surplus, abs=1e-12)
    band = [row for row in fig3.rows if row[0] == "band"]
    assert band, "the exact solution has negative surplus below the curve near v_h = 1.1"
    _, rho, v_h, surplus, _, _ = band[0]
    assert v_h < 1.5 and surplus < 0
    m = example2_market(rho, v_h=v_h)
    e = dm_opt.solve(m.to_gaussian(), "equilibrium", method="enumerate")
    assert e.surplus == pytest.approx(surplus, abs=1e-10)
    assert e.profile.sum() == 20                               # everybody shares in the band


def test_figure3_rejects_non_pd_range():
    with pytest.raises(dm_opt.ProblemError):
        figure3_data(rho_max=EXAMPLE2_RHO_MAX + 0.01)


# ------------------------------------------------------------------ CLI and plotting
def test_cli_figure_writes_png_csv_and_refuses_overwrite(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="figures need the optional extra 'plot'")
    out, csv = tmp_path / "f2.png", tmp_path / "f2.csv"
    assert main(["figure", "fig2", "--out", str(out), "--csv", str(csv), "--rho", "0.7"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("v,equilibrium_surplus,first_best_surplus") and len(lines) > 100
    capsys.readouterr()
    assert main(["figure", "fig2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "exists" in err and "--force" in err
    assert main(["figure", "fig2", "--out", str(out), "--force"]) == 0
    assert main(["figure", "fig3", "--out", str(tmp_path / "x.png"), "--rho", "0.1"]) == 2
    assert main(["figure", "fig9", "--out", str(tmp_path / "x.png")]) == 2


def test_missing_matplotlib_is_backend_unavailable(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # import matplotlib -> ImportError
    with pytest.raises(dm_opt.BackendUnavailable, match="matplotlib"):
        figures.make_figure("fig2", str(tmp_path / "x.png"))


def test_figure_grids_on_dask_equal_serial():
    """The figure grids can run on the Dask path; same data as the serial run."""
    pytest.importorskip("distributed")
    from dm_opt.gaussian.distributed import open_client
    from dm_opt.gaussian.figures import figure1_data, figure2_data

    with open_client(workers=2, processes=False) as client:
        f3d = figure3_data(rho_points=4, vh_points=6, band_points=0, client=client)
        f1d = figure1_data(rho=0.6, grid=5, client=client)
        f2d = figure2_data(rho=0.6, points=7, client=client)
    f3s = figure3_data(rho_points=4, vh_points=6, band_points=0)
    np.testing.assert_array_equal(f3d.arrays["surplus"], f3s.arrays["surplus"])
    np.testing.assert_array_equal(f3d.arrays["curve"], f3s.arrays["curve"])
    assert f3d.rows == f3s.rows
    assert f1d.rows == figure1_data(rho=0.6, grid=5).rows
    assert f2d.rows == figure2_data(rho=0.6, points=7).rows


# ------------------------------------------------------------------ limits and interruption
from dm_opt.core import limits as core_limits  # noqa: E402
from dm_opt.core.result import Termination  # noqa: E402


def _interrupt_rows(monkeypatch, name, at):
    """Make the ``at``-th row of figure ``name`` raise KeyboardInterrupt (Ctrl-C inside the grid loop)."""
    real = getattr(figures, name)
    calls = [0]

    def row(*args, **kw):
        calls[0] += 1
        if calls[0] == at:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(figures, name, row)


def test_cli_figure_ctrl_c_writes_partial_csv_png_and_exits_130(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib", reason="figures need the optional extra 'plot'")
    full = figure2_data(rho=0.7)
    _interrupt_rows(monkeypatch, "_figure2_point", 6)
    out, csv = tmp_path / "f2.png", tmp_path / "f2.csv"
    assert main(["figure", "fig2", "--out", str(out), "--csv", str(csv), "--rho", "0.7"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dm-opt: interrupted: wrote PARTIAL") and "5 of 301" in err
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("# PARTIAL (interrupted)") and "5 of 301 points v computed" in lines[0]
    assert lines[1].startswith("v,equilibrium_surplus") and len(lines) == 2 + 5
    expect = [",".join(f"{x:.12g}" if isinstance(x, float) else str(x) for x in r) for r in full.rows[:5]]
    assert lines[2:] == expect                                    # the rows written are the exact ones
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_figure_ctrl_c_before_first_row_writes_nothing(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib", reason="figures need the optional extra 'plot'")
    _interrupt_rows(monkeypatch, "_figure2_point", 1)
    out, csv = tmp_path / "f2.png", tmp_path / "f2.csv"
    assert main(["figure", "fig2", "--out", str(out), "--csv", str(csv)]) == 130
    assert "interrupted" in capsys.readouterr().err and not out.exists() and not csv.exists()


def test_cli_figure_time_limit_labels_partial_output_exit_0(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib", reason="figures need the optional extra 'plot'")
    monkeypatch.setattr(core_limits.Deadline, "expired", lambda self: self.time_limit is not None)  # after row 1
    out, csv = tmp_path / "f1.png", tmp_path / "f1.csv"
    assert main(["figure", "fig1", "--out", str(out), "--csv", str(csv), "--time-limit", "30"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dm-opt: time limit: wrote PARTIAL" in err and "1 of 121 rows p1" in err
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("# PARTIAL (time_limit)") and len(lines) == 2 + 121
    assert main(["figure", "fig1", "--out", str(out), "--time-limit", "-1", "--force"]) == 2


def test_figure_partial_data_is_exact_and_masked(monkeypatch, tmp_path):
    full3 = figure3_data(rho_points=5, vh_points=8, band_points=0)
    full1 = figure1_data(rho=0.6, grid=6)
    _interrupt_rows(monkeypatch, "_figure3_row", 3)
    d3 = figure3_data(rho_points=5, vh_points=8, band_points=0)
    assert d3.status is Termination.INTERRUPTED and d3.partial and (d3.completed, d3.total) == (2, 5)
    np.testing.assert_array_equal(d3.arrays["surplus"][:2], full3.arrays["surplus"][:2])
    assert np.isnan(d3.arrays["surplus"][2:]).all() and np.isnan(d3.arrays["curve"][2:]).all()
    assert d3.rows == [r for r in full3.rows if r[1] in set(full3.arrays["rho"][:2])]
    _interrupt_rows(monkeypatch, "_figure1_row", 4)
    d1 = figure1_data(rho=0.6, grid=6)
    assert d1.completed == 3 and all(x is None for x in d1.arrays["labels"][3:].ravel())
    assert d1.rows == full1.rows[:18]
    if pytest.importorskip("matplotlib", reason="plotting needs matplotlib"):
        figures.plot(d3, str(tmp_path / "f3.png"))
        figures.plot(d1, str(tmp_path / "f1.png"))


def test_figure_row_with_backend_caught_ctrl_c_is_discarded(monkeypatch):
    """A solve inside a row that caught Ctrl-C returns status 'interrupted': the row is dropped, never
    written from a non-optimal answer."""
    import dataclasses

    real = dm_opt.gaussian.api.solve
    calls = [0]

    def solve(*args, **kw):
        calls[0] += 1
        res = real(*args, **kw)
        return dataclasses.replace(res, status=Termination.INTERRUPTED) if calls[0] == 7 else res

    monkeypatch.setattr(dm_opt.gaussian.api, "solve", solve)
    d = figure2_data(rho=0.7, points=11)
    assert d.status is Termination.INTERRUPTED and d.completed == 3 and len(d.rows) == 3
    assert np.isnan(d.arrays["equilibrium"][3:]).all()


def test_figure_unchanged_when_limit_not_hit_and_validation():
    a, b = figure2_data(rho=0.7, points=9), figure2_data(rho=0.7, points=9, time_limit=300)
    assert a.rows == b.rows and b.status is Termination.OPTIMAL and (b.completed, b.total) == (9, 9)
    assert not b.partial and b.message == ""
    with pytest.raises(dm_opt.ProblemError, match="time_limit must be a positive number"):
        figure2_data(points=3, time_limit=0)


def test_figure_time_limit_on_dask_keeps_completed_rows():
    pytest.importorskip("distributed")
    from dm_opt.gaussian.distributed import open_client

    serial = figure1_data(rho=0.6, grid=8)
    with open_client(workers=2, processes=False) as client:
        d = figure1_data(rho=0.6, grid=8, client=client, time_limit=1e-9)
    assert d.status in (Termination.TIME_LIMIT, Termination.OPTIMAL) and d.completed >= 1
    done = [i for i in range(8) if d.arrays["labels"][i, 0] is not None]
    assert len(done) == d.completed
    for i in done:
        assert list(d.arrays["labels"][i]) == list(serial.arrays["labels"][i])


@pytest.mark.slow   # real SIGINT to a subprocess (timing depends on the machine)
def test_console_figure_real_sigint(tmp_path):
    pytest.importorskip("matplotlib", reason="figures need the optional extra 'plot'")
    import signal
    import subprocess
    import time

    out, csv = tmp_path / "f1.png", tmp_path / "f1.csv"
    proc = subprocess.Popen([sys.executable, "-m", "dm_opt.cli", "figure", "fig1", "--out", str(out), "--csv",
                             str(csv)], stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the figure finished before the signal")
    assert proc.returncode == 130 and "Traceback" not in err and err.count("\n") == 1
    if csv.exists():
        assert csv.read_text().startswith("# PARTIAL (interrupted)") and "wrote PARTIAL" in err
