"""Exact solver for community-structured markets (``method="community"``; docs/spec.md §1.4).

For a :class:`~dm_opt.gaussian.community.CommunityMarket` leakage depends only on
the sharer counts ``m = (m_1..m_K)`` and on whether a user shares
(:meth:`CommunityMarket.posterior_from_counts`, a K×K solve).  Write
``I^s_k(m), I^n_k(m)`` for the leakage of a sharer / non-sharer of community
``k`` and ``g_k(m) = I^s_k(m) − I_i(m − e_k)`` for a sharer's own-signal gain
(Thm 2, eq. 5).

**Lowest-value sharers (all three problems).**  Fix ``m``.  The objective
depends on *which* users of community ``k`` share only through

* first best:   ``Σ_k [W_k I^n_k + (I^s_k − I^n_k) Σ_{i∈A_k} w_i]``,  ``w = 1 − v``;
* equilibrium:  ``Σ_k [(n_k − m_k) I^n_k + m_k I^s_k − g_k Σ_{i∈A_k} v_i]`` (Thm 1);
* decorrelated: ``Σ_k I^s_k Σ_{i∈A_k} (1 − v_i)`` (Lemma 5, Thm 6);

and the three coefficients are strictly positive:

* ``g_k(m) > 0`` (``g(x) = x²/(τ² − x)`` with ``0 < P^s_k < τ_k²``) and
  ``I^s_k ≥ g_k > 0``;
* ``I^s_k − I^n_k > 0``.  Take a sharer ``i`` and a non-sharer ``j`` of ``k``
  and ``A' = A \\ {i}``.  Swapping ``i`` and ``j`` is a symmetry of the market,
  so ``I^n_k = I_i(A' ∪ {j})``.  Given ``S_{A'}``, ``X_i`` and ``X_j`` have the
  same conditional variance ``c`` and ``X_i − X_j`` is *uncorrelated* with
  every other signal (``Σ_il = Σ_jl`` for ``l ≠ i, j``), so
  ``Var(X_i − X_j | S_{A'}) = 2δ_k > 0`` and ``|Cov(X_i, X_j | S_{A'})| < c``.
  Hence the own signal gains ``c²/(c + τ²)`` and ``j``'s signal only
  ``Cov²/(c + τ²)``: ``I^s_k > I^n_k`` (``δ_k > 0`` whenever ``n_k ≥ 2``).

Each objective is therefore, for fixed ``m``, *strictly increasing* in
``Σ_{i∈A_k} (1 − v_i)`` (first best, decorrelated) resp. *strictly
decreasing* in ``Σ_{i∈A_k} v_i`` (equilibrium): an optimal profile takes in
every community the ``m_k`` users of lowest value (any choice among equal
values, so with ties the optimal profiles are exactly "every sharer's value ≤
every non-sharer's value within her community"; tested against enumeration in
``tests/gaussian/test_community_solver.py``).  With values sorted per community and
prefix sums ``V_k[m] = Σ_{j<m} v_(j)``, the objective is a function ``f(m)``
of the count vector alone, evaluated in ``O(K³)``.

**Search over count vectors.**  If ``Π (n_k + 1) ≤`` :data:`ENUMERATE_MAX`
every count vector is evaluated (batched K×K solves): exact.  Otherwise a
best-first branch-and-bound over boxes ``lo ≤ m ≤ hi`` of counts
(:meth:`CountModel.bound`).  Leakage enters only through the K posterior
variances ``u_k(m)`` of the community common components, so
``f(m) = Σ_k φ_k(m_k, u_k(m))`` (:class:`CountModel`).  ``u_k`` is
nonincreasing in every count (Lemma 1, monotonicity) and, with the other
counts fixed, exactly ``x_k/(1 + m_k x_k/d_k)`` (Sherman–Morrison), so over a
box ``u_k(m) ∈ [u(m_k; x_k(hi)), u(m_k; x_k(lo))]`` and

    f(m) ≤ Σ_k max_{lo_k ≤ m_k ≤ hi_k} max_{u in that interval} φ_k(m_k, u):

K one-dimensional problems.  ``φ_k`` is monotone in ``u`` (first best: linear;
equilibrium: decreasing; decorrelated: monotone in ``P^s(u)``), so the inner
max is an end point; the outer max is an exact scan when the range has at most
:data:`SCAN_EXACT` counts, else a max over that many blocks each bounded
using concavity of the prefix sums of sorted values (:meth:`CountModel._unit_bound`).
The bound equals ``f`` when ``lo = hi``.  Lemma 3 fixes ``lo_k ≥ #{v ≤ 1}``
at the root for the equilibrium (adding a ``v ≤ 1`` user never lowers the
equilibrium objective, so some optimum has them all sharing).

**Domain tightening (default, ``search="tighten"``, :func:`_tighten_search`).**  The
bound is *separable*: ``f(m) ≤ Σ_k ψ_k(m_k)`` with ``ψ_k`` the inner max above
(:class:`BoxScanner`).  With ``S = Σ_k max ψ_k`` and incumbent ``f*``, every count
``m_k`` with ``ψ_k(m_k) + S − max ψ_k ≤ f* + tol`` is cut from the box (no count vector
through it beats ``f* + tol``); the box shrinks to the hull of the surviving counts, the
ranges ``[x_k(hi), x_k(lo)]`` narrow, and the bound is recomputed until nothing moves —
with block bounds while they cut a tenth of the box, then with a compiled scan of every
count (:func:`_scan_max`, :func:`_scan_tighten`).  The facts used — ``u_k`` nonincreasing
in every count, the exact own-count form, the monotonicity of ``φ_k`` in ``u`` — are
tested on direct K×K solves, and the cut-offs against exhaustive completion of sampled
boxes (``tests/gaussian/test_community_search.py``).  No submodularity or concavity of
``f`` in the counts is assumed.  The cross-community effect is weak at the scale of a
community's own count, so most instances are decided at the root: K = 20 at ``n = 10⁷``
in 0.1 s of search, K = 50 at ``n = 10⁶`` in about 4 s (``benchmarks/community_k.py``).
The incumbent is the coordinate ascent of :func:`local_search`, whose candidates are
scored from one K×K posterior per step (the one-community Kalman update).
``search="boxes"`` is the previous search (:func:`_branch_and_bound`: block bounds,
no tightening), kept as the benchmarks' baseline.

Nodes whose bound is at most the incumbent plus the tie tolerance ``tol`` are
pruned, so the answer is optimal within ``tol`` (the same tie tolerance
enumeration uses, default ``1e-9 ×`` the objective's scale); the proven bound
``max(incumbent, largest pruned or cut-off bound)`` is reported in
``extra["proven_bound"]``.  There is no polynomial guarantee on the node count for
general ``K``; on a time or node limit the best profile is returned with its proven
bound and gap.  The search runs with one BLAS thread (:func:`dm_opt.core.threads.blas_threads`):
its K×K solves are far too small for a threaded BLAS.
"""

from __future__ import annotations

