"""MIP backends (``milp``, ``misocp-scip``) on badly scaled markets: right or refuse.

Every case is checked against an independent oracle written here: brute force over
all ``2^n`` profiles, each evaluated with fresh solves in mpmath at 50 digits straight
from AMMO's definitions — ``I_i(a) = Σ_{iA}(Σ_AA + diag τ²_A)⁻¹Σ_{Ai}`` and the
equilibrium's ``I_i(a_{−i}, 0)`` from a separate solve without user ``i`` — sharing no
formula with dm_opt (no own-signal identity, no standardisation, no rank-1 updates).

A backend must either refuse with :class:`~dm_opt.core.errors.InstanceError` — and only
outside its documented range (:data:`dm_opt.gaussian.backends.milp.RANGES`) — or return status
``optimal`` with an objective within ``1e-9 × scale`` of the oracle's optimum
(``scale = Σ (|c_i|+|d_i|+|e_i|) σ_i²``, :meth:`LeakageObjective.scale`).  Markets the
market constructor itself refuses (dm_opt's global numerical range) are not MIP cases.

The grid: noise ratios ``τ²/Σ_ii ∈ {1, 1e-3, 1e-6, 1e-9, 1e-12}``, ``Σ`` scaled by
``1e-100, 1, 1e100``, correlation condition numbers up to ``1e12``, per-user variances
spread over four decades, ``n ≤ 6``.  The default run takes a fixed sample; the full
grid is ``-m slow``.  ``python tests/gaussian/test_milp_numerics.py`` prints the
measured worst errors per backend, problem and noise ratio (docs/exact_solvers_milp.md,
"Accuracy").
"""

from __future__ import annotations

import itertools
import math
import time

import mpmath as mp
import numpy as np
import pytest

import dm_opt
from dm_opt.core.errors import InstanceError
from dm_opt.core.result import Termination
from dm_opt.gaussian.backends.milp import RANGES

PROBLEMS = ("first_best", "equilibrium", "decorrelated")
RATIOS = (1.0, 1e-3, 1e-6, 1e-9, 1e-12)
LARGE_RATIOS = (5.0, 50.0, 1e3)          # the slow grid also covers noise above the variance
SCALES = (1e-100, 1.0, 1e100)
CONDS = (None, 1e4, 1e8, 1e12)           # None: a Wishart-like random correlation
ACCURACY = 1e-9                          # × scale


def scip_available():
    try:
        import pyscipopt  # noqa: F401
    except ImportError:
        return False
    return True


BACKENDS = ["milp"] + (["misocp-scip"] if scip_available() else [])


