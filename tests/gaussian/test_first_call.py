"""First call without compilation: the NumPy twins of the posterior kernels and the NumPy walk of
small enumerations give the compiled answers bit for bit (same arithmetic, same tie rules); the
kernels are compiled lazily; compile seconds are reported apart from solve seconds."""

import subprocess
import sys

import numpy as np
import pytest

import dm_opt
from dm_opt.core import generators as gen
from dm_opt.gaussian.kernels import enumeration as kenum
from dm_opt.gaussian.kernels import posterior as P


def _market(n, seed, family="wishart", values="uniform"):
    cov = gen.COV_FAMILIES[family](n, seed=seed)
    v = gen.VALUE_FAMILIES[values](n, seed=1000 + seed)
    rng = np.random.default_rng(seed)
    tau2 = rng.uniform(0.05, 2.0, n) if seed % 2 else np.ones(n)
    return dm_opt.GaussianMarket(cov, v, tau2)


def _profiles(n, rng, count=6):
    out = [np.zeros(n, np.int8), np.ones(n, np.int8)]
    out += [rng.integers(0, 2, n).astype(np.int8) for _ in range(count)]
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 7, 12, 13, 30, 64])
def test_numpy_twins_equal_compiled_bit_for_bit(n):
    rng = np.random.default_rng(n)
    for seed in range(3):
        m = _market(n, seed)
        S, t = np.ascontiguousarray(m.cov), m.noise_var
        c, d, e, k = (rng.normal(size=n) for _ in range(4))
        for a in _profiles(n, rng):
            for x, y in zip(P._np_fresh_state(S, t, a), P.fresh_state.jit(S, t, a), strict=True):
                np.testing.assert_array_equal(x, y)
            for x, y in zip(P._np_leak_own(S, t, a), P.leak_own.jit(S, t, a), strict=True):
                np.testing.assert_array_equal(x, y)
            assert P._np_fresh_objective(S, t, c, d, e, k, a) == P.fresh_objective.jit(S, t, c, d, e, k, a)


@pytest.mark.parametrize("n", [1, 4, 9, 12])
def test_all_profiles_equal_fresh_objective(n):
    rng = np.random.default_rng(100 + n)
    m = _market(n, 1)
    S, t = np.ascontiguousarray(m.cov), m.noise_var
    c, d, e, k = (rng.normal(size=n) for _ in range(4))
    vals = P.all_profile_objectives(S, t, c, d, e, k)
    for mask in range(1 << n):
        a = ((mask >> np.arange(n)) & 1).astype(np.int8)
        assert vals[mask] == P.fresh_objective.jit(S, t, c, d, e, k, a)


@pytest.mark.parametrize("n", [3, 6, 10])
def test_user_equilibria_numpy_equals_compiled(n):
    for seed in range(3):
        m = _market(n, seed)
        S, t, v = np.ascontiguousarray(m.cov), m.noise_var, m.values
        for p in (m.prices(dm_opt.solve(m, "equilibrium").profile, "equilibrium"), np.full(n, 0.2), np.zeros(n)):
            np.testing.assert_array_equal(kenum._np_user_equilibria(S, t, v, p, 1e-10),
                                          kenum._user_eq_walk.jit(S, t, v, np.asarray(p, float), 1e-10))


CASES = [(n, seed, fam, vals) for n in (2, 5, 8, 12) for seed in range(3)
         for fam, vals in (("wishart", "uniform"), ("equicorrelated", "straddle"), ("block", "uniform"))]


@pytest.mark.parametrize("n, seed, fam, vals", CASES)
def test_small_enumeration_same_answer_as_compiled_walk(n, seed, fam, vals):
    m = _market(n, seed, fam, vals)
    for problem in ("first_best", "equilibrium", "decorrelated"):
        small = dm_opt.solve(m, problem, "enumerate", all_optima=True)
        walked = dm_opt.solve(m, problem, "enumerate", all_optima=True, chunk_bits=0)   # the compiled walk
        assert small.extra["kernel"] == "numpy" and "kernel" not in walked.extra
        assert str(small.status) == str(walked.status) == "optimal"
        np.testing.assert_array_equal(small.profile, walked.profile)
        assert small.objective == walked.objective and small.bound == walked.bound
        assert len(small.optima) == len(walked.optima)
        for x, y in zip(small.optima, walked.optima, strict=True):
            np.testing.assert_array_equal(x, y)
        assert small.nodes == walked.nodes == 2 ** n
        np.testing.assert_array_equal(small.prices, walked.prices)


