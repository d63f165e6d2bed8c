"""The harness on a tiny grid: outputs, agreement checks, injected wrong backends, Ctrl-C."""

import csv
import json
import warnings

import numpy as np
import pytest

import dm_opt
from dm_opt.core import generators as gen
from dm_opt.core.errors import InstanceError
from dm_opt.gaussian.bench import FAMILIES, InstanceSpec, from_files, generated, run_grid, write_outputs
from dm_opt.gaussian.bench.instances import VALUE_SEED_OFFSET
from dm_opt.gaussian.bench.runner import DisagreementWarning, check_agreement


def test_every_family_builds_deterministically():
    for fam in FAMILIES:
        a = InstanceSpec(f"{fam}-x", fam, 7, 3).build()
        b = InstanceSpec(f"{fam}-x", fam, 7, 3).build()
        np.testing.assert_array_equal(a.cov, b.cov)
        np.testing.assert_array_equal(a.values, b.values)
        assert np.all(np.linalg.eigvalsh(a.cov) > 0)
        c = InstanceSpec(f"{fam}-x", fam, 7, 4).build()
        assert not np.array_equal(a.values, c.values)      # another seed, other values


def test_spec_dict_reproduces_instance_via_generators():
    spec = InstanceSpec("s", "straddle", 6, 2)
    d = spec.to_dict()
    cov = gen.generate("cov", d["cov"], "cov")
    vals = gen.generate("values", d["values"], "values")
    m = spec.build()
    np.testing.assert_array_equal(cov, m.cov)
    np.testing.assert_array_equal(vals, m.values)
    assert d["values"]["seed"] == VALUE_SEED_OFFSET + 2
    assert np.any(m.values < 1) and np.any(m.values > 1)    # straddles 1


def test_generated_grid_and_errors():
    specs = generated(["wishart", "block"], [4, 6], 2)
    assert [s.name for s in specs[:3]] == ["wishart-n4-s0", "wishart-n4-s1", "wishart-n6-s0"]
    assert len(specs) == 8
    with pytest.raises(InstanceError, match="families"):
        generated(["nope"], [4], 1)


