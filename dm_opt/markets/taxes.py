"""Taxes on data transactions (AMMO §6.1): personalised (Pigovian) and uniform.

Post-tax equilibrium objective
------------------------------
A tax ``t_i`` is levied on the platform for every purchase of user ``i``'s
data.  Users' payoffs ``a_i p_i − v_i I_i(a)`` do not involve the tax, so the
set of user equilibria ``𝒜(p)`` at given prices, and hence the least price
vector sustaining a profile ``a`` (Thm 2: ``p_i^a = v_i g_i(P_ii(a))`` for
sharers), are unchanged.  The platform's payoff becomes
``U_t(a, p) = Σ_i I_i(a) − Σ_{i∈A} (p_i + t_i)``.  Thm 1's proof (the platform
chooses a profile and the least prices sustaining it) therefore goes through
with ``U_t``, and the post-tax equilibrium profile maximises

    E_t(a) = Σ_i (1 − v_i) I_i(a) + v_i I_i(a_{−i}, 0) − Σ_{i∈A} t_i,

the equilibrium objective with the per-sharer constant ``k = t`` in
:class:`~dm_opt.markets.objectives.LeakageObjective` (``c = 1``, ``e = v``,
``k = t``).  Taxes are transfers to the tax authority, so social surplus is
still ``Σ (1 − v_i) I_i(a)``.

Pigovian taxes implement the first best
----------------------------------------
Let ``a^W`` be a first-best profile, ``t_i = 0`` for its sharers and a
prohibitive ``t_i = T > Σ_j σ_j²`` for everybody else.  (i) Any profile with a
taxed sharer is worse than sharing nothing: ``E_t(a) ≤ Σ_j I_j(a) − T < 0 = E_t(∅)``.
(ii) Among ``a ≤ a^W``, write ``E(a) = S(a) + R(a)`` with surplus ``S`` and
``R(a) = Σ_i v_i I_i(a_{−i}, 0)``; ``R`` is nondecreasing in ``a`` (leakage is
monotone, and ``i``'s own decision does not enter ``I_i(a_{−i}, 0)``).  So
``E(a) = S(a) + R(a) ≤ S(a^W) + R(a^W) = E(a^W)``: the first best is a post-tax
equilibrium.  Any other post-tax optimum ``a ≤ a^W`` has ``E(a) = E(a^W)``, so
``S(a) = S(a^W) + R(a^W) − R(a) ≥ S(a^W)``, while ``S(a) ≤ S(a^W)`` by
first-best optimality: ``S(a) = S(a^W)`` — every post-tax equilibrium attains
the first-best surplus.  :func:`verify_taxes` checks this by solving
the post-tax problem with ``all_optima=True``.

Uniform tax
-----------
With ``t_i = t`` for all users, ``E_t(a) = E(a) − t |A|`` is linear in ``t``
for each profile; the post-tax equilibrium is constant between exact
breakpoints found by :func:`dm_opt.markets.parametric.envelope_pieces` (solver
calls only).  Surplus is piecewise constant in ``t``.  For ``t > Σ_j σ_j²``
nobody is bought (the market is shut down; surplus 0).  Where several profiles
tie for the platform on a whole piece, the piece reports the range of their
surpluses (``surplus_min``, ``surplus_max``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ProblemError
from ..validate import as_vector
from .gaussian import GaussianMarket
from .objectives import LeakageObjective
from .parametric import Line, envelope_pieces


@dataclass(frozen=True)
class TaxedMarket:
    """A Gaussian market with optional personalised ``taxes`` (n,) and a uniform-sweep range ``t_max``
    (instance kind ``gaussian_taxes``)."""

    market: GaussianMarket
    taxes: np.ndarray | None = None
    t_max: float | None = None
    kind = "gaussian_taxes"

    @property
    def n(self) -> int:
        return self.market.n

    @property
    def name(self):
        return self.market.name

    @property
    def source(self):
        return self.market.source


def _solve(market, objective, method, **kw):
    from ..api import solve

    return solve(market, objective, method, **kw)


def post_tax_objective(market: GaussianMarket, taxes) -> LeakageObjective:
    """Thm 1's equilibrium objective with per-transaction taxes ``t`` (shape (n,) or scalar) as ``k``."""
    t = as_vector("taxes", taxes, market.n)
    return LeakageObjective("post_tax_equilibrium", np.ones(market.n), np.zeros(market.n),
                            np.asarray(market.values, dtype=float), t)


def prohibitive_tax(market: GaussianMarket) -> float:
    """A per-transaction tax above which no data is ever bought: ``1 + 2 Σ_j σ_j²`` (> ``Σ_j σ_j²``)."""
    return 1.0 + 2.0 * float(np.sum(market.sigma2))


@dataclass(frozen=True)
class TaxOutcome:
    """Post-tax equilibrium: ``profile`` (canonical optimum), every optimum in ``optima``,
    ``surplus`` at ``profile`` and the range over all optima, the first-best surplus, and
    ``implements_first_best`` (every post-tax optimum attains the first-best surplus within ``tol``)."""

    taxes: np.ndarray
    profile: np.ndarray
    optima: tuple
    surplus: float
    surplus_min: float
    surplus_max: float
    first_best_surplus: float
    first_best_profile: np.ndarray
    tax_revenue: float
    tol: float

    @property
    def implements_first_best(self) -> bool:
        return self.surplus_min >= self.first_best_surplus - self.tol

    def to_dict(self):
        return {"taxes": self.taxes.tolist(), "profile": [int(x) for x in self.profile],
                "optima": [[int(x) for x in o] for o in self.optima], "surplus": self.surplus,
                "surplus_min": self.surplus_min, "surplus_max": self.surplus_max,
                "first_best_surplus": self.first_best_surplus,
                "first_best_profile": [int(x) for x in self.first_best_profile],
                "tax_revenue": self.tax_revenue, "implements_first_best": self.implements_first_best}


