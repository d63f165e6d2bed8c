"""The summary form of ``dm-opt solve`` for community markets (scalars and per-community counts,
no per-user arrays), the default above :data:`dm_opt.gaussian.cli.SUMMARY_MIN_N` users."""

import json

import numpy as np
import pytest

import dm_opt
from dm_opt.cli import main
from dm_opt.core.errors import ProblemError
from dm_opt.core.jsonenc import dumps
from dm_opt.gaussian import cli as gcli


def _small_community():
    return dm_opt.CommunityMarket([6, 4], 1.0, [0.3, 0.1], 0.05, {"family": "constant", "value": [0.4, 1.6]},
                                  name="small")


def test_million_user_json_is_a_small_summary(capsys):
    rc = main(["solve", "ammo/community_n1e6_k5", "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    assert len(out.encode()) < 10_000
    d = json.loads(out)
    assert d["n"] == 1_000_000 and d["summary"] is True and d["status"] == "optimal"
    assert "profile" not in d and "prices" not in d and "leakage" not in d
    sizes = [400000, 250000, 150000, 120000, 80000]
    assert [c["size"] for c in d["communities"]] == sizes
    counts = d["sharers_per_community"]
    assert counts == [c["sharers"] for c in d["communities"]] == d["extra"]["counts"]
    assert sum(counts) == d["sharers"]
    assert all(0 <= c["sharers"] <= c["size"] for c in d["communities"])
    assert {"objective", "bound", "gap", "status"} <= set(d)


def test_default_by_size_and_explicit_forms():
    m = _small_community()
    r = dm_opt.solve(m, "equilibrium")
    assert m.n <= gcli.SUMMARY_MIN_N and not gcli.default_summary(m)
    full, _ = gcli.report(m, "equilibrium", r)                       # default: full below the size
    assert len(full["profile"]) == m.n
    summ, text = gcli.report(m, "equilibrium", r, summary=True)
    assert summ["summary"] and "profile" not in summ
    assert summ["sharers_per_community"] == [int(r.profile[m.community == k].sum()) for k in range(m.K)]
    assert "user" not in text.split("\n")[-1]                      # no per-user rows
    full2, _ = gcli.report(m, "equilibrium", r, summary=False)
    assert full2 == full
    json.loads(dumps(summ))                                          # strict JSON


def test_constant_prices_per_community():
    m = _small_community()
    fb = dm_opt.solve(m, "first_best")
    d, _ = gcli.report(m, "first_best", fb, summary=True)
    assert all(c["price"] == 0.0 for c in d["communities"])         # first best: no prices
    eq = dm_opt.solve(m, "equilibrium")
    d, _ = gcli.report(m, "equilibrium", eq, summary=True)
    for k, c in enumerate(d["communities"]):
        p = eq.prices[m.community == k]
        assert c["price"] == (float(p[0]) if np.all(p == p[0]) else None)
        if c["sharers"]:
            sh = (m.community == k) & (eq.profile == 1)
            assert c["price_sharers"]["max"] == pytest.approx(float(eq.prices[sh].max()))


def test_summary_of_a_plain_market_and_refusal_elsewhere():
    m = dm_opt.load("ammo/example1")
    r = dm_opt.solve(m, "equilibrium")
    d, text = gcli.report(m, "equilibrium", r, summary=True)
    assert d["sharers"] == 2 and "communities" not in d and "sharers: 2 of 2" in text
    from types import SimpleNamespace

    other = SimpleNamespace(kind="two_platforms", n=2)               # competition: no per-user arrays
    with pytest.raises(ProblemError, match="no summary form"):
        gcli.report(other, "competition", None, summary=True)


def test_large_community_market_default_is_summary():
    m = dm_opt.CommunityMarket([6000, 5000], 1.0, 0.1, 0.01, {"family": "uniform", "low": [0.0, 0.5],
                                                                "high": [2.0, 3.0], "seed": 1})
    assert m.n > gcli.SUMMARY_MIN_N and gcli.default_summary(m)
    r = dm_opt.solve(m, "equilibrium")
    d, _ = gcli.report(m, "equilibrium", r)
    assert d["summary"] and len(dumps(d)) < 10_000
    d, _ = gcli.report(m, "equilibrium", r, summary=False)
    assert len(d["profile"]) == m.n
