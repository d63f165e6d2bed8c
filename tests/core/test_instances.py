"""Instance files: every shipped model loads and solves; every validation path gives one clear message."""

import glob
import os

import numpy as np
import pytest

import dm_opt
from dm_opt.core.errors import InstanceError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
AMMO = sorted(glob.glob(os.path.join(ROOT, "models", "ammo", "*.toml")))


def test_every_model_file_has_a_source_line_and_loads():
    files = sorted(glob.glob(os.path.join(ROOT, "models", "**", "*.toml"), recursive=True))
    assert files
    for f in files:
        data = dm_opt.core.instances.read_toml(f)
        assert isinstance(data.get("source"), str) and data["source"].strip(), f
        dm_opt.load(f)


GAUSSIAN_FILES = [p for p in AMMO if "n40" not in p and dm_opt.core.instances.read_toml(p)["kind"] == "gaussian_market"]


@pytest.mark.parametrize("path", GAUSSIAN_FILES, ids=os.path.basename)
def test_ammo_models_solve(path):
    m = dm_opt.load(path)
    assert isinstance(m, dm_opt.GaussianMarket)
    for problem in ("first_best", "equilibrium", "decorrelated"):
        r = dm_opt.solve(m, problem)
        assert r.is_optimal


def test_example1_file_values():
    m = dm_opt.load(os.path.join(ROOT, "models", "ammo", "example1.toml"))
    r = dm_opt.solve(m, "equilibrium")
    rho = 0.5
    np.testing.assert_allclose(r.prices, (2 - rho**2) ** 2 / (2 * (4 - rho**2)), rtol=1e-12)