# --------------------------------------------------------------------------- instances
def make_instance(seed: int, ratio: float, scale: float, cond: float | None, n: int | None = None):
    """``(Σ, τ², v)`` as float arrays: correlation with condition ≈ ``cond``, variances over four
    decades around ``scale`` (inside ``[1e-100, 1e100]``), noise ratios ``ratio × 10^U(0, 0.3)`` (between
    ``ratio`` and ``2 ratio``), values of privacy on ``[0, 2]``."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 7)) if n is None else n
    U, _ = np.linalg.qr(rng.standard_normal((n, n)))
    if cond is None:
        G = rng.standard_normal((n, n + 2))
        A = G @ G.T
    else:
        A = (U * np.logspace(0.0, -math.log10(cond), n)) @ U.T
    d = np.sqrt(np.diag(A))
    C = A / d[:, None] / d[None, :]
    C = 0.5 * (C + C.T)
    np.fill_diagonal(C, 1.0)
    # four decades, kept inside dm_opt's accepted variance range [1e-100, 1e100]
    s2 = 10.0 ** (rng.uniform(-2.0, 2.0, n) - 2.0 * np.sign(math.log10(scale))) * scale
    s = np.sqrt(s2)
    S = C * s[:, None] * s[None, :]
    S = 0.5 * (S + S.T)
    tau2 = ratio * 10.0 ** rng.uniform(0.0, 0.3, n) * np.diag(S)
    v = rng.uniform(0.0, 2.0, n)
    return S, tau2, v


# ------------------------------------------------------------------------------ oracle
def oracle_leakages(S, tau2, dps: int = 50) -> dict:
    """``{frozenset A: [I_i(A) for all i]}`` for every sharing set, in mpmath at ``dps`` digits."""
    n = S.shape[0]
    out = {}
    with mp.workdps(dps):
        Sm = mp.matrix([[mp.mpf(float(S[i, j])) for j in range(n)] for i in range(n)])
        tm = [mp.mpf(float(t)) for t in tau2]
        for bits in itertools.product((0, 1), repeat=n):
            A = [i for i in range(n) if bits[i]]
            if not A:
                out[frozenset()] = [mp.mpf(0)] * n
                continue
            K = mp.matrix(len(A), len(A))
            for p, i in enumerate(A):
                for q, j in enumerate(A):
                    K[p, q] = Sm[i, j] + (tm[i] if i == j else 0)
            Kinv = mp.inverse(K)
            leak = []
            for i in range(n):
                b = [Sm[i, j] for j in A]
                y = [mp.fsum(Kinv[p, q] * b[q] for q in range(len(A))) for p in range(len(A))]
                leak.append(mp.fsum(b[p] * y[p] for p in range(len(A))))
            out[frozenset(A)] = leak
    return out


def oracle_values(S, tau2, v, problem, leaks) -> dict:
    """``{profile tuple: objective}`` straight from AMMO's definitions (mpmath)."""
    n = S.shape[0]
    vals = {}
    with mp.workdps(50):
        vm = [mp.mpf(float(x)) for x in v]
        for bits in itertools.product((0, 1), repeat=n):
            A = frozenset(i for i in range(n) if bits[i])
            I = leaks[A]
            if problem == "first_best":            # Prop 1: Σ (1 − v_i) I_i(a)
                f = mp.fsum((1 - vm[i]) * I[i] for i in range(n))
            elif problem == "equilibrium":         # Thm 1: Σ (1 − v_i) I_i(a) + v_i I_i(a_{−i}, 0)
                f = mp.fsum((1 - vm[i]) * I[i] + vm[i] * leaks[A - {i}][i] for i in range(n))
            else:                                  # Thm 6: Σ_{i∈A} (1 − v_i) I_i(a)
                f = mp.fsum((1 - vm[i]) * I[i] for i in A)
            vals[bits] = f
    return vals


def objective_scale(S, v, problem) -> float:
    """``Σ (|c|+|d|+|e|) σ²`` for the named problems (c, d, e from their definitions)."""
    s2 = np.diag(S)
    w = {"first_best": np.abs(1 - v), "equilibrium": 1 + np.abs(v), "decorrelated": np.abs(1 - v)}[problem]
    return float(np.sum(w * s2))


class Case:
    """One instance with its oracle (leakages computed once for all problems)."""

    _cache: dict = {}

    def __init__(self, seed, ratio, scale, cond, n=None):
        self.key = (seed, ratio, scale, cond, n)
        self.S, self.tau2, self.v = make_instance(seed, ratio, scale, cond, n)
        self._leaks = None

    def market(self):
        return dm_opt.GaussianMarket(self.S, self.v, self.tau2)

    def best(self, problem):
        if self._leaks is None:
            self._leaks = Case._cache.get(self.key) or oracle_leakages(self.S, self.tau2)
            Case._cache[self.key] = self._leaks
        vals = oracle_values(self.S, self.tau2, self.v, problem, self._leaks)
        return max(vals.values()), vals


