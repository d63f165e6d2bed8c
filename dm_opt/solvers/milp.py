"""Exact mixed-integer formulation of the Gaussian data market (SPEC §1.2), solved with HiGHS.

Model (all arrays; ``n`` users, ``Λ = Σ⁻¹``, ``T = diag(1/τ²)``)
------------------------------------------------------------------

Variables

* ``a ∈ {0,1}^n`` — the sharing profile;
* ``P`` — the posterior covariance ``P(a) = (Λ + T diag(a))⁻¹`` (AMMO §2.2 in
  posterior-precision form, SPEC §1.1).  ``P`` is symmetric, so by default one
  variable per pair ``i ≤ j`` is used (``symmetric=True``);
* ``R_ij = P_ij a_j`` — linearised exactly by McCormick because ``a_j`` is binary;
* ``z_i`` — an upper estimate of the own-signal term ``g_i(P_ii) = P_ii²/(τ_i² − P_ii)``
  of a sharer (Thm 2, eq. 5), only for users with ``e_i > 0`` (equilibrium).

Constraints

* ``P Λ + R T = I`` (``n²`` equalities).  For a binary ``a`` they say
  ``P (Λ + T diag a) = I``, i.e. ``P = P(a)`` exactly; so the MILP is exact for
  every objective linear in ``P`` and ``R``.
  Option ``posterior_form="covariance"`` states the same fact without ``Σ⁻¹``:
  ``Σ (Λ + T diag a) P = Σ`` ⇔ ``P + Σ T Rᵀ = Σ`` (uses ``P_kj = P_jk``, so only
  with ``symmetric=True``).  Measured: no faster than the precision form
  (``benchmarks/exact_solvers.py --ablation``), so the SPEC's form is the default.
* McCormick for ``R_ij = P_ij a_j`` with bounds ``P_ij ∈ [L⁰_ij, U⁰_ij]`` when
  ``a_j = 0`` and ``[L¹_ij, U¹_ij]`` when ``a_j = 1``::

      L¹ a_j ≤ R_ij ≤ U¹ a_j,     −U⁰ (1 − a_j) ≤ R_ij − P_ij ≤ −L⁰ (1 − a_j).

  Off the diagonal ``|P_ij| ≤ √(P_ii P_jj)`` (``P ⪰ 0``), and the bounds on the
  diagonal below give ``U¹_ij = σ_i √κ_j``, ``U⁰_ij = σ_i σ_j``.  On the
  diagonal leakage is monotone (Lemma 1): ``P_ii ≥ π_i := P_ii(1,…,1)``, a
  non-sharer has ``P_ii ≥ s_i`` (the posterior from everybody else,
  ``s_i = π_i τ_i²/(τ_i² − π_i)``), and a sharer ``P_ii ≤ κ_i := σ_i²τ_i²/(σ_i²+τ_i²)``
  (her own signal alone already gives this).
* Valid inequalities (``cuts``): ``sharer`` — ``P_ii ≤ σ_i² − (σ_i² − κ_i) a_i``;
  ``mono`` — ``I_i(a) ≥ I_i({j}) a_j`` (monotonicity, Lemma 1, ``n²`` two-term rows).
  (Lemma 1's submodularity is about user ``i``'s *own* marginal only; ``I_i``
  is not submodular as a set function — suppressor effects — so a
  "subadditivity" cut ``I_i(a) ≤ Σ_j I_i({j}) a_j`` is **invalid**; it cut off
  optima in our tests and is not offered.)

Objective (maximised) — the weighted-leakage form of :mod:`dm_opt.markets.objectives`::

    Σ c_i (σ_i² − P_ii) + Σ d_i (σ_i² a_i − R_ii) − Σ e_i z_i − Σ k_i a_i

(``a_i I_i`` is linear: ``a_i P_ii = R_ii``).  First best and de-correlated
equilibrium (Lemma 5, Thm 6) are therefore exact MILPs.

Equilibrium: tangent cuts and outer approximation
--------------------------------------------------

``g_i`` is convex and increasing on ``[0, τ_i²)``, so each tangent
``ℓ_t(x) = g(t) + g'(t)(x − t)`` under-estimates it.  A sharer's ``P_ii`` lies
in ``[π_i, κ_i]`` (``κ_i < τ_i²``); tangent points are clamped there.  Two
ways to switch a tangent off for non-sharers (option ``tangent_form``):

* ``"perspective"`` (default): ``z_i ≥ g(t) a_i + g'(t)(R_ii − t a_i)``.  With
  ``a_i = 1`` this is ``z_i ≥ ℓ_t(P_ii)``; with ``a_i = 0`` ``R_ii = 0`` and it
  reads ``z_i ≥ 0``.  No big-M, and it is the perspective of ``ℓ_t``, so its LP
  relaxation is at least as tight as any big-M version.
* ``"bigm"`` (SPEC §1.2): ``z_i ≥ ℓ_t(P_ii) − M_it (1 − a_i)`` with
  ``M_it = max(0, ℓ_t(σ_i²))``.  *Why this M is valid*: a non-sharer's
  ``P_ii`` is at most ``σ_i²`` (conditioning never increases variance) and
  ``ℓ_t`` is increasing (``g' ≥ 0``), so ``ℓ_t(P_ii) − M_it ≤ 0 ≤ z_i`` — the
  cut never binds for a non-sharer; for a sharer it is the tangent.  (A
  smaller ``M`` would cut off non-sharers with large ``P_ii``.)

With a finite table the model maximises over ``z_i ≥ max_t ℓ_t(P_ii)``, an
under-estimate of ``g_i``, so it is a *relaxation*: its dual bound is a valid
upper bound on the equilibrium objective.  The outer-approximation loop
solves it, rounds ``a``, evaluates the profile exactly
(:meth:`GaussianMarket.evaluate`), and adds tangents at the profile's exact
``P_ii`` for every sharer.  A profile whose tangents are all present is valued
exactly by the model, so the loop stops when the model's bound meets the best
exact value: **certificate** — ``bound`` = the smallest dual bound of any
round (each round is a relaxation), ``objective`` = exact value of the best
incumbent.

Side constraints (:class:`~dm_opt.solvers.constraints.SideConstraints`):
sharer counts and forced users are exact linear rows/bounds.  The budget on
payments is exact for ``decorrelated`` (``Σ v_i (σ_i² a_i − R_ii) ≤ B``,
Thm 6 prices) and a relaxation for ``equilibrium`` (``Σ v_i z_i ≤ B`` with
``z_i`` only bounded below by tangents, while the true payment is
``v_i g_i(P_ii) ≥ v_i z_i``).  Every incumbent is therefore checked with
:meth:`SideConstraints.feasible`; a violator gets tangents at its points and
a no-good cut ``Σ_{i∈A}(1 − a_i) + Σ_{i∉A} a_i ≥ 1`` so it cannot return.
Excluding a profile keeps the model a relaxation of the remaining profiles.

Binary values are rounded with :data:`BINARY_TOL`; a value farther from 0/1
raises :class:`~dm_opt.errors.SolverFailed`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve

from ..errors import ProblemError, SolverFailed
from ..markets.gaussian import GaussianMarket, own_signal_gain
from ..result import Termination
from .base import Backend, RawSolution, register
from .bounds import interval_bound
from .constraints import SideConstraints

#: A MILP binary must be within this distance of 0 or 1 (HiGHS is run with
#: ``mip_feasibility_tolerance`` 1e-7, below it).
BINARY_TOL = 1e-6
#: Default number of tangent points per user in the initial table.
DEFAULT_TANGENTS = 12
#: Default relative gap at which the outer-approximation loop stops.
DEFAULT_REL_GAP = 1e-7
#: Default valid inequalities.
DEFAULT_CUTS = ("sharer",)


def own_gain_slope(x, noise_var):
    """``g'(x) = x (2τ² − x) / (τ² − x)²`` (derivative of :func:`own_signal_gain`)."""
    return x * (2.0 * noise_var - x) / (noise_var - x) ** 2


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
    """The MILP of SPEC §1.2 as arrays (maximisation).

    Columns: ``a`` at ``col_a``, ``P`` at ``col_P[i, j]`` (equal for ``(i,j)``
    and ``(j,i)`` when symmetric), ``R`` at ``col_R[i, j]``, ``z`` at
    ``col_z[i]`` (−1 where absent).  Rows ``row_lo ≤ A x ≤ row_hi`` with ``A``
    in CSR; objective ``cost · x + offset``.
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
    tangents: list                   # per user: list of tangent points in the model
    pi: np.ndarray                   # P_ii(1,...,1)
    kappa: np.ndarray                # largest sharer P_ii
    tangent_form: str
    notes: list = field(default_factory=list)

    @property
    def num_col(self) -> int:
        return self.cost.size

    def point(self, market: GaussianMarket, profile: np.ndarray) -> np.ndarray:
        """The model's variable vector at ``profile`` (a feasible start for HiGHS)."""
        a = np.asarray(profile, dtype=float)
        P = market.posterior_cov(profile)
        x = np.zeros(self.num_col)
        x[self.col_a] = a
        x[self.col_P.ravel()] = P.ravel()
        x[self.col_R.ravel()] = (P * a[None, :]).ravel()
        has_z = self.col_z >= 0
        if has_z.any():
            d = np.diag(P)
            z = np.where(a > 0, own_signal_gain(np.where(a > 0, d, 0.0), market.noise_var), 0.0)
            x[self.col_z[has_z]] = z[has_z]
        return x


