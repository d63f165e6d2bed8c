"""``P_q`` with general payoff matrices: the suffix-sum obedience rows for any ``π`` (Abel
summation over the jumps of ``π`` in ω) and the ranges of ``∂V(q)`` proven by HiGHS' ranging at the
optimal basis (dual-face LPs only for primal-degenerate directions).

Every result is checked against computations that share no code with the package: the scipy
oracles of test_lp (dense textbook LP, dual feasibility), the closed form for the slides' payoffs
given as matrices, and a certificate for each ranged coordinate: ``λ_B ∈ ∂V(q)`` and
``V(q + t e_ω) = V(q) + t λ_B(ω)`` at one ``t > 0`` inside HiGHS' range — with concavity this forces
``min_{∂V} λ(ω) = V'(q; e_ω) = λ_B(ω)`` (and symmetrically for ``max`` with ``−e_ω``).
"""

import numpy as np
import pytest

from dm_opt import InfoDesignMarket
from dm_opt.info_design import bbm, lp
from dm_opt.info_design.common import _suffix_obedience_nnz, _threshold_form
from tests.info_design.test_lp import oracle_in_D, oracle_V

TOL = 1e-8


def slides_as_matrices(n, rng, gu=1.0, gp=0.3):
    w = np.sort(rng.choice(np.arange(1, 3 * n + 1), n, replace=False)).astype(float)
    u = np.maximum(w[None, :] - w[:, None], 0.0)
    pi = w[:, None] * (w[None, :] >= w[:, None])
    prior = rng.dirichlet(np.ones(n))
    return (InfoDesignMarket.from_payoffs(u, pi, gu * u + gp * pi, prior, 0.5, types=w, fees=w),
            InfoDesignMarket(w, prior, 0.5, gu, gp))


def random_general(n, rng, integer=False):
    if integer:             # integer payoffs: ties and primal degeneracy
        u, pi, v = rng.integers(0, 3, (3, n, n)).astype(float)
    else:
        u, pi, v = rng.uniform(0, 2, (3, n, n))
    return InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(n)), 0.3)


def step_general(n, rng):
    """Random payoffs whose π rows are step functions of ω (few jumps): the suffix form pays."""
    m = n
    pi = np.zeros((m, n))
    for a in range(m):
        cuts = np.sort(rng.choice(np.arange(1, n), size=min(2, n - 1), replace=False))
        vals = rng.uniform(0, 2, len(cuts) + 1)
        pi[a] = np.repeat(vals, np.diff(np.r_[0, cuts, n]))
    u, v = rng.uniform(0, 2, (2, m, n))
    return InfoDesignMarket.from_payoffs(u, pi, v, rng.dirichlet(np.ones(n)), 0.3)


def _q(rng, market, zeros=True):
    q = market.prior * rng.uniform(0.2, 1.0, market.n)
    if zeros and rng.random() < 0.5:
        q[rng.integers(market.n)] = 0.0
    return q


@pytest.mark.parametrize("seed", range(6))
def test_suffix_form_is_exact_for_any_payoff_matrix(seed):
    """The Abel-summation obedience rows give the dense LP's V(q), duals and W(q) for arbitrary π."""
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(2, 6))
    market = [random_general, step_general][seed % 2](n, rng)
    for _ in range(3):
        q = _q(rng, market)
        V = oracle_V(market, q)[0]
        a = lp.PlatformLP(market, compact=True).solve(q)
        b = lp.PlatformHighs(market, compact=True).solve(q)
        c = lp.PlatformHighs(market, compact=False).solve(q)
        for s in (a, b, c):
            assert abs(s.value - V) <= TOL
            assert oracle_in_D(market, np.asarray(s.supergradient), 1e-7)
            assert abs(float(np.asarray(s.supergradient) @ q) - V) <= 1e-7
            assert lp._obedient(market, np.asarray(s.y), 1e-9)
    m1 = lp.constrained_efficiency_milp(market, compact=True)
    m2 = lp.constrained_efficiency_milp(market, compact=False)
    assert abs(m1.welfare - m2.welfare) <= 1e-7


def test_suffix_form_chosen_only_when_sparser():
    rng = np.random.default_rng(0)
    general, slides = slides_as_matrices(60, rng)
    assert _threshold_form(general) and _suffix_obedience_nnz(general) == 2 * 60 * 59
    assert not _threshold_form(random_general(20, rng))          # dense random π: no jumps to spare
    assert _threshold_form(slides)


def _certify(market, H, sol, q):
    """The ranging certificate of the module docstring, with the independent oracle."""
    n = market.n
    lam = np.asarray(sol.supergradient)
    V = oracle_V(market, q)[0]
    assert abs(sol.value - V) <= TOL
    assert oracle_in_D(market, lam, 1e-7) and abs(float(lam @ q) - V) <= 1e-7        # λ_B ∈ ∂V(q)
    st, rg = H.h.getRanging()
    up, dn = np.asarray(rg.row_bound_up.value_[:n]), np.asarray(rg.row_bound_dn.value_[:n])
    lo, hi = np.asarray(sol.lower), np.asarray(sol.upper)
    checked = 0
    for w in range(n):
        e = np.zeros(n)
        e[w] = 1.0
        if lo[w] == lam[w] and up[w] > q[w]:
            t = 0.5 * min(up[w] - q[w], 1e-2)
            assert abs(oracle_V(market, q + t * e)[0] - (V + t * lam[w])) <= 1e-9 * (1 + t) * 10, w
            checked += 1
        if hi[w] == lam[w] and q[w] > 0 and dn[w] < q[w]:
            t = 0.5 * min(q[w] - dn[w], 1e-2, q[w])
            assert abs(oracle_V(market, q - t * e)[0] - (V - t * lam[w])) <= 1e-9 * (1 + t) * 10, w
            checked += 1
        if q[w] == 0:
            assert hi[w] == np.inf
    return checked


