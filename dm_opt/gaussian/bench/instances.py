"""Seeded benchmark instances: ``(family, n, seed)`` → :class:`~dm_opt.GaussianMarket`.

Each benchmark family pairs a covariance generator with a value-of-privacy
generator from :mod:`dm_opt.core.generators` (linopy ``benchmarks/registry.py``
style), so an instance is fully named by ``(family, n, seed)`` and can be
rebuilt anywhere — a Dask worker on another machine receives the *spec* (plain
data) and builds the market itself, never a pointer or a path.

Instance files (``models/*.toml``) are benchmarked too: they are read on the
client and shipped as their parsed TOML tables (data, not paths).

Seeds: the covariance uses ``seed`` and the values use ``VALUE_SEED_OFFSET +
seed``, so the two random streams are distinct but both fixed by ``seed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from dm_opt.core import generators as gen
from dm_opt.core.errors import InstanceError
from dm_opt.core.instances import from_dict, read_toml

#: Offset between the covariance seed and the values seed of one instance.
VALUE_SEED_OFFSET = 1_000_003

#: family -> (covariance generator, its params, value generator, its params).
#: Values uniform on [0, 2] straddle the efficiency threshold v = 1 of AMMO
#: Thm 3 / Lemma 3 (users with v ≤ 1 always share in equilibrium), so every family
#: has users on both sides; ``straddle`` concentrates all of them near 1 (hard cases).
FAMILIES: dict[str, tuple[str, dict, str, dict]] = {
    "wishart": ("wishart", {}, "uniform", {"low": 0.0, "high": 2.0}),
    "equicorrelated": ("equicorrelated", {"rho": 0.3}, "uniform", {"low": 0.0, "high": 2.0}),
    "block": ("block", {"within": 0.5, "across": 0.05}, "uniform", {"low": 0.0, "high": 2.0}),
    "banded": ("banded", {"bandwidth": 2, "strength": 0.5}, "uniform", {"low": 0.0, "high": 2.0}),
    "straddle": ("wishart", {}, "straddle", {"spread": 0.5}),
}


@dataclass(frozen=True)
class InstanceSpec:
    """A benchmark instance as plain data (picklable, JSON-able).

    Either a generated instance (``family``, ``n``, ``seed``) or an instance
    file (``model`` = its parsed TOML table, ``name`` = the file path).
    """

    name: str
    family: str
    n: int
    seed: int | None = None
    model: dict | None = field(default=None, compare=False)

    def build(self):
        """The :class:`~dm_opt.GaussianMarket` this spec names (deterministic)."""
        from dm_opt.gaussian.market import GaussianMarket

        if self.model is not None:
            market = from_dict(self.model, self.name)
            if not isinstance(market, GaussianMarket):
                raise InstanceError("kind", f"benchmarks take gaussian_market files, got '{self.model.get('kind')}'",
                                    self.name)
            return market
        cov_fam, cov_params, val_fam, val_params = FAMILIES[self.family]
        cov = gen.COV_FAMILIES[cov_fam](self.n, seed=self.seed, **cov_params)
        values = gen.VALUE_FAMILIES[val_fam](self.n, seed=VALUE_SEED_OFFSET + self.seed, **val_params)
        return GaussianMarket(cov, values, name=self.name, source=f"dm_opt.gaussian.bench family '{self.family}'")

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "family": self.family, "n": self.n, "seed": self.seed}
        if self.family in FAMILIES:
            cov_fam, cov_params, val_fam, val_params = FAMILIES[self.family]
            d["cov"] = {"family": cov_fam, "n": self.n, "seed": self.seed, **cov_params}
            d["values"] = {"family": val_fam, "n": self.n, "seed": VALUE_SEED_OFFSET + (self.seed or 0),
                           **val_params}
        return d


def generated(families, ns, seeds) -> list[InstanceSpec]:
    """Every ``(family, n, seed)`` combination, in that nesting order.

    ``seeds`` is a count (seeds ``0 .. seeds-1``) or an iterable of seeds.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    out = []
    for fam in families:
        if fam not in FAMILIES:
            raise InstanceError("families", f"unknown benchmark family '{fam}'; choose from {', '.join(FAMILIES)}")
        for n in ns:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise InstanceError("n", f"must be a positive integer, got {n!r}")
            for s in seed_list:
                if s < 0:
                    raise InstanceError("seeds", f"must be nonnegative, got {s}")
                out.append(InstanceSpec(name=f"{fam}-n{n}-s{s}", family=fam, n=int(n), seed=int(s)))
    return out


def from_files(paths, on_skip=None) -> list[InstanceSpec]:
    """Instance specs for ``.toml`` files (a directory is searched recursively).

    Files are parsed and validated here, on the client, so a bad file fails
    before anything is scheduled.  Only ``kind = "gaussian_market"`` files are
    benchmarked: a file named explicitly with another kind is an error, files of
    other kinds found in a directory are skipped (``on_skip(path, kind)`` is
    called for each; nothing is built for them).
    """
    from dm_opt.gaussian.market import GaussianMarket

    files: list[tuple[str, bool]] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                files.extend((os.path.join(root, f), True) for f in sorted(names) if f.endswith(".toml"))
        else:
            files.append((p, False))
    out = []
    for f, from_dir in files:
        data = read_toml(f)
        kind = data.get("kind")
        if kind != GaussianMarket.kind:
            if from_dir:
                if on_skip is not None:
                    on_skip(f, kind)
                continue
            raise InstanceError("kind", f"benchmarks take gaussian_market files, got {kind!r}", f)
        market = from_dict(data, f)
        out.append(InstanceSpec(name=f, family="file", n=market.n, seed=None, model=data))
    if not out:
        raise InstanceError("models", f"no gaussian_market instance files found in {', '.join(map(str, paths))}")
    return out
