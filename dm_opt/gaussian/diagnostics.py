"""Efficiency diagnostics for a Gaussian market (AMMO §3.6–3.7, Thm 3, Props 3–4, Thm 6).

:func:`efficiency_report` solves the first best (Prop 1), the equilibrium
(Thm 1) and the de-correlated equilibrium (Thm 6) exactly through
:func:`dm_opt.solve`, and evaluates the paper's structural statements:

* **Prop 1**, condition (3) (:func:`prop1_condition`), with the denominator of its proof
  (``τ_i² + σ_i² − I_i``; the printed ``1 + σ_j² − I_j`` gives the wrong sign on some instances).
* **Partition** (§3.6): low-value users ``V^(l) = {v_i ≤ 1}``, high-value ``V^(h) = {v_i > 1}``.
* **Thm 3 case** (correlation = a nonzero entry of ``Σ``, ``|Σ_ij| > corr_tol``):
  ``"no_high_value_users"`` (every user has ``v ≤ 1``: all share, efficient);
  ``"part1"`` every high-value user is uncorrelated with all others → efficient;
  ``"part2"`` some high-value user is correlated with a low-value user → inefficient
  for high enough ``v^(h)``; the proof's sufficient threshold for user ``j`` is
  ``v_j > 1 + Σ_{i∈V^(l)} σ_i² / I_j(V^(l))`` (reported per user);
  ``"part3"`` high-value users correlated only among themselves → inefficient if
  some ``i ∈ Ṽ^(h)`` has ``v_i < v̄_i = (I_i({i}) + Σ_{k∈V^(h)∖i} I_k({i})) / I_i({i})``.
* **Prop 3**: ``surplus(a^E) ≤ Σ_{V^(l)} (1 − v_i) I_i(V) − Σ_{V^(h)} (v_i − 1) I_i(V^(l))``;
  condition (6) (bound < 0) ⇒ negative equilibrium surplus.
* **Prop 4**, condition (7): ``Σ_{V^(h)} (v_i − 1) Σ_{j∈V^(l)} Σ_ij² / (‖Σ^(l)‖_1 + 1) > Σ_{V^(l)} σ_i² (1 − v_i)``
  ⇒ negative equilibrium surplus.  With general noise variances the proof's
  Gershgorin bound on the eigenvalues of ``Σ^(l) + diag τ²_l`` is
  ``max_{i∈V^(l)} (Σ_{j∈V^(l)} |Σ_ij| + τ_i²)``, which is ``‖Σ^(l)‖_1 + 1`` for ``τ² = 1``; we use it.
* **Thm 6**: ``surplus(ã^E) ≥ max(surplus(a^E), 0)``.

Ties: the platform can be indifferent between several equilibrium profiles
(e.g. the three-user example of the restatement paper).  For ``n ≤``
:data:`ALL_EQUILIBRIA_MAX_N` every equilibrium is enumerated and the checks use
all of them ("efficient" = every equilibrium attains the first-best surplus);
above it only the canonical optimum of the chosen backend is evaluated.

All of these are *checked* in the report (``checks``), not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dm_opt.core import jsonenc
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Result, Termination
from dm_opt.gaussian import api
from dm_opt.gaussian.market import GaussianMarket

#: Up to this n the report lists every equilibrium (ties for the platform) by enumeration.
ALL_EQUILIBRIA_MAX_N = 20
#: Relative margin by which a value must clear a Thm 3 threshold to count (at equality the proof gives a tie).
THRESHOLD_RTOL = 1e-9


def _set_leakage(market: GaussianMarket, users) -> np.ndarray:
    a = np.zeros(market.n, dtype=np.int8)
    a[list(users)] = 1
    return market.leakage(a)


def prop1_condition(market: GaussianMarket, profile, i: int, *, printed: bool = False) -> float:
    """Left-hand side of Prop 1's condition (3) for user ``i`` at ``profile`` (its ``a_i`` is ignored).

    ``Σ_j (1 − v_j) Cov(X_i, X_j | a_i = 0, a_{−i})² / D``: user ``i`` shares in the first
    best iff it is ``≥ 0`` (evaluated at ``a_{−i} = a^W_{−i}``).  The proof (eqs. A-1, A-2)
    gives the denominator ``D = τ_i² + σ_i² − I_i(a_i = 0, a_{−i})`` — the conditional
    variance of user ``i``'s *signal*, the same for every ``j`` (``τ_i² = 1`` in the paper);
    the printed statement has ``1 + σ_j² − I_j(·)``, which depends on ``j`` and gives the wrong
    sign on some instances (``printed=True`` evaluates it, for comparison; see
    tests/gaussian/test_diagnostics.py).
    """
    a = np.array(market._profile(profile), dtype=np.int8)
    a[i] = 0
    P = market.posterior_cov(a)          # Cov(X | S_A), A without i
    w = 1.0 - market.values
    cov2 = P[i, :] ** 2
    if printed:
        denom = 1.0 + np.diag(P)         # 1 + σ_j² − I_j = 1 + P_jj (as printed, τ² = 1)
        return float(np.sum(w * cov2 / denom))
    return float(np.sum(w * cov2) / (market.noise_var[i] + P[i, i]))


def prop3_bound(market: GaussianMarket) -> float:
    """Prop 3's upper bound on equilibrium surplus (depends on ``Σ`` and ``v`` only)."""
    v = np.asarray(market.values, dtype=float)
    low = v <= 1
    I_all = market.leakage(np.ones(market.n, dtype=np.int8))
    I_low = market.leakage(low.astype(np.int8))
    return float(np.sum((1 - v[low]) * I_all[low]) - np.sum((v[~low] - 1) * I_low[~low]))


