"""Bad inputs found by the second round of boundary fuzzing (docs/spec.md: bad input gets one clear
message naming the field; the CLI exits 2 with one line on stderr).

Each case is one input that used to escape validation: an ``OverflowError``/``TypeError``/numpy
``ValueError`` with no field named, a value silently coerced (a masked, boolean, complex or string
array taken as numbers), or a message quoting user data over several lines or kilobytes.
"""

import contextlib
import io

import numpy as np
import pytest

import dm_opt
from dm_opt.cli import main as cli_main
from dm_opt.core.errors import InstanceError
from dm_opt.gaussian.kernels import posterior

COV = [[1.0, 0.5], [0.5, 1.0]]


def deep(k):
    v = 1.0
    for _ in range(k):
        v = [v]
    return v


def run_cli(argv):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = cli_main(argv)
    return rc, err.getvalue()


def one_line(msg: str, limit: int = 400) -> None:
    assert "\n" not in msg.strip(), msg
    assert len(msg) <= limit, msg[:200]


# ------------------------------------------------------------------ side constraints (dm_opt.solve)
@pytest.fixture(scope="module")
def three():
    return dm_opt.load("ammo/three_users")


@pytest.mark.parametrize("cons, field", [
    ({"budget": 10**400}, "constraints.budget"),                     # was TypeError from np.isfinite
    ({"linear": ([[10**400, 1, 1]], 0, 1)}, "constraints.linear.A"),  # was OverflowError
    ({"linear": ([[1, 1, 1]], [10**400], 1)}, "constraints.linear.lb"),
    ({"linear": ([[1, 1, 1]], 0, [10**400])}, "constraints.linear.ub"),
    ({"linear": ([[1, 2], [3]], 0, 1)}, "constraints.linear.A"),      # ragged: was numpy's ValueError
    ({"linear": (deep(70), 0, 1)}, "constraints.linear"),             # was numpy's RuntimeError
    ({"linear": ([[1, 1, 1]], deep(70), 1)}, "constraints.linear"),
])
def test_side_constraints_out_of_float_range_or_ragged(three, cons, field):
    with pytest.raises(InstanceError) as ei:
        dm_opt.solve(three, "equilibrium", "bnb", constraints=cons)
    assert ei.value.field.startswith(field)
    one_line(str(ei.value))


@pytest.mark.parametrize("cons, field", [
    ({"max_sharers": np.zeros((2, 2, 2))}, "constraints.max_sharers"),
    ({"budget": np.zeros((3, 3))}, "constraints.budget"),
    ({"force_in": np.zeros((2, 2))}, "constraints.force_in"),
    ({"force_in": "01"}, "constraints.force_in"),      # was: "user index '0' is not in 0..2"
    ({"force_out": {0: 1}}, "constraints.force_out"),
])
def test_side_constraint_messages_quote_arrays_on_one_line(three, cons, field):
    with pytest.raises(InstanceError) as ei:
        dm_opt.solve(three, "equilibrium", "bnb", constraints=cons)
    assert ei.value.field == field
    one_line(str(ei.value))
    if "force" in field:
        assert "must be a list of user indices" in str(ei.value) or "array(" in str(ei.value)


# ------------------------------------------------------------------ arrays coerced without a word
@pytest.mark.parametrize("values, what", [
    (np.ma.masked_array([1.0, 2.0], mask=[True, False]), "masked"),   # was: the masked 1.0 used
    (np.array([True, False]), "bool"),                               # was: read as 1.0, 0.0
    (np.array([1 + 2j, 1.0]), "complex"),                            # was: imaginary part dropped
    (np.array(["1", "2"]), "<U1"),                                   # was: parsed as numbers
    (np.array([1.0, "2"], dtype=object), "str"),                     # was: "2" parsed as 2.0
])
def test_gaussian_values_refuse_coercible_non_numbers(values, what):
    with pytest.raises(InstanceError) as ei:
        dm_opt.GaussianMarket(COV, values)
    assert ei.value.field == "values"
    assert what in str(ei.value)


def test_plain_numeric_arrays_still_accepted():
    for values in (np.array([1, 2], dtype=np.uint8), np.array([1.0, 2.0], dtype=np.float16),
                   np.array([1, 2], dtype=object), (1, 2), range(1, 3)):
        m = dm_opt.GaussianMarket(COV, values)
        assert m.values.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("kw, field", [({"variance": deep(60)}, "variance"), ({"values": deep(40)}, "values"),
                                       ({"within_corr": deep(33)}, "within_corr")])
def test_lists_nested_beyond_numpy_dimensions(kw, field):
    # numpy's RuntimeError "only supports up to 32 dimensions" escaped as_array
    args = {"sizes": [2, 2], "variance": 1.0, "within_corr": 0.0, "cross_corr": 0.0, "values": [1.0, 2.0]}
    args.update(kw)
    with pytest.raises(InstanceError) as ei:
        dm_opt.CommunityMarket(**args)
    assert ei.value.field.startswith(field)