def verify_taxes(market: GaussianMarket, taxes, *, method: str = "enumerate") -> TaxOutcome:
    """Solve the post-tax equilibrium (all optima) and compare with the first best."""
    obj = post_tax_objective(market, taxes)
    res = _solve(market, obj, method, all_optima=True)
    fb = _solve(market, "first_best", method)
    surpl = [market.surplus(o) for o in res.optima]
    tol = 1e-9 * max(1.0, float(np.sum(np.abs(1 - market.values) * market.sigma2)))
    return TaxOutcome(obj.k.copy(), res.profile, tuple(res.optima), market.surplus(res.profile),
                      min(surpl), max(surpl), fb.surplus, fb.profile,
                      float(np.dot(res.profile, obj.k)), tol)


def pigovian_taxes(market: GaussianMarket, *, method: str = "auto") -> np.ndarray:
    """Personalised taxes implementing the first best (§6.1): 0 on first-best sharers, prohibitive otherwise."""
    fb = _solve(market, "first_best", method)
    return np.where(fb.profile == 1, 0.0, prohibitive_tax(market))


@dataclass(frozen=True)
class TaxPiece:
    """Uniform taxes ``t ∈ [lo, hi]`` with the same post-tax equilibrium ``profile`` (``sharers`` = |A|)."""

    lo: float
    hi: float
    profile: np.ndarray
    sharers: int
    surplus: float
    surplus_min: float
    surplus_max: float

    def to_dict(self):
        return {"lo": self.lo, "hi": self.hi, "profile": [int(x) for x in self.profile],
                "sharers": self.sharers, "surplus": self.surplus, "surplus_min": self.surplus_min,
                "surplus_max": self.surplus_max}


@dataclass(frozen=True)
class UniformTaxSweep:
    """Equilibrium surplus as an exact piecewise-constant function of a uniform tax ``t ∈ [0, t_max]``.

    ``pieces`` left to right; ``best`` the piece with the largest surplus (ties: lowest tax);
    ``best_tax`` its midpoint; ``shutdown_tax`` the smallest ``t`` from which nobody shares
    (``None`` if some sharing survives up to ``t_max``); ``solver_calls``.
    """

    pieces: tuple
    best: TaxPiece
    best_tax: float
    shutdown_tax: float | None
    t_max: float
    solver_calls: int

    def surplus_at(self, t: float) -> float:
        for p in self.pieces:
            if p.lo <= t <= p.hi:
                return p.surplus
        raise ProblemError(f"tax {t} outside the swept range [0, {self.t_max}]")

    @property
    def breakpoints(self) -> np.ndarray:
        return np.array([p.hi for p in self.pieces[:-1]])

    def to_dict(self):
        return {"pieces": [p.to_dict() for p in self.pieces], "best_tax": self.best_tax,
                "best_surplus": self.best.surplus, "shutdown_tax": self.shutdown_tax,
                "t_max": self.t_max, "solver_calls": self.solver_calls}


def uniform_tax_sweep(market: GaussianMarket, *, t_max: float | None = None,
                      method: str = "enumerate") -> UniformTaxSweep:
    """Exact sweep of a uniform per-transaction tax ``t ∈ [0, t_max]`` (default :func:`prohibitive_tax`)."""
    if t_max is None:
        t_max = prohibitive_tax(market)
    if not (isinstance(t_max, (int, float)) and np.isfinite(t_max) and t_max > 0):
        raise ProblemError(f"t_max must be a positive finite number, got {t_max!r}")
    n = market.n
    calls = [0]

    def evaluate(t: float) -> Line:
        calls[0] += 1
        res = _solve(market, post_tax_objective(market, np.full(n, t)), method)
        s = float(res.profile.sum())
        return Line(res.objective + t * s, s, res)

    scale = float(np.sum((1 + market.values) * market.sigma2)) + t_max * n
    pieces = envelope_pieces(evaluate, 0.0, float(t_max), 1e-9 * scale)
    out = []
    for p in pieces:
        mid = 0.5 * (p.lo + p.hi)
        # all optima at the midpoint: the platform's ties on this piece (same |A| ⇒ parallel lines)
        res = _solve(market, post_tax_objective(market, np.full(n, mid)), method,
                     **({"all_optima": True} if method in ("enumerate", "auto") and n <= 20 else {}))
        calls[0] += 1
        optima = res.optima or (res.profile,)
        surpl = [market.surplus(o) for o in optima]
        prof = p.line.payload.profile
        out.append(TaxPiece(p.lo, p.hi, prof, int(prof.sum()), market.surplus(prof), min(surpl), max(surpl)))
    best = max(out, key=lambda q: (q.surplus, -q.lo))
    shutdown = next((q.lo for q in out if q.sharers == 0 and all(r.sharers == 0 for r in out[out.index(q):])),
                    None)
    return UniformTaxSweep(tuple(out), best, 0.5 * (best.lo + best.hi), shutdown, float(t_max), calls[0])


__all__ = ["TaxedMarket", "post_tax_objective", "prohibitive_tax", "TaxOutcome", "verify_taxes", "pigovian_taxes",
           "TaxPiece", "UniformTaxSweep", "uniform_tax_sweep"]
