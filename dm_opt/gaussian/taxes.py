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
:class:`~dm_opt.gaussian.objectives.LeakageObjective` (``c = 1``, ``e = v``,
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
breakpoints found by :func:`dm_opt.gaussian.parametric.envelope_pieces` (solver
calls only).  Surplus is piecewise constant in ``t``.  For ``t > Σ_j σ_j²``
nobody is bought (the market is shut down; surplus 0).  Where several profiles
tie for the platform on a whole piece, the piece reports the range of their
surpluses (``surplus_min``, ``surplus_max``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.core.limits import Deadline, Stopped
from dm_opt.core.result import Result, Termination
from dm_opt.core.validate import as_vector
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.objectives import LeakageObjective
from dm_opt.gaussian.parametric import Line, envelope_search, json_num, no_partial_answer, solve_exact


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


def post_tax_objective(market: GaussianMarket, taxes) -> LeakageObjective:
    """Thm 1's equilibrium objective with per-transaction taxes ``t`` (shape (n,) or scalar) as ``k``."""
    t = as_vector("taxes", taxes, market.n, max_abs=None)    # (also the sweep's own t, up to 1 + 2 Σ σ²)
    return LeakageObjective("post_tax_equilibrium", np.ones(market.n), np.zeros(market.n),
                            np.asarray(market.values, dtype=float), t)


def prohibitive_tax(market: GaussianMarket) -> float:
    """A per-transaction tax above which no data is ever bought: ``1 + 2 Σ_j σ_j²`` (> ``Σ_j σ_j²``)."""
    return 1.0 + 2.0 * float(np.sum(market.sigma2))


@dataclass(frozen=True)
class TaxOutcome(Result):
    """Post-tax equilibrium: ``profile`` (canonical optimum), every optimum in ``optima``,
    ``surplus`` at ``profile`` and the range over all optima, the first-best surplus, and
    ``implements_first_best`` (every post-tax optimum attains the first-best surplus within ``tol``).

    All or nothing (:func:`verify_taxes`), so ``status`` is always ``optimal``; ``objective``
    is ``surplus`` (exact: ``bound`` equals it)."""

    family: ClassVar[str] = "gaussian"

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
    seconds: float = field(default=0.0, compare=False)
    status: Termination = Termination.OPTIMAL
    message: str = ""
    method: str = ""

    @property
    def objective(self) -> float:
        return float(self.surplus)

    @property
    def bound(self) -> float:
        return float(self.surplus)

    @property
    def implements_first_best(self) -> bool:
        return self.surplus_min >= self.first_best_surplus - self.tol

    def to_dict(self):
        return {**_protocol(self), "taxes": self.taxes.tolist(), "profile": [int(x) for x in self.profile],
                "optima": [[int(x) for x in o] for o in self.optima], "surplus": self.surplus,
                "surplus_min": self.surplus_min, "surplus_max": self.surplus_max,
                "first_best_surplus": self.first_best_surplus,
                "first_best_profile": [int(x) for x in self.first_best_profile],
                "tax_revenue": self.tax_revenue, "implements_first_best": self.implements_first_best}


def _protocol(r: Result) -> dict:
    """The protocol fields of ``r`` without ``seconds`` (so that equal results have equal dicts)."""
    d = r.protocol_dict()
    del d["seconds"]
    return d


def _stopped_note(stop: Stopped) -> str:
    res = stop.result
    if res is None or not res.has_solution:
        return ""
    return (f"; best profile found {''.join(str(int(x)) for x in res.profile)} with objective "
            f"{res.objective:.10g} <= optimum <= {res.bound:.10g}")


def verify_taxes(market: GaussianMarket, taxes, *, method: str = "enumerate", time_limit=None) -> TaxOutcome:
    """Solve the post-tax equilibrium (all optima) and compare with the first best.

    ``time_limit`` (seconds, ``None`` = no limit) bounds both solves together.  The outcome is
    all-or-nothing (every optimum is needed to decide ``implements_first_best``): on expiry
    :class:`~dm_opt.core.errors.LimitExceeded` (naming the incumbent and its proven bound), on
    Ctrl-C ``KeyboardInterrupt``.
    """
    t0 = time.perf_counter()
    deadline = Deadline.of(time_limit)
    obj = post_tax_objective(market, taxes)
    try:
        res = solve_exact(deadline, market, obj, method, all_optima=True)
        fb = solve_exact(deadline, market, "first_best", method)
    except Stopped as s:
        no_partial_answer(s.status, f"post-tax equilibrium / first best not proven optimal ({s.message})"
                          f"{_stopped_note(s)}")
    surpl = [market.surplus(o) for o in res.optima]
    tol = 1e-9 * max(1.0, float(np.sum(np.abs(1 - market.values) * market.sigma2)))
    return TaxOutcome(obj.k.copy(), res.profile, tuple(res.optima), market.surplus(res.profile),
                      min(surpl), max(surpl), fb.surplus, fb.profile,
                      float(np.dot(res.profile, obj.k)), tol, time.perf_counter() - t0, method=res.method)


def pigovian_taxes(market: GaussianMarket, *, method: str = "auto", time_limit=None) -> np.ndarray:
    """Personalised taxes implementing the first best (§6.1): 0 on first-best sharers, prohibitive otherwise.

    ``time_limit``: one exact first-best solve; if it is not proven optimal in time,
    :class:`~dm_opt.core.errors.LimitExceeded` (Ctrl-C: ``KeyboardInterrupt``).
    """
    try:
        fb = solve_exact(Deadline.of(time_limit), market, "first_best", method)
    except Stopped as s:
        no_partial_answer(s.status, f"first best not proven optimal ({s.message}){_stopped_note(s)}")
    return np.where(fb.profile == 1, 0.0, prohibitive_tax(market))


@dataclass(frozen=True)
class TaxPiece:
    """Uniform taxes ``t ∈ [lo, hi]`` with the same post-tax equilibrium ``profile`` (``sharers`` = |A|).

    ``surplus_min``/``surplus_max`` range over the platform's tied optima on the piece;
    ``ties_checked`` is False (and they are NaN) when a time limit or Ctrl-C came before that
    check — the piece itself (its profile and ``surplus``) is still proven.
    """

    lo: float
    hi: float
    profile: np.ndarray
    sharers: int
    surplus: float
    surplus_min: float
    surplus_max: float
    ties_checked: bool = True

    def to_dict(self):
        return {"lo": self.lo, "hi": self.hi, "profile": [int(x) for x in self.profile],
                "sharers": self.sharers, "surplus": self.surplus, "surplus_min": json_num(self.surplus_min),
                "surplus_max": json_num(self.surplus_max), "ties_checked": self.ties_checked}


@dataclass(frozen=True)
class UniformTaxSweep(Result):
    """Equilibrium surplus as an exact piecewise-constant function of a uniform tax ``t ∈ [0, t_max]``.

    ``pieces`` left to right; ``best`` the piece with the largest surplus (ties: lowest tax);
    ``best_tax`` its midpoint; ``shutdown_tax`` the smallest ``t`` from which nobody shares
    (``None`` if some sharing survives up to ``t_max``); ``solver_calls``.

    Limits: ``status`` ``optimal`` = the whole range was swept.  After a time limit or Ctrl-C
    (``time_limit``/``interrupted``) the pieces are exact but tile only ``[0, covered]``
    (``covered < t_max``; the search resolves the range left to right), ``best``/``best_tax``
    are the best *within* ``[0, covered]``, and nothing is claimed about ``(covered, t_max]``.
    ``shutdown_tax`` stays valid when found: the number of sharers is nonincreasing in ``t``
    (slope of the convex envelope), so nobody shares beyond it.

    Result protocol: ``objective`` is the best surplus over the swept taxes; ``bound`` equals
    it when the sweep is complete (``nan`` otherwise: nothing is claimed beyond ``covered``).
    """

    family: ClassVar[str] = "gaussian"

    pieces: tuple
    best: TaxPiece
    best_tax: float
    shutdown_tax: float | None
    t_max: float
    solver_calls: int
    status: Termination = Termination.OPTIMAL
    covered: float | None = None
    message: str = ""
    seconds: float = field(default=0.0, compare=False)
    method: str = ""

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.covered is None:
            object.__setattr__(self, "covered", self.t_max)

    @property
    def objective(self) -> float:
        return float(self.best.surplus)

    @property
    def bound(self) -> float:
        return float(self.best.surplus) if self.complete else float("nan")

    @property
    def extra(self) -> dict:
        return {"solver_calls": self.solver_calls}

    @property
    def complete(self) -> bool:
        return self.status is Termination.OPTIMAL

    def surplus_at(self, t: float) -> float:
        for p in self.pieces:
            if p.lo <= t <= p.hi:
                return p.surplus
        if self.shutdown_tax is not None and self.shutdown_tax <= t <= self.t_max:
            return 0.0
        if not self.complete and self.covered < t <= self.t_max:
            raise ProblemError(f"tax {t} was not reached: the sweep stopped ({self.status}) after covering "
                               f"[0, {self.covered}] of [0, {self.t_max}]")
        raise ProblemError(f"tax {t} outside the swept range [0, {self.t_max}]")

    @property
    def breakpoints(self) -> np.ndarray:
        return np.array([p.hi for p in self.pieces[:-1]])

    def to_dict(self):
        return {**_protocol(self), "covered": self.covered,
                "pieces": [p.to_dict() for p in self.pieces], "best_tax": self.best_tax,
                "best_surplus": self.best.surplus, "shutdown_tax": self.shutdown_tax,
                "t_max": self.t_max, "solver_calls": self.solver_calls}


def uniform_tax_sweep(market: GaussianMarket, *, t_max: float | None = None,
                      method: str = "enumerate", time_limit=None) -> UniformTaxSweep:
    """Exact sweep of a uniform per-transaction tax ``t ∈ [0, t_max]`` (default :func:`prohibitive_tax`).

    ``time_limit`` (seconds, ``None`` = no limit) bounds all solves together; on expiry or
    Ctrl-C the pieces proven so far are returned with status ``time_limit``/``interrupted``
    (see :class:`UniformTaxSweep`).  If not even ``t = 0`` was solved:
    :class:`~dm_opt.core.errors.LimitExceeded` (time limit) or ``KeyboardInterrupt`` (Ctrl-C).
    """
    t0 = time.perf_counter()
    deadline = Deadline.of(time_limit)
    if t_max is None:
        t_max = prohibitive_tax(market)
    if not (isinstance(t_max, (int, float)) and np.isfinite(t_max) and t_max > 0):
        raise ProblemError(f"t_max must be a positive finite number, got {t_max!r}")
    n = market.n
    calls = [0]

    def evaluate(t: float) -> Line:
        calls[0] += 1
        res = solve_exact(deadline, market, post_tax_objective(market, np.full(n, t)), method)
        s = float(res.profile.sum())
        return Line(res.objective + t * s, s, res)

    scale = float(np.sum((1 + market.values) * market.sigma2)) + t_max * n
    env = envelope_search(evaluate, 0.0, float(t_max), 1e-9 * scale)
    status, message = env.status, env.message
    if not env.pieces:
        no_partial_answer(status, f"uniform tax sweep: {message} before any piece of [0, {t_max}] was proven")
    out = []
    for p in env.pieces:
        prof = p.line.payload.profile
        surplus = market.surplus(prof)
        if status is Termination.OPTIMAL:
            mid = 0.5 * (p.lo + p.hi)
            # all optima at the midpoint: the platform's ties on this piece (same |A| ⇒ parallel lines)
            try:
                res = solve_exact(deadline, market, post_tax_objective(market, np.full(n, mid)), method,
                                     **({"all_optima": True} if method in ("enumerate", "auto") and n <= 20 else {}))
                calls[0] += 1
                optima = res.optima or (res.profile,)
                surpl = [market.surplus(o) for o in optima]
                out.append(TaxPiece(p.lo, p.hi, prof, int(prof.sum()), surplus, min(surpl), max(surpl)))
                continue
            except Stopped as s:
                status, message = s.status, s.message
            except KeyboardInterrupt:
                status, message = Termination.INTERRUPTED, "interrupted by the user"
        out.append(TaxPiece(p.lo, p.hi, prof, int(prof.sum()), surplus, np.nan, np.nan, False))
    best = max(out, key=lambda q: (q.surplus, -q.lo))
    # sharers are nonincreasing in t, so a zero-sharer piece means nobody shares from there on
    shutdown = next((q.lo for q in out if q.sharers == 0 and all(r.sharers == 0 for r in out[out.index(q):])),
                    None)
    covered = out[-1].hi if env.complete else env.covered_hi
    if status is not Termination.OPTIMAL:
        unchecked = sum(not q.ties_checked for q in out)
        message = (f"{message}: swept [0, {covered:.10g}] of [0, {float(t_max):.10g}]"
                   + (f"; tie ranges not checked on {unchecked} piece(s)" if unchecked else ""))
    return UniformTaxSweep(tuple(out), best, 0.5 * (best.lo + best.hi), shutdown, float(t_max), calls[0],
                           status, covered, message, time.perf_counter() - t0,
                           method=env.pieces[0].line.payload.method)


__all__ = ["TaxedMarket", "post_tax_objective", "prohibitive_tax", "TaxOutcome", "verify_taxes", "pigovian_taxes",
           "TaxPiece", "UniformTaxSweep", "uniform_tax_sweep"]
