"""``P_q`` by row-and-column generation (:class:`GeneralPlatformHighs`) at larger sizes, and the
``platform`` problem route (:func:`dm_opt.info_design.lp.platform_report`) on that fast path.

Oracles share no code with the package: ``V(q)`` and the ranges of ``∂V(q)`` from dense
``scipy.optimize.linprog`` LPs (:func:`tests.info_design.test_platform_highs.dense_oracle`, built
from the textbook rows of :mod:`tests.support.glp_dense`), and ``W(q)`` from a lexicographic dense
LP (``max Σ u y`` over the optimal set ``Σ v y ≥ V(q) − ε``).  Instances: seeded random general
payoffs, continuous and integer (ties, primal degeneracy), rectangular, with empty types and a
uniform (degenerate) database.
"""

import numpy as np
import pytest
from scipy.optimize import linprog

from dm_opt import InfoDesignMarket
from dm_opt.core.limits import Deadline
from dm_opt.info_design import lp
from dm_opt.info_design.lp import highs_lp, social_welfare
from dm_opt.info_design.lp.highs_lp import GeneralPlatformHighs
from tests.info_design.test_platform_highs import dense_oracle
from tests.support.glp_dense import dense_rows

TOL = 1e-6


def make(seed, n):
    """Kind ``seed % 4``: continuous; integer payoffs in {0, 1, 2} (ties); rectangular |A| = n + 3;
    continuous with one empty type and otherwise equal masses (a degenerate database)."""
    rng = np.random.default_rng(1000 + seed)
    kind = seed % 4
    m = n + 3 if kind == 2 else n
    if kind == 1:
        u, pi, v = rng.integers(0, 3, (3, m, n)).astype(float)
    else:
        u, pi, v = rng.uniform(0, 2, (3, m, n))
    market = InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(n)), 0.3)
    if kind == 3:
        q = np.full(n, 1.0 / n)
        q[rng.integers(n)] = 0.0
    else:
        q = market.prior * rng.uniform(0.3, 1.0, n)
    return market, q


#: At |Ω| = 40 the dual face has steep edges: relaxing it by ε moved a range end by ~1.3·10⁵ ε (linearly
#: in ε down to 10⁻¹²), so the large oracle uses a 10⁻¹³ relaxation and tight linprog tolerances.
TIGHT = {"eps": 1e-13, "options": {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}}


def _check_against_oracle(market, q, s, **oracle):
    assert s.status == "optimal" and s.gap == 0.0
    V, lo, up = dense_oracle(market, q, **oracle)
    assert s.value == pytest.approx(V, abs=TOL)
    assert s.value == pytest.approx(float(np.sum(market.v * s.y)), abs=1e-12)
    assert np.allclose(s.y.sum(axis=0), q, atol=1e-9)
    assert np.all(lp.obedience_slacks(market, s.y) >= -1e-9)
    for mine, ref in ((s.lower, lo), (s.upper, up)):
        fin = np.isfinite(ref)
        assert np.array_equal(np.isfinite(mine), fin)
        assert np.allclose(mine[fin], ref[fin], atol=TOL)


@pytest.mark.parametrize("seed", [*range(4), *(pytest.param(s, marks=pytest.mark.slow) for s in range(4, 8))])
def test_generation_equals_dense_oracle_n15(seed):
    market, q = make(seed, 15)
    G = GeneralPlatformHighs(market)
    s = G.solve(q, intervals=True)
    assert G.rounds > 1                      # the generation had to grow the model
    _check_against_oracle(market, q, s)


@pytest.mark.parametrize("seed", [0, 1])
def test_deficit_pricing_equals_dense_oracle(seed, monkeypatch):
    """The optional deficit-scored pricing (``DEFICIT_WEIGHT``) only changes which columns enter first."""
    monkeypatch.setattr(highs_lp, "DEFICIT_WEIGHT", 1.0)
    monkeypatch.setattr(highs_lp, "COLS_PER_TYPE", 3)
    market, q = make(seed, 15)
    G = GeneralPlatformHighs(market)
    s = G.solve(q, intervals=True)
    assert G.rounds > 2
    _check_against_oracle(market, q, s)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_generation_equals_dense_oracle_n40(seed):
    market, q = make(seed, 40)
    G = GeneralPlatformHighs(market)
    s = G.solve(q, intervals=True)
    assert G.rows < market.m * (market.m - 1)
    _check_against_oracle(market, q, s, **TIGHT)


