"""CommunityMarket: block-structured Σ, K×K closed forms vs the dense matrix, validation (docs/spec.md §1.4)."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dm_opt
from dm_opt import CommunityMarket, InstanceError
from dm_opt.gaussian.community import community_values
from tests.support import naive
from tests.support.community_helpers import random_market


def test_dense_covariance_entries():
    m = CommunityMarket([2, 3], variance=[1.0, 4.0], within_corr=[0.5, 0.25], cross_corr=0.1,
                        values=np.ones(5))
    S = m.cov_dense()
    assert S[0, 0] == 1.0 and S[2, 2] == 4.0
    assert S[0, 1] == pytest.approx(0.5)                 # within community 0: r·s
    assert S[2, 4] == pytest.approx(0.25 * 4.0)          # within community 1
    assert S[0, 3] == pytest.approx(0.1 * np.sqrt(1.0 * 4.0))   # cross: C·σ_k σ_l
    assert np.allclose(S, S.T)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_leakage_matches_dense_oracle(seed):
    """I_i(a) and the own-signal gain from the K×K closed form equal fresh dense solves."""
    rng = np.random.default_rng(seed)
    m = random_market(rng)
    S = m.cov_dense()
    for _ in range(4):
        a = rng.integers(0, 2, m.n).astype(np.int8)
        A = np.flatnonzero(a)
        assert np.allclose(m.leakage(a), naive.leakage(S, m.noise_var, A), atol=1e-12)
        own = np.array([naive.leakage(S, m.noise_var, A)[i] - naive.leakage(S, m.noise_var, A[A != i])[i]
                        if a[i] else 0.0 for i in range(m.n)])
        assert np.allclose(m.own_leakage(a), own, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_eigenvalues_without_forming_sigma(seed):
    """eig(Σ) = eig(M) ∪ {δ_k with multiplicity n_k − 1} (module docstring derivation)."""
    rng = np.random.default_rng(seed)
    m = random_market(rng)
    eM, delta = m.eigenvalues()
    ours = np.sort(np.concatenate([eM, np.repeat(delta, m.sizes - 1)]))
    assert np.allclose(ours, np.linalg.eigvalsh(m.cov_dense()), atol=1e-10)


def test_validation_agrees_with_dense_cholesky():
    """The O(K³) PD check accepts exactly the parameter sets whose dense Σ is PD."""
    rng = np.random.default_rng(7)
    accepted = rejected = 0
    for _ in range(300):
        K = int(rng.integers(1, 4))
        sizes = rng.integers(1, 6, K)
        r = rng.uniform(-0.6, 1.0, K)
        C = np.eye(K)
        for k in range(K):
            for l in range(k + 1, K):
                C[k, l] = C[l, k] = rng.uniform(-0.9, 0.9)
        s = rng.uniform(0.5, 2, K)
        c = np.repeat(np.arange(K), sizes)
        S = (C * np.sqrt(np.outer(s, s)))[np.ix_(c, c)]
        same = c[:, None] == c[None, :]
        S = np.where(same, (s * r)[c][:, None] * np.ones(len(c)), S)
        np.fill_diagonal(S, s[c])
        dense_pd = np.linalg.eigvalsh(S)[0] > 1e-9
        try:
            CommunityMarket(sizes, s, r, C, np.ones(sizes.sum()))
            ok = True
        except InstanceError:
            ok = False
        if abs(np.linalg.eigvalsh(S)[0]) > 1e-7:        # skip numerically borderline cases
            assert ok == dense_pd
            accepted += ok
            rejected += not ok
    assert accepted > 20 and rejected > 20


@pytest.mark.parametrize("kwargs, field, words", [
    (dict(sizes=[3, 3], within_corr=[1.0, 0.1]), "within_corr[0]", "perfectly correlated"),
    (dict(sizes=[5, 3], within_corr=[-0.3, 0.1]), "within_corr[0]", "-1/(n_k - 1)"),
    (dict(sizes=[10, 10], within_corr=0.05, cross_corr=0.2), "cross_corr[0,1]", "0.145"),
    (dict(sizes=[1, 1, 1], cross_corr=[[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]]), "cross_corr",
     "jointly inconsistent"),
    (dict(sizes=[2, 2], cross_corr=[[1, 0.1], [0.2, 1]]), "cross_corr[0,1]", "symmetric"),
    (dict(sizes=[2, 2], cross_corr=[[0.5, 0.1], [0.1, 1]]), "cross_corr[0,0]", "diagonal"),
    (dict(sizes=[2, 2], cross_corr=1.5), "cross_corr[0,1]", "[-1, 1]"),
    (dict(sizes=[2, 0]), "sizes[1]", "integer >= 1"),
    (dict(sizes=[2, 2.5]), "sizes[1]", "integer >= 1"),
    (dict(sizes=[2, 2], variance=[1.0, -1.0]), "variance[1]", "> 0"),
    (dict(sizes=[2, 2], noise_var=[1.0, 0.0]), "noise_var[1]", "> 0"),
    (dict(sizes=[2, 2], variance=[1.0, 1.0, 1.0]), "variance", "one per community"),
])
def test_validation_errors_name_the_parameter(kwargs, field, words):
    n = int(np.sum(kwargs["sizes"]))
    with pytest.raises(InstanceError) as exc:
        CommunityMarket(values=np.ones(n), **kwargs)
    assert exc.value.field == field
    assert words in str(exc.value)


def test_example2_cross_limit_is_the_paper_range():
    """Example 2 (two communities of 10, within 1/20): Σ ≻ 0 iff |ρ| < (1 + 9/20)/10 = 0.145."""
    v = [0.9] * 10 + [2.0] * 10
    CommunityMarket([10, 10], 1.0, 1 / 20, 0.1449, v)
    with pytest.raises(InstanceError, match="cross_corr"):
        CommunityMarket([10, 10], 1.0, 1 / 20, 0.1451, v)


def test_values_validation_and_distributions():
    with pytest.raises(InstanceError) as exc:
        CommunityMarket([2, 2], values=[1.0, 1.0, -1.0, 1.0])
    assert exc.value.field == "values[2]"
    with pytest.raises(InstanceError) as exc:
        CommunityMarket([2, 2], values=[1.0, 1.0, 1.0])
    assert exc.value.field == "values"
    spec = {"family": "uniform", "low": [0.0, 1.0], "high": [0.5, 3.0]}
    a = community_values([4, 5], spec, seed=3)
    b = community_values([4, 5], spec, seed=3)
    assert np.array_equal(a, b) and a.shape == (9,)
    assert np.all(a[:4] <= 0.5) and np.all(a[4:] >= 1.0)
    # community 0's draw does not depend on community 1's size
    assert np.array_equal(community_values([4, 50], spec, seed=3)[:4], a[:4])
    m = CommunityMarket([4, 5], values={"family": "constant", "value": [0.9, 2.0]})
    assert np.array_equal(m.values, [0.9] * 4 + [2.0] * 5)
    with pytest.raises(InstanceError) as exc:
        CommunityMarket([4, 5], values={"family": "uniform", "low": [1.0, 0.0], "high": [0.5, 1.0]})
    assert exc.value.field == "values.low[0]"
    with pytest.raises(InstanceError) as exc:
        CommunityMarket([4, 5], values={"family": "pareto"})
    assert exc.value.field == "values.family"


def test_to_gaussian_refuses_huge_n():
    m = CommunityMarket([3000, 3000], 1.0, 0.1, 0.01, {"family": "constant", "value": 1.0})
    with pytest.raises(dm_opt.LimitExceeded):
        m.to_gaussian()


# ------------------------------------------------------------------ instance files (kind community_market)
MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "models", "ammo")


def test_example2_file_equals_dense_example2():
    """models/ammo/example2_community.toml is the same market as example2.toml (dense cov): same Σ,
    and the community solver's answers equal enumeration on the dense file."""
    cm = dm_opt.load(os.path.join(MODELS, "example2_community.toml"))
    gm = dm_opt.load(os.path.join(MODELS, "example2.toml"))
    assert cm.kind == "community_market" and cm.source.startswith("AMMO")
    assert np.allclose(cm.cov_dense(), gm.cov) and np.array_equal(cm.values, gm.values)
    for problem in ("first_best", "equilibrium"):
        c = dm_opt.solve(cm, problem)
        e = dm_opt.solve(gm, problem, method="enumerate", all_optima=True)
        assert c.method == "community"
        assert c.objective == pytest.approx(e.objective, abs=1e-10)
        assert any(np.array_equal(c.profile, o) for o in e.optima)
    # Example 2 at (ρ, v_h) = (0.1, 3): only community 0 shares and equilibrium surplus is negative
    r = dm_opt.solve(cm, "equilibrium")
    assert r.profile.tolist() == [1] * 10 + [0] * 10 and r.surplus < 0


