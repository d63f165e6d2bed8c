"""Taxes on data transactions (AMMO §6.1): post-tax equilibrium, Pigovian taxes, uniform tax sweep.

Reference: ``tests/support/naive.py`` brute force with the post-tax objective written from the definition
``Σ (1 − v_i) I_i(a) + v_i I_i(a_{−i}, 0) − Σ_{i∈A} t_i`` (Thm 1's objective minus the platform's taxes).
"""

import math

import numpy as np
import pytest

import dm_opt
from dm_opt.core.generators import wishart
from dm_opt.gaussian import taxes as T
from tests.support import naive


def naive_post_tax(m, t):
    """(best, optima) of the post-tax equilibrium problem by brute force."""
    vals = []
    for a in naive.subsets(m.n):
        A = np.flatnonzero(a)
        vals.append((naive.objective(m.cov, m.noise_var, m.values, A, "equilibrium") - float(np.sum(t[A])), a))
    best = max(x for x, _ in vals)
    return best, [a for x, a in vals if x >= best - 1e-9]


def random_market(n, seed, high=2.5):
    rng = np.random.default_rng(100 + seed)
    return dm_opt.GaussianMarket(wishart(n, seed, df=n), rng.uniform(0, high, n))


@pytest.mark.parametrize("seed", range(4))
def test_post_tax_equilibrium_matches_brute_force(seed):
    m = random_market(5, seed)
    t = np.random.default_rng(seed).uniform(0, 0.4, 5)
    out = T.verify_taxes(m, t)
    best, optima = naive_post_tax(m, t)
    assert math.isclose(m.evaluate(T.post_tax_objective(m, t), out.profile), best, rel_tol=1e-9, abs_tol=1e-12)
    assert {tuple(o) for o in out.optima} == {tuple(o) for o in optima}