@pytest.mark.parametrize("seed", range(8))
def test_ranged_supergradient_ranges_are_certified_by_the_oracle(seed):
    rng = np.random.default_rng(400 + seed)
    n = int(rng.integers(2, 7))
    market = [random_general, step_general, lambda n_, r: random_general(n_, r, integer=True)][seed % 3](n, rng)
    total = 0
    for _ in range(3):
        q = _q(rng, market)
        H = lp.PlatformHighs(market)
        s = H.solve(q, intervals=True)
        assert s.status == "optimal"
        total += _certify(market, H, s, q)
        # all 2n dual-face LPs optimise over a face relaxed by FACE_TOL, a superset of ∂V(q): their
        # ranges contain the exact ones
        ref = lp.PlatformHighs(market, ranging=False).solve(q, intervals=True)
        assert np.all(s.lower >= ref.lower - 1e-9) and np.all(s.upper <= ref.upper + 1e-9)
        assert np.array_equal(np.isfinite(s.upper), np.isfinite(ref.upper))
    assert total > 0


@pytest.mark.parametrize("seed", range(4))
def test_ranges_on_slides_payoffs_as_matrices_match_the_closed_form(seed):
    """The slides' payoffs written as general matrices (LP path, suffix rows, ranging) against the
    exact closed form's ∂V ranges (BBM), at random databases with ties and empty types."""
    rng = np.random.default_rng(500 + seed)
    n = int(rng.integers(3, 12))
    general, slides = slides_as_matrices(n, rng)
    H = lp.PlatformHighs(general)
    for k in range(4):
        q = _q(rng, general)
        if k == 3:
            q = np.round(q * 8) / 8          # exact ties between uniform prices: kinks of V
        s = H.solve(q, intervals=True)
        b = bbm.platform(slides, q)
        assert abs(s.value - b.value) <= TOL
        np.testing.assert_allclose(s.lower, b.lower, atol=1e-7)
        fin = np.isfinite(b.upper)
        assert np.array_equal(fin, np.isfinite(s.upper))
        np.testing.assert_allclose(s.upper[fin], b.upper[fin], atol=1e-7)


def test_ranging_avoids_the_face_lps_on_a_nondegenerate_instance():
    rng = np.random.default_rng(7)
    general, slides = slides_as_matrices(30, rng)
    q = general.prior * rng.uniform(0.2, 1.0, 30)
    H = lp.PlatformHighs(general)
    s = H.solve(q, intervals=True)
    assert H.face_lps < 2 * general.n and s.status == "optimal"
    b = bbm.platform(slides, q)
    np.testing.assert_allclose(s.lower, b.lower, atol=1e-7)


@pytest.mark.parametrize("general", [False, True])
def test_equilibria_refuse_cleanly_beyond_the_documented_limit(general):
    """Competitive equilibria are enumerated for |Ω| ≤ EQUILIBRIA_MAX_N (one LP per supply pattern ×
    face of V: 6^|Ω| for the slides' merchant); beyond it a LimitExceeded names the limit and the
    reason, before any LP is solved, through the API and dm_opt.solve."""
    import dm_opt
    from dm_opt.core.errors import LimitExceeded

    n = lp.EQUILIBRIA_MAX_N + 1
    rng = np.random.default_rng(n)
    market = (random_general(n, rng) if general
              else InfoDesignMarket(np.arange(1.0, n + 1), rng.dirichlet(np.ones(n)), 0.8, 1.0, 0.3))
    for call in (lambda: lp.equilibria(market), lambda: dm_opt.solve(market, "equilibrium")):
        with pytest.raises(LimitExceeded, match=rf"\|Ω\| ≤ {lp.EQUILIBRIA_MAX_N} \(got {n}\).*supply pattern"):
            call()


def test_live_model_time_limit_counts_from_the_current_run():
    """HiGHS compares ``time_limit`` with a run clock that accumulates over every run of one instance:
    a live model re-solved many times must get the clock plus the time left, or a late solve is
    stopped long before its deadline (seen: a 120 s limit stopping after 39 s on a live dual-face model)."""
    from dm_opt.core.limits import Deadline

    rng = np.random.default_rng(3)
    market = random_general(10, rng)
    H = lp.PlatformHighs(market, ranging=False)
    dl = Deadline(1000.0)
    for _ in range(4):
        s = H.solve(_q(rng, market, zeros=False), intervals=True, time_limit=dl)
        assert s.status == "optimal"
    h = H._face.model.h                  # 4 × 20 dual-face LPs on one instance
    ran = h.getRunTime()
    limit = h.getOptionValue("time_limit")
    limit = limit[1] if isinstance(limit, tuple) else limit
    assert ran > 0.05
    # set before the last LP: (clock then) + (time left then) ≥ (clock now) + (time left now) − that LP's time
    assert limit >= ran + dl.remaining() - 0.02, (limit, ran, dl.remaining())
