"""Compiled depth-first branch-and-bound for the Gaussian market (numba).

The search state lives entirely in arrays owned by the caller (the stack, the
incumbent, the counters), and :func:`dfs_chunk` processes at most
``max_nodes`` nodes per call.  Between calls Python checks the time and node
limits, prints progress and can be interrupted (Ctrl-C); because the kernel
only ever writes consistent states into those arrays, the open nodes left on
the stack always describe exactly the part of the tree not yet explored, so
the proven bound at a stop is ``max(incumbent, bounds of the open nodes)``.

A node is a partial profile: ``state[i]`` is 0 (free), 1 (fixed in: ``IN``)
or 2 (fixed out).  It carries the posterior states (:mod:`dm_opt.gaussian.kernels.posterior`:
``diag M``, ``h`` and the rows of the free users — the only rows a later update
reads) at its two extreme completions, ``lo = IN`` and ``hi = IN ∪ FREE``.
Branching on a free user ``u`` needs one update per child: ``u`` in adds her
signal to ``lo`` (exact to a few ulps: add-only); ``u`` out removes it from
``hi``, a downdate whose cancellation is measured
(:func:`~dm_opt.gaussian.kernels.posterior.remove_signal_rows`): when the accumulated factor
exceeds :data:`~dm_opt.gaussian.kernels.posterior.DOWNDATE_AMPLIFICATION_MAX` the child's ``hi``
state is rebuilt fresh.  Own-signal gains are ``x²/h`` with ``h = τ² − P_ii``
carried separately, never ``x²/(τ² − x)``.

Every profile that becomes an incumbent is re-evaluated from a fresh state
(:func:`~dm_opt.gaussian.kernels.posterior.fresh_state`), both for its objective and, with a
budget, for its payments, so pruning compares against exact values.  The
bounds are those of :mod:`dm_opt.gaussian.backends.bounds` (``gaussian_user_bounds``
documents why each is valid); they are written out again here in scalar form
because they run once per node.

The kernels are :class:`~dm_opt.gaussian.kernels.posterior.Kernel` objects: importing this
module does not import numba, and a kernel is compiled (or loaded from numba's cache) when
first called.  Compiling :func:`dfs_chunk` and what it calls takes 20-50 s on a 2-core machine;
so when its compiled code is neither in memory nor in numba's cache, :func:`pick_dfs` hands
the search the same kernel run by the interpreter (:attr:`~dm_opt.gaussian.kernels.posterior.Kernel.python`:
the same source, the same numbers) for up to :data:`PYTHON_SEARCH_SECONDS` per process, and only
a search still running then compiles (the search state lives in the caller's arrays, so it continues
where the interpreter stopped).
"""

from __future__ import annotations

import numpy as np

from dm_opt.gaussian.kernels.posterior import (
    DOWNDATE_AMPLIFICATION_MAX,
    add_signal_rows,
    fresh_state,
    kernel,
    objective_value,
    own_gain,
    remove_signal_rows,
)

#: state codes
FREE, IN, OUT = 0, 1, 2
#: price kinds for the budget constraint
NO_PRICES, EQ_PRICES, DECOR_PRICES = 0, 1, 2
#: Lagrange multipliers of rows are kept within ``LAGRANGE_CAP · (1 + Σ_j |u_j|) / min_j |A_qj|``
#: (:func:`row_lagrange_bound`; any multiplier gives a valid bound, and a single row's useful ones
#: are within ``max|u| / min|A|``): coordinate steps along flat stretches must not drift to
#: magnitudes where the bound's sum loses its digits.
LAGRANGE_CAP = 4.0


@kernel
def _share_max(cd, e, kk, s2, t2, x_min, g_min, x_max, g_max):
    """``max_{x∈[x_min,x_max]} cd·(σ²−x) − e·x²/(τ²−x) − k`` exactly.

    ``g_min = τ² − x_min`` and ``g_max = τ² − x_max`` are passed in (computed without
    cancellation by the caller).  For ``e ≥ 0`` the function is concave (the gain is
    convex), so its maximum is at the clipped stationary point: with
    ``g'(x) = (τ²/(τ²−x))² − 1 = −cd/e``, ``x* = τ²(1 − 1/√(1 − cd/e))`` and
    ``τ² − x* = τ²/√(1 − cd/e)``; for ``e < 0`` it is convex and the maximum is at an endpoint.
    """
    if x_min > x_max:
        x_min = x_max
        g_min = g_max
    if e > 0.0:
        r = -cd / e
        if r <= 0.0:
            x = x_min
            g = g_min
        else:
            q = np.sqrt(1.0 + r)
            x = t2 * (1.0 - 1.0 / q)
            g = t2 / q
            if x < x_min:
                x = x_min
                g = g_min
            if x > x_max:
                x = x_max
                g = g_max
        return cd * (s2 - x) - e * own_gain(x, g) - kk
    if e == 0.0:
        x = x_min if cd >= 0.0 else x_max
        return cd * (s2 - x) - kk
    v1 = cd * (s2 - x_min) - e * own_gain(x_min, g_min) - kk
    v2 = cd * (s2 - x_max) - e * own_gain(x_max, g_max) - kk
    return v1 if v1 > v2 else v2