def in_range(market, problem, method) -> bool:
    """Whether the instance lies inside ``method``'s documented range (written from the docs'
    definition: noise ratios τ²/Σ_ii, stricter for users with v_i > 0 in the equilibrium, and
    the 2-norm condition number of the correlation matrix, stricter when some noise is small)."""
    lim = RANGES[method]
    S = market.cov
    r = market.noise_var / np.diag(S)
    own = market.values > 0 if problem == "equilibrium" else np.zeros(market.n, bool)
    if np.any(r < lim.min_noise_ratio) or np.any(r > lim.max_noise_ratio):
        return False
    if np.any(own & (r < lim.min_noise_ratio_own)):
        return False
    d = np.sqrt(np.diag(S))
    w = np.linalg.eigvalsh(S / d[:, None] / d[None, :])
    cap = lim.max_condition_small_noise if np.any(r < lim.small_noise_ratio) else lim.max_condition
    return w[0] > 0 and w[-1] / w[0] <= cap


def run_case(case: Case, problem: str, method: str):
    """``(outcome, error / scale, detail)``: outcome in {"market-refused", "refused", "ok"}; a
    wrong or non-optimal answer inside the range raises AssertionError with the details."""
    try:
        market = case.market()
    except InstanceError:
        return "market-refused", 0.0, ""
    inside = in_range(market, problem, method)
    try:
        r = dm_opt.solve(market, problem, method)
    except InstanceError as exc:
        assert not inside, f"{method} refused an instance inside its documented range: {exc}"
        return "refused", 0.0, str(exc)
    best, _ = case.best(problem)
    scale = objective_scale(case.S, case.v, problem)
    # scale 0: every weight is zero and so is every objective value
    err = float(abs(mp.mpf(r.objective) - best)) / (scale if scale > 0 else 1.0)
    assert r.status is Termination.OPTIMAL, (case.key, problem, method, inside, r.status, r.message)
    assert err <= ACCURACY, (case.key, problem, method, inside, r.profile, r.objective, float(best), err)
    assert r.bound >= r.objective and (r.bound - r.objective) <= r.tie_tol
    return "ok", err, ""


# ------------------------------------------------------------------------------- tests
def test_oracle_is_independent_and_right_on_a_hand_case():
    # Σ = [[1, .5], [.5, 1]], τ² = 1 (2×2 inverses by hand): I_1({2}) = .25/2, I_1({1}) = 1/2,
    # I_1({1,2}) = [1, .5] [[2, .5], [.5, 2]]⁻¹ [1, .5]ᵀ = [1, .5]·[1.75, .5]/3.75 = 8/15
    S = np.array([[1.0, 0.5], [0.5, 1.0]])
    leaks = oracle_leakages(S, np.ones(2))
    vals = oracle_values(S, np.ones(2), np.ones(2), "equilibrium", leaks)
    with mp.workdps(50):
        assert abs(leaks[frozenset({1})][0] - mp.mpf(1) / 8) < 1e-45
        assert abs(leaks[frozenset({0})][0] - mp.mpf(1) / 2) < 1e-45
        assert abs(leaks[frozenset({0, 1})][0] - mp.mpf(8) / 15) < 1e-45
        # equilibrium with v = 1: Σ_i I_i(a_{−i}, 0); at a = (1, 1) that is 2 · I_1({2}) = 1/4
        assert abs(vals[(1, 1)] - mp.mpf(1) / 4) < 1e-45


def hand_case(name, S, tau2, v):
    case = Case.__new__(Case)
    case.key, case.S, case.tau2, case.v, case._leaks = (name,), np.asarray(S, float), np.asarray(tau2, float), \
        np.asarray(v, float), None
    return case