def prop4_terms(market: GaussianMarket) -> tuple[float, float]:
    """``(lhs, rhs)`` of Prop 4's condition (7) (general-τ² form, module docstring)."""
    v = np.asarray(market.values, dtype=float)
    S = market.cov
    low = np.flatnonzero(v <= 1)
    high = np.flatnonzero(v > 1)
    if low.size == 0 or high.size == 0:
        return 0.0, float(np.sum(market.sigma2[low] * (1 - v[low])))
    Sl = S[np.ix_(low, low)]
    norm = float(np.max(np.sum(np.abs(Sl), axis=1) + market.noise_var[low]))
    lhs = float(np.sum((v[high] - 1) * np.sum(S[np.ix_(high, low)] ** 2, axis=1) / norm))
    rhs = float(np.sum(market.sigma2[low] * (1 - v[low])))
    return lhs, rhs


@dataclass(frozen=True)
class Thm3Case:
    """Which part of Thm 3 applies and its sufficient conditions (see module docstring)."""

    case: str
    high: tuple
    low: tuple
    high_low_pairs: tuple               # (h, l) with Σ_hl ≠ 0
    high_high_pairs: tuple              # (h, h') with Σ ≠ 0
    part2_thresholds: dict = field(default_factory=dict)   # j -> proof's v̄_j (part 2)
    part3_thresholds: dict = field(default_factory=dict)   # i -> v̄_i (part 3)
    predicts_efficient: bool = False
    predicts_inefficient: bool = False
    statement: str = ""


def thm3_case(market: GaussianMarket, corr_tol: float | None = None) -> Thm3Case:
    """Classify the market by Thm 3 (``corr_tol``: |Σ_ij| above it counts as correlated; default 1e-12·max σ²)."""
    v = np.asarray(market.values, dtype=float)
    S = market.cov
    if corr_tol is None:
        corr_tol = 1e-12 * float(np.max(market.sigma2))
    high = tuple(int(i) for i in np.flatnonzero(v > 1))
    low = tuple(int(i) for i in np.flatnonzero(v <= 1))
    hl = tuple((h, l) for h in high for l in low if abs(S[h, l]) > corr_tol)
    hh = tuple((h, k) for h in high for k in high if h < k and abs(S[h, k]) > corr_tol)
    if not high:
        return Thm3Case("no_high_value_users", high, low, hl, hh, predicts_efficient=True,
                        statement="all users have v <= 1: by Lemma 3 all share, which is also the first best")
    if not hl and not hh:
        return Thm3Case("part1", high, low, hl, hh, predicts_efficient=True,
                        statement="Thm 3.1: every high-value user is uncorrelated with all others -> efficient")
    if hl:
        I_low = _set_leakage(market, low)
        total_low = float(np.sum(market.sigma2[list(low)])) if low else 0.0
        thr = {}
        for j in sorted({h for h, _ in hl}):
            delta = float(I_low[j])
            thr[j] = 1.0 + total_low / delta if delta > 0 else float("inf")
        hit = [j for j, t in thr.items() if v[j] > t * (1 + THRESHOLD_RTOL)]
        return Thm3Case("part2", high, low, hl, hh, part2_thresholds=thr, predicts_inefficient=bool(hit),
                        statement=("Thm 3.2: a high-value user is correlated with a low-value user; "
                                   + (f"v_{hit[0]} exceeds the proof's threshold {thr[hit[0]]:.6g} -> "
                                      f"equilibrium surplus < 0, inefficient" if hit else
                                      "no high-value user exceeds the proof's sufficient threshold")))
    thr = {}
    for i in sorted({x for pair in hh for x in pair}):
        I_i = _set_leakage(market, [i])
        thr[i] = (I_i[i] + sum(I_i[k] for k in high if k != i)) / I_i[i]
    hit = [i for i, t in thr.items() if v[i] < t * (1 - THRESHOLD_RTOL)]
    return Thm3Case("part3", high, low, hl, hh, part3_thresholds=thr, predicts_inefficient=bool(hit),
                    statement=("Thm 3.3: high-value users are correlated only among themselves; "
                               + (f"v_{hit[0]} < v̄_{hit[0]} = {thr[hit[0]]:.6g} -> some high-value user "
                                  f"shares, inefficient" if hit
                                  else "every v_i >= v̄_i: no sufficient condition holds")))