def write(tmp_path, text, name="m.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


GOOD = 'kind = "gaussian_market"\nsource = "t"\ncov = [[1.0, 0.2], [0.2, 1.0]]\nvalues = [0.5, 1.5]\n'


@pytest.mark.parametrize("text,field,fragment", [
    ('source = "x"\ncov = [[1.0]]\nvalues = [1.0]\n', "kind", "missing"),
    ('kind = "gaussian"\ncov = [[1.0]]\nvalues = [1.0]\n', "kind", "unknown kind"),
    ('kind = 3\ncov = [[1.0]]\nvalues = [1.0]\n', "kind", "must be a string"),
    ('kind = "gaussian_market"\nvalues = [1.0]\n', "cov", "missing"),
    ('kind = "gaussian_market"\ncov = [[1.0]]\n', "values", "missing"),
    ('kind = "gaussian_market"\ncov = [[1.0]]\nvalues = [1.0]\ncovv = 1\n', "covv", "unknown field"),
    ('kind = "gaussian_market"\ncov = [[1.0, 0.3], [0.2, 1.0]]\nvalues = [1.0, 1.0]\n', "cov", "symmetric"),
    ('kind = "gaussian_market"\ncov = [[1.0, 2.0], [2.0, 1.0]]\nvalues = [1.0, 1.0]\n', "cov", "positive definite"),
    ('kind = "gaussian_market"\ncov = [[1.0, 0.0], [0.0, -1.0]]\nvalues = [1.0, 1.0]\n', "cov[1,1]", "variance"),
    ('kind = "gaussian_market"\ncov = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]\nvalues = [1.0, 1.0]\n', "cov", "square"),
    ('kind = "gaussian_market"\ncov = [[1.0, 0.0], [0.0]]\nvalues = [1.0, 1.0]\n', "cov", ""),
    ('kind = "gaussian_market"\ncov = [[1.0, nan], [nan, 1.0]]\nvalues = [1.0, 1.0]\n', "cov[0,1]", "finite"),
    ('kind = "gaussian_market"\ncov = [[inf]]\nvalues = [1.0]\n', "cov[0,0]", "finite"),
    ('kind = "gaussian_market"\ncov = [["a"]]\nvalues = [1.0]\n', "cov", "real numbers"),
    ('kind = "gaussian_market"\ncov = [[true]]\nvalues = [1.0]\n', "cov", "real numbers"),
    ('kind = "gaussian_market"\ncov = []\nvalues = []\n', "cov", ""),
    ('kind = "gaussian_market"\ncov = [[1.0]]\nvalues = [1.0, 2.0]\n', "values", "length 1"),
    ('kind = "gaussian_market"\ncov = [[1.0]]\nvalues = [-1.0]\n', "values[0]", ">= 0"),
    ('kind = "gaussian_market"\ncov = [[1.0]]\nvalues = ["x"]\n', "values", "real numbers"),
    ('kind = "gaussian_market"\ncov = [[1.0]]\nvalues = [1.0]\nnoise_var = 0.0\n', "noise_var[0]", "> 0"),
    ('kind = "gaussian_market"\ncov = [[1.0]]\nvalues = [1.0]\nnoise_var = [1.0, 2.0]\n', "noise_var", "length 1"),
    ('kind = "gaussian_market"\ncov = [[1.0]]\nvalues = [1.0]\nsource = 3\n', "source", "string"),
    ('kind = "gaussian_market"\ncov = [[1.0]]\nvalues = [1.0]\nname = 3\n', "name", "string"),
    ('kind = "gaussian_market"\ncov = {family = "nope", n = 3}\nvalues = 1.0\n', "cov.family", "unknown generator"),
    ('kind = "gaussian_market"\ncov = {n = 3}\nvalues = 1.0\n', "cov.family", "missing"),
    ('kind = "gaussian_market"\ncov = {family = "wishart"}\nvalues = 1.0\n', "cov.n", "missing"),
    ('kind = "gaussian_market"\ncov = {family = "wishart", n = -2}\nvalues = 1.0\n', "cov.n", "positive integer"),
    ('kind = "gaussian_market"\ncov = {family = "wishart", n = 10000000}\nvalues = 1.0\n', "cov.n", "too many"),
    ('kind = "gaussian_market"\ncov = {family = "wishart", n = 3, seed = -1}\nvalues = 1.0\n',
     "cov.seed", "nonnegative"),
    ('kind = "gaussian_market"\ncov = {family = "wishart", n = 3, rho = 0.3}\nvalues = 1.0\n',
     "cov.rho", "unknown parameter"),
    ('kind = "gaussian_market"\ncov = {family = "equicorrelated", n = 3, rho = "x"}\nvalues = 1.0\n',
     "cov.rho", "numeric"),
    ('kind = "gaussian_market"\ncov = {family = "equicorrelated", n = 3, rho = -0.9}\nvalues = 1.0\n',
     "cov", "positive definite"),
    ('kind = "gaussian_market"\ncov = {family = "wishart", n = 3}\nvalues = {family = "uniform", n = 4}\n',
     "values.n", "n = 3"),
    ('kind = "gaussian_market"\ncov = {family = "block", n = 4, sizes = [1, 2]}\nvalues = 1.0\n',
     "cov.sizes", "sum to 3"),
    ('kind = "gaussian_market"\ncov = [[1.0]]\nvalues = [1.0]\nkind = "x"\n', "file", "invalid TOML"),
    ('kind = "gaussian_market"\ncov = [[1.0]\n', "file", "invalid TOML"),
])
def test_validation_messages_name_the_field(tmp_path, text, field, fragment):
    path = write(tmp_path, text)
    with pytest.raises(InstanceError) as exc:
        dm_opt.load(path)
    assert exc.value.field == field
    assert fragment in str(exc.value)
    assert str(exc.value).startswith(path)
    assert "\n" not in str(exc.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(InstanceError, match="not found"):
        dm_opt.load(tmp_path / "missing.toml")
    with pytest.raises(InstanceError, match="directory"):
        dm_opt.load(tmp_path)
    p = tmp_path / "bin.toml"
    p.write_bytes(b'kind = "gaussian_market"\n\xff\xfe')
    with pytest.raises(InstanceError, match="UTF-8"):
        dm_opt.load(p)


def test_generated_instance_is_deterministic(tmp_path):
    text = ('kind = "gaussian_market"\nsource = "t"\ncov = {family = "wishart", n = 6, seed = 4}\n'
            'values = {family = "uniform", seed = 2}\n')
    a, b = dm_opt.load(write(tmp_path, text, "a.toml")), dm_opt.load(write(tmp_path, text, "b.toml"))
    np.testing.assert_array_equal(a.cov, b.cov)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.n == 6


def test_constructor_validation():
    with pytest.raises(InstanceError, match="cov"):
        dm_opt.GaussianMarket("abc", [1.0])
    with pytest.raises(InstanceError, match="values"):
        dm_opt.GaussianMarket(np.eye(2), None)
    with pytest.raises(InstanceError, match="values"):
        dm_opt.GaussianMarket(np.eye(2), [[1.0, 1.0]])
    with pytest.raises(InstanceError, match=r"values\[1\]"):
        dm_opt.GaussianMarket(np.eye(2), [1.0, float("nan")])
    m = dm_opt.GaussianMarket(np.eye(2), [1.0, 1.0], 2.0)
    np.testing.assert_array_equal(m.noise_var, [2.0, 2.0])
    with pytest.raises(InstanceError, match="profile"):
        m.leakage([1, 0, 1])
    with pytest.raises(InstanceError, match=r"profile\[0\]"):
        m.leakage([2, 0])
    # symmetric up to rounding is accepted and symmetrised
    S = np.array([[1.0, 0.3], [0.3 + 1e-13, 1.0]])
    assert np.array_equal(dm_opt.GaussianMarket(S, [1, 1]).cov, dm_opt.GaussianMarket(S, [1, 1]).cov.T)
    # arrays given to the market are not aliased
    v = np.array([1.0, 1.0])
    m = dm_opt.GaussianMarket(np.eye(2), v)
    v[0] = 5.0
    assert m.values[0] == 1.0