@pytest.mark.parametrize("method", BACKENDS)
def test_issue_reproductions(method):
    """The three reproductions of the badly scaled cases: the right answer, or a refusal naming the field."""
    # 1. noise 1e-8 (ratio 1e-8): was SolverFailed("model status Empty") — a tangent coefficient
    #    above HiGHS' large_matrix_value made passModel fail, unchecked.  The equilibrium's own-signal
    #    term at this ratio is outside every MIP backend's range: refused, naming the field
    m = dm_opt.GaussianMarket([[1, .5], [.5, 1]], [1, 1], noise_var=1e-8)
    with pytest.raises(InstanceError, match=r"noise_var\[0\]: τ²/Σ_00 = 1e-08 is below .*method "
                                            f"'{method}'.*use method='bnb' or 'enumerate'"):
        dm_opt.solve(m, "equilibrium", method)
    case = hand_case("repro1", [[1, .5], [.5, 1]], [1e-8, 1e-8], [1, 1])
    for problem in PROBLEMS:                               # every problem: below every MIP range
        assert run_case(case, problem, method)[0] == "refused"
    case = hand_case("repro1b", [[1, .5], [.5, 1]], [1e-6, 1e-3], [1, 1])
    for problem in PROBLEMS:       # noise ratios 1e-6 / 1e-3: milp solves first best and decorrelated
        out = run_case(case, problem, method)[0]
        assert out == ("ok" if method == "milp" and problem != "equilibrium" else "refused"), (problem, out)
    # 2. Σ_00 = 1e6, noise 1: reported 125.01 for a true optimum 0.1250002 (profile (1, 1)).
    #    User 0's noise ratio is 1e-6: inside milp's range for first best and decorrelated, below
    #    its range for an own-signal term (equilibrium) and below misocp-scip's range
    case = hand_case("repro2", [[1e6, .5], [.5, 1]], [1, 1], [1, 1])
    best, _ = case.best("equilibrium")
    assert abs(best - mp.mpf("0.12500024999975")) < 1e-12
    for problem in PROBLEMS:
        out, err, _ = run_case(case, problem, method)
        assert out == ("ok" if method == "milp" and problem != "equilibrium" else "refused"), (problem, out)
    #    with user 0's noise at 1e-3 of her variance every backend answers the equilibrium exactly
    #    (or, where HiGHS round-off exceeds tie_tol, says so with status error: never a wrong optimum)
    case = hand_case("repro2b", [[1e6, .5], [.5, 1]], [1e3, 1], [1, 1])
    if method == "milp":
        # the attempts of posterior_form="auto" (HiGHS-setting retries) certify every problem here
        for problem in PROBLEMS:
            assert run_case(case, problem, method)[0] == "ok", problem
    r = dm_opt.solve(case.market(), "equilibrium", method)
    if r.status == "error":
        assert "numerical trouble" in r.message and r.objective <= float(case.best("equilibrium")[0]) + r.tie_tol
    else:
        assert run_case(case, "equilibrium", method)[0] == "ok"
    # 3. Σ scaled by 1e150 with noise 1 (ratio 1e-150): was a ZeroDivisionError; the market itself
    #    is refused now.  With the noise scaled too (ratio 1) the MIP answers exactly.
    with pytest.raises(InstanceError, match=r"cov\[0,0\]|noise_var"):
        dm_opt.GaussianMarket(np.array([[1, .5], [.5, 1]]) * 1e150, [1, 1], noise_var=1)
    case = hand_case("repro3", np.array([[1, .5], [.5, 1]]) * 1e100, [1e100, 1e100], [1, 1])
    for problem in PROBLEMS:
        assert run_case(case, problem, method)[0] == "ok"


def _fast_cases():
    """A fixed sample of the grid (each ratio, scale and condition at least once per problem)."""
    out = []
    k = 0
    for ratio in RATIOS:
        for scale, cond in ((1.0, None), (1e100, 1e4), (1e-100, 1e8), (1.0, 1e12)):
            out.append((100 + k, ratio, scale, cond))
            k += 1
    return out


@pytest.mark.parametrize("method", BACKENDS)
@pytest.mark.parametrize("problem", PROBLEMS)
def test_right_or_refused_sample(method, problem):
    outcomes = {}
    for seed, ratio, scale, cond in _fast_cases():
        out, _, _ = run_case(Case(seed, ratio, scale, cond, n=4), problem, method)
        outcomes[out] = outcomes.get(out, 0) + 1
    assert outcomes.get("ok", 0) >= 4, outcomes        # the sample is not all refusals


