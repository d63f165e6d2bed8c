"""Catalogue of named AMMO instances (the paper's examples, the files of models/ammo/, the cases of
the other Gaussian tests) with their expected objective, optima and prices, and the one
:func:`check_result` every method of the family is run through (in the style of cvxpy's
``solver_test_helpers``).

Where the expected values come from:

* **closed forms** for the two-user markets of Example 1 and §3.4: ``I_i({i}) = σ²/2``,
  ``I_i({j}) = ρ²/2``, ``I_i({1,2}) = 2/(4 − ρ²)`` (unit variances and noise), so the equilibrium
  objective (Thm 1) at ``11`` is ``4(1 − v)/(4 − ρ²) + v ρ²`` and its prices (Thm 2) are
  ``v (2 − ρ²)²/(2(4 − ρ²))``;
* the **independent brute-force oracle** :mod:`tests.support.naive` (fresh dense solves per subset,
  nothing shared with dm_opt) for every other market with ``n ≤ 12``, and on the count vectors of
  Example 2 (the objective is symmetric within a community, so the optima are every profile with an
  optimal count vector);
* **pinned values** (17 significant digits, from exact enumeration, agreed by bnb) for the random
  families with ``n = 16, 18``, too large for the dense oracle.

``available_methods("gaussian")`` is run on every case and problem it supports: dense backends on
dense markets, ``community`` only on community markets.  MIP backends (``milp``, ``misocp-scip``)
take minutes on ``n ≥ 12`` on a shared machine: there they carry the ``slow`` mark.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import dm_opt
from dm_opt.core.registry import available_methods, get_backend
from dm_opt.core.result import check_protocol
from dm_opt.core.status import SolutionStatus, Termination
from dm_opt.gaussian.community import CommunityMarket
from tests.support import naive

AMMO = Path(__file__).resolve().parents[2] / "models" / "ammo"
FAMILY = "gaussian"
PROBLEMS = ("first_best", "equilibrium", "decorrelated")
#: relative tolerance on expected objectives, surpluses and prices (× the objective's scale)
RTOL = 1e-9
#: methods that run minutes per instance beyond :data:`MIP_FAST_MAX_N` users (marked slow there)
MIP_METHODS = ("milp", "misocp-scip")
MIP_FAST_MAX_N = 4
#: seconds given to each solve of the catalogue (a method must prove optimality within it)
TIME_LIMIT = 600.0


@dataclass(frozen=True)
class Expected:
    """Expected answer of one problem: ``objective``; ``optima`` every optimal profile (a frozenset
    of 0/1 tuples; ``None`` = not listed); ``prices`` at the optimum (when unique); ``surplus``."""

    objective: float
    optima: frozenset | None = None
    prices: tuple | None = None
    surplus: float | None = None


@dataclass(frozen=True)
class Case:
    """A named instance: ``load()`` builds the market, ``expected()`` maps each problem to its
    :class:`Expected` (computed lazily: the oracle runs only when the case is used)."""

    name: str
    load: Callable
    expected: Callable
    source: str = ""
    problems: tuple = PROBLEMS
    marks: tuple = field(default_factory=tuple)
    #: only these methods (besides ``auto``) apply, whatever their declared problems (e.g. the MIP
    #: backends take Gaussian-MSE markets only, not leakage oracles); ``None`` = every method
    methods: tuple | None = None

    def market(self):
        return self.load()

    @property
    def community(self) -> bool:
        return isinstance(self.market(), CommunityMarket)


# ------------------------------------------------------------------ expected values
def _profiles(n):
    return [tuple(int(x) for x in bits) for bits in itertools.product((0, 1), repeat=n)]


def _argmax(values: dict, scale: float) -> tuple[float, frozenset]:
    best = max(values.values())
    return best, frozenset(a for a, x in values.items() if x >= best - RTOL * scale)


def _thm2_prices(S, tau2, v, a, problem) -> tuple:
    """Thm 2 (Thm 6 for ``decorrelated``): ``p_i = v_i (I_i(a) − I_i(a_{−i}, 0))`` for sharers, from the
    naive oracle; the de-correlated price of a sharer is ``v_i Ĩ_i = v_i I_i(a)`` (Lemma 5)."""
    A = [i for i in range(len(a)) if a[i]]
    I = naive.leakage(S, tau2, A)
    p = np.zeros(len(a))
    for i in A:
        if problem == "decorrelated":
            p[i] = v[i] * I[i]
        else:
            p[i] = v[i] * (I[i] - naive.leakage(S, tau2, [j for j in A if j != i])[i])
    return tuple(float(x) for x in p)


def oracle_expected(S, tau2, v, problems=PROBLEMS) -> dict:
    """Expected values of a dense market by the brute-force oracle (every subset)."""
    S, tau2, v = np.asarray(S, float), np.asarray(tau2, float), np.asarray(v, float)
    n = len(v)
    scale = max(1.0, float(np.sum((1 + np.abs(v)) * np.diag(S))))
    out = {}
    for problem in problems:
        values = {a: naive.objective(S, tau2, v, [i for i in range(n) if a[i]], problem) for a in _profiles(n)}
        best, optima = _argmax(values, scale)
        a = next(iter(optima))
        prices = None
        if problem != "first_best" and len(optima) == 1:
            prices = _thm2_prices(S, tau2, v, a, problem)
        surplus = float(np.dot(1 - v, naive.leakage(S, tau2, [i for i in range(n) if a[i]])))
        if problem == "decorrelated":
            surplus = best
        out[problem] = Expected(best, optima, prices, surplus if len(optima) == 1 else None)
    return out


def two_users_expected(rho: float, v: float) -> dict:
    """Closed forms of Example 1 / §3.4 (two users, unit variances and noise, ``v1 = v2 = v``)."""
    own, other, both = 0.5, rho ** 2 / 2, 2 / (4 - rho ** 2)
    leak = {(0, 0): (0.0, 0.0), (1, 0): (own, other), (0, 1): (other, own), (1, 1): (both, both)}
    alone = {(0, 0): (0.0, 0.0), (1, 0): (0.0, other), (0, 1): (other, 0.0), (1, 1): (other, other)}
    fb = {a: (1 - v) * sum(leak[a]) for a in leak}
    eq = {a: (1 - v) * sum(leak[a]) + v * sum(alone[a]) for a in leak}
    dc = {a: sum((1 - v) * leak[a][i] for i in range(2) if a[i]) for a in leak}
    scale = max(1.0, 2 * (1 + abs(v)))
    out = {}
    for problem, values in (("first_best", fb), ("equilibrium", eq), ("decorrelated", dc)):
        best, optima = _argmax(values, scale)
        prices = surplus = None
        if len(optima) == 1:
            (a,) = optima
            surplus = fb[a] if problem != "decorrelated" else best
            if problem == "equilibrium" and a == (1, 1):
                p = v * (2 - rho ** 2) ** 2 / (2 * (4 - rho ** 2))       # Thm 2 / Example 1
                prices = (p, p)
            elif problem == "first_best":
                prices = (0.0, 0.0)
        out[problem] = Expected(best, optima, prices, surplus)
    return out


def community_counts_expected(market: CommunityMarket, problems=PROBLEMS) -> dict:
    """Expected values of a community market by the oracle on count vectors: the objective of a
    profile depends only on its sharers per community, so the canonical profile (the first
    ``m_k`` users of each community) of every count vector is evaluated with fresh dense solves."""
    S = market.cov_dense()
    tau2, v = np.asarray(market.noise_var, float), np.asarray(market.values, float)
    sizes = np.bincount(market.community, minlength=market.K)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    scale = max(1.0, float(np.sum((1 + np.abs(v)) * np.diag(S))))
    out = {}
    for problem in problems:
        values = {}
        for m in itertools.product(*(range(s + 1) for s in sizes)):
            A = [int(starts[k] + j) for k in range(market.K) for j in range(m[k])]
            values[m] = naive.objective(S, tau2, v, A, problem)
        best, counts = _argmax(values, scale)
        optima = set()
        for m in counts:
            for picks in itertools.product(*(itertools.combinations(range(int(starts[k]), int(starts[k] + sizes[k])),
                                                                    m[k]) for k in range(market.K))):
                a = [0] * market.n
                for i in itertools.chain(*picks):
                    a[i] = 1
                optima.add(tuple(a))
        out[problem] = Expected(best, frozenset(optima))
    return out


def mixture_expected(market) -> dict:
    """μ-expected objective (AMMO §5.3, Thm 5): every objective is linear in the leakage, so it is
    ``Σ_k μ_k`` times the oracle's objective on component ``k``."""
    n = market.n
    out = {}
    for problem in PROBLEMS:
        values = {}
        for a in _profiles(n):
            A = [i for i in range(n) if a[i]]
            values[a] = sum(float(mu) * naive.objective(np.asarray(c.cov), np.asarray(c.noise_var),
                                                        np.asarray(c.values), A, problem)
                            for mu, c in zip(market.probabilities, market.components))
        best, optima = _argmax(values, max(1.0, float(np.sum(1 + np.asarray(market.values)))))
        out[problem] = Expected(best, optima)
    return out


