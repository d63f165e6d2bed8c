"""Catalogue of named GLP instances (the files of models/glp/ and the slides' examples of the tests)
with their expected values, and the one :func:`check_result` every method of the family is run
through (in the style of cvxpy's ``solver_test_helpers``).

Expected values are derived by hand where the slides (or docs/spec.md §2) give a formula —
the two-type example (``V(q) = γ_u min(q1, q2)``, ``W° = ((1+γ_u) − 2r̄) q̄(1)``, derivation in
``test_lp.test_two_type_example``), the BBM surplus triangle ``V = max(γ_u, γ_π) TS − (γ_u−γ_π)⁺ Π*``
for the slides' merchant — and are otherwise the common value of every exact method (pieces,
KKT MILP), which the catalogue checks against each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import dm_opt
from dm_opt.core.registry import available_methods, get_backend
from dm_opt.core.result import check_protocol
from dm_opt.core.status import Termination
from dm_opt.info_design.market import InfoDesignMarket
from dm_opt.info_design.problems import METHODS, PROBLEMS
from dm_opt.info_design.results import FULL, MID, PlatformReport
from tests.support.family_invariants import check_result as check_invariants

GLP = Path(__file__).resolve().parents[2] / "models" / "glp"
FAMILY = "info_design"
#: Absolute tolerance on expected values (the values are O(1); LP tolerances are 1e-7 × scale).
TOL = 1e-7


@dataclass(frozen=True)
class Case:
    """A named instance: ``expected[problem]`` is the objective of that problem's result
    (``platform``: V(q) at the database; ``efficiency``, ``equilibrium``, ``taxes``: W°;
    ``union``: the union's value W° + r̄; ``complete``: the unconstrained-efficiency welfare).
    ``q`` optional expected efficient database; ``extra`` further per-case checks (a function of
    (problem, result))."""

    name: str
    load: object
    expected: dict
    q: tuple | None = None
    checks: tuple = field(default_factory=tuple)

    def market(self) -> InfoDesignMarket:
        return self.load()


def _file(name):
    return lambda: dm_opt.load(GLP / f"{name}.toml")


def _two_type_kink_equilibrium(problem, r):
    """γ_u = 2, r̄ = 1.2: the efficient equilibrium's price is interior to ∂V = {γ_u(θ, 1−θ)},
    θ = (1 + γ_u − r̄)/γ_u = 0.9 (test_lp.test_two_type_efficient_equilibrium_at_the_kink)."""
    if problem != "equilibrium":
        return
    eff = [p for p in r.pieces if p.efficient]
    assert len(eff) == 1
    np.testing.assert_allclose(eff[0].price, [1.8, 0.2], atol=1e-8)
    np.testing.assert_allclose(eff[0].q, [0.4, 0.4], atol=1e-9)
    assert eff[0].pattern == (FULL, MID)


def _no_trade_claim(problem, r):
    """Slides' Claim (Corollary 1): γ_u < r̄ < (1+γ_u)/2 ⇒ every equilibrium is no-trade, none efficient."""
    if problem == "equilibrium":
        assert r.complete and r.all_no_trade and len(r.pieces) >= 1
        assert not any(p.efficient for p in r.pieces)


def _merchant_weighted(problem, r):
    """Slides' Proposition (γ_u < γ_π): full disclosure is optimal and every equilibrium is efficient."""
    if problem == "equilibrium":
        assert r.complete and r.all_efficient
    if problem == "platform":
        np.testing.assert_allclose(np.asarray(r.solution.x), np.eye(3), atol=1e-9)


def _taxes_implement(problem, r):
    if problem == "taxes":
        assert r.is_equilibrium and r.no_deficit


CASES = (
    # two-type example: V(q̄) = γ_u min(q̄1, q̄2) = 0.4; W° = (2 − 1)·0.4; union W° + r̄ = 0.9
    Case("two_type", _file("two_type"),
         {"platform": 0.4, "efficiency": 0.4, "equilibrium": 0.4, "union": 0.9, "taxes": 0.4, "complete": 0.4},
         q=(0.4, 0.4), checks=(_taxes_implement,)),
    # Claim: W° = (1.9 − 2·0.93)·0.3 = 0.012 > 0 but every equilibrium is no-trade; V(q̄) = 0.9·0.3
    Case("two_type_no_trade", _file("two_type_no_trade"),
         {"platform": 0.27, "efficiency": 0.012, "equilibrium": 0.012, "union": 0.012 + 0.93, "taxes": 0.012},
         q=(0.3, 0.3), checks=(_no_trade_claim, _taxes_implement)),
    Case("two_type_kink", lambda: InfoDesignMarket([1.0, 2.0], [0.4, 0.6], 1.2, 2.0, 0.0, name="two_type_kink"),
         {"efficiency": (3.0 - 2.4) * 0.4, "equilibrium": (3.0 - 2.4) * 0.4}, q=(0.4, 0.4),
         checks=(_two_type_kink_equilibrium,)),
    # γ_u < γ_π: V = γ_π TS = 0.6·1.7; every type sells (γ_π ω > r̄): W° = 1.02 − 0.4
    Case("merchant_weighted", _file("merchant_weighted"),
         {"platform": 1.02, "efficiency": 0.62, "equilibrium": 0.62, "union": 1.02, "taxes": 0.62},
         q=(0.5, 0.3, 0.2), checks=(_merchant_weighted, _taxes_implement)),
    # BBM: V(q̄) = 2.3 − 0.8·1.6 = 1.02; W° at q° = (0.2, 0.25, 0.5): 2·2.2 − 1.8·1.5 − 0.6·0.95 = 1.13
    Case("three_type_consumer", _file("three_type_consumer"),
         {"platform": 1.02, "efficiency": 1.13, "equilibrium": 1.13, "union": 1.13 + 0.6, "taxes": 1.13,
          "complete": 1.13}, q=(0.2, 0.25, 0.5), checks=(_taxes_implement,)),
    # general payoffs: the common value of the piece LPs and the KKT MILP
    Case("second_price_general", _file("second_price_general"),
         {"platform": 2.6, "efficiency": 3.3, "equilibrium": 3.3, "union": 3.6, "taxes": 3.3, "complete": 3.65},
         q=(0.3, 0.3, 0.4), checks=(_taxes_implement,)),
    # |Ω| = 10 grid: closed form and KKT MILP agree (equilibrium enumeration refuses |Ω| = 10)
    Case("grid_10", _file("grid_10"),
         {"platform": 3.4917082172622322, "efficiency": 4.906781979807626, "union": 5.406781979807626,
          "taxes": 4.906781979807626, "complete": 4.906781979807627}),
)


def methods_for(market, problem: str) -> list:
    """``auto`` and every available method of the family that solves ``problem`` on ``market``."""
    out = ["auto"]
    for name in available_methods(FAMILY):
        b = get_backend(name, FAMILY)
        if problem in b.problems and name in METHODS[problem] and b.applies(market):
            out.append(name)
    return out


def solve(case: Case, problem: str, method: str):
    return dm_opt.solve(case.market(), problem, method=method)


def check_result(case: Case, problem: str, result, market=None) -> None:
    """The protocol, the family's honesty invariants, the expected objective and the case's checks."""
    market = market if market is not None else case.market()
    assert check_protocol(result) == [], check_protocol(result)
    assert result.family == FAMILY
    assert result.status is Termination.OPTIMAL and str(result.solution_status) == "optimal", result.message
    assert result.raise_for_status() is result
    if isinstance(result, PlatformReport):
        check_invariants((result.solution, result.welfare), market)
    else:
        check_invariants(result, market)
    want = case.expected[problem]
    assert math.isclose(float(result.objective), want, rel_tol=0, abs_tol=TOL), (problem, result.objective, want)
    if case.q is not None and problem in ("efficiency", "taxes"):
        np.testing.assert_allclose(np.asarray(result.q), case.q, atol=1e-7)
    for check in case.checks:
        check(problem, result)


def instances():
    """``(case, problem, method)`` of the catalogue: every problem with an expected value, every method."""
    out = []
    for case in CASES:
        market = case.market()
        for problem in PROBLEMS[FAMILY]:
            if problem in case.expected:
                out.extend((case, problem, m) for m in methods_for(market, problem))
    return out


__all__ = ["CASES", "Case", "check_result", "instances", "methods_for", "solve"]
