"""Every named GLP instance of the catalogue (tests/info_design/cases.py), every problem with an
expected value, through every available method of the family (and ``auto``)."""

import pytest

from tests.info_design.cases import CASES, check_result, instances, solve


@pytest.mark.parametrize("case, problem, method", instances(),
                         ids=lambda x: getattr(x, "name", str(x)))
def test_catalogue(case, problem, method):
    check_result(case, problem, solve(case, problem, method))


def test_catalogue_covers_every_glp_file_and_method():
    from pathlib import Path

    from dm_opt.core.registry import available_methods

    glp = Path(__file__).resolve().parents[2] / "models" / "glp"
    small = {f.stem for f in glp.glob("*.toml") if f.stem not in ("grid_50", "grid_200")}
    assert small <= {c.name for c in CASES}
    used = {m for _, _, m in instances()}
    assert set(available_methods("info_design")) <= used