@kernel
def node_bound(state, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k):
    """Upper bound on the objective over all completions of a node (sum of per-user maxima).

    ``x_lo = diag P(IN)``, ``x_hi = diag P(IN ∪ FREE)``; ``g_lo``/``g_hi`` are the
    states' ``h = τ² − P_ii`` (valid for the sharers of each completion).  Per user ``i``:

    * out: ``c_i I_i`` with ``I_i ∈ [σ²−x_lo, σ²−x_hi]``;
    * in: ``(c_i+d_i)(σ²−x) − e_i g(x) − k_i`` maximised exactly over
      ``x = P_ii ∈ [x_hi, x_lo]``;
    * free: the larger of the sharing case (as "in", with
      ``x ∈ [x_hi, x_lo τ²/(x_lo+τ²)]``: her own signal is then observed) and the
      non-sharing case ``c_i I_i`` with ``P_ii ∈ [τ² x_hi / h_hi, x_lo]``
      (her own signal removed from the top completion).
    """
    total = 0.0
    for i in range(state.shape[0]):
        if state[i] == 0:
            share, noshare = _free_terms(i, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k)
            total += share if share > noshare else noshare
        else:
            total += _fixed_term(i, state[i], x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k)
    return total


@kernel
def _fixed_term(i, si, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k):
    """Fixed user ``i``'s term in :func:`node_bound` (``si``: 1 in, 2 out)."""
    s2 = sig2[i]
    if si == 2:
        return c[i] * (s2 - x_hi[i]) if c[i] > 0.0 else c[i] * (s2 - x_lo[i])
    return _share_max(c[i] + d[i], e[i], k[i], s2, tau2[i], x_hi[i], g_hi[i], x_lo[i], g_lo[i])


@kernel
def _free_terms(i, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k):
    """Free user ``i``'s terms in :func:`node_bound`: (max if she shares, max if she does not)."""
    s2 = sig2[i]
    t2 = tau2[i]
    sx = x_lo[i] + t2
    xs = x_lo[i] * t2 / sx
    gs = t2 * t2 / sx
    share = _share_max(c[i] + d[i], e[i], k[i], s2, t2, x_hi[i], g_hi[i], xs, gs)
    if c[i] > 0.0:
        x_wo = t2 * x_hi[i] / g_hi[i] if g_hi[i] > 0.0 else x_lo[i]
        if x_wo > x_lo[i]:
            x_wo = x_lo[i]
        noshare = c[i] * (s2 - x_wo)
    else:
        noshare = c[i] * (s2 - x_lo[i])
    return share, noshare


@kernel
def interval_parts(state, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k, v_out, v_in):
    """:func:`node_bound` as a function of the free users' choices: returns ``C`` and writes
    ``v_out[j]``, ``v_in[j]`` for free ``j`` so that every completion ``a`` has
    ``f(a) ≤ C + Σ_{j∈FREE} (v_in[j] if a_j else v_out[j])`` (each user's term is at most its
    maximum given her own choice); ``node_bound = C + Σ_j max(v_in[j], v_out[j])``."""
    total = 0.0
    for i in range(state.shape[0]):
        if state[i] == 0:
            v_in[i], v_out[i] = _free_terms(i, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k)
        else:
            total += _fixed_term(i, state[i], x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k)
    return total


@kernel
def _gprime(t2, gap):
    """``g'(x) = (τ²/(τ² − x))² − 1`` from ``gap = τ² − x``."""
    q = t2 / gap
    return q * q - 1.0


@kernel
def modular_bound(state, Qlo, Qhi, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k, work):
    """A second valid bound from Woodbury: modular in the free users' choices
    (:func:`modular_parts`; ``work`` is scratch of shape (3n,))."""
    n = state.shape[0]
    v_in = np.empty(n)
    v_out = np.empty(n)
    total = modular_parts(state, Qlo, Qhi, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k, work, v_out, v_in)
    for j in range(n):
        if state[j] == 0:
            total += max(v_in[j], v_out[j])
    return total


