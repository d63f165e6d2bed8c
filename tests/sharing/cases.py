"""Catalogue of named RJ instances (the files of models/rj/ and the paper's examples of the tests)
with their expected outcomes, and the one :func:`check_result` every method of the family is run
through (in the style of cvxpy's ``solver_test_helpers``).

Every case is solved through :func:`dm_opt.solve` (the problem table of
:mod:`dm_opt.sharing.problems`) with every buyer method that runs on it
(:func:`dm_opt.sharing.buyer.available_buyer_methods`; the sharing family registers no backend,
``method="auto"``, so the per-buyer algorithm is what varies).  Expected values come from the
paper's statements (Remark 3.4, Example 3.5, Prop 3.1, Props 4.1 and 5.1) or, for the power
files, from an independent brute force over every bundle of every buyer
(:func:`brute_force_welfare`: :meth:`SharingMarket.value` and the costs, no solver code).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import dm_opt
from dm_opt.core.errors import AssumptionError
from dm_opt.core.result import check_protocol
from dm_opt.core.status import SolutionStatus, Termination
from dm_opt.sharing import bilateral as B
from dm_opt.sharing import queries as Q
from dm_opt.sharing.buyer import available_buyer_methods
from dm_opt.sharing.market import SharingMarket
from dm_opt.sharing.problems import PROBLEMS
from dm_opt.sharing.queries import WeightedMatchResult
from tests.support.family_invariants import check_result as check_invariants

RJ = Path(__file__).resolve().parents[2] / "models" / "rj"
KIND = "sharing_network"
#: problems whose algorithm solves buyer problems (run with every buyer method)
BUYER_PROBLEMS = ("welfare", "prices", "vcg", "mixed_vcg", "d_mixed_vcg")
#: Absolute tolerance on expected values (O(1) values; buyer problems are exact to ~1e-12,
#: the MILP to its gap tolerance 1e-7 relative).
TOL = 1e-7


@functools.lru_cache(maxsize=None)
def load(name: str) -> SharingMarket:
    return dm_opt.load(RJ / f"{name}.toml")


@functools.lru_cache(maxsize=None)
def brute_force_welfare(name: str) -> float:
    """``max Σ_i V_i`` by enumerating every bundle of every buyer (RJ eq. 11's right side, each
    term by brute force over integer bundles ``0..max_queries``), values from the market's own
    :meth:`~SharingMarket.value` and :meth:`~SharingMarket.cost` only."""
    m = load(name)
    total = 0.0
    for i in range(m.n):
        others = [j for j in range(m.n) if j != i]
        best = -math.inf
        for units in itertools.product(*[range(int(m.max_queries[j]) + 1) for j in others]):
            w = np.zeros(m.n)
            w[others] = units
            if m.family == "table":
                u = m.value(i, [j for j, k in zip(others, units) if k])
            else:
                u = m.value(i, None, weights=w)
            best = max(best, u - sum(k * m.cost(j, i) for j, k in zip(others, units)))
        total += best
    return total


@dataclass(frozen=True)
class Case:
    """A named instance and problem with its expected outcome.

    ``expect`` keys: ``objective`` (value), ``raises`` (an exception class), ``edges`` (the
    ordered-match graph), ``stable_graphs`` (every stable graph), ``stable`` (the verdict),
    ``holds`` (assumption checks); ``checks`` further per-case assertions ``fn(result, market)``."""

    name: str
    instance: object                 # a file name of models/rj/ or a function building the market
    problem: str
    statement: str
    expect: dict
    checks: tuple = field(default_factory=tuple)

    def market(self) -> SharingMarket:
        return self.instance() if callable(self.instance) else load(self.instance)

    def methods(self) -> list:
        if self.problem in BUYER_PROBLEMS:
            return available_buyer_methods(self.market())
        return ["auto"]


def _prop_4_1(r, m):
    """Prop 4.1: prices c_j(i) support the welfare graph; payments (eq. 6) are transfers."""
    assert r.demand_ok is True
    np.testing.assert_array_equal(r.prices, m.cost_matrix())
    assert abs(float(np.sum(r.payments))) <= 1e-12


def _prop_5_1(r, m):
    """Prop 5.1: budget balance (Σ t = 0), eq. 28 per agent, SW^A as VCG, SW^T gap = Δ (eq. 31)."""
    assert abs(float(r.payment.sum())) <= 1e-9
    if r.mechanism != "vcg" and not r.unreachable:
        np.testing.assert_allclose(r.values - r.payment, r.values_star - r.clarke, atol=1e-9)
        assert abs(r.sw_agents - r.vcg_sw_agents) <= 1e-9
        assert abs(r.vcg_sw_total - r.sw_total - r.delta) <= 1e-9


def _vcg_clarke(r, m):
    """Standard VCG: t = t̃ (eq. 19), Σ t = Δ (eq. 21), no distortion."""
    np.testing.assert_allclose(r.payment, r.clarke, atol=1e-12)
    assert abs(float(r.payment.sum()) - r.delta) <= 1e-9 and np.all(r.quality == 1.0)


def _ordered_match_is_stable(r, m):
    """Prop 3.1: the ordered-match graph is strongly stable (exhaustive check, N ≤ 20)."""
    assert r.assumptions_hold is True
    assert B.check_stability(m, r.edges).stable is True


def _remark_3_4_not_welfare_maximising(r, m):
    """Remark 3.4: the stable outcome (no edge, welfare 1) is not the welfare maximum (10, with the edge)."""
    assert B.bilateral_welfare(m, r.edges) == 1.0
    assert B.bilateral_welfare_max(m).welfare == 10.0


def two_agents_queries() -> SharingMarket:
    """Constructed §6 instance (derivation in test_queries.py): agent 2 chooses (1, 2) from agent 1's set."""
    return SharingMarket.power([1.0, 1.0], alpha=1.0, beta=1.0, cost=[0.1, 0.05], query_samples=[3.0, 1.0],
                               max_queries=2)