def _tangent_rows(model_cols, i, pts, market, s2, form):
    """Rows (cols, vals, lower) of tangent cuts for user ``i`` at points ``pts``."""
    t2 = market.noise_var[i]
    g = own_signal_gain(pts, t2)
    dg = own_gain_slope(pts, t2)
    col_a, col_P, col_R, col_z = model_cols
    rows = []
    for gt, dgt, t in zip(g, dg, pts):
        if form == "perspective":
            # z - g'(t) R_ii - (g(t) - g'(t) t) a_i >= 0
            rows.append(([col_z[i], col_R[i, i], col_a[i]], [1.0, -dgt, -(gt - dgt * t)], 0.0))
        else:
            M = max(0.0, gt + dgt * (s2[i] - t))
            # z - g'(t) P_ii - M a_i >= g(t) - g'(t) t - M
            rows.append(([col_z[i], col_P[i, i], col_a[i]], [1.0, -dgt, -M], gt - dgt * t - M))
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


def build_model(market: GaussianMarket, objective, constraints: SideConstraints | None = None, *,
                n_tangents: int = DEFAULT_TANGENTS, symmetric: bool = True,
                cuts=DEFAULT_CUTS, tangent_form: str = "perspective",
                posterior_form: str = "precision") -> MilpModel:
    """Assemble the MILP of SPEC §1.2 from arrays (no Python loops over scalar expressions).

    ``objective`` is a :class:`~dm_opt.markets.objectives.LeakageObjective`; ``e`` must be ≥ 0
    (the own-signal term is only under-estimated by tangents).  ``constraints`` are the side
    constraints (budget only for named problems with prices).
    """
    if not isinstance(market, GaussianMarket):
        raise ProblemError(f"MILP backend is Gaussian-MSE-only (GaussianMarket); got {type(market).__name__}")
    if np.any(objective.e < 0):
        i = int(np.flatnonzero(objective.e < 0)[0])
        raise ProblemError(f"MILP backend needs e >= 0 in the objective (own-signal term −e·g is "
                           f"under-estimated by tangents); e[{i}] = {objective.e[i]:g}. Use method='enumerate'")
    if posterior_form not in ("precision", "covariance"):
        raise ProblemError(f"posterior_form must be 'precision' or 'covariance', got {posterior_form!r}")
    if posterior_form == "covariance" and not symmetric:
        raise ProblemError("posterior_form='covariance' needs symmetric=True (it uses P_kj = P_jk)")
    if tangent_form not in ("perspective", "bigm"):
        raise ProblemError(f"tangent_form must be 'perspective' or 'bigm', got {tangent_form!r}")
    unknown = set(cuts) - {"sharer", "mono", "dropone"}
    if unknown:
        raise ProblemError(f"unknown cuts {sorted(unknown)}; choose from sharer, mono, dropone")
    n_tangents = int(n_tangents)
    if n_tangents < 1:
        raise ProblemError(f"n_tangents must be >= 1, got {n_tangents}")
    n = market.n
    S = market.cov
    s2 = market.sigma2
    sig = np.sqrt(s2)
    t2 = market.noise_var
    # Λ = Σ⁻¹ once by Cholesky (SPEC §1.2 needs it as a matrix of coefficients)
    cf = cho_factor(S, lower=True, check_finite=False)
    Lam = cho_solve(cf, np.eye(n), check_finite=False)
    Lam = 0.5 * (Lam + Lam.T)
    Lam[np.abs(Lam) < 1e-14 * np.abs(Lam).max()] = 0.0
    # posterior with everybody sharing (monotone lower bound on P_ii) and sharer upper bound κ
    pi = market.posterior_var(np.ones(n, dtype=np.int8))
    kappa = s2 * t2 / (s2 + t2)
    s_others = pi * t2 / (t2 - pi)          # P_ii from everybody else: lower bound when a_i = 0

    budget = constraints.budget if constraints is not None else None
    problem = objective.name
    need_z = objective.e > 0
    if budget is not None and problem == "equilibrium":
        need_z = need_z | (market.values > 0)

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
    ncol = nxt

    # bounds of P_ij: U0 (any a), U1 (when a_j = 1)
    U0 = sig[:, None] * sig[None, :]
    U1 = sig[:, None] * np.sqrt(kappa)[None, :]
    L0, L1 = -U0.copy(), -U1.copy()
    di = np.arange(n)
    U0[di, di] = s2
    L0[di, di] = s_others
    U1[di, di] = kappa
    L1[di, di] = pi
    col_lo = np.zeros(ncol)
    col_hi = np.zeros(ncol)
    col_hi[col_a] = 1.0
    pI, pJ = P_pairs
    col_lo[col_P[pI, pJ]] = np.where(pI == pJ, pi[pI], -U0[pI, pJ])
    col_hi[col_P[pI, pJ]] = U0[pI, pJ]
    col_lo[col_R] = np.minimum(L1, 0.0)
    col_hi[col_R] = np.maximum(U1, 0.0)
    col_lo[col_z[zi]] = 0.0
    col_hi[col_z[zi]] = np.inf
    integer = np.zeros(ncol, dtype=np.int8)
    integer[col_a] = 1
    if constraints is not None:
        col_lo[col_a[list(constraints.force_in)]] = 1.0
        col_hi[col_a[list(constraints.force_out)]] = 0.0

    # ---- objective  Σ c(σ²−P_ii) + Σ d(σ² a − R_ii) − Σ e z − Σ k a
    c, d, e, k = objective.c, objective.d, objective.e, objective.k
    cost = np.zeros(ncol)
    np.add.at(cost, col_P[di, di], -c)
    cost[col_a] += d * s2 - k
    cost[col_R[di, di]] += -d
    cost[col_z[zi]] += -e[zi]
    offset = float(np.dot(c, s2))

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

    II, JJ = np.meshgrid(di, di, indexing="ij")
    I3, J3, K3 = np.meshgrid(di, di, di, indexing="ij")      # (i, j, k)
    if posterior_form == "precision":
        # P Λ + R T = I : row (i, j) has Σ_k Λ_kj P_ik + R_ij / τ_j²
        lv = Lam[K3, J3]
        nz = lv != 0.0
        r_eq = np.concatenate([(I3 * n + J3)[nz], (II * n + JJ).ravel()])
        c_eq = np.concatenate([col_P[I3, K3][nz], col_R.ravel()])
        v_eq = np.concatenate([lv[nz], np.broadcast_to(1.0 / t2[None, :], (n, n)).ravel()])
        rhs = np.eye(n).ravel()
        post_doc = "P Λ + R T = I  (row (i, j))"
    else:
        # Σ (Λ + T diag a) P = Σ  ⇔  P + Σ T Rᵀ = Σ : row (i, j) has P_ij + Σ_k Σ_ik/τ_k² R_jk
        # (R_jk = P_jk a_k = a_k P_kj by symmetry of P); no Σ⁻¹, entries of order σ².
        sv = (S / t2[None, :])[I3, K3]
        nz = sv != 0.0
        r_eq = np.concatenate([(II * n + JJ).ravel(), (I3 * n + J3)[nz]])
        c_eq = np.concatenate([col_P.ravel(), col_R[J3, K3][nz]])
        v_eq = np.concatenate([np.ones(n * n), sv[nz]])
        rhs = S.ravel()
        post_doc = "P + Σ T Rᵀ = Σ  (row (i, j))"
    pairs = list(zip(II.ravel().tolist(), JJ.ravel().tolist()))
    add_block("posterior", r_eq, c_eq, v_eq, rhs, rhs, pairs, post_doc)

    # McCormick for R_ij = P_ij a_j (4 rows per (i, j))
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
    single = S ** 2 / (s2 + t2)[None, :]       # I_i({j}) = Σ_ij² / (σ_j² + τ_j²)
    if "sharer" in cuts:
        add_block("sharer_cap", np.concatenate([di, di]), np.concatenate([col_P[di, di], col_a]),
                  np.concatenate([np.ones(n), s2 - kappa]), np.full(n, -np.inf), s2,
                  [(i,) for i in range(n)], "P_ii + (σ_i² − κ_i) a_i ≤ σ_i²")
    if "mono" in cuts:
        off = II.ravel() != JJ.ravel()
        ri = np.arange(int(off.sum()))
        add_block("monotone", np.concatenate([ri, ri]),
                  np.concatenate([col_P[II.ravel()[off], II.ravel()[off]], col_a[JJ.ravel()[off]]]),
                  np.concatenate([np.ones(ri.size), single[off.reshape(n, n)]]),
                  np.full(ri.size, -np.inf), s2[II.ravel()[off]],
                  [p for p, o in zip(pairs, off) if o], "P_ii + I_i({j}) a_j ≤ σ_i²  (j ≠ i)")
    if "dropone" in cuts:
        # monotonicity at the full set: if a_j = 0 then A ⊆ N∖{j}, so P_ii ≥ P_ii(N∖{j});
        # if a_j = 1, P_ii ≥ P_ii(N) = π_i.  One row per (i, j) with j ≠ i (j = i is the McCormick bound):
        #   P_ii + (P_ii(N∖{j}) − π_i) a_j ≥ P_ii(N∖{j}),  P_ii(N∖{j}) = π_i + P_ij(N)²/(τ_j² − π_j)
        # (rank-1 downdate of P(N) removing j's signal).
        Pfull = market.posterior_cov(np.ones(n, dtype=np.int8))
        drop = pi[:, None] + Pfull ** 2 / (t2 - pi)[None, :]
        off = (II.ravel() != JJ.ravel())
        iu_, ju_ = II.ravel()[off], JJ.ravel()[off]
        ri = np.arange(iu_.size)
        add_block("drop_one", np.concatenate([ri, ri]), np.concatenate([col_P[iu_, iu_], col_a[ju_]]),
                  np.concatenate([np.ones(ri.size), drop[iu_, ju_] - pi[iu_]]), drop[iu_, ju_],
                  np.full(ri.size, np.inf), [(int(i), int(j)) for i, j in zip(iu_, ju_)],
                  "P_ii + (P_ii(N∖{j}) − π_i) a_j ≥ P_ii(N∖{j})  (j ≠ i)")

    # tangent table for z_i ≥ g_i(P_ii) (sharers)
    tangents = [[] for _ in range(n)]
    model_cols = (col_a, col_P, col_R, col_z)
    trows, tidx = [], []
    for i in zi:
        pts = np.linspace(pi[i], kappa[i], n_tangents) if n_tangents > 1 else np.array([kappa[i]])
        tangents[i] = list(pts)
        trows.extend(_tangent_rows(model_cols, i, pts, market, s2, tangent_form))
        tidx.extend((int(i), q) for q in range(pts.size))
    if trows:
        starts, idx, val, lo = _stack_rows(trows)
        r = np.repeat(np.arange(len(trows)), np.diff(starts))
        add_block("tangent", r, idx, val, lo, np.full(lo.size, np.inf), tidx,
                  f"z_i ≥ tangent of g_i at table point q ({tangent_form})")

    # side constraints
    notes = []
    if constraints is not None:
        if constraints.max_sharers is not None or constraints.min_sharers is not None:
            lo = -np.inf if constraints.min_sharers is None else float(constraints.min_sharers)
            hi = np.inf if constraints.max_sharers is None else float(constraints.max_sharers)
            add_block("sharers", np.zeros(n), col_a, np.ones(n), np.array([lo]), np.array([hi]), [()],
                      "min_sharers ≤ Σ a_i ≤ max_sharers")
        if budget is not None:
            constraints.check_problem(problem)
            v = market.values
            if problem == "decorrelated":
                add_block("budget", np.zeros(2 * n), np.concatenate([col_a, col_R[di, di]]),
                          np.concatenate([v * s2, -v]), np.array([-np.inf]), np.array([budget]), [()],
                          "Σ v_i (σ_i² a_i − R_ii) ≤ budget  (Thm 6 prices, exact)")
            else:
                pos = np.flatnonzero(v > 0)
                add_block("budget", np.zeros(pos.size), col_z[pos], v[pos], np.array([-np.inf]),
                          np.array([budget]), [()],
                          "Σ v_i z_i ≤ budget  (Thm 2 prices; relaxation, verified exactly)")
                notes.append("budget: tangent relaxation, incumbents checked exactly")

    A = sp.csr_matrix((np.concatenate(rows_v), (np.concatenate(rows_r), np.concatenate(rows_c))),
                      shape=(nrow, ncol))
    A.sum_duplicates()
    A.eliminate_zeros()
    names = [f"a_{i}" for i in range(n)]
    if symmetric:
        names += [f"P_{i}_{j}" for i, j in zip(*P_pairs)]
    else:
        names += [f"P_{i}_{j}" for i in range(n) for j in range(n)]
    names += [f"R_{i}_{j}" for i in range(n) for j in range(n)]
    names += [f"z_{i}" for i in zi]
    return MilpModel(n, cost, offset, col_lo, col_hi, integer, A, np.concatenate(lo_l), np.concatenate(hi_l),
                     col_a, col_P, col_R, col_z, names, blocks, tangents, pi, kappa, tangent_form, notes)


