"""``dm_opt.to_pyomo`` and ``dm-opt export``: the same MILP, solved outside dm_opt, against enumeration."""

import itertools

import numpy as np
import pytest

import dm_opt
from dm_opt.cli import main
from dm_opt.core import generators as G
from dm_opt.core.errors import ProblemError
from dm_opt.gaussian.backends.milp.pyomo import objective_value, profile_of
from dm_opt.gaussian.constraints import SideConstraints
from tests.support.pyomo_solvers import pyomo_highs

pyo = pytest.importorskip("pyomo.environ")


def market(seed, n=6):
    return dm_opt.GaussianMarket(G.wishart(n, seed), G.uniform(n, seed + 50))


def brute(m, problem, keep=lambda a: True):
    best = -np.inf
    for bits in itertools.product((0, 1), repeat=m.n):
        a = np.array(bits, dtype=np.int8)
        if keep(a):
            best = max(best, m.evaluate(problem, a))
    return best


def test_components_are_documented_names():
    m = market(0, 4)
    M = dm_opt.to_pyomo(m, "equilibrium", posterior_form="mixed")     # the default is the precision layout
    for comp in ("a", "V", "U", "Q", "leakage", "z", "obj", "posterior", "mc_upper1", "mc_lower1",
                 "mc_upper0", "mc_lower0", "tangent"):
        assert hasattr(M, comp), comp
    assert len(M.a) == 4 and len(M.V) == 16 and len(M.U) == 16 and len(M.Q) == 16
    assert M.obj_scale == pytest.approx(m.objective("equilibrium").scale(m.sigma2))
    # the plain layouts keep the names P (posterior) and R (P a)
    Mp = dm_opt.to_pyomo(m, "first_best", posterior_form="precision")
    assert hasattr(Mp, "P") and hasattr(Mp, "R") and not hasattr(Mp, "V")
    assert all(v.is_binary() for v in M.a.values())
    assert set(M.tangent_table) == {i for i in range(4) if m.values[i] > 0}
    assert not M.exact
    assert dm_opt.to_pyomo(m, "first_best").exact


@pytest.mark.parametrize("problem", ["first_best", "decorrelated"])
@pytest.mark.parametrize("seed", range(4))
def test_pyomo_model_solves_to_enumeration_optimum(problem, seed):
    m = market(seed)
    M = dm_opt.to_pyomo(m, problem)
    pyomo_highs().solve(M)
    a = profile_of(M)
    best = dm_opt.solve(m, problem, "enumerate").objective
    # the model is standardised: its objective is the value divided by M.obj_scale
    assert objective_value(M) == pytest.approx(best, abs=1e-6)
    assert pyo.value(M.obj) * M.obj_scale == objective_value(M)
    assert abs(m.evaluate(problem, a) - best) <= 1e-9