def pinned(**values) -> Callable:
    """Expected values fixed in the source: ``problem=(objective, profile string)``."""
    def expected():
        return {p: Expected(obj, frozenset([tuple(int(c) for c in prof)])) for p, (obj, prof) in values.items()}

    return expected


def _file(name):
    return lambda: dm_opt.load(AMMO / f"{name}.toml")


def _two_users(rho, v):
    return lambda: dm_opt.GaussianMarket([[1.0, rho], [rho, 1.0]], [v, v], name=f"two-users-rho{rho}-v{v}")


def _oracle_of(load):
    @functools.cache
    def expected():
        m = load()
        return oracle_expected(m.cov, m.noise_var, m.values)

    return expected


def _community_oracle_of(load):
    @functools.cache
    def expected():
        return community_counts_expected(load())

    return expected


# ------------------------------------------------------------------ the catalogue
CASES = (
    Case("example1_rho0.5", _file("example1"), functools.cache(lambda: two_users_expected(0.5, 1.0)),
         "AMMO Example 1 (Figure 1), ρ = 0.5: both share at p = (2 − ρ²)²/(2(4 − ρ²)); v = 1 makes every "
         "profile a first best"),
    *(Case(f"example1_rho{rho}", _two_users(rho, 1.0),
           functools.cache(functools.partial(two_users_expected, rho, 1.0)),
           "AMMO Example 1 at further ρ (tests/gaussian/test_market.py)") for rho in (0.1, 0.8, 0.95)),
    Case("section_3_4", _file("illustrative_3_4"), functools.cache(lambda: two_users_expected(0.9, 1.2)),
         "AMMO §3.4 (Figure 2), ρ = 0.9, v = 1.2: both share, surplus < 0, first best shares nothing"),
    *(Case(f"section_3_4_rho{rho}_v{v}", _two_users(rho, v),
           functools.cache(functools.partial(two_users_expected, rho, v)),
           "AMMO §3.4 at further (ρ, v) (tests/gaussian/test_market.py)")
      for rho, v in ((0.7, 0.5), (0.85, 1.3), (0.3, 2.0))),
    Case("three_users", _file("three_users"), _oracle_of(_file("three_users")),
         "Pal et al. Example 2 restating AMMO: the platform is indifferent between the three pairs"),
    Case("equicorrelated_n12", _file("equicorrelated_n12"), _oracle_of(_file("equicorrelated_n12")),
         "models/ammo/equicorrelated_n12.toml"),
    Case("example2", _file("example2"), _community_oracle_of(_file("example2_community")),
         "AMMO Example 2 (Figure 3), ρ = 0.1, v_h = 3, dense covariance"),
    Case("example2_community", _file("example2_community"), _community_oracle_of(_file("example2_community")),
         "AMMO Example 2 as a community market"),
    Case("mixture_example", _file("mixture_example"), functools.cache(lambda: mixture_expected(
        dm_opt.load(AMMO / "mixture_example.toml"))), "AMMO §5.3 (Thm 5 part 1), models/ammo/mixture_example.toml",
        methods=("enumerate", "bnb")),
    Case("wishart_n16_seed1", _file("wishart_n16_seed1"), pinned(
        first_best=(0.6364997484732998, "0100100001000100"), equilibrium=(4.705199126983243, "1111101111111111"),
        decorrelated=(1.3074410365533218, "0100100101001100")), "models/ammo/wishart_n16_seed1.toml"),
    Case("block_n18", _file("block_n18"), pinned(
        first_best=(0.9989634232793324, "110011110110000010"), equilibrium=(4.3959872769814705, "110111111111111011"),
        decorrelated=(1.2508066190446672, "110011110110100010")),
        "models/ammo/block_n18.toml (tests/gaussian/test_bnb.py regression)"),
)

