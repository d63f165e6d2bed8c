"""Exhaustive enumeration: the reference every other method is checked against.

All ``2^n`` profiles are walked depth-first with one add-only posterior update
per profile (:mod:`.kernels`, :mod:`dm_opt.gaussian.kernels.posterior`); memory is ``O(n³)`` for
the states of the path plus the tie buffer, never ``O(2^n)``.
The profile space is split into ``2^k`` *chunks* by fixing the first ``k``
users ("leading bits"); chunks are independent, run on a thread pool here and
on a Dask cluster in the distributed path.  :func:`plan_chunks`,
:func:`run_chunk` and :func:`merge_chunks` are the public pieces for that.

Ties: a profile is optimal when its objective is within ``tol`` of the best
(absolute; default ``1e-9 × Σ (|c|+|d|+|e|) σ²``, the objective's scale).  The
returned profile is the optimal one with the smallest bit mask (bit ``i`` ↔
user ``i``), so the answer does not depend on thread scheduling.

Certificate: the walk keeps every profile within ``tol + 2 ×`` :func:`walk_margin`
of its best value (the margin covers the walk's round-off, ``WALK_RTOL`` × the
objective's scale; the walk is add-only, its measured error is about 1e-13 ×
scale), and those candidates are re-evaluated from fresh states; the answer is
the best re-evaluated candidate and the bound is
``max(answer, walk best − tol − margin)`` (every profile left out is worth less).

Small markets (``n ≤`` :data:`~dm_opt.gaussian.kernels.posterior.SMALL_N`, default chunking) are
walked in NumPy without compiling anything (:func:`enumerate_small`): every profile's state is a
fresh one (adds in increasing user order, the arithmetic of
:func:`~dm_opt.gaussian.kernels.posterior.fresh_state` bit for bit), so every value is already the
re-evaluated one; the same tie window, canonical profile and tie list follow.  Compile and
numba-cache-load seconds are reported apart: ``extra["compile_seconds"]``, not in ``solve_seconds``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from dm_opt.core.errors import LimitExceeded, ProblemError
from dm_opt.core.registry import Backend, RawSolution, register
from dm_opt.core.result import Termination
from dm_opt.gaussian.kernels.enumeration import enumerate_chunk
from dm_opt.gaussian.kernels.posterior import SMALL_N, all_profile_objectives, fresh_objective
from dm_opt.gaussian.market import GaussianMarket

#: Default largest n enumeration accepts (2^26 ≈ 67M profiles, about a minute on 2 cores).
DEFAULT_MAX_N = 26
#: Largest n the 63-bit masks support at all.
HARD_MAX_N = 62
#: Default tie-buffer size per chunk (and the largest ``optima`` list returned).
DEFAULT_MAX_OPTIMA = 4096
#: Relative tie tolerance (times the objective's scale).
TIE_RTOL = 1e-9
#: Users walked on the O(n·b) slab (the low bits).
LOW_BITS = 8
#: Unused by the add-only walk (kept in the chunk protocol for distributed workers).
REFRESH = 32


#: Bound on the walk's round-off relative to the objective's scale (add-only states; the
#: worst error measured on the numerics suite is about 1e-13).
WALK_RTOL = 1e-11


def default_tol(market, objective) -> float:
    return TIE_RTOL * max(objective.scale(market.sigma2), 0.0)


def walk_margin(market, objective) -> float:
    """Absolute round-off allowance of the walk's values (``WALK_RTOL`` × the objective's scale)."""
    return WALK_RTOL * max(objective.scale(market.sigma2), 0.0)


@dataclass(frozen=True)
class ChunkPlan:
    """How ``2^n`` profiles are split: users ``order[:k]`` fixed per chunk, ``order[n-b:]`` on the slab."""

    n: int
    k: int
    n_low: int
    order: np.ndarray

    @property
    def n_chunks(self) -> int:
        return 1 << self.k

    @property
    def profiles_per_chunk(self) -> int:
        return 1 << (self.n - self.k)

    def fixed_masks(self, chunk_id: int) -> tuple[np.ndarray, np.ndarray]:
        """``(fixed_in, free)`` boolean masks over users for ``chunk_id``."""
        fixed_in = np.zeros(self.n, dtype=bool)
        free = np.ones(self.n, dtype=bool)
        for t in range(self.k):
            u = self.order[t]
            free[u] = False
            fixed_in[u] = bool((chunk_id >> t) & 1)
        return fixed_in, free


def plan_chunks(n: int, chunk_bits: int | None = None, low_bits: int = LOW_BITS) -> ChunkPlan:
    """Split ``2^n`` profiles into ``2^k`` chunks (default: chunks of ``2^16`` profiles)."""
    if chunk_bits is None:
        chunk_bits = max(0, n - 16)
    k = int(min(max(chunk_bits, 0), n))
    n_low = int(min(low_bits, n - k))
    return ChunkPlan(n=n, k=k, n_low=n_low, order=np.arange(n, dtype=np.int64))


@dataclass(frozen=True)
class ChunkResult:
    chunk_id: int
    best: float
    best_mask: int
    cand_vals: np.ndarray
    cand_masks: np.ndarray
    overflow: bool
    count: int


def run_chunk(market, objective, plan: ChunkPlan, chunk_id: int, tol: float,
              capacity: int = DEFAULT_MAX_OPTIMA) -> ChunkResult:
    """Enumerate one chunk (thread-safe; releases the GIL).

    Keeps every profile within ``tol + 2 walk_margin`` of the chunk's best walk value.
    """
    window = float(tol) + 2.0 * walk_margin(market, objective)
    best, best_mask, vals, masks, overflow, count = enumerate_chunk(
        np.ascontiguousarray(market.cov), market.noise_var, objective.c, objective.d, objective.e, objective.k,
        plan.order, plan.k, np.int64(chunk_id), plan.n_low, window, int(capacity), REFRESH,
    )
    return ChunkResult(chunk_id, float(best), int(best_mask), vals, masks, bool(overflow), int(count))


@dataclass(frozen=True)
class Merged:
    best: float
    masks: np.ndarray          # sorted masks of all optimal profiles found
    overflow: bool
    count: int


def merge_chunks(results, tol: float) -> Merged:
    """Combine chunk results: the global best and every profile within ``tol`` of it."""
    results = list(results)
    if not results:
        raise ValueError("no chunk results to merge")
    best = max(r.best for r in results)
    masks = [r.cand_masks[r.cand_vals >= best - tol] for r in results]
    # a chunk's best is kept even when its tie buffer overflowed and dropped it
    masks.append(np.array([r.best_mask for r in results if r.best >= best - tol], dtype=np.int64))
    masks = np.unique(np.concatenate(masks))
    # a chunk that overflowed may have dropped ties; only matters if it was within tol of the best
    overflow = any(r.overflow and r.best >= best - tol for r in results)
    return Merged(best, masks, overflow, sum(r.count for r in results))


def mask_to_profile(mask: int, n: int) -> np.ndarray:
    return ((int(mask) >> np.arange(n)) & 1).astype(np.int8)


def enumerate_small(market, objective, *, tol: float, all_optima: bool = False,
                    max_optima: int = DEFAULT_MAX_OPTIMA) -> RawSolution | None:
    """Exhaustive enumeration of ``n ≤ SMALL_N`` users in NumPy (no compilation).

    Every profile's value is its fresh value (:func:`~dm_opt.gaussian.kernels.posterior.all_profile_objectives`,
    equal bit for bit to :func:`fresh_objective_of`), so the answer is what the compiled walk
    returns after re-evaluating its candidates: the optima are the profiles within ``tol`` of the
    best, the canonical one has the smallest bit mask, the bound is the best value.  Returns None
    (the caller walks compiled) when more than ``max_optima`` profiles fall in the tie window, where
    the compiled walk's buffer rules apply."""
    t0 = time.perf_counter()
    n = market.n
    vals = all_profile_objectives(np.ascontiguousarray(market.cov), market.noise_var, objective.c, objective.d,
                                  objective.e, objective.k)
    best = float(vals.max())
    window = float(tol) + 2.0 * walk_margin(market, objective)
    if int(np.count_nonzero(vals >= best - window)) > max_optima:
        return None
    masks = np.flatnonzero(vals >= best - tol).astype(np.int64)
    optima = [mask_to_profile(m, n) for m in masks] if all_optima else None
    return RawSolution(
        profile=mask_to_profile(int(masks[0]), n), status=Termination.OPTIMAL, bound=best, optima=optima,
        nodes=1 << n, build_seconds=0.0, solve_seconds=time.perf_counter() - t0, message="",
        extra={"chunks": 1, "chunks_done": 1, "walk_best": best, "ties": int(masks.size), "kernel": "numpy"},
    )


