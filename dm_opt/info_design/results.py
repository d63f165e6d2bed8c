"""Results of the information-design (GLP) family.

Every public result derives from :class:`dm_opt.core.result.Result` (``family = "info_design"``)
and so answers the protocol of ``docs/spec.md`` §4: ``status``, ``solution_status``,
``objective``, ``bound``, ``gap``, ``seconds``, ``message``, ``extra``, ``to_dict()`` and
``raise_for_status()``.  The closed form (:mod:`dm_opt.info_design.bbm`) and the LPs
(:mod:`dm_opt.info_design.lp`) return the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Mapping

import numpy as np

from dm_opt.core.result import Result, Termination

#: Supply patterns of a competitive equilibrium: no consumer of a type sells, some do, all do.
ZERO, MID, FULL = 0, 1, 2
PATTERN_NAMES = {ZERO: "none", MID: "some", FULL: "all"}
FAMILY = "info_design"


@dataclass(frozen=True)
class PlatformSolution(Result):
    """Solution of ``P_q`` at one database ``q``.

    Attributes
    ----------
    status : Termination
    q : (n,)             the database
    value : float        ``V(q)``
    y : (m, n)           optimal ``y(a, ω) = x(a|ω) q(ω)``
    x : (m, n)           optimal mechanism ``x(a|ω)``; columns of types with
                         ``q(ω) = 0`` (not pinned down by ``P_q``) put mass 1 on
                         ``argmin_a u(a, ω)`` (see :func:`mechanism_from_y`)
    supergradient : (n,) one ``λ ∈ ∂V(q)`` (HiGHS dual of the record counts)
    obedience_duals : (m, m)  ``μ(a, a')`` of that dual solution (0 on the diagonal)
    lower, upper : (n,) or None   per-coordinate ``min/max λ(ω)`` over ``∂V(q)``
                         (``upper = inf`` where ``q(ω) = 0``); ``None`` unless requested
    supergradients : (k, n) or None   genuine elements of ``∂V(q)``: the
                         optimal duals attaining each bound above (distinct rows)
    consumer_utility : (n,)   ``U(ω, x)``
    bound, gap : float   proven upper bound on ``V(q)`` (= ``value`` when optimal) and
                         relative gap.  When ``status`` is ``time_limit`` or
                         ``interrupted`` and ``P_q`` itself was stopped, ``y``/``x`` are
                         the best obedient mechanism known (at worst
                         :func:`no_information`), ``bound`` is :func:`relaxation_bound`,
                         and the dual fields are NaN.  When ``P_q`` was solved but the
                         requested ranges of ``∂V(q)`` were not finished, ``value`` is
                         ``V(q)`` (``bound = value``, ``gap = 0``), the unfinished
                         coordinates of ``lower``/``upper`` are NaN and the status is
                         still ``time_limit``/``interrupted``: ``status == optimal``
                         means every requested part is present.
    message : str        what is missing when the status is not optimal ("" otherwise)
    """

    status: Termination
    q: np.ndarray
    value: float
    y: np.ndarray
    x: np.ndarray
    supergradient: np.ndarray
    obedience_duals: np.ndarray
    consumer_utility: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    supergradients: np.ndarray | None = None
    seconds: float = 0.0
    bound: float | None = None
    gap: float = 0.0
    message: str = ""

    family: ClassVar[str] = FAMILY

    def __post_init__(self):
        if self.bound is None:
            object.__setattr__(self, "bound", self.value)

    @property
    def objective(self) -> float:
        """``V(q)`` of the returned mechanism."""
        return self.value

    @property
    def unique_supergradient(self) -> bool | None:
        if self.lower is None:
            return None
        return bool(np.all(np.isfinite(self.upper)) and np.allclose(self.lower, self.upper, atol=1e-7))


@dataclass(frozen=True)
class WelfareSolution(Result):
    """``W(q) = V(q) + Σ_ω q(ω) U(ω, x)`` maximised over ``x`` solving ``P_q``
    (GLP slides, "social benefit"); ``y``, ``x`` shapes (m, n).  W(q) has no partial
    answer (a stopped computation raises), so a returned one is optimal (``objective =
    bound = value``)."""

    q: np.ndarray
    value: float           # W(q)
    platform_value: float  # V(q)
    y: np.ndarray
    x: np.ndarray
    consumer_utility: np.ndarray
    status: Termination = Termination.OPTIMAL
    seconds: float = 0.0
    message: str = ""

    family: ClassVar[str] = FAMILY

    @property
    def objective(self) -> float:
        return self.value

    @property
    def bound(self) -> float:
        return self.value


@dataclass(frozen=True)
class ValuePieces(Result):
    """The linear pieces of ``V``: ``V(q) = min_k gradients[k]·q`` on ``q ≥ 0``.

    ``gradients`` (K, n) are the vertices of ``proj_λ D`` (each has a
    full-dimensional region); ``lp_solves`` counts P_q solves used.  A
    ``status`` other than optimal (time limit, Ctrl-C) means the list may be
    incomplete: every listed gradient is still an optimal LP dual somewhere
    (an element of ``proj_λ D``), so ``V ≤ min_k gradients[k]·q`` holds, but
    not necessarily with equality.
    """

    gradients: np.ndarray
    lp_solves: int
    seconds: float
    status: Termination = Termination.OPTIMAL
    message: str = ""

    family: ClassVar[str] = FAMILY

    def _has_answer(self) -> bool:          # the answer is the list of gradients, not a number
        return len(self.gradients) > 0

    def value(self, q) -> float:
        return float(np.min(self.gradients @ np.asarray(q, float)))

@dataclass(frozen=True)
class EfficiencyResult(Result):
    """Constrained efficiency (GLP slides, Definition "constrained efficient").

    ``welfare`` is ``W° = V(q°) + Σ q°(ω)(U(ω,x°) − r̄)``; ``q`` (n,), ``x`` and
    ``y`` (m, n); ``optimal_pieces`` lists every piece index whose LP attains
    ``W°`` (within tolerance) and ``allocations`` the (q, x) of each, for ties.
    ``bound`` is a proven upper bound (equal to ``welfare`` for the exact
    methods) and ``gap`` their relative gap.
    """

    status: Termination
    method: str
    welfare: float
    bound: float
    gap: float
    q: np.ndarray
    x: np.ndarray
    y: np.ndarray
    platform_value: float
    consumer_utility: np.ndarray
    pieces: np.ndarray
    optimal_pieces: tuple
    allocations: tuple
    seconds: float
    message: str = ""
    piece_values: np.ndarray | None = None   # (K,) optimum of each planner piece LP

    family: ClassVar[str] = FAMILY

    @property
    def objective(self) -> float:
        """``W°`` of the returned allocation (re-evaluated exactly)."""
        return self.welfare

@dataclass(frozen=True)
class EquilibriumPiece(Result):
    """One family of competitive equilibria ``(p*, ζ*, q*, x*)`` (GLP Definition).

    ``pattern`` (n,) says which consumers sell: 0 none (``q = 0``), 1 some
    (``0 < q < q̄``, so ``p + U = r̄``), 2 all (``q = q̄``).  ``active`` are the
    indices (into ``pieces``) of the gradients of V spanning the price:
    ``p* ∈ conv{λ^k : k ∈ active}``, every one of them optimal at ``q*``.
    ``q``, ``zeta``, ``price`` (n,), ``x`` (m, n) are one equilibrium of the
    family (relative-interior witness).  ``welfare_min``/``welfare_max`` are
    the infimum/supremum of ``Σ(v+u)y − r̄Σq`` over the family; ``efficient``
    says whether the witness attains ``W°``; ``all_efficient`` whether every
    member does (``welfare_min ≥ W° − tol``).  ``kkt`` is the slides'
    supergradient characterisation at the witness (Proposition "constrained
    efficient iff x solves P_q and ∃ψ ∈ Ψ_q ..."), with ``Ψ_q`` the
    supergradients of the concave piece ``W_k`` of ``W`` for a gradient ``λ^k``
    optimal at ``q``: ``W_k(q') = max{Σ(v+u)y : y feasible at q', Σvy ≥ λ^k·q'}``
    is concave and equals ``W`` wherever ``λ^k ∈ ∂V``, and KKT for
    ``max W_k(q) − r̄Σq`` over ``0 ≤ q ≤ q̄`` (the sign conditions on ψ) holds iff
    ``q`` solves the planner's piece LP ``k``.  ``W = max_k W_k`` need not be
    concave, so ``kkt`` is necessary for ``efficient``; the two are reported
    separately.  ``kind`` records how the family was decided: by the cell
    enumeration (``enumeration="cells"``, the default) ``"linear"`` (one exact LP:
    every price–quantity product is linear once the pattern is pinned) or
    ``"bilinear"`` (the HiGHS branch-and-bound over the remaining products); by the
    face method (``enumeration="faces"``) the exact linear reformulation used
    (``"fixed-price"``, ``"fixed-database"``, ``"ray"``) or ``"bilinear"`` (SCIP).
    """

    pattern: tuple
    active: tuple
    kind: str
    q: np.ndarray
    zeta: np.ndarray
    x: np.ndarray
    price: np.ndarray
    welfare: float
    welfare_min: float
    welfare_max: float
    efficient: bool
    all_efficient: bool
    kkt: bool = False
    status: Termination = Termination.OPTIMAL

    family: ClassVar[str] = FAMILY

    @property
    def objective(self) -> float:
        """Welfare of the witness equilibrium."""
        return self.welfare

    @property
    def pattern_names(self) -> list:
        return [PATTERN_NAMES[s] for s in self.pattern]

    @property
    def no_trade(self) -> bool:
        return all(s == ZERO for s in self.pattern)


@dataclass(frozen=True)
class EquilibriaResult(Result):
    """All competitive equilibria of a small economy, as families.

    ``complete`` is False when some (face, pattern) combination needed a
    bilinear (price weight × database) description that is not solved exactly
    here; those combinations are listed in ``undecided`` as
    ``(pattern, active)``.  ``efficient_welfare`` is ``W°``.  ``status`` is
    ``time_limit``/``interrupted`` when the enumeration was stopped, and
    ``feasible`` when it finished with undecided combinations: the families
    listed are genuine equilibria but the list is incomplete (``complete`` is
    False and ``message`` says what is missing).
    """

    pieces: tuple
    efficient_welfare: float
    complete: bool
    undecided: tuple
    gradients: np.ndarray
    seconds: float
    status: Termination = Termination.OPTIMAL
    message: str = ""

    family: ClassVar[str] = FAMILY

    @property
    def objective(self) -> float:
        """``W°`` (constrained efficiency, exact): the benchmark every family is compared with."""
        return self.efficient_welfare

    @property
    def bound(self) -> float:
        return self.efficient_welfare

    def _has_answer(self) -> bool:          # the answer is the list of families (possibly empty)
        return bool(np.isfinite(self.efficient_welfare))

    @property
    def all_efficient(self) -> bool:
        return all(p.all_efficient for p in self.pieces)

    @property
    def all_no_trade(self) -> bool:
        return all(p.no_trade for p in self.pieces)

@dataclass(frozen=True)
class UnionResult(Result):
    """Data-union problem (GLP slides, "Formally, the data union problem is").

    ``value`` is the union's objective (participating consumers' welfare,
    ``Σ p q̄ + Σ u y + Σ (q̄ − q) r̄``); ``prices`` (n,) the per-member payments
    ``p(ω)`` (``Σ p q̄ = V(q)``); ``welfare`` = ``value − r̄`` is the
    constrained-efficiency objective of the union's allocation.  ``bound`` is a
    proven upper bound on ``value`` (= ``value`` when ``status`` is optimal;
    after a time limit or Ctrl-C, ``planner_bound + r̄``: the union's objective
    is the planner's plus ``r̄`` under extra constraints).  ``message`` says what is
    missing when the status is not optimal.
    """

    value: float
    welfare: float
    q: np.ndarray
    x: np.ndarray
    prices: np.ndarray
    platform_value: float
    seconds: float
    status: Termination = Termination.OPTIMAL
    bound: float | None = None
    gap: float = 0.0
    message: str = ""

    family: ClassVar[str] = FAMILY

    def __post_init__(self):
        if self.bound is None:
            object.__setattr__(self, "bound", self.value)

    @property
    def objective(self) -> float:
        """The union's objective (members' welfare) ``value``."""
        return self.value

@dataclass(frozen=True)
class TaxResult(Result):
    """Data taxes (GLP slides, Proposition on data taxes).

    ``taxes`` τ*(ω) = p*(ω) + U(ω, x°) − r̄ (n,), ``prices`` p* ∈ ∂V(q°),
    ``zeta`` ζ* = q°/q̄.  ``revenue`` = Σ τ* q° (no deficit iff ≥ 0);
    ``welfare`` = consumers + platform + government − r̄ = W° when the taxed
    economy implements (q°, x°); ``is_equilibrium`` records the check of every
    equilibrium condition of the taxed economy at (p*, ζ*, q°, x°).  ``status`` is
    optimal only when ``(q°, x°)`` is proven constrained-efficient and every check was
    run; otherwise ``message`` says what is missing (checks not run are False).
    """

    taxes: np.ndarray
    prices: np.ndarray
    q: np.ndarray
    x: np.ndarray
    zeta: np.ndarray
    revenue: float
    no_deficit: bool
    welfare: float
    efficient_welfare: float
    is_equilibrium: bool
    checks: Mapping[str, bool]
    status: Termination = Termination.OPTIMAL
    message: str = ""
    seconds: float = 0.0

    family: ClassVar[str] = FAMILY

    @property
    def objective(self) -> float:
        """Welfare of the taxed economy (``W°`` when every check passes)."""
        return self.welfare

    @property
    def bound(self) -> float:
        """``W°`` when it is proven (status optimal), else NaN."""
        return self.efficient_welfare if self.status is Termination.OPTIMAL else float("nan")

@dataclass(frozen=True)
class CompleteMarketResult(Result):
    """More-complete markets (GLP slides): a price ``p(a, ω)`` per (use, type).

    ``prices`` (m, n) with ``p(a,ω) = r̄ + β(ω) − u(a,ω)``; ``y`` (m, n)
    records traded per use; ``q`` (n,) = Σ_a y; ``welfare`` the
    (unconstrained) efficiency objective ``Σ (v+u) y − r̄ Σ q`` — its maximum
    over obedient ``y`` with ``Σ_a y ≤ q̄``; ``checks`` the equilibrium
    conditions verified at those prices.
    """

    prices: np.ndarray
    y: np.ndarray
    q: np.ndarray
    x: np.ndarray
    welfare: float
    platform_profit: float
    checks: Mapping[str, bool]
    status: Termination = Termination.OPTIMAL
    seconds: float = 0.0
    message: str = ""

    family: ClassVar[str] = FAMILY

    @property
    def objective(self) -> float:
        return self.welfare

    @property
    def bound(self) -> float:
        return self.welfare

    @property
    def is_equilibrium(self) -> bool:
        return all(self.checks.values())


@dataclass(frozen=True)
class PlatformReport(Result):
    """``P_q`` and ``W(q)`` together (the ``platform`` problem of :mod:`dm_opt.info_design.problems`).

    ``solution`` is the :class:`PlatformSolution`, ``welfare`` the :class:`WelfareSolution`
    (None when it was not computed: then ``status`` is not optimal and ``message`` says why);
    ``method`` the method used (``bbm`` or ``lp``); ``q`` the database.  The protocol fields are
    the solution's (``objective = V(q)``).
    """

    solution: PlatformSolution
    welfare: WelfareSolution | None
    method: str
    q: np.ndarray
    seconds: float = 0.0
    extra: Mapping = field(default_factory=dict)

    family: ClassVar[str] = FAMILY

    @property
    def status(self) -> Termination:
        return self.solution.status

    @property
    def objective(self) -> float:
        return self.solution.value

    @property
    def bound(self) -> float:
        return self.solution.bound

    @property
    def gap(self) -> float:
        return self.solution.gap

    @property
    def message(self) -> str:
        return self.solution.message


__all__ = ["PlatformSolution", "WelfareSolution", "ValuePieces", "EfficiencyResult", "EquilibriumPiece",
           "EquilibriaResult", "UnionResult", "TaxResult", "CompleteMarketResult", "PlatformReport",
           "ZERO", "MID", "FULL", "PATTERN_NAMES"]
