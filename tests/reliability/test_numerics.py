"""Numerics: every exact backend against the high-precision oracle (tests/support/oracle.py) in hard regimes.

Instances: 500 seeded Gaussian markets, n = 2..8, five covariance families (Wishart, equicorrelated,
block, tridiagonal, low-rank + diagonal), noise ratios τ²/Σ_ii ∈ {1, 1e-3, 1e-6, 1e-9, 1e-12}, scale
factors 1e±100 (Σ and τ² together, and Σ alone; Σ first normalised by a power of two so that its
largest / smallest variance lands within a factor 2 of 1e100 / 1e-100, the ends of the accepted
range), correlation condition numbers up to 1e12, exact ties
(duplicated users), values straddling 1 (some exactly 1 or 0).  Every instance is solved for all three
problems by every available exact backend (``dm_opt.core.registry.available_methods()``; ``community``
gets its own CommunityMarkets), plus the oracle markets of ``dm_opt.gaussian.leakage`` and Dask enumeration.

A backend either refuses the market up front with ``InstanceError`` (at construction or in ``solve``;
counted per backend and regime, and printed to the terminal after the module, with the reasons
for refusals at construction) or its answer must be exact: status optimal, ``|objective − optimum| ≤ 1e-9·scale`` with
``scale = Σ_i (|c_i|+|d_i|+|e_i|) σ_i²`` of the problem's weights (computed here), the returned
profile an oracle optimum within the same tolerance, ``bound ≥ objective`` and ``bound ≥ optimum −
tol``, and — with ``all_optima=True`` — the optima set equal to the oracle's away from the tolerance's
boundary (profiles clearly inside ``0.5·tol`` must be listed, those outside ``2·tol`` must not).

These tests are expected to fail on the numerics of the day in the hardest regimes; that is their
purpose.  Default run: a representative subset (every third instance for the cheap backends, fewer
for the MILPs); ``-m slow`` runs the full 500 for every backend.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os

import numpy as np
import pytest

import dm_opt
from dm_opt.core.errors import InstanceError
from dm_opt.core.registry import available_methods, get_backend
from tests.support import oracle as orc

N_INSTANCES = int(os.environ.get("DM_OPT_NUMERICS_INSTANCES", "500"))
PROBLEMS = orc.PROBLEMS
RTOL = 1e-9                      # the documented accuracy / tie tolerance, relative to the objective's scale

FAMILIES = ("wishart", "equicorrelated", "block", "tridiagonal", "lowrank")
NOISE_RATIOS = (1.0, 1e-3, 1e-6, 1e-9, 1e-12)
SCALINGS = ("none", "both*1e+100", "both*1e-100", "cov*1e+100", "cov*1e-100")
CONDITIONS = (None, 1e6, 1e12, None)
#: backends solved by ``dm_opt.solve`` on a GaussianMarket (``community`` takes CommunityMarkets only)
DENSE_BACKENDS = tuple(m for m in available_methods() if m != "community")
#: default-run subset per backend: instance idx with idx % k == 0 (the rest under -m slow)
DEFAULT_EVERY = {"enumerate": 3, "bnb": 3, "milp": 9, "misocp-scip": 25}


def in_default_run(method, idx) -> bool:
    """Whether instance ``idx`` runs for ``method`` without ``-m slow``.

    ``idx = 25 q + r``: ``r`` fixes (family, noise ratio), ``q`` (scaling, conditioning).  Every
    k-th instance for k prime to 25; for k = 25 one instance per ``q`` with ``r = 7q mod 25``, so
    the subset still runs through all families and noise ratios.
    """
    k = DEFAULT_EVERY.get(method, 9)
    if k == 25:
        return idx % 25 == (7 * (idx // 25)) % 25
    assert 25 % k, "k must be prime to 25 (or 25)"
    return idx % k == 0
#: MILP backends get a time limit (an n ≤ 8 MILP that needs more is a failure, not a hang)
TIME_LIMIT = {"milp": 60.0, "misocp-scip": 60.0}

# (backend, regime) -> Counter(ok / refused / failed) of problem solves; printed after the module
OUTCOMES: dict = collections.defaultdict(collections.Counter)
# (market kind, regime, refused field) -> set of instance ids refused at construction
REFUSED_AT_CONSTRUCTION: dict = collections.defaultdict(set)


def _refused(key, kind, ident, exc):
    """Count a market refused at construction (InstanceError) for the 3 problems of backend/regime ``key``."""
    OUTCOMES[key]["refused"] += 3
    field = getattr(exc, "field", "?").split("[")[0]
    REFUSED_AT_CONSTRUCTION[(kind, key[1], field)].add(ident)


# ------------------------------------------------------------------ instances
def _correlation(family, n, cond, rng):
    """A correlation-like SPD matrix of ``family`` (condition number ≈ ``cond`` when given)."""
    if family == "wishart":
        if cond is None:
            G = rng.standard_normal((n, n + 2))
            S = G @ G.T
        else:
            Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
            lam = rng.permutation(np.logspace(0.0, -np.log10(cond), n))
            S = (Q * lam) @ Q.T
    elif family == "equicorrelated":
        if cond is None:
            rho = rng.uniform(-0.9 / max(n - 1, 1), 0.95)
        else:                       # eigenvalues 1 + (n−1)ρ and 1 − ρ
            rho = (cond - 1.0) / (cond + n - 1.0)
        S = np.full((n, n), rho)
        np.fill_diagonal(S, 1.0)
    elif family == "block":
        k = max(1, n // 2)
        within = rng.uniform(0.2, 0.8) if cond is None else 1.0 - n / cond
        across = rng.uniform(0.0, 0.5) * within
        lab = np.array([0] * k + [1] * (n - k))
        S = np.where(lab[:, None] == lab[None, :], within, across)
        np.fill_diagonal(S, 1.0)
    elif family == "tridiagonal":   # eigenvalues 1 + 2ρ cos(jπ/(n+1))
        c = np.cos(np.pi / (n + 1))
        rho = rng.uniform(-0.45, 0.45) if cond is None else (1.0 - 2.0 / cond) / (2.0 * c)
        rho *= rng.choice([-1.0, 1.0]) if cond is not None else 1.0
        S = np.eye(n) + rho * (np.eye(n, k=1) + np.eye(n, k=-1))
    elif family == "lowrank":
        F = rng.standard_normal((n, int(rng.integers(1, 3))))
        base = float(np.sum(F * F)) / n
        delta = rng.uniform(0.2, 1.0, n) * base if cond is None else rng.uniform(1.0, 2.0, n) * base * n / cond
        S = F @ F.T + np.diag(delta)
    else:
        raise ValueError(family)
    return 0.5 * (S + S.T)


def _duplicate(S, i, rng):
    """Append an exact duplicate of user ``i`` (X_i = Y + U_i, X_j = Y + U_j, U iid): a real tie."""
    m = S.shape[0]
    inv_ii = float(np.linalg.inv(S)[i, i])
    for frac in (0.25, 0.05, 0.01):
        u = frac / inv_ii                     # keeps Σ − u e_i e_iᵀ positive definite
        T = np.empty((m + 1, m + 1))
        T[:m, :m] = S
        T[m, :m] = S[i, :]
        T[:m, m] = S[:, i]
        T[m, i] = T[i, m] = S[i, i] - u
        T[m, m] = S[i, i]
        try:
            np.linalg.cholesky(T)
            return T
        except np.linalg.LinAlgError:
            continue
    return None


def _scale(S, variances, tau2, scaling):
    """Scale ``S`` (and ``tau2`` for "both*…") by 1e±100, after an exact power-of-two normalisation that
    puts the largest variance in (0.5e100, 1e100] (resp. the smallest in [1e-100, 2e-100)): the extreme
    end of the variance range dm_opt accepts, [1e-100, 1e100], so the regime is solved, not refused
    for its units."""
    what, factor = scaling.split("*")
    f = float(factor)
    p2 = 2.0 ** (np.ceil(np.log2(np.max(variances))) if f > 1 else np.floor(np.log2(np.min(variances))))
    S = S / p2 * f
    if what == "both":
        tau2 = tau2 / p2 * f
    return S, tau2


@functools.lru_cache(maxsize=None)
def instance(idx):
    """Instance ``idx``: (label, regime, cov, noise_var, values).  Deterministic in ``idx``."""
    rng = np.random.default_rng([14, idx])
    family = FAMILIES[idx % 5]
    ratio = NOISE_RATIOS[(idx // 5) % 5]
    scaling = SCALINGS[(idx // 25) % 5]
    cond = CONDITIONS[(idx // 125) % 4]
    n = int(rng.integers(2, 9))
    n_dup = int(rng.integers(1, 3)) if idx % 7 in (0, 3) else 0
    n_dup = min(n_dup, n - 1)
    S = _correlation(family, n - n_dup, cond, rng)
    sig = np.sqrt(rng.uniform(0.3, 3.0, n - n_dup))
    S = S * sig[:, None] * sig[None, :]
    kind = ("straddle", "uniform", "ones")[int(rng.integers(0, 3))]
    if kind == "straddle":
        v = np.where(rng.random(n - n_dup) < 0.5, rng.uniform(0.3, 0.95, n - n_dup), rng.uniform(1.05, 3.0, n - n_dup))
    else:
        v = rng.uniform(0.0, 2.5, n - n_dup)
    if kind == "ones":                        # values exactly 1 (first best indifferent) and exactly 0
        v[rng.random(n - n_dup) < 0.4] = 1.0
        v[rng.random(n - n_dup) < 0.15] = 0.0
    jitter = rng.uniform(0.5, 2.0, n - n_dup) if rng.random() < 0.5 else np.ones(n - n_dup)
    tau2 = ratio * jitter * np.diag(S)
    dups = 0
    for _ in range(n_dup):
        i = int(rng.integers(0, S.shape[0]))
        T = _duplicate(S, i, rng)
        if T is None:
            continue
        S, v, tau2 = T, np.append(v, v[i]), np.append(tau2, tau2[i])
        dups += 1
    if scaling != "none":
        S, tau2 = _scale(S, np.diag(S), tau2, scaling)
    S = 0.5 * S + 0.5 * S.T
    regime = f"noise={ratio:g} scale={scaling} cond={'natural' if cond is None else f'{cond:g}'}"
    label = f"{idx:03d}-{family}-n{S.shape[0]}-r{ratio:g}-{scaling}-c{cond or 0:g}{'-dup' if dups else ''}"
    return label, regime, S, tau2, v


@functools.lru_cache(maxsize=16)
def oracle_for(idx):
    _, _, S, tau2, v = instance(idx)
    return orc.Oracle.gaussian(S, tau2, v)


# ------------------------------------------------------------------ checks
def check_result(o, problem, r, *, all_optima: bool) -> list:
    """Violations of exactness of ``r`` against the oracle ``o`` (empty list: correct)."""
    scale = o.scale(problem)
    tol = RTOL * scale
    best = o.best(problem)
    bad = []
    if str(r.status) != "optimal":
        return [f"{problem}: status {r.status} (objective {r.objective!r}, bound {r.bound!r}): {r.message}"]
    if not np.isfinite(r.objective) or r.profile.size != o.n:
        return [f"{problem}: optimal without a finite objective/profile: {r.objective!r}, {r.profile!r}"]
    err = abs(float(r.objective - best))          # mpf arithmetic: exact enough
    if not err <= tol:
        bad.append(f"{problem}: |objective − optimum| = {err / scale if scale else err:.3g}·scale "
                   f"(objective {r.objective!r}, optimum {float(best)!r})")
    gap = float(o.gap(problem, tuple(int(x) for x in r.profile)))
    if not gap <= tol:
        bad.append(f"{problem}: returned profile {r.profile.tolist()} is {gap / scale if scale else gap:.3g}·scale "
                   f"below the optimum")
    if not r.bound >= r.objective:
        bad.append(f"{problem}: bound {r.bound!r} < objective {r.objective!r}")
    if not float(r.bound - best) >= -tol:
        bad.append(f"{problem}: bound {r.bound!r} below the true optimum {float(best)!r} by more than tol")
    if all_optima:
        if r.optima is None:
            bad.append(f"{problem}: all_optima requested, optima is None")
        else:
            got = {tuple(int(x) for x in a) for a in r.optima}
            vals = o.values(problem)
            inside = {o.profiles[m] for m, x in enumerate(vals) if x >= best - tol / 2}
            outside = {o.profiles[m] for m, x in enumerate(vals) if x < best - 2 * tol}
            missing, extra = inside - got, got & outside
            if missing:
                bad.append(f"{problem}: optima miss {len(missing)} oracle optima, e.g. {sorted(missing)[:3]}")
            if extra:
                bad.append(f"{problem}: optima list {len(extra)} profiles > 2·tol below the optimum, "
                           f"e.g. {sorted(extra)[:3]}")
    return bad


def solve_and_check(key, o, problem, solve, *, all_optima: bool) -> list:
    """Run ``solve(problem)``; count the outcome under ``key``; return the violations (refusals return [])."""
    try:
        r = solve(problem)
    except InstanceError as exc:                       # refused up front: allowed
        OUTCOMES[key]["refused"] += 1
        print(f"{key[0]} {problem} [{key[1]}]: refused: {exc}")
        return []
    except AssertionError as exc:                      # the SolveResult certificate check (tests/conftest.py)
        OUTCOMES[key]["failed"] += 1
        return [f"{problem}: {str(exc).splitlines()[0]}"]
    except Exception as exc:                           # any other error is a failure, not a refusal
        OUTCOMES[key]["failed"] += 1
        return [f"{problem}: raised {type(exc).__name__}: {exc}"]
    bad = check_result(o, problem, r, all_optima=all_optima)
    OUTCOMES[key]["failed" if bad else "ok"] += 1
    return bad


def _solve(market, problem, method, **kw):
    return dm_opt.solve(market, problem, method=method, time_limit=TIME_LIMIT.get(method), **kw)


def run_dense(method, idx):
    label, regime, S, tau2, v = instance(idx)
    try:
        get_backend(method)
    except dm_opt.DmOptError as exc:
        pytest.skip(f"{method} not available: {exc}")
    key = (method, regime)
    try:
        market = dm_opt.GaussianMarket(S, v, tau2)
    except InstanceError as exc:
        _refused(key, "GaussianMarket", idx, exc)
        return f"refused at construction: {exc}"
    o = oracle_for(idx)
    every = method == "enumerate"
    bad = []
    for problem in PROBLEMS:
        bad += solve_and_check(key, o, problem, lambda p: _solve(market, p, method, all_optima=every),
                               all_optima=every)
    assert not bad, f"{method} on {label} [{regime}]:\n  " + "\n  ".join(bad)
    return None


def _dense_params():
    out = []
    for idx in range(N_INSTANCES):
        label = instance(idx)[0]
        for method in DENSE_BACKENDS:
            marks = () if in_default_run(method, idx) else (pytest.mark.slow,)
            out.append(pytest.param(method, idx, id=f"{method}-{label}", marks=marks))
    return out


@pytest.mark.parametrize("method,idx", _dense_params())
def test_backend_matches_oracle(method, idx):
    run_dense(method, idx)


# ------------------------------------------------------------ the oracle itself
def test_oracle_closed_forms():
    """One user: I = σ⁴/(σ²+τ²).  Two users (Example 1, ρ = 1/2): own gain (2−ρ²)²/(2(4−ρ²)), I_1(both) = 2/(4−ρ²)."""
    o = orc.Oracle.gaussian(np.array([[3.0]]), [0.5], [0.25])
    ctx = o.ctx
    assert abs(o.leakage((1,))[0] - ctx.mpf(9) / ctx.mpf("3.5")) < ctx.mpf(10) ** -45
    rho = ctx.mpf(0.5)
    o = orc.Oracle.gaussian(np.array([[1.0, 0.5], [0.5, 1.0]]), [1.0, 1.0], [1.0, 1.0])
    assert abs(o.leakage((1, 1))[0] - 2 / (4 - rho ** 2)) < ctx.mpf(10) ** -45
    assert abs(o.leakage_without((1, 1))[0] - rho ** 2 / 2) < ctx.mpf(10) ** -45
    assert abs(o.own_gain((1, 1))[0] - (2 - rho ** 2) ** 2 / (2 * (4 - rho ** 2))) < ctx.mpf(10) ** -45
    assert o.own_gain((0, 1))[0] == 0
    # equilibrium objective, v = (1, 1): Σ I(a_{−i}, 0) = 2·ρ²/2 at (1, 1)
    assert abs(o.objective("equilibrium", (1, 1)) - rho ** 2) < ctx.mpf(10) ** -45


def test_oracle_matches_naive_float_oracle_on_benign_instances():
    from tests.support import naive

    rng = np.random.default_rng(3)
    for n in (2, 4, 6):
        G = rng.standard_normal((n, n))
        S = G @ G.T / n + 0.4 * np.eye(n)
        tau2, v = rng.uniform(0.3, 2.0, n), rng.uniform(0.0, 2.0, n)
        o = orc.Oracle.gaussian(S, tau2, v)
        for a in naive.subsets(n):
            for p in PROBLEMS:
                ref = naive.objective(S, tau2, v, np.flatnonzero(a), p)
                assert abs(float(o.objective(p, tuple(a))) - ref) <= 1e-12 * o.scale(p)


HARDEST = ("noise=1e-12 scale=cov*1e+100 cond=1e+12", "noise=1e-12 scale=none cond=1e+12",
           "noise=1e-12 scale=both*1e-100 cond=1e+12", "noise=1e-09 scale=both*1e+100 cond=1e+06",
           "noise=1 scale=cov*1e-100 cond=natural", "noise=1e-12 scale=cov*1e+100 cond=natural")


@pytest.mark.parametrize("idx", [next(i for i in range(N_INSTANCES)
                                      if instance(i)[1] == r and instance(i)[2].shape[0] >= 5)
                                 for r in HARDEST])
def test_oracle_precision_is_sufficient(idx):
    """The hardest regimes at the oracle's working precision and at +300 bits agree to 1e-30·scale."""
    _, _, S, tau2, v = instance(idx)
    o1 = oracle_for(idx)
    o2 = orc.Oracle.gaussian(S, tau2, v, prec=o1.ctx.prec + 300)
    for p in PROBLEMS:
        diff = max(abs(o2.ctx.mpf(x) - y) for x, y in zip(o1.values(p), o2.values(p), strict=True))
        assert diff <= 1e-30 * o1.scale(p), (p, float(diff), o1.scale(p))