def to_highs(model: MilpModel, names: bool = False):
    """A ``highspy.Highs`` instance holding ``model`` (maximisation), passed as arrays.

    With ``names``, columns are ``a_i``, ``P_i_j``, ``R_i_j``, ``z_i`` and rows ``<block>_<index>``
    (LP/MPS-safe names).
    """
    import highspy

    from .highs import new_highs

    h = new_highs()
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
            for r, idx in zip(range(b.start, b.stop), b.index):
                rn[r] = b.name + "".join(f"_{q}" for q in idx)
        lp.row_names_ = rn
    h.passModel(lp)
    return h


# --------------------------------------------------------------------- solve
def _round_profile(x: np.ndarray) -> np.ndarray:
    r = np.rint(x)
    bad = np.abs(x - r) > BINARY_TOL
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SolverFailed(f"MILP returned a[{i}] = {x[i]:.9g}, farther than {BINARY_TOL:g} from 0/1")
    return np.clip(r, 0, 1).astype(np.int8)


def solve_milp(market: GaussianMarket, objective, *, constraints: SideConstraints | None = None,
               time_limit: float | None = None, tol: float = 0.0, n_tangents: int = DEFAULT_TANGENTS,
               symmetric: bool = True, cuts=DEFAULT_CUTS, tangent_form: str = "perspective",
               posterior_form: str = "precision", rel_gap: float = DEFAULT_REL_GAP, max_rounds: int = 200,
               polish: bool = True, threads: int | None = None) -> RawSolution:
    """Outer-approximation loop around HiGHS (see the module docstring for the certificate)."""
    import highspy

    from .highs import interruptible

    t0 = time.perf_counter()
    n = market.n
    model = build_model(market, objective, constraints, n_tangents=n_tangents, symmetric=symmetric,
                        cuts=cuts, tangent_form=tangent_form, posterior_form=posterior_form)
    h = to_highs(model)
    h.setOptionValue("mip_rel_gap", float(rel_gap) * 0.1)
    h.setOptionValue("mip_abs_gap", max(float(tol), 1e-12))
    h.setOptionValue("mip_feasibility_tolerance", 1e-7)
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    h.setOptionValue("random_seed", 0)
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    build_seconds = time.perf_counter() - t0
    deadline = None if time_limit is None else t0 + float(time_limit)
    problem = objective.name
    exact_model = not np.any(model.col_z >= 0)       # no tangents: one MILP solve is exact

    def feasible(a):
        return constraints is None or constraints.feasible(market, problem, a)

    seen: dict[bytes, float] = {}                       # profile -> exact value (-inf: violates)
    best_val, best_a = -np.inf, None

    def consider(a):
        nonlocal best_val, best_a
        key = a.tobytes()
        if key in seen:
            return seen[key]
        val = market.evaluate(objective, a) if feasible(a) else -np.inf
        seen[key] = val
        if val > best_val:
            best_val, best_a = val, a.copy()
        return val

    # starting incumbents (cheap; they give HiGHS a primal bound and the time-limit path a profile)
    w = objective.c + objective.d
    for a0 in (np.zeros(n, np.int8), np.ones(n, np.int8), (w > 0).astype(np.int8)):
        if constraints is not None:
            a0 = a0.copy()
            a0[list(constraints.force_in)] = 1
            a0[list(constraints.force_out)] = 0
        consider(a0)

    # a valid bound before any MILP round: monotone interval bound over all profiles (SPEC §1.3)
    bound = interval_bound(market, objective, np.zeros(n, bool), np.ones(n, bool))
    nodes = 0
    rounds = 0
    status = Termination.OPTIMAL
    message = ""
    nogoods = 0
    excluded_best = -np.inf
    solve_seconds = 0.0
    # Ctrl-C inside h.run() is turned into HiGHS' own interrupt (solvers/highs.interruptible);
    # elsewhere in the loop it arrives as KeyboardInterrupt: both keep the incumbent and bound
    try:
        while True:
            if deadline is not None:
                left = deadline - time.perf_counter()
                if left <= 0:
                    status = Termination.TIME_LIMIT
                    break
                h.setOptionValue("time_limit", max(left, 1e-3))
            if best_a is not None and np.isfinite(best_val):
                x0 = model.point(market, best_a)
                h.setSolution(model.num_col, np.arange(model.num_col, dtype=np.int32), x0)
            ts = time.perf_counter()
            with interruptible(h) as ctrl_c:
                h.run()
            solve_seconds += time.perf_counter() - ts
            rounds += 1
            ms = h.getModelStatus()
            info = h.getInfo()
            nodes += int(max(info.mip_node_count, 0))
            if ms == highspy.HighsModelStatus.kInfeasible:
                # the model is a relaxation of the profiles not yet excluded, so every feasible
                # profile is excluded and the optimum is the best excluded one
                if best_val > excluded_best + max(tol, 1e-9):
                    raise SolverFailed("HiGHS reports the MILP infeasible although a profile satisfying the "
                                       "side constraints is known (numerical trouble)")
                bound = min(bound, excluded_best)
                break
            if ms not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit,
                          highspy.HighsModelStatus.kInterrupt, highspy.HighsModelStatus.kSolutionLimit):
                raise SolverFailed(f"HiGHS stopped with model status {h.modelStatusToString(ms)}")
            round_bound = float(info.mip_dual_bound)
            if ms == highspy.HighsModelStatus.kOptimal:
                round_bound = min(round_bound, float(info.objective_function_value)
                                  + max(float(tol), abs(info.mip_gap) * abs(info.objective_function_value)))
            if np.isfinite(round_bound):
                bound = min(bound, max(round_bound, excluded_best))
            has_sol = info.primal_solution_status == 2
            new_rows = []
            if has_sol:
                x = np.asarray(h.getSolution().col_value)
                a = _round_profile(x[model.col_a])
                key = a.tobytes()
                repeat = key in seen
                val = consider(a)
                if polish:
                    _polish(market, objective, a, consider)
                tangent_rows = _new_tangents(model, market, a)
                if val == -np.inf or ((repeat or not tangent_rows) and not exact_model):
                    # infeasible for the exact side constraints, or already valued exactly by the
                    # model: exclude it (its exact value, if feasible, is kept as excluded_best)
                    ones = np.flatnonzero(a == 1)
                    zeros = np.flatnonzero(a == 0)
                    new_rows.append((list(model.col_a[ones]) + list(model.col_a[zeros]),
                                     [-1.0] * ones.size + [1.0] * zeros.size, 1.0 - ones.size))
                    nogoods += 1
                    if val > -np.inf:
                        excluded_best = max(excluded_best, val)
                new_rows.extend(tangent_rows)
            if ms != highspy.HighsModelStatus.kOptimal:
                status = Termination.INTERRUPTED if ctrl_c.hit else Termination.TIME_LIMIT
                if ctrl_c.hit:
                    message = "interrupted by the user (Ctrl-C) during the MILP"
                break
            if exact_model or bound - best_val <= max(tol, rel_gap * max(1.0, abs(bound))):
                break
            if ctrl_c.hit:      # HiGHS finished this round before its next interrupt check
                status, message = Termination.INTERRUPTED, "interrupted by the user (Ctrl-C) between MILP rounds"
                break
            if rounds >= max_rounds:
                status = Termination.NODE_LIMIT
                message = f"stopped after max_rounds = {max_rounds} outer-approximation rounds"
                break
            if not new_rows:
                raise SolverFailed("outer approximation made no progress (no new cut) with an open gap "
                                   f"{bound - best_val:.3g}")
            starts, idx, val_, lo = _stack_rows(new_rows)
            h.addRows(len(new_rows), lo, np.full(lo.size, np.inf), idx.size, starts[:-1].astype(np.int32),
                      idx, val_)
    except KeyboardInterrupt:
        status, message = Termination.INTERRUPTED, "interrupted by the user (Ctrl-C)"
    if status is Termination.TIME_LIMIT and not message:
        message = f"time limit {time_limit}s reached after {rounds} MILP round(s)"
    extra = {"oa_rounds": rounds, "nogood_cuts": nogoods,
             "tangents": int(sum(len(t) for t in model.tangents)),
             "rows": int(model.A.shape[0]), "cols": int(model.num_col), "nonzeros": int(model.A.nnz)}
    if model.notes:
        extra["notes"] = list(model.notes)
    if best_a is None or not np.isfinite(best_val):
        if status is Termination.OPTIMAL:
            return RawSolution(None, Termination.INFEASIBLE, float("-inf"), nodes=nodes,
                               build_seconds=build_seconds, solve_seconds=solve_seconds,
                               message="no profile satisfies the side constraints", extra=extra)
        return RawSolution(None, status, float(bound), nodes=nodes, build_seconds=build_seconds,
                           solve_seconds=solve_seconds, message=message or "no feasible profile found",
                           extra=extra)
    bound = max(bound, best_val) if status is not Termination.OPTIMAL else bound
    return RawSolution(best_a, status, float(bound), nodes=nodes, build_seconds=build_seconds,
                       solve_seconds=solve_seconds, message=message, extra=extra)