def test_zero_tax_is_thm1_equilibrium():
    m = random_market(6, 1)
    obj = T.post_tax_objective(m, 0.0)
    assert math.isclose(dm_opt.solve(m, obj).objective, dm_opt.solve(m, "equilibrium").objective, rel_tol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_pigovian_taxes_implement_first_best(seed):
    m = random_market(6, seed)
    t = T.pigovian_taxes(m)
    fb_best, fb_optima = naive.brute_force(m.cov, m.noise_var, m.values, "first_best")
    out = T.verify_taxes(m, t)
    _, optima = naive_post_tax(m, t)
    # every post-tax equilibrium attains the first-best surplus (docstring derivation)
    for a in optima:
        assert m.surplus(a) >= fb_best - 1e-9
    assert out.implements_first_best and math.isclose(out.surplus_min, fb_best, rel_tol=1e-9, abs_tol=1e-12)


def test_prohibitive_tax_excludes_user():
    m = random_market(5, 2, high=0.5)          # everybody low-value: all share at t = 0
    t = np.zeros(5)
    t[2] = T.prohibitive_tax(m)
    out = T.verify_taxes(m, t)
    assert all(o[2] == 0 for o in out.optima)


@pytest.mark.parametrize("seed", range(4))
def test_uniform_sweep_exact_against_brute_force(seed):
    m = random_market(5, seed)
    sw = T.uniform_tax_sweep(m)
    # pieces tile [0, t_max]; the number of sharers is nonincreasing in t (convex envelope)
    assert sw.pieces[0].lo == 0 and sw.pieces[-1].hi == sw.t_max
    assert all(p.hi == q.lo for p, q in zip(sw.pieces[:-1], sw.pieces[1:]))
    assert all(p.sharers >= q.sharers for p, q in zip(sw.pieces[:-1], sw.pieces[1:]))
    assert sw.pieces[-1].sharers == 0
    for p in sw.pieces:
        for t in (p.lo + 0.25 * (p.hi - p.lo), p.lo + 0.75 * (p.hi - p.lo)):
            best, optima = naive_post_tax(m, np.full(5, t))
            surpl = [m.surplus(a) for a in optima]
            assert any(np.array_equal(p.profile, a) for a in optima)
            assert math.isclose(min(surpl), p.surplus_min, abs_tol=1e-9)
            assert math.isclose(max(surpl), p.surplus_max, abs_tol=1e-9)
    # just beyond each breakpoint the profile really changes (breakpoints are not spurious)
    for p, q in zip(sw.pieces[:-1], sw.pieces[1:]):
        assert not np.array_equal(p.profile, q.profile)
    # best uniform tax: no grid point does better
    grid = np.linspace(0, sw.t_max, 200)
    assert all(sw.surplus_at(t) <= sw.best.surplus + 1e-12 for t in grid)


@pytest.mark.parametrize("rho,v", [(0.9, 1.2), (0.5, 1.1), (0.7, 1.5)])
def test_high_uniform_tax_shuts_down_negative_surplus_market(rho, v):
    """AMMO §3.4: v ∈ (1, 4/(2−ρ²)²) ⇒ both share with negative surplus; §6.1: a high uniform tax shuts the
    market down and raises surplus to 0."""
    assert 1 < v < 4 / (2 - rho ** 2) ** 2
    m = dm_opt.GaussianMarket([[1, rho], [rho, 1]], [v, v])
    eq = dm_opt.solve(m, "equilibrium")
    assert eq.profile.tolist() == [1, 1] and eq.surplus < 0
    sw = T.uniform_tax_sweep(m)
    assert sw.shutdown_tax is not None
    assert sw.surplus_at(sw.shutdown_tax * 1.01 + 1e-9) == 0.0
    assert sw.best.surplus == 0.0 and sw.best.sharers == 0
    # brute force at a tax above the shutdown point
    _, optima = naive_post_tax(m, np.full(2, sw.shutdown_tax + 1e-6))
    assert [a.tolist() for a in optima] == [[0, 0]]


def test_validation_and_files(tmp_path):
    m = random_market(3, 0)
    with pytest.raises(dm_opt.InstanceError, match="taxes"):
        T.post_tax_objective(m, [0.1, 0.2])
    with pytest.raises(dm_opt.ProblemError, match="t_max"):
        T.uniform_tax_sweep(m, t_max=-1.0)
    tm = dm_opt.load("models/ammo/taxes_example.toml")
    assert isinstance(tm, T.TaxedMarket) and tm.taxes.tolist() == [0.5, 0.0]
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "gaussian_taxes"\ncov = [[1.0]]\nvalues = [0.5]\ntaxes = [-1.0]\n')
    with pytest.raises(dm_opt.InstanceError, match=r"taxes\[0\]: must be >= 0"):
        dm_opt.load(bad)
    bad.write_text('kind = "gaussian_taxes"\ncov = [[1.0]]\nvalues = [0.5]\nt_max = 0\n')
    with pytest.raises(dm_opt.InstanceError, match="t_max: must be a positive"):
        dm_opt.load(bad)
    from dm_opt.cli import main
    for problem in ("uniform_sweep", "pigovian", "post_tax_equilibrium"):
        assert main(["solve", "models/ammo/taxes_example.toml", "--problem", problem, "--json"]) == 0
    assert main(["solve", "models/ammo/taxes_pigovian.toml", "--problem", "post_tax_equilibrium"]) == 2


@pytest.mark.slow   # first call JIT-compiles the bnb kernels (~10 s when the numba cache is cold)
def test_sweep_with_bnb_matches_enumeration():
    m = random_market(7, 9)
    a, b = T.uniform_tax_sweep(m, method="enumerate"), T.uniform_tax_sweep(m, method="bnb")
    assert np.allclose([p.hi for p in a.pieces], [p.hi for p in b.pieces], rtol=1e-9)
    assert np.allclose([p.surplus for p in a.pieces], [p.surplus for p in b.pieces], atol=1e-12)


# ----------------------------------------------------------------- limits and interruption
import json  # noqa: E402

from dm_opt.core.result import Termination  # noqa: E402
from tests.support.limits_helpers import Budget  # noqa: E402


def check_partial_sweep(full, sw, status):
    assert sw.status is status and not sw.complete and sw.message
    assert 0 < sw.covered <= sw.t_max and sw.pieces[0].lo == 0.0 and sw.pieces[-1].hi == sw.covered
    assert all(p.hi == q.lo for p, q in zip(sw.pieces[:-1], sw.pieces[1:]))
    for p in sw.pieces:
        # every proven piece lies inside one piece of the full sweep, with the same profile and surplus
        q = next(q for q in full.pieces if q.lo <= p.lo + 1e-12 and p.hi <= q.hi + 1e-12)
        assert np.array_equal(p.profile, q.profile) and p.surplus == q.surplus
        if p.ties_checked:
            assert (p.surplus_min, p.surplus_max) == (q.surplus_min, q.surplus_max)
        else:
            assert math.isnan(p.surplus_min) and math.isnan(p.surplus_max)
    assert sw.best.surplus == max(p.surplus for p in sw.pieces) <= full.best.surplus
    if sw.covered < sw.t_max and sw.shutdown_tax is None:
        with pytest.raises(dm_opt.ProblemError, match="not reached"):
            sw.surplus_at(0.5 * (sw.covered + sw.t_max))
    d = sw.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["status"] == str(status) and d["covered"] == sw.covered


def test_uniform_sweep_limit_at_every_solve(monkeypatch):
    m = random_market(6, 5)
    full = T.uniform_tax_sweep(m)
    assert full.complete and full.covered == full.t_max and len(full.pieces) >= 3
    budget = Budget(monkeypatch)
    again = T.uniform_tax_sweep(m, time_limit=1e6)                     # unchanged when the limit is not hit
    assert again.to_dict() == full.to_dict()
    total = budget.calls
    statuses = set()
    first = None
    for k in range(1, total):
        budget.expire_after(k)
        if first is None:   # until an intersection is confirmed no piece is proven: a clear error, no answer
            try:
                sw = T.uniform_tax_sweep(m, time_limit=10.0)
            except dm_opt.LimitExceeded as exc:
                assert "before any piece" in str(exc) and k < total - len(full.pieces)
                continue
            first = k
        else:
            sw = T.uniform_tax_sweep(m, time_limit=10.0)
        check_partial_sweep(full, sw, Termination.TIME_LIMIT)
        statuses.add((sw.covered < sw.t_max, all(p.ties_checked for p in sw.pieces)))
    assert (True, False) in statuses and (False, False) in statuses    # stops in both phases
    budget.expire_after(0)
    with pytest.raises(dm_opt.LimitExceeded, match="uniform tax sweep"):
        T.uniform_tax_sweep(m, time_limit=10.0)


@pytest.mark.parametrize("caught", [False, True])
def test_uniform_sweep_ctrl_c(monkeypatch, caught):
    m = random_market(6, 5)
    full = T.uniform_tax_sweep(m)
    budget = Budget(monkeypatch)
    envelope_solves = full.solver_calls - len(full.pieces)         # then one tie solve per piece
    for k in (envelope_solves, envelope_solves + 1, full.solver_calls):
        budget.interrupt_at(k, caught)
        check_partial_sweep(full, T.uniform_tax_sweep(m), Termination.INTERRUPTED)
    budget.interrupt_at(1, caught)
    with pytest.raises(KeyboardInterrupt):
        T.uniform_tax_sweep(m)


def test_pigovian_and_post_tax_limits_are_all_or_nothing(monkeypatch):
    m = random_market(5, 1)
    budget = Budget(monkeypatch)
    budget.expire_after(1)
    with pytest.raises(dm_opt.LimitExceeded, match="not proven optimal"):
        T.verify_taxes(m, np.zeros(5), time_limit=10.0)
    budget.interrupt_at(1, caught=True)
    with pytest.raises(KeyboardInterrupt):
        T.pigovian_taxes(m)
    with pytest.raises(dm_opt.ProblemError, match="time_limit must be a positive number"):
        T.uniform_tax_sweep(m, time_limit=-1)
    with pytest.raises(dm_opt.ProblemError, match="time_limit"):
        T.verify_taxes(m, np.zeros(5), time_limit=0)


def test_cli_sweep_time_limit_json_and_ctrl_c(monkeypatch, capsys):
    from dm_opt.cli import main
    path = "models/ammo/taxes_example.toml"
    assert main(["solve", path, "--time-limit", "60", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "optimal" and d["covered"] == d["t_max"]
    budget = Budget(monkeypatch)
    budget.expire_after(3)
    assert main(["solve", path, "--time-limit", "60", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "time_limit" and d["covered"] <= d["t_max"] and d["pieces"]
    budget.expire_after(None)
    main(["solve", path])
    budget.interrupt_at(budget.calls)                 # Ctrl-C in the last solve (a tie check)
    capsys.readouterr()
    assert main(["solve", path]) == 130
    out = capsys.readouterr().out
    assert "status: interrupted -- PARTIAL RESULT" in out and "best uniform tax within the swept" in out
    budget.expire_after(1)
    assert main(["solve", path, "--problem", "pigovian", "--time-limit", "60"]) == 2
    assert "not proven optimal" in capsys.readouterr().err