@kernel
def modular_parts(state, Qlo, Qhi, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k, work, v_out, v_in):
    """The modular Woodbury bound as ``C + Σ_{j∈FREE} (v_in[j] if a_j else v_out[j])`` (returns ``C``).

    Removing a set ``R`` of signals from the top completion raises every
    ``P_ii`` by ``P_iR (D_τ,R − P_RR)⁻¹ P_Ri ≥ Σ_{j∈R} α_ij`` with
    ``α_ij = P_ij²/τ_j²`` (as ``D_τ − P_RR ⪯ D_τ``) and, for ``i ∈ R``,
    ``α_ii = P_ii²/(τ_i² − P_ii)`` (her own signal removed first, exactly).
    Adding a set ``A`` to ``IN`` lowers ``P_ii`` by
    ``P_iA (D_τ,A + P_AA)⁻¹ P_Ai ≥ Σ_{j∈A} β_ij``, ``β_ij = P_ij²/(τ_j² + r_j)``
    with ``r_j = Σ_{l∈FREE} |P_jl|`` (Gershgorin: ``P_AA ⪯ diag(r)``).

    Every term of ``f`` that is a concave function of ``x = P_ii`` and
    nonincreasing at ``P_ii(hi)`` (``c_i(σ²−x)`` with ``c_i > 0``; a fixed-in
    user's ``d_i(σ²−x) − e_i g(x)`` with ``e_i ≥ 0`` and slope ``≤ 0``) is at most
    its value at ``P_ii(hi)`` minus ``slope × Σ_{j∈R} α_ij`` (tangent of a concave
    function); symmetrically a term nondecreasing at ``P_ii(lo)`` loses
    ``slope × Σ_{j∈A} β_ij``.  So leaving free ``j`` out costs at least
    ``a_j = Σ_i s⁻_i α_ij`` and taking her in at least ``b_j = Σ_i s⁺_i β_ij``;
    with the free users' sharer terms ``s_j`` bounded as in :func:`node_bound`,
    every completion has
    ``f ≤ C₀ + Σ_{i∈IN} h_i^max + Σ_{j∈FREE} (s_j − b_j if a_j else −a_j)``
    (``C₀``: interval bound of ``Σ c_i I_i``; ``v_in[j] = s_j − b_j``, ``v_out[j] = −a_j``).
    ``Q[j]`` is row ``j`` of the state ``M`` (free ``j``; ``P`` up to signs, only squares enter);
    ``g_lo``/``g_hi`` as in :func:`node_bound`; ``work`` is scratch of shape (3n,).
    """
    n = state.shape[0]
    r_work = work[:n]
    s_hi = work[n:2 * n]      # slope of the terms that fall as P_ii rises above P_ii(hi)
    s_lo = work[2 * n:]       # slope of the terms that fall as P_ii drops below P_ii(lo)
    total = 0.0
    for i in range(n):
        s_hi[i] = 0.0
        s_lo[i] = 0.0
        if c[i] > 0.0:
            total += c[i] * (sig2[i] - x_hi[i])
            s_hi[i] = c[i]
        else:
            total += c[i] * (sig2[i] - x_lo[i])
            s_lo[i] = -c[i]
        if state[i] == 1:
            total += _share_max(d[i], e[i], k[i], sig2[i], tau2[i], x_hi[i], g_hi[i], x_lo[i], g_lo[i])
            if e[i] >= 0.0:
                # h(x) = d(σ²−x) − e g(x) − k is concave; h' = −d − e g'(x)
                dh_hi = -d[i] - e[i] * _gprime(tau2[i], g_hi[i])
                dh_lo = -d[i] - e[i] * _gprime(tau2[i], g_lo[i])
                if dh_hi <= 0.0:
                    s_hi[i] += -dh_hi
                elif dh_lo >= 0.0:
                    s_lo[i] += dh_lo
    for j in range(n):
        if state[j] != 0:
            continue
        r = 0.0
        for l in range(n):
            if state[l] == 0:
                r += abs(Qlo[j, l])
        r_work[j] = r
    for j in range(n):
        if state[j] != 0:
            continue
        t2 = tau2[j]
        a = 0.0
        b = 0.0
        for i in range(n):
            if i == j:
                # j's own sharer terms are in s_j below; only her c-term moves with her choice here
                if c[j] > 0.0:
                    a += c[j] * own_gain(x_hi[j], g_hi[j])
                elif c[j] < 0.0:
                    b -= c[j] * Qlo[j, j] * Qlo[j, j] / (t2 + r_work[j])
                continue
            if s_hi[i] > 0.0:
                a += s_hi[i] * Qhi[j, i] * Qhi[j, i] / t2
            if s_lo[i] > 0.0:
                b += s_lo[i] * Qlo[j, i] * Qlo[j, i] / (t2 + r_work[j])
        sx = x_lo[j] + t2
        sj = _share_max(d[j], e[j], k[j], sig2[j], t2, x_hi[j], g_hi[j], x_lo[j] * t2 / sx, t2 * t2 / sx)
        v_in[j] = sj - b
        v_out[j] = -a
    return total


@kernel
def row_ranges(state, A, act_in, act_min, act_max):
    """Activities of linear rows ``A a`` at a node: ``act_in = A·IN`` and the smallest and
    largest activity over the node's completions (``A`` (m, n); outputs shape (m,))."""
    m, n = A.shape
    for q in range(m):
        s_in = 0.0
        lo = 0.0
        hi = 0.0
        for j in range(n):
            a = A[q, j]
            if state[j] == 1:
                s_in += a
            elif state[j] == 0:
                if a > 0.0:
                    hi += a
                else:
                    lo += a
        act_in[q] = s_in
        act_min[q] = s_in + lo
        act_max[q] = s_in + hi


@kernel
def row_forced(state, A, lo_q, hi_q, act_min, act_max):
    """Bound propagation of rows ``lo_q ≤ A a ≤ hi_q`` at a node whose completions' activities
    span ``[act_min, act_max]``: returns ``(j, v)`` with a free user ``j`` that every feasible
    completion fixes to ``v`` (1 in, 2 out), ``(-1, 0)`` when there is none, ``(-1, -1)`` when
    two rows force a user both ways (no feasible completion).  A free ``j`` moved off her
    row-minimising side raises the smallest activity by ``|A_qj|``, so ``act_min + |A_qj| > hi_q``
    forces that side; symmetrically for ``lo_q``."""
    m, n = A.shape
    for j in range(n):
        if state[j] != 0:
            continue
        want = 0
        for q in range(m):
            a = A[q, j]
            if a == 0.0:
                continue
            v = 0
            if act_min[q] + abs(a) > hi_q[q]:
                v = 2 if a > 0.0 else 1          # the side that minimises row q
            if act_max[q] - abs(a) < lo_q[q]:
                w = 1 if a > 0.0 else 2          # the side that maximises row q
                if v != 0 and v != w:
                    return -1, -1
                v = w
            if v != 0:
                if want != 0 and want != v:
                    return -1, -1
                want = v
        if want != 0:
            return j, want
    return -1, 0


