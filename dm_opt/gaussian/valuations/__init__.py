"""Unknown valuations: virtual values, the optimal mechanism of Thm B-2, VCG pricing (AMMO §5.2, App. B).

The platform does not know the values of privacy ``v_i``; it knows their
distributions ``F_i`` (independent across users).  Users report values; by the
revelation principle the platform picks a direct mechanism ``(a(v), p(v))``.

* **Virtual value** (Myerson, procurement side): ``Φ_i(v) = v + F_i(v) / f_i(v)``.
  Assumption 2 asks ``Φ_i`` to be nondecreasing; :func:`check_assumption2`
  warns with :class:`AssumptionWarning` naming the user and where it fails.
* **Discrete tables** ``P(V = v^m) = q_m`` (``v^1 < … < v^K``): the analogue is

      Φ(v^1) = v^1,     Φ(v^m) = v^m + (v^m − v^{m−1}) · P(V < v^m) / q_m.

  Derivation: with the highest type getting zero rent and the upward local IC
  constraints binding, the rent of type ``k`` is
  ``U_k = Σ_{m>k} (v^m − v^{m−1}) A_m``; the expected payment
  ``Σ_k q_k (v^k A_k + U_k)`` regroups as ``Σ_m A_m [q_m v^m + (v^m − v^{m−1}) P(V < v^m)]
  = Σ_m q_m Φ(v^m) A_m``, the exact analogue of ``E[p] = E[Φ(v) A(v)]`` in the
  proof of Thm B-2.  IC holds iff ``A_k`` is nonincreasing in ``k``, which the
  allocation guarantees when the discrete ``Φ`` is nondecreasing.
* **Allocation** (Thm B-2): ``a^E(v) = argmax_a Σ (1 − Φ_i(v_i)) I_i(a) + Φ_i(v_i) I_i(a_{−i}, 0)``,
  i.e. the equilibrium objective with ``Φ`` in place of ``v``
  (``LeakageObjective.weighted(1 − Φ, Φ)``), solved by :func:`dm_opt.solve`.
* **Payments** (Thm B-2, eq. B-18):
  ``p_i(v) = ∫_{v_i}^{v_max} A_i(x, v_{−i}) dx + v_i A_i(v_i, v_{−i})`` with
  ``A_i(x, v_{−i}) = I_i(a^E(x, v_{−i})) − I_i(a_{−i}^E(x, v_{−i}), 0) = a_i g_i(P_ii)``.
  ``A_i`` depends on ``x`` only through ``φ = Φ_i(x)`` and, as a function of ``φ``,
  is minus the slope of the convex envelope ``max_a (b_a − φ A_i(a))``: a
  nonincreasing step function whose breakpoints are found *exactly* by
  :func:`dm_opt.gaussian.parametric.envelope_pieces` (solver calls only, no grid),
  then mapped to ``x`` by inverting ``Φ_i`` (Brent's method to ~1e-15 relative).
  The integral is then an exact finite sum.  For discrete tables the payment is
  the exact sum ``v^k A(v^k) + Σ_{m>k} (v^m − v^{m−1}) A(v^m)``.
* **Expected platform payoff** (Thm B-2): ``E_v[max_a Σ (1 − Φ_i) I_i(a) + Φ_i I_i(a_{−i},0)]``,
  by exact summation over the product of supports for discrete tables and by
  seeded Monte Carlo with a 95% normal confidence interval otherwise.
* **VCG pricing** (Prop B-1): first-best allocation for the reports and
  ``p_i = h_i(a(v)) − min_a h_i(a)`` with ``h_i(a) = I_i(a) + Σ_{j≠i} (1 − v_j) I_j(a)``
  (one extra optimisation per user).  Truthful reporting is dominant for the
  full utility ``p_i − v_i I_i(a)``, so the second best equals the first best.

Known gap in the paper (reported by the tests, see ``docs/extensions_valuations_taxes.md``):
the IC proof of Thm B-2 works with the *rent* ``p_i − v A_i`` and ignores that a
misreport can change the others' sharing decisions and hence the externality
``v_i I_i(a_{−i}, 0)``; :func:`ic_violations` checks both notions.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from dm_opt.core.errors import AssumptionWarning, InstanceError, LimitExceeded, ProblemError
from dm_opt.core.result import Termination
from dm_opt.core.validate import MAX_ABS, as_real, as_vector
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.objectives import LeakageObjective
from dm_opt.gaussian.parametric import (
    Deadline,
    Line,
    Stopped,
    envelope_search,
    interrupted,
    json_num,
    no_partial_answer,
)

#: Grid size used by the (numerical) check of Assumption 2 for continuous distributions.
ASSUMPTION2_GRID = 2001
#: Relative slack allowed in that check (round-off in F/f).
ASSUMPTION2_RTOL = 1e-9
#: Largest ``(upper − lower)/scale`` of a truncated exponential (its density ratio e^700 stays finite).
TRUNCEXPON_MAX_RANGE = 700.0
#: Largest number of valuation profiles summed exactly by :func:`expected_platform_payoff`.
MAX_EXACT_PROFILES = 200_000


# ---------------------------------------------------------------------------
# distributions
# ---------------------------------------------------------------------------
class Valuation:
    """Distribution of one user's value of privacy (support in ``[0, ∞)``)."""

    is_discrete: bool = False
    lower: float
    upper: float

    def cdf(self, v):
        raise NotImplementedError

    def virtual_value(self, v):
        """``Φ(v)`` (array in, array out)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError

    def contains(self, v: float) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class ContinuousValuation(Valuation):
    """A scipy.stats frozen continuous distribution; ``Φ(v) = v + F(v)/f(v)``.

    Build with :func:`uniform`, :func:`truncated_exponential` or from any frozen
    ``rv_continuous`` whose support lies in ``[0, ∞)``.
    """

    def __init__(self, dist, label: str | None = None, field: str = "valuation", where: str | None = None):
        if not (hasattr(dist, "dist") and isinstance(dist.dist, stats.rv_continuous)):
            raise InstanceError(field, f"expected a frozen scipy.stats continuous distribution, "
                                f"got {type(dist).__name__}", where)
        lo, hi = (float(x) for x in dist.support())
        if not (np.isfinite(lo) and lo >= 0):
            raise InstanceError(field, f"support must lie in [0, inf) (values of privacy are >= 0); "
                                f"lower end is {lo}", where)
        self.dist = dist
        self.lower, self.upper = lo, hi
        self._label = label or f"{dist.dist.name}{tuple(dist.args)}{dict(dist.kwds) or ''}"

    def cdf(self, v):
        return self.dist.cdf(v)

    def virtual_value(self, v):
        v = np.asarray(v, dtype=float)
        F = self.dist.cdf(v)
        f = self.dist.pdf(v)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(F == 0, 0.0, F / f)
        return v + ratio

    def inverse_virtual_value(self, phi: float) -> float:
        """Smallest ``x`` in the support with ``Φ(x) ≥ phi`` (Brent; Φ nondecreasing)."""
        lo = self.lower
        if phi <= float(self.virtual_value(lo)):
            return lo
        hi = self.upper
        if not np.isfinite(hi):
            hi = max(1.0, 2 * lo)
            while float(self.virtual_value(hi)) < phi:
                hi *= 2.0
                if hi > 1e300:
                    return math.inf
        elif phi >= float(self.virtual_value(hi)):
            return hi
        return float(optimize.brentq(lambda x: float(self.virtual_value(x)) - phi, lo, hi,
                                     xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500))

    def sample(self, rng, size):
        return np.asarray(self.dist.rvs(size=size, random_state=rng), dtype=float)

    def contains(self, v):
        return self.lower <= v <= self.upper

    def describe(self):
        return self._label


class DiscreteValuation(Valuation):
    """A table ``P(V = values[m]) = probs[m]``; discrete virtual value (module docstring)."""

    is_discrete = True

    def __init__(self, values, probs, field: str = "valuation", where: str | None = None):
        values = as_vector(f"{field}.values", values, where=where, nonnegative=True)
        probs = as_vector(f"{field}.probs", probs, values.shape[0], where=where, positive=True)
        if np.any(np.diff(values) <= 0):
            raise InstanceError(f"{field}.values", "must be strictly increasing", where)
        if abs(probs.sum() - 1.0) > 1e-9:
            raise InstanceError(f"{field}.probs", f"must sum to 1, got {probs.sum():.12g}", where)
        self.values = values
        self.probs = probs / probs.sum()
        self.lower, self.upper = float(values[0]), float(values[-1])
        below = np.concatenate(([0.0], np.cumsum(self.probs)[:-1]))        # P(V < v^m)
        gaps = np.concatenate(([0.0], np.diff(values)))                      # v^m − v^{m−1}
        with np.errstate(over="ignore"):
            self.phi_table = values + gaps * below / self.probs
        if not np.all(self.phi_table <= MAX_ABS):     # Φ becomes the values of a Gaussian market
            m = int(np.argmax(~(self.phi_table <= MAX_ABS)))
            raise InstanceError(f"{field}.probs[{m}]", f"= {self.probs[m]:.6g} makes the virtual value Φ(v) = "
                                f"{self.phi_table[m]:.6g} at v = {values[m]:.6g} exceed {MAX_ABS:g}, the largest "
                                f"value accepted", where)

    def cdf(self, v):
        v = np.asarray(v, dtype=float)
        return np.sum(self.probs * (self.values <= v[..., None]), axis=-1)

    def index(self, v: float) -> int:
        hits = np.flatnonzero(np.isclose(self.values, v, rtol=1e-12, atol=0.0))
        if hits.size == 0:
            raise InstanceError("reported", f"value {v} is not in the support {self.values.tolist()}")
        return int(hits[0])

    def virtual_value(self, v):
        v = np.atleast_1d(np.asarray(v, dtype=float))
        out = np.array([self.phi_table[self.index(x)] for x in v])
        return out if out.size > 1 else out[0]

    def sample(self, rng, size):
        return rng.choice(self.values, size=size, p=self.probs)

    def contains(self, v):
        return bool(np.any(np.isclose(self.values, v, rtol=1e-12, atol=0.0)))

    def describe(self):
        return f"discrete(values={self.values.tolist()}, probs={self.probs.tolist()})"


def uniform(low: float, high: float) -> ContinuousValuation:
    """``U[low, high]``: ``Φ(v) = 2v − low`` (increasing)."""
    if not (0 <= low < high < math.inf):
        raise InstanceError("valuation", f"uniform needs 0 <= low < high < inf, got low={low}, high={high}")
    return ContinuousValuation(stats.uniform(loc=low, scale=high - low), f"uniform[{low}, {high}]")


def truncated_exponential(scale: float, upper: float, lower: float = 0.0) -> ContinuousValuation:
    """Exponential with mean ``scale`` truncated to ``[lower, upper]``:
    ``Φ(v) = v + scale (e^{(v−lower)/scale} − 1)``."""
    if not (scale > 0 and 0 <= lower < upper < math.inf):
        raise InstanceError("valuation", f"truncated exponential needs scale > 0 and 0 <= lower < upper < inf, "
                            f"got scale={scale}, lower={lower}, upper={upper}")
    return ContinuousValuation(stats.truncexpon(b=(upper - lower) / scale, loc=lower, scale=scale),
                               f"truncexp(scale={scale}, [{lower}, {upper}])")


def discrete(values, probs) -> DiscreteValuation:
    return DiscreteValuation(values, probs)


def as_valuation(x, field: str = "valuation", where: str | None = None) -> Valuation:
    """A :class:`Valuation` from itself, a frozen scipy distribution, or a spec table
    (``{dist = "uniform", low, high}``, ``{dist = "truncexpon", scale, upper, lower}``,
    ``{dist = "discrete", values, probs}``)."""
    if isinstance(x, Valuation):
        return x
    if isinstance(x, dict):
        kind = x.get("dist")
        args = {k: v for k, v in x.items() if k != "dist"}
        specs = {"uniform": ({"low", "high"}, set()), "truncexpon": ({"scale", "upper"}, {"lower"}),
                 "discrete": ({"values", "probs"}, set())}
        if not isinstance(kind, str) or kind not in specs:
            raise InstanceError(f"{field}.dist", f"unknown distribution {kind!r}; choose one of "
                                f"{', '.join(sorted(specs))}", where)
        req, opt = specs[kind]
        for k in sorted(req):
            if k not in args:
                raise InstanceError(f"{field}.{k}", "missing", where)
        extra = sorted(set(args) - req - opt)
        if extra:
            raise InstanceError(f"{field}.{extra[0]}", f"unknown field for dist = {kind!r}; allowed: "
                                f"{', '.join(sorted(req | opt))}", where)
        try:
            if kind == "discrete":
                return DiscreteValuation(args["values"], args["probs"], field, where)
            nums = {}
            for k, v in args.items():
                nums[k] = as_real(f"{field}.{k}", v, where)
            if kind == "uniform":
                d = uniform(nums["low"], nums["high"])
                top = "high"
            else:
                lo, up, sc = nums.get("lower", 0.0), nums["upper"], nums["scale"]
                if sc > 0 and (up - lo) / sc > TRUNCEXPON_MAX_RANGE:
                    raise InstanceError(f"{field}.scale", f"(upper - lower)/scale = {(up - lo) / sc:.6g} exceeds "
                                        f"{TRUNCEXPON_MAX_RANGE:g}: the density ratio e^((upper-lower)/scale) "
                                        f"overflows; raise scale or narrow [lower, upper]", where)
                d = truncated_exponential(sc, up, lo)
                top = "scale"
            with np.errstate(all="ignore"):
                phi_top = float(d.virtual_value(d.upper))
            if not phi_top <= MAX_ABS:      # Φ becomes the values of a Gaussian market
                raise InstanceError(f"{field}.{top}", f"makes the virtual value Φ({d.upper:.6g}) = {phi_top:.6g} "
                                    f"exceed {MAX_ABS:g}, the largest value accepted", where)
            return d
        except InstanceError as exc:
            if exc.where is None and where is not None:
                raise InstanceError(f"{field}", f"{exc.field}: {exc.problem}", where) from None
            raise
    return ContinuousValuation(x, field=field, where=where)


def check_assumption2(valuations, *, warn: bool = True) -> list[str]:
    """Check Assumption 2 (``Φ_i`` nondecreasing) for every user; returns the failure messages.

    Discrete tables are checked exactly; continuous ones on a grid of
    :data:`ASSUMPTION2_GRID` points over the support (quantiles 1e-9 … 1 − 1e-9
    for unbounded supports) — a numerical check, not a proof.  Each failure is
    also issued as an :class:`AssumptionWarning` when ``warn``.
    """
    problems = []
    for i, d in enumerate(valuations):
        if d.is_discrete:
            x, phi = d.values, d.phi_table
        else:
            lo = d.lower if np.isfinite(d.lower) else float(d.dist.ppf(1e-9))
            hi = d.upper if np.isfinite(d.upper) else float(d.dist.ppf(1 - 1e-9))
            x = np.linspace(lo, hi, ASSUMPTION2_GRID)
            phi = d.virtual_value(x)
        finite = np.isfinite(phi)
        x, phi = x[finite], phi[finite]
        drop = np.diff(phi) < -ASSUMPTION2_RTOL * np.maximum(1.0, np.abs(phi[:-1]))
        if np.any(drop):
            k = int(np.argmax(drop))
            msg = (f"Assumption 2 fails for user {i} ({d.describe()}): the virtual value "
                   f"Φ(v) = v + F(v)/f(v) decreases from Φ({x[k]:.6g}) = {phi[k]:.6g} to "
                   f"Φ({x[k + 1]:.6g}) = {phi[k + 1]:.6g}; Thm B-2's payments need Φ nondecreasing "
                   f"(iron it: dm_opt.gaussian.valuations.iron / ironed_market)")
            problems.append(msg)
            if warn:
                warnings.warn(msg, AssumptionWarning, stacklevel=2)
    return problems


# ---------------------------------------------------------------------------
# market with valuation distributions
# ---------------------------------------------------------------------------
class ValuationMarket:
    """A Gaussian market whose values of privacy are private information (AMMO §5.2).

    Parameters
    ----------
    market : GaussianMarket
        ``Σ``, ``τ²``; its ``values`` are the *true/reported* values ``v`` used by
        default (e.g. in instance files).
    valuations : sequence of Valuation (or frozen scipy distributions / spec tables), length n
        The distributions ``F_i`` known to the platform.
    """

    kind = "gaussian_valuations"
    #: Monte Carlo draws and seed for the expected payoff (instance fields ``samples``, ``seed``).
    samples: int = 1000
    seed: int = 0

    def __init__(self, market: GaussianMarket, valuations, *, where: str | None = None, warn: bool = True):
        if not isinstance(market, GaussianMarket):
            raise InstanceError("market", f"expected a GaussianMarket, got {type(market).__name__}", where)
        single = isinstance(valuations, (Valuation, dict)) or hasattr(valuations, "dist")
        if single:   # one distribution for everybody: errors name "valuations", not "valuations[i]"
            valuations = [as_valuation(valuations, "valuations", where)] * market.n
        elif isinstance(valuations, (str, bytes)) or not hasattr(valuations, "__iter__"):
            raise InstanceError("valuations", f"expected a distribution or a list of {market.n} "
                                f"(one per user), got {type(valuations).__name__}", where)
        valuations = list(valuations)
        if len(valuations) != market.n:
            raise InstanceError("valuations", f"expected {market.n} distributions (one per user), "
                                f"got {len(valuations)}", where)
        self.market = market
        self.valuations = tuple(as_valuation(d, f"valuations[{i}]", where) for i, d in enumerate(valuations))
        for i, (d, v) in enumerate(zip(self.valuations, market.values, strict=True)):
            if not d.contains(float(v)):
                raise InstanceError(f"values[{i}]", f"{v} is outside the support of valuations[{i}] "
                                    f"({d.describe()})", where)
        self.assumption2_failures = tuple(check_assumption2(self.valuations, warn=warn))
        self.name = market.name
        self.source = market.source

    @property
    def n(self) -> int:
        return self.market.n

    def virtual_values(self, reported=None) -> np.ndarray:
        """``Φ_i(v_i)`` for the reported values (default: the market's values), shape (n,)."""
        v = self._reported(reported)
        return np.array([float(d.virtual_value(x)) for d, x in zip(self.valuations, v, strict=True)])

    def _reported(self, reported) -> np.ndarray:
        if reported is None:
            return np.asarray(self.market.values, dtype=float)
        v = as_vector("reported", reported, self.n, nonnegative=True)
        for i, (d, x) in enumerate(zip(self.valuations, v, strict=True)):
            if not d.contains(float(x)):
                raise InstanceError(f"reported[{i}]", f"{x} is outside the support ({d.describe()})")
        return v

    def __repr__(self):
        return f"<ValuationMarket n={self.n}>"


# ---------------------------------------------------------------------------
# allocation, payments (Thm B-2)
# ---------------------------------------------------------------------------
def virtual_objective(phi: np.ndarray) -> LeakageObjective:
    """Thm B-2's allocation objective ``Σ (1 − Φ_i) I_i(a) + Φ_i I_i(a_{−i}, 0)``."""
    phi = np.asarray(phi, dtype=float)
    return LeakageObjective.weighted(1.0 - phi, phi, name="virtual_equilibrium")


def _solve(market, objective, method, **kw):
    from dm_opt.gaussian.api import solve

    return solve(market, objective, method, **kw)


def _assumption2_ok(vm: "ValuationMarket", i: int) -> bool:
    return not any(f"user {i} " in msg for msg in vm.assumption2_failures)


def _incumbent_note(stop: Stopped) -> str:
    res = stop.result
    if res is None or not res.has_solution:
        return ""
    return (f"; best profile found {''.join(str(int(x)) for x in res.profile)} with objective "
            f"{res.objective:.10g} <= optimum <= {res.bound:.10g}")


@dataclass(frozen=True)
class AllocationSteps:
    """``A_i(x, v_{−i})`` over ``x ∈ [x_lo, x_hi]`` as a nonincreasing step function.

    ``edges`` (K+1,) ascending in ``x``; ``A`` (K,) value on ``[edges[k], edges[k+1]]``;
    ``phi_edges`` the breakpoints in virtual-value space (exact envelope breakpoints).
    ``A`` is 0 beyond ``edges[-1]``.

    A search stopped by a time limit or Ctrl-C (``status`` ``time_limit``/``interrupted``)
    keeps its proven steps (a prefix of the range) and covers the rest by intervals on which
    only ``A_lower[k] ≤ A_i ≤ A_upper[k]`` is proven (``A[k]`` is NaN there): the slopes of the
    optimal lines at the interval's two ends, because ``A_i`` is minus a subgradient of the convex
    envelope in ``φ`` (nonincreasing) and ``Φ_i`` is nondecreasing (Assumption 2).  For a complete
    search ``A_lower == A_upper == A``.
    """

    user: int
    edges: np.ndarray
    phi_edges: np.ndarray
    A: np.ndarray
    solver_calls: int
    A_lower: np.ndarray | None = None
    A_upper: np.ndarray | None = None
    status: Termination = Termination.OPTIMAL
    message: str = ""

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.A_lower is None:
            object.__setattr__(self, "A_lower", self.A)
        if self.A_upper is None:
            object.__setattr__(self, "A_upper", self.A)

    @property
    def complete(self) -> bool:
        return self.status is Termination.OPTIMAL

    def integral(self) -> float:
        """``∫_{edges[0]}^{edges[-1]} A(x) dx`` (exact finite sum; complete searches only)."""
        if not self.complete:
            raise ProblemError(f"A_{self.user}(x) was not fully resolved ({self.status}: {self.message}); "
                               f"use integral_bounds()")
        return float(np.dot(self.A, np.diff(self.edges)))

    def integral_bounds(self) -> tuple[float, float]:
        """Proven ``(lower, upper)`` on ``∫ A(x) dx`` (equal, the exact integral, when complete)."""
        w = np.diff(self.edges)
        return float(np.dot(self.A_lower, w)), float(np.dot(self.A_upper, w))

    def __call__(self, x: float) -> float:
        """``A_i(x)`` for ``x ≥ edges[0]`` (0 beyond ``edges[-1]``)."""
        if x < self.edges[0]:
            raise ProblemError(f"x = {x} is below the searched range starting at {self.edges[0]}")
        if x > self.edges[-1]:
            return 0.0
        k = min(max(int(np.searchsorted(self.edges, x, side="right")) - 1, 0), self.A.size - 1)
        if np.isnan(self.A[k]):
            raise ProblemError(f"A_{self.user}({x}) was not resolved ({self.status}); proven bounds "
                               f"[{self.A_lower[k]:.10g}, {self.A_upper[k]:.10g}]")
        return float(self.A[k])


def _phi_range(vm: "ValuationMarket", i: int, x_lo: float) -> tuple[float, float]:
    """``[Φ_i(x_lo), min(Φ_i(v_max), φ_cap)]`` (see :func:`allocation_steps`)."""
    d = vm.valuations[i]
    m = vm.market
    g_min = float(m.own_leakage(np.ones(m.n, dtype=np.int8))[i])
    phi_cap = float(np.sum(m.sigma2)) / g_min * (1 + 1e-12)
    phi_lo = float(d.virtual_value(x_lo))
    phi_hi = min(float(d.virtual_value(d.upper)) if np.isfinite(d.upper) else math.inf, phi_cap)
    return phi_lo, max(phi_hi, phi_lo)


def _allocation_steps(vm, user, reported, method, x_lo, deadline: Deadline):
    """(steps or None if nothing was proven, envelope search)."""
    d = vm.valuations[user]
    if d.is_discrete:
        raise ProblemError("allocation_steps is for continuous distributions; discrete tables are summed exactly")
    i = int(user)
    if not _assumption2_ok(vm, i):
        raise ProblemError(f"Assumption 2 fails for user {i}: the payments of Thm B-2 need Φ nondecreasing "
                           f"(iron it first: dm_opt.gaussian.valuations.ironed_market)")
    v = vm._reported(reported)
    m = vm.market
    phi_all = vm.virtual_values(v)
    x_lo = float(v[i]) if x_lo is None else float(x_lo)
    phi_lo, phi_hi = _phi_range(vm, i, x_lo)

    def evaluate(phi: float) -> Line:
        w = phi_all.copy()
        w[i] = phi
        res = deadline.solve(m, virtual_objective(w), method)
        s = float(m.own_leakage(res.profile)[i])
        return Line(res.objective + phi * s, s, res)

    tol = 1e-9 * (float(np.sum(m.sigma2)) * (1 + float(np.max(np.abs(phi_all)))) + phi_hi * float(np.max(m.sigma2)))
    env = envelope_search(evaluate, phi_lo, phi_hi, tol)
    if not env.pieces and not env.gaps:
        return None, env
    pieces, gaps = env.pieces, env.gaps
    phi_edges = np.array([pieces[0].lo if pieces else gaps[0].lo] + [p.hi for p in pieces] + [g.hi for g in gaps])
    slopes = [p.line.slope for p in pieces]
    A = np.array(slopes + [math.nan] * len(gaps))
    A_lower = np.array(slopes + [(g.right.slope if g.right is not None else 0.0) for g in gaps])   # A_i >= 0
    A_upper = np.array(slopes + [g.left.slope for g in gaps])
    edges = np.array([x_lo] + [d.inverse_virtual_value(p) for p in phi_edges[1:]])
    edges[0] = x_lo
    edges = np.maximum.accumulate(edges)
    return AllocationSteps(i, edges, phi_edges, A, env.evaluations, A_lower, A_upper, env.status, env.message), env


def allocation_steps(vm: ValuationMarket, user: int, reported, *, method: str = "auto",
                     x_lo: float | None = None, time_limit=None) -> AllocationSteps:
    """Exact breakpoints of ``x ↦ A_i(x, v_{−i})`` on ``[x_lo, v_max]`` (default ``x_lo = v_i``).

    Searches the envelope over ``φ ∈ [Φ_i(x_lo), φ_cap]`` where
    ``φ_cap = min(Φ_i(v_max), Σ_j σ_j² / g_i(P_ii(1)))``: above ``Σσ²/g_i(P_ii(1))`` user ``i``
    never shares, because any profile with ``i`` sharing has value at most
    ``Σ_j σ_j² − φ g_i(P_ii(a)) < 0 = f(∅)`` (``g_i`` is increasing and ``P_ii(a) ≥ P_ii(1)``).

    ``time_limit`` (seconds, ``None`` = no limit; or a :class:`~dm_opt.gaussian.parametric.Deadline`
    shared with a caller) bounds all the solves together; on expiry or Ctrl-C the proven steps
    and bounds are returned with that ``status`` (see :class:`AllocationSteps`).  If not even
    ``A_i(x_lo)`` was solved: :class:`~dm_opt.core.errors.LimitExceeded` (time) or ``KeyboardInterrupt``.
    """
    deadline = Deadline.of(time_limit)
    st, env = _allocation_steps(vm, user, reported, method, x_lo, deadline)
    if st is None:
        no_partial_answer(env.status, f"allocation steps of user {user}: {env.message} before A_i(x_lo) was solved")
    return st


@dataclass(frozen=True)
class MechanismOutcome:
    """Thm B-2 at one report vector ``v``.

    ``profile`` is ``a^E(v)``; ``payments`` ``p_i^E(v)`` (0 for non-sharers);
    ``allocation`` ``A_i(v_i, v_{−i})``; ``rents`` ``p_i − v_i A_i`` (information rents, ≥ 0);
    ``virtual_objective`` the maximised virtual objective; ``platform_payoff``
    ``Σ I_i(a) − Σ p_i``; ``surplus`` ``Σ (1 − v_i) I_i(a)`` at the reported values;
    ``steps`` the exact step functions used for continuous users (``None`` for discrete).

    Limits: ``status`` is ``optimal`` when every payment is exact.  After a time limit or
    Ctrl-C (``time_limit``/``interrupted``) the allocation is still a proven optimum (it is
    solved first; without it there is no outcome), ``payments_exact[i]`` says whose payments
    were completed, the others are NaN (so are their rents and ``platform_payoff``), and
    ``payment_bounds[i] = (lo, hi)`` / ``platform_payoff_bounds`` are proven intervals
    (equal to the payment for exact users).  For a user not reached, ``A_i(x) ∈ [0, A_i(v_i)]``
    on ``[v_i, x_max]`` and 0 beyond (``A_i`` nonincreasing: envelope slope, Φ nondecreasing),
    so ``p_i ∈ [v_i A_i, v_i A_i + A_i (x_max − v_i)]``; partly searched users use the proven
    steps and the gap bounds of :class:`AllocationSteps` (discrete tables: the levels solved
    so far, ``0 ≤ A_m ≤`` the last solved level).
    """

    reported: np.ndarray
    virtual_values: np.ndarray
    profile: np.ndarray
    payments: np.ndarray
    allocation: np.ndarray
    rents: np.ndarray
    virtual_objective: float
    platform_payoff: float
    surplus: float
    steps: tuple = field(default_factory=tuple)
    result: object = None
    status: Termination = Termination.OPTIMAL
    payment_bounds: np.ndarray | None = None
    payments_exact: np.ndarray | None = None
    platform_payoff_bounds: tuple | None = None
    message: str = ""

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.payment_bounds is None:
            object.__setattr__(self, "payment_bounds", np.column_stack([self.payments, self.payments]))
        if self.payments_exact is None:
            object.__setattr__(self, "payments_exact", np.ones(len(self.payments), dtype=bool))
        if self.platform_payoff_bounds is None:
            object.__setattr__(self, "platform_payoff_bounds", (self.platform_payoff, self.platform_payoff))

    @property
    def complete(self) -> bool:
        return self.status is Termination.OPTIMAL

    def to_dict(self) -> dict:
        num = lambda xs: [json_num(x) for x in xs]   # noqa: E731  (NaN = not computed -> null)
        return {
            "status": str(self.status), "message": self.message,
            "reported": self.reported.tolist(), "virtual_values": self.virtual_values.tolist(),
            "profile": [int(x) for x in self.profile], "payments": num(self.payments),
            "payments_exact": [bool(x) for x in self.payments_exact],
            "payment_bounds": [num(b) for b in self.payment_bounds],
            "allocation": self.allocation.tolist(), "rents": num(self.rents),
            "virtual_objective": self.virtual_objective, "platform_payoff": json_num(self.platform_payoff),
            "platform_payoff_bounds": num(self.platform_payoff_bounds),
            "surplus": self.surplus,
            "breakpoints": {str(s.user): s.edges.tolist() for s in self.steps if s is not None},
        }


def _coarse_payment_bounds(vm: ValuationMarket, i: int, v: np.ndarray, A_v: float) -> tuple[float, float]:
    """``p_i ∈ [v_i A_i(v_i), v_i A_i(v_i) + top (x_max − v_i)]`` without any further solve (see MechanismOutcome)."""
    d = vm.valuations[i]
    m = vm.market
    if _assumption2_ok(vm, i):
        top = A_v                                            # A_i nonincreasing in x
    else:                                                    # any sharer's own leakage is at most g_i(P_ii({i}))
        top = float(m.own_leakage(np.eye(m.n, dtype=np.int8)[i])[i])
    if d.is_discrete:
        x_hi = d.upper
    else:
        x_hi = max(d.inverse_virtual_value(_phi_range(vm, i, float(v[i]))[1]), float(v[i]))
    base = float(v[i]) * A_v
    return base, base + top * (x_hi - float(v[i]))


def _discrete_payment(vm: ValuationMarket, i: int, v: np.ndarray, phi: np.ndarray, method: str,
                      deadline: Deadline, A_k: float):
    """(lower, upper, stop or None): the exact sum ``v^k A_k + Σ_{m>k} (v^m − v^{m−1}) A_m`` when every level
    was solved (``A_k`` is the allocation's own term); after a stop, the unsolved ``A_m ∈ [0, A_last]``."""
    d = vm.valuations[i]
    k = d.index(float(v[i]))
    m = vm.market
    A = np.zeros(d.values.size)
    A[k] = A_k                                   # = the solve at Φ_i = φ^k, which is the allocation itself
    done = k + 1
    stop = None
    try:
        for j in range(k + 1, d.values.size):
            w = phi.copy()
            w[i] = d.phi_table[j]
            res = deadline.solve(m, virtual_objective(w), method)
            A[j] = float(m.own_leakage(res.profile)[i])
            done = j + 1
    except Stopped as s:
        stop = s
    except KeyboardInterrupt:
        stop = interrupted()
    gaps = np.diff(d.values)
    if stop is None:
        exact = float(d.values[k] * A[k] + np.dot(gaps[k:], A[k + 1:]))
        return exact, exact, None
    known = float(d.values[k] * A[k] + np.dot(gaps[k:done - 1], A[k + 1:done]))
    top = A[done - 1] if _assumption2_ok(vm, i) else float(m.own_leakage(np.eye(m.n, dtype=np.int8)[i])[i])
    return known, known + float(top) * float(np.sum(gaps[done - 1:])), stop


def _mechanism(vm: ValuationMarket, v: np.ndarray, method: str, deadline: Deadline) -> MechanismOutcome:
    """Thm B-2 at ``v``; raises :class:`Stopped` if the allocation itself is not proven optimal."""
    m = vm.market
    phi = vm.virtual_values(v)
    res = deadline.solve(m, virtual_objective(phi), method)
    a = res.profile
    own = m.own_leakage(a)
    payments = np.zeros(m.n)
    bounds = np.zeros((m.n, 2))
    exact = np.ones(m.n, dtype=bool)
    steps = []
    stop = None
    for i in range(m.n):
        if a[i] == 0:
            steps.append(None)       # A_i(x) ≤ A_i(v_i) = 0 for x ≥ v_i: payment 0
            continue
        d = vm.valuations[i]
        if not _assumption2_ok(vm, i):     # discrete tables too: a non-monotone A breaks IC silently
            raise ProblemError(f"Assumption 2 fails for user {i}: the payments of Thm B-2 need Φ nondecreasing "
                               f"(iron it first: dm_opt.gaussian.valuations.ironed_market)")
        lo = hi = None
        st = None
        if stop is None:
            try:
                if d.is_discrete:
                    lo, hi, stop = _discrete_payment(vm, i, v, phi, method, deadline, float(own[i]))
                else:
                    st, env = _allocation_steps(vm, i, v, method, None, deadline)
                    if st is not None:
                        blo, bhi = st.integral_bounds()
                        lo, hi = blo + v[i] * own[i], bhi + v[i] * own[i]
                    if not env.complete:
                        stop = Stopped(env.status, env.message)
                exact[i] = stop is None
            except KeyboardInterrupt:
                stop = interrupted()
                exact[i] = False
                lo = hi = None
        else:
            exact[i] = False
        if lo is None:
            lo, hi = _coarse_payment_bounds(vm, i, v, float(own[i]))
        bounds[i] = lo, hi
        payments[i] = lo if exact[i] else math.nan
        steps.append(st)
    leak = m.leakage(a)
    status = Termination.OPTIMAL if stop is None else stop.status
    message = "" if stop is None else (
        f"{stop.message}: payments exact for users {np.flatnonzero(exact & (a == 1)).tolist()}, "
        f"proven bounds for users {np.flatnonzero(~exact).tolist()}")
    total = float(leak.sum())
    return MechanismOutcome(
        reported=v, virtual_values=phi, profile=a, payments=payments, allocation=own,
        rents=payments - v * own, virtual_objective=float(res.objective),
        platform_payoff=float(total - payments.sum()), surplus=float(np.dot(1 - v, leak)),
        steps=tuple(steps), result=res, status=status, payment_bounds=bounds, payments_exact=exact,
        platform_payoff_bounds=(total - float(bounds[:, 1].sum()), total - float(bounds[:, 0].sum())),
        message=message,
    )


def mechanism(vm: ValuationMarket, reported=None, *, method: str = "auto", time_limit=None) -> MechanismOutcome:
    """The platform's optimal mechanism (Thm B-2) at reports ``reported`` (default: the market's values).

    ``time_limit``: seconds for all solves together (``None`` = no limit).  On expiry or Ctrl-C
    the outcome has status ``time_limit``/``interrupted``, exact payments for the users completed
    and proven bounds for the others (:class:`MechanismOutcome`).  If the allocation itself was
    not proven optimal there is no mechanism: :class:`~dm_opt.core.errors.LimitExceeded` (time limit)
    or ``KeyboardInterrupt`` (Ctrl-C).
    """
    deadline = Deadline.of(time_limit)
    v = vm._reported(reported)
    try:
        return _mechanism(vm, v, method, deadline)
    except Stopped as s:
        no_partial_answer(s.status, f"Thm B-2 allocation not proven optimal ({s.message}){_incumbent_note(s)}; "
                          f"no payments computed")


def user_utility(vm: ValuationMarket, user: int, true_value: float, outcome: MechanismOutcome) -> tuple[float, float]:
    """User ``i``'s (rent, full utility) at ``outcome`` when her true value is ``true_value``.

    rent = ``p_i − v A_i`` (the quantity in the IC proof, eq. B-17);
    full = ``a_i p_i − v I_i(a)`` (§2.2 payoff, includes the externality ``v I_i(a_{−i},0)``).
    """
    i = int(user)
    rent = outcome.payments[i] - true_value * outcome.allocation[i]
    full = outcome.payments[i] - true_value * float(vm.market.leakage(outcome.profile)[i])
    return float(rent), float(full)


@dataclass(frozen=True)
class ICReport:
    """Largest gains from misreporting on a grid: ``rent_gain`` (B-17) and ``full_gain`` (§2.2 payoff).

    ``checked`` of ``grid_size`` grid points were evaluated; with ``status`` ``time_limit`` /
    ``interrupted`` (``checked < grid_size``) the gains are those of the points checked — lower
    bounds on the grid's largest gains.
    """

    user: int
    true_value: float
    rent_gain: float
    rent_argmax: float
    full_gain: float
    full_argmax: float
    status: Termination = Termination.OPTIMAL
    checked: int = 0
    grid_size: int = 0
    message: str = ""


def ic_violations(vm: ValuationMarket, user: int, reported=None, *, grid=None, method: str = "auto",
                  time_limit=None) -> ICReport:
    """Best misreport of ``user`` on ``grid`` (default: 41 points over the support, or the table).

    ``time_limit`` (seconds) / Ctrl-C: the grid points checked so far are reported with that status.
    """
    deadline = Deadline.of(time_limit)
    v = vm._reported(reported)
    i = int(user)
    d = vm.valuations[i]
    if grid is None:
        if d.is_discrete:
            grid = d.values
        else:
            hi = d.upper if np.isfinite(d.upper) else float(d.dist.ppf(1 - 1e-6))
            grid = np.linspace(d.lower, hi, 41)
    grid = np.asarray(grid, dtype=float)
    try:
        truth = _mechanism(vm, v, method, deadline)
    except Stopped as s:
        no_partial_answer(s.status, f"IC check of user {i}: truthful mechanism not solved ({s.message})")
    if not truth.payments_exact[i]:
        no_partial_answer(truth.status, f"IC check of user {i}: truthful payment not computed ({truth.message})")
    r0, f0 = user_utility(vm, i, v[i], truth)
    best_r, arg_r, best_f, arg_f = 0.0, float(v[i]), 0.0, float(v[i])
    status, message, checked = Termination.OPTIMAL, "", 0
    try:
        for x in grid:
            w = v.copy()
            w[i] = x
            out = _mechanism(vm, w, method, deadline)
            if out.payments_exact[i]:                # only user i's payment matters here
                r, f = user_utility(vm, i, v[i], out)
                if r - r0 > best_r:
                    best_r, arg_r = r - r0, float(x)
                if f - f0 > best_f:
                    best_f, arg_f = f - f0, float(x)
                checked += 1
            if not out.complete:                     # stopped inside: do not start another point
                status, message = out.status, out.message
                break
    except Stopped as s:
        status, message = s.status, s.message
    except KeyboardInterrupt:
        status, message = Termination.INTERRUPTED, "interrupted by the user"
    if status is not Termination.OPTIMAL:
        message = f"{message}: {checked} of {grid.size} grid points checked"
    return ICReport(i, float(v[i]), best_r, arg_r, best_f, arg_f, status, checked, int(grid.size), message)


# ---------------------------------------------------------------------------
# expected platform payoff
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ExpectedPayoff:
    """``E_v[platform payoff]`` (Thm B-2).  ``method`` is ``"exact"`` (discrete tables, a finite sum;
    ``std_error = 0``) or ``"monte_carlo"`` (``samples`` draws with ``seed``; 95% normal CI).

    Limits: ``status`` ``optimal`` = every requested term was computed.  After a time limit or
    Ctrl-C: *exact* — ``mean`` is NaN and ``[lower, upper]`` (also ``ci_low``, ``ci_high``) is a
    proven interval for the expectation: the ``samples`` report vectors done contribute exactly,
    each remaining one between 0 (nobody shares) and ``F(φ_min)`` — the optimum at the smallest
    virtual values, the objective being nonincreasing in every ``Φ_j`` — or ``Σ_j I_j(1)`` if that
    vector was not solved; *Monte Carlo* — mean and CI of the ``samples`` draws done (of
    ``requested``), a smaller but still unbiased sample.  ``lower``/``upper`` are NaN for Monte Carlo.
    """

    mean: float
    ci_low: float
    ci_high: float
    std_error: float
    method: str
    samples: int
    seed: int | None = None
    status: Termination = Termination.OPTIMAL
    lower: float = math.nan
    upper: float = math.nan
    requested: int | None = None
    message: str = ""

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.requested is None:
            object.__setattr__(self, "requested", self.samples)

    def to_dict(self):
        d = dict(self.__dict__)
        d["status"] = str(self.status)
        for k in ("mean", "ci_low", "ci_high", "std_error", "lower", "upper"):
            d[k] = json_num(d[k])
        return d


def expected_platform_payoff(vm: ValuationMarket, *, samples: int = 1000, seed: int = 0,
                             method: str = "auto", max_profiles: int = MAX_EXACT_PROFILES,
                             time_limit=None) -> ExpectedPayoff:
    """``E_v[max_a Σ (1 − Φ_i(v_i)) I_i(a) + Φ_i(v_i) I_i(a_{−i}, 0)]`` (Thm B-2).

    All-discrete: exact sum over ``Π_i |support_i|`` report vectors (at most
    ``max_profiles``).  Otherwise Monte Carlo with ``samples`` seeded draws and a
    95% confidence interval ``mean ± 1.96 · sd / √samples``.  ``time_limit`` (seconds) /
    Ctrl-C: partial sums with proven bounds, or fewer draws (see :class:`ExpectedPayoff`);
    with nothing computed (or fewer than 2 draws) LimitExceeded / KeyboardInterrupt.
    """
    deadline = Deadline.of(time_limit)
    m = vm.market
    if all(d.is_discrete for d in vm.valuations):
        sizes = [d.values.size for d in vm.valuations]
        total = int(np.prod(sizes, dtype=np.int64))
        if total > max_profiles:
            raise LimitExceeded(f"exact expectation sums {total} report vectors > max_profiles = {max_profiles}; "
                                f"pass a larger max_profiles")
        idx_min = tuple(int(np.argmin(d.phi_table)) for d in vm.valuations)
        mean = mass = 0.0
        done = 0
        top = None
        stop = None
        try:
            for idx in itertools.product(*(range(s) for s in sizes)):
                prob = float(np.prod([d.probs[k] for d, k in zip(vm.valuations, idx, strict=True)]))
                phi = np.array([d.phi_table[k] for d, k in zip(vm.valuations, idx, strict=True)])
                value = deadline.solve(m, virtual_objective(phi), method).objective
                mean += prob * value
                mass += prob
                done += 1
                if idx == idx_min:
                    top = float(value)
        except Stopped as s:
            stop = s
        except KeyboardInterrupt:
            stop = interrupted()
        if stop is None:
            return ExpectedPayoff(mean, mean, mean, 0.0, "exact", total, None, lower=mean, upper=mean)
        if done == 0:
            no_partial_answer(stop.status, f"expected payoff: {stop.message} before the first report vector")
        if top is None:
            top = float(np.sum(m.leakage(np.ones(m.n, dtype=np.int8))))
        rest = max(0.0, 1.0 - mass)
        lo, hi = mean, mean + rest * top
        return ExpectedPayoff(math.nan, lo, hi, math.nan, "exact", done, None, stop.status, lo, hi, total,
                              f"{stop.message}: {done} of {total} report vectors summed "
                              f"(probability {mass:.6g}); the rest bounded in [0, {top:.6g}] each")
    if not (isinstance(samples, int) and samples >= 2):
        raise ProblemError(f"samples must be an integer >= 2, got {samples!r}")
    rng = np.random.default_rng(seed)
    draws = np.column_stack([d.sample(rng, samples) for d in vm.valuations])
    vals = np.empty(samples)
    done = 0
    stop = None
    try:
        for s in range(samples):
            phi = np.array([float(d.virtual_value(x)) for d, x in zip(vm.valuations, draws[s], strict=True)])
            vals[s] = deadline.solve(m, virtual_objective(phi), method).objective
            done += 1
    except Stopped as st:
        stop = st
    except KeyboardInterrupt:
        stop = interrupted()
    if stop is not None and done < 2:
        no_partial_answer(stop.status, f"expected payoff: {stop.message} after {done} Monte Carlo draws (need 2)")
    vals = vals[:done]
    mean = float(vals.mean())
    se = float(vals.std(ddof=1) / math.sqrt(done))
    if stop is None:
        return ExpectedPayoff(mean, mean - 1.96 * se, mean + 1.96 * se, se, "monte_carlo", samples, seed)
    return ExpectedPayoff(mean, mean - 1.96 * se, mean + 1.96 * se, se, "monte_carlo", done, seed, stop.status,
                          requested=samples, message=f"{stop.message}: {done} of {samples} draws")


# ---------------------------------------------------------------------------
# Lemma 3 analogue, Prop B-2, VCG (Prop B-1)
# ---------------------------------------------------------------------------
def prop_b2_bound(vm: ValuationMarket, reported=None) -> float:
    """Prop B-2: ``Σ_{v_i ≤ 1} (1 − v_i) I_i(V) − Σ_{v_i > 1} (v_i − 1) I_i(V_Φ^{(l)})``,
    an upper bound on the surplus of ``a^E(v)``; ``V_Φ^{(l)} = {i : Φ_i(v_i) ≤ 1}``."""
    v = vm._reported(reported)
    m = vm.market
    phi = vm.virtual_values(v)
    low = v <= 1
    I_all = m.leakage(np.ones(m.n, dtype=np.int8))
    I_phi = m.leakage((phi <= 1).astype(np.int8))
    return float(np.sum((1 - v[low]) * I_all[low]) - np.sum((v[~low] - 1) * I_phi[~low]))


@dataclass(frozen=True)
class VCGOutcome:
    """Prop B-1: first-best ``profile`` for the reports and prices ``p_i ≥ 0`` paid to every user.

    Limits: after a time limit or Ctrl-C (``status``) the first best is still proven (it is
    solved first), ``prices[i]``/``h_min[i]`` are NaN for users whose ``min_a h_i`` was not
    proven, and ``price_bounds[i] = (lo, hi)`` is a proven interval: from the stopped solve's
    incumbent and bound when it has one, else ``min_a h_i ∈ [Σ_j min(w_j, 0) I_j(1), h_i(∅) = 0]``
    (leakage is monotone, ``0 ≤ I_j(a) ≤ I_j(1)``).
    """

    reported: np.ndarray
    profile: np.ndarray
    prices: np.ndarray
    surplus: float
    h_at_profile: np.ndarray
    h_min: np.ndarray
    status: Termination = Termination.OPTIMAL
    price_bounds: np.ndarray | None = None
    message: str = ""

    def __post_init__(self):
        object.__setattr__(self, "status", Termination(self.status))
        if self.price_bounds is None:
            object.__setattr__(self, "price_bounds", np.column_stack([self.prices, self.prices]))

    @property
    def complete(self) -> bool:
        return self.status is Termination.OPTIMAL

    def utility(self, market: GaussianMarket, user: int, true_value: float) -> float:
        """``p_i − v_i I_i(a)`` for user ``i`` with true value ``true_value``."""
        return float(self.prices[user] - true_value * market.leakage(self.profile)[user])

    def to_dict(self):
        return {"status": str(self.status), "message": self.message,
                "reported": self.reported.tolist(), "profile": [int(x) for x in self.profile],
                "prices": [json_num(x) for x in self.prices],
                "price_bounds": [[json_num(x) for x in b] for b in self.price_bounds],
                "surplus": self.surplus}


def vcg(market: GaussianMarket | ValuationMarket, reported=None, *, method: str = "auto",
        time_limit=None) -> VCGOutcome:
    """VCG-style pricing of Prop B-1 (one first-best solve plus one extra solve per user).

    ``a(v) = argmax_a Σ (1 − v_j) I_j(a)`` and
    ``p_i(v) = h_i(a(v)) − min_a h_i(a)``, ``h_i(a) = I_i(a) + Σ_{j≠i} (1 − v_j) I_j(a)``.
    ``min_a h_i`` is solved as ``max_a Σ w_j I_j(a)`` with ``w = −(1 − v)``, ``w_i = −1``.
    User ``i``'s utility ``p_i − v_i I_i(a)`` equals the reported-values surplus at
    ``a`` minus a term independent of her report, so truth-telling is dominant and
    the implemented profile is the first best for the true values.

    ``time_limit`` (seconds) / Ctrl-C: prices for the users done, proven bounds for the others
    (:class:`VCGOutcome`); if the first best is not proven, LimitExceeded / KeyboardInterrupt.
    """
    deadline = Deadline.of(time_limit)
    m = market.market if isinstance(market, ValuationMarket) else market
    v = m.values if reported is None else as_vector("reported", reported, m.n, nonnegative=True)
    v = np.asarray(v, dtype=float)
    try:
        fb = deadline.solve(m, LeakageObjective.for_problem("first_best", v), method)
    except Stopped as s:
        no_partial_answer(s.status, f"VCG: first best not proven optimal ({s.message}){_incumbent_note(s)}; "
                          f"no prices computed")
    a = fb.profile
    leak = m.leakage(a)
    leak_all = m.leakage(np.ones(m.n, dtype=np.int8))
    h_at = np.empty(m.n)
    h_min = np.full(m.n, math.nan)
    f_bounds = np.zeros((m.n, 2))             # proven [lower, upper] on max_a Σ (−w_j) I_j(a) = −min_a h_i
    zeros = np.zeros(m.n)
    stop = None
    for i in range(m.n):
        w = 1.0 - v.copy()
        w[i] = 1.0
        h_at[i] = float(np.dot(w, leak))
        f_bounds[i] = 0.0, float(np.sum(np.maximum(-w, 0.0) * leak_all))
        if stop is not None:
            continue
        try:
            res = deadline.solve(m, LeakageObjective.weighted(-w, zeros, name="vcg_min"), method)
            h_min[i] = -float(res.objective)
            f_bounds[i] = res.objective, res.objective
        except Stopped as s:
            stop = s
            if s.result is not None and s.result.has_solution:
                f_bounds[i] = max(0.0, s.result.objective), min(f_bounds[i, 1], s.result.bound)
        except KeyboardInterrupt:
            stop = interrupted()
    # bounds that meet prove the minimum without a solve (e.g. all w_j >= 0: min_a h_i = h_i(∅) = 0)
    met = np.isnan(h_min) & (f_bounds[:, 0] == f_bounds[:, 1])
    h_min[met] = -f_bounds[met, 0]
    prices = h_at - h_min
    bounds = np.column_stack([h_at + f_bounds[:, 0], h_at + f_bounds[:, 1]])
    if stop is None:
        return VCGOutcome(v, a, prices, float(np.dot(1 - v, leak)), h_at, h_min)
    return VCGOutcome(v, a, prices, float(np.dot(1 - v, leak)), h_at, h_min, stop.status, bounds,
                      f"{stop.message}: prices exact for users {np.flatnonzero(np.isfinite(h_min)).tolist()}, "
                      f"proven bounds for the others")


# ---------------------------------------------------------------------------
# Thm B-3 classification
# ---------------------------------------------------------------------------
#: Relative margin by which a value must clear a threshold to count (at equality the proofs give ties).
THRESHOLD_RTOL = 1e-9


@dataclass(frozen=True)
class ThmB3Case:
    """Which part of Thm B-3 applies at the reports ``v`` (correlation = ``|Σ_ij| > corr_tol``).

    ``low`` = ``V^(l)`` (v ≤ 1), ``low_phi`` = ``V_Φ^(l)`` (Φ(v) ≤ 1), ``high`` = ``V^(h)``.
    Parts: ``part1`` (high users uncorrelated with everybody and ``V^(l) = V_Φ^(l)``: efficient);
    ``part2`` (a high user correlated with ``V_Φ^(l)``; ``part2_thresholds[j] = 1 + Σ_{V^(l)} σ² / I_j(V_Φ^(l))``,
    the analogue of Thm 3.2's proof: above it the equilibrium surplus is negative);
    ``part3`` (high users correlated only with low users whose Φ > 1: no computable threshold);
    ``part4`` (high users correlated only among themselves; ``part4_thresholds[i]`` is the bound on
    ``Φ_i(v_i)`` from Thm 3.3's proof applied to virtual values: below it some high user shares);
    ``none`` (high users uncorrelated with everybody but some low-value user has Φ > 1 — the case the
    paper's part 1 excludes) or ``no_high_value_users``.
    """

    case: str
    high: tuple
    low: tuple
    low_phi: tuple
    part2_thresholds: dict = field(default_factory=dict)
    part4_thresholds: dict = field(default_factory=dict)
    predicts_efficient: bool = False
    predicts_inefficient: bool = False


def thm_b3_case(vm: ValuationMarket, reported=None, corr_tol: float | None = None) -> ThmB3Case:
    """Classify the reports by Thm B-3 (analogue of Thm 3 with virtual values)."""
    v = vm._reported(reported)
    m = vm.market
    phi = vm.virtual_values(v)
    S = m.cov
    if corr_tol is None:
        corr_tol = 1e-12 * float(np.max(m.sigma2))
    high = [int(i) for i in np.flatnonzero(v > 1)]
    low = [int(i) for i in np.flatnonzero(v <= 1)]
    low_phi = [int(i) for i in np.flatnonzero(phi <= 1)]
    corr = lambda i, j: abs(S[i, j]) > corr_tol
    key = (tuple(high), tuple(low), tuple(low_phi))
    if not high:
        return ThmB3Case("no_high_value_users", *key, predicts_efficient=(low == low_phi))
    h_phi = [j for j in high if any(corr(j, l) for l in low_phi)]
    if h_phi:
        a = np.zeros(m.n, dtype=np.int8)
        a[low_phi] = 1
        I = m.leakage(a)
        total_low = float(np.sum(m.sigma2[low])) if low else 0.0
        thr = {j: (1.0 + total_low / I[j] if I[j] > 0 else math.inf) for j in h_phi}
        return ThmB3Case("part2", *key, part2_thresholds=thr,
                         predicts_inefficient=any(v[j] > t * (1 + THRESHOLD_RTOL) for j, t in thr.items()))
    if any(corr(j, l) for j in high for l in low):
        return ThmB3Case("part3", *key)
    hh = sorted({x for i in high for k in high if i < k and corr(i, k) for x in (i, k)})
    if hh:
        thr = {}
        for i in hh:
            a = np.zeros(m.n, dtype=np.int8)
            a[i] = 1
            I = m.leakage(a)
            thr[i] = float((I[i] + sum(I[k] for k in high if k != i)) / I[i])
        return ThmB3Case("part4", *key, part4_thresholds=thr,
                         predicts_inefficient=any(phi[i] < t * (1 - THRESHOLD_RTOL) for i, t in thr.items()))
    if low == low_phi:
        return ThmB3Case("part1", *key, predicts_efficient=True)
    return ThmB3Case("none", *key)


__all__ = [
    "AssumptionWarning", "Valuation", "ContinuousValuation", "DiscreteValuation", "uniform",
    "truncated_exponential", "discrete", "as_valuation", "check_assumption2", "ValuationMarket",
    "virtual_objective", "AllocationSteps", "allocation_steps", "MechanismOutcome", "mechanism",
    "user_utility", "ICReport", "ic_violations", "ExpectedPayoff", "expected_platform_payoff",
    "prop_b2_bound", "VCGOutcome", "vcg", "ThmB3Case", "thm_b3_case",
    "valuation_report", "IRONING_GRID", "IronedContinuousValuation", "IronedDiscreteValuation", "iron",
    "iron_discrete", "ironed_market", "mixture",
]


def valuation_report(vm: ValuationMarket, reported=None, *, method: str = "auto",
                     time_limit=None) -> tuple[dict, str]:
    """Unknown-valuation section of ``dm-opt report``: virtual values, Thm B-2 allocation and its surplus
    at the reports, Prop B-2's bound, the Thm B-3 case, and the VCG (Prop B-1) surplus = first best.

    ``time_limit`` (seconds or a shared Deadline): the allocation and the first best must be
    proven optimal within it (else :class:`~dm_opt.core.errors.LimitExceeded`); payments left
    unfinished are reported with the mechanism's status."""
    dl = Deadline.of(time_limit)
    v = vm._reported(reported)
    out = mechanism(vm, v, method=method, time_limit=dl)
    if out.status is Termination.INTERRUPTED:       # Ctrl-C caught inside a solve: stop the report too
        raise KeyboardInterrupt
    case = thm_b3_case(vm, v)
    bound = prop_b2_bound(vm, v)
    try:
        fb = dl.solve(vm.market, LeakageObjective.for_problem("first_best", v), method)
    except Stopped as s:
        no_partial_answer(s.status, f"first best not proven optimal ({s.message})")
    d = {"virtual_values": out.virtual_values.tolist(), "mechanism_profile": [int(x) for x in out.profile],
         "mechanism_surplus": out.surplus, "first_best_surplus": fb.surplus, "prop_b2_bound": bound,
         "thm_b3_case": case.case, "low_phi": list(case.low_phi),
         "part2_thresholds": {str(k): x for k, x in case.part2_thresholds.items()},
         "part4_thresholds": {str(k): x for k, x in case.part4_thresholds.items()},
         "assumption2_failures": list(vm.assumption2_failures), "mechanism_status": str(out.status)}
    text = "\n".join([
        "unknown valuations (AMMO §5.2, App. B):",
        f"  virtual values Φ(v): {np.array2string(out.virtual_values, precision=6)}",
        f"  Thm B-2 allocation {''.join(str(int(x)) for x in out.profile)}, surplus {out.surplus:.8g} "
        f"(first best {fb.surplus:.8g}; VCG of Prop B-1 attains it)",
        f"  Prop B-2 bound on that surplus: {bound:.8g}",
        f"  Thm B-3: {case.case}; V_Φ^(l) = {list(case.low_phi)}"
        + ("; predicts efficient" if case.predicts_efficient else "")
        + ("; predicts inefficient" if case.predicts_inefficient else ""),
    ] + [f"  WARNING: {msg}" for msg in vm.assumption2_failures])
    return d, text


# Myerson ironing (App. B when Assumption 2 fails) lives in its own module; re-exported here.
from dm_opt.gaussian.valuations.ironing import (  # noqa: E402
    IRONING_GRID,
    IronedContinuousValuation,
    IronedDiscreteValuation,
    iron,
    iron_discrete,
    ironed_market,
    mixture,
)
