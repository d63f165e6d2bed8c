"""Exact mixed-integer formulation of the Gaussian data market (docs/spec.md §1.2), solved with HiGHS.

Units: the model is built for the *standardised* market
------------------------------------------------------------

Every user's type is divided by its prior standard deviation, ``Y_i = X_i/σ_i``:
the prior covariance becomes the correlation matrix ``C = D⁻¹ΣD⁻¹``
(``D = diag σ``), the noise variances become the *noise ratios*
``ρ_i = τ_i²/σ_i²``, posterior covariances ``Q = D⁻¹PD⁻¹`` (so ``Q_ii ∈ [0, 1]``),
leakage ``I_i = σ_i² (1 − Q_ii)`` and the own-signal term
``g_i(P_ii) = σ_i² g̃_i(Q_ii)`` with ``g̃_i(x) = x²/(ρ_i − x)``.  The objective is
divided by its scale ``S = Σ (|c_i|+|d_i|+|e_i|) σ_i² + Σ |k_i|``
(:meth:`LeakageObjective.scale`): weights ``c̃_i = c_i σ_i²/S`` (same for ``d``,
``e``), ``k̃_i = k_i/S``, so ``Σ |c̃|+|d̃|+|ẽ|+|k̃| = 1`` and the model's
objective is in units of ``S`` (``RawSolution.bound`` is mapped back).  The model
is therefore invariant to the units of ``Σ`` (``Σ → sΣ, τ² → sτ²`` gives the same
model) and to per-user rescaling; what is left of the numerics is measured by the
noise ratios ``ρ_i`` and the condition number of ``C`` — the *guaranteed range*
(:data:`RANGES`, checked up front by :func:`check_range`; outside it the backend
refuses with :class:`~dm_opt.core.errors.InstanceError` naming the field).

Model (all arrays; ``n`` users, ``Λ = C⁻¹``, ``T = diag(1/ρ)``)
------------------------------------------------------------------

For a binary ``a`` the standardised posterior covariance is
``Q(a) = (Λ + T diag a)⁻¹`` (AMMO §2.2 in posterior-precision form, docs/spec.md §1.1), i.e.
``Q (Λ + T diag a) = I`` or, multiplied by ``C``, ``Q + C Wᵀ = C`` with the *gains*
``W = Q T diag a`` (``W_ij`` is the weight of ``S_j`` in ``E[Y_i | S_A]``).

Variables (default ``posterior_form="mixed"``)

* ``a ∈ {0,1}^n`` — the sharing profile;
* ``V`` (columns ``V_i_j``): ``V_ij = Q_ij`` when ``a_j = 0`` and ``V_ij = Q_ij/φ_j``
  when ``a_j = 1``, with ``φ_j = min(ρ_j, 1)``.  For a small noise ratio a sharer's
  column is then her gain column ``W_{:,j}`` (of order 1) instead of ``Q_{:,j}``
  (of order ``ρ_j``): that is what removes every ``1/ρ`` coefficient from the model;
* ``U_ij = V_ij a_j`` — linearised exactly by McCormick because ``a_j`` is binary;
  then ``Q_ij = V_ij − (1 − φ_j) U_ij``, ``R_ij := Q_ij a_j = φ_j U_ij`` and
  ``W_ij = (φ_j/ρ_j) U_ij`` are linear;
* ``z_i`` — an upper estimate of the own-signal term ``g̃_i(Q_ii)`` of a sharer
  (Thm 2, eq. 5), only for users with ``e_i > 0`` (equilibrium).

Constraints

* ``posterior``: ``Q (I + T diag(a) C) = C``, i.e. ``Q + W C = C`` (``n²`` equalities),
  row ``(i, j)``: ``V_ij − (1 − φ_j) U_ij + Σ_k C_kj (φ_k/ρ_k) U_ik = C_ij`` — every
  coefficient is at most 1 in magnitude (``|C_kj| ≤ 1``, ``φ_k/ρ_k ≤ 1``), no ``C⁻¹``.
  The system is square and ``I + T diag(a) C`` is invertible (similar to
  ``I + T^½ diag(a) C T^½ ≻ 0``), so for a binary ``a`` its unique solution is
  ``Q = Q(a)``: the MILP is exact for every objective linear in ``Q``, ``R``.  (Adding
  ``Q_ij = Q_ji`` rows makes it overdetermined; HiGHS was measured declaring such
  consistent systems infeasible.)
  Other layouts (ablation, ``posterior_form``): ``"mixed-precision"`` — the same
  variables with ``Q Λ + W = I``; ``"precision"`` — plain variables ``P = Q``,
  ``R = Q a`` with ``Q Λ + R T = I`` (docs/spec.md §1.2 as written: coefficients ``1/ρ_j`` and
  ``Λ``); ``"covariance"`` — plain, ``Q + C T Rᵀ = C`` (``symmetric=True`` only).  Measured
  (docs/exact_solvers_milp.md, "Accuracy"): the plain layouts fail (HiGHS reports
  feasible models infeasible, "Solve error") from noise ratios ``≈ 1e-6`` or condition
  numbers ``≈ 1e8`` on, where ``"mixed"`` is still exact.
* McCormick for ``U_ij = V_ij a_j`` (plain: ``R_ij = Q_ij a_j``) with bounds
  ``V_ij ∈ [L⁰_ij, U⁰_ij]`` when ``a_j = 0`` and ``[L¹_ij, U¹_ij]`` when ``a_j = 1``::

      L¹ a_j ≤ U_ij ≤ U¹ a_j,     −U⁰ (1 − a_j) ≤ U_ij − V_ij ≤ −L⁰ (1 − a_j).

  ``a_j = 0``: ``|Q_ij| ≤ 1``; a non-sharer has ``Q_jj ≥ s_j`` (her posterior variance
  from everybody else, from a fresh state — not from ``π_j`` through ``πρ/(ρ−π)``,
  which cancels catastrophically for small ``ρ``).  ``a_j = 1``: ``|Q_ij| ≤ √(Q_ii Q_jj)
  ≤ √κ_j`` with ``κ_j = ρ_j/(1+ρ_j)`` (her own signal alone), and the gain bound
  ``|W_ij| ≤ 1/√(λ_min(C) + min ρ)`` (the estimate's variance ``W_{i,A} K W_{i,A}ᵀ`` is
  at most 1 and ``K = C_AA + diag ρ_A ⪰ (λ_min(C) + min ρ) I``); on the diagonal
  ``Q_jj ∈ [π_j, κ_j]``, ``π_j := Q_jj(1,…,1)`` (monotone leakage, Lemma 1).  Bounds
  that come out of a computation are relaxed by ``1e-9`` relative + ``1e-12`` absolute
  (:func:`_lower`), so round-off can never cut off a feasible point.
* Valid inequalities (``cuts``): ``sharer`` — ``Q_ii ≤ 1 − (1 − κ_i) a_i``;
  ``mono`` — ``I_i(a) ≥ I_i({j}) a_j`` (monotonicity, Lemma 1, ``n²`` two-term rows);
  ``dropone`` — ``Q_ii ≥ Q_ii(N∖{j})`` when ``a_j = 0``; ``modular``, ``probing`` (``bnb``'s
  bounds as rows) and ``convex`` (gradient and Woodbury bounds on ``Q_ii``), see "Attempts" below.
  (Lemma 1's submodularity is about user ``i``'s *own* marginal only; ``I_i``
  is not submodular as a set function — suppressor effects — so a
  "subadditivity" cut ``I_i(a) ≤ Σ_j I_i({j}) a_j`` is **invalid**; it cut off
  optima in our tests and is not offered.)

Objective (maximised, model units) — the weighted-leakage form of :mod:`dm_opt.gaussian.objectives`::

    Σ c̃_i (1 − Q_ii) + Σ d̃_i (a_i − R_ii) − Σ ẽ_i z_i − Σ k̃_i a_i

(``a_i I_i`` is linear: ``a_i Q_ii = R_ii``; ``Q_ii`` and ``R_ii`` are the linear
expressions ``MilpModel.diag_q`` / ``diag_r`` of the layout).  First best and de-correlated
equilibrium (Lemma 5, Thm 6) are therefore exact MILPs.

Equilibrium: tangent cuts and outer approximation
--------------------------------------------------

``g̃_i`` is convex and increasing on ``[0, ρ_i)``, so each tangent
``ℓ_t(x) = g̃(t) + g̃'(t)(x − t)`` under-estimates it.  Tangent points are not
stored as ``t`` (near ``ρ`` the difference ``ρ − t`` has no correct digits) but as
the sharer's *leave-own-out* variance ``s = t ρ/(ρ − t)`` (the posterior variance
of ``Y_i`` from the other sharers, ``s ∈ [s_i, 1]``), from which everything is
computed without cancellation::

    t = sρ/(s+ρ),   g̃(t) = s²/(s+ρ),   g̃'(t) = s(s+2ρ)/ρ²,   g̃(t) − g̃'(t) t = −s²/ρ.

The incumbents' ``s`` and the backend's own exact values come from a fresh posterior
state of :mod:`dm_opt.gaussian.kernels.posterior` (:func:`exact_terms`, :func:`model_value`) — never from
``x²/(ρ−x)``.  Two
ways to switch a tangent off for non-sharers (option ``tangent_form``):

* ``"perspective"`` (default): ``z_i ≥ g̃'(t) R_ii − (s²/ρ) a_i``
  (mixed layout: ``R_ii = φ_i U_ii``).  With
  ``a_i = 1`` this is ``z_i ≥ ℓ_t(Q_ii)``; with ``a_i = 0`` ``R_ii = 0`` and it
  reads ``z_i ≥ 0``.  No big-M, and it is the perspective of ``ℓ_t``.
* ``"bigm"`` (docs/spec.md §1.2): ``z_i ≥ ℓ_t(Q_ii) − M_it (1 − a_i)`` with
  ``M_it = max(0, ℓ_t(1))``.  *Why this M is valid*: a non-sharer's
  ``Q_ii`` is at most 1 (conditioning never increases variance) and
  ``ℓ_t`` is increasing (``g̃' ≥ 0``), so ``ℓ_t(Q_ii) − M_it ≤ 0 ≤ z_i`` — the
  cut never binds for a non-sharer; for a sharer it is the tangent.

With a finite table the model maximises over ``z_i ≥ max_t ℓ_t(Q_ii)``, an
under-estimate of ``g̃_i``, so it is a *relaxation*: its dual bound is a valid
upper bound.  The outer-approximation loop solves it, rounds ``a``, evaluates the
profile exactly (:func:`model_value`), and adds tangents at the
profile's points for every sharer.  A profile that comes back while the gap is
still open — all its tangents present (the model values it exactly up to
round-off) or, for an exact model, at all — is excluded by a no-good cut
``Σ_{i∈A}(1 − a_i) + Σ_{i∉A} a_i ≥ 1`` and its exact value kept as
``excluded_best``; each later round is a relaxation of the profiles not yet
excluded, so ``max(round bound, excluded_best)`` is a valid bound.  This also
absorbs the model's round-off: a profile the LP values above its exact value
cannot hold the gap open.  **Certificate**: ``bound`` = the smallest such bound over
the rounds, ``objective`` = exact value of the best incumbent; the loop stops when
``bound − objective ≤ tol`` (the caller's tie tolerance, in model units
``tol/S``).  HiGHS runs with ``mip_rel_gap = 0`` and ``mip_abs_gap = tol/(2S)``.

Honest status: a result is ``optimal`` only if, in the caller's units, the final
bound exceeds ``market.evaluate(objective, profile)`` by at most ``tol`` *and*
no round's bound fell more than ``tol`` below a known exact value (that would
show the LP under-valuing a profile, i.e. round-off larger than ``tol``);
otherwise the status is ``error`` with the numbers in the message.

Side constraints (:class:`~dm_opt.gaussian.constraints.SideConstraints`):
sharer counts and forced users are exact linear rows/bounds.  The budget on
payments is exact for ``decorrelated`` (``Σ v_i σ_i² (a_i − R_ii) ≤ B``,
Thm 6 prices) and a relaxation for ``equilibrium`` (``Σ v_i σ_i² z_i ≤ B`` with
``z_i`` only bounded below by tangents, while the true payment is
``v_i g_i(P_ii) ≥ v_i σ_i² z_i``).  Every incumbent is therefore checked with
:meth:`SideConstraints.feasible`; a violator gets tangents at its points and
a no-good cut so it cannot return.  Linear rows ``lb ≤ A a ≤ ub``
(:class:`~dm_opt.gaussian.constraints.LinearRows`, e.g. a ``scipy.optimize.LinearConstraint``)
are the block ``linear``, each row relaxed by its slack; the exact check then filters
incumbents the same way.  Before the model is built, :func:`infeasible_result` settles
infeasibility on the constraint rows alone and supplies a feasible starting profile.

Attempts: the backend's default ``posterior_form="auto"`` runs :func:`solve_milp_once` on
the ``"precision"`` layout first where it is safe (:data:`PRECISION_SAFE`), then on
``"mixed"``, each with the HiGHS settings of :data:`RETRY_OPTIONS`, until an attempt is
certified (:func:`solve_milp`).  The valid inequality ``cuts=(…, "modular")`` adds ``bnb``'s
root modular bound as one row (:func:`modular_cut_terms`); ``"probing"`` adds its bounds at the
root's children ``a_j = 0 / 1``, one row per user with the products ``a_j a_l`` as McCormick
columns ``w_jl`` (:func:`probing_cut_terms`, which proves them); ``"convex"`` adds gradient cuts of
the convex ``Q_ii(a)`` and Woodbury upper bounds (:func:`convex_cut_terms`).  The ``"precision"``
attempts use :data:`STRONGEST_CUTS` by default, the ``"mixed"`` ones :data:`DEFAULT_CUTS`.

Binary values are rounded with :data:`BINARY_TOL`; a value farther from 0/1
raises :class:`~dm_opt.core.errors.SolverFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from dm_opt.core.errors import InstanceError, ProblemError
from dm_opt.gaussian.constraints import SideConstraints
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.objectives import LeakageObjective

#: A MILP binary must be within this distance of 0 or 1 (HiGHS is run with
#: ``mip_feasibility_tolerance`` :data:`HIGHS_FEASIBILITY`, below it).
BINARY_TOL = 1e-6
#: Default number of tangent points per user in the initial table.
DEFAULT_TANGENTS = 12
#: Default valid inequalities (the ``"mixed"`` layouts of the ``milp`` backend, and ``misocp-scip``).
DEFAULT_CUTS = ("sharer",)
#: The strongest valid inequalities measured (docs/exact_solvers_milp.md, "Root gaps"): the default of
#: ``to_pyomo`` / ``dm-opt export`` and of the ``milp`` backend's ``"precision"`` attempts.
STRONGEST_CUTS = ("sharer", "modular", "probing", "convex")
#: HiGHS primal / MIP feasibility tolerance.  Measured (docs/exact_solvers_milp.md, "Accuracy"):
#: tighter values (1e-8 … 1e-10, the smallest HiGHS accepts) make HiGHS declare feasible models
#: infeasible, cut off optima or stop with "Solve error" at small noise ratios; the accuracy of
#: an answer comes from the exact re-evaluation and the certificate check, not from this tolerance.
HIGHS_FEASIBILITY = 1e-7
#: Further HiGHS options of the ``milp`` backend (see HIGHS_FEASIBILITY).
HIGHS_OPTIONS: dict = {}
#: Relative and absolute slack given to model bounds that come out of a linear solve.
BOUND_RTOL, BOUND_ATOL = 1e-9, 1e-12


# ------------------------------------------------------------ guaranteed range
@dataclass(frozen=True)
class Range:
    """Where a MIP backend is guaranteed (by measurement, docs/exact_solvers_milp.md "Accuracy").

    With ``ρ_i = τ_i²/σ_i²`` (noise ratios) and ``κ(C)`` the 2-norm condition number of the
    correlation matrix:

    * ``min_noise_ratio ≤ ρ_i ≤ max_noise_ratio`` for every user;
    * ``ρ_i ≥ min_noise_ratio_own`` for users whose own-signal term enters the objective
      (``e_i > 0``, e.g. equilibrium with ``v_i > 0``): the model must then resolve ``Q_ii``
      near ``ρ_i``, where ``g̃`` has slope ``~ 1/ρ²``;
    * ``κ(C) ≤ max_condition``, and ``κ(C) ≤ max_condition_small_noise`` when some
      ``ρ_i < small_noise_ratio``.
    """

    min_noise_ratio: float
    min_noise_ratio_own: float
    max_noise_ratio: float
    max_condition: float
    small_noise_ratio: float
    max_condition_small_noise: float


#: The measured ranges (see ``docs/exact_solvers_milp.md``, section "Accuracy").
RANGES = {
    "milp": Range(min_noise_ratio=1e-6, min_noise_ratio_own=1e-3, max_noise_ratio=1e2, max_condition=1e12,
                  small_noise_ratio=1e-3, max_condition_small_noise=1e8),
    "misocp-scip": Range(min_noise_ratio=1e-3, min_noise_ratio_own=1e-3, max_noise_ratio=1e1, max_condition=1e12,
                       small_noise_ratio=1e-3, max_condition_small_noise=1e12),
}
#: ``to_pyomo`` / ``dm-opt export`` build the same model as ``milp``.
RANGES["to_pyomo"] = RANGES["export"] = RANGES["milp"]


def correlation_and_ratios(market: GaussianMarket) -> tuple[np.ndarray, np.ndarray]:
    """``(C, ρ)``: correlation matrix ``D⁻¹ΣD⁻¹`` (unit diagonal, symmetric) and noise ratios ``τ²/σ²``."""
    s2 = market.sigma2
    sig = np.sqrt(s2)
    C = (market.cov / sig[:, None]) / sig[None, :]
    C = 0.5 * C + 0.5 * C.T
    np.fill_diagonal(C, 1.0)
    return C, market.noise_var / s2


def condition_number(C: np.ndarray) -> float:
    """2-norm condition number of the SPD matrix ``C`` (``inf`` when numerically singular)."""
    w = np.linalg.eigvalsh(C)
    return float(w[-1] / w[0]) if w[0] > 0 else float("inf")


def check_range(market: GaussianMarket, objective: LeakageObjective, method: str) -> None:
    """Refuse an instance outside ``method``'s guaranteed range (:data:`RANGES`).

    Raises :class:`~dm_opt.core.errors.InstanceError` naming the field and the ratio, e.g.
    ``noise_var[0]: τ²/Σ_00 = 1e-08 is below 1e-06, the smallest noise ratio method 'milp'
    solves reliably; use method='bnb' or 'enumerate'``.
    """
    lim = RANGES[method]
    C, rho = correlation_and_ratios(market)
    hint = "use method='bnb' or 'enumerate'"
    own = np.asarray(objective.e) > 0
    for i in range(market.n):
        r = float(rho[i])
        if own[i] and r < lim.min_noise_ratio_own:
            raise InstanceError(
                f"noise_var[{i}]",
                f"τ²/Σ_{i}{i} = {r:.3g} is below {lim.min_noise_ratio_own:g}, the smallest noise ratio method "
                f"'{method}' solves reliably for a user whose own-signal term is in the objective "
                f"(e[{i}] = {float(objective.e[i]):.3g} > 0); {hint}")
        if r < lim.min_noise_ratio:
            raise InstanceError(
                f"noise_var[{i}]",
                f"τ²/Σ_{i}{i} = {r:.3g} is below {lim.min_noise_ratio:g}, the smallest noise ratio method "
                f"'{method}' solves reliably; {hint}")
        if r > lim.max_noise_ratio:
            raise InstanceError(
                f"noise_var[{i}]",
                f"τ²/Σ_{i}{i} = {r:.3g} is above {lim.max_noise_ratio:g}, the largest noise ratio method "
                f"'{method}' solves reliably; {hint}")
    cond = condition_number(C)
    small = bool(np.any(rho < lim.small_noise_ratio))
    cap = lim.max_condition_small_noise if small else lim.max_condition
    if not cond <= cap:
        because = (f" when a noise ratio τ²/Σ_ii is below {lim.small_noise_ratio:g} (min τ²/Σ_ii = "
                   f"{float(np.min(rho)):.3g})" if small and cap < lim.max_condition else "")
        raise InstanceError(
            "cov",
            f"the correlation matrix D⁻¹ΣD⁻¹ (D = diag √Σ_ii) has condition number {cond:.3g}, above "
            f"{cap:g}, the largest method '{method}' solves reliably{because}; {hint}")


# ------------------------------------------------------------ standardisation
@dataclass(frozen=True)
class Standardised:
    """The market and objective in model units (module docstring, "Units")."""

    corr: np.ndarray                 # C = D⁻¹ΣD⁻¹
    rho: np.ndarray                  # τ²/σ²
    sigma2: np.ndarray               # σ² (original units)
    scale: float                     # S: one model unit of objective in original units
    objective: LeakageObjective      # weights c̃, d̃, ẽ, k̃
    values: np.ndarray               # v (for budgets)


def standardise(market: GaussianMarket, objective: LeakageObjective) -> Standardised:
    C, rho = correlation_and_ratios(market)
    s2 = market.sigma2
    top = float(np.max(s2))
    w = np.abs(objective.c) + np.abs(objective.d) + np.abs(objective.e)
    rel = float(np.sum(w * (s2 / top)) + np.sum(np.abs(objective.k)) / top)     # S / top, no overflow
    if rel == 0.0:          # every weight is zero: the objective is identically 0
        rel, top = 1.0, 1.0
    scale = rel * top
    if not np.isfinite(scale):
        raise InstanceError("cov", f"the objective's scale Σ(|c|+|d|+|e|)σ² + Σ|k| overflows ({rel:g} × {top:g})")
    r = (s2 / top) / rel                                                         # σ_i² / S
    obj = LeakageObjective(objective.name, objective.c * r, objective.d * r, objective.e * r,
                           (objective.k / top) / rel)
    return Standardised(C, rho, s2.copy(), scale, obj, np.asarray(market.values, float))


def exact_terms(C: np.ndarray, rho: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x, s)`` in standardised units from a fresh posterior state (:mod:`dm_opt.gaussian.kernels.posterior`).

    ``x_i = Q_ii(a)`` (a sharer's at her own scale ``ρ_i``, not as ``1 − leakage``) and, for a
    sharer, her leave-own-out variance ``s_i`` (the
    posterior variance of ``Y_i`` from the other sharers; ``nan`` for non-sharers), both
    without a cancelling difference; the own gain is then ``s²/(s+ρ)``.
    """
    from dm_opt.gaussian.kernels import posterior

    M, h, shared = posterior.fresh_state(np.ascontiguousarray(C, dtype=float),
                                         np.ascontiguousarray(rho, dtype=float),
                                         np.ascontiguousarray(a, dtype=np.int8))
    x = np.diag(M).copy()
    s = np.full(C.shape[0], np.nan)
    s[shared] = rho[shared] * x[shared] / h[shared]
    return x, s


