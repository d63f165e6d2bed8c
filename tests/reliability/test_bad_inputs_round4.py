"""Bad inputs found by the fourth round of boundary fuzzing (docs/spec.md: bad input gets one clear
message naming the field; never a traceback, never a silent answer, never an overwritten file).

Targets: ``scip-check``'s ``threads`` option, :func:`dm_opt.save` (its temporary file and ``force``),
:func:`dm_opt.warmup.warmup`'s ``jobs``, and GLP cvxpy ``solver_options`` that loosen the LP
tolerances (an infeasible point was returned as ``optimal``).
"""

import os

import numpy as np
import pytest

import dm_opt
from dm_opt.core.errors import ProblemError


def one_line(msg: str, limit: int = 400) -> None:
    assert "\n" not in msg.strip(), msg
    assert len(msg) <= limit, msg[:200]


# ------------------------------------------------------------------ scip-check threads
@pytest.mark.parametrize("threads", ["x", -1, 65, 10**30, float("nan"), 1.5, True, np.array([2])])
def test_scip_check_threads_is_checked(threads):
    # used to reach SCIP as int(threads): ValueError / OverflowError / TypeError tracebacks, or
    # SCIP's own ValueError after its error log; 1.5 was silently truncated to 1
    pytest.importorskip("pyscipopt")
    m = dm_opt.load("ammo/example1")
    with pytest.raises(ProblemError, match="threads") as exc:
        dm_opt.solve(m, "equilibrium", "scip-check", threads=threads)
    one_line(str(exc.value))


def test_scip_check_threads_valid_values_still_solve():
    pytest.importorskip("pyscipopt")
    m = dm_opt.load("ammo/example1")
    ref = dm_opt.solve(m, "equilibrium", "enumerate")
    for threads in (1, np.int64(2), None):
        r = dm_opt.solve(m, "equilibrium", "scip-check", threads=threads)
        assert str(r.status) == "optimal" and abs(r.objective - ref.objective) <= ref.tie_tol


# ------------------------------------------------------------------ dm_opt.save
def test_save_never_clobbers_a_users_tmp_file(tmp_path):
    # save wrote through "<path>.tmp" and moved it onto path: a user's file of that name was
    # overwritten and then gone; a directory of that name gave an IsADirectoryError traceback
    m = dm_opt.load("ammo/example1")
    path = tmp_path / "m.toml"
    (tmp_path / "m.toml.tmp").write_text("USER DATA")
    os.mkdir(tmp_path / "m.toml.tmp1")
    assert dm_opt.save(m, path) == str(path)
    assert (tmp_path / "m.toml.tmp").read_text() == "USER DATA"
    assert (tmp_path / "m.toml.tmp1").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.toml", "m.toml.tmp", "m.toml.tmp1"]
    back = dm_opt.load(path)
    assert np.array_equal(back.cov, m.cov) and np.array_equal(back.values, m.values)


@pytest.mark.parametrize("force", ["yes", "no", 1, None, np.array([True])])
def test_save_force_must_be_a_bool(tmp_path, force):
    # force="no" (truthy) overwrote an existing file
    m = dm_opt.load("ammo/example1")
    path = tmp_path / "m.toml"
    path.write_text("KEEP")
    with pytest.raises(ProblemError, match="force") as exc:
        dm_opt.save(m, path, force=force)
    one_line(str(exc.value))
    assert path.read_text() == "KEEP"
    assert dm_opt.save(m, path, force=np.True_) == str(path)


# ------------------------------------------------------------------ warmup(jobs=...)
@pytest.mark.parametrize("jobs", ["x", None, float("nan"), float("inf"), 1.5, True, np.array([2]), "2", 0, -3])
def test_warmup_jobs_is_checked(jobs):
    # int(jobs) raised ValueError / TypeError / OverflowError tracebacks, and 1.5 / True / "2" ran
    from dm_opt.warmup import warmup

    with pytest.raises(ProblemError, match="jobs") as exc:
        warmup(jobs=jobs)
    one_line(str(exc.value))


# ------------------------------------------------------------------ GLP solver_options tolerances
def test_glp_loose_solver_tolerance_is_not_optimal():
    # a primal feasibility tolerance of 0.5 let HiGHS return an infeasible point of the efficiency
    # piece LP: equilibrium reported status optimal with W° = 0.6 (the true value is 0.4)
    pytest.importorskip("cvxpy")
    g = dm_opt.load("glp/two_type")
    ref = dm_opt.solve(g, "equilibrium")
    assert abs(ref.objective - 0.4) <= 1e-9
    with pytest.raises(ProblemError, match="options") as exc:
        dm_opt.solve(g, "equilibrium", options={"solver_options": {"primal_feasibility_tolerance": 0.5}})
    one_line(str(exc.value))
    tight = dm_opt.solve(g, "equilibrium", options={"solver_options": {"primal_feasibility_tolerance": 1e-9}})
    assert str(tight.status) == "optimal" and abs(tight.objective - ref.objective) <= 1e-9


# ------------------------------------------------------------------ SCIP backends: coefficients at SCIP's infinity
@pytest.mark.parametrize("method", ["scip-check", "misocp-scip"])
@pytest.mark.parametrize("coef", [1e20, 1e300])
def test_scip_backends_refuse_rows_beyond_scip_infinity(method, coef):
    # SCIP reads |coefficient| >= 1e20 as infinite and raised a bare Exception ("error in input data")
    pytest.importorskip("pyscipopt")
    m = dm_opt.GaussianMarket([[1, .3], [.3, 1]], [0.2, 0.3])
    with pytest.raises(ProblemError, match="constraints.linear") as exc:
        dm_opt.solve(m, "first_best", method, constraints={"linear": (np.array([[coef, coef]]), -np.inf, coef)})
    one_line(str(exc.value))
    r = dm_opt.solve(m, "first_best", method, constraints={"linear": (np.array([[1e19, 1e19]]), -np.inf, 1e19)})
    assert str(r.status) == "optimal" and list(r.profile) == [1, 0]


# ------------------------------------------------------------------ export --constraints: overflowing rows
def test_export_overflowing_row_is_one_line(tmp_path):
    # a row of 1e308 entries printed numpy's overflow RuntimeWarning (3 lines) before the error
    import subprocess
    import sys

    out = tmp_path / "m.mps"
    p = subprocess.run([sys.executable, "-m", "dm_opt.cli", "export", "ammo/example1", "--out", str(out),
                        "--constraints", '{"linear": [{"A": [[1e308, 1e308]], "lb": [0], "ub": [1e308]}]}'],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "constraints.linear.A" in lines[0], p.stderr
    assert not out.exists()