def test_large_file_loads_with_seeded_values():
    m = dm_opt.load(os.path.join(MODELS, "community_n1e6_k5.toml"))
    assert m.n == 1_000_000 and m.K == 5 and m.source
    again = dm_opt.load(os.path.join(MODELS, "community_n1e6_k5.toml"))
    assert np.array_equal(m.values, again.values)


def test_instance_file_errors(tmp_path):
    def write(text):
        p = tmp_path / "c.toml"
        p.write_text('kind = "community_market"\nsource = "test"\n' + text)
        return str(p)

    with pytest.raises(InstanceError) as exc:
        dm_opt.load(write('sizes = [10, 10]\nwithin_corr = 0.05\ncross_corr = 0.2\nvalues = 1.0\n'))
    assert exc.value.field == "cross_corr[0,1]" and exc.value.where.endswith("c.toml")
    with pytest.raises(InstanceError) as exc:
        dm_opt.load(write('sizes = [2, 2]\nvalues = 1.0\nwithin = 0.1\n'))
    assert exc.value.field == "within"                   # typo: unknown field
    with pytest.raises(InstanceError) as exc:
        dm_opt.load(write('sizes = 4\nvalues = 1.0\n'))
    assert exc.value.field == "sizes"
    with pytest.raises(InstanceError) as exc:
        dm_opt.load(write('sizes = [2, 2]\n'))
    assert exc.value.field == "values"


def test_cli_solve_community_file(capsys):
    import json

    from dm_opt.cli import main

    assert main(["solve", os.path.join(MODELS, "example2_community.toml"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "community" and out["status"] == "optimal" and len(out["profile"]) == 20
    assert main(["solve", os.path.join(MODELS, "example2_community.toml")]) == 0
    text = capsys.readouterr().out
    assert "community" in text and "sharers" in text
