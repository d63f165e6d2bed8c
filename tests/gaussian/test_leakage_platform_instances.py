"""Instance kinds ``gaussian_mixture`` and ``two_platforms``: loading, solving from the CLI, error paths."""

import json
import os

import pytest

import dm_opt
from dm_opt.cli import main
from dm_opt.gaussian.leakage import MixtureMarket
from dm_opt.gaussian.platforms import TwoPlatformMarket

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
MIX = os.path.join(ROOT, "models", "ammo", "mixture_example.toml")
TWO = os.path.join(ROOT, "models", "ammo", "two_platforms_example.toml")

MIX_TEXT = '''kind = "gaussian_mixture"
source = "test"
probabilities = [0.25, 0.75]
covariances = [[[1.0, 0.5], [0.5, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]
values = [0.5, 2.0]
'''

TWO_TEXT = '''kind = "two_platforms"
source = "test"
cov = [[1.0, 0.8], [0.8, 1.0]]
values = [0.5, 5.0]
candidate_levels = [[0.0, 0.25, 0.5], [0.0, 0.5]]

[joining]
base = [6.0, 6.0]
slope = [0.01, 0.01]
'''


def write(tmp_path, text):
    p = tmp_path / "m.toml"
    p.write_text(text)
    return str(p)


def test_mixture_model_file_thm5_part1(capsys):
    m = dm_opt.load(MIX)
    assert isinstance(m, MixtureMarket) and m.source
    eq = dm_opt.solve(m, "equilibrium", all_optima=True)
    fb = dm_opt.solve(m, "first_best")
    # high-value user 2 is uncorrelated with everybody in both components: equilibrium is efficient (Thm 5.1)
    assert eq.profile.tolist() == [1, 1, 0, 1] and eq.surplus == pytest.approx(fb.objective)
    assert main(["solve", MIX, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["profile"] == [1, 1, 0, 1] and out["status"] == "optimal"


def test_two_platforms_model_file_from_cli(capsys):
    tp = dm_opt.load(TWO)
    assert isinstance(tp, TwoPlatformMarket) and tp.assumption1.holds
    assert main(["solve", TWO, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["equilibria_found"] > 0 and out["monopoly_surplus"] < out["first_best_surplus"]
    assert all(o["efficient"] for o in out["outcomes"])


def test_two_platforms_inline_levels_and_mi_leakage(tmp_path, capsys):
    path = write(tmp_path, TWO_TEXT)
    assert main(["solve", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["candidates"] == 6
    assert main(["solve", path]) == 0
    assert "equilibria are relative to this candidate set" in capsys.readouterr().out
    path = write(tmp_path, TWO_TEXT.replace('source = "test"', 'source = "test"\nleakage = "mutual_information"'))
    tp = dm_opt.load(path)
    assert type(tp.market).__name__ == "MutualInformationMarket"


@pytest.mark.parametrize("text, needle", [
    (MIX_TEXT.replace("[0.25, 0.75]", "[0.25, 0.7]"), "probabilities: must sum to 1"),
    (MIX_TEXT.replace("[[1.0, 0.0], [0.0, 1.0]]", "[[1.0, 2.0], [2.0, 1.0]]"),
     "covariances[1]: must be positive definite"),
    (MIX_TEXT + "extra = 1\n", "extra: unknown field"),
    (MIX_TEXT.replace("values = [0.5, 2.0]\n", ""), "values: missing"),
    (TWO_TEXT.replace("slope = [0.01, 0.01]", "slope = [0.0, 0.0]"), "violates Assumption 1"),
    (TWO_TEXT.replace("base = [6.0, 6.0]", "base = [6.0, 1.0]"), "part 2"),
    (TWO_TEXT.replace('source = "test"', 'source = "test"\nleakage = "kl"'), "leakage: must be"),
    (TWO_TEXT.replace('source = "test"', 'source = "test"\ndeviation = "nash"'), "deviation: must be"),
    (TWO_TEXT.replace("slope = [0.01, 0.01]", "slope = [0.01, 0.01]\nfoo = 1"), "joining.foo: unknown field"),
    (TWO_TEXT.replace("candidate_levels = [[0.0, 0.25, 0.5], [0.0, 0.5]]", "candidate_levels = [[0.0]]"),
     "candidate_levels"),
])
def test_bad_instances_exit_2_with_one_line(tmp_path, capsys, text, needle):
    path = write(tmp_path, text)
    assert main(["solve", path]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_two_platforms_rejects_other_problems(capsys):
    assert main(["solve", TWO, "--problem", "equilibrium"]) == 2
    assert "competition" in capsys.readouterr().err


def test_two_platforms_cli_time_limit_and_ctrl_c(monkeypatch, capsys):
    """--time-limit applies to the price search; a stopped search prints its status and coverage
    (JSON and table); Ctrl-C prints the partial result and exits 130."""
    from dm_opt.core import limits as core_limits

    assert main(["solve", TWO, "--json", "--time-limit", "600"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["status"] == "optimal" and full["candidates_covered"] == full["candidates"]
    # expires after step 1
    monkeypatch.setattr(core_limits.Deadline, "expired", lambda self: self.time_limit is not None)
    assert main(["solve", TWO, "--json", "--time-limit", "600"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "time_limit" and out["candidates_covered"] == 1 and out["pairs_checked"] == 1
    assert main(["solve", TWO, "--time-limit", "600"]) == 0
    text = capsys.readouterr().out
    assert "status: time_limit -- PARTIAL SEARCH" in text and "the first 1 of" in text
    real = TwoPlatformMarket._eq_matrix_rows
    calls = [0]

    def rows(self, *args, **kw):
        calls[0] += 1
        if calls[0] == 7:
            raise KeyboardInterrupt
        return real(self, *args, **kw)

    monkeypatch.setattr(TwoPlatformMarket, "_eq_matrix_rows", rows)
    assert main(["solve", TWO, "--json"]) == 130
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "interrupted" and out["candidates_covered"] == 3 and out["pairs_checked"] == 9
    assert main(["solve", TWO, "--time-limit", "0"]) == 2
    assert "--time-limit" in capsys.readouterr().err
