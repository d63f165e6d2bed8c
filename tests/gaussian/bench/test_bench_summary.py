"""Mittelmann SGM and Dolan–Moré profiles on hand-made numbers (computed by hand below)."""

import math

import numpy as np
import pytest

from dm_opt.gaussian.bench.summary import (
    charged_time,
    performance_profile,
    performance_ratios,
    shifted_geomean,
    summarize,
)


def test_sgm_hand_made():
    # exp(mean(ln(t + 10))) - 10 for t = 0, 10, 30: ln 10, ln 20, ln 40 -> (10*20*40)^(1/3) - 10 = 20 - 10
    assert shifted_geomean([0.0, 10.0, 30.0]) == pytest.approx(20.0 - 10.0)
    # single time: SGM is the time itself
    assert shifted_geomean([3.5]) == pytest.approx(3.5)
    # max(1, t + s): a shift below 1 clips (t + s < 1 counts as 1)
    assert shifted_geomean([0.0, 0.0], shift=0.5) == pytest.approx(1.0 - 0.5)
    assert math.isnan(shifted_geomean([]))


def _row(method, inst, status, seconds, gap=0.0, agreement="agree", problem="equilibrium"):
    return {"method": method, "instance": inst, "problem": problem, "status": status, "seconds": seconds,
            "gap": gap, "agreement": agreement, "role": "method"}


def test_timeouts_and_disagreements_counted_at_the_limit():
    limit = 60.0
    rows = [
        _row("a", "p1", "optimal", 2.0),
        _row("a", "p2", "time_limit", 61.3, gap=0.2),     # timeout -> 60
        _row("a", "p3", "optimal", 1.0, agreement="DISAGREE"),  # wrong answer -> not solved -> 60
        _row("a", "p4", "error", 0.1, gap=None),          # failure -> 60, no solution
    ]
    assert [charged_time(r, limit) for r in rows] == [2.0, 60.0, 60.0, 60.0]
    (s,) = summarize(rows, limit)
    expected = math.exp((math.log(12.0) + 3 * math.log(70.0)) / 4) - 10.0
    assert s["sgm_seconds"] == pytest.approx(expected)
    assert s["solved"] == 1 and s["runs"] == 4 and s["disagree"] == 1 and s["errors"] == 1 and s["skipped"] == 0
    assert s["mean_gap"] == pytest.approx((0.0 + 0.2 + 0.0) / 3) and s["no_solution"] == 1


def test_reference_rows_not_summarised():
    rows = [_row("a", "p1", "optimal", 1.0), dict(_row("enumerate", "p1", "optimal", 5.0), role="reference")]
    assert [s["method"] for s in summarize(rows, 10.0)] == ["a"]


def test_performance_profile_hand_made():
    inf = float("inf")
    times = {"A": {"p1": 1.0, "p2": 4.0, "p3": inf},
             "B": {"p1": 2.0, "p2": 2.0, "p3": 3.0}}
    methods, instances, R = performance_ratios(times)
    assert methods == ["A", "B"] and instances == ["p1", "p2", "p3"]
    np.testing.assert_allclose(R, [[1.0, 2.0], [2.0, 1.0], [inf, 1.0]])
    _, taus, rho = performance_profile(times, taus=[1.0, 1.5, 2.0, 100.0])
    # A: within 1 on p1; within 2 on p1, p2; never p3.  B: p2, p3 at 1; all at 2.
    np.testing.assert_allclose(rho, [[1 / 3, 1 / 3, 2 / 3, 2 / 3], [2 / 3, 2 / 3, 1.0, 1.0]])


def test_profile_unsolved_by_all_and_tiny_times():
    inf = float("inf")
    methods, _, R = performance_ratios({"A": {"p": inf, "q": 0.0}, "B": {"p": inf, "q": 0.002}})
    assert np.all(np.isinf(R[0]))                       # nobody solved p
    np.testing.assert_allclose(R[1], [1.0, 2.0])        # 0 s raised to the 1 ms floor


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

times_st = st.lists(st.floats(0.0, 1e4, allow_nan=False), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(times_st)
def test_sgm_properties(ts):
    # with shift 10 and t >= 0 the clip max(1, ·) is inactive: SGM lies between min and the
    # arithmetic mean (AM-GM on t + 10), and adding a slower run never lowers it
    s = shifted_geomean(ts)
    assert min(ts) - 1e-9 * (1 + max(ts)) <= s <= np.mean(ts) + 1e-9 * (1 + max(ts))
    assert shifted_geomean(ts + [max(ts) + 1.0]) >= s - 1e-9 * (1 + max(ts))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.floats(0.0, 100.0), st.just(float("inf"))),
                          st.one_of(st.floats(0.0, 100.0), st.just(float("inf")))), min_size=1, max_size=12))
def test_profile_properties(pairs):
    times = {"A": {f"p{i}": a for i, (a, _) in enumerate(pairs)},
             "B": {f"p{i}": b for i, (_, b) in enumerate(pairs)}}
    methods, taus, rho = performance_profile(times)
    assert np.all(np.diff(rho, axis=1) >= 0)                       # ρ_s is nondecreasing in τ
    for j, m in enumerate(methods):                                 # and reaches the solved fraction
        solved = np.mean([np.isfinite(t) for t in times[m].values()])
        assert rho[j, -1] == pytest.approx(solved)
    # at τ = 1 every instance someone solved is won by at least one method
    any_solved = np.mean([np.isfinite(a) or np.isfinite(b) for a, b in pairs])
    assert rho[:, 0].sum() >= any_solved - 1e-12