@pytest.mark.parametrize("form", ["mixed", "mixed-precision", "precision"])
def test_pyomo_expressions_are_the_posterior(form):
    # after fixing a profile, m.Q is the standardised posterior covariance and m.leakage the leakage
    d = np.sqrt(np.array([1.0, 100.0, 0.01, 3.0]))
    m = dm_opt.GaussianMarket(G.wishart(4, 2) * d[:, None] * d[None, :], G.uniform(4, 3))
    a = np.array([1, 0, 1, 1], dtype=np.int8)
    M = dm_opt.to_pyomo(m, "first_best", posterior_form=form)
    for i in M.N:
        M.a[i].fix(int(a[i]))
    pyomo_highs().solve(M)
    P = m.posterior_cov(a)
    sig = np.sqrt(m.sigma2)
    Q = np.array([[pyo.value(M.Q[i, j]) for j in M.N] for i in M.N])
    assert np.allclose(Q, P / sig[:, None] / sig[None, :], atol=1e-6)
    leak = np.array([pyo.value(M.leakage[i]) for i in M.N])
    assert np.allclose(leak, m.leakage(a), rtol=1e-6, atol=1e-6 * m.sigma2)
    assert objective_value(M) == pytest.approx(m.evaluate("first_best", a), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_user_side_constraint_in_pyomo(seed):
    m = market(seed)
    M = dm_opt.to_pyomo(m, "first_best")
    M.user0_out = pyo.Constraint(expr=M.a[0] == 0)
    M.at_most_2 = pyo.Constraint(expr=sum(M.a[i] for i in M.N) <= 2)
    pyomo_highs().solve(M)
    a = profile_of(M)
    assert a[0] == 0 and a.sum() <= 2
    best = brute(m, "first_best", lambda b: b[0] == 0 and b.sum() <= 2)
    assert abs(m.evaluate("first_best", a) - best) <= 1e-9


def test_equilibrium_model_is_a_relaxation():
    # with the initial tangent table the optimum bounds the true equilibrium value from above
    for seed in range(3):
        m = market(seed, 5)
        M = dm_opt.to_pyomo(m, "equilibrium", n_tangents=2)
        pyomo_highs().solve(M)
        best = dm_opt.solve(m, "equilibrium", "enumerate").objective
        assert objective_value(M) >= best - 1e-7
        assert m.evaluate("equilibrium", profile_of(M)) <= best + 1e-12


def test_common_constraints_argument():
    m = market(1)
    kw = {"max_sharers": 2, "force_in": [3]}
    M = dm_opt.to_pyomo(m, "first_best", constraints=kw)
    pyomo_highs().solve(M)
    cons = SideConstraints.from_any(kw, m.n)
    best = brute(m, "first_best", lambda b: cons.feasible(m, "first_best", b))
    assert abs(m.evaluate("first_best", profile_of(M)) - best) <= 1e-9


@pytest.mark.parametrize("problem", ["first_best", "decorrelated"])
def test_linear_constraints_argument(problem):
    # scipy LinearConstraint rows become the block `linear` (relaxed by their slack) of the exact model
    from scipy.optimize import LinearConstraint as LC

    m = market(2)
    cons_in = [LC([[1, 1, 0, 0, 0, 0]], ub=1), LC([3, 1, 4, 1, 5, 9], ub=9), LC([0, 0, 1, 1, 1, 1], lb=2)]
    M = dm_opt.to_pyomo(m, problem, constraints=cons_in)
    assert len(M.linear) == 3
    pyomo_highs().solve(M)
    cons = SideConstraints.from_any(cons_in, m.n)
    a = profile_of(M)
    assert cons.feasible(m, problem, a)
    best = brute(m, problem, lambda b: cons.feasible(m, problem, b))
    assert abs(m.evaluate(problem, a) - best) <= 1e-9
    assert abs(dm_opt.solve(m, problem, "bnb", constraints=cons_in).objective - best) <= 1e-9


@pytest.mark.parametrize("problem", ["first_best", "equilibrium", "decorrelated"])
@pytest.mark.parametrize("seed", range(3))
def test_solve_exact_with_a_user_constraint(problem, seed):
    # the outer-approximation helper around a Pyomo solver: certified, equal to the filtered brute force
    from dm_opt.gaussian.backends.milp.pyomo import solve_exact

    m = market(seed, 6)
    M = dm_opt.to_pyomo(m, problem, n_tangents=2)
    M.not_both = pyo.Constraint(expr=M.a[0] + M.a[1] <= 1)
    M.quota = pyo.Constraint(expr=M.a[2] + M.a[3] + M.a[4] >= 1)
    sol = solve_exact(M, pyomo_highs())
    best = brute(m, problem, lambda b: b[0] + b[1] <= 1 and b[2] + b[3] + b[4] >= 1)
    assert sol.status == "optimal", sol.message
    assert sol.profile[0] + sol.profile[1] <= 1 and sol.profile[2:5].sum() >= 1
    tol = 1e-9 * M.obj_scale
    assert abs(sol.objective - best) <= tol and best - tol <= sol.bound <= sol.objective + tol


def test_solve_exact_reports_infeasible():
    from dm_opt.gaussian.backends.milp.pyomo import solve_exact

    m = market(0, 4)
    M = dm_opt.to_pyomo(m, "equilibrium")
    M.none = pyo.Constraint(expr=M.a[0] + M.a[1] >= 3)
    assert solve_exact(M, pyomo_highs()).status == "infeasible"


def test_to_pyomo_refuses_non_gaussian():
    with pytest.raises(ProblemError, match="Gaussian-MSE-only"):
        dm_opt.to_pyomo(object(), "first_best")


# ---------------------------------------------------------------- dm-opt export
def write_instance(tmp_path, n=6, seed=3):
    p = tmp_path / "inst.toml"
    p.write_text(f'kind = "gaussian_market"\ncov = {{family = "wishart", n = {n}, seed = {seed}}}\n'
                 f'values = {{family = "uniform", seed = {seed + 1}}}\n')
    return p


def solve_file(path):
    """Solve an exported model with HiGHS; the value in the problem's units is the model's
    objective times the scale S stated on the file's first (comment) line."""
    import re

    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.run()
    scale = float(re.search(r"S = ([0-9.eE+-]+)", path.read_text().splitlines()[0]).group(1))
    return h, h.getInfo().objective_function_value * scale


@pytest.mark.parametrize("fmt", ["mps", "lp"])
@pytest.mark.parametrize("problem", ["first_best", "decorrelated"])
def test_export_reads_back_to_the_optimum(tmp_path, fmt, problem):
    inst = write_instance(tmp_path)
    out = tmp_path / f"model.{fmt}"
    assert main(["export", str(inst), "--problem", problem, "--format", fmt, "--out", str(out)]) == 0
    h, val = solve_file(out)
    m = dm_opt.load(str(inst))
    best = dm_opt.solve(m, problem, "enumerate").objective
    assert val == pytest.approx(best, abs=1e-6)
    names = h.getLp().col_names_
    sol = h.getSolution().col_value
    a = np.array([round(sol[names.index(f"a_{i}")]) for i in range(m.n)], dtype=np.int8)
    assert abs(m.evaluate(problem, a) - best) <= 1e-9


def test_export_equilibrium_states_the_tangent_table(tmp_path, capsys):
    inst = write_instance(tmp_path, n=5)
    out = tmp_path / "eq.mps"
    assert main(["export", str(inst), "--problem", "equilibrium", "--format", "mps", "--out", str(out)]) == 0
    first = out.read_text().splitlines()[0]
    assert first.startswith("*") and "tangent table" in first
    assert "RELAXATION" in capsys.readouterr().err
    _, val = solve_file(out)
    m = dm_opt.load(str(inst))
    assert val >= dm_opt.solve(m, "equilibrium", "enumerate").objective - 1e-7


def test_export_refuses_to_overwrite(tmp_path, capsys):
    inst = write_instance(tmp_path, n=3)
    out = tmp_path / "m.lp"
    out.write_text("keep me")
    assert main(["export", str(inst), "--format", "lp", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert out.read_text() == "keep me"
    assert main(["export", str(inst), "--format", "lp", "--out", str(out), "--force"]) == 0
    assert out.read_text() != "keep me"


def test_export_bad_problem_and_format(tmp_path, capsys):
    inst = write_instance(tmp_path, n=3)
    assert main(["export", str(inst), "--problem", "nope", "--out", str(tmp_path / "x.mps")]) == 2
    assert main(["export", str(inst), "--format", "xls", "--out", str(tmp_path / "x.mps")]) == 2
    assert not (tmp_path / "x.mps").exists()