def own_gain_from_loo(s, rho):
    """``g̃ = s²/(s+ρ)``: a sharer's own-signal gain from her leave-own-out variance ``s``."""
    return s * s / (s + rho)


def model_value(std: Standardised, a: np.ndarray) -> float:
    """Exact objective at ``a`` in model units (fresh state of :mod:`dm_opt.gaussian.kernels.posterior`,
    no ``x²/(ρ−x)``)."""
    from dm_opt.gaussian.kernels import posterior

    o = std.objective
    f = np.ascontiguousarray
    return float(posterior.fresh_objective(f(std.corr, dtype=float), f(std.rho, dtype=float), f(o.c), f(o.d),
                                           f(o.e), f(o.k), f(a, dtype=np.int8)))


def _lower(v):
    """A value slightly below ``v`` (≥ 0): slack for bounds that come out of a linear solve."""
    return np.maximum(0.0, v - BOUND_RTOL * np.abs(v) - BOUND_ATOL)


def tangent_coefficients(s, rho):
    """``(t, g̃', s²/ρ)`` of the tangent of ``g̃`` at the point with leave-own-out variance ``s``.

    The tangent is ``ℓ(x) = g̃'·x − s²/ρ`` (``g̃(t) − g̃'(t)·t = −s²/ρ``), all without ``ρ − t``.
    """
    s = np.asarray(s, dtype=float)
    return s * rho / (s + rho), s * (s + 2.0 * rho) / (rho * rho), s * s / rho


