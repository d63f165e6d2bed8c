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


__all__ = ["from_dict"]