@kernel
def row_lagrange_bound(state, const, v_out, v_in, A, L, U, lam, sweeps, red, pts, wts):
    """Lagrangian bound of a separable node bound under linear rows.

    The node bound says ``f(a) ≤ C + Σ_{j∈FREE} (v_out[j] + u_j a_j)``, ``u_j = v_in[j] − v_out[j]``
    (:func:`interval_parts`, :func:`modular_parts`); feasible completions also satisfy
    ``L ≤ A_F a_F ≤ U`` (the rows minus the fixed-in users' activity; ±inf allowed).  For any
    ``λ`` (``λ_q ≥ 0`` where ``L_q = −inf``, ``≤ 0`` where ``U_q = +inf``) weak duality gives, over
    every ``a_F ∈ [0, 1]^F`` meeting the rows,

        ``Σ u_j a_j ≤ Σ_j max(0, u_j − λᵀA_j) + Σ_q (λ_q U_q if λ_q > 0 else λ_q L_q)``,

    so ``C + Σ v_out + that`` bounds every feasible completion, whatever ``λ`` is.  ``λ`` (``lam``,
    shape (m,), warm start in and result out) is improved by ``sweeps`` rounds of exact
    coordinate minimisation: in ``λ_q`` the dual is convex piecewise linear with breakpoints
    ``(u_j − Σ_{r≠q} λ_r A_rj)/A_qj``, minimised by one sorted slope scan.  Scratch: ``red`` (n,),
    ``pts``/``wts`` (n+1,).
    """
    m, n = A.shape
    base = const
    for j in range(n):
        if state[j] == 0:
            base += v_out[j]
    for q in range(m):
        if L[q] == -np.inf and lam[q] < 0.0:
            lam[q] = 0.0
        if U[q] == np.inf and lam[q] > 0.0:
            lam[q] = 0.0
    # |λ_q| ≤ lam_cap / min_j |A_qj| (any λ is valid; this keeps the sum's round-off small)
    lam_cap = 0.0
    for j in range(n):
        if state[j] == 0:
            lam_cap += abs(v_in[j] - v_out[j])
    lam_cap = LAGRANGE_CAP * (1.0 + lam_cap)
    scale_q = np.empty(m)
    for q in range(m):
        low = np.inf
        for j in range(n):
            if state[j] == 0 and A[q, j] != 0.0 and abs(A[q, j]) < low:
                low = abs(A[q, j])
        scale_q[q] = low if low < np.inf else 1.0
        if lam[q] > lam_cap / scale_q[q]:
            lam[q] = lam_cap / scale_q[q]
        elif lam[q] < -lam_cap / scale_q[q]:
            lam[q] = -lam_cap / scale_q[q]
    for j in range(n):
        if state[j] == 0:
            r = v_in[j] - v_out[j]
            for q in range(m):
                r -= lam[q] * A[q, j]
            red[j] = r
    for _ in range(sweeps):
        for q in range(m):
            if L[q] == -np.inf and U[q] == np.inf:
                continue
            lq = lam[q]
            cnt = 0
            s0 = 0.0
            for j in range(n):
                a = A[q, j]
                if state[j] != 0 or a == 0.0:
                    continue
                pts[cnt] = (red[j] + lq * a) / a
                wts[cnt] = abs(a)
                cnt += 1
                if a > 0.0:
                    s0 -= a
            pts[cnt] = 0.0                 # the cost's kink
            wts[cnt] = 0.0
            cnt += 1
            order = np.argsort(pts[:cnt])
            lo_dom = -np.inf if L[q] > -np.inf else 0.0
            hi_dom = np.inf if U[q] < np.inf else 0.0
            # the minimisers form [first, last]: first = the smallest candidate with right slope ≥ 0,
            # last = the smallest with right slope > 0; take the one nearest 0 (flat stretches would
            # otherwise let λ drift to magnitudes where the sum loses every digit)
            first = np.nan
            last = np.nan
            cum = s0
            for t in range(cnt):
                p = pts[order[t]]
                cum += wts[order[t]]
                if t + 1 < cnt and pts[order[t + 1]] == p:
                    continue
                if p < lo_dom or p > hi_dom:
                    continue
                slope = cum + (U[q] if p >= 0.0 else L[q])
                if slope >= 0.0 and np.isnan(first):
                    first = p
                if slope > 0.0:
                    last = p
                    break
            if np.isnan(first):
                best = lq                      # only without a feasible point (pruned by the ranges)
            else:
                if np.isnan(last):
                    last = first
                best = 0.0 if first <= 0.0 <= last else (first if first > 0.0 else last)
            cap = lam_cap / scale_q[q]
            if best > cap:
                best = cap
            elif best < -cap:
                best = -cap
            if best != lq:
                for j in range(n):
                    if state[j] == 0:
                        red[j] -= (best - lq) * A[q, j]
                lam[q] = best
    total = base
    for j in range(n):
        if state[j] == 0 and red[j] > 0.0:
            total += red[j]
    for q in range(m):
        if lam[q] > 0.0:
            total += lam[q] * U[q]
        elif lam[q] < 0.0:
            total += lam[q] * L[q]
    if not np.isfinite(total):
        return np.inf
    return total


@kernel
def tangent_bound(state, A, B, Bmax):
    """Bound of a node from global linear upper bounds on every user's term.

    ``A`` (2, n), ``B`` (2, n, n): for every profile ``a`` and user ``i`` with ``a_i = s``,
    her term is at most ``A[s, i] + Σ_{j≠i} B[s, i, j] a_j``
    (:func:`dm_opt.gaussian.backends.bounds.tangent_planes`); ``Bmax = max(B[0], B[1])``.
    Summing over users, the cross terms ``B[a_i, i, j] a_i a_j`` of two free users are
    bounded by ``Bmax[i, j] a_j`` (``a_j ≥ 0``), which leaves a function separable in the
    free users' choices: the bound adds, per free ``j``, the larger of 0 and her coefficient.
    """
    n = state.shape[0]
    v_in = np.empty(n)
    v_out = np.empty(n)
    total = tangent_parts(state, A, B, Bmax, v_out, v_in)
    for i in range(n):
        if state[i] == 0 and v_in[i] > 0.0:
            total += v_in[i]
    return total