def test_tiny_grid_outputs(tmp_path, fake_backends):
    specs = generated(["wishart", "straddle"], [5, 6], 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # no disagreement expected: a warning would fail the test
        grid = run_grid(specs, ["enumerate", "oracle-test"], ["equilibrium", "first_best"], time_limit=30)
    assert not grid.interrupted and grid.disagreements == []
    assert len(grid.rows) == 4 * 2 * 2
    ora = [r for r in grid.rows if r["method"] == "oracle-test"]
    assert all(r["agreement"] == "agree" for r in ora)
    assert all(r["status"] == "optimal" and r["peak_mib"] is not None for r in grid.rows)
    paths = write_outputs(tmp_path, grid, instances=specs, time_limit=30)
    with open(paths["csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16 and {"status", "agreement", "peak_mib", "nodes", "build_seconds"} <= set(rows[0])
    data = json.loads(open(paths["json"]).read())
    assert data["meta"]["complete"] and len(data["runs"]) == 16 and len(data["instances"]) == 4
    assert {(s["problem"], s["method"]) for s in data["summary"]} == {
        (p, m) for p in ("equilibrium", "first_best") for m in ("enumerate", "oracle-test")}
    text = open(paths["summary"]).read()
    assert "SGM" in text and "No disagreement" in text
    if "profile" in paths:
        assert open(paths["profile"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_wrong_backend_is_flagged(fake_backends):
    # low values: users with v <= 1 share in equilibrium (Lemma 3), so all-zero is certainly wrong
    spec = InstanceSpec("low-v", "file", 5, model={
        "kind": "gaussian_market", "source": "test", "cov": {"family": "wishart", "n": 5, "seed": 1},
        "values": [0.1, 0.2, 0.3, 0.4, 0.5]})
    with pytest.warns(DisagreementWarning) as rec:
        grid = run_grid([spec], ["wrong-test", "badbound-test", "oracle-test"], ["equilibrium"], time_limit=10)
    warned = " ".join(str(w.message) for w in rec)
    assert "wrong-test" in warned and "badbound-test" in warned and "oracle-test" not in warned
    by = {r["method"]: r for r in grid.rows}
    assert by["enumerate"]["role"] == "reference"          # reference added automatically
    assert by["wrong-test"]["agreement"] == "DISAGREE" and "claims optimal" in by["wrong-test"]["check_message"]
    assert by["badbound-test"]["agreement"] == "DISAGREE" and "cuts off" in by["badbound-test"]["check_message"]
    assert by["oracle-test"]["agreement"] == "agree"
    assert {r["method"] for r in grid.disagreements} == {"wrong-test", "badbound-test"}
    from dm_opt.gaussian.bench.summary import summarize
    s = {x["method"]: x for x in summarize(grid.rows, 10)}
    assert s["wrong-test"]["solved"] == 0 and s["wrong-test"]["disagree"] == 1   # not averaged away


def test_cross_check_without_reference():
    def row(m, f, status="optimal", bound=None):
        return {"instance": "p", "problem": "equilibrium", "method": m, "status": status, "objective": f,
                "bound": f if bound is None else bound, "profile": "1", "agreement": "n/a", "tie_tol": 1e-12,
                "check_message": "", "ref_objective": None}

    # x claims optimal 1.0 but y holds a profile worth 1.1: x is provably wrong, y is not contradicted
    rows = [row("x", 1.0), row("y", 1.1)]
    bad = check_agreement(rows)
    assert [r["method"] for r in bad] == ["x"] and "no enumeration reference" in bad[0]["check_message"]
    assert rows[1]["agreement"] == "consistent"
    # a time-limited run whose bound is below another method's incumbent
    rows = [row("x", 1.0), row("z", 0.5, status="time_limit", bound=0.9)]
    assert [r["method"] for r in check_agreement(rows)] == ["z"]
    # agreeing methods; a lone method is unchecked
    rows = [row("x", 1.0), row("y", 1.0), row("z", 0.8, status="time_limit", bound=1.3)]
    assert check_agreement(rows) == [] and {r["agreement"] for r in rows} == {"consistent"}
    rows = [row("x", 1.0)]
    assert check_agreement(rows) == [] and rows[0]["agreement"] == "unchecked"


def test_unknown_and_failing_methods_recorded(fake_backends):
    spec = generated(["wishart"], [4], 1)
    grid = run_grid(spec, ["enumerate"], ["equilibrium"], time_limit=5, reference_max_n=0)
    assert grid.rows[0]["status"] == "optimal"
    # an instance too big for enumeration: skipped, not an error and not a disagreement
    big = InstanceSpec("big", "wishart", 30, 0)
    grid = run_grid([big], ["enumerate"], ["equilibrium"], time_limit=5, memory="none")
    assert grid.rows[0]["status"] == "skipped" and grid.rows[0]["agreement"] == "n/a"


def test_ctrl_c_keeps_completed_runs(tmp_path, fake_backends):
    from dm_opt.core import registry as base
    from dm_opt.core.result import Termination

    calls = {"n": 0}

    class Interrupting(base.Backend):
        name = "ctrlc-test"

        def run(self, market, objective, **kw):
            calls["n"] += 1
            if calls["n"] >= 3:          # 1st call is the warm-up; the 2nd timed run is hit by Ctrl-C
                raise KeyboardInterrupt
            a = np.ones(market.n, np.int8)
            return base.RawSolution(a, Termination.OPTIMAL, market.evaluate(objective, a))

    base.register(Interrupting)
    try:
        specs = generated(["wishart"], [4], 3)
        grid = run_grid(specs, ["ctrlc-test"], ["equilibrium"], time_limit=5, reference_max_n=0)
    finally:
        base.unregister("ctrlc-test")
    assert grid.interrupted and len(grid.rows) == 1
    paths = write_outputs(tmp_path, grid, instances=specs, time_limit=5)
    assert json.loads(open(paths["json"]).read())["meta"]["complete"] is False
    assert "INTERRUPTED" in open(paths["summary"]).read()


def test_model_files(tmp_path):
    (tmp_path / "a.toml").write_text(
        'kind = "gaussian_market"\nsource = "test"\ncov = {family = "equicorrelated", n = 4, rho = 0.4}\n'
        'values = [0.5, 1.5, 0.9, 1.1]\n')
    specs = from_files([tmp_path])
    assert specs[0].n == 4 and specs[0].model["kind"] == "gaussian_market"
    grid = run_grid(specs, ["enumerate"], ["equilibrium"], time_limit=5)
    m = dm_opt.load(tmp_path / "a.toml")
    assert grid.rows[0]["objective"] == pytest.approx(dm_opt.solve(m, "equilibrium", "enumerate").objective)
    with pytest.raises(InstanceError):
        from_files([tmp_path / "missing.toml"])


def test_progress_bar_path(capsys):
    grid = run_grid(generated(["banded"], [4], 2), ["enumerate"], ["equilibrium"], time_limit=5, progress=True)
    assert len(grid.rows) == 2 and "bench" in capsys.readouterr().err     # tqdm writes to stderr


def test_model_directory_skips_other_kinds(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "g.toml").write_text(
        'kind = "gaussian_market"\nsource = "t"\ncov = {family = "wishart", n = 3, seed = 1}\nvalues = [1, 2, 0.5]\n')
    (tmp_path / "other.toml").write_text('kind = "community_market"\nsource = "t"\n')
    seen = []
    specs = from_files([tmp_path], on_skip=lambda f, k: seen.append(k))
    assert [s.n for s in specs] == [3] and seen == ["community_market"]
    with pytest.raises(InstanceError, match="gaussian_market"):
        from_files([tmp_path / "other.toml"])          # named explicitly: an error
    (tmp_path / "empty").mkdir()
    with pytest.raises(InstanceError, match="no gaussian_market"):
        from_files([tmp_path / "empty"])


def test_time_limit_overrun_is_noted():
    import time as _time

    from dm_opt.core import registry as base
    from dm_opt.core.result import Termination

    class Slow(base.Backend):
        name = "slow-test"

        def run(self, market, objective, **kw):
            if market.n > 4:                    # not during the warm-up (n = 4)
                _time.sleep(1.2)
            a = np.ones(market.n, np.int8)
            return base.RawSolution(a, Termination.TIME_LIMIT, float("inf"))

    base.register(Slow)
    try:
        grid = run_grid(generated(["wishart"], [5], 1), ["slow-test"], ["equilibrium"], time_limit=0.1,
                        reference_max_n=0, memory="none")
    finally:
        base.unregister("slow-test")
    assert "over the 0.1 s time limit" in grid.rows[0]["message"]