def _new_tangents(model: MilpModel, market: GaussianMarket, a: np.ndarray) -> list:
    """Tangent rows at ``a``'s exact ``P_ii`` for every sharer that has a ``z`` column."""
    x = market.posterior_var(a)
    rows = []
    model_cols = (model.col_a, model.col_P, model.col_R, model.col_z)
    for i in np.flatnonzero((a == 1) & (model.col_z >= 0)):
        t = float(np.clip(x[i], model.pi[i], model.kappa[i]))
        if any(abs(t - s) <= 1e-12 * max(1.0, abs(t)) for s in model.tangents[i]):
            continue
        model.tangents[i].append(t)
        rows.extend(_tangent_rows(model_cols, i, np.array([t]), market, market.sigma2, model.tangent_form))
    return rows


def _polish(market, objective, a, consider):
    """One pass of single flips around ``a`` (exact evaluations; improves the incumbent only)."""
    for i in range(a.size):
        b = a.copy()
        b[i] ^= 1
        consider(b)


@register
class Milp(Backend):
    """HiGHS MILP of SPEC §1.2 with an outer-approximation loop for the equilibrium."""

    name = "milp"
    supports_constraints = True
    requires = "highspy"
    OPTIONS = ("n_tangents", "symmetric", "cuts", "tangent_form", "posterior_form", "rel_gap", "max_rounds",
               "polish", "threads")

    def run(self, market, objective, *, all_optima, time_limit, constraints, tol, progress, options):
        self.check_options(options)
        sc = gaussian_side_constraints(market, objective, constraints)
        return solve_milp(market, objective, constraints=sc, time_limit=time_limit, tol=tol, **options)


