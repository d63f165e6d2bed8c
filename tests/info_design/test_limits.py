"""Time limits and Ctrl-C for the GLP problems: a stopped solve returns the
best answer known with a proven bound and an honest status, never "optimal".

Ctrl-C is simulated by making a function called inside the computation raise
KeyboardInterrupt (as tests/gaussian/test_bnb.py does); time limits are real.
The true optimum used to check the bounds comes from the closed form (bbm) or an
unlimited solve.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from dm_opt import InfoDesignMarket
from dm_opt.cli import main
from dm_opt.core.errors import LimitExceeded, ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Termination
from dm_opt.info_design import bbm, lp
from dm_opt.info_design.lp import equilibrium as lp_equilibrium
from dm_opt.info_design.lp import pieces as lp_pieces
from dm_opt.info_design.lp import platform as lp_platform
from tests.support.limits_helpers import CtrlC

GLP = Path(__file__).resolve().parents[2] / "models" / "glp"


def grid_market(n, seed=0):
    rng = np.random.default_rng(seed)
    return InfoDesignMarket(np.arange(1.0, n + 1.0), rng.dirichlet(np.ones(n)), 0.5, 1.0, 0.3)


def general_market(n, seed=0):
    rng = np.random.default_rng(seed)
    u, pi, v = rng.uniform(0, 2, (3, n, n))
    return InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(n)), 0.3)


def _interrupt_after(monkeypatch, target, name, calls_ok):
    """Ctrl-C while the call after the first ``calls_ok`` ones runs."""
    ctrl_c = CtrlC(getattr(target, name), calls_ok + 1)
    monkeypatch.setattr(target, name, lambda *a, **k: ctrl_c(*a, **k))   # a function: binds as a method


def _check_partial_platform(market, q, s, status):
    assert s.status is status
    np.testing.assert_allclose(np.asarray(s.y).sum(axis=0), q, atol=1e-9)
    assert lp._obedient(market, np.asarray(s.y), 1e-9)
    assert abs(float(np.sum(market.v * s.y)) - s.value) <= 1e-9
    assert s.value >= float(np.sum(market.v * lp.no_information(market, q))) - 1e-12
    true_V = bbm.platform(market, q, intervals=False).value
    assert s.value <= true_V + 1e-9 <= s.bound + 2e-9
    assert s.gap > 0 and np.all(np.isnan(s.supergradient))


def test_platform_lp_time_limit_returns_an_obedient_incumbent_and_a_proven_bound():
    market = grid_market(60)
    q = market.prior
    s = lp.PlatformLP(market).solve(q, time_limit=1e-3)          # the cold LP needs seconds here
    _check_partial_platform(market, q, s, Termination.TIME_LIMIT)


@pytest.mark.parametrize("target, name", [("PlatformLP", "_solve"), ("solve_platform", "run")])
def test_platform_lp_ctrl_c_returns_the_no_information_mechanism(monkeypatch, target, name):
    """Ctrl-C in the cvxpy model (PlatformLP) and in the highspy one (solve_platform's LP path)."""
    market = grid_market(8)
    if target == "PlatformLP":
        _interrupt_after(monkeypatch, lp_platform, "_solve", 0)
        s = lp.PlatformLP(market).solve(market.prior)
    else:
        _interrupt_after(monkeypatch, lp._HighsModel, "run", 0)
        s = lp.solve_platform(market, market.prior, method="lp")
    _check_partial_platform(market, market.prior, s, Termination.INTERRUPTED)


def test_platform_limit_not_hit_changes_nothing():
    market = general_market(4, seed=1)
    q = market.prior
    a = lp.PlatformLP(market).solve(q, intervals=True)
    b = lp.PlatformLP(market).solve(q, intervals=True, time_limit=600)
    assert a.status is b.status is Termination.OPTIMAL
    assert a.value == pytest.approx(b.value, abs=1e-12) and b.bound == b.value and b.gap == 0.0
    np.testing.assert_allclose(a.lower, b.lower, atol=1e-12)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "5", True])
def test_bad_time_limit_names_the_field(bad):
    with pytest.raises(ProblemError, match="time_limit"):
        lp.solve_platform(grid_market(3), grid_market(3).prior, time_limit=bad)


def test_efficiency_pieces_ctrl_c_keeps_solved_pieces_and_bounds_W(monkeypatch):
    market = general_market(3, seed=0)
    full = lp.constrained_efficiency(market)
    assert full.method == "pieces" and full.status is Termination.OPTIMAL
    pieces = lp.value_pieces(market)
    assert len(pieces.gradients) >= 2
    _interrupt_after(monkeypatch, lp.PieceLP, "solve", 1)
    r = lp.constrained_efficiency(market, pieces=pieces)
    assert r.status is Termination.INTERRUPTED
    assert np.isfinite(r.piece_values[0]) and np.all(np.isnan(r.piece_values[1:]))
    assert r.welfare <= full.welfare + 1e-9 <= r.bound + 2e-9
    assert r.bound >= lp.planner_bound(market) - 1e-12 and r.gap > 0
    assert "stopped" in r.message