def enumerate_market(market, objective, *, tol: float | None = None, all_optima: bool = False,
                     max_optima: int = DEFAULT_MAX_OPTIMA, time_limit: float | None = None,
                     workers: int | None = None, progress: bool = False,
                     max_n: int = DEFAULT_MAX_N, chunk_bits: int | None = None) -> RawSolution:
    """Exhaustive maximisation of a :class:`LeakageObjective` over all profiles."""
    n = market.n
    if n > min(max_n, HARD_MAX_N):
        raise LimitExceeded(
            f"enumeration walks 2^n profiles; n = {n} exceeds max_n = {max_n}. "
            f"Use method='bnb' or method='milp' (exact, with a bound and gap), "
            f"or raise max_n if you really want 2^{n} profiles."
        )
    if tol is None:
        tol = default_tol(market, objective)
    if n <= SMALL_N and chunk_bits is None and isinstance(market, GaussianMarket):
        raw = enumerate_small(market, objective, tol=tol, all_optima=all_optima, max_optima=max_optima)
        if raw is not None:
            return raw
    t0 = time.perf_counter()
    plan = plan_chunks(n, chunk_bits)
    workers = workers or min(os.cpu_count() or 1, plan.n_chunks)
    done: list[ChunkResult] = []
    pending_ids = list(range(plan.n_chunks))
    status = Termination.OPTIMAL
    message = ""
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=plan.n_chunks * plan.profiles_per_chunk, unit="profile", unit_scale=True,
                   desc=f"enumerate n={n}", leave=False)
    deadline = None if time_limit is None else t0 + float(time_limit)
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        if pool is None:
            while pending_ids:
                # the first chunk always runs, so a time-limited run has an incumbent
                if deadline is not None and done and time.perf_counter() > deadline:
                    status = Termination.TIME_LIMIT
                    break
                cid = pending_ids.pop(0)
                done.append(run_chunk(market, objective, plan, cid, tol, max_optima))
                if bar is not None:
                    bar.update(plan.profiles_per_chunk)
        else:
            running = {}
            queue = list(pending_ids)
            while queue or running:
                while queue and len(running) < 2 * workers:
                    if deadline is not None and (done or running) and time.perf_counter() > deadline:
                        status = Termination.TIME_LIMIT
                        break
                    cid = queue.pop(0)
                    running[pool.submit(run_chunk, market, objective, plan, cid, tol, max_optima)] = cid
                if status is Termination.TIME_LIMIT and not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    running.pop(fut)
                    done.append(fut.result())
                    if bar is not None:
                        bar.update(plan.profiles_per_chunk)
                if status is Termination.TIME_LIMIT:
                    queue = []  # let running chunks finish, schedule no more
            pending_ids = sorted(set(range(plan.n_chunks)) - {r.chunk_id for r in done})
    except KeyboardInterrupt:
        status = Termination.INTERRUPTED
        message = "interrupted by the user"
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            pool = None
        pending_ids = sorted(set(range(plan.n_chunks)) - {r.chunk_id for r in done})
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        if bar is not None:
            bar.close()
    done.sort(key=lambda r: r.chunk_id)
    elapsed = time.perf_counter() - t0
    if not done:
        return RawSolution(None, status, float("inf"), None, 0, 0.0, elapsed,
                           message or "time limit reached before the first chunk finished")
    if pending_ids and not message:
        message = (f"time limit {time_limit}s reached after {len(done)}/{plan.n_chunks} chunks; "
                   f"bound from monotone interval bounds on the rest")
    return raw_from_chunks(market, objective, plan, done, tol, all_optima=all_optima, max_optima=max_optima,
                           status=status, message=message, elapsed=elapsed,
                           extra={"chunks": plan.n_chunks, "chunks_done": len(done)})