@pytest.mark.slow
@pytest.mark.parametrize("method", BACKENDS)
@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("ratio", RATIOS + LARGE_RATIOS)
def test_right_or_refused_grid(method, problem, ratio):
    for scale in SCALES:
        for cond in CONDS:
            for seed in range(3):
                run_case(Case(1000 * seed + 7, ratio, scale, cond), problem, method)


def test_refusal_message_names_field_and_ratio():
    m = dm_opt.GaussianMarket(np.eye(3), [0.5, 0.5, 0.5], noise_var=[1.0, 1e-13, 1.0])
    with pytest.raises(InstanceError) as exc:
        dm_opt.solve(m, "first_best", "milp")
    assert exc.value.field == "noise_var[1]"
    assert "τ²/Σ_11 = 1e-13 is below 1e-06" in str(exc.value) and "'milp'" in str(exc.value)
    # the own-signal term has its own (larger) threshold; a user with v_i = 0 has no such term
    m = dm_opt.GaussianMarket(np.eye(3), [0.5, 0.0, 0.5], noise_var=[1.0, 1e-5, 1e-5])
    with pytest.raises(InstanceError) as exc:
        dm_opt.solve(m, "equilibrium", "milp")
    assert exc.value.field == "noise_var[2]" and "own-signal" in str(exc.value)
    m = dm_opt.GaussianMarket(np.eye(3), [0.5, 0.0, 0.5], noise_var=[1.0, 1e-5, 1.0])
    assert dm_opt.solve(m, "equilibrium", "milp").is_optimal
    # too much noise
    m = dm_opt.GaussianMarket(np.eye(2), [0.5, 0.5], noise_var=[1.0, 1e3])
    with pytest.raises(InstanceError, match=r"noise_var\[1\]: τ²/Σ_11 = 1e\+03 is above 100"):
        dm_opt.solve(m, "first_best", "milp")
    # the condition number of the correlation matrix
    rng = np.random.default_rng(3)
    U, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    S = (U * np.array([1.0, 1e-3, 1e-6, 1e-13])) @ U.T
    S = 0.5 * (S + S.T)
    m = dm_opt.GaussianMarket(S, np.full(4, 0.5))
    with pytest.raises(InstanceError) as exc:
        dm_opt.solve(m, "first_best", "milp")
    assert exc.value.field == "cov" and "condition number" in str(exc.value)
    # condition 1e10 is inside milp's range with noise ratios ≥ 1e-3, outside with smaller noise
    S = (U * np.array([1.0, 1e-3, 1e-6, 1e-10])) @ U.T
    S = 0.5 * (S + S.T)
    assert dm_opt.solve(dm_opt.GaussianMarket(S, np.full(4, 0.5)), "first_best", "milp").is_optimal
    m = dm_opt.GaussianMarket(S, np.full(4, 0.5), noise_var=1e-4 * np.diag(S))
    with pytest.raises(InstanceError, match="when a noise ratio") as exc:
        dm_opt.solve(m, "first_best", "milp")
    assert exc.value.field == "cov"


def test_refusal_in_pyomo_and_export(tmp_path):
    m = dm_opt.GaussianMarket([[1, .5], [.5, 1]], [0.5, 0.5], noise_var=1e-13)
    with pytest.raises(InstanceError, match=r"noise_var\[0\]"):
        dm_opt.to_pyomo(m, "first_best")
    from dm_opt.gaussian.backends.milp import export_model

    with pytest.raises(InstanceError, match=r"noise_var\[0\]"):
        export_model(m, "first_best", str(tmp_path / "x.mps"))
    assert not (tmp_path / "x.mps").exists()


