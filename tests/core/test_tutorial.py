"""docs/tutorial.py runs as a script (in a subprocess, from a scratch directory, writing only to
the directory it is given) and the numbers it prints are the papers' numbers, computed here
independently: from the closed forms of the papers and from fresh dense / K×K formulas written
in this file (no dm_opt solver is called here; the instance files are read with tomllib).

About 7 CPU seconds (the million-user market is most of it), so it is not marked slow.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dm_opt
from tests.support import naive

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.py"
MODELS = ROOT / "dm_opt" / "models"
REL = 1e-9


def _model(name: str) -> dict:
    return tomllib.loads((MODELS / f"{name}.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(stdout, output directory)`` of one run of the tutorial."""
    out = tmp_path_factory.mktemp("tutorial_out")
    cwd = tmp_path_factory.mktemp("tutorial_cwd")
    env = {k: v for k, v in os.environ.items() if k != "DM_OPT_TUTORIAL_OUT"}
    r = subprocess.run([sys.executable, str(TUTORIAL), "--out", str(out)], capture_output=True, text=True,
                       cwd=cwd, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert list(cwd.iterdir()) == []                     # nothing written where it was run
    return r.stdout, out


def _value(text: str, pattern: str):
    """The Python literal after ``pattern`` (a regex) in ``text``: a number, a list or a bool."""
    m = re.search(pattern + r"\s*(\[[^\]]*\]|[-+0-9.eE]+|True|False)", text)
    assert m, f"not printed: {pattern}"
    s = m.group(1)
    if s in ("True", "False"):
        return s == "True"
    return [float(x) for x in s.strip("[]").split(",")] if s.startswith("[") else float(s)


def test_runs_and_writes_only_to_its_output_directory(run):
    text, out = run
    assert text.rstrip().endswith("tutorial finished")
    assert f"output directory: {out}" in text
    written = {p.name for p in out.iterdir()}
    assert "example1.toml" in written
    try:
        import matplotlib  # noqa: F401
        assert "figure1.png" in written
    except ImportError:
        assert "figure 1 skipped" in text


def test_env_var_names_the_output_directory(tmp_path):
    """Without --out, DM_OPT_TUTORIAL_OUT is the directory (only the first cells are needed:
    the script is cut before the million-user market to keep this quick)."""
    src = TUTORIAL.read_text(encoding="utf-8")
    head = src[:src.index("# %% [2]")]
    script = tmp_path / "head.py"
    script.write_text(head, encoding="utf-8")
    out = tmp_path / "env_out"
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "DM_OPT_TUTORIAL_OUT": str(out)}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (out / "example1.toml").is_file()


# ---------------------------------------------------------------- AMMO Example 1
def test_example1_numbers(run):
    text, _ = run
    d = _model("ammo/example1")
    S = np.array(d["cov"], float)
    v = np.array(d["values"], float)
    tau2 = np.full(2, float(d["noise_var"]))
    rho = S[0, 1]
    # AMMO Example 1: both share at p1 = p2 = (2 − ρ²)² / (2 (4 − ρ²)) (unit variances and noise)
    p = (2 - rho ** 2) ** 2 / (2 * (4 - rho ** 2))
    assert _value(text, r"example1 equilibrium prices =") == pytest.approx([p, p], rel=REL)
    assert "example1 equilibrium: status = optimal, profile = [1, 1]" in text
    leak = naive.leakage(S, tau2, [0, 1])                  # fresh dense solve
    assert _value(text, r"example1 equilibrium leakage =") == pytest.approx(leak.tolist(), rel=REL)
    profit = float(leak.sum() - 2 * p)                    # platform: leakage bought minus prices paid
    assert _value(text, r"example1 equilibrium profit =") == pytest.approx(profit, rel=REL)
    best, _ = naive.brute_force(S, tau2, v, "equilibrium")   # and it is the best profile
    assert profit == pytest.approx(best, rel=REL)
    assert _value(text, r"surplus =") == pytest.approx(float((1 - v) @ leak), abs=1e-12)
    fb_best, fb_optima = naive.brute_force(S, tau2, v, "first_best")
    fb_profile = _value(text, r"example1 first best: profile =")
    assert any(np.array_equal(fb_profile, a) for a in fb_optima)
    assert _value(text, r"example1 first best: profile = \[[^\]]*\], surplus =") == pytest.approx(fb_best, abs=1e-12)