def raw_from_chunks(market, objective, plan: ChunkPlan, done, tol: float, *, all_optima: bool,
                    max_optima: int, status: Termination, message: str, elapsed: float,
                    extra: dict) -> RawSolution:
    """Merge finished chunks into a raw answer (serial, threaded or distributed enumeration).

    Chunks that never finished contribute their monotone interval bound (docs/spec.md §1.3) to the
    proven bound; the tie set is listed only for a complete (optimal) walk.
    """
    n = market.n
    margin = walk_margin(market, objective)
    merged = merge_chunks(done, tol + 2.0 * margin)
    # Re-evaluate the candidates from fresh states: the answer, its ties and the bound.  A profile
    # left out has a walk value below best − tol − 2·margin, hence (walk error ≤ margin) a value
    # below best − tol − margin: that, or the best re-evaluated candidate, bounds the optimum.
    exact = np.array([fresh_objective_of(market, objective, m) for m in merged.masks])
    if exact.size:
        best_exact = float(exact.max())
        masks = merged.masks[exact >= best_exact - tol]
    else:
        best_exact, masks = -np.inf, merged.masks
    bound = max(merged.best - tol - margin, best_exact)
    finished = {r.chunk_id for r in done}
    if len(finished) < plan.n_chunks:
        from dm_opt.gaussian.backends.bounds import interval_bound
    for cid in range(plan.n_chunks):
        if cid not in finished:
            fixed_in, free = plan.fixed_masks(cid)
            bound = max(bound, interval_bound(market, objective, fixed_in, free))
    if merged.overflow and all_optima and status is Termination.OPTIMAL:
        raise LimitExceeded(
            f"more than {max_optima} profiles tie within tol = {tol:.3g}; "
            f"raise max_optima or use all_optima=False"
        )
    canonical = int(masks[0]) if masks.size else None
    if canonical is None:
        canonical = max(done, key=lambda r: r.best).best_mask
    optima = None
    if all_optima and status is Termination.OPTIMAL:
        optima = [mask_to_profile(m, n) for m in masks]
    return RawSolution(
        profile=mask_to_profile(canonical, n), status=status, bound=bound, optima=optima,
        nodes=merged.count, build_seconds=0.0, solve_seconds=elapsed, message=message,
        extra={**extra, "walk_best": merged.best, "ties": int(masks.size)},
    )