# --------------------------------------------------------- stable forms inside the backend
def test_tangent_coefficients_match_mpmath_at_tiny_noise():
    """Tangent of g(x) = x²/(ρ − x) at the point with leave-own-out variance s, from the stable
    closed forms, against mpmath at 50 digits (where x²/(ρ − x) in floats has no correct digit)."""
    from dm_opt.gaussian.backends.milp import tangent_coefficients

    for rho in (1.0, 1e-3, 1e-8, 1e-12):
        for s_ in (1.0, 0.3, 1e-4):
            t, dg, c0 = tangent_coefficients(np.array([s_]), rho)
            with mp.workdps(50):
                S_, R_ = mp.mpf(s_), mp.mpf(rho)
                tm = S_ * R_ / (S_ + R_)
                gm = tm * tm / (R_ - tm)
                dgm = tm * (2 * R_ - tm) / (R_ - tm) ** 2
                assert abs(mp.mpf(float(t[0])) - tm) <= 1e-15 * tm
                assert abs(mp.mpf(float(dg[0])) - dgm) <= 1e-14 * dgm
                # the tangent's intercept g(t) − g'(t) t = −s²/ρ
                assert abs(-mp.mpf(float(c0[0])) - (gm - dgm * tm)) <= 1e-14 * abs(gm - dgm * tm)


def test_backend_values_profiles_like_the_oracle():
    """The backend's own exact values (model units × scale) match the mpmath oracle at every
    profile, also where x²/(τ² − x) would cancel (noise ratio 1e-12, Σ scaled by 1e100)."""
    from dm_opt.gaussian.backends.milp import model_value, standardise

    for ratio, scale in ((1e-12, 1e100), (1e-6, 1e-100), (1.0, 1.0), (1e6, 1.0)):
        case = Case(5, ratio, scale, 1e4, n=4)
        m = case.market()
        for problem in PROBLEMS:
            std = standardise(m, m.objective(problem))
            _, vals = case.best(problem)
            sc = objective_scale(case.S, case.v, problem)
            for bits, v in vals.items():
                got = model_value(std, np.array(bits, dtype=np.int8)) * std.scale
                assert float(abs(mp.mpf(got) - v)) <= 1e-13 * sc, (ratio, scale, problem, bits, got, float(v))


# ------------------------------------------------------------------ honest status
@pytest.mark.parametrize("method", BACKENDS)
def test_status_is_not_optimal_when_the_bound_exceeds_the_exact_value(method):
    """If the market's exact value at the returned profile is more than tol below the solver's
    proven bound, the status is not optimal and the message says why (simulated by a market
    whose evaluate reports 1e-6 × scale less than the truth)."""
    case = Case(3, 1.0, 1.0, None, n=4)
    m = case.market()
    true_eval = m.evaluate
    for problem in PROBLEMS:
        sc = m.objective(problem).scale(m.sigma2)
        m.evaluate = lambda obj, a, _f=true_eval, _d=1e-6 * sc: _f(obj, a) - _d
        r = dm_opt.solve(m, problem, method)
        assert r.status is Termination.ERROR, (problem, r.status)
        assert "exceeds the exact objective" in r.message
        assert r.bound >= r.objective
    m.evaluate = true_eval
    assert all(dm_opt.solve(m, p, method).is_optimal for p in PROBLEMS)


def test_highs_gap_settings_match_the_tie_tolerance(monkeypatch):
    """HiGHS must not stop at a relative gap looser than tol: mip_rel_gap = 0 and
    mip_abs_gap ≤ tol in model units (tol / S)."""
    import dm_opt.core.highs as H

    seen = {}
    real = H.set_options

    def spy(h, **opts):
        seen.update(opts)
        return real(h, **opts)

    monkeypatch.setattr(H, "set_options", spy)
    case = Case(4, 1.0, 1e50, None, n=5)
    m = case.market()
    r = dm_opt.solve(m, "equilibrium", "milp")
    S = m.objective("equilibrium").scale(m.sigma2)
    assert seen["mip_rel_gap"] == 0.0
    assert 0.0 < seen["mip_abs_gap"] <= r.tie_tol / S * (1 + 1e-12)
    assert r.is_optimal and r.bound - r.objective <= r.tie_tol