# ---------------------------------------------------------------- million users
def _community_leakage(B, d, tau2, m):
    """Leakage ``(sharer, non-sharer)`` per community at sharer counts ``m`` (K,), from
    ``Σ = diag(d) + U B Uᵀ`` by Woodbury on ``Σ_AA + T = E + U_A B U_Aᵀ`` (E = diag(d + τ²) on
    the sharers): ``(E + U B Uᵀ)⁻¹ = E⁻¹ − E⁻¹ U F Uᵀ E⁻¹`` with ``F = B (I + M B)⁻¹``,
    ``M = Uᵀ E⁻¹ U = diag(m / e)``; the leakage ``Σ_iA (Σ_AA + T)⁻¹ Σ_Ai`` of a non-sharer of
    ``k`` is ``(B H B)_kk`` with ``H = M − M F M``, of a sharer
    ``d_k² (1/e_k − F_kk/e_k²) + 2 (d_k/e_k) (B − F M B)_kk + (B H B)_kk``."""
    K = len(d)
    e = d + tau2
    M = np.diag(m / e)
    F = B @ np.linalg.inv(np.eye(K) + M @ B)
    BHB = B @ (M - M @ F @ M) @ B
    non = np.diag(BHB).copy()
    share = d ** 2 * (1 / e - np.diag(F) / e ** 2) + 2 * d / e * np.diag(B - F @ M @ B) + non
    return share, non


def _community_params(d):
    sizes = np.array(d["sizes"], int)
    K = len(sizes)
    s = np.broadcast_to(np.asarray(d["variance"], float), (K,)).copy()
    r = np.broadcast_to(np.asarray(d["within_corr"], float), (K,)).copy()
    C = np.full((K, K), float(d["cross_corr"]))
    B = np.sqrt(np.outer(s, s)) * C
    np.fill_diagonal(B, s * r)
    tau2 = np.broadcast_to(np.asarray(d.get("noise_var", 1.0), float), (K,)).copy()
    return sizes, B, s * (1 - r), tau2


def _community_objective(B, dg, tau2, sorted_values, m):
    """Equilibrium profit ``Σ_i (1 − v_i) I_i(a) + v_i I_i(a_{−i}, 0)`` (AMMO Thm 1) and surplus
    ``Σ_i (1 − v_i) I_i(a)`` with the ``m_k`` lowest-value users of each community sharing."""
    share, non = _community_leakage(B, dg, tau2, m.astype(float))
    profit = surplus = 0.0
    for k, v in enumerate(sorted_values):
        without = m.astype(float).copy()
        without[k] -= 1
        non_without = _community_leakage(B, dg, tau2, without)[1][k] if m[k] else 0.0
        vs, vn = v[:m[k]], v[m[k]:]
        profit += float(np.sum((1 - vs) * share[k] + vs * non_without) + len(vn) * non[k])
        surplus += float(np.sum(1 - vs) * share[k] + np.sum(1 - vn) * non[k])
    return profit, surplus


def test_community_oracle_against_dense_enumeration():
    """The K×K formulas above against fresh dense solves on small community markets."""
    rng = np.random.default_rng(7)
    for _ in range(5):
        K = int(rng.integers(1, 4))
        sizes = rng.integers(1, 4, K)
        d = {"sizes": sizes.tolist(), "variance": rng.uniform(0.5, 2, K).tolist(),
             "within_corr": rng.uniform(0.05, 0.5, K).tolist(), "cross_corr": 0.02,
             "noise_var": rng.uniform(0.5, 2, K).tolist()}
        sizes, B, dg, tau2 = _community_params(d)
        comm = np.repeat(np.arange(K), sizes)
        S = np.diag(dg[comm]) + B[np.ix_(comm, comm)]
        values = [np.sort(rng.uniform(0, 2, n)) for n in sizes]
        v = np.concatenate(values)
        for m in itertools.product(*[range(n + 1) for n in sizes]):
            m = np.array(m)
            A = [i for i in range(len(comm)) if (i - np.searchsorted(comm, comm[i])) < m[comm[i]]]
            want = naive.objective(S, tau2[comm], v, A, "equilibrium")
            got = _community_objective(B, dg, tau2, values, m)[0]
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_million_user_numbers(run):
    text, _ = run
    d = _model("ammo/community_n1e6_k5")
    sizes, B, dg, tau2 = _community_params(d)
    assert f"community n = {int(sizes.sum())}: status = optimal" in text and sizes.sum() == 10 ** 6
    counts = np.array(_value(text, r"community n = \d+: status = optimal, counts ="), int)
    assert counts.shape == sizes.shape and np.all((0 <= counts) & (counts <= sizes))
    # the users' values of privacy: data of the instance (generated from its seed), not a result
    values = dm_opt.load("ammo/community_n1e6_k5").values
    starts = np.concatenate([[0], np.cumsum(sizes)])
    sorted_values = [np.sort(values[starts[k]:starts[k + 1]]) for k in range(len(sizes))]
    profit, surplus = _community_objective(B, dg, tau2, sorted_values, counts)
    assert _value(text, r"community equilibrium profit =") == pytest.approx(profit, rel=REL)
    assert _value(text, r"community equilibrium profit = [-+0-9.eE]+, surplus =") == pytest.approx(surplus, rel=1e-8)
    assert _value(text, r", gap =") == 0.0
    # no neighbouring count vector (one sharer more or fewer in one community) is better
    for k in range(len(sizes)):
        for step in (-1, 1):
            m = counts.copy()
            m[k] += step
            if 0 <= m[k] <= sizes[k]:
                assert _community_objective(B, dg, tau2, sorted_values, m)[0] <= profit * (1 + REL)


