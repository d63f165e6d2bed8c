"""Instance kind ``gaussian_market`` (AMMO).

    kind = "gaussian_market"
    source = "AMMO Example 1"
    name = "example1"                         # optional
    cov = [[1.0, 0.5], [0.5, 1.0]]            # or a generator table:
    # cov = {family = "wishart", n = 30, seed = 1}
    values = [1.0, 1.0]                       # or a scalar, or {family = "uniform", low = 0, high = 2, seed = 2}
    noise_var = 1.0                           # optional, scalar or list (default 1)
"""

from __future__ import annotations

import numbers

import numpy as np

from dm_opt.core.errors import InstanceError
from dm_opt.core.generators import generate
from dm_opt.core.instances import check_keys
from dm_opt.core.validate import as_array, as_covariance, precheck_noise_ratio
from dm_opt.gaussian.market import GaussianMarket


def from_dict(data: dict, where: str | None = None) -> GaussianMarket:
    check_keys(data, {"kind", "cov", "values"}, {"source", "name", "noise_var", "description"}, where)
    cov = data["cov"]
    if isinstance(cov, dict):
        cov = generate("cov", cov, "cov", where)
    elif isinstance(cov, list):     # parsed once here (the checks below and the market reuse the array)
        cov = as_array("cov", cov, ndim=2, where=where, max_abs=None)
    n = len(cov) if isinstance(cov, (list, np.ndarray)) else None
    values = data["values"]
    if isinstance(values, dict):
        if not n:   # the number of users comes from cov: name cov (not values.n) when it has none
            as_covariance("cov", cov, where=where)
        values = generate("values", values, "values", where, n=n)
    elif isinstance(values, numbers.Real) and not isinstance(values, bool) and n is not None:
        values = [values] * n
    noise = data.get("noise_var")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InstanceError("name", "must be a string", where)
    precheck_noise_ratio(cov, noise, where)
    return GaussianMarket(cov, values, noise, name=name, source=data.get("source"), where=where)


def to_dict(market: GaussianMarket) -> dict:
    """The instance table of ``market`` (:func:`dm_opt.save`): ``cov``, ``values`` and ``noise_var``
    written out in full (``repr`` of every float, so the file reads back to the same numbers)."""
    d = {"kind": "gaussian_market"}
    if market.name:
        d["name"] = str(market.name)
    if market.source:
        d["source"] = str(market.source)
    d["cov"] = np.asarray(market.cov, float).tolist()
    d["values"] = np.asarray(market.values, float).tolist()
    d["noise_var"] = np.asarray(market.noise_var, float).tolist()
    return d


def nested_dict(kind: str, outer, gaussian: GaussianMarket) -> dict:
    """The head of the table of a kind built over a Gaussian market (two platforms, valuations):
    ``kind``, the outer market's ``name`` and ``source`` when set, then ``cov``, ``values`` and
    ``noise_var`` of ``gaussian`` as :func:`to_dict` writes them."""
    base = to_dict(gaussian)
    d: dict = {"kind": kind}
    if outer.name is not None:
        d["name"] = str(outer.name)
    if outer.source is not None:
        d["source"] = str(outer.source)
    for key in ("cov", "values", "noise_var"):
        d[key] = base[key]
    return d


__all__ = ["from_dict", "to_dict", "nested_dict"]