@kernel
def tangent_parts(state, A, B, Bmax, v_out, v_in):
    """:func:`tangent_bound` as ``C + Σ_{j∈FREE} (v_in[j] if a_j else v_out[j])`` (returns ``C``;
    ``v_out = 0``, ``v_in[j]`` = free ``j``'s coefficient)."""
    n = state.shape[0]
    total = 0.0
    for i in range(n):
        si = state[i]
        if si == 0:
            base = A[0, i]
            alt = A[1, i]
            for j in range(n):
                if state[j] == 1:
                    base += B[0, i, j]
                    alt += B[1, i, j]
            total += base
            w = alt - base
            for r in range(n):
                if r == i:
                    continue
                sr = state[r]
                if sr == 0:
                    w += Bmax[r, i]
                elif sr == 1:
                    w += B[1, r, i]
                else:
                    w += B[0, r, i]
            v_out[i] = 0.0
            v_in[i] = w
        else:
            s = 1 if si == 1 else 0
            val = A[s, i]
            for j in range(n):
                if state[j] == 1:
                    val += B[s, i, j]
            total += val
    return total


@kernel
def choose_branch(state, Qlo, Qhi, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k, work_x, work_g, work_s):
    """Strong branching on bounds: the free user whose two children have the lowest bounds.

    For every free ``j`` the children's diagonals (and ``h``) follow from one row of
    each state (the formulas of :func:`~dm_opt.gaussian.kernels.posterior.add_signal_rows` and
    :func:`~dm_opt.gaussian.kernels.posterior.remove_signal_rows` on the diagonal), so both child
    bounds cost ``O(n)`` and all of them ``O(n²)`` per node — the cost of one
    update.  Score: ``(B − B_in + ε)(B − B_out + ε)`` (product rule); returns
    ``(j, B_in, B_out)`` (child bounds are valid bounds for the children; an "out"
    child whose downdate cancels too much gets the parent's bound instead).
    """
    n = state.shape[0]
    best_j = -1
    best_score = -1.0
    best_in = np.inf
    best_out = np.inf
    parent = node_bound(state, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k)
    eps = 1e-12 * (1.0 + abs(parent))
    for j in range(n):
        if state[j] != 0:
            continue
        t2 = tau2[j]
        work_s[:] = state
        work_s[j] = 1
        s = t2 + x_lo[j]
        for i in range(n):
            q = Qlo[j, i] * Qlo[j, i] / s
            work_x[i] = x_lo[i] - q
            work_g[i] = g_lo[i] + q if state[i] == 1 else g_lo[i]
        work_x[j] = t2 * x_lo[j] / s
        work_g[j] = t2 * t2 / s
        b_in = node_bound(work_s, work_x, work_g, x_hi, g_hi, sig2, tau2, c, d, e, k)
        work_s[j] = 2
        hk = g_hi[j]
        amp = 1.0
        for i in range(n):
            q = Qhi[j, i] * Qhi[j, i] / hk
            work_x[i] = x_hi[i] + q
            work_g[i] = g_hi[i]
            if state[i] != 2 and i != j:
                work_g[i] = g_hi[i] - q
                if work_g[i] <= 0.0:
                    amp = np.inf
                elif g_hi[i] / work_g[i] > amp:
                    amp = g_hi[i] / work_g[i]
        work_x[j] = t2 * x_hi[j] / hk
        if amp <= DOWNDATE_AMPLIFICATION_MAX:
            b_out = node_bound(work_s, x_lo, g_lo, work_x, work_g, sig2, tau2, c, d, e, k)
        else:
            b_out = parent
        if b_in > parent:
            b_in = parent
        if b_out > parent:
            b_out = parent
        score = (parent - b_in + eps) * (parent - b_out + eps)
        if score > best_score:
            best_score = score
            best_j = j
            best_in = b_in
            best_out = b_out
    return best_j, best_in, best_out


@kernel
def _payments(x, g, a_in, sig2, pv, price_kind):
    """Total payments ``Σ_{i∈A} p_i``: Thm 2 (``v_i × own gain``) or Thm 6 (``v_i I_i``)."""
    tot = 0.0
    if price_kind == 0:
        return 0.0
    for i in range(x.shape[0]):
        if a_in[i]:
            if price_kind == 1:
                tot += pv[i] * own_gain(x[i], g[i])
            else:
                tot += pv[i] * (sig2[i] - x[i])
    return tot


@kernel
def fresh_value(S, tau2, sig2, c, d, e, k, a, pv, price_kind):
    """(objective, payments) at profile ``a`` (int8) from a fresh posterior state."""
    M, h, shared = fresh_state(S, tau2, a)
    n = a.shape[0]
    x = np.empty(n)
    for i in range(n):
        x[i] = M[i, i]
    return (objective_value(x, h, shared, sig2, c, d, e, k),
            _payments(x, h, shared, sig2, pv, price_kind))


@kernel
def _try_incumbent(S, tau2, sig2, c, d, e, k, pv, price_kind, budget, budget_tol,
                   state, take_hi, inc_a, inc_val, tmp_a):
    """Re-evaluate the lo (``take_hi`` False) or hi completion exactly; update the incumbent.

    Returns the (possibly new) incumbent value.
    """
    n = state.shape[0]
    for i in range(n):
        if state[i] == 1 or (take_hi and state[i] == 0):
            tmp_a[i] = 1
        else:
            tmp_a[i] = 0
    val, pay = fresh_value(S, tau2, sig2, c, d, e, k, tmp_a, pv, price_kind)
    if pay > budget + budget_tol:
        return inc_val
    if val > inc_val:
        for i in range(n):
            inc_a[i] = tmp_a[i]
        return val
    return inc_val


