"""Bad instance inputs are refused cleanly: one InstanceError naming the right
field and the accepted range, at load and in the Python constructors; `dm-opt solve` exits 2 with
one stderr line, promptly, also on a FIFO and on /dev/zero.  docs/instances.md lists the rules."""

import contextlib
import io
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import dm_opt
from dm_opt.cli import main as cli_main
from dm_opt.core.errors import InstanceError
from dm_opt.core.instances import read_toml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _model(rel):
    with open(os.path.join(ROOT, "models", rel), encoding="utf-8") as fh:
        return fh.read()


def _sub(src, pattern, repl):
    """A shipped model file (``src`` a path under models/) or a text, with one substitution."""
    text, k = re.subn(pattern, repl, src if "\n" in src else _model(src), count=1, flags=re.M)
    assert k == 1, (src[:40], pattern)
    return text


# (id, file text, field named, fragment of the message)
BAD = [
    ("community-family-list", _sub("ammo/example2_community.toml", r"^values = .*$",
                                   'values = {family = [], value = [0.9, 3.0]}'),
     "values.family", "unknown value family"),
    ("valuations-dist-table", _sub("ammo/valuations_uniform.toml", r"^valuations = .*$", "valuations = {dist = {}}"),
     "valuations.dist", "unknown distribution"),
    ("valuations-dist-list", _sub("ammo/valuations_uniform.toml", r"^valuations = .*$", "valuations = {dist = []}"),
     "valuations.dist", "unknown distribution"),
    ("valuations-dist-nested", _sub("ammo/valuations_uniform.toml", r"^valuations = .*$",
                                    "valuations = {dist = [[]]}"), "valuations.dist", "unknown distribution"),
    ("valuations-list-dist", _sub("ammo/valuations_mixed.toml", r'dist = "uniform"', "dist = [[]]"),
     "valuations[0].dist", "unknown distribution"),
    ("community-variance-int64", _sub("ammo/example2_community.toml", r"^variance = .*$",
                                      "variance = 9223372036854775807"), "variance[0]", "noise ratio"),
    ("community-variance-1e308", _sub("ammo/example2_community.toml", r"^variance = .*$", "variance = 1e308"),
     "variance[0]", "[1e-60, 1e+60]"),
    ("community-sizes-int64", _sub("ammo/example2_community.toml", r"^sizes = .*$",
                                   "sizes = [9223372036854775807, 10]"), "sizes[0]", "limit"),
    ("community-cross-hugeint", _sub("ammo/example2_community.toml", r"^cross_corr = .*$",
                                     "cross_corr = " + "9" * 400), "cross_corr", "out of range"),
    ("community-lognormal-overflow", _sub("ammo/example2_community.toml", r"^values = .*$",
                                          'values = {family = "lognormal", mean = 1000.0, sigma = 1.0}'),
     "values.mean[0]", "exceed"),
    ("gaussian-cov-1e308", _sub("ammo/example1.toml", r"^cov = \[\[1\.0", "cov = [[1e308"), "cov[0,0]",
     "[-1e+150, 1e+150]"),
    ("gaussian-cov-offdiag-huge", _sub("ammo/example1.toml", r"^cov = \[\[1\.0, 0\.5\]", "cov = [[1.0, 1e151]"),
     "cov[0,1]", "[-1e+150, 1e+150]"),
    ("gaussian-variance-int64", _sub("ammo/three_users.toml", r"^cov = \[\[1\.0", "cov = [[9223372036854775807"),
     "cov[0,0]", "noise ratio"),
    ("gaussian-values-1e308", _sub("ammo/example1.toml", r"^values = .*$", "values = [1e308, 1.0]"),
     "values[0]", "[-1e+150, 1e+150]"),
    ("gaussian-values-bool", _sub("ammo/example1.toml", r"^values = .*$", "values = [true, 1.0]"),
     "values", "bool"),
    ("gaussian-cov-scalar-generated-values", _sub("ammo/wishart_n16_seed1.toml", r"^cov = .*$", "cov = 1.0"),
     "cov", "2-d array"),
    ("gaussian-cov-empty-generated-values", _sub("ammo/wishart_n16_seed1.toml", r"^cov = .*$", "cov = []"),
     "cov", "2-d array"),
    ("generator-high-bool", _sub("ammo/wishart_n16_seed1.toml", r"high = 2\.0", "high = true"), "values.high",
     "boolean"),
    ("generator-df-huge", _sub("ammo/wishart_n16_seed1.toml", r"seed = 1\}", "seed = 1, df = 9223372036854775807}"),
     "cov.df", "integer in"),
    ("generator-normalize-int", _sub("ammo/wishart_n16_seed1.toml", r"seed = 1\}", "seed = 1, normalize = 1}"),
     "cov.normalize", "true or false"),
    ("generator-rho-1e308", _sub("ammo/equicorrelated_n12.toml", r"rho = 0\.4\}", "rho = 1e308}"), "cov.rho",
     "out of range"),
    ("generator-block-sizes-float", _sub("ammo/block_n18.toml", r"sizes = \[6, 6, 6\]", "sizes = [6, 6.0, 6]"),
     "cov.sizes[1]", "positive integer"),
    ("valuations-cov-int64", _sub("ammo/valuations_uniform.toml", r"^cov = \[\[1\.0", "cov = [[9223372036854775807"),
     "cov[0,0]", "noise ratio"),
    ("valuations-high-1e308", _sub("ammo/valuations_uniform.toml", r"high = 1\.5", "high = 1e308"),
     "valuations.high", "out of range"),
    ("valuations-uniform-phi", _sub("ammo/valuations_uniform.toml", r"high = 1\.5", "high = 9e149"),
     "valuations.high", "virtual value"),
    ("valuations-truncexpon-scale", _sub("ammo/valuations_mixed.toml", r"scale = [0-9.]+", "scale = 1e-320"),
     "valuations[1].scale", "overflows"),
    ("valuations-samples-huge", _sub("ammo/valuations_uniform.toml", r"^samples = .*$",
                                     "samples = 9223372036854775807"), "samples", "limit"),
    ("glp-reservation", _sub("glp/two_type.toml", r"^reservation = .*$", "reservation = -1e308"), "reservation",
     "[-1e+09, 1e+09]"),
    ("glp-types-1e308", _sub("glp/two_type.toml", r"^types = .*$", "types = [1.0, 1e308]"), "types[1]",
     "[-1e+09, 1e+09]"),
    ("glp-types-low-int64", _sub("glp/grid_10.toml", r"low = 1\.0", "low = -9223372036854775808"), "types.low",
     "[-1e+09, 1e+09]"),
    ("glp-gamma-1e150", _sub("glp/two_type.toml", r"^gamma_u = .*$", "gamma_u = 1e150"), "gamma_u",
     "[-1e+09, 1e+09]"),
    ("glp-gamma-times-type", _sub(_sub("glp/two_type.toml", r"^gamma_u = .*$", "gamma_u = 1e6"),
                                  r"^types = .*$", "types = [1.0, 1e8]"), "gamma_u", "payoff entry"),
    ("glp-payoff-1e308", _sub("glp/second_price_general.toml", r"^u  = \[\[1\.0", "u  = [[1e308"), "u[0,0]",
     "[-1e+09, 1e+09]"),
    ("glp-alpha-1e308", _sub("glp/grid_10.toml", r"alpha = 1\.0", "alpha = 1e308"), "prior.alpha", "out of range"),
    ("glp-database-big", _model("glp/two_type.toml") + "database = [1e100, 0.5]\n", "database[0]", "[0, 1]"),
    ("sharing-alpha-1e308", _sub("rj/power_family_12.toml", r"^alpha = .*$", "alpha = 1e308"), "alpha",
     "out of range"),
    ("sharing-max-queries-1e308", _sub("rj/power_queries.toml", r"^max_queries = .*$", "max_queries = 1e308"),
     "max_queries", "out of range"),
    ("sharing-max-queries-int64", _sub("rj/power_queries.toml", r"^max_queries = .*$",
                                       "max_queries = 9223372036854775807"), "max_queries[0]", "limit"),
    ("sharing-samples-scale", _sub(_sub("rj/power_family_12.toml", r"^samples = .*$", "samples = " + repr(
        [1e-300] + [10.0] * 11)), r"^beta = .*$", "beta = 2.0"), "samples[0]", "utility scale"),
    ("sharing-table-utility-hugeint", _sub("rj/remark_3_4.toml", r'^"" = 1$', '"" = ' + "9" * 400),
     'utility.1.""', "out of range"),
    ("platforms-slope-1e308", _sub("ammo/two_platforms_example.toml", r"^slope = .*$", "slope = [1e308, 0.01]"),
     "joining.slope[0]", "out of range"),
    ("mixture-cov-int64", _sub("ammo/mixture_example.toml", r"\[\[1\.0, 0\.6", "[[9223372036854775807, 0.6"),
     "covariances[0][0,0]", "noise ratio"),
]


