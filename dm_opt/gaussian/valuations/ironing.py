"""Myerson ironing when Assumption 2 fails (AMMO App. B, Thm B-2 without a monotone Φ).

The platform *buys* data, so the virtual value ``Φ(v) = v + F(v)/f(v)`` is a virtual *cost*.
In quantile space (``q = F(v)``, ``v(q) = F⁻¹(q)``) it is the slope of the cost curve

    C(q) = q · v(q),        C'(q) = v(q) + q v'(q) = Φ(v(q)).

When ``Φ`` is not nondecreasing the allocation ``argmax Σ (1 − Φ_i) I_i(a) + Φ_i I_i(a_{−i}, 0)``
is not monotone and the mechanism of Thm B-2 is not incentive compatible.  Myerson's fix
(here for procurement): replace ``C`` by its **lower convex envelope** ``C̄`` and ``Φ`` by the
**ironed virtual value** ``Φ̄ = C̄'`` — nondecreasing, equal to ``Φ`` where ``C̄ = C`` and
constant on each *ironed interval* where ``C̄ < C``.  The allocation uses ``Φ̄``; it depends on
``v_i`` only through ``Φ̄_i(v_i)``, so ``A_i`` is constant on every ironed interval and, because
``∫ (Φ − Φ̄) dq = C − C̄ = 0`` at the ends of each interval, ``E[p_i] = E[Φ_i A_i] = E[Φ̄_i A_i]``:
the expected platform payoff is ``E[max_a Σ (1 − Φ̄_i) I_i(a) + Φ̄_i I_i(a_{−i}, 0)]``, and no
IC mechanism does better (Myerson 1981).  Payments are eq. (B-18) unchanged (they only need
``A_i`` nonincreasing, which ``Φ̄`` guarantees).

* **Discrete tables** (exact): the points ``(Q_m, Q_m v^m)``, ``Q_m = P(V ≤ v^m)``, ``Q_0 = 0``; the
  slope between consecutive points is the discrete ``Φ(v^m)``
  (:mod:`dm_opt.gaussian.valuations.distributions`), and ``Φ̄(v^m)`` is the slope of their lower
  convex hull on ``[Q_{m−1}, Q_m]``, computed in exact rational arithmetic (:class:`fractions.Fraction`
  of the float inputs).
* **Continuous distributions**: the hull of ``C`` at ``IRONING_GRID`` quantiles locates the ironed
  intervals; each interval's ends are then refined to the tangency conditions
  ``Φ(x₁) = Φ(x₂) = (C(q₂) − C(q₁)) / (q₂ − q₁)`` by a 2-D root finder (one condition when an end
  is the support's end), so ``Φ̄`` is exact up to root-finding precision (~1e-12), continuous, and
  ``∫ (Φ − Φ̄) dq = 0`` on every interval.  Monotonicity of the result is verified on a grid.

:func:`mixture` builds non-regular (e.g. bimodal) continuous distributions; :func:`iron` irons
one distribution; :func:`ironed_market` irons every user of a market whose ``Φ`` fails
Assumption 2.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy import optimize, stats

from dm_opt.core.errors import InstanceError, ProblemError
from dm_opt.gaussian.valuations.distributions import (
    ASSUMPTION2_GRID,
    ContinuousValuation,
    DiscreteValuation,
    Valuation,
    as_valuation,
)
from dm_opt.gaussian.valuations.market import ValuationMarket

#: Quantile grid locating the ironed intervals of a continuous distribution.
IRONING_GRID = 4097


# ---------------------------------------------------------------------------
# mixtures (non-regular distributions)
# ---------------------------------------------------------------------------
class _MixtureGen(stats.rv_continuous):
    """Finite mixture of frozen continuous distributions (support = hull of the supports)."""

    def __init__(self, components, weights, **kw):
        kw.update(a=min(float(c.support()[0]) for c in components),
                  b=max(float(c.support()[1]) for c in components), name="mixture")
        super().__init__(**kw)
        self._components = list(components)
        self._weights = np.asarray(weights, float)

    def _updated_ctor_param(self):                       # scipy re-instantiates the class when freezing
        d = super()._updated_ctor_param()
        d.update(components=self._components, weights=self._weights)
        return d

    def _pdf(self, x):
        return sum(w * c.pdf(x) for w, c in zip(self._weights, self._components, strict=True))

    def _cdf(self, x):
        return sum(w * c.cdf(x) for w, c in zip(self._weights, self._components, strict=True))

    def _ppf(self, q):
        q = np.asarray(q, float)
        lo = np.full(q.shape, float(self.a))
        hi = np.full(q.shape, float(self.b))
        for _ in range(100):                              # vectorised bisection on the cdf
            mid = 0.5 * (lo + hi)
            below = self._cdf(mid) < q
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return hi

    def _rvs(self, size=None, random_state=None):
        rng = random_state
        idx = rng.choice(len(self._weights), size=size, p=self._weights)
        out = np.empty(np.shape(idx))
        for k, c in enumerate(self._components):
            sel = idx == k
            if np.any(sel):
                out[sel] = c.rvs(size=int(sel.sum()), random_state=rng)
        return out


def mixture(components, weights, label: str | None = None) -> ContinuousValuation:
    """A mixture ``Σ w_k F_k`` of frozen continuous scipy distributions (or valuation spec tables of
    continuous kinds), e.g. a bimodal ``mixture([uniform(0, .4), uniform(1.2, 1.6)], [.5, .5])`` —
    the typical failure of Assumption 2."""
    comps = []
    for k, c in enumerate(components):
        d = c if isinstance(c, Valuation) else as_valuation(c, f"components[{k}]")
        if not isinstance(d, ContinuousValuation):
            raise InstanceError(f"components[{k}]", "must be a continuous distribution")
        comps.append(d.dist)
    w = np.asarray(weights, float)
    if w.shape != (len(comps),) or np.any(w <= 0) or abs(w.sum() - 1.0) > 1e-9:
        raise InstanceError("weights", f"need {len(comps)} positive weights summing to 1, got {list(weights)}")
    lab = label or "mixture(" + ", ".join(f"{wk:g}·{c.dist.name}{tuple(c.args)}" for wk, c in
                                          zip(w, comps, strict=True)) + ")"
    return ContinuousValuation(_MixtureGen(comps, w / w.sum())(), lab)


# ---------------------------------------------------------------------------
# discrete: exact rational hull
# ---------------------------------------------------------------------------
def iron_discrete(values, probs) -> np.ndarray:
    """Ironed discrete virtual values ``Φ̄(v^m)`` (exact rational hull, returned as floats)."""
    v = [Fraction(float(x)) for x in values]
    q = [Fraction(float(x)) for x in probs]
    tot = sum(q)
    q = [x / tot for x in q]
    Q = [Fraction(0)]
    for x in q:
        Q.append(Q[-1] + x)
    pts = [(Fraction(0), Fraction(0))] + [(Q[m + 1], Q[m + 1] * v[m]) for m in range(len(v))]
    hull = []                                             # lower hull, monotone chain
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0:   # hull[-1] on or above chord
                hull.pop()
            else:
                break
        hull.append(p)
    out = []
    j = 0
    for m in range(len(v)):
        while hull[j + 1][0] < Q[m + 1]:
            j += 1
        (x1, y1), (x2, y2) = hull[j], hull[j + 1]
        out.append(float((y2 - y1) / (x2 - x1)))
    return np.array(out)


class IronedDiscreteValuation(DiscreteValuation):
    """A discrete table with ironed virtual values (``phi_table``; the raw ones in ``raw_phi_table``)."""

    def __init__(self, base: DiscreteValuation):
        super().__init__(base.values, base.probs)
        self.raw_phi_table = self.phi_table.copy()
        self.phi_table = iron_discrete(base.values, base.probs)
        self.base = base

    @property
    def ironed_intervals(self) -> list[tuple[float, float]]:
        """``(v^a, v^b)`` ranges of support points sharing one ironed value (only ranges of ≥ 2 points)."""
        out, start = [], 0
        for m in range(1, self.values.size + 1):
            if m == self.values.size or not math.isclose(self.phi_table[m], self.phi_table[start], rel_tol=1e-12):
                if m - start >= 2:
                    out.append((float(self.values[start]), float(self.values[m - 1])))
                start = m
        return out

    def describe(self):
        return f"ironed {self.base.describe()}"


# ---------------------------------------------------------------------------
# continuous: grid hull + tangency refinement
# ---------------------------------------------------------------------------
def _lower_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the lower convex hull of points sorted by x."""
    h: list[int] = []
    for k in range(x.size):
        while len(h) >= 2:
            i, j = h[-2], h[-1]
            if (x[j] - x[i]) * (y[k] - y[i]) - (y[j] - y[i]) * (x[k] - x[i]) <= 0:
                h.pop()
            else:
                break
        h.append(k)
    return np.array(h)