@kernel
def _fresh_hi(S, tau2, state, Qhi, Dhi, Ghi):
    """Rebuild the ``hi = IN ∪ FREE`` state of a node from scratch (rows of its free users)."""
    n = state.shape[0]
    a = np.zeros(n, dtype=np.int8)
    for i in range(n):
        if state[i] != 2:
            a[i] = 1
    M, h, _ = fresh_state(S, tau2, a)
    for i in range(n):
        Dhi[i] = M[i, i]
        Ghi[i] = h[i]
        if state[i] == 0:
            Qhi[i, :] = M[i, :]


@kernel
def dfs_chunk(S, tau2, sig2, c, d, e, k, order, prefer_in,
              pv, price_kind, budget, budget_tol, budget_slack, min_sh, max_sh,
              st_state, st_Qlo, st_Qhi, st_Dlo, st_Dhi, st_Glo, st_Ghi, st_amp, st_bound, st_pos,
              ctl, inc_a, inc_val_arr, prune_tol, cand_eps, max_nodes, dynamic, use_modular,
              chain_prev, chain_next, plane_A, plane_B, plane_Bmax, plane_slack, chain_median,
              row_A, row_lb, row_ub, row_slack, row_mode, row_lam):
    """Process up to ``max_nodes`` nodes of the depth-first search (state in the arrays).

    ``st_Dlo/st_Dhi[j]`` hold ``diag M`` and ``st_Glo/st_Ghi[j]`` the ``h`` of the states at
    the two extreme completions of open node ``j``, ``st_Qlo/st_Qhi[j, u]`` row ``u`` of
    those states for its free users ``u``; ``st_amp[j]`` the accumulated downdate
    cancellation of its ``hi`` state.  ``ctl[0]`` is the stack size, ``ctl[1]`` the total
    node count; ``st_bound[j]`` is a proven bound on every completion of open node ``j``
    (its parent's bound).  ``prune_tol``: nodes whose bound is ``≤ incumbent + prune_tol``
    are pruned.  ``cand_eps``: a completion is re-evaluated exactly as an incumbent
    candidate only when its carried value exceeds the incumbent by more than this.
    ``budget_slack``: extra slack on the budget for the screens on carried states;
    the final budget check of a candidate is exact (fresh state, ``budget_tol``).
    ``chain_prev/chain_next``: symmetry chains (−1: none); branching a user in also fixes
    in her chain predecessors, out her successors; with ``chain_median`` (static order) a
    user of a chain is replaced by the middle user of her run of free twins.  ``plane_A/B/Bmax`` (shape (q, 2, n),
    (q, 2, n, n), (q, n, n)): ``q`` sets of tangent planes (:func:`tangent_bound`, each
    plus ``plane_slack``); ``q = 0`` disables them.
    ``row_A`` (m, n), ``row_lb``/``row_ub``/``row_slack`` (m,): linear rows ``lb ≤ A a ≤ ub``
    (``m = 0``: none).  A node is pruned when no completion meets them within twice the slack
    (:func:`row_ranges`), branches first on a user they force (:func:`row_forced`: the other
    child is then pruned at once), and offers an extreme completion as an incumbent only if it
    meets them within the slack (the exact check of ``LinearRows.feasible``).  ``row_mode`` 1
    also bounds the node by :func:`row_lagrange_bound` on the interval and modular parts
    (``row_lam`` (2 + q, m): their multipliers, and those of the tangent-plane sets, carried from
    node to node); 0 only prunes.
    """
    n = S.shape[0]
    x_lo = np.empty(n)
    x_hi = np.empty(n)
    g_lo = np.empty(n)
    g_hi = np.empty(n)
    in_lo = np.zeros(n, dtype=np.bool_)
    in_hi = np.zeros(n, dtype=np.bool_)
    sh = np.zeros(n, dtype=np.bool_)
    tmp_a = np.zeros(n, dtype=np.int8)
    work_x = np.empty(n)
    work_g = np.empty(n)
    work_s = np.empty(n, dtype=np.int8)
    r_work = np.empty(3 * n)
    free_rows = np.empty(n, dtype=np.int64)
    users = np.arange(n)
    n_cons = row_A.shape[0]
    act_in = np.empty(n_cons)
    act_min = np.empty(n_cons)
    act_max = np.empty(n_cons)
    lo2 = np.empty(n_cons)
    hi2 = np.empty(n_cons)
    res_lo = np.empty(n_cons)
    res_hi = np.empty(n_cons)
    for q in range(n_cons):
        lo2[q] = row_lb[q] - 2.0 * row_slack[q]
        hi2[q] = row_ub[q] + 2.0 * row_slack[q]
    v_in = np.empty(n)
    v_out = np.empty(n)
    red = np.empty(n)
    pts = np.empty(n + 1)
    wts = np.empty(n + 1)
    inc_val = inc_val_arr[0]
    processed = 0
    while ctl[0] > 0 and processed < max_nodes:
        sp = ctl[0] - 1
        processed += 1
        ctl[1] += 1
        state = st_state[sp]
        Qlo = st_Qlo[sp]
        Qhi = st_Qhi[sp]
        n_in = 0
        n_free = 0
        for i in range(n):
            x_lo[i] = st_Dlo[sp, i]
            x_hi[i] = st_Dhi[sp, i]
            g_lo[i] = st_Glo[sp, i]
            g_hi[i] = st_Ghi[sp, i]
            in_lo[i] = state[i] == 1
            in_hi[i] = state[i] != 2
            if state[i] == 1:
                n_in += 1
            elif state[i] == 0:
                n_free += 1
        # the node is consumed now; children (if any) are written back at sp, sp+1
        ctl[0] = sp
        if n_in > max_sh or n_in + n_free < min_sh:
            continue
        if price_kind != 0:
            # payments of IN are smallest at the top completion (Prop 2: prices
            # nonincreasing in the sharing set) for Thm 2 prices, and at IN for Thm 6 prices
            lb = 0.0
            for i in range(n):
                if state[i] == 1:
                    if price_kind == 1:
                        lb += pv[i] * own_gain(x_hi[i], g_hi[i])
                    else:
                        lb += pv[i] * (sig2[i] - x_lo[i])
            if lb > budget + budget_tol + budget_slack:
                continue
        only_lo = n_in == max_sh
        only_hi = n_in + n_free == min_sh
        lo_rows_ok = True
        hi_rows_ok = True
        forced = -1
        forced_val = 0
        if n_cons > 0:
            row_ranges(state, row_A, act_in, act_min, act_max)
            dead = False
            for q in range(n_cons):
                if act_min[q] > hi2[q] or act_max[q] < lo2[q]:
                    dead = True
                act_hi = act_min[q] + act_max[q] - act_in[q]
                if act_in[q] < row_lb[q] - row_slack[q] or act_in[q] > row_ub[q] + row_slack[q]:
                    lo_rows_ok = False
                if act_hi < row_lb[q] - row_slack[q] or act_hi > row_ub[q] + row_slack[q]:
                    hi_rows_ok = False
            if dead:
                continue
            forced, forced_val = row_forced(state, row_A, lo2, hi2, act_min, act_max)
            if forced_val < 0:
                continue
        # the two extreme completions are profiles: try them as incumbents
        if n_in >= min_sh and not only_hi and lo_rows_ok:
            f_lo = objective_value(x_lo, g_lo, in_lo, sig2, c, d, e, k)
            if f_lo > inc_val + cand_eps:
                pay = 0.0 if price_kind == 0 else _payments(x_lo, g_lo, in_lo, sig2, pv, price_kind)
                if pay <= budget + budget_tol + budget_slack:
                    inc_val = _try_incumbent(S, tau2, sig2, c, d, e, k, pv, price_kind, budget, budget_tol,
                                             state, False, inc_a, inc_val, tmp_a)
        if n_free > 0 and n_in + n_free <= max_sh and not only_lo and hi_rows_ok:
            f_hi = objective_value(x_hi, g_hi, in_hi, sig2, c, d, e, k)
            if f_hi > inc_val + cand_eps:
                pay = 0.0 if price_kind == 0 else _payments(x_hi, g_hi, in_hi, sig2, pv, price_kind)
                if pay <= budget + budget_tol + budget_slack:
                    inc_val = _try_incumbent(S, tau2, sig2, c, d, e, k, pv, price_kind, budget, budget_tol,
                                             state, True, inc_a, inc_val, tmp_a)
        if n_free == 0 or only_lo or only_hi:
            continue
        c_int = interval_parts(state, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k, v_out, v_in)
        bound = c_int
        for j in range(n):
            if state[j] == 0:
                bound += max(v_in[j], v_out[j])
        if bound <= inc_val + prune_tol:
            continue
        if row_mode == 1 and n_cons > 0:
            for q in range(n_cons):
                res_lo[q] = lo2[q] - act_in[q]
                res_hi[q] = hi2[q] - act_in[q]
            b2 = row_lagrange_bound(state, c_int, v_out, v_in, row_A, res_lo, res_hi, row_lam[0], 3, red, pts, wts)
            if b2 < bound:
                bound = b2
            if bound <= inc_val + prune_tol:
                continue
        if use_modular:
            c_mod = modular_parts(state, Qlo, Qhi, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k, r_work,
                                  v_out, v_in)
            b2 = c_mod
            for j in range(n):
                if state[j] == 0:
                    b2 += max(v_in[j], v_out[j])
            if b2 < bound:
                bound = b2
            if bound <= inc_val + prune_tol:
                continue
            if row_mode == 1 and n_cons > 0:
                b2 = row_lagrange_bound(state, c_mod, v_out, v_in, row_A, res_lo, res_hi, row_lam[1], 3, red, pts,
                                        wts)
                if b2 < bound:
                    bound = b2
                if bound <= inc_val + prune_tol:
                    continue
        for q in range(plane_A.shape[0]):
            c_tan = tangent_parts(state, plane_A[q], plane_B[q], plane_Bmax[q], v_out, v_in) + plane_slack
            b3 = c_tan
            for j in range(n):
                if state[j] == 0 and v_in[j] > 0.0:
                    b3 += v_in[j]
            if b3 < bound:
                bound = b3
            if row_mode == 1 and n_cons > 0 and bound > inc_val + prune_tol:
                b3 = row_lagrange_bound(state, c_tan, v_out, v_in, row_A, res_lo, res_hi, row_lam[2 + q], 3, red,
                                        pts, wts)
                if b3 < bound:
                    bound = b3
        if bound <= inc_val + prune_tol:
            continue
        if bound > st_bound[sp]:
            bound = st_bound[sp]        # the parent's bound is valid here too
        pos = st_pos[sp]
        b_in = bound
        b_out = bound
        if forced >= 0:
            # a user the rows force: the other child holds no feasible profile and is pruned at once
            u = forced
            first_in = forced_val == 1
        elif dynamic:
            u, b_in, b_out = choose_branch(state, Qlo, Qhi, x_lo, g_lo, x_hi, g_hi, sig2, tau2, c, d, e, k,
                                           work_x, work_g, work_s)
            first_in = b_in >= b_out
        else:
            while state[order[pos]] != 0:
                pos += 1
            u = order[pos]
            if chain_median and (chain_prev[u] >= 0 or chain_next[u] >= 0):
                # branch on the middle of u's run of free twins: both children halve the run
                head = u
                while chain_prev[head] >= 0 and state[chain_prev[head]] == 0:
                    head = chain_prev[head]
                run = 0
                w = head
                while w >= 0 and state[w] == 0:
                    run += 1
                    w = chain_next[w]
                w = head
                for _ in range(run // 2):
                    w = chain_next[w]
                u = w
            first_in = prefer_in[u]
        # child popped first goes on top (slot sp+1, a copy); the other reuses slot sp in place
        top = sp + 1
        n_rows = 0
        for i in range(n):
            st_state[top, i] = state[i]
            st_Dlo[top, i] = st_Dlo[sp, i]
            st_Dhi[top, i] = st_Dhi[sp, i]
            st_Glo[top, i] = st_Glo[sp, i]
            st_Ghi[top, i] = st_Ghi[sp, i]
            if state[i] == 0:
                st_Qlo[top, i, :] = Qlo[i, :]
                st_Qhi[top, i, :] = Qhi[i, :]
                if i != u:
                    free_rows[n_rows] = i
                    n_rows += 1
        st_amp[top] = st_amp[sp]
        in_slot = top if first_in else sp
        out_slot = sp if first_in else top
        # "u in": add her signal to the lo state (sharers of lo: IN)
        for i in range(n):
            sh[i] = state[i] == 1
        add_signal_rows(st_Dlo[in_slot], st_Glo[in_slot], st_Qlo[in_slot], free_rows, n_rows, users, sh, u, u,
                        tau2, work_x)
        # "u out": remove it from the hi state (sharers of hi: IN ∪ FREE), rebuilt if it cancels
        for i in range(n):
            sh[i] = state[i] != 2
        amp = remove_signal_rows(st_Dhi[out_slot], st_Ghi[out_slot], st_Qhi[out_slot], free_rows, n_rows, users,
                                 sh, u, u, tau2, work_x)
        st_state[in_slot, u] = 1
        st_state[out_slot, u] = 2
        # symmetry chains (twins ordered by dominance): u in => her dominating twins in,
        # u out => her dominated twins out
        p = chain_prev[u]
        while p >= 0:
            if state[p] == 0:
                for i in range(n):
                    sh[i] = st_state[in_slot, i] == 1
                add_signal_rows(st_Dlo[in_slot], st_Glo[in_slot], st_Qlo[in_slot], free_rows, n_rows, users, sh,
                                p, p, tau2, work_x)
                st_state[in_slot, p] = 1
            p = chain_prev[p]
        p = chain_next[u]
        while p >= 0:
            if state[p] == 0:
                for i in range(n):
                    sh[i] = st_state[out_slot, i] != 2
                amp *= remove_signal_rows(st_Dhi[out_slot], st_Ghi[out_slot], st_Qhi[out_slot], free_rows, n_rows,
                                          users, sh, p, p, tau2, work_x)
                st_state[out_slot, p] = 2
            p = chain_next[p]
        st_amp[out_slot] *= amp
        if not st_amp[out_slot] <= DOWNDATE_AMPLIFICATION_MAX:
            _fresh_hi(S, tau2, st_state[out_slot], st_Qhi[out_slot], st_Dhi[out_slot], st_Ghi[out_slot])
            st_amp[out_slot] = 1.0
        st_bound[in_slot] = b_in
        st_bound[out_slot] = b_out
        # order[pos] is fixed in both children unless a chain's middle user was branched on
        nxt = pos + 1 if (dynamic or (forced < 0 and order[pos] == u)) else pos
        st_pos[sp] = nxt
        st_pos[top] = nxt
        ctl[0] = sp + 2
    inc_val_arr[0] = inc_val
    return processed


#: With a cold numba cache the searches of a process run in the interpreter for at most this many
#: seconds in all before :func:`dfs_chunk` is compiled (first searches that end sooner compile
#: nothing); 0 compiles at once (``dm-opt warmup``).
PYTHON_SEARCH_SECONDS = 5.0
#: ... and only up to this many users (a node costs O(n²) interpreted operations).
PYTHON_SEARCH_MAX_N = 64
#: interpreted search seconds spent so far in this process (all searches)
_PYTHON_SPENT = [0.0]


def pick_dfs(chunk, n: int, *, threads: bool = False):
    """``(run, python_seconds)``: the chunk kernel a search of ``n`` users should call first.

    ``chunk`` is :func:`dfs_chunk` (or a stand-in, which is returned as is).  When the compiled
    kernel is neither loaded in this process nor in numba's on-disk cache
    (:meth:`~dm_opt.gaussian.kernels.posterior.Kernel.cached`), ``n ≤`` :data:`PYTHON_SEARCH_MAX_N`,
    the search is not one of several threads (``threads``: the interpreter holds the GIL) and the
    process has interpreted searches for less than :data:`PYTHON_SEARCH_SECONDS` so far, returns
    ``(chunk.python, seconds left)``: run it for that long, then call ``chunk`` (compiled) on the
    same arrays.  Otherwise ``(chunk, None)``.  A rent-or-buy rule: a process pays at most
    :data:`PYTHON_SEARCH_SECONDS` of interpreted search before it pays the compilation."""
    import time

    from dm_opt.gaussian.kernels.posterior import Kernel

    left = PYTHON_SEARCH_SECONDS - _PYTHON_SPENT[0]
    if (not isinstance(chunk, Kernel) or threads or n > PYTHON_SEARCH_MAX_N or not left > 0
            or chunk.compiled or chunk.cached()):
        return chunk, None
    python = chunk.python

    def interpreted(*args):
        t0 = time.perf_counter()
        try:
            return python(*args)
        finally:
            _PYTHON_SPENT[0] += time.perf_counter() - t0

    return interpreted, left
