"""Strict JSON everywhere: one encoding for non-finite numbers — the strings
"inf", "-inf", "nan" — in every ``--json`` output, ``SolveResult.to_json`` and bench files."""

import glob
import json
import math
import os

import numpy as np
import pytest

import dm_opt
from dm_opt.cli import main
from dm_opt.core import jsonenc
from dm_opt.core.dispatch import problem_table
from dm_opt.core.result import Termination
from dm_opt.gaussian.result import SolveResult

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = sorted(glob.glob(os.path.join(ROOT, "models", "**", "*.toml"), recursive=True))
#: shipped files whose solves take longer than a few seconds here
SLOW_FILES = {"community_n1e6_k5.toml"}
#: (file, problem) pairs that are slow even with a tiny time limit (the LP ignores it; see the report)
SLOW_PAIRS = {("grid_200.toml", "complete")}


def _reject(token):
    raise ValueError(f"non-standard JSON token {token!r}")


def strict_loads(text):
    """``json.loads`` that refuses NaN / Infinity / -Infinity tokens."""
    return json.loads(text, parse_constant=_reject)


def _walk(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _walk(v)
    elif isinstance(x, list):
        for v in x:
            yield from _walk(v)
    else:
        yield x


# ------------------------------------------------------------------ the encoder
def test_json_number_and_dumps():
    assert [jsonenc.json_number(x) for x in (1.5, float("inf"), -float("inf"), float("nan"), None, np.float32(2))] \
        == [1.5, "inf", "-inf", "nan", None, 2.0]
    obj = {"a": np.array([1.0, np.inf, -np.inf, np.nan]), "b": np.int64(3), "c": (np.float64("nan"), True),
           "d": {np.int32(1): np.bool_(True)}, "e": Termination.OPTIMAL, "f": [np.array([[1, 2]])], "g": float("inf")}
    back = strict_loads(jsonenc.dumps(obj))
    assert back == {"a": [1.0, "inf", "-inf", "nan"], "b": 3, "c": ["nan", True], "d": {"1": True},
                    "e": "optimal", "f": [[[1, 2]]], "g": "inf"}
    assert all(float(x) == float(y) or (math.isnan(float(x)) and math.isnan(float(y)))
               for x, y in zip(back["a"], [1.0, np.inf, -np.inf, np.nan], strict=True))   # float() reads them back
    with pytest.raises(TypeError):
        jsonenc.dumps({"x": object()})


def test_solve_result_to_json_is_strict():
    r = SolveResult("equilibrium", "test", Termination.TIME_LIMIT, [1, 0], float("nan"), float("inf"), float("inf"),
                    [0.1, float("nan")], [float("-inf"), 0.2], float("nan"), extra={"x": np.array([np.nan, 1.0])})
    d = strict_loads(r.to_json())
    assert (d["objective"], d["bound"], d["gap"], d["surplus"]) == ("nan", "inf", "inf", "nan")
    assert d["prices"] == [0.1, "nan"] and d["leakage"] == ["-inf", 0.2] and d["extra"]["x"] == ["nan", 1.0]
    assert r.to_dict()["objective"] == "nan"


def test_cli_json_encodes_non_finite_values_of_any_kind(monkeypatch, capsys):
    """Whatever a family's ``cli.report`` returns (numpy scalars/arrays, NaN, ±inf), ``--json`` is
    strict JSON, after the common head of every kind."""
    import dm_opt.gaussian.cli as gcli
    from dm_opt.cli import JSON_HEAD

    fields = {"a": float("nan"), "b": np.float64("inf"), "c": np.array([1.0, -np.inf]), "d": [np.nan, np.int64(2)]}
    monkeypatch.setattr(gcli, "report", lambda market, problem, result: (fields, "table"))
    assert main(["solve", os.path.join(ROOT, "models", "ammo", "example1.toml"), "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    back = strict_loads(text)
    assert list(back)[:len(JSON_HEAD)] == list(JSON_HEAD)
    assert back["status"] == "optimal"
    assert {k: back[k] for k in fields} == {"a": "nan", "b": "inf", "c": [1.0, "-inf"], "d": ["nan", 2]}


# ------------------------------------------------------------------ every shipped model
def _solve_json(capsys, argv):
    rc = main(argv)
    cap = capsys.readouterr()
    if rc == 2 and "--time-limit does not apply" in cap.err:
        rc = main([a for a in argv if a not in ("--time-limit", argv[argv.index("--time-limit") + 1])])
        cap = capsys.readouterr()
    return rc, cap


def _params(pairs):
    out = []
    for f, problem in pairs:
        base = os.path.basename(f)
        slow = base in SLOW_FILES or (base, problem) in SLOW_PAIRS
        rel = os.path.relpath(f, ROOT)
        out.append(pytest.param(f, problem, id=f"{rel}:{problem}", marks=[pytest.mark.slow] if slow else []))
    return out


def _check(rc, cap):
    if rc == 2:          # no answer to print (e.g. nothing proven within the limit): one line, no output
        assert cap.out == "" and cap.err.count("\n") == 1 and cap.err.startswith("dm-opt: error:"), cap
        return None
    assert rc in (0, 130), cap.err
    data = strict_loads(cap.out)
    assert isinstance(data, dict) and "status" in data
    for v in _walk(data):
        assert not (isinstance(v, float) and not math.isfinite(v))
        if isinstance(v, str) and v.lower() in ("infinity", "-infinity", "+inf"):
            raise AssertionError(f"non-standard spelling {v!r}")
    return data


@pytest.mark.parametrize("path, problem", _params([(f, None) for f in MODELS]))
def test_every_model_default_problem_json_is_strict(path, problem, capsys):
    rc, cap = _solve_json(capsys, ["solve", path, "--json", "--time-limit", "20"])
    data = _check(rc, cap)
    assert data is not None, cap.err        # the default problem of every shipped file has an answer


def _all_problems():
    pairs = []
    for f in MODELS:
        pairs += [(f, p) for p in problem_table(dm_opt.load(f))[0]]
    return pairs


@pytest.mark.parametrize("path, problem", _params(_all_problems()))
def test_every_model_every_problem_partial_json_is_strict(path, problem, capsys):
    """A time limit of 1 µs: partial answers carry infinite bounds/gaps and NaN placeholders."""
    rc, cap = _solve_json(capsys, ["solve", path, "--json", "--problem", problem, "--time-limit", "1e-6"])
    _check(rc, cap)


def test_report_json_is_strict(capsys):
    assert main(["report", os.path.join(ROOT, "models", "ammo", "three_users.toml"), "--json"]) == 0
    strict_loads(capsys.readouterr().out)