class IronedContinuousValuation(ContinuousValuation):
    """A continuous distribution with the ironed virtual value ``Φ̄`` (module docstring).

    ``intervals``: list of ``(x₁, x₂, φ̄)``: on ``[x₁, x₂]`` ``Φ̄ = φ̄`` (the chord slope of ``C``),
    elsewhere ``Φ̄ = Φ``.  ``residuals``: the tangency equations' residuals after refinement.
    """

    def __init__(self, base: ContinuousValuation, grid: int = IRONING_GRID):
        super().__init__(base.dist, f"ironed {base.describe()}")
        if not (np.isfinite(self.lower) and np.isfinite(self.upper)):
            raise ProblemError(f"ironing needs a bounded support; {base.describe()} has "
                               f"[{self.lower}, {self.upper}]")
        self.base = base
        self._grid = None
        xs = np.linspace(self.lower, self.upper, ASSUMPTION2_GRID)[1:-1]
        gap = np.asarray(self.dist.pdf(xs), float) <= 0
        if gap.any():
            raise ProblemError(f"valuation: ironing needs a density > 0 on the support; {base.describe()} "
                               f"has f = 0 at x = {xs[np.argmax(gap)]:.6g} (a gap: put some mass there)")
        self.intervals, self.residuals = self._iron(grid)
        if self.intervals:
            x = np.linspace(self.lower, self.upper, ASSUMPTION2_GRID)
            phi = self.virtual_value(x)
            if np.any(np.diff(phi) < -1e-9 * np.maximum(1.0, np.abs(phi[:-1]))):
                raise ProblemError(f"ironing of {base.describe()} did not give a nondecreasing Φ̄ "
                                   f"(refinement failed; raise grid)")

    # -- raw quantities
    def _phi(self, x):
        return ContinuousValuation.virtual_value(self, x)

    def _chord(self, x1, x2):
        F1, F2 = float(self.dist.cdf(x1)), float(self.dist.cdf(x2))
        if not F2 > F1:
            return math.inf                                # degenerate trial point of a root finder
        return (F2 * x2 - F1 * x1) / (F2 - F1)

    def _iron(self, grid):
        q = np.linspace(0.0, 1.0, grid)
        x = np.asarray(self.dist.ppf(q), float)
        x[0], x[-1] = self.lower, self.upper
        C = q * x
        h = _lower_hull(q, C)
        found = []
        for a, b in zip(h[:-1], h[1:], strict=True):
            if b - a < 2:
                continue
            mid = np.arange(a + 1, b)
            chord = C[a] + (C[b] - C[a]) * (q[mid] - q[a]) / (q[b] - q[a])
            if np.max(C[mid] - chord) <= 1e-12 * max(1.0, abs(C[b])):
                continue                                  # C is (numerically) linear there: nothing to iron
            found.append(self._refine(x[a], x[b], a == 0, b == grid - 1))
        # merge overlapping refined intervals (defensive)
        found.sort()
        out = []
        for x1, x2, phi, r in found:
            if out and x1 <= out[-1][1]:
                y1, y2, _, r0 = out.pop()
                x1, x2 = min(x1, y1), max(x2, y2)
                phi = self._chord(x1, x2)
                r = max(r, r0)
            out.append((x1, x2, phi, r))
        return [(a, b, p) for a, b, p, _ in out], [r for *_, r in out]

    def _refine(self, x1, x2, left_end, right_end):
        """Ends ``(a, b)`` of one ironed interval and its value: ``Φ̄ = chord slope`` must lie in
        ``[Φ(a−), Φ(a+)]`` and ``[Φ(b−), Φ(b+)]`` (tangency, or a convex kink of ``C`` where the
        density drops).  Returns (a, b, φ̄, residual of those conditions)."""
        lo, hi = self.lower, self.upper
        phi = lambda z: float(self._phi(z))              # noqa: E731

        if left_end and right_end:
            a, b = lo, hi
        elif left_end:
            a, b = lo, self._root1(lambda z: phi(z) - self._chord(lo, z), x2)
        elif right_end:
            a, b = self._root1(lambda z: phi(z) - self._chord(z, hi), x1), hi
        else:
            def eqs(z):
                s = self._chord(z[0], z[1])
                return [phi(z[0]) - s, phi(z[1]) - s]

            sol = optimize.root(eqs, [x1, x2], method="hybr", tol=1e-14)
            a, b = (float(t) for t in sol.x)
            if not (sol.success and lo <= a < b <= hi and max(abs(e) for e in eqs([a, b])) < 1e-9):
                # a kink (density jump) at an end: alternate 1-D solves from the grid ends
                a, b = x1, x2
                for _ in range(50):
                    a2 = self._root1(lambda z, b=b: phi(z) - self._chord(z, b), a)
                    b2 = self._root1(lambda z, a2=a2: phi(z) - self._chord(a2, z), b)
                    done = abs(a2 - a) + abs(b2 - b) <= 1e-15 * (1 + abs(hi))
                    a, b = a2, b2
                    if done:
                        break
        s = self._chord(a, b)
        return a, b, s, max(self._kink_residual(a, s, a == lo, False), self._kink_residual(b, s, False, b == hi))

    def _kink_residual(self, x, s, at_lo, at_hi):
        e = 1e-9 * max(1.0, self.upper - self.lower)
        left = float(self._phi(max(x - e, self.lower)))
        right = float(self._phi(min(x + e, self.upper)))
        lo_, hi_ = min(left, right), max(left, right)
        if at_lo:
            lo_ = -math.inf                                # the hull may start above Φ at the support's end
        if at_hi:
            hi_ = math.inf
        return max(0.0, lo_ - s, s - hi_)

    def _root1(self, f, x0):
        # bracket around the grid estimate, then Brent
        w = (self.upper - self.lower) / 64
        a, b = max(self.lower + 1e-15, x0 - w), min(self.upper, x0 + w)
        for _ in range(60):
            if f(a) * f(b) <= 0:
                return float(optimize.brentq(f, a, b, xtol=1e-15, rtol=4 * np.finfo(float).eps))
            a, b = max(self.lower + 1e-15, a - w), min(self.upper, b + w)
        return float(x0)

    # -- ironed virtual value
    def virtual_value(self, v):
        v = np.asarray(v, dtype=float)
        out = np.asarray(self._phi(v), float).copy()
        for x1, x2, p in self.intervals:
            out = np.where((v >= x1) & (v <= x2), p, out)
        return out if out.ndim else float(out)

    def inverse_virtual_value(self, phi: float) -> float:
        """Smallest ``x`` in the support with ``Φ̄(x) ≥ phi``: the left end of an ironed interval whose
        value reaches ``phi``, else Brent's method inside a bracket from a precomputed grid of ``Φ̄``."""
        lo, hi = self.lower, self.upper
        if phi <= float(self.virtual_value(lo)):
            return lo
        if phi > float(self.virtual_value(hi)):
            return hi
        for x1, _, p in self.intervals:
            if x1 > lo and float(self._phi(x1 - 1e-12 * max(1.0, abs(x1)))) < phi <= p:
                return x1
        if self._grid is None:
            xg = np.linspace(lo, hi, 1025)
            self._grid = (xg, np.asarray(self.virtual_value(xg), float))
        xg, pg = self._grid
        j = int(np.searchsorted(pg, phi, side="left"))          # pg[j-1] < phi <= pg[j]
        a, b = xg[max(j - 1, 0)], xg[min(j, xg.size - 1)]
        f = lambda x: float(self.virtual_value(x)) - phi        # noqa: E731
        if f(a) >= 0:
            return a
        return float(optimize.brentq(f, a, b, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500))

    def describe(self):
        return self._label


def iron(valuation, grid: int = IRONING_GRID) -> Valuation:
    """The ironed version of a distribution (a table, a frozen scipy distribution, a spec)."""
    d = as_valuation(valuation)
    if isinstance(d, (IronedDiscreteValuation, IronedContinuousValuation)):
        return d
    if d.is_discrete:
        return IronedDiscreteValuation(d)
    return IronedContinuousValuation(d, grid)


def ironed_market(vm: ValuationMarket, *, users=None, grid: int = IRONING_GRID) -> ValuationMarket:
    """A copy of ``vm`` whose users ``users`` (default: those failing Assumption 2) have ironed
    virtual values; Thm B-2's mechanism, payments, IC check and expected payoff then work unchanged."""
    if users is None:
        users = [i for i in range(vm.n) if any(f"user {i} " in msg for msg in vm.assumption2_failures)]
    vals = [iron(d, grid) if i in set(users) else d for i, d in enumerate(vm.valuations)]
    return ValuationMarket(vm.market, vals)


__all__ = ["IRONING_GRID", "mixture", "iron_discrete", "IronedDiscreteValuation", "IronedContinuousValuation", "iron",
           "ironed_market"]
