"""``method="auto"``: what it picks, that it says so (message, the ``dm_opt`` logger), and that
options are checked by the framework before any work."""

import logging

import numpy as np
import pytest

import dm_opt
from tests.support import naive


def wishart(n, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    return dm_opt.GaussianMarket(A @ A.T / n + np.eye(n), rng.uniform(0.3, 2.5, n))


def test_all_optima_above_the_enumeration_default_picks_enumeration():
    m = wishart(22, 1)
    r = dm_opt.solve(m, "first_best", all_optima=True)
    assert r.method == "enumerate" and r.status == "optimal" and r.optima
    assert "all optima" in r.message
    best = dm_opt.solve(m, "first_best", method="bnb")
    assert abs(best.objective - r.objective) <= r.tie_tol


def test_all_optima_beyond_enumeration_is_refused_with_a_reason():
    with pytest.raises(dm_opt.ProblemError, match="all_optima=True needs exhaustive enumeration"):
        dm_opt.solve(wishart(30, 2), "first_best", all_optima=True)


def test_auto_small_n_matches_the_oracle_and_logs_its_choice(caplog):
    m = wishart(6, 3)
    with caplog.at_level(logging.INFO, logger="dm_opt"):
        r = dm_opt.solve(m, "equilibrium")
    best, _ = naive.brute_force(m.cov, m.noise_var, m.values, "equilibrium", tol=1e-9)
    assert abs(r.objective - best) <= 1e-9 * (1 + abs(best))
    msgs = [rec.getMessage() for rec in caplog.records if rec.name.startswith("dm_opt")]
    assert any("method enumerate" in x for x in msgs) and any("status optimal" in x for x in msgs)


def test_unknown_option_is_named_before_any_work():
    with pytest.raises(dm_opt.ProblemError, match="unknown option.*'bnb': bogus"):
        dm_opt.solve(wishart(8, 4), "first_best", method="bnb", bogus=1)


def test_quiet_by_default(capsys):
    dm_opt.solve(wishart(5, 5), "first_best")
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