def test_outer_approximation_bound_is_valid_when_stopped_early():
    """Stopped after one round with a one-point tangent table, the OA loop's bound is still an
    upper bound on the oracle's optimum (each round is a relaxation)."""
    for seed in range(4):
        case = Case(20 + seed, 1e-2, 1.0, None, n=5)
        m = case.market()
        best, _ = case.best("equilibrium")
        r = dm_opt.solve(m, "equilibrium", "milp", n_tangents=1, max_rounds=1)
        assert r.bound >= float(best) - r.tie_tol, (seed, r.bound, float(best))
        assert r.objective <= float(best) + r.tie_tol
        if not r.is_optimal:
            assert r.status is Termination.ITERATION_LIMIT and r.gap > 0


# ---------------------------------------------------------------------- time limits
@pytest.mark.parametrize("method", BACKENDS)
def test_time_limit_is_honoured(method):
    """A time limit is honoured within 10 % + 0.5 s (HiGHS is also stopped by a deadline
    callback inside its simplex iterations; SCIP by limits/time)."""
    from dm_opt.core import generators as G

    dm_opt.solve(dm_opt.GaussianMarket(G.wishart(4, 1), G.uniform(4, 1)), "first_best", method)   # imports
    m = dm_opt.GaussianMarket(G.wishart(30, seed=5), G.uniform(30, seed=6))
    for problem, limit in (("first_best", 1.0), ("equilibrium", 1.5)):
        t0 = time.perf_counter()
        r = dm_opt.solve(m, problem, method, time_limit=limit)
        elapsed = time.perf_counter() - t0
        assert r.status is Termination.TIME_LIMIT, (problem, r.status)
        assert elapsed <= 1.1 * limit + 0.5, (problem, elapsed)
        assert r.has_solution and r.bound >= r.objective


# ----------------------------------------------------------------- sweep (measurement)
def sweep(methods=BACKENDS, seeds=range(3), seed0=7):
    """Worst error / scale and counts per (method, problem, ratio) over the full grid."""
    rows = {}
    for method in methods:
        for problem in PROBLEMS:
            for ratio in RATIOS + LARGE_RATIOS:
                st = {"ok": 0, "refused": 0, "market-refused": 0, "fail": 0, "worst": 0.0, "seconds": 0.0}
                for scale in SCALES:
                    for cond in CONDS:
                        for seed in seeds:
                            t0 = time.perf_counter()
                            try:
                                out, err, _ = run_case(Case(1000 * seed + seed0, ratio, scale, cond), problem, method)
                            except AssertionError as exc:
                                out, err = "fail", 0.0
                                print("FAIL", method, problem, ratio, scale, cond, seed, str(exc)[:300])
                            st["seconds"] += time.perf_counter() - t0
                            st[out] += 1
                            st["worst"] = max(st["worst"], err)
                rows[(method, problem, ratio)] = st
                print(f"{method:10s} {problem:13s} ratio {ratio:7.0e}: ok {st['ok']:3d}  refused {st['refused']:3d}  "
                      f"market-refused {st['market-refused']:3d}  FAILED {st['fail']:3d}  "
                      f"worst |err|/scale {st['worst']:.2e}  ({st['seconds']:.1f} s)", flush=True)
    return rows


if __name__ == "__main__":  # pragma: no cover - measurement entry point
    import argparse

    ap = argparse.ArgumentParser(description="measure the MIP backends on the grid against the mpmath oracle")
    ap.add_argument("--methods", default=",".join(BACKENDS))
    ap.add_argument("--seeds", type=int, default=3, help="instances per grid cell and Σ scale")
    ap.add_argument("--seed0", type=int, default=7, help="first instance seed (seeds seed0 + 1000 k)")
    args = ap.parse_args()
    sweep(args.methods.split(","), range(args.seeds), args.seed0)
