"""Exhaustive enumeration for any leakage-oracle market (AMMO §5.1, §5.3).

The compiled kernel of :mod:`.enumeration` needs a
:class:`GaussianMarket` (it updates the posterior covariance).  This module
maximises a :class:`~dm_opt.gaussian.objectives.LeakageObjective` over all
``2^n`` profiles of any object satisfying the protocol of
:mod:`dm_opt.gaussian.leakage.base`, in blocks of consecutive masks: the oracle's
``leakage_block(lo, count)`` returns ``I`` and ``own`` for the block (a
compiled walk for mutual-information and mixture markets, a table lookup for
tabulated ones, one oracle call per profile otherwise) and the objective is
evaluated for the whole block with array operations.

Ties are decided as in the kernel: every profile within ``tol`` (absolute) of
the best is optimal; the returned profile is the optimal one with the smallest
bit mask (bit ``i`` ↔ user ``i``), and ``optima`` lists all of them sorted by
mask.  On a time limit, unvisited blocks are bounded by the monotone interval
bound of docs/spec.md §1.3 written for oracles; that bound is proven only for oracles
satisfying Properties 3–4 (monotone, submodular) — check them with
:func:`dm_opt.gaussian.leakage.properties.check_properties`.
"""

from __future__ import annotations

import time

import numpy as np

from dm_opt.core.errors import LimitExceeded
from dm_opt.core.registry import RawSolution
from dm_opt.core.result import Termination
from dm_opt.gaussian.leakage.base import masks_to_profiles, objective_values

#: Default largest n (Python-side block loop; ~1M profiles take seconds to minutes depending on the oracle).
DEFAULT_MAX_N = 20
#: Profiles per block (``2^BLOCK_BITS``).
BLOCK_BITS = 12
DEFAULT_MAX_OPTIMA = 4096


def _block(market, lo: int, count: int):
    if hasattr(market, "leakage_block"):
        leak, own = market.leakage_block(lo, count)
        return np.asarray(leak, float), np.asarray(own, float)
    profiles = masks_to_profiles(lo, count, market.n)
    leak = np.vstack([np.asarray(market.leakage(a), float) for a in profiles])
    own = np.vstack([np.asarray(market.own_leakage(a), float) for a in profiles])
    return leak, own


def _leak_own(market, a):
    if hasattr(market, "leakage_and_own"):
        return market.leakage_and_own(a)
    return np.asarray(market.leakage(a), float), np.asarray(market.own_leakage(a), float)


def oracle_interval_bound(market, objective, fixed_in: np.ndarray, free: np.ndarray) -> float:
    """Upper bound on ``objective`` over completions of (``fixed_in``, ``free``), assuming Properties 3–4.

    ``I(IN) ≤ I(a) ≤ I(IN ∪ FREE)`` (Property 3).  For a sharer ``i`` the own
    term satisfies ``own_i(a) ≥ own_i(IN ∪ FREE)`` (Property 4: the own marginal
    falls as others share) and ``0 ≤ own_i(a) ≤ I_i(a) ≤ I_i(IN ∪ FREE)``.
    """
    fixed_in = np.asarray(fixed_in, bool)
    free = np.asarray(free, bool)
    lo = fixed_in.astype(np.int8)
    hi = (fixed_in | free).astype(np.int8)
    I_lo = np.asarray(market.leakage(lo), float)
    I_hi, own_hi = _leak_own(market, hi)
    c, d, e = objective.c, objective.d, objective.e
    total = float(np.sum(np.where(c > 0, c * I_hi, c * I_lo)))
    sharer = np.where(d > 0, d * I_hi, d * I_lo)
    sharer = sharer + np.where(e >= 0, -e * own_hi, -e * I_hi) - objective.k
    total += float(np.sum(sharer[fixed_in]))
    total += float(np.sum(np.maximum(sharer[free & ~fixed_in], 0.0)))
    return total


