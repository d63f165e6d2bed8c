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
from dm_opt.gaussian.io import market as _gaussian
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


def to_dict(market: MixtureMarket) -> dict:
    """The instance table of ``market`` (:func:`dm_opt.save`), the inverse of :func:`from_dict`.

    ``probabilities`` (K,) as held (the market does not renormalise them), and each component's
    ``cov`` (n, n), ``values`` and ``noise_var`` (n,) as the Gaussian market's own ``to_dict``
    writes them (the components share ``values`` and ``noise_var``).
    """
    parts = [_gaussian.to_dict(m) for m in market.components]
    d: dict = {"kind": "gaussian_mixture"}
    if market.name is not None:
        d["name"] = str(market.name)
    if market.source is not None:
        d["source"] = str(market.source)
    d["probabilities"] = market.probabilities.tolist()
    d["covariances"] = [p["cov"] for p in parts]
    d["values"] = parts[0]["values"]
    d["noise_var"] = parts[0]["noise_var"]
    return d


__all__ = ["from_dict", "to_dict"]