def welfare_oracle(market, q, V):
    """``W(q) = V(q) + max Σ u y`` over the optimal set of ``P_q`` (dense linprog, ``Σ v y ≥ V − ε``)."""
    E, G = dense_rows(market)
    u, v = np.asarray(market.u, float).ravel(), np.asarray(market.v, float).ravel()
    A_ub = np.vstack([-G, -v[None, :]]) if len(G) else -v[None, :]
    b_ub = np.r_[np.zeros(len(G)), -(V - 1e-10)]
    r = linprog(-u, A_ub=A_ub, b_ub=b_ub, A_eq=E, b_eq=q, bounds=(0, None), method="highs")
    assert r.status == 0
    return V - r.fun


@pytest.mark.parametrize("seed", range(8))
def test_platform_report_uses_the_generation_path(seed, monkeypatch):
    """``platform_report`` (the ``platform`` problem) takes the same model as ``solve_platform``: with
    the generation threshold lowered it solves ``P_q`` by :class:`GeneralPlatformHighs` and ``W(q)`` on
    the face's support (:class:`SupportFaceLP`), with the oracle's values and ranges."""
    monkeypatch.setattr(highs_lp, "GENERATION_MIN_NNZ", 10)
    used = []
    real_init, real_face = GeneralPlatformHighs.__init__, social_welfare.SupportFaceLP._solve

    def spy_init(self, *a, **k):
        used.append("generation")
        real_init(self, *a, **k)

    def spy_face(self, *a, **k):
        used.append("support face")
        return real_face(self, *a, **k)

    monkeypatch.setattr(GeneralPlatformHighs, "__init__", spy_init)
    monkeypatch.setattr(social_welfare.SupportFaceLP, "_solve", spy_face)
    market, q = make(seed, 6 + seed % 3)
    s, w = lp.platform_report(market, q)
    assert used == ["generation", "support face"]
    _check_against_oracle(market, q, s)
    assert w is not None and w.platform_value == pytest.approx(s.value, abs=1e-12)
    assert w.value == pytest.approx(welfare_oracle(market, q, s.value), abs=TOL)
    assert np.all(lp.obedience_slacks(market, w.y) >= -1e-9) and np.allclose(w.y.sum(axis=0), q, atol=1e-9)
    assert float(np.sum(market.v * w.y)) == pytest.approx(s.value, abs=1e-7)        # on P_q's optimal face


def test_platform_report_small_markets_keep_the_full_model():
    """Below the generation threshold the route is unchanged (full highspy model, :class:`FaceLP`)."""
    market, q = make(0, 5)
    assert not highs_lp.general_generation(market)
    s, w = lp.platform_report(market, q)
    V = dense_oracle(market, q)[0]
    assert s.value == pytest.approx(V, abs=TOL) and w.value == pytest.approx(welfare_oracle(market, q, V), abs=TOL)


def test_platform_report_on_the_generation_path_stops_honestly(monkeypatch):
    """A deadline already spent: ``P_q`` is not solved, no ``W(q)``, a proven bound ≥ the obedient value."""
    monkeypatch.setattr(highs_lp, "GENERATION_MIN_NNZ", 10)
    market, q = make(1, 8)
    dl = Deadline(1e-9)
    while not dl.expired():
        pass
    s, w = lp.platform_report(market, q, time_limit=dl)
    assert s.status == "time_limit" and w is None and s.message
    assert np.all(lp.obedience_slacks(market, s.y) >= -1e-9)
    V = dense_oracle(market, q)[0]
    assert s.value <= V + TOL and V <= s.bound + TOL