def enumerate_oracle(market, objective, *, tol: float, all_optima: bool = False,
                     max_optima: int = DEFAULT_MAX_OPTIMA, time_limit: float | None = None,
                     progress: bool = False, max_n: int = DEFAULT_MAX_N,
                     block_bits: int = BLOCK_BITS) -> RawSolution:
    """Maximise ``objective`` over all ``2^n`` profiles of an oracle market."""
    n = int(market.n)
    if n > max_n:
        raise LimitExceeded(
            f"oracle enumeration walks 2^n profiles; n = {n} exceeds max_n = {max_n}. "
            f"Use method='bnb' (exact for oracles satisfying Properties 1-4), or raise max_n."
        )
    t0 = time.perf_counter()
    b = min(int(block_bits), n)
    count = 1 << b
    n_blocks = 1 << (n - b)
    deadline = None if time_limit is None else t0 + float(time_limit)
    best = -np.inf
    cand_vals: list[np.ndarray] = []
    cand_masks: list[np.ndarray] = []
    n_cand = 0
    status = Termination.OPTIMAL
    message = ""
    done = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n_blocks * count, unit="profile", unit_scale=True, desc=f"enumerate n={n}", leave=False)
    try:
        for blk in range(n_blocks):
            if deadline is not None and time.perf_counter() > deadline and done > 0:
                status = Termination.TIME_LIMIT
                break
            lo = blk * count
            leak, own = _block(market, lo, count)
            vals = objective_values(objective, masks_to_profiles(lo, count, n), leak, own)
            if not np.all(np.isfinite(vals)):
                r = int(np.argmax(~np.isfinite(vals)))
                raise LimitExceeded(f"objective is not finite at profile mask {lo + r} (oracle returned "
                                    f"non-finite leakage)")
            bmax = float(vals.max())
            if bmax > best:
                best = bmax
            keep = vals >= best - tol
            if keep.any():
                cand_vals.append(vals[keep])
                cand_masks.append(np.flatnonzero(keep).astype(np.int64) + lo)
                n_cand += int(keep.sum())
                if n_cand > 4 * max_optima:   # compact: drop candidates no longer within tol
                    v = np.concatenate(cand_vals)
                    m = np.concatenate(cand_masks)
                    sel = v >= best - tol
                    cand_vals, cand_masks, n_cand = [v[sel]], [m[sel]], int(sel.sum())
            done += 1
            if bar is not None:
                bar.update(count)
    except KeyboardInterrupt:
        status = Termination.INTERRUPTED
        message = "interrupted by the user"
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    if done == 0:
        return RawSolution(None, status, float("inf"), None, 0, 0.0, elapsed,
                           message or "stopped before the first block finished")
    v = np.concatenate(cand_vals)
    m = np.concatenate(cand_masks)
    masks = np.sort(m[v >= best - tol])
    overflow = masks.size > max_optima
    if overflow and all_optima:
        raise LimitExceeded(f"more than {max_optima} profiles tie within tol = {tol:.3g}; "
                            f"raise max_optima or use all_optima=False")
    bound = best
    if done < n_blocks:
        free = np.zeros(n, bool)
        free[:b] = True
        for blk in range(done, n_blocks):
            fixed_in = ((np.int64(blk * count) >> np.arange(n)) & 1).astype(bool)
            bound = max(bound, oracle_interval_bound(market, objective, fixed_in, free))
        if not message:
            message = (f"time limit {time_limit}s reached after {done}/{n_blocks} blocks; bound on the rest "
                       f"from monotone interval bounds (valid if the oracle satisfies Properties 3-4)")
    profile = ((int(masks[0]) >> np.arange(n)) & 1).astype(np.int8)
    optima = None
    if all_optima and status is Termination.OPTIMAL:
        optima = [((int(x) >> np.arange(n)) & 1).astype(np.int8) for x in masks]
    return RawSolution(profile=profile, status=status, bound=bound, optima=optima, nodes=done * count,
                       build_seconds=0.0, solve_seconds=elapsed, message=message,
                       extra={"blocks": n_blocks, "blocks_done": done, "walk_best": best,
                              "ties": int(masks.size), "oracle": type(market).__name__})