BY_NAME = {c.name: c for c in CASES}


# ------------------------------------------------------------------ methods and the check
def methods_for(case: Case, problem: str) -> list:
    """``auto`` and every available method of the family that supports ``problem`` on ``case``."""
    out = ["auto"]
    community = case.community
    for name in available_methods(FAMILY):
        cls = get_backend(name, FAMILY)
        if problem not in cls.problems:
            continue
        if (name == "community") != community:      # community only (and alone) on community markets
            continue
        if case.methods is not None and name not in case.methods:
            continue
        out.append(name)
    return out


def instances() -> list:
    """``pytest.param(case, problem, method)`` for the whole catalogue (slow marks applied)."""
    out = []
    for case in CASES:
        n = case.market().n
        for problem in case.problems:
            for method in methods_for(case, problem):
                marks = list(case.marks)
                if method in MIP_METHODS and n > MIP_FAST_MAX_N:
                    marks.append(pytest.mark.slow)
                out.append(pytest.param(case, problem, method, marks=marks, id=f"{case.name}-{problem}-{method}"))
    return out


def solve(case: Case, problem: str, method: str):
    """The catalogue's solve: every optimum where the method can list them."""
    # auto resolves to enumeration (n <= 20) or the community search here: both list every optimum
    all_optima = method == "auto" or get_backend(method, FAMILY).supports_all_optima
    return dm_opt.solve(case.market(), problem, method, time_limit=TIME_LIMIT, all_optima=all_optima)


