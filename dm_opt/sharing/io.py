"""Instance kind ``sharing_network`` (RJ, *Data Sharing Markets*).

Table family (small N; every partner set of every agent must be given)::

    kind = "sharing_network"
    source = "RJ Remark 3.4"
    family = "table"
    agents = ["1", "2"]                 # agent names (the paper's labels)
    cost = 0.0                          # optional: scalar, [per sender] or [[c_i(j)]]
    [utility.1]                         # U_1(S): keys are partner sets, names joined by ","
    "" = 1.0                            # alone: S_1 = {1}
    "2" = 0.0                           # S_1 = {1, 2}
    [utility.2]
    "" = 0.0
    "1" = 10.0

Power family (value concave in samples received)::

    kind = "sharing_network"
    source = "..."
    family = "power"
    samples = [120, 80, 60]             # or {family = "uniform", n = 50, low = 10, high = 1000, seed = 1}
    alpha = 1.0                         # scalar, list or generator table
    beta = 0.5
    cost = 0.001                        # scalar, [per sender] or [[c_i(j)]]
    max_queries = 1                     # optional, §6 per-query extension
    query_samples = [...]               # optional, samples per query (default: samples)
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.generators import generate
from dm_opt.core.instances import check_keys
from dm_opt.core.validate import as_real, describe
from dm_opt.sharing.market import MAX_TABLE_AGENTS, SharingMarket

_COMMON = {"kind", "family", "source", "name", "description", "agents", "cost", "max_queries"}


def _names(data, n, where):
    names = data.get("agents")
    if names is None:
        if n is None:
            raise InstanceError("agents", "missing (list of agent names, e.g. [\"1\", \"2\", \"3\"])", where)
        return [str(k + 1) for k in range(n)]
    if not isinstance(names, list) or not all(isinstance(s, str) and s for s in names):
        raise InstanceError("agents", "must be a list of non-empty strings", where)
    if len(set(names)) != len(names):
        raise InstanceError("agents", "agent names must be distinct", where)
    if any("," in s for s in names):
        raise InstanceError("agents", "agent names may not contain ','", where)
    return names


def _vector(data, key, n, where, default=None):
    v = data.get(key, default)
    if isinstance(v, dict):
        return generate("values", v, key, where, n=n)
    return v            # (a scalar is broadcast by SharingMarket, which names it without an index)


def from_dict(data: dict, where: str | None = None) -> SharingMarket:
    family = data.get("family")
    if family not in ("table", "power"):
        raise InstanceError("family", f"must be \"table\" or \"power\", got {describe(family)}", where)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InstanceError("name", "must be a string", where)
    if family == "table":
        check_keys(data, {"kind", "family", "utility"}, _COMMON, where)
        names = _names(data, None, where)
        n = len(names)
        if n < 2 or n > MAX_TABLE_AGENTS:
            raise InstanceError("agents", f"table family needs 2..{MAX_TABLE_AGENTS} agents, got {n}", where)
        util = data["utility"]
        if not isinstance(util, dict):
            raise InstanceError("utility", "must be a table keyed by agent name", where)
        index = {s: k for k, s in enumerate(names)}
        for key in util:
            if key not in index:
                raise InstanceError(f"utility.{key}", f"unknown agent; agents are {', '.join(names)}", where)
        values = {}
        for k, s in enumerate(names):
            if s not in util:
                raise InstanceError(f"utility.{s}", "missing (every agent needs a utility table)", where)
            row = util[s]
            if not isinstance(row, dict):
                raise InstanceError(f"utility.{s}", "must be a table mapping partner sets to numbers", where)
            vals = {}
            for setkey, v in row.items():
                fld = f"utility.{s}.\"{setkey}\""
                parts = [p.strip() for p in setkey.split(",")] if setkey.strip() else []
                bad = [p for p in parts if p not in index or p == s]
                if bad:
                    raise InstanceError(fld, f"'{bad[0]}' is not another agent (agents: {', '.join(names)})", where)
                if len(set(parts)) != len(parts):
                    raise InstanceError(fld, "lists an agent twice", where)
                v = as_real(fld, v, where)
                fs = frozenset(index[p] for p in parts)
                if fs in vals:
                    raise InstanceError(fld, "the same partner set is given twice", where)
                vals[fs] = float(v)
            values[k] = vals
        for k, s in enumerate(names):
            others = [j for j in range(n) if j != k]
            for m in range(1 << len(others)):
                fs = frozenset(others[b] for b in range(len(others)) if (m >> b) & 1)
                if fs not in values[k]:
                    key = ",".join(names[j] for j in sorted(fs))
                    raise InstanceError(f"utility.{s}", f"missing value for partner set \"{key}\" "
                                        f"(give all {1 << len(others)} sets)", where)
        return SharingMarket.from_sets(n, values, cost=data.get("cost"), max_queries=data.get("max_queries"),
                                       names=names, name=name, source=data.get("source"), where=where)
    check_keys(data, {"kind", "family", "samples"}, _COMMON | {"alpha", "beta", "query_samples", "n"}, where)
    n = data.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise InstanceError("n", f"must be an integer >= 2, got {describe(n)}", where)
    samples = data["samples"]
    if isinstance(samples, dict):
        samples = generate("values", samples, "samples", where, n=n)
    if n is None and isinstance(samples, (list, np.ndarray)):
        n = len(samples)
    names = _names(data, n, where) if "agents" in data else None
    return SharingMarket.power(samples, alpha=_vector(data, "alpha", n, where, 1.0),
                               beta=_vector(data, "beta", n, where, 0.5),
                               cost=data.get("cost", 0.0), query_samples=_vector(data, "query_samples", n, where),
                               max_queries=data.get("max_queries"), names=names, name=name,
                               source=data.get("source"), where=where)


# --------------------------------------------------------------------- run


__all__ = ["from_dict"]