@pytest.mark.parametrize("text,field,fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_file_names_the_field_and_the_problem(tmp_path, text, field, fragment):
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)        # no overflow on the way to the refusal
        with pytest.raises(InstanceError) as info:
            dm_opt.load(str(p))
    assert info.value.field == field, str(info.value)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("text", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_cli_bad_file_one_line(tmp_path, text):
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    err = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")        # a warning would be printed, as in a fresh process
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(["solve", str(p), "--json", "--time-limit", "5"])
    lines = err.getvalue().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("dm-opt: error:"), lines


# ------------------------------------------------------------------------------ the file itself
def _cli(args, timeout=60):
    """Run the real console entry point in a fresh interpreter (exit code, stderr lines)."""
    proc = subprocess.run([sys.executable, "-c", "import sys; from dm_opt.cli import main; sys.exit(main())"]
                          + args, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return proc.returncode, proc.stderr.splitlines()


def test_fifo_is_refused_promptly(tmp_path):
    fifo = tmp_path / "inst.toml"
    os.mkfifo(fifo)           # nobody ever writes: opening it for reading would block forever
    with pytest.raises(InstanceError, match="FIFO"):
        read_toml(fifo)
    code, lines = _cli(["solve", str(fifo)], timeout=60)
    assert code == 2 and len(lines) == 1 and "FIFO" in lines[0] and "Traceback" not in lines[0], lines


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_is_refused_promptly(tmp_path):
    with pytest.raises(InstanceError, match="character device"):
        read_toml("/dev/zero")
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")          # a symlink is followed: still a device
    with pytest.raises(InstanceError, match="character device"):
        read_toml(link)
    code, lines = _cli(["solve", "/dev/zero"], timeout=60)
    assert code == 2 and len(lines) == 1 and "character device" in lines[0], lines


def test_cli_subprocess_bad_files_one_line(tmp_path):
    """The real entry point on files whose refusal used to overflow on the way (no RuntimeWarning
    lines, no traceback)."""
    for name in ("community-variance-int64", "glp-types-1e308", "valuations-cov-int64"):
        text = dict((b[0], b[1]) for b in BAD)[name]
        p = tmp_path / f"{name}.toml"
        p.write_text(text, encoding="utf-8")
        code, lines = _cli(["solve", str(p), "--json"], timeout=120)
        assert code == 2 and len(lines) == 1 and lines[0].startswith("dm-opt: error:"), (name, lines)


def test_read_is_bounded_whatever_the_size_says(tmp_path, monkeypatch):
    import dm_opt.core.instances as dio

    p = tmp_path / "big.toml"
    p.write_bytes(b"# " + b"x" * 200 + b"\n")
    monkeypatch.setattr(dio, "MAX_FILE_BYTES", 100)
    with pytest.raises(InstanceError, match="larger than 100 bytes"):
        dio.read_toml(p)
    # the reader itself never asks for more than limit + 1 bytes
    got = []
    real_fdopen = os.fdopen

    class Spy:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def fileno(self):
            return self.fh.fileno()

        def read(self, n=-1):
            got.append(n)
            return self.fh.read(n)

    monkeypatch.setattr(dio.os, "fdopen", lambda fd, mode: Spy(real_fdopen(fd, mode)))
    with pytest.raises(InstanceError):
        dio.read_toml(p)
    assert got == [101]


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(InstanceError, match="directory"):
        read_toml(tmp_path)
    with pytest.raises(InstanceError, match="not found"):
        read_toml(tmp_path / "nope.toml")


# --------------------------------------------------------------------------- Python constructors
def test_constructors_refuse_extreme_magnitudes():
    from dm_opt.gaussian.platforms import JoiningValues
    from dm_opt.gaussian.valuations import DiscreteValuation

    cases = [
        (lambda: dm_opt.GaussianMarket([[1e308, 0.0], [0.0, 1.0]], [1.0, 1.0]), "cov[0,0]"),
        (lambda: dm_opt.GaussianMarket([[1e-200]], [1.0]), "cov[0,0]"),
        (lambda: dm_opt.GaussianMarket([[1.0]], [1e200]), "values[0]"),
        (lambda: dm_opt.GaussianMarket([[1.0]], [1.0], [1e300]), "noise_var[0]"),
        (lambda: dm_opt.CommunityMarket([2, 2], variance=2**63 - 1, values=np.ones(4)), "variance[0]"),
        (lambda: dm_opt.CommunityMarket([2, 2], noise_var=[1.0, 1e-20], values=np.ones(4)), "noise_var[1]"),
        (lambda: dm_opt.CommunityMarket([2, 2], cross_corr=10**400, values=np.ones(4)), "cross_corr"),
        (lambda: dm_opt.CommunityMarket([10**8, 2], values=1.0), "sizes[0]"),
        (lambda: dm_opt.InfoDesignMarket([1.0, 2.0], [0.5, 0.5], 0.5, 1e150, 0.0), "gamma_u"),
        (lambda: dm_opt.InfoDesignMarket([1.0, 2.0], [0.5, 0.5], -1e308, 1.0, 0.0), "reservation"),
        (lambda: dm_opt.InfoDesignMarket([1.0, 2.0], [0.5, 0.5], 10**400, 1.0, 0.0), "reservation"),
        (lambda: dm_opt.InfoDesignMarket([1.0, 1e12], [0.5, 0.5], 0.5, 1.0, 0.0), "types[1]"),
        (lambda: dm_opt.InfoDesignMarket.from_payoffs([[1e10]], [[1.0]], [[1.0]], [1.0], 0.0), "u[0,0]"),
        (lambda: dm_opt.SharingMarket.power([10.0, 20.0], alpha=1e308), "alpha"),
        (lambda: dm_opt.SharingMarket.power([10.0, 20.0], alpha=[1.0, 1e308]), "alpha[1]"),
        (lambda: dm_opt.SharingMarket.power([10.0, 20.0], max_queries=2**63 - 1), "max_queries[0]"),
        (lambda: JoiningValues([[0.0], [1e308]]), "joining[1,0]"),
        (lambda: DiscreteValuation([0.0, 1e150], [1 - 1e-200, 1e-200]), "valuation.probs[1]"),
        # sizes whose arrays would not fit in memory
        (lambda: dm_opt.InfoDesignMarket(np.arange(1.0, 4001.0), np.full(4000, 1 / 4000), 0.5, 1.0, 0.0), "types"),
        (lambda: dm_opt.SharingMarket.power(np.full(5001, 10.0)), "samples"),
        (lambda: dm_opt.CommunityMarket([1] * 1001, values=1.0), "sizes"),
    ]
    for build, field in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            with pytest.raises(InstanceError) as info:
                build()
        assert info.value.field == field, str(info.value)


def test_booleans_are_never_numbers():
    from dm_opt.core.validate import as_real, as_vector

    for build, field in [(lambda: as_real("x", True), "x"), (lambda: as_vector("v", [1.0, False]), "v"),
                         (lambda: dm_opt.InfoDesignMarket([1.0, 2.0], [0.5, 0.5], True, 1.0, 0.0), "reservation"),
                         (lambda: dm_opt.CommunityMarket([2, 2], cross_corr=True, values=np.ones(4)), "cross_corr")]:
        with pytest.raises(InstanceError) as info:
            build()
        assert info.value.field == field and "bool" in str(info.value), str(info.value)


def test_ranges_accept_the_edges():
    """The documented ranges are inclusive and the shipped files stay inside them."""
    dm_opt.GaussianMarket([[1e10, 0.0], [0.0, 1e10]], [1e150, 0.0], [1e10, 1e10])
    dm_opt.GaussianMarket([[1e-100]], [1.0], [1e-100])
    dm_opt.InfoDesignMarket([0.0, 1e9], [0.5, 0.5], -1e9, 1.0, 1.0)
    dm_opt.SharingMarket.power([1.0, 2.0], alpha=1e150, beta=0.5, max_queries=10**9)


# ------------------------------------------------------------- the edges of the ranges still solve
def _methods():
    from dm_opt.core.registry import known_methods

    return [m for m in ("enumerate", "bnb", "milp") if m in known_methods()] + ["auto"]


@pytest.mark.parametrize("scale", [1e150, 1e-150])
def test_extreme_but_valid_scales_solve(scale):
    """Σ at the edges of the covariance range (noise scaled alike, ratio 1): every backend answers
    the unit-scale optimum times the scale, and with values up to 1e150 everything stays finite
    (no overflow warning)."""
    R = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])
    unit = dm_opt.GaussianMarket(R, [0.5, 1.2, 2.0])
    big = dm_opt.GaussianMarket(R * scale, [0.5, 1.2, 2.0], np.full(3, scale))
    huge_v = dm_opt.GaussianMarket(R * scale, [1e150, 0.5, 0.3], np.full(3, scale))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for method in _methods():
            for problem in ("first_best", "equilibrium", "decorrelated"):
                ref = dm_opt.solve(unit, problem, method)
                r = dm_opt.solve(big, problem, method)
                assert r.is_optimal and abs(r.objective / scale - ref.objective) <= 1e-9 * (1 + abs(ref.objective)), \
                    (method, problem, r.objective, ref.objective)
                r = dm_opt.solve(huge_v, problem, method)
                assert r.is_optimal and np.isfinite(r.objective) and np.isfinite(r.bound), (method, problem, r)


@pytest.mark.parametrize("variance,size", [(1e60, 500), (1e-60, 500),
                                           pytest.param(1e60, 5_000_000, marks=pytest.mark.slow),
                                           pytest.param(1e-60, 5_000_000, marks=pytest.mark.slow)])
def test_community_variance_edges_solve(variance, size):
    """Community variances at the edges of their range, values up to 1e150 (and, slow, 10⁷ users,
    the most the community kind accepts): finite answers, no overflow warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for values in ([0.9, 3.0], [1e150, 0.5]):
            m = dm_opt.CommunityMarket([size, size], variance, 0.05, 0.01,
                                       {"family": "constant", "value": values}, variance)
            for problem in ("first_best", "equilibrium", "decorrelated"):
                r = dm_opt.solve(m, problem, time_limit=30)
                assert r.is_optimal and np.isfinite(r.objective) and np.isfinite(r.bound), (values, problem, r)