import heapq
import numbers
import time

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.core.registry import Backend, RawSolution, register
from dm_opt.core.result import Termination
from dm_opt.core.threads import blas_threads
from dm_opt.gaussian.community import sharer_posterior
from dm_opt.gaussian.kernels.posterior import kernel

#: Evaluate every count vector when there are at most this many.
ENUMERATE_MAX = 200_000
#: Count vectors evaluated per batched K×K solve.
BATCH = 20_000
#: Nodes expanded per best-first round (children evaluated in one batch).
NODE_BATCH = 128
#: Ranges of at most this many counts are scanned exactly in a bound; longer ones in this many blocks.
SCAN_EXACT = 512
#: Largest total count range scanned per best-first round (bounds scan every count of a box).
SCAN_BUDGET = 4_000_000
#: Largest number of coordinate-ascent sweeps of the incumbent heuristic (:func:`local_search`).
LOCAL_SWEEPS = 20
#: Counts evaluated per level of a coordinate step of :func:`local_search`.
LOCAL_GRID = 64
#: Default node limit of the branch-and-bound.
DEFAULT_MAX_NODES = 5_000_000

PROBLEMS = ("first_best", "equilibrium", "decorrelated")


class SortedCommunities:
    """Per-community sorted values and prefix sums (``O(n log n)`` once per market).

    Only the values are sorted (``np.sort``, faster than ``argsort``); the users of a
    prefix are found by a threshold on the value (:meth:`prefix_users`), and the full
    stable order (``order``) is built on first use (all-optima listings).  The two prefix
    tables are built on first use too: ``V`` (sums of values) serves the equilibrium only,
    ``W`` (sums of ``1 − v``) the first best and the de-correlated problem — at ``n = 10⁷``
    each is 80 MB and a pass over fresh memory.
    """

    def __init__(self, market, values=None):
        v = market.values if values is None else values
        self.K = market.K
        self.sizes = market.sizes
        self._values = v
        self._order = None
        self._V = self._W = self._Vk = self._Wk = None
        self.sorted_values = []  # values of community k, ascending
        self.forced_eq = np.zeros(self.K, dtype=np.int64)   # #{v <= 1}: share in equilibrium (Lemma 3)
        self.below1 = np.zeros(self.K, dtype=np.int64)      # #{v < 1}
        self.starts = np.concatenate([[0], np.cumsum(market.sizes)])
        starts = self.starts
        # flat prefix tables: community k's prefix m at offset[k] + m; V and W below are views
        self.offset = np.concatenate([[0], np.cumsum(market.sizes + 1)[:-1]]).astype(np.int64)
        for k in range(self.K):
            vs = np.sort(v[starts[k]:starts[k + 1]])
            self.sorted_values.append(vs)
            self.below1[k] = int(np.searchsorted(vs, 1.0, side="left"))
            self.forced_eq[k] = int(np.searchsorted(vs, 1.0, side="right"))

    def _table(self):
        return np.zeros(int(self.sizes.sum()) + self.K)

    @property
    def V_flat(self):
        """``V_k(m) = Σ_{j<m} v_(j)`` at ``offset[k] + m`` (flat, all communities)."""
        if self._V is None:
            V = self._table()
            for k, vs in enumerate(self.sorted_values):
                o = int(self.offset[k])
                np.cumsum(vs, out=V[o + 1:o + vs.size + 1])
            self._V = V
        return self._V

    @property
    def W_flat(self):
        """``W_k(m) = Σ_{j<m} (1 − v_(j))`` at ``offset[k] + m`` (flat, all communities)."""
        if self._W is None:
            Wf = self._table()
            for k, vs in enumerate(self.sorted_values):
                o, nk, b = int(self.offset[k]), vs.size, int(self.below1[k])
                # W(m) as (sum of the positive terms) + (sum of the others): the values are sorted, so
                # the positive terms are the first #{v < 1} — each part is a cumulative sum of terms
                # of one sign (no cancellation inside either)
                W = Wf[o:o + nk + 1]
                w = W[1:]                       # 1 − v_(j) written in place, then summed in place
                np.subtract(1.0, vs, out=w)
                np.cumsum(w[:b], out=w[:b])
                np.cumsum(w[b:], out=w[b:])
                w[b:] += W[b]
            self._W = Wf
        return self._W

    def _views(self, flat):
        return [flat[o:o + n + 1] for o, n in zip(self.offset, self.sizes)]

    @property
    def V(self):
        """Community ``k``'s ``V_k`` as ``V[k]`` (views of :attr:`V_flat`)."""
        if self._Vk is None:
            self._Vk = self._views(self.V_flat)
        return self._Vk

    @property
    def W(self):
        """Community ``k``'s ``W_k`` as ``W[k]`` (views of :attr:`W_flat`)."""
        if self._Wk is None:
            self._Wk = self._views(self.W_flat)
        return self._Wk

    @property
    def order(self):
        """Global user indices of each community by ascending value (stable), list of K arrays."""
        if self._order is None:
            st = self.starts
            self._order = [np.argsort(self._values[st[k]:st[k + 1]], kind="stable") + st[k]
                           for k in range(self.K)]
        return self._order

    def prefix_users(self, k, m):
        """The first ``m`` users of community ``k`` in the stable value order (``order[k][:m]``), O(n_k).

        Users with ``v < t`` (``t`` the ``m``-th smallest value) and the first of those with ``v = t`` by index.
        """
        st = self.starts
        vk = self._values[st[k]:st[k + 1]]
        if m <= 0:
            return np.empty(0, dtype=np.int64)
        t = self.sorted_values[k][m - 1]
        lt = int(np.searchsorted(self.sorted_values[k], t, side="left"))
        below = np.flatnonzero(vk < t)
        eq = np.flatnonzero(vk == t)[:m - lt]
        return np.sort(np.concatenate([below, eq])) + st[k]

    def gather(self, table, M):
        """``table[k][M[:, k]]`` for every column, shape (N, K)."""
        return np.stack([table[k][M[:, k]] for k in range(self.K)], axis=1)

    def profile(self, counts, n) -> np.ndarray:
        """The profile in which the ``m_k`` lowest-value users of each community share.

        The users of :meth:`prefix_users` (``order[k][:m_k]``), written as a mask in place: one
        comparison pass per community (``v < t``, or ``v ≤ t`` when every user at the threshold
        value shares), and the index order among equal values only when the threshold is tied.
        """
        a = np.zeros(n, dtype=np.int8)
        st = self.starts
        for k in range(self.K):
            m = int(counts[k])
            if m <= 0:
                continue
            vs = self.sorted_values[k]
            vk = self._values[st[k]:st[k + 1]]
            ak = a[st[k]:st[k + 1]].view(np.bool_)
            t = vs[m - 1]
            lt = int(np.searchsorted(vs, t, side="left"))
            if m == vs.size or vs[m] != t:           # every user with v = t shares
                np.less_equal(vk, t, out=ak)
            else:
                np.less(vk, t, out=ak)
                ak[np.flatnonzero(vk == t)[:m - lt]] = True
        return a


