"""Instance kind ``community_market`` (AMMO Example 2; docs/spec.md §1.4).

    kind = "community_market"
    source = "AMMO Example 2 (Figure 3)"
    name = "example2"                       # optional
    sizes = [10, 10]                        # users per community (numbered community by community)
    variance = 1.0                          # scalar or one per community
    within_corr = 0.05                      # scalar or one per community
    cross_corr = 0.1                        # scalar (every pair) or a K×K matrix with unit diagonal
    noise_var = 1.0                         # optional, scalar or one per community (default 1)
    values = [0.9, ..., 3.0]                # one per user, or a per-community distribution:
    # values = {family = "constant", value = [0.9, 3.0]}
    # values = {family = "uniform", low = [0, 0.5], high = [2, 3], seed = 1}
    # values = {family = "lognormal", mean = [0, 0.2], sigma = 0.5, seed = 1}
"""

from __future__ import annotations

from dm_opt.core.errors import InstanceError
from dm_opt.core.instances import check_keys
from dm_opt.gaussian.community import CommunityMarket


def from_dict(data: dict, where: str | None = None) -> CommunityMarket:
    check_keys(data, {"kind", "sizes", "values"},
               {"source", "name", "description", "variance", "within_corr", "cross_corr", "noise_var"}, where)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InstanceError("name", "must be a string", where)
    sizes = data["sizes"]
    if not isinstance(sizes, list):
        raise InstanceError("sizes", "must be a list of community sizes, e.g. sizes = [10, 10]", where)
    return CommunityMarket(sizes, data.get("variance", 1.0), data.get("within_corr", 0.0),
                           data.get("cross_corr", 0.0), data["values"], data.get("noise_var", 1.0),
                           name=name, source=data.get("source"), where=where)


def to_dict(market: CommunityMarket) -> dict:
    """The instance table of ``market`` (:func:`dm_opt.save`), the inverse of :func:`from_dict`.

    The per-community data are written as the (K,) vectors and the (K, K) ``cross_corr`` matrix the
    market holds (its symmetrised matrix is a fixed point of symmetrising, so it reads back bit for
    bit).  ``values`` (n,) are written as ``{family = "constant", value = [...]}`` when every
    community's values are bitwise one number (that table rebuilds exactly those floats), and else
    in full: a drawn ``uniform``/``lognormal`` table is not kept by the market, and the draws
    themselves are the only exact record of it (a million users give a file of about 20 MB).
    """
    d: dict = {"kind": "community_market"}
    if market.name is not None:
        d["name"] = str(market.name)
    if market.source is not None:
        d["source"] = str(market.source)
    sizes = market.sizes
    d["sizes"] = [int(s) for s in sizes]
    d["variance"] = market.variance.tolist()
    d["within_corr"] = market.within_corr.tolist()
    d["cross_corr"] = market.cross_corr.tolist()
    d["noise_var"] = market.community_noise_var.tolist()
    values = market.values
    bits = values.view("int64")             # bitwise: -0.0 and 0.0 are not merged
    first = sizes.cumsum() - sizes          # index of each community's first user
    if bool((bits == bits[first].repeat(sizes)).all()):
        d["values"] = {"family": "constant", "value": values[first].tolist()}
    else:
        d["values"] = values.tolist()
    return d


__all__ = ["from_dict", "to_dict"]