# ---------------------------------------------------------------- GLP two-type example
def test_glp_two_type_numbers(run):
    """GLP slides, "A Simple Example to Illustrate": Ω = A = {1, 2}, γ_π = 0.

    ``P_q``: to give type 2 the surplus 1 the platform recommends a = 1 to mass y₂ of type 2 and
    y₁ ≤ q₁ of type 1; the merchant obeys iff 1·(y₁ + y₂) ≥ 2·y₂, i.e. y₂ ≤ y₁: V(q) = γ_u min(q₁, q₂).
    Efficiency: extra records of either type add no value and cost r̄ each, so q° = (t, t) with
    t = min(q̄₁, q̄₂) and W° = (γ_u + 1 − 2 r̄) t (platform value + consumer surplus − reservation).
    Union: payments V plus consumers' surplus plus r̄ for the records kept: W° + r̄.
    """
    text, _ = run
    d = _model("glp/two_type")
    assert d["types"] == [1.0, 2.0] and d["gamma_pi"] == 0.0 and "fees" not in d
    q = np.array(d["prior"], float)
    gu, rbar = float(d["gamma_u"]), float(d["reservation"])
    t = float(q.min())
    assert _value(text, r"glp platform value V\(prior\) =") == pytest.approx(gu * t, abs=1e-9)
    W = max(0.0, gu + 1 - 2 * rbar) * t
    assert W > 0 and rbar < gu          # trade is efficient and (slides' Claim) an efficient equilibrium exists
    assert _value(text, r"glp constrained efficiency W =") == pytest.approx(W, abs=1e-9)
    assert _value(text, r"glp constrained efficiency W = [-+0-9.eE]+ at q =") == pytest.approx([t, t], abs=1e-9)
    assert _value(text, r"glp equilibria: best welfare =") == pytest.approx(W, abs=1e-9)
    assert _value(text, r"glp data union value =") == pytest.approx(W + rbar, abs=1e-9)


# ---------------------------------------------------------------- RJ Example 3.5
def _rj_utilities():
    d = _model("rj/example_3_5")
    names = d["agents"]
    U = {}
    for i, s in enumerate(names):
        for key, val in d["utility"][s].items():
            partners = frozenset(names.index(p) for p in key.split(",")) if key else frozenset()
            U[i, partners] = float(val)
    assert float(d.get("cost", 0.0)) == 0.0
    return len(names), U


def test_rj_example_3_5_numbers(run):
    text, _ = run
    n, U = _rj_utilities()
    # welfare decomposes per buyer (RJ eq. 11); with zero costs each buyer takes its best partner set
    best = [max(U[i, S] for (j, S) in U if j == i) for i in range(n)]
    assert _value(text, r"rj welfare =") == pytest.approx(sum(best), abs=1e-12)
    share = np.array(re.search(r"rj share matrix \(row i sends to column j\): (\[\[.*\]\])", text).group(1)
                     .replace("[", "").replace("]", "").split(","), float).reshape(n, n)
    for i in range(n):                                   # the printed graph attains it, buyer by buyer
        assert U[i, frozenset(np.flatnonzero(share[:, i]).tolist())] == best[i]
    # RJ Def 3.2 by brute force: G is stable if no coalition can form a new graph (keeping some of its
    # members' existing edges, edges of outsiders untouched) that all members weakly prefer and one
    # strictly; agent i's preference is U_i(its neighbours) (Assumption 3.3)
    pairs = list(itertools.combinations(range(n), 2))
    graphs = [frozenset(e for b, e in enumerate(pairs) if g >> b & 1) for g in range(1 << len(pairs))]

    def u(i, G):
        return U[i, frozenset(j for e in G for j in e if i in e and j != i)]

    def blocked(G):
        for size in range(1, n + 1):
            for S in itertools.combinations(range(n), size):
                for H in graphs:
                    outside = {e for e in G if not (set(e) & set(S))}
                    touching = {e for e in H if set(e) & set(S)}
                    if outside != {e for e in H if not (set(e) & set(S))}:
                        continue               # outsiders' edges are untouched
                    if any(e not in G and not set(e) <= set(S) for e in touching):
                        continue               # new edges only among the coalition
                    gains = [u(i, H) - u(i, G) for i in S]
                    if min(gains) >= 0 and max(gains) > 0:
                        return True
        return False

    stable = [G for G in graphs if not blocked(G)]
    assert _value(text, r"rj stable outcomes =") == len(stable) == 0
    assert f"of {len(graphs)} graphs" in text
    assert _value(text, r"rj top agent property holds:") is False