def test_efficiency_pieces_time_limit_while_finding_pieces():
    """A spent deadline stops the piece search itself: no trade, bound from planner_bound."""
    market = general_market(4, seed=3)
    dl = Deadline(1e-9)
    r = lp.constrained_efficiency(market, method="pieces", time_limit=dl)
    assert r.status is Termination.TIME_LIMIT
    assert r.welfare == 0.0 and np.all(r.q == 0)
    assert r.bound == pytest.approx(lp.planner_bound(market))


def test_value_pieces_stopped_lists_genuine_dual_vertices(monkeypatch):
    market = general_market(3, seed=4)
    _interrupt_after(monkeypatch, lp_pieces, "_region_vertices", 1)
    pcs = lp.value_pieces(market)
    assert pcs.status is Termination.INTERRUPTED and len(pcs.gradients) >= 1
    for lam in pcs.gradients:
        assert lp._in_dual_polyhedron(market, lam, 1e-7)


def test_equilibria_ctrl_c_returns_the_families_found_so_far(monkeypatch):
    m = InfoDesignMarket([1.0, 2.0], [0.4, 0.6], 0.5, 0.8, 0.0)
    full = lp.equilibria(m)
    assert full.status is Termination.OPTIMAL and full.complete and len(full.pieces) >= 1
    _interrupt_after(monkeypatch, lp_equilibrium, "_cell_lp", 8)
    part = lp.equilibria(m)
    assert part.status is Termination.INTERRUPTED and not part.complete and "supply patterns" in part.message
    for p in part.pieces:          # everything reported is one of the complete run's families
        assert any(p.pattern == f.pattern and np.allclose(p.q, f.q, atol=1e-7) for f in full.pieces)


def test_union_ctrl_c_returns_best_piece_and_bound(monkeypatch):
    market = grid_market(3, seed=5)
    full = lp.data_union(market, method="pieces")
    _interrupt_after(monkeypatch, lp.PieceLP, "solve", 1)
    part = lp.data_union(market, method="pieces")
    assert part.status is Termination.INTERRUPTED
    assert part.value <= full.value + 1e-9 <= part.bound + 2e-9 and part.gap >= 0


def test_union_stopped_before_any_piece_is_no_trade():
    market = grid_market(3, seed=6)
    r = lp.data_union(market, pieces=lp.value_pieces(market), time_limit=Deadline(1e-9))
    assert r.status is Termination.TIME_LIMIT and np.all(r.q == 0)
    assert r.value == pytest.approx(market.reservation)


def test_taxes_report_the_efficiency_status():
    market = general_market(3, seed=7)
    r = lp.data_taxes(market, time_limit=Deadline(1e-9))
    assert r.status is Termination.TIME_LIMIT
    assert lp.data_taxes(market).status is Termination.OPTIMAL


def test_complete_markets_without_optimal_duals_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(lp._HighsModel, "run", lambda *a, **k: "time_limit")     # the LPs are highspy models
    with pytest.raises(LimitExceeded, match="complete markets"):
        lp.complete_markets(grid_market(3), time_limit=1.0)


# ----------------------------------------------------------------------------- CLI
def test_cli_platform_lp_time_limit(capsys):
    rc = main(["solve", str(GLP / "grid_50.toml"), "--problem", "platform", "--method", "lp",
               "--time-limit", "0.001", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["status"] == "time_limit" and out["method"] == "lp"
    assert out["bound"] >= out["value"] and out["gap"] > 0 and out["welfare"] is None


def test_cli_platform_time_limit_with_the_closed_form_is_optimal(capsys):
    rc = main(["solve", str(GLP / "grid_200.toml"), "--problem", "platform", "--time-limit", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["status"] == "optimal" and out["method"] == "bbm" and out["gap"] == 0.0


def test_cli_union_ctrl_c_prints_partial_and_exits_130(monkeypatch, capsys):
    _interrupt_after(monkeypatch, lp.PieceLP, "solve", 1)
    rc = main(["solve", str(GLP / "three_type_consumer.toml"), "--problem", "union", "--method", "pieces", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 130 and out["status"] == "interrupted" and out["bound"] >= out["value"]


def test_cli_equilibrium_time_limit(capsys):
    rc = main(["solve", str(GLP / "two_type.toml"), "--problem", "equilibrium", "--time-limit", "1e-9", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["status"] == "time_limit"