def check_result(case: Case, problem: str, result) -> None:
    """The result protocol (:func:`dm_opt.core.result.check_protocol`) and the exact expected values."""
    assert check_protocol(result) == [], check_protocol(result)
    assert result.family == FAMILY
    assert result.status is Termination.OPTIMAL, (result.status, result.message)
    assert result.solution_status is SolutionStatus.OPTIMAL
    exp = case.expected()[problem]
    market = case.market()
    scale = max(1.0, abs(exp.objective), float(np.sum((1 + np.abs(market.values)) * market.sigma2)))
    tol = RTOL * scale
    assert abs(result.objective - exp.objective) <= tol, (result.objective, exp.objective)
    assert result.bound >= result.objective and result.bound - result.objective <= max(tol, result.tie_tol)
    assert result.gap <= 1e-9
    assert result.surplus == result.surplus                      # finite (checked against the oracle below)
    profile = tuple(int(x) for x in result.profile)
    if exp.optima is not None:
        assert profile in exp.optima, (profile, sorted(exp.optima)[:5])
        if result.optima is not None:
            assert {tuple(int(x) for x in o) for o in result.optima} == set(exp.optima)
    if exp.prices is not None:
        np.testing.assert_allclose(result.prices, exp.prices, rtol=RTOL, atol=tol)
    assert np.all(result.prices >= -tol)                          # prices are never negative (Thm 2)
    if exp.surplus is not None:
        assert math.isclose(result.surplus, exp.surplus, rel_tol=RTOL, abs_tol=tol)
    d = result.to_dict()
    assert d["status"] == "optimal" and d["problem"] == problem


__all__ = ["CASES", "BY_NAME", "Case", "Expected", "check_result", "instances", "methods_for", "solve",
           "oracle_expected", "two_users_expected", "community_counts_expected"]


# ------------------------------------------------------------------ the extension kinds (problems.py)
def _taxes_section_3_4(market, r):
    """§3.4 market (ρ = 0.9, v = 1.2) under a uniform tax: E_t(11) = E(11) − 2t beats 10/01 and 00
    exactly until t = E(11)/2 (E(10) − t < 0 there), then nobody shares; best surplus 0 (docs of
    dm_opt.gaussian.taxes)."""
    rho, v = 0.9, 1.2
    e11 = 4 * (1 - v) / (4 - rho ** 2) + v * rho ** 2
    assert [tuple(int(x) for x in p.profile) for p in r.pieces] == [(1, 1), (0, 0)]
    assert math.isclose(r.pieces[0].hi, e11 / 2, rel_tol=1e-9) and math.isclose(r.shutdown_tax, e11 / 2, rel_tol=1e-9)
    assert math.isclose(r.pieces[0].surplus, 2 * (1 - v) * 2 / (4 - rho ** 2), rel_tol=1e-12)
    assert r.objective == 0.0 and r.bound == 0.0 and r.complete