def three_agents_queries() -> SharingMarket:
    """Constructed §6 instance whose ordered-match outcome is not core stable (test_queries.py)."""
    return SharingMarket.power([60.0, 130.0, 300.0], alpha=[2.2, 1.6, 2.5], beta=[0.4, 0.5, 0.8],
                               cost=[0.011, 0.011, 0.005], max_queries=2)


def _core_blocked(r, m):
    """Finding: the coalition {1, 3} blocks the §6 outcome, though a core-stable outcome exists."""
    W = r.query_matrix(m.n)
    assert Q.check_weighted_stability(m, W, notion="core").coalition == (0, 2)
    assert Q.stable_weighted_outcomes(m, notion="core").graphs


def _weighted_stable(r, m):
    assert Q.check_weighted_stability(m, r.query_matrix(m.n), notion="strong").stable is True


CASES = [
    Case("two_agents_queries-ordered_match_queries", two_agents_queries, "ordered_match_queries",
         "RJ §6: the receiver chooses its best pair from the proposer's acceptable set; stable",
         {"edges": [[0, 1]], "weights": [[1, 2]]}, (_weighted_stable,)),
    Case("three_agents_queries-ordered_match_queries", three_agents_queries, "ordered_match_queries",
         "RJ §6 (finding): the outcome of the procedure is blocked by a coalition",
         {"edges": [[1, 2]], "weights": [[2, 2]]}, (_core_blocked,)),
    Case("remark_3_4-ordered_match", "remark_3_4", "ordered_match",
         "RJ Remark 3.4: agent 1 does not propose, the outcome is stable but not welfare maximising",
         {"edges": []}, (_ordered_match_is_stable, _remark_3_4_not_welfare_maximising)),
    Case("remark_3_4-stability", "remark_3_4", "stability", "RJ Remark 3.4: the empty graph is the stable outcome",
         {"stable_graphs": [[]]}),
    Case("remark_3_4-check", "remark_3_4", "check", "RJ Prop 3.1's assumptions hold for two agents",
         {"holds": True}),
    Case("remark_3_4-welfare", "remark_3_4", "welfare",
         "RJ eq. 11 (unilateral sharing): agent 2 receives agent 1's data at no cost: 1 + 10",
         {"objective": 11.0}),
    Case("remark_3_4-prices", "remark_3_4", "prices", "RJ Prop 4.1 with zero costs", {"objective": 11.0},
         (_prop_4_1,)),
    Case("example_3_5-stability", "example_3_5", "stability", "RJ Example 3.5: no stable outcome",
         {"stable_graphs": []}),
    Case("example_3_5-ordered_match", "example_3_5", "ordered_match",
         "RJ Example 3.5: the top agent property fails, so ordered match (Prop 3.1) is refused",
         {"raises": AssumptionError}),
    Case("example_3_5-check", "example_3_5", "check", "RJ Example 3.5: the top agent property fails",
         {"holds": False}),
    Case("power_12-ordered_match", "power_family_12", "ordered_match",
         "RJ Corollary 3.1.1 + Prop 3.1: assumptions hold, the ordered-match graph is stable", {},
         (_ordered_match_is_stable,)),
    Case("power_12-stability", "power_family_12", "stability", "RJ Prop 3.1 (checked exhaustively, N = 12)",
         {"stable": True}),
    Case("power_12-check", "power_family_12", "check", "RJ Corollary 3.1.1 (closed form)", {"holds": True}),
    Case("power_12-welfare", "power_family_12", "welfare", "RJ eq. 11 against a brute force over bundles",
         {"objective": lambda: brute_force_welfare("power_family_12")}),
    Case("power_12-prices", "power_family_12", "prices", "RJ Props 4.1-4.2",
         {"objective": lambda: brute_force_welfare("power_family_12")}, (_prop_4_1,)),
    Case("power_queries-welfare", "power_queries", "welfare",
         "RJ §6, eq. 35: per-query costs, up to 3 queries per seller, against a brute force",
         {"objective": lambda: brute_force_welfare("power_queries")}),
    Case("power_queries-prices", "power_queries", "prices", "RJ §6: a price c_i(j) per inquiry (Prop 4.1)",
         {"objective": lambda: brute_force_welfare("power_queries")}, (_prop_4_1,)),
    Case("power_queries-vcg", "power_queries", "vcg", "RJ eqs. 18-21 with query weights (§6)",
         {"objective": lambda: brute_force_welfare("power_queries")}, (_vcg_clarke,)),
    Case("power_queries-mixed_vcg", "power_queries", "mixed_vcg", "RJ Prop 5.1 with query weights (§6)",
         {"objective": lambda: brute_force_welfare("power_queries")}, (_prop_5_1,)),
    Case("power_12-d_mixed_vcg", "power_family_12", "d_mixed_vcg",
         "RJ eqs. 32-34: the distorted allocation has no more welfare than G* (eq. 18)",
         {"objective_at_most": lambda: brute_force_welfare("power_family_12")}, (_prop_5_1,)),
]