@dataclass(frozen=True)
class EfficiencyReport(Result):
    """First best vs equilibrium vs de-correlated equilibrium, with the paper's bounds and checks.

    Result protocol: ``objective`` is the largest equilibrium surplus, ``bound`` the first-best
    surplus (Prop 1: no profile has more), so ``gap`` is the relative welfare loss; ``seconds``
    adds up the three solves.
    """

    family: ClassVar[str] = "gaussian"

    n: int
    name: str | None
    source: str | None
    first_best: object
    equilibrium: object
    decorrelated: object
    efficient: bool
    prop3_bound: float
    prop3_condition6: bool
    prop4_lhs: float
    prop4_rhs: float
    prop4_condition7: bool
    thm3: Thm3Case
    checks: dict
    tol: float
    n_equilibria: int = 1
    equilibrium_surplus_min: float = float("nan")
    equilibrium_surplus_max: float = float("nan")
    status: Termination = Termination.OPTIMAL
    message: str = ""

    @property
    def welfare_loss(self) -> float:
        return self.first_best.surplus - self.equilibrium.surplus

    @property
    def objective(self) -> float:
        return float(self.equilibrium_surplus_max)

    @property
    def bound(self) -> float:
        return float(self.first_best.surplus)

    @property
    def seconds(self) -> float:
        return float(sum(r.seconds for r in (self.first_best, self.equilibrium, self.decorrelated)))

    def to_dict(self) -> dict:
        def res(r):
            return {"profile": [int(x) for x in r.profile], "surplus": r.surplus,
                    "objective": r.objective, "prices": r.prices.tolist(), "status": str(r.status),
                    "method": r.method}
        t = self.thm3
        return {
            **self.protocol_dict(),
            "name": self.name, "source": self.source, "n": self.n,
            "first_best": res(self.first_best), "equilibrium": res(self.equilibrium),
            "decorrelated": res(self.decorrelated), "efficient": self.efficient,
            "n_equilibria": self.n_equilibria,
            "equilibrium_surplus_range": [self.equilibrium_surplus_min, self.equilibrium_surplus_max],
            "welfare_loss": self.welfare_loss,
            "prop3": {"bound": self.prop3_bound, "condition6": self.prop3_condition6},
            "prop4": {"lhs": self.prop4_lhs, "rhs": self.prop4_rhs, "condition7": self.prop4_condition7},
            "thm3": {"case": t.case, "high": list(t.high), "low": list(t.low),
                     "high_low_pairs": [list(p) for p in t.high_low_pairs],
                     "high_high_pairs": [list(p) for p in t.high_high_pairs],
                     "part2_thresholds": {str(k): x for k, x in t.part2_thresholds.items()},
                     "part3_thresholds": {str(k): x for k, x in t.part3_thresholds.items()},
                     "predicts_efficient": t.predicts_efficient,
                     "predicts_inefficient": t.predicts_inefficient, "statement": t.statement},
            "checks": dict(self.checks), "tol": self.tol, "status": str(self.status), "message": self.message,
        }

    def to_json(self, **kw) -> str:
        return jsonenc.dumps(self.to_dict(), **kw)

    def format(self) -> str:
        L = []
        L.append(f"{self.name or 'gaussian market'}: efficiency report (n = {self.n})")
        if self.status is not Termination.OPTIMAL:
            L.append(f"STATUS {self.status}: {self.message}")
        if self.source:
            L.append(f"source: {self.source}")
        prof = lambda r: "".join(str(int(x)) for x in r.profile)
        L.append(f"{'':16}{'profile':>{max(8, self.n)}}  {'surplus':>14}")
        for label, r in (("first best", self.first_best), ("equilibrium", self.equilibrium),
                         ("de-correlated", self.decorrelated)):
            L.append(f"{label:16}{prof(r):>{max(8, self.n)}}  {r.surplus:>14.8g}")
        if self.n_equilibria > 1:
            L.append(f"{self.n_equilibria} equilibrium profiles tie for the platform; their surplus lies in "
                     f"[{self.equilibrium_surplus_min:.8g}, {self.equilibrium_surplus_max:.8g}]")
        L.append(f"efficient: {'yes' if self.efficient else 'no'} (every equilibrium; "
                 f"welfare loss {self.welfare_loss:.6g} at the listed one)")
        L.append(f"Prop 3 bound on equilibrium surplus: {self.prop3_bound:.8g}"
                 f"{'  (condition (6): bound < 0 -> surplus < 0)' if self.prop3_condition6 else ''}")
        L.append(f"Prop 4 condition (7): {self.prop4_lhs:.6g} > {self.prop4_rhs:.6g}? "
                 f"{'yes -> equilibrium surplus < 0' if self.prop4_condition7 else 'no'}")
        L.append(f"Thm 3: {self.thm3.case}: {self.thm3.statement}")
        bad = [k for k, ok in self.checks.items() if not ok]
        if self.status is not Termination.OPTIMAL:
            L.append("checks: not evaluated (some solve was not proven optimal)")
        else:
            L.append("checks: " + ("all hold" if not bad else "FAILED: " + ", ".join(bad)))
        return "\n".join(L)