# --------------------------------------------------------------------- model
@dataclass
class RowBlock:
    """A named block of rows (for Pyomo component names and documentation)."""

    name: str
    start: int
    stop: int
    index: list            # one index tuple per row
    doc: str


@dataclass
class MilpModel:
    """The MILP of docs/spec.md §1.2 as arrays (maximisation), in model units (module docstring).

    Columns: ``a`` at ``col_a``; the posterior block at ``col_P[i, j]`` and its products with
    ``a_j`` at ``col_R[i, j]`` — ``Q_ij`` and ``R_ij = Q_ij a_j`` in the ``plain`` layout (``col_P``
    equal for ``(i,j)`` and ``(j,i)`` when symmetric), ``V_ij`` and ``U_ij = V_ij a_j`` in the
    ``mixed`` layout; ``z`` at ``col_z[i]`` (−1 where absent).  ``diag_q[i]`` / ``diag_r[i]`` are
    ``(columns, coefficients)`` of the linear expressions of ``Q_ii`` and ``R_ii = a_i Q_ii``.
    Rows ``row_lo ≤ A x ≤ row_hi`` with ``A`` in CSR; objective ``cost · x + offset``; one unit
    of it is ``std.scale`` units of the caller's objective.
    """

    n: int
    cost: np.ndarray
    offset: float
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_a: np.ndarray
    col_P: np.ndarray
    col_R: np.ndarray
    col_z: np.ndarray
    col_names: list
    blocks: list
    tangents: list                   # per user: leave-own-out variances s of the tangent points
    pi: np.ndarray                   # Q_ii(1,...,1), relaxed
    s_lo: np.ndarray                 # Q_ii(N∖{i}) = smallest leave-own-out variance, relaxed
    kappa: np.ndarray                # largest sharer Q_ii
    tangent_form: str
    std: Standardised
    layout: str                      # "plain" (Q, R) or "mixed" (V, U)
    diag_q: list
    diag_r: list
    phi: np.ndarray                  # mixed layout: V_ij = Q_ij/φ_j for a sharer j (plain: φ = 1)
    notes: list = field(default_factory=list)
    col_w: np.ndarray | None = None  # cut "probing": column of w_jl = a_j a_l (symmetric, −1 where absent)

    @property
    def num_col(self) -> int:
        return self.cost.size

    @property
    def scale(self) -> float:
        return self.std.scale

    def point(self, profile: np.ndarray) -> np.ndarray:
        """The model's variable vector at ``profile`` (a feasible start for HiGHS)."""
        from dm_opt.gaussian.kernels import posterior

        a = np.asarray(profile, dtype=np.int8)
        C, rho = self.std.corr, self.std.rho
        Q = posterior.posterior_cov(C, rho, a)
        sh = a == 1
        if self.layout == "mixed":
            V = Q.copy()
            A = np.flatnonzero(sh)
            if A.size:      # V_{:,A} = Q_{:,A}/φ_A = W_{:,A} ρ_A/φ_A, gains W by a solve (no division by ρ)
                W = np.linalg.solve(C[np.ix_(A, A)] + np.diag(rho[A]), C[A, :]).T
                V[:, A] = W * (rho[A] / self.phi[A])[None, :]
        else:
            V = Q
        x = np.zeros(self.num_col)
        x[self.col_a] = a
        x[self.col_P.ravel()] = V.ravel()
        x[self.col_R.ravel()] = (V * a[None, :]).ravel()
        if self.col_w is not None:
            has_w = self.col_w >= 0
            x[self.col_w[has_w]] = np.outer(a, a)[has_w]
        has_z = self.col_z >= 0
        if has_z.any():
            _, s = exact_terms(C, rho, a)
            z = np.where(sh, own_gain_from_loo(np.where(sh, s, 1.0), rho), 0.0)
            x[self.col_z[has_z]] = z[has_z]
        return x


