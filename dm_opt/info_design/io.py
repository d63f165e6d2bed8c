"""Instance kind ``info_design`` (GLP, docs/spec.md §2): parsing only.

Slides' payoffs::

    kind = "info_design"
    source = "GLP slides, two-type example"
    name = "two_type"                 # optional
    types = [1.0, 2.0]                # or {family = "grid", n = 50, low = 1, high = 50}
    prior = [0.4, 0.6]                # or {family = "dirichlet", seed = 3, alpha = 1.0}
    reservation = 0.5
    gamma_u = 1.0
    gamma_pi = 0.0
    fees = [1.0, 2.0]                 # optional, default = types
    database = [0.4, 0.4]             # optional: q for --problem platform (default q = prior)

General payoffs (GLP "generalizations"): replace ``gamma_u``/``gamma_pi``/``fees``
by ``u``, ``pi``, ``v`` matrices indexed ``[a][ω]`` (``types``/``fees`` optional labels).

Problems: ``platform`` (P_q at ``database``: V, mechanism, ∂V intervals, W),
``efficiency`` (W°, q°, x°), ``equilibrium`` (all competitive equilibria),
``union``, ``taxes``, ``complete`` (the three remedies).
"""

from __future__ import annotations

import numbers

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.instances import check_keys
from dm_opt.core.validate import MAX_ABS, as_real, as_vector, check_nonnegative, describe
from dm_opt.info_design.market import _MONEY, _WHY, MAX_MONEY, InfoDesignMarket

_MONEY_RANGE = {"what": _MONEY, "why": _WHY}


#: Largest generated |Ω| accepted from a file.
MAX_TYPES = 100_000


def _int(field, x, where, lo=None, hi=None) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise InstanceError(field, f"expected an integer, got {type(x).__name__} {describe(x)}", where)
    x = int(x)
    if lo is not None and x < lo or hi is not None and x > hi:
        raise InstanceError(field, f"must be in [{lo}, {hi}], got {x}", where)
    return x


def _num(field, x, where, max_abs=MAX_ABS) -> float:
    return as_real(field, x, where, max_abs=max_abs, **({} if max_abs == MAX_ABS else _MONEY_RANGE))


def _types(spec, where):
    if not isinstance(spec, dict):
        return spec
    check_keys(spec, {"family", "n"}, {"low", "high"}, where, "types.")
    if spec["family"] != "grid":
        raise InstanceError("types.family", f"unknown family {describe(spec['family'])}; use \"grid\"", where)
    n = _int("types.n", spec["n"], where, 1, MAX_TYPES)
    low = _num("types.low", spec.get("low", 1.0), where, MAX_MONEY)
    high = _num("types.high", spec.get("high", float(n)), where, MAX_MONEY)
    if n > 1 and not high > low:
        raise InstanceError("types.high", f"must exceed types.low = {low}, got {high}", where)
    return np.linspace(low, high, n)


def _prior(spec, n, where):
    if not isinstance(spec, dict):
        return spec
    fam = spec.get("family")
    if fam == "uniform":
        check_keys(spec, {"family"}, set(), where, "prior.")
        return np.full(n, 1.0 / n)
    if fam == "dirichlet":
        check_keys(spec, {"family", "seed"}, {"alpha"}, where, "prior.")
        seed = _int("prior.seed", spec["seed"], where, 0)
        alpha = _num("prior.alpha", spec.get("alpha", 1.0), where)
        if alpha <= 0:
            raise InstanceError("prior.alpha", f"must be > 0, got {alpha}", where)
        p = np.random.default_rng(seed).dirichlet(np.full(n, alpha))
        return p / p.sum()
    raise InstanceError("prior.family", f"unknown family {describe(fam)}; use \"uniform\" or \"dirichlet\"", where)


def from_dict(data: dict, where: str | None = None) -> InfoDesignMarket:
    general = any(k in data for k in ("u", "pi", "v"))
    common = {"source", "name", "description", "database"}
    if general:
        check_keys(data, {"kind", "u", "pi", "v", "prior", "reservation"}, common | {"types", "fees"}, where)
    else:
        check_keys(data, {"kind", "types", "prior", "reservation", "gamma_u", "gamma_pi"}, common | {"fees"}, where)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InstanceError("name", "must be a string", where)
    if general:
        u = data["u"]
        n = len(u[0]) if isinstance(u, list) and u and isinstance(u[0], list) else None
        market = InfoDesignMarket.from_payoffs(
            u, data["pi"], data["v"], _prior(data["prior"], n, where) if n else data["prior"],
            data["reservation"], types=_types(data.get("types"), where) if "types" in data else None,
            fees=data.get("fees"), name=name, source=data.get("source"), where=where)
    else:
        types = _types(data["types"], where)
        n = len(types) if isinstance(types, (list, np.ndarray)) else None
        prior = _prior(data["prior"], n, where) if n else data["prior"]
        market = InfoDesignMarket(types, prior, data["reservation"], data["gamma_u"], data["gamma_pi"],
                                  data.get("fees"), name=name, source=data.get("source"), where=where)
    if "database" in data:
        q = as_vector("database", data["database"], market.n, where=where)
        check_nonnegative("database", q, where)
        if np.any(q > 1.0):     # masses of a unit population (q <= prior); larger ones swamp the LPs' precision
            i = int(np.argmax(q > 1.0))
            raise InstanceError(f"database[{i}]", f"= {q[i]:.6g}: a database is a mass of consumers, each entry "
                                f"must lie in [0, 1] (q <= prior)", where)
        market.database_q = q
    return market


__all__ = ["from_dict"]
