"""Instance kind ``gaussian_mixture`` (AMMO §5.3, Thm 5: unknown covariance).

    kind = "gaussian_mixture"
    source = "AMMO §5.3 (Thm 5)"
    name = "example"                          # optional
    probabilities = [0.5, 0.5]                # μ over the covariances; sums to 1
    covariances = [[[1.0, 0.5], [0.5, 1.0]],  # one SPD matrix per probability
                   [[1.0, 0.0], [0.0, 1.0]]]
    values = [0.5, 2.0]                       # or a scalar
    noise_var = 1.0                           # optional (default 1)
"""

from __future__ import annotations

from dm_opt.core.errors import InstanceError
from dm_opt.core.instances import check_keys
from dm_opt.core.validate import precheck_noise_ratio
from dm_opt.gaussian.leakage.mixture import MixtureMarket


def from_dict(data: dict, where: str | None = None) -> MixtureMarket:
    check_keys(data, {"kind", "probabilities", "covariances", "values"},
               {"source", "name", "noise_var", "description"}, where)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InstanceError("name", "must be a string", where)
    covs = data["covariances"]
    if isinstance(covs, list):
        for k, c in enumerate(covs):
            precheck_noise_ratio(c, data.get("noise_var"), where, cov_field=f"covariances[{k}]")
    return MixtureMarket(data["probabilities"], data["covariances"], data["values"], data.get("noise_var"),
                         name=name, source=data.get("source"), where=where)


__all__ = ["from_dict"]