def test_deeply_nested_value_in_a_file_exits_2(tmp_path):
    f = tmp_path / "deep.toml"
    f.write_text('kind = "community_market"\nsizes = [10, 10]\nvariance = %s\nvalues = [1.0, 2.0]\n'
                 % ("[" * 60 + "1.0" + "]" * 60))
    rc, err = run_cli(["solve", str(f)])
    assert rc == 2
    one_line(err)
    assert ": variance: " in err


def test_ragged_matrix_is_named_as_such():
    with pytest.raises(InstanceError) as ei:
        dm_opt.GaussianMarket([[1.0, 0.5], [0.5, 1.0], [1.0]], [1.0, 1.0])
    assert ei.value.field == "cov"
    assert "rows of unequal length" in str(ei.value)


@pytest.mark.parametrize("kw", [{"name": 1j}, {"name": ["a"]}, {"source": 5}])
def test_gaussian_name_and_source_must_be_strings(kw):
    with pytest.raises(InstanceError) as ei:
        dm_opt.GaussianMarket(COV, [1.0, 1.0], **kw)
    assert ei.value.field == next(iter(kw))


@pytest.mark.parametrize("field", ["reservation", "gamma_u", "gamma_pi"])
def test_real_number_messages_stay_on_one_line(field):
    kw = {"types": [1.0, 2.0], "prior": [0.4, 0.6], "reservation": 0.5, "gamma_u": 1.0, "gamma_pi": 0.0}
    kw[field] = np.zeros((2, 2, 2))       # its repr spans several lines
    with pytest.raises(InstanceError) as ei:
        dm_opt.InfoDesignMarket(**kw)
    assert ei.value.field == field
    one_line(str(ei.value))


# ------------------------------------------------------------------ instance files: one short line
LONG = "[" + ", ".join(str(i) for i in range(3000)) + "]"


@pytest.mark.parametrize("text, field", [
    ('kind = "info_design"\ntypes = {family = "grid", n = 50}\nprior = {family = %s}\n'
     'reservation = 0.5\ngamma_u = 1.0\ngamma_pi = 0.0\n' % LONG, "prior.family"),
    ('kind = "info_design"\ntypes = {family = %s, n = 50}\nprior = [1.0]\n'
     'reservation = 0.5\ngamma_u = 1.0\ngamma_pi = 0.0\n' % LONG, "types.family"),
    ('kind = "sharing_network"\nfamily = %s\nsamples = [1, 2]\n' % LONG, "family"),
    ('kind = "sharing_network"\nfamily = "power"\nn = %s\nsamples = [1, 2]\n' % LONG, "n"),
    ('kind = "two_platforms"\ncov = [[1.0, 0.8], [0.8, 1.0]]\nvalues = [0.5, 5.0]\ndeviation = %s\n'
     '[joining]\nbase = [6.0, 6.0]\nslope = [0.01, 0.01]\n' % LONG, "deviation"),
    ('kind = "two_platforms"\ncov = [[1.0, 0.8], [0.8, 1.0]]\nvalues = [0.5, 5.0]\nleakage = %s\n'
     '[joining]\nbase = [6.0, 6.0]\nslope = [0.01, 0.01]\n' % LONG, "leakage"),
])
def test_cli_quotes_long_user_data_briefly(tmp_path, text, field):
    # used to echo the whole 3000-entry list (15 kB) into the error line
    f = tmp_path / "bad.toml"
    f.write_text(text)
    rc, err = run_cli(["solve", str(f)])
    assert rc == 2
    one_line(err)
    assert f": {field}: " in err
    with pytest.raises(InstanceError) as ei:
        dm_opt.load(str(f))
    assert ei.value.field == field


# ------------------------------------------------------------------ constructor cost before --time-limit
def test_well_conditioned_market_skips_the_eigendecomposition(monkeypatch):
    """(n + max r)/min r within MAX_SIGNAL_CONDITION: the O(n³) bound cannot refuse the market and
    is not computed (it took tens of seconds at n = 3000, before any time limit applied)."""
    def boom(*a, **k):
        raise AssertionError("signal_condition called")

    monkeypatch.setattr(posterior, "signal_condition", boom)
    n = 300
    cov = 0.9 * np.eye(n) + 0.1
    assert np.linalg.cond(cov + np.eye(n)) < posterior.MAX_SIGNAL_CONDITION      # oracle: truly accepted
    m = dm_opt.GaussianMarket(cov, np.ones(n))
    assert m.n == n


def test_ill_conditioned_market_still_refused(monkeypatch):
    """Nearly singular Σ with tiny noise: the shortcut cannot clear it, the full bound runs and the
    refusal stands; the condition number is checked with a fresh dense computation."""
    rho = 1 - 1e-13
    cov = np.array([[1.0, rho], [rho, 1.0]])
    noise = np.array([1e-13, 1e-13])
    assert np.linalg.cond(cov + np.diag(noise)) > 10 * posterior.MAX_SIGNAL_CONDITION   # oracle
    called = []
    real = posterior.signal_condition

    def spy(*a, **k):
        called.append(1)
        return real(*a, **k)

    monkeypatch.setattr(posterior, "signal_condition", spy)
    with pytest.raises(InstanceError, match="condition number"):
        dm_opt.GaussianMarket(cov, [1.0, 1.0], noise)
    assert called