def _pigovian_implements_first_best(market, r):
    """§6.1: Pigovian taxes implement the first best — every post-tax optimum attains its surplus."""
    fb = dm_opt.solve(market.market, "first_best", method="enumerate")
    assert r.implements_first_best and math.isclose(r.surplus_min, fb.surplus, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(r.objective, fb.surplus, rel_tol=1e-9, abs_tol=1e-12)
    assert np.all(r.taxes >= 0)


def _vcg_first_best(market, r):
    """Prop B-1: the VCG allocation is the first best at the reports (oracle) and prices are ≥ 0."""
    m = market.market
    exp = oracle_expected(m.cov, m.noise_var, m.values, ("first_best",))["first_best"]
    assert math.isclose(r.objective, exp.objective, rel_tol=1e-9, abs_tol=1e-12)
    assert tuple(int(x) for x in r.outcome.profile) in exp.optima
    assert np.all(r.outcome.prices >= -1e-12)


def _mechanism_payoff(market, r):
    """Thm B-2: platform payoff Σ I_i(a) − Σ p_i at the allocation (oracle leakage); rents ≥ 0."""
    m, out = market.market, r.outcome
    A = [i for i in range(m.n) if out.profile[i]]
    payoff = float(np.sum(naive.leakage(np.asarray(m.cov), np.asarray(m.noise_var), A)) - np.sum(out.payments))
    assert math.isclose(r.objective, payoff, rel_tol=1e-9, abs_tol=1e-12)
    assert np.all(out.rents >= -1e-9) and r.bound == r.objective


def _expected_payoff_exact(market, r):
    """Thm B-2 with discrete tables: an exact finite sum (bound = objective)."""
    assert r.outcome.method == "exact" and r.bound == r.objective and math.isfinite(r.objective)


def _competition(market, r):
    """§4: no joint action beats the first best; the slides' v₂ ≫ 1 case has equilibria below it and a
    monopoly below the first best (tests/gaussian/test_leakage_platform_instances.py)."""
    assert r.bound == r.first_best_surplus and r.objective <= r.bound + 1e-12
    assert r.outcome.equilibria and r.monopoly_surplus < r.first_best_surplus


@dataclass(frozen=True)
class ExtensionCase:
    """A problem of an extension kind (taxes, valuations, two platforms) with its checks."""

    name: str
    file: str
    problem: str
    check: Callable

    def market(self):
        return dm_opt.load(AMMO / f"{self.file}.toml")


EXTENSION_CASES = (
    ExtensionCase("taxes_section_3_4_sweep", "taxes_example", "uniform_sweep", _taxes_section_3_4),
    ExtensionCase("taxes_section_3_4_pigovian", "taxes_example", "pigovian", _pigovian_implements_first_best),
    ExtensionCase("taxes_wishart_n6_pigovian", "taxes_pigovian", "pigovian", _pigovian_implements_first_best),
    ExtensionCase("valuations_discrete_vcg", "valuations_discrete", "vcg", _vcg_first_best),
    ExtensionCase("valuations_discrete_mechanism", "valuations_discrete", "mechanism", _mechanism_payoff),
    ExtensionCase("valuations_discrete_expected", "valuations_discrete", "expected_payoff", _expected_payoff_exact),
    ExtensionCase("two_platforms_slides", "two_platforms_example", "competition", _competition),
)


def check_extension(case: ExtensionCase, result) -> None:
    """The result protocol, an optimal status, and the case's own checks."""
    assert check_protocol(result) == [], check_protocol(result)
    assert result.family == FAMILY
    assert result.status is Termination.OPTIMAL, (result.status, result.message)
    case.check(case.market(), result)


__all__ += ["EXTENSION_CASES", "ExtensionCase", "check_extension", "mixture_expected"]
