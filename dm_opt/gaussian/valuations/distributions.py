"""Distributions of the values of privacy and their virtual values (AMMO §5.2, App. B; Assumption 2).

The platform knows the distribution ``F_i`` of user ``i``'s value of privacy ``v_i`` (independent
across users), not ``v_i`` itself.

* **Virtual value** (Myerson, procurement side): ``Φ_i(v) = v + F_i(v) / f_i(v)``.
  Assumption 2 asks ``Φ_i`` to be nondecreasing; :func:`check_assumption2`
  warns with :class:`~dm_opt.core.errors.AssumptionWarning` naming the user and where it fails
  (then iron it: :mod:`dm_opt.gaussian.valuations.ironing`).
* **Discrete tables** ``P(V = v^m) = q_m`` (``v^1 < … < v^K``): the analogue is

      Φ(v^1) = v^1,     Φ(v^m) = v^m + (v^m − v^{m−1}) · P(V < v^m) / q_m.

  Derivation: with the highest type getting zero rent and the upward local IC
  constraints binding, the rent of type ``k`` is
  ``U_k = Σ_{m>k} (v^m − v^{m−1}) A_m``; the expected payment
  ``Σ_k q_k (v^k A_k + U_k)`` regroups as ``Σ_m A_m [q_m v^m + (v^m − v^{m−1}) P(V < v^m)]
  = Σ_m q_m Φ(v^m) A_m``, the exact analogue of ``E[p] = E[Φ(v) A(v)]`` in the
  proof of Thm B-2.  IC holds iff ``A_k`` is nonincreasing in ``k``, which the
  allocation guarantees when the discrete ``Φ`` is nondecreasing.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, stats

from dm_opt.core.errors import AssumptionWarning, InstanceError
from dm_opt.core.validate import MAX_ABS, as_real, as_vector

#: Grid size used by the (numerical) check of Assumption 2 for continuous distributions.
ASSUMPTION2_GRID = 2001
#: Relative slack allowed in that check (round-off in F/f).
ASSUMPTION2_RTOL = 1e-9
#: Largest ``(upper − lower)/scale`` of a truncated exponential (its density ratio e^700 stays finite).
TRUNCEXPON_MAX_RANGE = 700.0


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

    #: the ``{dist = ...}`` table it was built from (set by :func:`uniform` / :func:`truncated_exponential`;
    #: ``None`` for another scipy distribution, which no instance file can hold); read by ``dm_opt.save``
    spec: dict | None = None

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
        probs.setflags(write=False)
        self.probs_given = probs        # as given (renormalising is not idempotent): what dm_opt.save writes
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
    d = ContinuousValuation(stats.uniform(loc=low, scale=high - low), f"uniform[{low}, {high}]")
    d.spec = {"dist": "uniform", "low": float(low), "high": float(high)}   # its instance table (dm_opt.save)
    return d


def truncated_exponential(scale: float, upper: float, lower: float = 0.0) -> ContinuousValuation:
    """Exponential with mean ``scale`` truncated to ``[lower, upper]``:
    ``Φ(v) = v + scale (e^{(v−lower)/scale} − 1)``."""
    if not (scale > 0 and 0 <= lower < upper < math.inf):
        raise InstanceError("valuation", f"truncated exponential needs scale > 0 and 0 <= lower < upper < inf, "
                            f"got scale={scale}, lower={lower}, upper={upper}")
    d = ContinuousValuation(stats.truncexpon(b=(upper - lower) / scale, loc=lower, scale=scale),
                            f"truncexp(scale={scale}, [{lower}, {upper}])")
    # its instance table (dm_opt.save): the parameters as given, since (upper - lower) / scale does not invert exactly
    d.spec = {"dist": "truncexpon", "scale": float(scale), "upper": float(upper), "lower": float(lower)}
    return d


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


__all__ = ["ASSUMPTION2_GRID", "ASSUMPTION2_RTOL", "TRUNCEXPON_MAX_RANGE", "Valuation", "ContinuousValuation",
           "DiscreteValuation", "uniform", "truncated_exponential", "discrete", "as_valuation", "check_assumption2"]