def sorted_communities(market) -> SortedCommunities:
    cache = market._cache
    if "sorted" not in cache:
        cache["sorted"] = SortedCommunities(market)
    return cache["sorted"]


class CountModel:
    """``f(m)`` and box bounds for one problem on one community market (vectorised over rows).

    Leakage enters only through ``u_k(m)`` (posterior variance of the
    community-``k`` common component): ``I^n_k = β_k − u_k``,
    ``I^s_k − I^n_k = δ_k²/d_k + κ_k u_k`` with ``κ_k = 1 − τ_k⁴/d_k²``, and the
    own gain ``g_k`` is an increasing function of ``u_k``.  So
    ``f(m) = Σ_k φ_k(m_k, u_k(m))`` with, writing ``Wp_k(m) = Σ_{j<m} (1 − v_(j))``
    and ``V_k(m) = Σ_{j<m} v_(j)`` (values sorted ascending):

    * first best:   ``φ = W_k β_k + Wp(m) δ²/d − u (W_k − κ Wp(m))``  (linear in ``u``);
    * equilibrium:  ``φ = n_k (β − u) + m (δ²/d + κ u) − g(u) V(m)``  (decreasing in ``u``);
    * decorrelated: ``φ = Wp(m) (s − P^s(u))``,  ``P^s(u) = δτ²/d + u τ⁴/d²``.
    """

    def __init__(self, market, problem: str, sc: SortedCommunities | None = None):
        if problem not in PROBLEMS:
            raise ProblemError(f"method 'community' solves {', '.join(PROBLEMS)}, not '{problem}'")
        self.market = market
        self.problem = problem
        self.sc = sorted_communities(market) if sc is None else sc
        self.K = market.K
        self.s = market.variance
        self.t2 = market.community_noise_var
        self.delta = market.delta
        self.d = self.delta + self.t2
        self.beta = np.diag(market.B).copy()
        self.kappa = 1.0 - self.t2 ** 2 / self.d ** 2
        self.nk = market.sizes.astype(float)
        # Σ_k (1 − v) (first best only: the other problems never build the W table)
        self.Wtot = (np.array([self.sc.W[k][-1] for k in range(self.K)]) if problem == "first_best"
                     else np.zeros(self.K))
        self.evaluations = 0

    # ----------------------------------------------------------- algebra
    def u(self, M):
        """``u_k(m)`` for every row of ``M`` (N, K): one batched K×K solve per row."""
        self.evaluations += M.shape[0]
        Pn, _ = self.market.posterior_from_counts(M)
        return Pn - self.delta[None, :]

    def u_without(self, M):
        """``x_k = u_k(m with m_k = 0)`` for every row and ``k``, shape (N, K).

        With the others fixed, ``u_k = x_k / (1 + m_k x_k / d_k)`` exactly
        (Sherman–Morrison on the ``k``-th diagonal entry of ``G``)."""
        self.evaluations += M.shape[0] * M.shape[1]
        return self.market.common_variance_without(M)

    def phi(self, k, m, u):
        """Community ``k``'s term ``φ_k(m, u)``; ``m`` int array, ``u`` array of the same shape."""
        sc = self.sc
        d, dl, t2 = self.d[k], self.delta[k], self.t2[k]
        if self.problem == "equilibrium":
            g = sharer_posterior(dl, t2, u)[1]
            return self.nk[k] * (self.beta[k] - u) + m * (dl * dl / d + self.kappa[k] * u) - g * sc.V[k][m]
        Wp = sc.W[k][m]
        if self.problem == "first_best":
            return self.Wtot[k] * self.beta[k] + Wp * dl * dl / d - u * (self.Wtot[k] - self.kappa[k] * Wp)
        return Wp * (self.s[k] - sharer_posterior(dl, t2, u)[0])

    def value(self, M, U=None):
        """``f(m)`` for every row of ``M`` (prefix profiles), shape (N,)."""
        if U is None:
            U = self.u(M)
        return self.phi_all(M, U).sum(axis=1)

    def phi_all(self, M, U):
        """``φ_k(m_k, u_k)`` for every row and community at once, shape (N, K) (the operations of :meth:`phi`)."""
        sc = self.sc
        idx = sc.offset[None, :] + M
        d, dl, t2 = self.d, self.delta, self.t2
        if self.problem == "equilibrium":
            g = sharer_posterior(dl, t2, U)[1]
            return self.nk * (self.beta - U) + M * (dl * dl / d + self.kappa * U) - g * sc.V_flat[idx]
        Wp = sc.W_flat[idx]
        if self.problem == "first_best":
            return self.Wtot * self.beta + Wp * dl * dl / d - U * (self.Wtot - self.kappa * Wp)
        return Wp * (self.s - sharer_posterior(dl, t2, U)[0])

    def _unit_bound(self, k, a, b, xs, xl):
        """Upper bound of ``φ_k(m, u_k(m))`` over ``a ≤ m ≤ b`` (arrays of units); exact when ``a = b``.

        ``u`` lies in ``[x_s/(1 + b x_s/d), x_l/(1 + a x_l/d)]``.  ``Wp`` is a
        prefix sum of the *decreasing* sequence ``1 − v_(j)``, hence concave:
        on ``[a, b]`` it ranges over ``[min(Wp(a), Wp(b)), Wp(clip(#{v<1}, a, b))]``,
        and ``V`` is nondecreasing.  First best and decorrelated ``φ`` are
        bilinear in (``Wp``, ``u``) resp. (``Wp``, ``P^s(u)``), so the max over the
        rectangle is at a corner; equilibrium ``φ`` is decreasing in ``u`` and, for
        fixed ``u``, concave in ``m`` (bounded by its end tangents, see the code).
        """
        sc = self.sc
        d, dl, t2 = self.d[k], self.delta[k], self.t2[k]
        us = xs / (1.0 + b * xs / d)
        if self.problem == "equilibrium":
            # φ is decreasing in u, so φ(m, u(m)) ≤ φ(m, u_s) with u_s = u at b; for fixed u,
            # φ(m) = const + m c − g V(m) is concave in m (V convex: values sorted ascending), so on
            # [a, b] it lies below both end tangents L_a(m) = φ(a) + Δ_a (m − a) and
            # L_b(m) = φ(b) + Δ_{b−1} (m − b), Δ_j = c − g v_(j); the bound is max_m min(L_a, L_b).
            g = sharer_posterior(dl, t2, us)[1]
            c = dl * dl / d + self.kappa[k] * us
            V = sc.V[k]
            base = self.nk[k] * (self.beta[k] - us)
            fa = base + a * c - g * V[a]
            fb = base + b * c - g * V[b]
            top = V.shape[0] - 1
            da = c - g * (V[np.minimum(a + 1, top)] - V[a])
            db = c - g * (V[b] - V[np.maximum(b - 1, 0)])
            with np.errstate(divide="ignore", invalid="ignore"):
                ms = (fb - fa + da * a - db * b) / (da - db)
            ms = np.clip(np.where(np.isfinite(ms), ms, a), a, b)
            cross = np.minimum(fa + da * (ms - a), fb + db * (ms - b))
            return np.where(a == b, fa, np.where(da <= 0, fa, np.where(db >= 0, fb, cross)))
        ul = xl / (1.0 + a * xl / d)
        wa = sc.W[k][a]
        wb = sc.W[k][b]
        c = np.clip(sc.below1[k], a, b)
        wmax = sc.W[k][c]
        wmin = np.minimum(wa, wb)
        if self.problem == "first_best":
            def f(w, u):
                return self.Wtot[k] * self.beta[k] + w * dl * dl / d - u * (self.Wtot[k] - self.kappa[k] * w)
        else:
            def f(w, u):
                return w * (self.s[k] - sharer_posterior(dl, t2, u)[0])
        return np.maximum(np.maximum(f(wmin, us), f(wmin, ul)), np.maximum(f(wmax, us), f(wmax, ul)))

    def bound(self, LO, HI):
        """Upper bound of ``f`` over every box ``LO ≤ m ≤ HI``, and a good point of each box.

        ``u_k(m)`` is nonincreasing in every ``m_l`` (more data, smaller
        posterior variance; Lemma 1), so for ``m`` in the box
        ``u_k(m) ∈ [x_k(HI)/(1 + m_k x_k(HI)/d_k), x_k(LO)/(1 + m_k x_k(LO)/d_k)]``
        with ``x_k(·)`` the value at ``m_k = 0`` (:meth:`u_without`).  Hence
        ``f ≤ Σ_k max_{lo_k ≤ m_k ≤ hi_k} max_{u in that interval} φ_k(m_k, u)``.
        The outer max is a scan of ``[lo_k, hi_k]``: exact (every integer) when
        the range has at most :data:`SCAN_EXACT` counts, otherwise over
        :data:`SCAN_EXACT` blocks each bounded by :meth:`_unit_bound`.  When
        ``LO = HI`` the bound equals ``f``.  Returns ``(bound (N,), point (N, K))``.
        """
        N = LO.shape[0]
        Xs = self.u_without(HI)          # x_k at the largest counts of the others: smallest u_k
        Xl = self.u_without(LO) if self.problem != "equilibrium" else Xs
        total = np.zeros(N)
        point = np.empty_like(LO)
        for k in range(self.K):
            lo, hi = LO[:, k], HI[:, k]
            length = hi - lo + 1
            step = -(-length // SCAN_EXACT)                  # block size (1 = exact scan)
            units = -(-length // step)
            starts = np.concatenate([[0], np.cumsum(units)[:-1]])
            seg = np.repeat(np.arange(N), units)
            j = np.arange(seg.size) - starts[seg]
            a = lo[seg] + j * step[seg]
            b = np.minimum(a + step[seg] - 1, hi[seg])
            ub = self._unit_bound(k, a, b, Xs[seg, k], Xl[seg, k])
            best = np.maximum.reduceat(ub, starts)
            total += best
            hit = np.flatnonzero(ub >= best[seg])
            first = hit[np.unique(seg[hit], return_index=True)[1]]
            point[:, k] = np.clip(self.sc.below1[k], a[first], b[first])
        return total, point


# --------------------------------------------------------------- compiled scans of a box
# Per community k the constants of φ_k (CountModel docstring), one row of ``consts``.
_C_D, _C_DL, _C_T2, _C_BETA, _C_KAPPA, _C_NK, _C_WTOT, _C_S = range(8)
_PROBLEM_CODE = {"first_best": 0, "equilibrium": 1, "decorrelated": 2}


def _phi_point(prob, m, u, w, v, c):
    """``φ_k(m, u)`` (:meth:`CountModel.phi`, the same operations) from ``w = W_k(m)``, ``v = V_k(m)``."""
    d, dl, t2 = c[_C_D], c[_C_DL], c[_C_T2]
    if prob == 1:
        Ps, g = _sharer_posterior_jit(dl, t2, u)
        return c[_C_NK] * (c[_C_BETA] - u) + m * (dl * dl / d + c[_C_KAPPA] * u) - g * v
    if prob == 0:
        return c[_C_WTOT] * c[_C_BETA] + w * dl * dl / d - u * (c[_C_WTOT] - c[_C_KAPPA] * w)
    Ps, g = _sharer_posterior_jit(dl, t2, u)
    return w * (c[_C_S] - Ps)


def _psi_point(prob, k, m, xs, xl, off, W, V, consts):
    """``ψ_k(m) = max(φ_k(m, u_s), φ_k(m, u_l))``, ``u = x/(1 + m x/d)`` at the two ends of ``x_k``'s range.

    ``φ_k`` is monotone in ``u`` for every problem (CountModel docstring) and ``u`` increases
    with ``x`` for fixed ``m`` (``du/dx = (1 + m x/d)⁻² > 0``), so ``ψ_k(m) ≥ φ_k(m, u_k(m'))`` for
    every count vector ``m'`` of the box with ``m'_k = m``."""
    c = consts[k]
    d = c[_C_D]
    us = xs / (1.0 + m * xs / d)
    ul = xl / (1.0 + m * xl / d)
    w = W[off[k] + m]
    v = V[off[k] + m]
    a = _phi_point(prob, m, us, w, v, c)
    b = _phi_point(prob, m, ul, w, v, c)
    return a if a > b else b


def _scan_max(prob, lo, hi, xs, xl, off, W, V, consts, mx, arg):
    """``mx[k] = max_{lo_k ≤ m ≤ hi_k} ψ_k(m)`` and a maximiser ``arg[k]`` (exact scan of every count)."""
    for k in range(lo.shape[0]):
        best = -np.inf
        bm = lo[k]
        for m in range(lo[k], hi[k] + 1):
            f = _psi_point(prob, k, m, xs[k], xl[k], off, W, V, consts)
            if f > best:
                best = f
                bm = m
        mx[k] = best
        arg[k] = bm


def _scan_tighten(prob, lo, hi, xs, xl, off, W, V, consts, thr, nlo, nhi, excl):
    """Smallest / largest ``m`` of ``[lo_k, hi_k]`` with ``ψ_k(m) > thr_k``; ``excl[k]`` = max ψ_k cut off."""
    for k in range(lo.shape[0]):
        ex = -np.inf
        a = lo[k]
        while a < hi[k]:
            f = _psi_point(prob, k, a, xs[k], xl[k], off, W, V, consts)
            if f > thr[k]:
                break
            if f > ex:
                ex = f
            a += 1
        b = hi[k]
        while b > a:
            f = _psi_point(prob, k, b, xs[k], xl[k], off, W, V, consts)
            if f > thr[k]:
                break
            if f > ex:
                ex = f
            b -= 1
        nlo[k] = a
        nhi[k] = b
        excl[k] = ex


_sharer_posterior_jit = kernel(sharer_posterior)
_phi_point = kernel(_phi_point)
_psi_point = kernel(_psi_point)
_scan_max = kernel(_scan_max)
_scan_tighten = kernel(_scan_tighten)


def _enumerate_counts(model: CountModel, lo, hi, deadline, tol=None):
    """Every count vector of the box; with ``tol``, also every count vector within ``tol`` of the best."""
    shape = tuple(int(x) for x in (hi - lo + 1))
    total = int(np.prod(shape))
    best, best_m = -np.inf, None
    done = 0
    cand_f, cand_m = [], []
    for start in range(0, total, BATCH):
        if deadline is not None and time.perf_counter() > deadline and best_m is not None:
            break
        idx = np.arange(start, min(total, start + BATCH))
        M = np.stack(np.unravel_index(idx, shape), axis=1).astype(np.int64) + lo[None, :]
        f = model.value(M)
        j = int(np.argmax(f))
        if f[j] > best:
            best, best_m = float(f[j]), M[j].copy()
        if tol is not None:
            keep = f >= best - tol
            cand_f.append(f[keep])
            cand_m.append(M[keep])
        done += idx.size
    ties = None
    if tol is not None and cand_f:
        f, M = np.concatenate(cand_f), np.concatenate(cand_m)
        ties = M[f >= best - tol]
    return best, best_m, done, total, ties


def tied_profiles(sc: SortedCommunities, counts, n: int, limit: int):
    """Every profile with these counts whose sharers have the lowest values in each community.

    Within community ``k`` the users with ``v < t`` share and those with ``v > t``
    do not, ``t = v_(m_k)`` the ``m_k``-th smallest value; any ``m_k − #{v < t}``
    of the users with ``v = t`` (exact equality) complete the sharers.  Raises
    :class:`~dm_opt.core.errors.LimitExceeded` beyond ``limit`` profiles.
    """
    import itertools
    from math import comb

    from dm_opt.core.errors import LimitExceeded

    choices = []
    total = 1
    for k in range(sc.K):
        order = sc.order[k]
        m = int(counts[k])
        vs = sc.sorted_values[k]
        if m == 0 or m == vs.size or vs[m] != vs[m - 1]:
            choices.append([order[:m]])
            continue
        t = vs[m - 1]
        lt = int(np.searchsorted(vs, t, side="left"))
        eq = int(np.searchsorted(vs, t, side="right"))
        total *= comb(eq - lt, m - lt)
        if total > limit:
            raise LimitExceeded(f"more than {limit} optimal profiles (ties among equal values); "
                                f"raise max_optima or use all_optima=False")
        choices.append([np.concatenate([order[:lt], order[lt:eq][list(c)]])
                        for c in itertools.combinations(range(eq - lt), m - lt)])
    out = []
    for combo in itertools.product(*choices):
        a = np.zeros(n, dtype=np.int8)
        for idx in combo:
            a[idx] = 1
        out.append(a)
    return out


def local_search(model: CountModel, m, lo, hi, *, max_sweeps: int = LOCAL_SWEEPS, deadline=None):
    """Coordinate ascent over count vectors from ``m`` (a feasible incumbent heuristic).

    Each step changes one community's count: every count of ``[lo_k, hi_k]`` when there
    are at most :data:`LOCAL_GRID`, else that many evenly spaced counts, then the same
    again between the neighbours of the best one, down to every count.  The candidates of a
    step are scored from one K×K posterior (:meth:`CommunityMarket.common_posterior` with
    ``m_k = 0``, then the one-community update ``u_l = U_ll − t U_lk²/(t U_kk + d_k)``); the
    chosen one is re-evaluated exactly and accepted only if strictly better.  Stops after a
    sweep without improvement or at ``deadline`` (``time.perf_counter()``).  Returns ``(value, m)``
    (the value exact, :meth:`CountModel.value`).
    """
    m = np.asarray(m, dtype=np.int64).copy()
    best = float(model.value(m[None])[0])
    market = model.market
    for _ in range(max_sweeps):
        improved = False
        for k in range(model.K):
            a, b = int(lo[k]), int(hi[k])
            if a == b:
                continue
            if deadline is not None and time.perf_counter() > deadline:
                return best, m
            base = m.copy()
            base[k] = 0
            P = market.common_posterior(base[None])[0]
            model.evaluations += 1
            points = max(int(LOCAL_GRID), 4)        # ≥ 4 points: every level shrinks the bracket
            while b > a:
                if b - a + 1 <= points:
                    grid = np.arange(a, b + 1)
                else:
                    grid = np.unique(np.linspace(a, b, points).round().astype(np.int64))
                M = np.repeat(m[None], grid.size, axis=0)
                M[:, k] = grid
                t = grid.astype(float)[:, None]
                U = np.diag(P)[None, :] - t * P[k][None, :] ** 2 / (t * P[k, k] + model.d[k])
                j = int(np.argmax(model.value(M, U)))
                if M[j, k] != m[k]:
                    f = float(model.value(M[j][None])[0])
                    if f > best:
                        best, m = f, M[j].copy()
                        improved = True
                if b - a + 1 <= points:
                    break
                a, b = int(grid[max(j - 1, 0)]), int(grid[min(j + 1, grid.size - 1)])
        if not improved:
            break
    return best, m


def _branch_and_bound(model: CountModel, lo, hi, tol, deadline, max_nodes, local: bool = True):
    """Best-first branch-and-bound over count boxes; returns (best, m, proven_bound, nodes, status)."""
    n_k = model.nk
    # incumbent candidates: the root corners and "everyone with v < 1 shares"
    cand = np.stack([lo, hi, np.clip(model.sc.below1, lo, hi), np.clip(model.sc.forced_eq, lo, hi)])
    fc = model.value(cand)
    j = int(np.argmax(fc))
    best, best_m = float(fc[j]), cand[j].copy()
    if local:
        best, best_m = local_search(model, best_m, lo, hi)
    if np.array_equal(lo, hi):
        return best, best_m, best, 1, Termination.OPTIMAL
    rb, rp = model.bound(lo[None], hi[None])
    heap = []
    counter = 0
    pruned_max = -np.inf
    heapq.heappush(heap, (-float(rb[0]), counter, lo, hi, rp[0]))
    pending = [rp[0]]
    nodes = 1
    status = Termination.OPTIMAL
    while heap:
        if pending:
            P = np.array(pending)
            fp = model.value(P)
            j = int(np.argmax(fp))
            if fp[j] > best:
                best, best_m = float(fp[j]), P[j].copy()
            pending = []
        if -heap[0][0] <= best + tol:
            pruned_max = max(pruned_max, -heap[0][0])
            break
        if deadline is not None and time.perf_counter() > deadline:
            status = Termination.TIME_LIMIT
            break
        if nodes >= max_nodes:
            status = Termination.NODE_LIMIT
            break
        batch, width = [], 0
        while heap and len(batch) < NODE_BATCH and width < SCAN_BUDGET:
            nb, _, blo, bhi, bp = heapq.heappop(heap)
            if -nb <= best + tol:
                pruned_max = max(pruned_max, -nb)
                continue
            batch.append((blo, bhi, bp))
            width += int(np.sum(bhi - blo + 1))
        if not batch:
            continue
        los, his = [], []
        for blo, bhi, _bp in batch:
            # split where the leakage moves most: the community whose u_k changes most
            # across the box (proxy: n_k × relative width of its count range)
            rel = n_k * (bhi - blo) / (blo + 1.0)
            k = int(np.argmax(rel))
            mid = blo[k] + (bhi[k] - blo[k]) // 2
            h1 = bhi.copy()
            h1[k] = mid
            l2 = blo.copy()
            l2[k] = mid + 1
            los += [blo, l2]
            his += [h1, bhi]
        LO = np.array(los)
        HI = np.array(his)
        nodes += LO.shape[0]
        bnd, pts = model.bound(LO, HI)
        pending = list(pts)
        for i in range(LO.shape[0]):
            if np.array_equal(LO[i], HI[i]):
                continue          # a single count vector: its bound is its value, evaluated via pending
            if bnd[i] <= best + tol:
                pruned_max = max(pruned_max, float(bnd[i]))
                continue
            counter += 1
            heapq.heappush(heap, (-float(bnd[i]), counter, LO[i], HI[i], pts[i]))
    if pending:
        P = np.array(pending)
        fp = model.value(P)
        j = int(np.argmax(fp))
        if fp[j] > best:
            best, best_m = float(fp[j]), P[j].copy()
    open_max = max((-h[0] for h in heap), default=-np.inf) if status is not Termination.OPTIMAL else -np.inf
    proven = max(best, pruned_max, open_max)
    return best, best_m, proven, nodes, status


def _consts(model: CountModel) -> np.ndarray:
    """The per-community constants of ``φ_k`` as rows of a (K, 8) array (the ``_C_*`` columns)."""
    return np.ascontiguousarray(np.stack([model.d, model.delta, model.t2, model.beta, model.kappa, model.nk,
                                          model.Wtot, model.s], axis=1), dtype=float)


class BoxScanner:
    """The separable bound ``f(m) ≤ Σ_k ψ_k(m_k)`` over a box ``lo ≤ m ≤ hi`` and its cut-offs.

    ``x_k`` (``u_k`` with ``m_k = 0``) is nonincreasing in every other count, so over the box
    ``x_k ∈ [x_k(hi), x_k(lo)]`` (:meth:`x_range`), and ``ψ_k(m) = max(φ_k(m, u_s), φ_k(m, u_l))``
    with ``u = x/(1 + m x/d)`` at both ends (:func:`_psi_point`) bounds ``φ_k(m, u_k(m'))`` for
    every ``m'`` of the box with ``m'_k = m``.  :meth:`exact` scans every count (compiled),
    :meth:`blocks` bounds blocks of counts (:meth:`CountModel._unit_bound`), both give per
    community a maximum ``M_k``; :meth:`tighten` and :meth:`tighten_blocks` cut the counts with
    ``ψ_k(m_k) ≤ thr_k`` from the ends of each range.
    """

    def __init__(self, model: CountModel):
        self.model = model
        self.prob = _PROBLEM_CODE[model.problem]
        sc = model.sc
        # each problem reads one prefix table (_phi_point: V for the equilibrium, W otherwise); the
        # other argument gets the same array, read but unused, so the unused table is never built
        table = sc.V_flat if model.problem == "equilibrium" else sc.W_flat
        self.off, self.W, self.V = sc.offset, table, table
        self.consts = _consts(model)
        self.K = model.K

    def x_range(self, lo, hi):
        """``(x_k(hi), x_k(lo))``: the smallest and largest ``x_k`` over the box, each shape (K,)."""
        X = self.model.u_without(np.stack([hi, lo]))
        return X[0], X[1]

    def exact(self, lo, hi, xs, xl):
        """``(M, arg)``: ``M_k = max ψ_k`` over ``[lo_k, hi_k]`` (every count) and a maximiser."""
        mx = np.empty(self.K)
        arg = np.empty(self.K, dtype=np.int64)
        _scan_max(self.prob, lo, hi, xs, xl, self.off, self.W, self.V, self.consts, mx, arg)
        return mx, arg

    def tighten(self, lo, hi, xs, xl, thr):
        """``(lo', hi', cut)``: the hull of the counts with ``ψ_k > thr_k``; ``cut_k`` = the largest ψ_k cut off."""
        nlo = np.empty(self.K, dtype=np.int64)
        nhi = np.empty(self.K, dtype=np.int64)
        excl = np.empty(self.K)
        _scan_tighten(self.prob, lo, hi, xs, xl, self.off, self.W, self.V, self.consts,
                      np.asarray(thr, dtype=float), nlo, nhi, excl)
        return nlo, nhi, excl

    def blocks(self, lo, hi, xs, xl):
        """Per community ``(a, b, ub)``: at most :data:`SCAN_EXACT` blocks ``[a_j, b_j]`` and bounds of ψ_k on them."""
        out = []
        for k in range(self.K):
            length = int(hi[k] - lo[k] + 1)
            step = -(-length // SCAN_EXACT)
            a = np.arange(lo[k], hi[k] + 1, step, dtype=np.int64)
            b = np.minimum(a + step - 1, hi[k])
            out.append((a, b, self.model._unit_bound(k, a, b, np.full(a.size, xs[k]), np.full(a.size, xl[k]))))
        return out

    @staticmethod
    def tighten_blocks(lo, hi, bl, thr):
        """``(lo', hi', cut)`` from block bounds: the hull of the blocks with bound ``> thr_k``."""
        lo, hi = lo.copy(), hi.copy()
        cut = np.full(len(bl), -np.inf)
        for k, (a, b, ub) in enumerate(bl):
            keep = np.flatnonzero(ub > thr[k])
            if keep.size == 0:          # cannot happen when Σ M > f* + tol; keep the box as it is
                continue
            mask = np.ones(ub.size, bool)
            mask[keep[0]:keep[-1] + 1] = False
            if np.any(mask):
                cut[k] = float(np.max(ub[mask]))
            lo[k], hi[k] = a[keep[0]], b[keep[-1]]
        return lo, hi, cut


def _split(model: CountModel, blo, bhi):
    """Community and count at which to split a box: where the leakage moves most across it
    (proxy: ``n_k`` × relative width of the count range), at the middle of its range."""
    rel = model.nk * (bhi - blo) / (blo + 1.0)
    k = int(np.argmax(rel))
    return k, int(blo[k] + (bhi[k] - blo[k]) // 2)


def _tighten_search(model: CountModel, lo, hi, tol, deadline, max_nodes, local: bool = True):
    """Best-first branch-and-bound over count boxes with separable bounds and domain tightening.

    At a box ``lo ≤ m ≤ hi`` the bound ``f(m) ≤ Σ_k ψ_k(m_k)`` (:class:`BoxScanner`, the same
    relaxation as :meth:`CountModel.bound`) is *separable*, so with ``S = Σ_k max ψ_k`` and
    incumbent ``f*``, a count ``m_k`` with ``ψ_k(m_k) + S − max ψ_k ≤ f* + tol`` cannot belong
    to a count vector better than ``f* + tol``: the box shrinks to the hull of the surviving
    counts, the ranges ``[x_k(hi), x_k(lo)]`` of the others' effect narrow, and the bound is
    recomputed until nothing moves — first with block bounds while they cut at least a tenth
    of the box, then with the exact scan of every count.  Every cut-off count's bound is
    recorded, so the proven bound is ``max(incumbent, largest bound cut off or pruned)``.  A box
    that survives is split in half along one community.  Returns (best, m, proven, nodes, status).
    """
    sc = model.sc
    scan = BoxScanner(model)
    cand = np.stack([lo, hi, np.clip(sc.below1, lo, hi), np.clip(sc.forced_eq, lo, hi)])
    fc = model.value(cand)
    j = int(np.argmax(fc))
    best, best_m = float(fc[j]), cand[j].copy()
    if local:
        best, best_m = local_search(model, best_m, lo, hi, deadline=deadline)
    pruned_max = -np.inf

    def process(blo, bhi):
        """Tighten a box to a fixpoint; returns (bound, lo, hi), or None when it is pruned."""
        nonlocal best, best_m, pruned_max
        blo, bhi = blo.copy(), bhi.copy()
        exact = False
        while True:
            xs, xl = scan.x_range(blo, bhi)
            if not exact and int(np.max(bhi - blo)) >= SCAN_EXACT:
                bl = scan.blocks(blo, bhi, xs, xl)
                mx = np.array([np.max(ub) for _, _, ub in bl])
            else:
                exact = True
                mx, arg = scan.exact(blo, bhi, xs, xl)
                f = float(model.value(arg[None])[0])
                if f > best:
                    best, best_m = f, arg.copy()
            S = float(mx.sum())
            if S <= best + tol:
                pruned_max = max(pruned_max, S)
                return None
            if np.array_equal(blo, bhi):
                return None     # a single count vector, evaluated above
            if deadline is not None and time.perf_counter() > deadline:
                return S, blo, bhi          # left open with its bound
            thr = best + tol - (S - mx)
            if exact:
                nlo, nhi, cut = scan.tighten(blo, bhi, xs, xl, thr)
            else:
                nlo, nhi, cut = scan.tighten_blocks(blo, bhi, bl, thr)
            c = cut > -np.inf
            if np.any(c):
                pruned_max = max(pruned_max, float(np.max(cut[c] + (S - mx[c]))))
            if not exact:
                # exact scans once the block pass stops paying (less than a tenth cut off)
                exact = int(np.sum(nhi - nlo)) > 0.9 * int(np.sum(bhi - blo))
            elif np.array_equal(nlo, blo) and np.array_equal(nhi, bhi):
                return S, blo, bhi
            blo, bhi = nlo, nhi

    heap = []
    counter = 0
    nodes = 1
    status = Termination.OPTIMAL
    root = process(lo, hi)
    if root is not None:
        heap.append((-root[0], 0, root[1], root[2]))
    while heap:
        nb, _, blo, bhi = heapq.heappop(heap)
        if -nb <= best + tol:
            pruned_max = max(pruned_max, -nb)
            continue
        if deadline is not None and time.perf_counter() > deadline:
            status = Termination.TIME_LIMIT
            heapq.heappush(heap, (nb, 0, blo, bhi))
            break
        if nodes >= max_nodes:
            status = Termination.NODE_LIMIT
            heapq.heappush(heap, (nb, 0, blo, bhi))
            break
        k, mid = _split(model, blo, bhi)
        h1 = bhi.copy()
        h1[k] = mid
        l2 = blo.copy()
        l2[k] = mid + 1
        for clo, chi in ((blo, h1), (l2, bhi)):
            nodes += 1
            out = process(clo, chi)
            if out is not None:
                counter += 1
                heapq.heappush(heap, (-out[0], counter, out[1], out[2]))
    open_max = max((-h[0] for h in heap), default=-np.inf) if status is not Termination.OPTIMAL else -np.inf
    proven = max(best, pruned_max, open_max)
    return best, best_m, proven, nodes, status


def solve_counts(market, problem: str, *, tol: float = 0.0, time_limit: float | None = None,
                 strategy: str = "auto", max_nodes: int = DEFAULT_MAX_NODES, all_optima: bool = False,
                 local_search: bool | None = None, search: str = "tighten"):
    """Optimal count vector of ``problem``; returns a dict (``counts``, ``value``, ``bound``, …).

    ``strategy``: ``"enumerate"`` (every count vector), ``"bnb"`` (branch-and-bound)
    or ``"auto"`` (enumerate when there are at most :data:`ENUMERATE_MAX`).
    ``all_optima`` (enumeration only) adds ``ties``: every count vector within
    ``tol`` of the best (without Lemma 3's restriction, which could hide ties).
    ``local_search``: start the branch-and-bound from the coordinate-ascent incumbent
    (:func:`local_search`); default (``None``): for the first best only — measured
    (``benchmarks/community_k.py``) 1.1–4× less CPU there, 20–30 % more for the other two
    problems, whose root candidates are already optimal.
    ``search``: the branch-and-bound — ``"tighten"`` (default, :func:`_tighten_search`: exact
    separable bounds with domain tightening) or ``"boxes"`` (the previous search,
    :func:`_branch_and_bound`: block bounds, no tightening); both exact within ``tol``.
    """
    t0 = time.perf_counter()
    if local_search is None:
        local_search = problem == "first_best"
    model = CountModel(market, problem)
    deadline = None if time_limit is None else t0 + float(time_limit)
    lo = np.zeros(market.K, dtype=np.int64)
    hi = market.sizes.astype(np.int64).copy()
    if problem == "equilibrium" and not all_optima:
        lo = model.sc.forced_eq.copy()            # Lemma 3 (weakly optimal to share when v <= 1)
    space = int(np.prod((hi - lo + 1).astype(float)))
    if not isinstance(search, str) or search not in ("tighten", "boxes"):
        raise ProblemError(f"search must be 'tighten' or 'boxes', got {search!r}")
    if not isinstance(strategy, str) or strategy not in ("auto", "enumerate", "bnb"):
        raise ProblemError(f"strategy must be 'auto', 'enumerate' or 'bnb', got {strategy!r}")
    # (a string, a float or 0 used to run silently with the value coerced or ignored)
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, numbers.Integral) or max_nodes < 1:
        raise ProblemError(f"max_nodes must be a positive integer, got {max_nodes!r}")
    if not isinstance(local_search, (bool, np.bool_)):
        raise ProblemError(f"local_search must be True, False or None (default), got {local_search!r}")
    use_enum = strategy == "enumerate" or (strategy == "auto" and space <= ENUMERATE_MAX)
    if all_optima and not use_enum:
        raise ProblemError(f"all_optima with method 'community' evaluates every count vector; there are "
                           f"{space} (> {ENUMERATE_MAX}) here — solve without all_optima")
    ties = None
    if use_enum:
        best, m, done, total, ties = _enumerate_counts(model, lo, hi, deadline, tol if all_optima else None)
        if done < total:
            status = Termination.TIME_LIMIT
            bound = float("inf")   # no bound on unvisited count vectors without bounding: use bnb for that
        else:
            status, bound = Termination.OPTIMAL, best
        nodes, used = done, "enumerate"
    else:
        bnb = _tighten_search if search == "tighten" else _branch_and_bound
        best, m, bound, nodes, status = bnb(model, lo, hi, tol, deadline, max_nodes, local=local_search)
        used = "bnb"
    return {"counts": m, "value": best, "bound": bound, "nodes": nodes, "status": status,
            "strategy": used, "evaluations": model.evaluations, "seconds": time.perf_counter() - t0,
            "count_vectors": space, "sorted": model.sc, "ties": ties}


def sweep_values(market, values_rows, problem: str = "equilibrium", *, progress: bool = False):
    """Solve ``problem`` exactly for many value vectors on one covariance (parametric in ``v``).

    Leakage depends on ``Σ`` and the counts only, so ``u(m)`` is computed once
    for every count vector (exhaustive; needs ``Π (n_k + 1) ≤`` :data:`ENUMERATE_MAX`)
    and each row of ``values_rows`` (shape (S, n)) costs only the prefix sums and
    a vectorised ``argmax`` — the same exact search as ``strategy="enumerate"``.
    Everything is vectorised over rows and count vectors (``S × Π(n_k+1)`` arrays).
    Returns a dict of arrays over rows: ``counts`` (S, K), ``objective`` (S,),
    ``surplus`` (S,) (social surplus ``Σ (1 − v) I`` at the optimal profile;
    ``Σ (1 − v) Ĩ`` for ``decorrelated``).  Among tied count vectors the first
    in lexicographic order is returned (as :func:`_enumerate_counts`).
    """
    from dm_opt.core.validate import as_array

    rows = as_array("values_rows", values_rows, ndim=2)
    if rows.shape[1] != market.n:
        raise ProblemError(f"values_rows must have {market.n} columns (one per user), got {rows.shape[1]}")
    if np.any(rows < 0):
        raise ProblemError("values must be >= 0")
    shape = tuple(int(x) + 1 for x in market.sizes)
    total = int(np.prod(np.array(shape, dtype=float)))
    if total > ENUMERATE_MAX:
        raise ProblemError(f"sweep_values enumerates all {total} count vectors (limit {ENUMERATE_MAX}); "
                           f"solve the markets one by one with method='community' instead")
    M = np.stack(np.unravel_index(np.arange(total), shape), axis=1).astype(np.int64)
    U = market.posterior_from_counts(M)[0] - market.delta[None, :]
    S = rows.shape[0]
    K = market.K
    model = CountModel(market, "equilibrium" if problem == "equilibrium" else "first_best")
    d, dl, t2, beta, kappa = model.d, model.delta, model.t2, model.beta, model.kappa
    starts = np.concatenate([[0], np.cumsum(market.sizes)])
    obj = np.zeros((S, total))
    surplus_all = np.zeros((S, total))
    it = range(K)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"sweep {problem}", leave=False, unit="community")
    for k in it:
        # per-row prefix sums of the sorted values of community k: V[r, m] = Σ_{j<m} v_(j)
        vk = np.sort(rows[:, starts[k]:starts[k + 1]], axis=1)
        V = np.concatenate([np.zeros((S, 1)), np.cumsum(vk, axis=1)], axis=1)
        m, u = M[:, k], U[:, k]
        Vm = V[:, m]                                   # (S, T)
        Ws = m[None, :] - Vm                           # Σ_{sharers} (1 − v)
        Wtot = market.sizes[k] - V[:, -1:]             # Σ_all (1 − v), (S, 1)
        Ps, g = sharer_posterior(dl[k], t2[k], u)
        # the φ_k of CountModel (docstring there), with one prefix table per row
        fb = Wtot * beta[k] + Ws * dl[k] ** 2 / d[k] - u[None, :] * (Wtot - kappa[k] * Ws)
        dec = Ws * (market.variance[k] - Ps)[None, :]
        if problem == "equilibrium":
            obj += (market.sizes[k] * (beta[k] - u) + m * (dl[k] ** 2 / d[k] + kappa[k] * u))[None, :] \
                - g[None, :] * Vm
        else:
            obj += fb if problem == "first_best" else dec
        surplus_all += dec if problem == "decorrelated" else fb
    j = np.argmax(obj, axis=1)
    r = np.arange(S)
    return {"counts": M[j], "objective": obj[r, j], "surplus": surplus_all[r, j]}


@register
class CommunityBackend(Backend):
    """Exact count-vector search for :class:`CommunityMarket` (K×K algebra, never n×n)."""

    name = "community"
    problems = frozenset(PROBLEMS)
    general_objectives = False
    supports_all_optima = True
    OPTIONS = ("strategy", "max_nodes", "max_optima", "local_search", "search")

    def run(self, market, objective, *, all_optima, time_limit, constraints, tol, progress, options):
        from dm_opt.gaussian.community import CommunityMarket

        if not isinstance(market, CommunityMarket):
            raise ProblemError("method 'community' needs a CommunityMarket (dm_opt.CommunityMarket)")
        if constraints:
            raise ProblemError("method 'community' does not take side constraints")
        self.check_options(options)
        ref = market.objective(objective.name)
        if ref is not objective and not all(np.array_equal(getattr(ref, f), getattr(objective, f)) for f in "cdek"):
            raise ProblemError("method 'community' solves the named problems only, not custom objectives")
        t0 = time.perf_counter()
        sc = sorted_communities(market)
        t1 = time.perf_counter()
        options = dict(options)
        max_optima = options.pop("max_optima", 4096)
        if isinstance(max_optima, bool) or not isinstance(max_optima, numbers.Integral) or max_optima < 1:
            raise ProblemError(f"max_optima must be a positive integer, got {max_optima!r}")
        with blas_threads():        # the K×K solves are far too small for a threaded BLAS
            out = solve_counts(market, objective.name, tol=tol, time_limit=time_limit, all_optima=all_optima,
                               **options)
        profile = None if out["counts"] is None else sc.profile(out["counts"], market.n)
        if profile is not None:
            profile.setflags(write=False)       # the result keeps it without a copy (frozen_array)
        optima = None
        if all_optima and out["status"] is Termination.OPTIMAL:
            optima = []
            for m in out["ties"]:
                optima += tied_profiles(sc, m, market.n, max_optima - len(optima))
            optima.sort(key=lambda a: int(np.dot(a.astype(np.int64), 1 << np.arange(market.n, dtype=np.int64)))
                        if market.n < 63 else 0)
        msg = ""
        if out["status"] is not Termination.OPTIMAL:
            msg = f"community {out['strategy']} stopped ({out['status']}) after {out['nodes']} nodes"
        return RawSolution(
            profile=profile, status=out["status"], bound=out["bound"], nodes=out["nodes"], optima=optima,
            build_seconds=t1 - t0, solve_seconds=time.perf_counter() - t1, message=msg,
            extra={"counts": None if out["counts"] is None else out["counts"].tolist(),
                   "strategy": out["strategy"], "count_vectors": out["count_vectors"],
                   "evaluations": out["evaluations"], "proven_bound": out["bound"]},
        )