def gaussian_side_constraints(market, objective, constraints):
    """The MILP/MISOCP backends' shared entry check: Gaussian MSE markets only (the
    formulation is the posterior-precision one of SPEC §1.2), side constraints validated."""
    if not isinstance(market, GaussianMarket):
        raise ProblemError(f"MILP backend is Gaussian-MSE-only (GaussianMarket); got {type(market).__name__}")
    sc = SideConstraints.from_any(constraints, market.n)
    if sc is not None:
        sc.check_problem(objective.name)
    return sc


def export_model(market: GaussianMarket, problem: str, path: str, fmt: str = "mps", *,
                 n_tangents: int = DEFAULT_TANGENTS) -> str:
    """Write the MILP (maximisation) to ``path`` in MPS or LP format via HiGHS ``writeModel``.

    First best and de-correlated equilibrium are exact.  The equilibrium is written with its
    initial tangent table (``n_tangents`` points per user): a *relaxation* whose optimum is an
    upper bound; re-evaluate its profile exactly, or use ``method="milp"`` for the OA loop.
    A comment line at the top of the file says which.  Returns that note.
    """
    import os
    import tempfile

    if fmt not in ("mps", "lp"):
        raise ProblemError(f"format must be 'mps' or 'lp', got {fmt!r}")
    objective = market.objective(problem)
    model = build_model(market, objective, None, n_tangents=n_tangents)
    h = to_highs(model, names=True)
    if np.any(model.col_z >= 0):
        note = (f"dm_opt {problem} n={market.n}: RELAXATION with an initial tangent table of {n_tangents} "
                f"points per user for g(x)=x^2/(tau^2-x) (perspective cuts); its optimum is an upper bound, "
                f"re-evaluate the profile exactly")
    else:
        note = f"dm_opt {problem} n={market.n}: exact MILP (SPEC 1.2), maximise; columns a_i are the sharing binaries"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = os.path.join(tmp, f"model.{fmt}")
        st = h.writeModel(tmp_path)
        if str(st).endswith("kError"):
            raise SolverFailed(f"HiGHS could not write the model as {fmt}")
        with open(tmp_path, encoding="utf-8") as fh:
            body = fh.read()
    comment = "* " if fmt == "mps" else "\\ "
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(comment + note + "\n" + body)
    return note