def _tangent_rows(model: MilpModel, i, s_pts):
    """Rows (cols, vals, lower) of tangent cuts for user ``i`` at leave-own-out variances ``s_pts``."""
    _, dg, c0 = tangent_coefficients(s_pts, model.std.rho[i])
    zc, ac = int(model.col_z[i]), int(model.col_a[i])
    rows = []
    for dgt, c0t in zip(dg, c0, strict=True):
        if model.tangent_form == "perspective":
            # z − g̃'(t) R_ii + (s²/ρ) a_i ≥ 0
            cr, vr = model.diag_r[i]
            rows.append(([zc, *cr, ac], [1.0, *(-float(dgt) * np.asarray(vr)), float(c0t)], 0.0))
        else:
            M = max(0.0, float(dgt - c0t))              # ℓ_t(1): largest value on a non-sharer's Q_ii ≤ 1
            # z − g̃'(t) Q_ii − M a_i ≥ −s²/ρ − M
            cq, vq = model.diag_q[i]
            rows.append(([zc, *cq, ac], [1.0, *(-float(dgt) * np.asarray(vq)), -M], -float(c0t) - M))
    return rows


def _stack_rows(rows):
    """CSR pieces (starts, index, value) and lower bounds of a list of rows."""
    starts = np.zeros(len(rows) + 1, dtype=np.int64)
    idx, val, lo = [], [], []
    for r, (c, v, l) in enumerate(rows):
        starts[r + 1] = starts[r] + len(c)
        idx.extend(c)
        val.extend(v)
        lo.append(l)
    return starts, np.asarray(idx, dtype=np.int32), np.asarray(val, dtype=float), np.asarray(lo, dtype=float)


def _leave_one_out_diagonals(C, rho):
    """``D[i, j] = Q_ii(N∖{j})`` (a fresh state per j)."""
    n = C.shape[0]
    D = np.empty((n, n))
    for j in range(n):
        a = np.ones(n, dtype=np.int8)
        a[j] = 0
        D[:, j], _ = exact_terms(C, rho, a)
    return D


#: Valid inequalities :func:`build_model` knows (``cuts=``).
CUTS = ("sharer", "mono", "dropone", "modular", "probing", "convex")
#: Relaxed profiles ``t·1`` at which the ``convex`` cut takes gradients of ``Q_ii`` (:func:`convex_points`).
CONVEX_POINTS = (1.0, 0.75, 0.5, 0.25, 0.0)


def modular_cut_terms(market: GaussianMarket, objective: LeakageObjective):
    """``(C0, s, α)`` (caller's units) with ``f(a) ≤ C0 + Σ_j [a_j s_j − (1 − a_j) α_j]`` for every
    profile ``a``: ``bnb``'s modular (Woodbury) bound at the root node
    (:func:`dm_opt.gaussian.kernels.bnb.modular_bound`, all users free), written per user.

    Its proof bounds each completion ``A`` term by term — a ``c_i I_i`` term (or a fixed-in
    sharer's concave term) loses at least ``Σ_{j∉A} α_ij`` from its value at the top completion,
    one nondecreasing at the bottom completion gains at most what ``Σ_{j∈A} β_ij`` allows, and a
    sharer's own terms are at most ``_share_max`` — so the per-completion inequality holds, and
    its maximum over ``a`` is the kernel's number (checked here: the cut is dropped if the two
    disagree beyond round-off).  Returns ``None`` if they disagree.
    """
    from dm_opt.gaussian.kernels.bnb import _share_max, modular_bound
    from dm_opt.gaussian.kernels.posterior import fresh_state, own_gain

    n = market.n
    S = np.ascontiguousarray(market.cov, dtype=float)
    t2 = np.ascontiguousarray(market.noise_var, dtype=float)
    s2 = np.ascontiguousarray(market.sigma2, dtype=float)
    c, d, e, k = (np.ascontiguousarray(x, dtype=float) for x in (objective.c, objective.d, objective.e, objective.k))
    Mlo, hlo, _ = fresh_state(S, t2, np.zeros(n, np.int8))
    Mhi, hhi, _ = fresh_state(S, t2, np.ones(n, np.int8))
    xlo, xhi = np.diag(Mlo).copy(), np.diag(Mhi).copy()
    C0 = float(np.sum(np.where(c > 0, c * (s2 - xhi), c * (s2 - xlo))))
    s_hi = np.where(c > 0, c, 0.0)
    s_lo = np.where(c > 0, 0.0, -c)
    r = np.abs(Mlo).sum(axis=1)
    sb, al = np.zeros(n), np.zeros(n)
    for j in range(n):
        aj = bj = 0.0
        for i in range(n):
            if i == j:
                if c[j] > 0:
                    aj += c[j] * own_gain(xhi[j], hhi[j])
                elif c[j] < 0:
                    bj -= c[j] * Mlo[j, j] ** 2 / (t2[j] + r[j])
                continue
            if s_hi[i] > 0:
                aj += s_hi[i] * Mhi[j, i] ** 2 / t2[j]
            if s_lo[i] > 0:
                bj += s_lo[i] * Mlo[j, i] ** 2 / (t2[j] + r[j])
        sx = xlo[j] + t2[j]
        sj = _share_max(d[j], e[j], k[j], s2[j], t2[j], xhi[j], hhi[j], xlo[j] * t2[j] / sx, t2[j] ** 2 / sx)
        sb[j], al[j] = sj - bj, aj
    total = C0 + float(np.sum(np.maximum(sb, -al)))
    ref = float(modular_bound(np.zeros(n, np.int8), Mlo, Mhi, xlo, hlo, xhi, hhi, s2, t2, c, d, e, k,
                              np.empty(3 * n)))
    scale = float(np.sum((np.abs(c) + np.abs(d) + np.abs(e)) * s2 + np.abs(k)))
    if not abs(total - ref) <= 1e-9 * max(scale, 1e-300):
        return None
    return C0, sb, al


