"""The one home of the Gaussian posterior arithmetic (AMMO §2.2, Thm 2 eq. 5; docs/spec.md §1.1).

Every leakage and own-signal gain dm_opt reports — the exact evaluation of a
profile, the enumeration walk, branch-and-bound nodes, user equilibria, the
oracle markets — comes from the functions here.

Why a representation of its own
-------------------------------
The textbook forms lose every digit when a user's noise is small relative to
her variance (``r_i = τ_i²/σ_i²`` tiny): a sharer's posterior variance is then
``P_ii ≈ τ_i²`` and the own-signal gain ``g_i = P_ii²/(τ_i² − P_ii)`` divides by
a difference of two nearly equal numbers, while ``P_ii`` itself comes out of
``σ² − (…)`` with an absolute error of a few ulps of ``σ²``.  At ``r = 1e-8`` the
gain is pure round-off.  The covariance *downdate* (removing a signal,
``P + P_{:k}P_{k:}/(τ_k² − P_kk)``) has the same cancellation.

So the state of a sharing set ``A`` is kept in the *mixed* form

* ``M`` (n×n): the posterior covariance of ``W`` given ``S_A``, where
  ``W_i = Z_i`` (her noise) for a sharer and ``W_i = X_i`` for a non-sharer.
  Since ``X_i = S_i − Z_i`` with ``S_i`` observed, ``M`` equals the posterior
  covariance ``P`` up to the signs of the sharers' rows and columns — the same
  numbers — but a sharer's row is computed at its own scale ``τ_i``, never as a
  small difference of ``σ``-sized numbers;
* ``h`` (n,): for a sharer ``h_i = τ_i² − P_ii = τ_i⁴ (C⁻¹)_ii`` with
  ``C = Σ_AA + diag τ²_A`` (undefined for non-sharers), accumulated as a sum of
  positive terms.

Adding a signal (``k`` starts sharing), with ``s = M_kk + τ_k²`` (a sum) and
``m = M_{:k}`` (the old column)::

    M_ij ← M_ij − m_i m_j / s            (i, j ≠ k)
    M_kj ← −τ_k² m_j / s,   M_kk ← τ_k² m_k / s
    h_i  ← h_i + m_i² / s   (sharers i ≠ k),   h_k ← τ_k⁴ / s

Every step is a Schur-complement step (as in Cholesky) or a sum of positive
terms, so the state is accurate to a few ulps times the number of steps, row by
row at each row's own scale.  Then for every user

    leakage      I_i(a) = σ_i² − M_ii
    own gain     I_i(a) − I_i(a_{−i}, 0) = M_ii² / h_i       (sharers; = P'²/(P'+τ²))
    leave-own-out variance  P'_i = τ_i² M_ii / h_i           (sharers)

with no cancelling difference.  *Removing* a signal is never done by a
downdate: the searches keep the states of their ancestors (depth-first, add
only) and a fresh state is built by adds from the prior.

Accuracy (docs/spec.md §1.1): the relative accuracy of what is computed here is
governed by the conditioning of the scaled signal covariance, bounded up front
by :func:`signal_condition`; markets beyond :data:`MAX_SIGNAL_CONDITION` are
refused at construction.

Compiled lazily, small sizes in NumPy
-------------------------------------
The kernels are :class:`Kernel` objects, not numba dispatchers: importing this module (and
so ``dm_opt.GaussianMarket``) does not import numba.  A kernel is compiled (``njit(cache=True,
nogil=True)``, or loaded from numba's cache) the first time it is called with a size its NumPy
twin does not take, or the first time another compiled kernel refers to it (numba types it
through ``_numba_type_``: kernels call each other exactly as dispatchers do).  The NumPy twins
of :func:`fresh_state`, :func:`leak_own` and :func:`fresh_objective` (and the all-profiles
walk :func:`all_profile_states` for small enumerations) repeat the compiled arithmetic operation
for operation — the same products, quotients and differences, the same order of the sums, no
fused multiply-adds — so they return the same numbers bit for bit
(tests/gaussian/test_first_call.py checks it on seeded markets).  They run when ``n ≤``
:data:`NUMPY_MAX_N` for the first :data:`NUMPY_CALLS` calls of a kernel from Python (a first
solve, an evaluation, a report pays no compilation); afterwards a kernel in steady use is
compiled, which is faster per call.  :func:`compile_timer` measures the seconds spent importing
numba for the kernels, compiling and loading them from the cache.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import time
import types

import numpy as np

#: NumPy twins are used up to this n (single-profile kernels).
NUMPY_MAX_N = 64
#: ... for the first this many calls of a kernel from Python; then it is compiled.
NUMPY_CALLS = 256
#: Exhaustive enumeration walks every profile in NumPy (no compilation) up to this n.
SMALL_N = 12

_JIT_LOCK = threading.RLock()
_CLOCK_LOCK = threading.Lock()
#: process totals: seconds importing numba for the kernels + under numba's compiler lock
_CLOCK = {"seconds": 0.0, "depth": 0, "t0": 0.0}
_LISTENING = [False]


def _add_seconds(dt: float) -> None:
    with _CLOCK_LOCK:
        _CLOCK["seconds"] += dt


def _listen() -> None:
    """Install (once) a numba event listener adding the time spent under numba's compiler lock
    (compiling, and loading compiled kernels from the on-disk cache) to the process clock."""
    if _LISTENING[0]:
        return
    with _JIT_LOCK:
        if _LISTENING[0]:
            return
        from numba.core import event

        class _CompileClock(event.Listener):
            def on_start(self, ev):
                with _CLOCK_LOCK:
                    if _CLOCK["depth"] == 0:
                        _CLOCK["t0"] = time.perf_counter()
                    _CLOCK["depth"] += 1

            def on_end(self, ev):
                with _CLOCK_LOCK:
                    if _CLOCK["depth"] == 0:       # started before the listener was installed
                        return
                    _CLOCK["depth"] -= 1
                    if _CLOCK["depth"] == 0:
                        _CLOCK["seconds"] += time.perf_counter() - _CLOCK["t0"]

        event.register("numba:compiler_lock", _CompileClock())
        _LISTENING[0] = True


def _numba():
    """numba, imported on first need (the import is counted as compile time) with the clock installed."""
    if "numba" not in sys.modules:
        t0 = time.perf_counter()
        import numba

        _add_seconds(time.perf_counter() - t0)
    import numba

    _listen()
    return numba


def jit_seconds() -> float:
    """Seconds this process has spent so far importing numba for the kernels and compiling or
    cache-loading compiled code (all threads; from the first kernel compiled on)."""
    if "numba" in sys.modules:
        _listen()
    with _CLOCK_LOCK:
        extra = time.perf_counter() - _CLOCK["t0"] if _CLOCK["depth"] else 0.0
        return _CLOCK["seconds"] + extra


@contextlib.contextmanager
def compile_timer():
    """``with compile_timer() as t: ...`` then ``t["seconds"]``: the compile / cache-load seconds
    (:func:`jit_seconds`) spent inside the block — what a solve should report apart from its
    solve time.  Counts every thread of the process (the block's worker threads included)."""
    rec = {"seconds": 0.0}
    start = jit_seconds()
    try:
        yield rec
    finally:
        rec["seconds"] = max(0.0, jit_seconds() - start)


class Kernel:
    """A kernel compiled with ``numba.njit(cache=True, nogil=True)`` on first need.

    Called from Python it runs its NumPy twin (``numpy=``, taking the same arguments) while
    ``use_numpy(*args)`` allows it, otherwise the compiled function.  Inside compiled code it is
    the compiled function (numba types it by ``_numba_type_``).  ``py_func`` is the plain Python
    source, ``jit`` the numba dispatcher (compiled on first access).
    """

    def __init__(self, py_func, numpy=None, use_numpy=None):
        functools.update_wrapper(self, py_func)
        self.py_func = py_func
        self.numpy = numpy
        self._use_numpy = use_numpy
        self._jit = None
        self._python = None
        self.calls = 0

    @property
    def compiled(self) -> bool:
        """Whether this process holds compiled code of the kernel (compiled, or loaded from the cache)."""
        return self._jit is not None and bool(self._jit.overloads)

    def cached(self) -> bool:
        """Whether numba's on-disk cache holds this kernel for the current source (no numba import:
        :func:`dm_opt.core.numba_cache.has_cache_index`; a cheap, conservative guess)."""
        from dm_opt.core.numba_cache import has_cache_index

        return has_cache_index(self.py_func)

    def without_compile(self):
        """This kernel if its compiled code is loaded or in numba's cache, else :attr:`python`."""
        return self if self.compiled or self.cached() else self.python

    @property
    def python(self):
        """The kernel as plain Python, without numba: the code of ``py_func`` run by the interpreter,
        with every kernel it calls replaced by that kernel's ``python`` (its NumPy twin where it has one
        and takes the arguments: the same numbers bit for bit).  The same source as the compiled
        kernel, so the same operations in the same order (numba compiles without fused
        multiply-adds or reassociation): the same numbers, 100-1000 times slower per call, and no
        compilation.  Used for first calls of a cold cache (:func:`dm_opt.gaussian.kernels.bnb.pick_dfs`)."""
        if self._python is None:
            with _JIT_LOCK:
                g = _plain_globals(self.py_func.__globals__)
                if self._python is None:          # (building ``g`` may have built this one already)
                    self._python = _plain_function(self, g)
        return self._python

    @property
    def jit(self):
        if self._jit is None:
            with _JIT_LOCK:
                if self._jit is None:
                    numba = _numba()
                    self._jit = numba.njit(cache=True, nogil=True)(self.py_func)
        return self._jit

    @property
    def _numba_type_(self):
        from numba.core import types

        return types.Dispatcher(self.jit)

    def __call__(self, *args):
        if self.numpy is not None and self.calls < NUMPY_CALLS and self._use_numpy(*args):
            self.calls += 1
            return self.numpy(*args)
        return self.jit(*args)

    def __repr__(self) -> str:
        state = "compiled" if self._jit is not None else "not compiled"
        return f"<dm_opt kernel {self.__qualname__} ({state})>"


#: id(module globals) -> the same globals with every Kernel replaced by its plain-Python version
_PLAIN_GLOBALS: dict = {}


def _plain_globals(g: dict) -> dict:
    """A copy of a module's globals in which every :class:`Kernel` is its :attr:`Kernel.python` (built
    once per module; registered before it is filled, so kernels that call each other terminate)."""
    out = _PLAIN_GLOBALS.get(id(g))
    if out is None:
        out = _PLAIN_GLOBALS[id(g)] = dict(g)
        for name, value in g.items():
            if isinstance(value, Kernel):
                out[name] = value.python
    return out


def _plain_function(kern: Kernel, g: dict):
    f = kern.py_func
    body = types.FunctionType(f.__code__, g, f.__name__, f.__defaults__, f.__closure__)
    functools.update_wrapper(body, f)
    if kern.numpy is None:
        return body
    twin, use = kern.numpy, kern._use_numpy

    def plain(*args):
        return twin(*args) if use(*args) else body(*args)

    functools.update_wrapper(plain, f)
    return plain


def kernel(py_func=None, *, numpy=None, use_numpy=None):
    """Decorator: ``@kernel`` (compiled only) or ``@kernel(numpy=f, use_numpy=pred)``."""
    if py_func is None:
        return functools.partial(kernel, numpy=numpy, use_numpy=use_numpy)
    return Kernel(py_func, numpy, use_numpy)


def _small_matrix(S, *args) -> bool:
    return S.shape[0] <= NUMPY_MAX_N

#: Largest bound on the condition number of the scaled signal covariance (see
#: :func:`signal_condition`) for which dm_opt guarantees objectives within 1e-9 × the
#: objective's scale; markets beyond it are refused (InstanceError) at construction.
#: Measured (50-digit oracle, random Σ with condition numbers 1e8–1e16 and noise ratios
#: 1e-6–1e-14, n = 5, every profile): worst leakage/own-gain error 1.6e-13 × Σ σ_i² up to
#: κ = 1e14; the limit keeps two orders of magnitude in hand.
MAX_SIGNAL_CONDITION = 1e12


def signal_condition(cov: np.ndarray, noise_var: np.ndarray) -> float:
    """Upper bound on the condition number of ``D^{-1/2}(Σ_AA + diag τ²_A)D^{-1/2}`` over all ``A``.

    ``D = diag Σ``.  With ``R = D^{-1/2} Σ D^{-1/2}`` (the correlation matrix) and
    ``r_i = τ_i²/σ_i²`` (noise ratios), every scaled signal covariance is a
    principal submatrix of ``R + diag r``, whose eigenvalues lie in
    ``[λ_min(R) + min r, λ_max(R) + max r]`` (Weyl; Cauchy interlacing for the
    submatrices).  ``λ_min(R)`` is taken conservatively as its computed value
    less ``n·eps·λ_max(R)`` (the eigensolver's absolute error).
    """
    s = np.sqrt(np.diag(cov))
    R = cov / s[:, None] / s[None, :]
    lam = np.linalg.eigvalsh(R)
    n = cov.shape[0]
    lam_max = float(lam[-1])
    lam_min = max(float(lam[0]) - n * np.finfo(float).eps * lam_max, 0.0)
    r = noise_var / np.diag(cov)
    lo = lam_min + float(np.min(r))
    if lo <= 0.0:
        return float("inf")
    return (lam_max + float(np.max(r))) / lo


@kernel
def add_signal_upper(M, h, shared, k, tau2):
    """:func:`add_signal` on the upper triangle of ``M`` only (``M_ij``, ``i ≤ j``; the lower is left stale).

    The same products and differences as a full update, row by row over contiguous memory (the
    lower triangle is then mirrored in tiles by :func:`add_signal`, not written column-wise
    element by element).  A chain of adds is :func:`add_signals_block`, the same arithmetic.
    """
    n = M.shape[0]
    m = np.empty(n)
    for j in range(k):
        m[j] = M[j, k]
    for j in range(k, n):
        m[j] = M[k, j]
    s = m[k] + tau2[k]
    t = tau2[k] / s
    for i in range(n):
        if i == k:
            continue
        fi = m[i] / s
        if shared[i]:
            h[i] += m[i] * fi
        lo = i if i > k else k + 1
        for j in range(i, k):
            M[i, j] -= fi * m[j]
        for j in range(lo, n):
            M[i, j] -= fi * m[j]
    for j in range(k):
        M[j, k] = -t * m[j]
    for j in range(k + 1, n):
        M[k, j] = -t * m[j]
    M[k, k] = t * m[k]
    h[k] = tau2[k] * t
    shared[k] = True


@kernel
def mirror_upper(M):
    """``M_ji ← M_ij`` for ``i < j`` in cache-sized tiles (after :func:`add_signal_upper`)."""
    n = M.shape[0]
    b = 64
    for i0 in range(0, n, b):
        for j0 in range(i0, n, b):
            for j in range(j0, min(j0 + b, n)):
                for i in range(i0, min(i0 + b, j)):
                    M[j, i] = M[i, j]


@kernel
def add_signal(M, h, shared, k, tau2):
    """User ``k`` (not sharing) starts sharing: update the state ``(M, h)`` in place (O(n²)).

    The upper triangle by :func:`add_signal_upper`, then the lower mirrored (``M`` stays exactly
    symmetric)."""
    add_signal_upper(M, h, shared, k, tau2)
    mirror_upper(M)


@kernel
def add_signal_rows(D, h, Q, rows, n_rows, users, shared, k, kq, tau2, m):
    """:func:`add_signal` restricted to ``diag M`` (``D``), ``h`` and some rows of ``M``.

    ``Q`` holds rows of ``M``: ``Q[q]`` is row ``users[q]``; the rows ``rows[:n_rows]``
    are updated (if ``kq``, the row of user ``k``, is among them it becomes her new
    noise row).  Costs ``O(n · n_rows)``: the searches only read the rows of users
    still to be decided, so they carry those instead of the whole matrix.  ``m`` is
    scratch of shape (n,) (no allocation in the hot loop).
    """
    n = D.shape[0]
    for j in range(n):
        m[j] = Q[kq, j]
    s = m[k] + tau2[k]
    t = tau2[k] / s
    for i in range(n):
        if i == k:
            continue
        fi = m[i] / s
        if shared[i]:
            h[i] += m[i] * fi
        D[i] -= fi * m[i]
    for r in range(n_rows):
        q = rows[r]
        if q == kq:
            for j in range(n):
                Q[q, j] = -t * m[j]
            Q[q, k] = t * m[k]
            continue
        fu = m[users[q]] / s
        for j in range(n):
            if j != k:
                Q[q, j] -= fu * m[j]
        Q[q, k] = -t * m[users[q]]
    D[k] = t * m[k]
    h[k] = tau2[k] * t
    shared[k] = True


@kernel
def remove_signal_rows(D, h, Q, rows, n_rows, users, shared, k, kq, tau2, m):
    """User ``k`` (sharing) stops sharing: the inverse of :func:`add_signal_rows`.

    A downdate: for every other sharer ``h_i ← h_i − m_i²/h_k`` may cancel.  Returns
    the largest cancellation factor ``h_i(old)/h_i(new)`` (≥ 1): the relative error of
    the state grows by about that factor, so callers rebuild the state fresh when the
    product of these factors gets large (:data:`DOWNDATE_AMPLIFICATION_MAX`).  ``m`` is
    scratch of shape (n,).
    """
    n = D.shape[0]
    for j in range(n):
        m[j] = Q[kq, j]
    hk = h[k]
    t2 = tau2[k]
    amp = 1.0
    for i in range(n):
        if i == k:
            continue
        fi = m[i] / hk
        if shared[i]:
            old = h[i]
            h[i] = old - m[i] * fi
            if h[i] <= 0.0:
                amp = np.inf
            elif old / h[i] > amp:
                amp = old / h[i]
        D[i] += fi * m[i]
    for r in range(n_rows):
        q = rows[r]
        if q == kq:
            for j in range(n):
                Q[q, j] = -t2 * m[j] / hk
            Q[q, k] = t2 * m[k] / hk
            continue
        fu = m[users[q]] / hk
        for j in range(n):
            if j != k:
                Q[q, j] += fu * m[j]
        Q[q, k] = -t2 * m[users[q]] / hk
    D[k] = t2 * m[k] / hk
    h[k] = 0.0
    shared[k] = False
    return amp


#: Largest accumulated cancellation factor of downdates before a state is rebuilt fresh
#: (the state then keeps about 16 − 3 = 13 significant digits).
DOWNDATE_AMPLIFICATION_MAX = 1e3


#: Signals a fresh state adds per pass over ``M`` (:func:`add_signals_block`).
FRESH_BLOCK = 32


@kernel
def add_signals_block(M, h, shared, ks, nk, pivot, tau2, R, F, Mm):
    """Add the signals of users ``ks[:nk]`` (in this order) to the upper triangle of ``M`` in one pass.

    Bit for bit the ``nk`` calls of :func:`add_signal_upper` (every element sees the same products
    and differences in the same order; a pair ``{p < q}`` is always updated by ``f_p m_q``), but
    the ``O(n²)`` sweep over ``M`` is done once per block rather than once per signal: a chain of
    rank-one updates is memory-bound (n = 1500: 6.9 CPU s against 0.49, benchmarks/fresh_state.py).  First the
    pivots' own rows ``R`` (nk, n) are updated signal by signal (recording each step's column
    ``Mm[u]`` and ``F[u] = Mm[u]/s``), then every other row takes the ``nk`` updates while it is in
    cache, then the pivot rows are written back.  ``pivot`` (n,) bool marks ``ks[:nk]``; ``R``,
    ``F``, ``Mm`` are scratch of shape (≥ nk, n).
    """
    n = M.shape[0]
    for v in range(nk):
        kv = ks[v]
        for j in range(kv):
            R[v, j] = M[j, kv]
        for j in range(kv, n):
            R[v, j] = M[kv, j]
    for u in range(nk):
        k = ks[u]
        for j in range(n):
            Mm[u, j] = R[u, j]
        s = Mm[u, k] + tau2[k]
        t = tau2[k] / s
        for i in range(n):
            F[u, i] = Mm[u, i] / s
        for i in range(n):
            if i != k and shared[i]:
                h[i] += Mm[u, i] * F[u, i]
        for v in range(nk):
            if v == u:
                continue
            kv = ks[v]
            fk = F[u, kv]
            for j in range(kv):
                if j != k:
                    R[v, j] -= F[u, j] * Mm[u, kv]
            for j in range(kv, n):
                if j != k:
                    R[v, j] -= fk * Mm[u, j]
            R[v, k] = -t * Mm[u, kv]
        for j in range(n):
            R[u, j] = -t * Mm[u, j]
        R[u, k] = t * Mm[u, k]
        h[k] = tau2[k] * t
        shared[k] = True
    for p in range(n):
        if pivot[p]:
            continue
        row = M[p, p:]                         # slices with a loop from 0: numba vectorises this loop
        for u in range(nk):
            fp = F[u, p]
            mu = Mm[u, p:]
            for q in range(row.shape[0]):
                row[q] -= fp * mu[q]           # pivot columns are overwritten below
    for v in range(nk):
        kv = ks[v]
        for j in range(kv):
            M[j, kv] = R[v, j]
        for j in range(kv, n):
            M[kv, j] = R[v, j]


@kernel
def fresh_state(S, tau2, a):
    """``(M, h, shared)`` of profile ``a`` (int8, shape (n,)) built by adds from the prior ``Σ``.

    The adds in increasing user order, :data:`FRESH_BLOCK` at a time (:func:`add_signals_block`,
    bit for bit the sequence of :func:`add_signal`)."""
    n = S.shape[0]
    M = S.copy()
    h = np.zeros(n)
    shared = np.zeros(n, dtype=np.bool_)
    b = FRESH_BLOCK
    ks = np.empty(b, dtype=np.int64)
    pivot = np.zeros(n, dtype=np.bool_)
    R = np.empty((b, n))
    F = np.empty((b, n))
    Mm = np.empty((b, n))
    nk = 0
    added = False
    for k in range(n):
        if a[k]:
            added = True
            ks[nk] = k
            pivot[k] = True
            nk += 1
            if nk == b:
                add_signals_block(M, h, shared, ks, nk, pivot, tau2, R, F, Mm)
                for v in range(nk):
                    pivot[ks[v]] = False
                nk = 0
    if nk > 0:
        add_signals_block(M, h, shared, ks, nk, pivot, tau2, R, F, Mm)
    if added:                    # with no signal the state is the prior, untouched
        mirror_upper(M)
    return M, h, shared


@kernel
def own_gain(x, h):
    """Own-signal gain of a sharer from her state entries ``x = M_ii = P_ii`` and ``h_i``."""
    if h <= 0.0:
        return 0.0
    return x * x / h


@kernel
def leave_own_out(x, h, t2):
    """``P'_i``: a sharer's posterior variance without her own signal (``τ² x / h``)."""
    if h <= 0.0:
        return x
    return t2 * x / h


@kernel
def leak_own(S, tau2, a):
    """``(I(a), own(a))``, shape (n,) each, of profile ``a`` from a fresh state."""
    M, h, shared = fresh_state(S, tau2, a)
    n = S.shape[0]
    leak = np.empty(n)
    own = np.zeros(n)
    for i in range(n):
        leak[i] = S[i, i] - M[i, i]
        if shared[i]:
            own[i] = own_gain(M[i, i], h[i])
    return leak, own


@kernel
def objective_value(D, h, shared, sig2, c, d, e, k):
    """``f(a) = Σ c_i I_i + Σ_{i∈A} (d_i I_i − e_i own_i − k_i)`` from ``diag M`` and ``h``."""
    val = 0.0
    for i in range(D.shape[0]):
        leak = sig2[i] - D[i]
        val += c[i] * leak
        if shared[i]:
            val += d[i] * leak - e[i] * own_gain(D[i], h[i]) - k[i]
    return val


@kernel
def fresh_objective(S, tau2, c, d, e, k, a):
    """Objective at profile ``a`` from a fresh state (the exact evaluation used by the searches)."""
    M, h, shared = fresh_state(S, tau2, a)
    n = S.shape[0]
    D = np.empty(n)
    sig2 = np.empty(n)
    for i in range(n):
        D[i] = M[i, i]
        sig2[i] = S[i, i]
    return objective_value(D, h, shared, sig2, c, d, e, k)


@kernel
def share_threshold(x, h, shared_i, t2):
    """``I_i(1, a_{−i}) − I_i(0, a_{−i})``: the gain of sharing given the others (eq. 5).

    A non-sharer's state entry is ``s = P_ii`` (gain ``s²/(s+τ²)``); a sharer's is her
    own gain ``x²/h``.
    """
    if shared_i:
        return own_gain(x, h)
    return x * x / (x + t2)


# ------------------------------------------------------------------ NumPy twins (same arithmetic)
_TRIU: dict = {}


def _triu(n: int) -> np.ndarray:
    t = _TRIU.get(n)
    if t is None:
        t = _TRIU[n] = np.triu(np.ones((n, n), dtype=bool))
    return t


def _np_add_signals(M, h, shared, k, tau2):
    """:func:`add_signal` on a stack of states (``M`` (B, n, n), ``h``/``shared`` (B, n)), user ``k``
    for all; returns the new ``(M, h)`` (``shared`` is updated in place).

    Operation for operation the compiled loop: ``f_i = m_i / s``; ``h_i + m_i f_i`` for the other
    sharers; ``M_ij − f_i m_j`` on and above the diagonal, mirrored below (the loop writes
    ``M[j, i] = M[i, j]``); row and column ``k`` are ``(−t) m_j``, ``M_kk = t m_k``."""
    m = M[:, :, k].copy()
    s = m[:, k] + tau2[k]
    t = tau2[k] / s
    f = m / s[:, None]
    upd = shared.copy()
    upd[:, k] = False
    h = np.where(upd, h + m * f, h)
    U = M - f[:, :, None] * m[:, None, :]
    M = np.where(_triu(M.shape[1]), U, U.transpose(0, 2, 1))
    M[:, k, :] = -t[:, None] * m
    M[:, :, k] = M[:, k, :]
    M[:, k, k] = t * m[:, k]
    h[:, k] = tau2[k] * t
    shared[:, k] = True
    return M, h


def _np_fresh_state(S, tau2, a):
    n = S.shape[0]
    M = np.array(S, dtype=float)[None].copy()
    h = np.zeros((1, n))
    shared = np.zeros((1, n), dtype=np.bool_)
    for k in range(n):
        if a[k]:
            M, h = _np_add_signals(M, h, shared, k, tau2)
    return M[0], h[0], shared[0]


def _np_own_gains(x, h):
    """:func:`own_gain` elementwise: ``x·x / h`` where ``h > 0``, else 0."""
    pos = h > 0.0
    return np.where(pos, x * x / np.where(pos, h, 1.0), 0.0)


def _np_leak_own(S, tau2, a):
    M, h, shared = _np_fresh_state(S, tau2, a)
    x = np.diagonal(M).copy()
    leak = np.diagonal(S) - x
    own = np.where(shared, _np_own_gains(x, h), 0.0)
    return leak, own


def _np_objective_values(D, h, shared, sig2, c, d, e, k):
    """:func:`objective_value` of a stack of states (``D``, ``h``, ``shared`` of shape (B, n)): the same
    sequential sum over users, vectorised over the stack."""
    val = np.zeros(D.shape[0])
    for i in range(D.shape[1]):
        leak = sig2[i] - D[:, i]
        val = val + c[i] * leak
        term = d[i] * leak - e[i] * _np_own_gains(D[:, i], h[:, i]) - k[i]
        val = np.where(shared[:, i], val + term, val)
    return val


def _np_fresh_objective(S, tau2, c, d, e, k, a):
    M, h, shared = _np_fresh_state(S, tau2, a)
    D = np.diagonal(M).copy()[None]
    return float(_np_objective_values(D, h[None], shared[None], np.diagonal(S).copy(), c, d, e, k)[0])


fresh_state.numpy, fresh_state._use_numpy = _np_fresh_state, _small_matrix
leak_own.numpy, leak_own._use_numpy = _np_leak_own, _small_matrix
fresh_objective.numpy, fresh_objective._use_numpy = _np_fresh_objective, _small_matrix


def warm_compiled() -> None:
    """Compile (or load from numba's cache) the kernels called from Python — :func:`fresh_state`,
    :func:`leak_own`, :func:`fresh_objective`, :func:`objective_value` — so that a later switch from their NumPy twins
    (``n >`` :data:`NUMPY_MAX_N`, or after :data:`NUMPY_CALLS` calls) is not charged to a timed run."""
    S = np.array([[1.0, 0.25], [0.25, 1.0]])
    t = np.ones(2)
    a = np.array([1, 0], dtype=np.int8)
    fresh_state.jit(S, t, a)
    leak_own.jit(S, t, a)
    fresh_objective.jit(S, t, t, t, t, t, a)
    # GaussianMarket.evaluate at n > NUMPY_MAX_N: a fresh state's diagonal, the objective's read-only weights
    w = t.copy()
    w.setflags(write=False)
    objective_value.jit(t.copy(), t.copy(), np.array([True, False]), t.copy(), w, w, w, w)


def all_profile_states(S, tau2):
    """The fresh states of all ``2^n`` profiles, index = bit mask (bit ``i`` ↔ user ``i``), in NumPy.

    The profile with highest bit ``j`` is its parent (the bits below ``j``) plus user ``j``, so
    every state is built by adds in increasing user order — exactly :func:`fresh_state` — one
    vectorised add per bit.  Memory ``2^n n²`` floats: for ``n ≤`` :data:`SMALL_N`."""
    S = np.asarray(S, dtype=float)
    n = S.shape[0]
    if n > SMALL_N:
        raise ValueError(f"all_profile_states: n = {n} > SMALL_N = {SMALL_N}")
    M = np.empty((1 << n, n, n))
    h = np.zeros((1 << n, n))
    shared = np.zeros((1 << n, n), dtype=np.bool_)
    M[0] = S
    for j in range(n):
        lo = 1 << j
        sh = shared[:lo].copy()
        Mj, hj = _np_add_signals(M[:lo], h[:lo], sh, j, tau2)
        M[lo:2 * lo], h[lo:2 * lo], shared[lo:2 * lo] = Mj, hj, sh
    return M, h, shared


def all_profile_objectives(S, tau2, c, d, e, k) -> np.ndarray:
    """:func:`fresh_objective` at every profile (index = bit mask), ``n ≤`` :data:`SMALL_N`, in NumPy."""
    M, h, shared = all_profile_states(S, tau2)
    D = np.diagonal(M, axis1=1, axis2=2)
    return _np_objective_values(D, h, shared, np.diagonal(np.asarray(S, dtype=float)).copy(), c, d, e, k)


def state_leakage_and_own(sig2, D, h, shared):
    """``(I(a), own(a))`` from a fresh state's ``diag M`` (``D``), ``h`` and ``shared`` (shape (n,) each):
    the arithmetic of :func:`leak_own`, bit for bit."""
    return sig2 - D, np.where(shared, _np_own_gains(D, h), 0.0)


def state_objective(D, h, shared, sig2, c, d, e, k) -> float:
    """:func:`objective_value` of one fresh state (bit for bit :func:`fresh_objective` at its profile): the
    NumPy twin while the size is small (no compilation), compiled otherwise."""
    if D.shape[0] <= NUMPY_MAX_N:
        return float(_np_objective_values(D[None], h[None], shared[None], sig2, c, d, e, k)[0])
    return float(objective_value(D, h, shared, sig2, c, d, e, k))


def leakage_and_own(cov: np.ndarray, noise_var: np.ndarray, profile: np.ndarray):
    """NumPy entry point: ``(I(a), own(a))`` for one profile (shape (n,) each)."""
    return leak_own(np.ascontiguousarray(cov, dtype=float), np.ascontiguousarray(noise_var, dtype=float),
                    np.ascontiguousarray(profile, dtype=np.int8))


def posterior_cov(cov: np.ndarray, noise_var: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """Posterior covariance ``P(a)`` (shape (n, n)) from the mixed state (signs restored)."""
    M, _, shared = fresh_state(np.ascontiguousarray(cov, dtype=float),
                               np.ascontiguousarray(noise_var, dtype=float),
                               np.ascontiguousarray(profile, dtype=np.int8))
    sign = np.where(shared, -1.0, 1.0)
    return M * sign[:, None] * sign[None, :]


# ------------------------------------------------------------------ closed forms (numpy)
def own_signal_gain(x: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
    """``g_i(x) = x² / (τ_i² − x)`` (eq. 5 in posterior form): own-signal gain of a sharer with ``P_ii = x``.

    The formula as a function of ``x``, for models whose variable is ``P_ii`` (the MILP's
    tangent tables).  It cancels when ``x ≈ τ_i²`` (small noise): to *evaluate* a profile
    use :func:`leakage_and_own`.
    """
    return x * x / (noise_var - x)


def sharer_posterior(delta, tau2, u):
    """``(P^s, own gain)`` of a sharer of community ``k`` from ``u_k`` (the one home of this arithmetic).

    ``P^s = δτ²/d + uτ⁴/d²`` and ``h = τ² − P^s = τ⁴(d − u)/d²`` (``d = δ + τ²``), so the
    own-signal gain ``(P^s)²/(τ² − P^s) = (P^s)²/h`` is computed without the difference
    ``τ² − P^s``, which cancels when the noise is small (docs/spec.md §1.1).  ``delta``,
    ``tau2`` broadcast against ``u``.
    """
    d = delta + tau2
    t4 = tau2 * tau2
    Ps = delta * tau2 / d + u * t4 / (d * d)
    h = t4 * (d - u) / (d * d)
    return Ps, Ps * Ps / h