# ------------------------------------------------------------------ found by the fuzz, fixed outside the loaders
@pytest.mark.parametrize("limit, says", [
    (10**400, "positive number of seconds"),            # was OverflowError in float()
    (1e308, "at most 1e+09 seconds"),                   # was OverflowError in bnb's per-node budget
    (np.zeros((2, 2)), "got array([[0., 0.], [0., 0.]])"),  # was a repr over several lines
])
def test_time_limit_out_of_range(limit, says):
    with pytest.raises(dm_opt.ProblemError, match=r"time_limit") as ei:
        dm_opt.solve(dm_opt.load("ammo/example1"), time_limit=limit)
    assert says in str(ei.value)
    one_line(str(ei.value))


def test_cli_time_limit_beyond_range_is_one_line():
    rc, err = run_cli(["solve", "ammo/wishart_n16_seed1", "--time-limit", "1e308"])
    assert rc == 2 and err.strip().splitlines() == [
        "dm-opt: error: --time-limit must be at most 1e+09 seconds (about 30 years), got 1e+308; omit it for no limit"]


@pytest.mark.parametrize("kw, says", [
    ({"options": "x"}, "options must be a dict"),         # was TypeError: 'str' object is not a mapping
    ({"options": 0}, "options must be a dict"),           # was silently no options
    ({"options": {1: 2}}, "options must be a dict"),
    ({"method": 0}, "method must be a non-empty string"),  # was silently auto
    ({"method": ""}, "method must be a non-empty string"),
    ({"method": np.array([1, 2])}, "method must be a non-empty string"),  # was numpy's truth-value error
])
def test_solve_method_and_options_types(kw, says):
    for model in ("ammo/example1", "glp/two_type", "rj/example_3_5"):
        with pytest.raises(dm_opt.ProblemError, match=says) as ei:
            dm_opt.solve(dm_opt.load(model), **kw)
        one_line(str(ei.value))


@pytest.mark.parametrize("call", [
    lambda: dm_opt.load(None), lambda: dm_opt.load(""),
    lambda: dm_opt.save(dm_opt.load("ammo/example1"), None),
])
def test_load_and_save_need_a_path(call):
    with pytest.raises(InstanceError, match="must be a file path or a shipped model name"):
        call()


def test_sharing_market_family_and_names_types():
    with pytest.raises(InstanceError, match="unknown family array"):
        dm_opt.SharingMarket(np.array([1, 2]), samples=[10, 20])
    with pytest.raises(InstanceError, match="expected a list of 2 non-empty strings, got int"):
        dm_opt.SharingMarket("power", samples=[10, 20], alpha=[1, 1], beta=[0.5, 0.5], cost=[0, 0], names=5)


def test_export_refuses_a_pipe_the_input_itself_and_deep_json(tmp_path):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    rc, err = run_cli(["export", "ammo/example1", "--out", str(fifo), "--force"])     # used to hang forever
    assert rc == 2 and "is a named pipe or socket" in err
    own = tmp_path / "ex1.toml"
    dm_opt.save(dm_opt.load("ammo/example1"), own)
    before = own.read_bytes()
    rc, err = run_cli(["export", str(own), "--out", str(own), "--force"])             # used to overwrite it
    assert rc == 2 and "is the same file as the instance file" in err and own.read_bytes() == before
    out = tmp_path / "m.mps"
    rc, err = run_cli(["export", "ammo/example1", "--out", str(out), "--force",
                       "--constraints", "[" * 5000 + "]" * 5000])                          # was RecursionError
    assert rc == 2 and "nested too deeply" in err and not out.exists()
    rc, err = run_cli(["export", "ammo/example1", "--out", str(out), "--constraints", '{"budget": "x"}'])
    assert rc == 2
    assert err.strip() == "dm-opt: error: --constraints: constraints.budget: must be a finite number, got 'x'"


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
def test_export_to_a_full_device_is_one_line():
    rc, err = run_cli(["export", "ammo/example1", "--out", "/dev/full", "--force"])
    assert rc == 2
    assert err.strip().splitlines() == ["dm-opt: error: cannot write --out /dev/full: No space left on device"]


def test_figure_format_checked_before_any_work(tmp_path):
    pytest.importorskip("matplotlib")
    for name in ("f.txt", "f"):
        rc, err = run_cli(["figure", "fig1", "--out", str(tmp_path / name)])
        assert rc == 2 and "--out: cannot draw a figure" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("address, says", [("not a url", "missing port"), ("", "scheduler must be")])
def test_bad_scheduler_address_is_named(address, says):
    pytest.importorskip("distributed")
    from dm_opt.gaussian.distributed import open_client

    with pytest.raises(dm_opt.ProblemError, match=says):
        with open_client(address):
            pass