def probing_cut_terms(market: GaussianMarket, objective: LeakageObjective) -> tuple[np.ndarray, np.ndarray]:
    """``(K, D)`` of shapes (2, n) and (2, n, n), ``D[b, j, j] = 0``, caller's units: for every user ``j``,
    ``b ∈ {0, 1}`` and every profile ``a`` with ``a_j = b``, or None where these numbers overflow (a
    market at the edge of the covariance and value ranges: the cut is then left out, which only
    weakens the relaxation),
    ``f(a) ≤ K[b, j] + Σ_{l≠j} D[b, j, l] a_l`` — ``bnb``'s modular (Woodbury) bound at the root's
    child ``a_j = b`` (:func:`dm_opt.gaussian.kernels.bnb.modular_parts` at the node that fixes ``j``
    in or out and leaves everybody else free), kept as the per-user linear function it is before
    its maximum over the free users is taken.

    *Why it is valid*: ``modular_parts`` returns ``C`` and ``v_in``, ``v_out`` with
    ``f(a) ≤ C + Σ_{l free} (v_in[l] if a_l else v_out[l])`` for every completion of the node
    (its docstring proves the bound term by term); with ``K = C + Σ v_out`` and
    ``D = v_in − v_out`` that is the affine form above.  The two children cover every profile, so
    for a 0/1 ``a``: ``f(a) ≤ (1 − a_j)(K⁰_j + D⁰_j·a) + a_j (K¹_j + D¹_j·a)``, which
    :func:`build_model` linearises exactly with ``w_jl = a_j a_l`` (cut ``"probing"``).
    The child states are fresh (:func:`~dm_opt.gaussian.kernels.posterior.fresh_state`).
    """
    from dm_opt.gaussian.kernels.bnb import IN, OUT, modular_parts
    from dm_opt.gaussian.kernels.posterior import fresh_state

    n = market.n
    S = np.ascontiguousarray(market.cov, dtype=float)
    t2 = np.ascontiguousarray(market.noise_var, dtype=float)
    s2 = np.ascontiguousarray(market.sigma2, dtype=float)
    c, d, e, k = (np.ascontiguousarray(x, dtype=float) for x in (objective.c, objective.d, objective.e, objective.k))
    K = np.zeros((2, n))
    D = np.zeros((2, n, n))
    work, v_out, v_in = np.empty(3 * n), np.empty(n), np.empty(n)
    for j in range(n):
        for b, code in ((0, OUT), (1, IN)):
            state = np.zeros(n, dtype=np.int8)
            state[j] = code
            Mlo, hlo, _ = fresh_state(S, t2, (state == IN).astype(np.int8))
            Mhi, hhi, _ = fresh_state(S, t2, (state != OUT).astype(np.int8))
            v_out[:] = 0.0
            v_in[:] = 0.0
            C = float(modular_parts(state, Mlo, Mhi, np.diag(Mlo).copy(), hlo, np.diag(Mhi).copy(), hhi,
                                    s2, t2, c, d, e, k, work, v_out, v_in))
            v_out[j] = v_in[j] = 0.0
            K[b, j] = C + float(np.sum(v_out))
            D[b, j] = v_in - v_out
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(D[1] - D[0]))):
        return None
    return K, D


def convex_points(objective: LeakageObjective, n: int) -> np.ndarray:
    """Relaxed profiles (p, n) where the ``convex`` cut takes gradients of ``Q_ii``: ``t·1`` for ``t`` in
    :data:`CONVEX_POINTS`, and three points leaning towards the users whose net weight on their own
    leakage ``c_i + d_i − e_i`` is positive (``1[w > 0]``, ``0.25 + 0.5·1[w > 0]``, ``0.25 + 0.75·1[w > 0]``:
    where LP solutions of the first best sit; measured, docs/exact_solvers_milp.md "Root gaps")."""
    pos = (np.asarray(objective.c) + np.asarray(objective.d) - np.asarray(objective.e) > 0).astype(float)
    pts = [np.full(n, float(t)) for t in CONVEX_POINTS] + [pos, 0.25 + 0.5 * pos, 0.25 + 0.75 * pos]
    return np.array(pts)


