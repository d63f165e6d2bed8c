"""GLP: a platform that designs information about the consumers in its database.

Galperti, Liu & Perego, *Competitive Markets for Personal Data* (slides, Oct
2024; docs/spec.md §2, called GLP).  A unit mass of consumers with willingness to pay
``ω ∈ Ω`` distributed as ``q̄ ∈ Δ(Ω)``; each consumer either sells her data
record to the platform or keeps the reservation utility ``r̄``.  Given a
database ``q ≤ q̄`` the platform recommends fees ``a ∈ A`` to a merchant
(Bayesian persuasion, slides "Info-design problem ... (P_q)") with payoffs

* consumer ``u(a, ω) = max(ω − a, 0)``,
* merchant ``π(a, ω) = a · 1[ω ≥ a]``,
* platform ``v(a, ω) = γ_u u(a, ω) + γ_π π(a, ω)``.

The slides' "generalizations" slide keeps the LP structure for arbitrary
finite payoff matrices; :meth:`InfoDesignMarket.from_payoffs` builds such a
market from ``u``, ``π``, ``v`` given directly.

Array conventions (used by every GLP solver): payoff matrices are indexed
``[a, ω]`` with shape ``(m, n)``, ``m = |A|`` fees and ``n = |Ω|`` types;
databases ``q`` and prices ``p`` have shape ``(n,)``; mechanisms
``x(a|ω)`` shape ``(m, n)`` (columns sum to 1); the LP variables
``y(a, ω) = x(a|ω) q(ω)`` shape ``(m, n)``.
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.validate import as_array, as_real, as_vector, check_magnitude, check_nonnegative

#: Absolute tolerance on ``Σ prior = 1``; the prior is then renormalised exactly.
PRIOR_SUM_TOL = 1e-9
#: Largest magnitude of a money amount (types, fees, reservation, γ weights, payoff entries).
#: The GLP LPs (HiGHS) lose accuracy and fail beyond ~1e11 (measured on the slides' examples:
#: everything is solved to optimality up to 1e11, the equilibrium LPs fail from 1e12); 1e9
#: keeps a factor 100 of margin.  Rescale the money unit for larger amounts.
MAX_MONEY = 1e9
#: Largest |A| × |Ω| (three payoff matrices of that many floats are built: 240 MB).
MAX_PAYOFF_ENTRIES = 10**7
_MONEY = "GLP money amounts (types, fees, reservation, γ weights, payoffs)"
_WHY = "beyond it the LP solvers lose accuracy"


def _scalar(field: str, x, where, *, nonnegative: bool = False) -> float:
    x = as_real(field, x, where, max_abs=None)
    if nonnegative and x < 0:
        raise InstanceError(field, f"must be >= 0, got {x}", where)
    check_magnitude(field, x, MAX_MONEY, where, what=_MONEY, why=_WHY)
    return x


def _money(field: str, x, n: int | None, where) -> np.ndarray:
    arr = as_vector(field, x, n, where=where, max_abs=None)
    check_magnitude(field, arr, MAX_MONEY, where, what=_MONEY, why=_WHY)
    return arr


def _payoff(field: str, x, where, **kw) -> np.ndarray:
    arr = as_array(field, x, where=where, max_abs=None, **kw)
    if arr.size:
        check_magnitude(field, arr, MAX_MONEY, where, what=_MONEY, why=_WHY)
    return arr


def _strictly_increasing(field: str, arr: np.ndarray, where) -> None:
    d = np.diff(arr)
    if np.any(d <= 0):
        i = int(np.argmax(d <= 0)) + 1
        raise InstanceError(f"{field}[{i}]", f"must be strictly increasing (distinct, sorted): "
                            f"{arr[i - 1]} then {arr[i]}", where)


def _prior(field: str, x, n: int | None, where) -> tuple[np.ndarray, np.ndarray]:
    """``(prior renormalised, prior as given)``: the given one is what :meth:`InfoDesignMarket.to_dict`
    writes, since renormalising twice can move the last bit (``p / Σp`` is not a fixed point)."""
    arr = as_vector(field, x, n, where=where, nonnegative=True)
    s = float(arr.sum())
    if abs(s - 1.0) > PRIOR_SUM_TOL:
        raise InstanceError(field, f"must sum to 1 (a probability vector) within {PRIOR_SUM_TOL:g}, "
                            f"got sum {s!r}", where)
    return arr / s, arr


class InfoDesignMarket:
    """A GLP data economy (docs/spec.md §2).

    Parameters
    ----------
    types : array (n,)
        Willingness to pay ``ω``, finite and strictly increasing.
    prior : array (n,)
        Population distribution ``q̄`` (nonnegative, sums to 1 within
        :data:`PRIOR_SUM_TOL`; renormalised exactly).
    reservation : float
        Reservation utility ``r̄`` of a consumer who keeps her record.
    gamma_u, gamma_pi : float ≥ 0
        Weights of consumer surplus and merchant profit in the platform's
        objective ``v = γ_u u + γ_π π``.
    fees : array (m,), optional
        Fee grid ``A`` (finite, strictly increasing); default ``A = Ω``.

    Attributes
    ----------
    u, pi, v : ndarray (m, n), read-only
        Payoffs indexed ``[a, ω]``.
    n, m : int
        Number of types and fees.
    """

    kind = "info_design"          # the instance-file kind
    family = "info_design"


    def __init__(self, types, prior, reservation, gamma_u, gamma_pi, fees=None, *,
                 name: str | None = None, source: str | None = None, where: str | None = None):
        types = _money("types", types, None, where)
        _strictly_increasing("types", types, where)
        n = types.shape[0]
        prior, given = _prior("prior", prior, n, where)
        reservation = _scalar("reservation", reservation, where)
        gamma_u = _scalar("gamma_u", gamma_u, where, nonnegative=True)
        gamma_pi = _scalar("gamma_pi", gamma_pi, where, nonnegative=True)
        fees = types.copy() if fees is None else _money("fees", fees, None, where)
        _strictly_increasing("fees", fees, where)
        if fees.size * types.size > MAX_PAYOFF_ENTRIES:
            raise InstanceError("types" if fees.size == types.size else "fees",
                                f"|A| × |Ω| = {fees.size} × {types.size} payoff entries exceed the limit "
                                f"{MAX_PAYOFF_ENTRIES:.0e}", where)
        A, W = fees[:, None], types[None, :]
        u = np.maximum(W - A, 0.0)
        pi = np.where(W >= A, A, 0.0) * np.ones_like(W)
        for field, g, pay in (("gamma_u", gamma_u, u), ("gamma_pi", gamma_pi, pi), ("types", 1.0, u)):
            top = g * float(np.max(np.abs(pay)))
            if top > MAX_MONEY:    # the payoff matrices, not only their factors, must stay in range
                raise InstanceError(field, f"makes a payoff entry reach {top:.6g}: {_MONEY} must lie in "
                                    f"[-{MAX_MONEY:g}, {MAX_MONEY:g}] ({_WHY}); rescale the money unit", where)
        v = gamma_u * u + gamma_pi * pi
        self._init(types, fees, prior, reservation, u, pi, v, name, source, given)
        self.gamma_u, self.gamma_pi = gamma_u, gamma_pi

    @classmethod
    def from_payoffs(cls, u, pi, v, prior, reservation, *, types=None, fees=None,
                     name: str | None = None, source: str | None = None,
                     where: str | None = None) -> "InfoDesignMarket":
        """A market with arbitrary finite payoff matrices (GLP "generalizations").

        ``u`` (consumer), ``pi`` (merchant, who obeys recommendations) and
        ``v`` (platform) are ``(m, n)`` arrays indexed ``[a, ω]``.  ``types``
        and ``fees`` are labels only (default ``0..n-1`` and ``0..m-1``).
        """
        u = _payoff("u", u, where, ndim=2)
        m, n = u.shape
        if m < 1 or n < 1:
            raise InstanceError("u", f"needs at least one action and one type, got shape {u.shape}", where)
        pi = _payoff("pi", pi, where, shape=(m, n))
        v = _payoff("v", v, where, shape=(m, n))
        prior, given = _prior("prior", prior, n, where)
        reservation = _scalar("reservation", reservation, where)
        types = np.arange(n, dtype=float) if types is None else _money("types", types, n, where)
        _strictly_increasing("types", types, where)
        fees = np.arange(m, dtype=float) if fees is None else _money("fees", fees, m, where)
        _strictly_increasing("fees", fees, where)
        self = cls.__new__(cls)
        self._init(types, fees, prior, reservation, u, pi, v, name, source, given)
        self.gamma_u = self.gamma_pi = None
        return self

    def _init(self, types, fees, prior, reservation, u, pi, v, name, source, given):
        for arr in (types, fees, prior, u, pi, v, given):
            arr.setflags(write=False)
        self._prior_given = given
        self.types, self.fees, self.prior, self.reservation = types, fees, prior, float(reservation)
        self.u, self.pi, self.v = u, pi, v
        self.name, self.source = name, source
        #: optional database ``q`` read from an instance file (``database = [...]``)
        self.database_q = None

    # ------------------------------------------------------------------ helpers
    @property
    def n(self) -> int:
        return int(self.types.shape[0])

    @property
    def m(self) -> int:
        return int(self.fees.shape[0])

    @property
    def is_general(self) -> bool:
        """True when built by :meth:`from_payoffs` (no γ weights)."""
        return self.gamma_u is None

    def database(self, q, field: str = "q") -> np.ndarray:
        """Validate a database ``q ∈ ℝ₊^Ω`` (shape (n,), finite, ≥ 0)."""
        arr = as_vector(field, q, self.n)
        check_nonnegative(field, arr)
        return arr

    def consumer_utility(self, x) -> np.ndarray:
        """``U(ω, x) = Σ_a x(a|ω) u(a, ω)``, shape (n,)."""
        return np.einsum("an,an->n", np.asarray(x, float), self.u)

    def to_dict(self) -> dict:
        """The instance table (kind ``info_design``, docs/instances.md) that
        :func:`dm_opt.load` reads back to an equal market (:func:`dm_opt.save` writes it).

        Every number is written out in full (generated types and priors too), the prior as
        it was given (the market renormalises it on loading); ``fees`` only when they differ
        from ``types``, ``database`` only when set.
        """
        d: dict = {"kind": self.kind}
        if self.name:
            d["name"] = str(self.name)
        if self.source:
            d["source"] = str(self.source)
        if self.is_general:
            d.update(u=self.u.tolist(), pi=self.pi.tolist(), v=self.v.tolist(),
                     types=self.types.tolist(), fees=self.fees.tolist())
        else:
            d["types"] = self.types.tolist()
            if not np.array_equal(self.fees, self.types):
                d["fees"] = self.fees.tolist()
            d.update(gamma_u=float(self.gamma_u), gamma_pi=float(self.gamma_pi))
        d["prior"] = self._prior_given.tolist()
        d["reservation"] = float(self.reservation)
        if self.database_q is not None:
            d["database"] = np.asarray(self.database_q, float).tolist()
        return d

    def describe(self) -> str:
        kind = "general payoffs" if self.is_general else f"γ_u = {self.gamma_u:g}, γ_π = {self.gamma_pi:g}"
        return f"{self.name or 'info-design market'}: |Ω| = {self.n}, |A| = {self.m}, r̄ = {self.reservation:g}, {kind}"

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"InfoDesignMarket({self.describe()})"


__all__ = ["InfoDesignMarket", "PRIOR_SUM_TOL"]