def test_ties_follow_the_same_rule():
    """Identical users: many exact ties; the canonical profile is the smallest bit mask on both paths."""
    n = 6
    cov = 0.6 * np.eye(n) + 0.4
    m = dm_opt.GaussianMarket(cov, np.full(n, 0.9))
    for problem in ("first_best", "equilibrium"):
        small = dm_opt.solve(m, problem, "enumerate", all_optima=True)
        walked = dm_opt.solve(m, problem, "enumerate", all_optima=True, chunk_bits=1)
        assert [o.tolist() for o in small.optima] == [o.tolist() for o in walked.optima]
        np.testing.assert_array_equal(small.profile, walked.profile)
        tied = dm_opt.solve(m, problem, "enumerate", all_optima=True, tol=10.0)      # everything ties
        assert len(tied.optima) == 2 ** n and tied.profile.sum() == 0                # smallest mask: nobody
        with pytest.raises(dm_opt.LimitExceeded):                                    # buffer rule kept
            dm_opt.solve(m, problem, "enumerate", all_optima=True, tol=10.0, max_optima=8)


def test_kernels_compile_lazily_and_import_without_numba():
    code = ("import sys\n"
            "import dm_opt.gaussian.kernels.posterior, dm_opt.gaussian.kernels.enumeration\n"
            "assert 'numba' not in sys.modules, 'numba imported'\n"
            "from dm_opt.gaussian.kernels import posterior as P\n"
            "import numpy as np\n"
            "S = np.array([[1.0, 0.5], [0.5, 1.0]]); t = np.ones(2); a = np.array([1, 0], np.int8)\n"
            "P.leak_own(S, t, a); P.fresh_objective(S, t, t, t, t, t, a)\n"
            "assert 'numba' not in sys.modules, 'numba imported by a small call'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_kernel_is_callable_from_compiled_code_and_after_numpy_calls():
    from numba import njit

    @njit
    def twice_gain(x, h):
        return 2.0 * P.own_gain(x, h)

    assert twice_gain(2.0, 4.0) == 2.0
    S = np.array([[2.0, 0.3], [0.3, 1.0]])
    a = np.array([1, 1], np.int8)
    P.leak_own.calls = P.NUMPY_CALLS                  # a kernel in steady use runs compiled
    try:
        for x, y in zip(P.leak_own(S, np.ones(2), a), P._np_leak_own(S, np.ones(2), a), strict=True):
            np.testing.assert_array_equal(x, y)
    finally:
        P.leak_own.calls = 0


def test_compile_seconds_reported_apart():
    m = _market(5, 0)
    small = dm_opt.solve(m, "equilibrium", "enumerate")
    assert small.extra["compile_seconds"] == 0.0                 # nothing compiled: NumPy
    walked = dm_opt.solve(m, "equilibrium", "enumerate", chunk_bits=0)
    assert walked.extra["compile_seconds"] >= 0.0
    for method in ("bnb", "milp"):                  # every backend's answer carries it (dm_opt.gaussian.api)
        r = dm_opt.solve(m, "equilibrium", method)
        assert r.extra["compile_seconds"] >= 0.0 and r.solve_seconds >= 0.0
    with P.compile_timer() as t:
        P._numba()
    assert t["seconds"] >= 0.0
    from dm_opt.gaussian.cli import compile_note

    assert compile_note(small) == ""
    assert "compile 1.500s" in compile_note(type("R", (), {"extra": {"compile_seconds": 1.5}})())
    # the CLI says when bnb searched with the interpreted twin of its kernel (a different node rate)
    assert compile_note(type("R", (), {"extra": {"kernels": "python"}})()) == " (kernels: python)"
    assert "kernels" not in compile_note(type("R", (), {"extra": {"kernels": "compiled"}})())


def test_compile_timer_counts_a_compilation():
    from numba import njit

    P._numba()

    @njit(cache=False)
    def fresh_kernel_for_the_clock(x):
        return x + 1.0

    with P.compile_timer() as t:
        fresh_kernel_for_the_clock(1.0)
    assert t["seconds"] > 0.0