def efficiency_report(market: GaussianMarket, *, method: str = "auto", corr_tol: float | None = None,
                      time_limit=None) -> EfficiencyReport:
    """Solve the three problems and evaluate Thm 3, Props 3–4 and Thm 6 (see module docstring).

    ``time_limit`` (seconds or a shared :class:`~dm_opt.core.limits.Deadline`) is one budget
    for the three solves; Ctrl-C is caught inside the backends.  If any solve is not
    proven optimal the report carries its ``status``, each result keeps its own
    incumbent, bound and status, and the checks and ``efficient`` are not evaluated
    (``checks`` empty, ``efficient`` False).
    """
    dl = Deadline.of(time_limit)

    def run(problem, how, **kw):
        left = dl.remaining()
        return api.solve(market, problem, how, time_limit=None if left is None else max(left, 1e-3), **kw)

    fb = run("first_best", method)
    every = method in ("auto", "enumerate") and market.n <= ALL_EQUILIBRIA_MAX_N
    eq = run("equilibrium", "enumerate" if every else method, all_optima=every)
    dc = run("decorrelated", method)
    stopped = [(label, r) for label, r in (("first best", fb), ("equilibrium", eq), ("de-correlated", dc))
               if r.status is not Termination.OPTIMAL]
    v = np.asarray(market.values, dtype=float)
    tol = 1e-9 * max(1.0, float(np.sum((1 + v) * market.sigma2)))
    bound = prop3_bound(market)
    lhs, rhs = prop4_terms(market)
    case = thm3_case(market, corr_tol)
    # the platform may be indifferent between several profiles: evaluate every equilibrium
    eq_profiles = list(eq.optima) if eq.optima else [eq.profile]
    surpluses = [market.surplus(a) for a in eq_profiles]
    lo, hi = min(surpluses), max(surpluses)
    efficient = lo >= fb.surplus - tol                # every equilibrium is efficient
    low = v <= 1
    checks = {
        "lemma3_low_value_users_share": all(bool(np.all(a[low] == 1)) for a in eq_profiles),
        "first_best_ge_equilibrium": fb.surplus >= hi - tol,
        "prop3_bound_holds": hi <= bound + tol,
        "prop3_condition6_implies_negative": (not bound < 0) or hi < 0,
        "prop4_condition7_implies_negative": (not lhs > rhs) or hi < 0,
        "thm6_decorrelated_ge_max_eq_0": dc.surplus >= max(hi, 0.0) - tol,
        "thm3_prediction_consistent": (not case.predicts_efficient or efficient)
                                      and (not case.predicts_inefficient or hi < fb.surplus - tol),
    }
    status, message = Termination.OPTIMAL, ""
    if stopped:
        status = Termination.INTERRUPTED if any(r.status is Termination.INTERRUPTED for _, r in stopped) \
            else stopped[0][1].status
        message = "not proven optimal: " + ", ".join(f"{label} ({r.status}, gap {r.gap:.2e})" for label, r in stopped)
        checks, efficient = {}, False
    return EfficiencyReport(market.n, market.name, market.source, fb, eq, dc, bool(efficient), bound,
                            bool(bound < 0), lhs, rhs, bool(lhs > rhs), case, checks, tol,
                            len(eq_profiles), lo, hi, status, message)


__all__ = ["prop1_condition", "prop3_bound", "prop4_terms", "Thm3Case", "thm3_case", "EfficiencyReport",
           "efficiency_report"]
