"""Every named AMMO instance of the catalogue (tests/gaussian/cases.py), every problem, through
``auto`` and every available method of the family that supports it."""

from pathlib import Path

import pytest

from dm_opt.core.registry import available_methods
from tests.gaussian.cases import CASES, check_result, instances, solve


@pytest.mark.parametrize("case, problem, method", instances())
def test_catalogue(case, problem, method):
    check_result(case, problem, solve(case, problem, method))


def test_catalogue_covers_the_shipped_gaussian_files_and_every_method():
    ammo = Path(__file__).resolve().parents[2] / "models" / "ammo"
    dense = {"example1", "illustrative_3_4", "three_users", "equicorrelated_n12", "example2", "example2_community",
             "wishart_n16_seed1", "block_n18"}
    named = {"illustrative_3_4": "section_3_4", "example1": "example1_rho0.5"}
    assert {named.get(f, f) for f in dense} <= {c.name for c in CASES}
    assert dense <= {f.stem for f in ammo.glob("*.toml")}
    used = {p.values[2] for p in instances()}
    assert set(available_methods("gaussian")) <= used