def convex_cut_terms(C: np.ndarray, rho: np.ndarray, points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user linear bounds on ``Q_ii(a)`` (standardised), valid at every 0/1 profile ``a``.

    ``points`` (p, n): relaxed profiles ``ā ∈ [0, 1]ⁿ``.  Returns ``(G, g0, B)``: ``G`` (p, n, n) and
    ``g0`` (p, n) with ``Q_ii(a) ≥ g0[q, i] − Σ_j G[q, i, j] a_j`` for each point ``q``, and ``B`` (n, n)
    with ``Q_ii(a) ≤ 1 − Σ_j B[i, j] a_j``.

    *Why*: ``Q(a) = (Λ + T diag a)⁻¹`` is operator convex in the relaxed ``a ∈ [0, 1]ⁿ`` (matrix
    inversion is operator convex on positive definite matrices, the argument is affine in ``a``), so
    ``Q_ii`` lies above its tangent at any relaxed point ``ā``: ``∂Q_ii/∂a_j = −Q_ij(ā)²/ρ_j``.
    ``Q(ā)`` is the posterior with the signals of the users ``ā_j > 0`` observed at noise ratios
    ``ρ_j/ā_j``, computed from a fresh state (:mod:`dm_opt.gaussian.kernels.posterior`).
    The upper bound is ``bnb``'s Woodbury step from the empty set
    (:func:`dm_opt.gaussian.kernels.bnb.modular_parts`): adding a set ``A`` lowers ``Q_ii`` by at
    least ``Σ_{j∈A} C_ij²/(ρ_j + r_j)``, ``r_j = Σ_l |C_jl|`` (Gershgorin).  Both sides are relaxed
    by ``BOUND_RTOL`` times the magnitudes of their terms plus ``BOUND_ATOL``.
    """
    from dm_opt.gaussian.kernels.posterior import fresh_state

    n = C.shape[0]
    Cc = np.ascontiguousarray(C, dtype=float)
    points = np.clip(np.asarray(points, dtype=float).reshape(-1, n), 0.0, 1.0)
    G = np.zeros((points.shape[0], n, n))
    g0 = np.zeros((points.shape[0], n))
    for q, at in enumerate(points):
        on = at > 0
        noise = np.where(on, rho / np.where(on, at, 1.0), rho)
        Mt, _, _ = fresh_state(Cc, np.ascontiguousarray(noise), on.astype(np.int8))
        Gq = Mt * Mt / rho[None, :]                      # only squares of M enter (M = Q up to signs)
        x = np.diag(Mt)
        G[q] = Gq
        # Q_ii(a) ≥ x_i − Σ_j G_ij (a_j − ā_j) = (x_i + Σ_j G_ij ā_j) − Σ_j G_ij a_j
        ga = Gq @ at
        g0[q] = x + ga - BOUND_RTOL * (x + ga + Gq.sum(axis=1)) - BOUND_ATOL
    r = np.abs(Cc).sum(axis=1)
    B = (Cc * Cc / (rho + r)[None, :]) * (1.0 - BOUND_RTOL)
    return G, g0, B


#: ``posterior_form`` values: the variable layout and the form of the posterior equations.
POSTERIOR_FORMS = ("mixed", "mixed-precision", "precision", "covariance")


def build_model(market: GaussianMarket, objective, constraints: SideConstraints | None = None, *,
                n_tangents: int = DEFAULT_TANGENTS, symmetric: bool = True,
                cuts=DEFAULT_CUTS, tangent_form: str = "perspective",
                posterior_form: str = "mixed") -> MilpModel:
    """Assemble the MILP of docs/spec.md §1.2 (model units) from arrays (no Python loops over scalar expressions).

    ``objective`` is a :class:`~dm_opt.gaussian.objectives.LeakageObjective`; ``e`` must be ≥ 0
    (the own-signal term is only under-estimated by tangents).  ``constraints`` are the side
    constraints (budget only for named problems with prices).  The guaranteed range is not
    checked here (:func:`check_range` is, by every entry point).  ``symmetric`` applies to the
    ``plain`` layouts (``precision``, ``covariance``).
    """
    if not isinstance(market, GaussianMarket):
        raise ProblemError(f"MILP backend is Gaussian-MSE-only (GaussianMarket); got {type(market).__name__}")
    if np.any(objective.e < 0):
        i = int(np.flatnonzero(objective.e < 0)[0])
        raise ProblemError(f"MILP backend needs e >= 0 in the objective (own-signal term −e·g is "
                           f"under-estimated by tangents); e[{i}] = {objective.e[i]:g}. Use method='enumerate'")
    if posterior_form not in POSTERIOR_FORMS:
        raise ProblemError(f"posterior_form must be one of {', '.join(map(repr, POSTERIOR_FORMS))}, "
                           f"got {posterior_form!r}")
    if posterior_form == "covariance" and not symmetric:
        raise ProblemError("posterior_form='covariance' needs symmetric=True (it uses P_kj = P_jk)")
    if tangent_form not in ("perspective", "bigm"):
        raise ProblemError(f"tangent_form must be 'perspective' or 'bigm', got {tangent_form!r}")
    unknown = set(cuts) - set(CUTS)
    if unknown:
        raise ProblemError(f"unknown cuts {sorted(unknown)}; choose from {', '.join(CUTS)}")
    n_tangents = int(n_tangents)
    if n_tangents < 1:
        raise ProblemError(f"n_tangents must be >= 1, got {n_tangents}")
    mixed = posterior_form.startswith("mixed")
    if mixed:
        symmetric = False
    std = standardise(market, objective)
    n = market.n
    C, rho = std.corr, std.rho
    # everybody shares: Q_ii lower bound π (monotone) and each user's smallest leave-own-out variance
    x_all, s_all = exact_terms(C, rho, np.ones(n, dtype=np.int8))
    pi = _lower(x_all)
    s_lo = _lower(s_all)                    # a non-sharer's Q_ii is at least this
    kappa = rho / (1.0 + rho) * (1.0 + 1e-12)
    obj = std.objective

    budget = constraints.budget if constraints is not None else None
    problem = objective.name
    need_z = obj.e > 0
    if budget is not None and problem == "equilibrium":
        need_z = need_z | (std.values > 0)

    # ---- columns
    col_a = np.arange(n)
    nxt = n
    col_P = np.empty((n, n), dtype=np.int64)
    if symmetric:
        iu, ju = np.triu_indices(n)
        col_P[iu, ju] = nxt + np.arange(iu.size)
        col_P[ju, iu] = col_P[iu, ju]
        nxt += iu.size
        P_pairs = (iu, ju)
    else:
        col_P[:] = nxt + np.arange(n * n).reshape(n, n)
        nxt += n * n
        P_pairs = np.unravel_index(np.arange(n * n), (n, n))
    col_R = nxt + np.arange(n * n).reshape(n, n)
    nxt += n * n
    col_z = np.full(n, -1, dtype=np.int64)
    zi = np.flatnonzero(need_z)
    col_z[zi] = nxt + np.arange(zi.size)
    nxt += zi.size
    # cut "probing": w_jl = a_j a_l (j < l) for the pairs whose product enters a probing row
    col_w = np.full((n, n), -1, dtype=np.int64)
    probe = None
    if "probing" in cuts:
        with np.errstate(over="ignore", invalid="ignore"):
            probe = probing_cut_terms(market, objective)
    if probe is not None:
        probe_K, probe_D = probe
        gamma = probe_D[1] - probe_D[0]              # coefficient of a_j a_l in row j
        np.fill_diagonal(gamma, 0.0)
        wi, wj = np.nonzero(np.triu((gamma != 0.0) | (gamma.T != 0.0), 1))
        col_w[wi, wj] = nxt + np.arange(wi.size)
        col_w[wj, wi] = col_w[wi, wj]
        nxt += wi.size
    ncol = nxt
    di = np.arange(n)

    # bounds of the posterior block when a_j = 0 (L0, U0: Q_ij) and a_j = 1 (L1, U1)
    U0 = np.ones((n, n))
    L0 = -U0.copy()
    L0[di, di] = s_lo
    phi = np.minimum(rho, 1.0) if mixed else np.ones(n)
    if mixed:
        # a_j = 1: V_ij = Q_ij/φ_j = W_ij ρ_j/φ_j (W_ij: the gain of S_j in E[Y_i | S_A]).
        # Leakage W_{i,A} K W_{i,A}ᵀ ≤ 1 with λ_min(K) ≥ λ_min(C) + min ρ, and |Q_ij| ≤ √(Q_ii κ_j).
        lam = np.linalg.eigvalsh(C)
        lam_min = max(float(lam[0]) - 10 * n * np.finfo(float).eps * float(lam[-1]), 0.0) + float(np.min(rho))
        r_phi = rho / phi                                         # 1 (small noise) or ρ (large noise)
        bw = np.minimum(r_phi / np.sqrt(lam_min), np.sqrt(kappa) / phi) * (1.0 + 1e-9)
        U1 = np.broadcast_to(bw[None, :], (n, n)).copy()
        L1 = -U1.copy()
        U1[di, di] = r_phi / (1.0 + rho) * (1.0 + 1e-12)         # Q_jj/φ_j ≤ κ_j/φ_j
        L1[di, di] = _lower(x_all / phi)                          # ≥ π_j/φ_j
        # Q_ii = V_ii − (1 − φ_i) U_ii,  R_ii = a_i Q_ii = φ_i U_ii
        diag_q = [([int(col_P[i, i]), int(col_R[i, i])], [1.0, -(1.0 - phi[i])]) for i in range(n)]
        diag_r = [([int(col_R[i, i])], [float(phi[i])]) for i in range(n)]
    else:
        U1 = np.broadcast_to(np.sqrt(kappa)[None, :], (n, n)).copy()   # |Q_ij| ≤ √(Q_ii Q_jj) ≤ √κ_j
        L1 = -U1.copy()
        U1[di, di] = kappa
        L1[di, di] = pi
        diag_q = [([int(col_P[i, i])], [1.0]) for i in range(n)]
        diag_r = [([int(col_R[i, i])], [1.0]) for i in range(n)]
    col_lo = np.zeros(ncol)
    col_hi = np.zeros(ncol)
    col_hi[col_a] = 1.0
    pI, pJ = P_pairs
    col_lo[col_P[pI, pJ]] = np.minimum(L0[pI, pJ], L1[pI, pJ]) if mixed else np.where(pI == pJ, pi[pI], -1.0)
    col_hi[col_P[pI, pJ]] = np.maximum(U0[pI, pJ], U1[pI, pJ]) if mixed else 1.0
    col_lo[col_R] = np.minimum(L1, 0.0)
    col_hi[col_R] = np.maximum(U1, 0.0)
    col_lo[col_z[zi]] = 0.0
    col_hi[col_z[zi]] = np.inf
    col_hi[col_w[col_w >= 0]] = 1.0
    integer = np.zeros(ncol, dtype=np.int8)
    integer[col_a] = 1
    if constraints is not None:
        col_lo[col_a[list(constraints.force_in)]] = 1.0
        col_hi[col_a[list(constraints.force_out)]] = 0.0

    # ---- objective  Σ c̃(1−Q_ii) + Σ d̃(a − R_ii) − Σ ẽ z − Σ k̃ a
    c, d, e, k = obj.c, obj.d, obj.e, obj.k
    cost = np.zeros(ncol)
    for i in range(n):
        cq, vq = diag_q[i]
        cr, vr = diag_r[i]
        np.add.at(cost, cq, -c[i] * np.asarray(vq))
        np.add.at(cost, cr, -d[i] * np.asarray(vr))
    cost[col_a] += d - k
    cost[col_z[zi]] += -e[zi]
    offset = float(np.sum(c))

    rows_r, rows_c, rows_v, lo_l, hi_l, blocks = [], [], [], [], [], []
    nrow = 0

    def add_block(name, r, cidx, v, lo, hi, index, doc):
        nonlocal nrow
        m = lo.size
        rows_r.append(np.asarray(r, dtype=np.int64) + nrow)
        rows_c.append(np.asarray(cidx, dtype=np.int64))
        rows_v.append(np.asarray(v, dtype=float))
        lo_l.append(np.asarray(lo, dtype=float))
        hi_l.append(np.asarray(hi, dtype=float))
        blocks.append(RowBlock(name, nrow, nrow + m, index, doc))
        nrow += m

    def add_rows(name, rows, index, doc):
        """A block from a list of (cols, vals, lo, hi) rows."""
        r = np.repeat(np.arange(len(rows)), [len(q[0]) for q in rows])
        add_block(name, r, np.concatenate([q[0] for q in rows]), np.concatenate([q[1] for q in rows]),
                  np.array([q[2] for q in rows], float), np.array([q[3] for q in rows], float), index, doc)

    def qdiag_row(i, extra_cols, extra_vals, lo, hi):
        cq, vq = diag_q[i]
        return (list(cq) + list(extra_cols), list(vq) + list(extra_vals), lo, hi)

    II, JJ = np.meshgrid(di, di, indexing="ij")
    I3, J3, K3 = np.meshgrid(di, di, di, indexing="ij")      # (i, j, k)
    pairs = list(zip(II.ravel().tolist(), JJ.ravel().tolist(), strict=True))
    if posterior_form in ("precision", "mixed-precision"):
        L = np.linalg.cholesky(C)            # Λ = C⁻¹ (C has a unit diagonal; κ(C) bounded by the range)
        Linv = np.linalg.solve(L, np.eye(n))
        Lam = Linv.T @ Linv
        Lam = 0.5 * (Lam + Lam.T)
        Lam[np.abs(Lam) < 1e-14 * np.abs(Lam).max()] = 0.0
        lv = Lam[K3, J3]
        nz = lv != 0.0
        if posterior_form == "precision":
            # Q Λ + R T = I : row (i, j) has Σ_k Λ_kj Q_ik + R_ij / ρ_j
            r_eq = np.concatenate([(I3 * n + J3)[nz], (II * n + JJ).ravel()])
            c_eq = np.concatenate([col_P[I3, K3][nz], col_R.ravel()])
            v_eq = np.concatenate([lv[nz], np.broadcast_to(1.0 / rho[None, :], (n, n)).ravel()])
            post_doc = "Q Λ + R T = I  (row (i, j))"
        else:
            # Q Λ + W = I with Q_ik = V_ik − (1 − φ_k) U_ik, W_ij = (φ_j/ρ_j) U_ij:
            # row (i, j) has Σ_k Λ_kj V_ik − Σ_k Λ_kj (1 − φ_k) U_ik + (φ_j/ρ_j) U_ij
            uv = (lv * (1.0 - phi[K3]))
            r_eq = np.concatenate([(I3 * n + J3)[nz], (I3 * n + J3)[nz], (II * n + JJ).ravel()])
            c_eq = np.concatenate([col_P[I3, K3][nz], col_R[I3, K3][nz], col_R.ravel()])
            v_eq = np.concatenate([lv[nz], -uv[nz], np.broadcast_to((phi / rho)[None, :], (n, n)).ravel()])
            post_doc = "Σ_k Λ_kj (V_ik − (1 − φ_k) U_ik) + (φ_j/ρ_j) U_ij = δ_ij  (row (i, j))"
        rhs = np.eye(n).ravel()
    elif posterior_form == "covariance":
        # C (Λ + T diag a) Q = C  ⇔  Q + C T Rᵀ = C : row (i, j) has Q_ij + Σ_k C_ik/ρ_k R_jk
        # (R_jk = Q_jk a_k = a_k Q_kj by symmetry of Q); no C⁻¹.
        sv = (C / rho[None, :])[I3, K3]
        nz = sv != 0.0
        r_eq = np.concatenate([(II * n + JJ).ravel(), (I3 * n + J3)[nz]])
        c_eq = np.concatenate([col_P.ravel(), col_R[J3, K3][nz]])
        v_eq = np.concatenate([np.ones(n * n), sv[nz]])
        rhs = C.ravel()
        post_doc = "Q + C T Rᵀ = C  (row (i, j))"
    else:
        # mixed: Q (I + T diag(a) C) = C, i.e. Q + W C = C, with Q_ij = V_ij − (1 − φ_j) U_ij and
        # W_ik = (φ_k/ρ_k) U_ik: row (i, j) has V_ij − (1 − φ_j) U_ij + Σ_k C_kj (φ_k/ρ_k) U_ik.
        # Every coefficient is at most 1, and the system is square with the unique solution
        # Q = C (I + T diag(a) C)⁻¹ = Q(a) (I + T diag(a) C is similar to I + T^½ diag(a) C T^½ ≻ 0),
        # so no symmetry rows are needed (with them the system is overdetermined, and HiGHS was
        # measured declaring such consistent systems infeasible).
        cv = (C * (phi / rho)[:, None])[K3, J3]
        nz = cv != 0.0
        r_eq = np.concatenate([(II * n + JJ).ravel(), (II * n + JJ).ravel(), (I3 * n + J3)[nz]])
        c_eq = np.concatenate([col_P.ravel(), col_R.ravel(), col_R[I3, K3][nz]])
        v_eq = np.concatenate([np.ones(n * n), -(1.0 - phi[JJ]).ravel(), cv[nz]])
        rhs = C.ravel()
        post_doc = "V_ij − (1 − φ_j) U_ij + Σ_k C_kj (φ_k/ρ_k) U_ik = C_ij  (row (i, j))"
    add_block("posterior", r_eq, c_eq, v_eq, rhs, rhs, pairs, post_doc)

    # McCormick for R_ij = P_ij a_j (4 rows per (i, j); P, R = Q, R or V, U)
    m2 = n * n
    rr = np.arange(m2)
    R_ = col_R.ravel()
    P_ = col_P.ravel()
    A_ = col_a[JJ.ravel()]
    one = np.ones(m2)
    add_block("mc_upper1", np.concatenate([rr, rr]), np.concatenate([R_, A_]),
              np.concatenate([one, -U1.ravel()]), np.full(m2, -np.inf), np.zeros(m2), pairs,
              "R_ij − U¹_ij a_j ≤ 0")
    add_block("mc_lower1", np.concatenate([rr, rr]), np.concatenate([R_, A_]),
              np.concatenate([one, -L1.ravel()]), np.zeros(m2), np.full(m2, np.inf), pairs,
              "R_ij − L¹_ij a_j ≥ 0")
    add_block("mc_upper0", np.concatenate([rr, rr, rr]), np.concatenate([R_, P_, A_]),
              np.concatenate([one, -one, -L0.ravel()]), np.full(m2, -np.inf), -L0.ravel(), pairs,
              "R_ij − P_ij − L⁰_ij a_j ≤ −L⁰_ij")
    add_block("mc_lower0", np.concatenate([rr, rr, rr]), np.concatenate([R_, P_, A_]),
              np.concatenate([one, -one, -U0.ravel()]), -U0.ravel(), np.full(m2, np.inf), pairs,
              "R_ij − P_ij − U⁰_ij a_j ≥ −U⁰_ij")

    # valid inequalities
    if "sharer" in cuts:
        add_rows("sharer_cap", [qdiag_row(i, [col_a[i]], [1.0 - kappa[i]], -np.inf, 1.0) for i in range(n)],
                 [(i,) for i in range(n)], "Q_ii + (1 − κ_i) a_i ≤ 1")
    if "mono" in cuts:
        single = C ** 2 / (1.0 + rho)[None, :] * (1.0 - 1e-12)      # I_i({j}) = C_ij²/(1 + ρ_j), closed form
        idx = [(i, j) for i in range(n) for j in range(n) if i != j]
        add_rows("monotone", [qdiag_row(i, [col_a[j]], [single[i, j]], -np.inf, 1.0) for i, j in idx],
                 idx, "Q_ii + I_i({j}) a_j ≤ 1  (j ≠ i)")
    if "dropone" in cuts:
        # monotonicity at the full set: if a_j = 0 then A ⊆ N∖{j}, so Q_ii ≥ Q_ii(N∖{j});
        # if a_j = 1, Q_ii ≥ π_i.  One row per (i, j), j ≠ i; Q_ii(N∖{j}) from a fresh state.
        drop = np.maximum(_lower(_leave_one_out_diagonals(C, rho)), pi[:, None])
        idx = [(i, j) for i in range(n) for j in range(n) if i != j]
        add_rows("drop_one", [qdiag_row(i, [col_a[j]], [drop[i, j] - pi[i]], drop[i, j], np.inf) for i, j in idx],
                 idx, "Q_ii + (Q_ii(N∖{j}) − π_i) a_j ≥ Q_ii(N∖{j})  (j ≠ i)")

    if "modular" in cuts:
        # bnb's root bound as one row: objective(x) ≤ (C0 + Σ_j [a_j s_j − (1 − a_j) α_j]) / S, i.e.
        # cost·x − Σ_j (s_j + α_j)/S a_j ≤ (C0 − Σ α)/S − offset, relaxed by 1e-9 (model units, |f/S| ≤ 1)
        with np.errstate(over="ignore", invalid="ignore"):      # overflow → the check below drops the cut
            terms = modular_cut_terms(market, objective)
        if terms is not None:
            C0, sb, al = terms
            row = cost.copy()
            row[col_a] -= (sb + al) / std.scale
            nz = np.flatnonzero(row)
            rhs = (C0 - float(np.sum(al))) / std.scale - offset
            add_rows("modular", [(list(nz), list(row[nz]), -np.inf, rhs + 1e-9 * (1.0 + abs(rhs)))], [()],
                     "objective ≤ bnb's root modular bound, linear in a (Woodbury; kernels/bnb.modular_bound)")

    if probe is not None:
        # bnb's modular bound at the root's children a_j = 0 / 1 (probing_cut_terms), one row per j:
        # f(a) ≤ K⁰_j + D⁰_j·a + (K¹_j − K⁰_j) a_j + Σ_l (D¹_jl − D⁰_jl) w_jl, exact for binary a with
        # w_jl = a_j a_l (McCormick rows below, exact at binary a), relaxed by 1e-9 like "modular"
        prow = []
        for j in range(n):
            row = cost.copy()
            coef = probe_D[0, j].copy()
            coef[j] = probe_K[1, j] - probe_K[0, j]
            row[col_a] -= coef / std.scale
            ls = np.flatnonzero(gamma[j])
            row[col_w[j, ls]] -= gamma[j, ls] / std.scale
            nz = np.flatnonzero(row)
            rhs = probe_K[0, j] / std.scale - offset
            prow.append((list(nz), list(row[nz]), -np.inf, rhs + 1e-9 * (1.0 + abs(rhs))))
        add_rows("probing", prow, [(j,) for j in range(n)],
                 "objective ≤ bnb's modular bound at the children a_j = 0 / 1, products a_j a_l as w_jl")
        widx = [(int(j), int(l)) for j, l in zip(wi, wj, strict=True)]
        if widx:
            add_rows("w_first", [([int(col_w[j, l]), int(col_a[j])], [1.0, -1.0], -np.inf, 0.0) for j, l in widx],
                     widx, "w_jl ≤ a_j")
            add_rows("w_second", [([int(col_w[j, l]), int(col_a[l])], [1.0, -1.0], -np.inf, 0.0) for j, l in widx],
                     widx, "w_jl ≤ a_l")
            add_rows("w_both", [([int(col_w[j, l]), int(col_a[j]), int(col_a[l])], [1.0, -1.0, -1.0], -1.0, np.inf)
                                for j, l in widx], widx, "w_jl ≥ a_j + a_l − 1")

    if "convex" in cuts:
        G, g0, B = convex_cut_terms(C, rho, convex_points(obj, n))
        crow, cidx = [], []
        for q in range(g0.shape[0]):
            for i in range(n):
                crow.append(qdiag_row(i, col_a, G[q, i], g0[q, i], np.inf))
                cidx.append((q, i))
        add_rows("convex_lower", crow, cidx, "Q_ii ≥ tangent of the convex Q_ii(a) at relaxed point q (convex_points)")
        add_rows("convex_upper", [qdiag_row(i, col_a, B[i], -np.inf, 1.0 + BOUND_ATOL) for i in range(n)],
                 [(i,) for i in range(n)], "Q_ii ≤ 1 − Σ_j C_ij²/(ρ_j + r_j) a_j  (Woodbury from the empty set)")

    names = [f"a_{i}" for i in range(n)]
    pn, rn = ("V", "U") if mixed else ("P", "R")
    if symmetric:
        names += [f"{pn}_{i}_{j}" for i, j in zip(*P_pairs, strict=True)]
    else:
        names += [f"{pn}_{i}_{j}" for i in range(n) for j in range(n)]
    names += [f"{rn}_{i}_{j}" for i in range(n) for j in range(n)]
    names += [f"z_{i}" for i in zi]
    if probe is not None:
        names += [f"w_{j}_{l}" for j, l in zip(wi, wj, strict=True)]
    model = MilpModel(n, cost, offset, col_lo, col_hi, integer, None, None, None,
                      col_a, col_P, col_R, col_z, names, blocks, [[] for _ in range(n)], pi, s_lo, kappa,
                      tangent_form, std, "mixed" if mixed else "plain", diag_q, diag_r, phi, col_w=col_w)

    # tangent table for z_i ≥ g̃_i(Q_ii) (sharers), points by leave-own-out variance s ∈ [s_lo, 1]
    trows, tidx = [], []
    for i in zi:
        s_pts = np.linspace(s_all[i], 1.0, n_tangents) if n_tangents > 1 else np.array([1.0])
        s_pts = s_pts[s_pts > 0]
        model.tangents[i] = [float(v) for v in s_pts]
        trows.extend(_tangent_rows(model, i, s_pts))
        tidx.extend((int(i), q) for q in range(s_pts.size))
    if trows:
        add_rows("tangent", [(c_, v_, lo_, np.inf) for c_, v_, lo_ in trows], tidx,
                 f"z_i ≥ tangent of g̃_i at table point q ({tangent_form})")

    # side constraints
    notes = []
    if constraints is not None:
        if constraints.max_sharers is not None or constraints.min_sharers is not None:
            lo = -np.inf if constraints.min_sharers is None else float(constraints.min_sharers)
            hi = np.inf if constraints.max_sharers is None else float(constraints.max_sharers)
            add_block("sharers", np.zeros(n), col_a, np.ones(n), np.array([lo]), np.array([hi]), [()],
                      "min_sharers ≤ Σ a_i ≤ max_sharers")
        lin = constraints.linear
        if lin is not None:
            # lb − slack ≤ A a ≤ ub + slack: a relaxation of the exact rows (LinearRows.feasible);
            # every incumbent is checked exactly and a violator is excluded by a no-good cut
            keep = np.flatnonzero(np.isfinite(lin.lb) | np.isfinite(lin.ub))
            if keep.size:
                Ak = sp.coo_matrix(lin.A[keep])
                add_block("linear", Ak.row, col_a[Ak.col], Ak.data, lin.lb[keep] - lin.slack[keep],
                          lin.ub[keep] + lin.slack[keep], [(int(q),) for q in keep],
                          "lb_q ≤ Σ_i A_qi a_i ≤ ub_q  (user's linear rows, relaxed by their slack)")
        if budget is not None:
            constraints.check_problem(problem)
            pay = std.values * std.sigma2           # payments per unit of standardised own term
            top = float(np.max(pay)) if np.max(pay) > 0 else 1.0
            if problem == "decorrelated":
                cols, vals = list(col_a), list(pay / top)
                for i in range(n):
                    cr, vr = diag_r[i]
                    cols += list(cr)
                    vals += list(-pay[i] / top * np.asarray(vr))
                add_rows("budget", [(cols, vals, -np.inf, budget / top)], [()],
                         "Σ v_i σ_i² (a_i − R_ii) ≤ budget  (Thm 6 prices, exact; row / max v σ²)")
            else:
                pos = np.flatnonzero(pay > 0)
                add_block("budget", np.zeros(pos.size), col_z[pos], pay[pos] / top, np.array([-np.inf]),
                          np.array([budget / top]), [()],
                          "Σ v_i σ_i² z_i ≤ budget  (Thm 2 prices; relaxation, verified exactly; row / max v σ²)")
                notes.append("budget: tangent relaxation, incumbents checked exactly")

    A = sp.csr_matrix((np.concatenate(rows_v), (np.concatenate(rows_r), np.concatenate(rows_c))),
                      shape=(nrow, ncol))
    A.sum_duplicates()
    A.eliminate_zeros()
    model.A, model.row_lo, model.row_hi = A, np.concatenate(lo_l), np.concatenate(hi_l)
    model.notes = notes
    return model


def to_highs(model: MilpModel, names: bool = False):
    """A ``highspy.Highs`` instance holding ``model`` (maximisation), passed as arrays.

    With ``names``, columns are ``a_i``, ``P_i_j``, ``R_i_j``, ``z_i`` and rows ``<block>_<index>``
    (LP/MPS-safe names).  A model HiGHS rejects raises :class:`SolverFailed`.
    """
    import highspy

    from dm_opt.core.highs import new_highs, pass_model, set_options

    h = new_highs()
    # before passModel: HiGHS drops matrix entries below small_matrix_value when the model is passed
    set_options(h, small_matrix_value=1e-12)
    lp = highspy.HighsLp()
    lp.num_col_ = model.num_col
    lp.num_row_ = model.A.shape[0]
    lp.col_cost_ = model.cost
    lp.col_lower_ = model.col_lo
    lp.col_upper_ = model.col_hi
    lp.row_lower_ = model.row_lo
    lp.row_upper_ = model.row_hi
    lp.offset_ = model.offset
    lp.sense_ = highspy.ObjSense.kMaximize
    csc = model.A.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data
    lp.a_matrix_.num_col_ = model.num_col
    lp.a_matrix_.num_row_ = model.A.shape[0]
    lp.integrality_ = [highspy.HighsVarType.kInteger if t else highspy.HighsVarType.kContinuous
                       for t in model.integer]
    if names:
        lp.col_names_ = list(model.col_names)
        rn = [""] * model.A.shape[0]
        for b in model.blocks:
            for r, idx in zip(range(b.start, b.stop), b.index, strict=True):
                rn[r] = b.name + "".join(f"_{q}" for q in idx)
        lp.row_names_ = rn
    pass_model(h, lp)
    return h