def check_result(case: Case, result, market: SharingMarket) -> None:
    """The one checker of the catalogue: the result protocol (:func:`dm_opt.core.result.check_protocol`),
    the family's honesty rules (``tests/support/family_invariants.check_result``, where it knows the
    class), optimality of a finished exact run, and the case's expected outcome."""
    assert check_protocol(result) == [], check_protocol(result)
    assert type(result).family == "sharing"
    if not isinstance(result, (B.OrderedMatchResult, B.AssumptionChecks, WeightedMatchResult)):
        check_invariants(result, market)
    assert result.status is Termination.OPTIMAL, (case.name, result.status, result.message)
    assert result.solution_status is SolutionStatus.OPTIMAL
    result.raise_for_status()
    e = case.expect
    if "objective" in e:
        want = e["objective"]() if callable(e["objective"]) else e["objective"]
        assert abs(result.objective - want) <= TOL * max(1.0, abs(want)), (case.name, result.objective, want)
        assert result.bound - result.objective <= TOL * max(1.0, abs(want)) and result.gap <= TOL
    if "objective_at_most" in e:
        assert result.objective <= e["objective_at_most"]() + TOL
    if "edges" in e:
        assert result.edges.tolist() == e["edges"]
    if "weights" in e:
        assert result.weights.tolist() == e["weights"]
    if "stable_graphs" in e:
        assert [g.tolist() for g in result.graphs] == e["stable_graphs"]
        assert result.graphs_checked == result.graphs_total
    if "stable" in e:
        assert result.stable is e["stable"]
    if "holds" in e:
        assert result.holds is e["holds"]
    for fn in case.checks:
        fn(result, market)


def run_case(case: Case, method: str):
    """Solve ``case`` with ``method`` (a buyer method or ``auto``) through :func:`dm_opt.solve`."""
    assert case.problem in PROBLEMS[KIND]
    return dm_opt.solve(case.market(), case.problem, method)


__all__ = ["CASES", "Case", "check_result", "run_case", "brute_force_welfare", "load", "TOL"]