def test_instances_cover_the_regimes():
    seen = collections.Counter()
    for idx in range(N_INSTANCES):
        label, regime, S, tau2, v = instance(idx)
        seen[regime] += 1
        assert 2 <= S.shape[0] <= 8
        np.linalg.cholesky(S)
    if N_INSTANCES >= 500:
        assert len(seen) == len(NOISE_RATIOS) * len(SCALINGS) * 3
        assert sum("-dup" in instance(i)[0] for i in range(N_INSTANCES)) >= 100
        assert sum(1 for i in range(N_INSTANCES) if in_default_run("enumerate", i)) >= 150


# --------------------------------------------------------- community markets
#: community markets also get 1e±50 (CommunityMarket may accept a narrower variance range than 1e±100)
COMMUNITY_SCALINGS = SCALINGS + ("both*1e+50", "both*1e-50")


def community_instance(idx):
    rng = np.random.default_rng([141, idx])
    ratio = NOISE_RATIOS[idx % 5]
    scaling = COMMUNITY_SCALINGS[(idx // 5) % len(COMMUNITY_SCALINGS)]
    ill = (idx // 25) % 2 == 1
    for _attempt in range(10000):
        K = int(rng.integers(1, 4))
        sizes = rng.integers(1, 4, K)
        if sizes.sum() > 8 or sizes.sum() < 2:
            continue
        var = rng.uniform(0.5, 2.0, K)
        within = 1.0 - rng.uniform(1e-9, 1e-7, K) if ill else rng.uniform(-0.2, 0.8, K)
        C = np.eye(K)
        for k in range(K):
            for m in range(k + 1, K):
                C[k, m] = C[m, k] = rng.uniform(-0.2, 0.4)
        v = rng.choice([0.0, 0.3, 0.8, 1.0, 1.3, 2.0, 4.0], int(sizes.sum()))
        tau2 = ratio * var
        # a valid (positive definite) community structure?  Σ ≻ 0 ⇔ δ_k = s_k(1 − r_k) > 0 where n_k ≥ 2
        # and M = diag(δ) + N^½ B N^½ ≻ 0 (B_kk = s_k r_k, B_kl = √(s_k s_l) C_kl) — checked here, not by
        # the constructor, which may also refuse numerically hard but valid markets
        delta = var * (1.0 - within)
        Bm = C * np.sqrt(np.outer(var, var))
        np.fill_diagonal(Bm, var * within)
        sn = np.sqrt(sizes.astype(float))
        if np.any((sizes >= 2) & (delta <= 0)) or np.linalg.eigvalsh(np.diag(delta) + Bm * np.outer(sn, sn))[0] <= 0:
            continue
        break
    else:
        raise AssertionError("no valid community structure drawn")
    regime = f"noise={ratio:g} scale={scaling} ill={ill}"
    if scaling != "none":
        var, tau2 = _scale(var, var, tau2, scaling)
    try:
        return dm_opt.CommunityMarket(sizes, var, within, C, v, tau2), regime, None
    except InstanceError as exc:
        return None, regime, exc


@pytest.mark.parametrize("idx", [pytest.param(i, marks=() if i % 2 == 0 else (pytest.mark.slow,)) for i in range(100)])
def test_community_backend_matches_oracle(idx):
    if "community" not in available_methods():
        pytest.skip("no community backend")
    m, regime, refused = community_instance(idx)
    key = ("community", regime)
    if refused is not None:
        _refused(key, "CommunityMarket", idx, refused)
        return
    # Σ = D + U B Uᵀ from the market's own float data, exactly (cov_dense() rounds its diagonal B_kk + δ_k;
    # it must agree with the exact Σ to that rounding)
    o = orc.Oracle.community(m.B, m.delta, m.community, m.noise_var, m.values)
    dense = m.cov_dense()
    exact = np.array([[float(x) for x in row] for row in o.cov_mp])
    assert np.array_equal(dense, exact), "cov_dense() is not the rounding of D + U B Uᵀ"
    bad = []
    for problem in PROBLEMS:
        bad += solve_and_check(key, o, problem, lambda p: dm_opt.solve(m, p, method="community", all_optima=True),
                               all_optima=True)
    assert not bad, f"community #{idx} [{regime}] sizes {m.sizes.tolist()}:\n  " + "\n  ".join(bad)


# ------------------------------------------------------------- oracle markets
ORACLE_BACKENDS = ("enumerate", "bnb")


def oracle_market_instance(idx):
    """(kind, market or refusal, oracle, regime) for the leakage-oracle markets of dm_opt.gaussian.leakage."""
    kind = ("mutual_information", "mixture", "tabulated")[idx % 3]
    base = (idx // 3) * 5 + (idx % 5)          # spread over families and noise ratios
    _, regime, S, tau2, v = instance(base)
    if kind == "mutual_information":
        o = orc.Oracle.mutual_information(S, tau2, v)
        make = lambda: dm_opt.gaussian.leakage.MutualInformationMarket(S, v, tau2)  # noqa: E731
    elif kind == "mixture":
        rng = np.random.default_rng([142, idx])
        n = S.shape[0]
        G = rng.standard_normal((n, n + 1))
        R2 = G @ G.T
        d2 = np.sqrt(np.diag(S) / np.diag(R2))
        S2 = R2 * d2[:, None] * d2[None, :]            # same variances as S, other correlations
        S2 = 0.5 * S2 + 0.5 * S2.T
        mu = [0.375, 0.625]
        o = orc.Oracle.mixture(mu, [S, S2], tau2, v)
        make = lambda: dm_opt.gaussian.leakage.MixtureMarket(mu, [S, S2], v, tau2)  # noqa: E731
    else:
        g = orc.Oracle.gaussian(S, tau2, v)
        table = np.array([[float(x) for x in row] for row in g.leak])
        o = orc.Oracle.tabulated(table, v)
        make = lambda: dm_opt.gaussian.leakage.TabulatedMarket(table, v)  # noqa: E731
    return kind, make, o, regime


@pytest.mark.parametrize("idx", [pytest.param(i, marks=() if i < 45 else (pytest.mark.slow,)) for i in range(150)])
def test_oracle_markets_match_oracle(idx):
    kind, make, o, regime = oracle_market_instance(idx)
    bad = []
    for method in ORACLE_BACKENDS:
        key = (f"{method}[{kind}]", regime)
        try:
            market = make()
        except InstanceError as exc:
            _refused(key, kind, idx, exc)
            continue
        every = method == "enumerate"
        for problem in PROBLEMS:
            bad += [f"{method}: {x}" for x in solve_and_check(
                key, o, problem,
                lambda p, market=market, method=method, every=every: dm_opt.solve(market, p, method=method,
                                                                                 all_optima=every),
                all_optima=every)]
    assert not bad, f"{kind} #{idx} [{regime}]:\n  " + "\n  ".join(bad)


# ---------------------------------------------------------------------- Dask
DASK_IDX = [i for i in range(0, N_INSTANCES, 17)][:30]


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("distributed", reason="Dask is the optional extra 'dist'")
    from dm_opt.gaussian.distributed import open_client

    with open_client(workers=2, processes=False) as c:
        yield c


@pytest.mark.slow
@pytest.mark.parametrize("idx", DASK_IDX)
def test_dask_enumeration_matches_oracle(dask_client, idx):
    from dm_opt.gaussian.distributed import enumerate_distributed

    label, regime, S, tau2, v = instance(idx)
    key = ("dask", regime)
    try:
        market = dm_opt.GaussianMarket(S, v, tau2)
    except InstanceError as exc:
        _refused(key, "GaussianMarket", idx, exc)
        return
    o = oracle_for(idx)
    bad = []
    for problem in PROBLEMS:
        bad += solve_and_check(
            key, o, problem, lambda p: enumerate_distributed(market, p, dask_client, chunk_bits=2, all_optima=True),
            all_optima=True)
    assert not bad, f"dask on {label} [{regime}]:\n  " + "\n  ".join(bad)


# ------------------------------------------------------------------- summary
def outcome_summary() -> str:
    lines = ["numerics outcomes (problem solves) per backend and regime:"]
    for (method, regime), c in sorted(OUTCOMES.items()):
        lines.append(f"  {method:28s} {regime:48s} " + " ".join(f"{k}={c[k]}" for k in sorted(c)))
    totals = collections.defaultdict(collections.Counter)
    for (method, _), c in OUTCOMES.items():
        totals[method].update(c)
    lines.append("totals:")
    for method, c in sorted(totals.items()):
        lines.append(f"  {method:28s} " + " ".join(f"{k}={c[k]}" for k in sorted(c)))
    lines.append("markets refused at construction (distinct instances) per kind, regime and field:")
    for (kind, regime, field), ids in sorted(REFUSED_AT_CONSTRUCTION.items()):
        lines.append(f"  {kind:24s} {regime:48s} {field:14s} {len(ids)}")
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def _print_outcome_summary(request):
    """After the module: ok / refused / failed counts per backend and regime, written to the terminal
    (shown in every mode, default or -m slow, whatever the capture setting)."""
    yield
    if OUTCOMES:
        tr = request.config.pluginmanager.get_plugin("terminalreporter")
        capman = request.config.pluginmanager.get_plugin("capturemanager")
        if tr is not None:
            with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
                tr.write_line("")
                for line in outcome_summary().splitlines():
                    tr.write_line(line)