def fresh_objective_of(market, objective, mask: int) -> float:
    """Objective at the profile with bit mask ``mask`` from a fresh posterior state."""
    a = mask_to_profile(mask, market.n)
    return float(fresh_objective(np.ascontiguousarray(market.cov), market.noise_var, objective.c, objective.d,
                                 objective.e, objective.k, a))


@register
class Enumeration(Backend):
    """Exhaustive enumeration (exact; ``O(2^n n b)`` time, ``O(n³)`` memory)."""

    name = "enumerate"
    supports_all_optima = True
    OPTIONS = ("max_optima", "workers", "max_n", "chunk_bits")

    def run(self, market, objective, *, all_optima, time_limit, constraints, tol, progress, options):
        if constraints:
            raise ProblemError("method 'enumerate' does not take side constraints")
        self.check_options(options)
        if not isinstance(market, GaussianMarket):
            # any leakage oracle (§5.1, §5.3): generic block enumeration, same tie rules
            from dm_opt.gaussian.backends.oracle_enumeration import enumerate_oracle

            generic = {k: options[k] for k in ("max_optima", "max_n") if k in options}
            return enumerate_oracle(market, objective, tol=tol, all_optima=all_optima,
                                    time_limit=time_limit, progress=progress, **generic)
        return enumerate_market(market, objective, tol=tol, all_optima=all_optima,
                                time_limit=time_limit, progress=progress, **options)


def with_compile_seconds(raw: RawSolution, seconds: float) -> RawSolution:
    """``raw`` with ``extra["compile_seconds"]`` (numba import, compilation and cache loading inside the
    solve) and that time taken out of ``solve_seconds`` (which then is the solving alone).  Applied
    to every backend's answer by :func:`dm_opt.gaussian.api.solve`."""
    return dataclasses.replace(raw, solve_seconds=max(0.0, raw.solve_seconds - seconds),
                               extra={**raw.extra, "compile_seconds": float(seconds)})
