"""Cluster-scale runs on Dask: benchmark grids / sweeps, and distributed exact enumeration.

Dask (``dask`` + ``distributed``) is the optional extra ``dist``
(``pip install dm-opt[dist]``); without it every entry point raises
:class:`~dm_opt.core.errors.BackendUnavailable`.

Design (must not assume one machine):

* tasks carry **data**, never pointers or paths: a benchmark task holds an
  instance *spec* (``(family, n, seed)`` or the parsed TOML table) and the
  worker builds the market; an enumeration chunk holds the market itself
  (``GaussianMarket`` and ``LeakageObjective`` pickle: arrays + scalars), the
  chunk plan and the chunk id;
* every task is submitted with ``retries=`` — Dask re-runs a task whose
  function raised, and reschedules the tasks of a worker that died (up to the
  scheduler's ``allowed-failures``);
* a chunk that ultimately failed is never merged away: the result is
  ``status = error`` (never ``optimal``) with the failed chunk ids in the
  message, the best profile of the chunks that did finish and a proven bound
  over the failed chunks (monotone interval bounds, docs/spec.md §1.3).

Workers must have the same ``dm_opt`` version installed as the client.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid

from dm_opt.core.errors import BackendUnavailable, LimitExceeded, ProblemError
from dm_opt.core.limits import check_time_limit
from dm_opt.core.registry import RawSolution
from dm_opt.core.result import Termination
from dm_opt.gaussian.api import finish
from dm_opt.gaussian.backends.enumeration import (
    DEFAULT_MAX_OPTIMA,
    HARD_MAX_N,
    default_tol,
    plan_chunks,
    raw_from_chunks,
    run_chunk,
)
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.objectives import LeakageObjective

#: Default retries of a failed task (function raised or worker lost).
DEFAULT_RETRIES = 2
#: Distributed enumeration: default chunks per worker thread (load balance vs task overhead).
CHUNKS_PER_THREAD = 16
#: Fewest users enumerated inside one chunk by default (2^12 profiles ≈ 1 ms of kernel time).
MIN_CHUNK_USERS = 12


def _dask():
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(
            f"Dask is not installed ({exc}); install the optional extra: pip install 'dm-opt[dist]'"
        ) from None
    return distributed


def dask_available() -> bool:
    """Whether Dask (``dask`` and ``distributed``) can be imported, without importing it twice."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("dask", "distributed"))


#: Seconds to wait for a Dask scheduler to answer (distributed's own default is 30 s).
CONNECT_TIMEOUT = 10.0


@contextlib.contextmanager
def open_client(scheduler: str | None = None, workers: int | None = None, *, processes: bool = True,
                threads_per_worker: int = 1, connect_timeout: float = CONNECT_TIMEOUT):
    """A Dask client: connected to ``scheduler`` (an existing cluster) or to a new ``LocalCluster``.

    The local cluster has ``workers`` processes (default: CPU count) of
    ``threads_per_worker`` threads each, dashboard on a free port; it is closed on exit.
    A scheduler address that is malformed or does not answer within ``connect_timeout``
    seconds raises :class:`ProblemError` naming it (before any work).
    """
    distributed = _dask()
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise ProblemError(f"scheduler must be a Dask scheduler address such as 'tcp://host:8786', "
                               f"got {scheduler!r}")
        try:
            client = distributed.Client(scheduler, timeout=connect_timeout)
        except Exception as exc:          # noqa: BLE001 - a non-Dask endpoint can answer with anything
            # (a proxy answering the handshake made distributed try to allocate 3 EiB: MemoryError)
            why = " ".join(str(exc).split())[:160] or type(exc).__name__
            if not isinstance(exc, (OSError, ValueError, TimeoutError)):
                why = f"not a Dask scheduler? ({type(exc).__name__}: {why})"
            raise ProblemError(f"scheduler: cannot connect to {scheduler!r}: {why}") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = int(workers or os.cpu_count() or 1)
    if n < 1:
        raise ProblemError(f"workers must be a positive integer, got {workers!r}")
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=processes,
                                       dashboard_address=":0")
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _n_threads(client) -> int:
    info = client.scheduler_info()
    return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))


def map_tasks(client, fn, tasks, *, retries: int = DEFAULT_RETRIES, bar=None, on_error=None):
    """Run ``fn(task)`` for every task on the cluster; results in task order.

    A task that still fails after ``retries`` gives ``on_error(task, exc)`` (or
    re-raises when ``on_error`` is None).  Ctrl-C cancels what is pending and
    returns what completed with ``interrupted=True``.
    """
    distributed = _dask()
    tag = uuid.uuid4().hex[:8]
    futures = {}
    for i, t in enumerate(tasks):
        f = client.submit(fn, t, key=f"dm_opt-{tag}-{i}", pure=False, retries=retries)
        futures[f] = (i, t)
    out: dict[int, object] = {}
    interrupted = False
    try:
        for fut in distributed.as_completed(list(futures)):
            i, t = futures[fut]
            if fut.status == "error":
                exc = fut.exception()
                if on_error is None:
                    raise exc
                out[i] = on_error(t, exc)
            else:
                out[i] = fut.result()
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return [out[i] for i in sorted(out)], interrupted


def sweep(fn, items, *, client=None, scheduler: str | None = None, workers: int | None = None,
          retries: int = DEFAULT_RETRIES, progress: bool = False) -> list:
    """``[fn(x) for x in items]`` computed on Dask, in the order of ``items``.

    Uses ``client`` if given, else an existing cluster at ``scheduler``, else a
    new ``LocalCluster`` (``workers`` processes).  ``fn`` and the items must
    pickle (pass data — seeds, arrays, markets — not open files or paths that
    only exist here); ``fn`` must be importable on the workers (a module-level
    function of an installed package) or picklable by value.  A task that still
    fails after ``retries`` re-raises its exception here: a sweep is never
    returned with holes.
    """
    items = list(items)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(items), unit="task", desc="sweep")
    try:
        with contextlib.ExitStack() as stack:
            if client is None:
                client = stack.enter_context(open_client(scheduler, workers))
            out, interrupted = map_tasks(client, fn, items, retries=retries, bar=bar, on_error=None)
    finally:
        if bar is not None:
            bar.close()
    if interrupted:
        raise KeyboardInterrupt
    return out


def default_chunk_bits(n: int, threads: int) -> int:
    """``ceil(log2(CHUNKS_PER_THREAD · threads))`` leading users fixed, keeping ≥ MIN_CHUNK_USERS free."""
    k = math.ceil(math.log2(max(1, CHUNKS_PER_THREAD * threads)))
    return int(max(0, min(k, n - MIN_CHUNK_USERS)))


def release(client, futures, bar=None) -> None:
    """Cancel the futures that are not done (a stopped run frees the cluster at once) and
    close the progress bar, if any."""
    pending = [f for f in futures if not f.done()]
    if pending:
        client.cancel(pending)
    if bar is not None:
        bar.close()


def enumerate_distributed(market, problem="equilibrium", client=None, chunk_bits: int | None = None, *,
                          all_optima: bool = False, tol: float | None = None, max_optima: int | None = None,
                          time_limit: float | None = None, retries: int = DEFAULT_RETRIES,
                          progress: bool = False, max_n: int = 40, chunk_fn=None):
    """Exhaustive enumeration of ``2^n`` profiles on a Dask cluster; same result as ``dm_opt.solve``.

    The profiles are split into ``2^chunk_bits`` chunks by fixing the leading
    users (:func:`dm_opt.gaussian.backends.enumeration.plan_chunks`); each chunk is
    walked on a worker (:func:`~dm_opt.gaussian.backends.enumeration.run_chunk`: add-only
    posterior states, docs/spec.md §1.1) and the candidates — every profile within
    ``tol`` plus the walk's round-off margin of the best — are merged and
    re-evaluated from fresh states on the client
    (:func:`~dm_opt.gaussian.backends.enumeration.raw_from_chunks`).
    The returned :class:`~dm_opt.gaussian.result.SolveResult` is built by
    :func:`dm_opt.gaussian.api.finish` exactly as for ``dm_opt.solve(..., method="enumerate")``
    (objective re-evaluated exactly; canonical profile = optimal one with the
    smallest bit mask), so the answer does not depend on the chunking or the cluster.

    Parameters
    ----------
    market : GaussianMarket
    problem : str or LeakageObjective
    client : distributed.Client, optional
        Default: a temporary ``LocalCluster`` with one single-threaded worker per CPU.
    chunk_bits : int, optional
        Users fixed per chunk (``2^chunk_bits`` tasks); default
        :func:`default_chunk_bits` (≈ 16 chunks per worker thread).
    all_optima, tol, max_optima
        As in :func:`dm_opt.solve` / enumeration (ties: absolute ``tol``).
    time_limit : float, optional
        Seconds; on expiry pending chunks are cancelled and the result has status
        ``time_limit`` with the best profile found and a proven bound.
    retries : int
        Dask retries per chunk.  A chunk that still fails makes the status ``error``.
    progress : bool
        tqdm bar over chunks.
    max_n : int
        Refuse ``n > max_n`` (2^n profiles; n = 30 is ~10⁹ profiles, minutes on 2 cores).
    chunk_fn : callable, optional
        Replaces :func:`run_chunk` (same signature); for tests that inject failures.

    Raises
    ------
    ProblemError
        Bad arguments (not a GaussianMarket, negative ``chunk_bits``/``retries``, …).
    LimitExceeded
        ``n > max_n``, or more than ``max_optima`` ties with ``all_optima=True``.
    BackendUnavailable
        Dask is not installed.
    """
    _dask()
    if not isinstance(market, GaussianMarket):
        raise ProblemError(f"enumerate_distributed takes a GaussianMarket, got {type(market).__name__}")
    if isinstance(problem, LeakageObjective):
        objective = problem
        if objective.n != market.n:
            raise ProblemError(f"objective has {objective.n} weights, market has {market.n} users")
    else:
        objective = market.objective(problem)
    n = market.n
    if n > min(max_n, HARD_MAX_N):
        raise LimitExceeded(f"distributed enumeration walks 2^n profiles; n = {n} exceeds max_n = {max_n}")
    time_limit = check_time_limit(time_limit)
    if chunk_bits is not None and (isinstance(chunk_bits, bool) or not isinstance(chunk_bits, int)
                                   or not 0 <= chunk_bits <= n):
        raise ProblemError(f"chunk_bits must be an integer in [0, n = {n}], got {chunk_bits!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ProblemError(f"retries must be an integer >= 0, got {retries!r}")
    if tol is None:
        tol = default_tol(market, objective)
    capacity = int(max_optima or DEFAULT_MAX_OPTIMA)
    chunk_fn = chunk_fn or run_chunk

    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(open_client())
        threads = _n_threads(client)
        if chunk_bits is None:
            chunk_bits = default_chunk_bits(n, threads)
        plan = plan_chunks(n, chunk_bits)
        t0 = time.perf_counter()
        deadline = None if time_limit is None else t0 + float(time_limit)
        distributed = _dask()
        tag = uuid.uuid4().hex[:8]
        futures = {client.submit(chunk_fn, market, objective, plan, cid, tol, capacity,
                                 key=f"dm_opt-enum-{tag}-{cid}", pure=False, retries=retries): cid
                   for cid in range(plan.n_chunks)}
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=plan.n_chunks, unit="chunk", desc=f"enumerate n={n} on Dask", leave=False)
        done, failed = [], {}
        status, message = Termination.OPTIMAL, ""
        try:
            ac = distributed.as_completed(list(futures))

            def take(batch):
                for fut in batch:
                    cid = futures[fut]
                    if fut.status == "finished":
                        try:
                            done.append(fut.result())
                        except Exception:
                            # the worker holding the result died before we fetched it: Dask
                            # recomputes the chunk; wait for it again
                            ac.add(fut)
                            continue
                    elif fut.status == "error":
                        exc = fut.exception()
                        failed[cid] = f"{type(exc).__name__}: {exc}"
                    elif fut.status in ("pending", "lost"):
                        # computed on a worker that has since died: rescheduled by Dask
                        ac.add(fut)
                        continue
                    else:  # cancelled: never silently dropped
                        failed[cid] = f"chunk {fut.status}"
                    if bar is not None:
                        bar.update(1)

            if deadline is None:
                for batch in ac.batches():
                    take(batch)
            else:
                while not ac.is_empty():
                    if ac.has_ready():
                        take(ac.next_batch(block=False))
                    elif time.perf_counter() >= deadline:
                        status = Termination.TIME_LIMIT
                        message = (f"time limit {time_limit}s reached after {len(done)}/{plan.n_chunks} chunks; "
                                   f"bound from monotone interval bounds on the rest")
                        break
                    else:
                        time.sleep(0.005)
        except KeyboardInterrupt:
            status, message = Termination.INTERRUPTED, "interrupted by the user"
        finally:
            release(client, futures, bar)
        elapsed = time.perf_counter() - t0

    done.sort(key=lambda r: r.chunk_id)
    if failed:
        status = Termination.ERROR
        ids = sorted(failed)
        first = failed[ids[0]]
        message = (f"{len(ids)}/{plan.n_chunks} chunk(s) failed after {retries} retries "
                   f"(chunk ids {ids[:10]}{'...' if len(ids) > 10 else ''}; first error: {first}); "
                   f"the answer covers only the chunks that finished and is NOT a proven optimum")
    extra = {"chunks": plan.n_chunks, "chunks_done": len(done), "chunk_bits": plan.k,
             "failed_chunks": sorted(failed), "workers_threads": threads, "distributed": True}
    if not done:
        raw = RawSolution(None, status if status is not Termination.OPTIMAL else Termination.ERROR,
                          float("inf"), None, 0, 0.0, elapsed, message or "no chunk finished", extra)
        return finish(market, objective, raw, method="enumerate", tol=tol)
    raw = raw_from_chunks(market, objective, plan, done, tol, all_optima=all_optima, max_optima=capacity,
                          status=status, elapsed=elapsed, extra=extra,
                          message=message or f"distributed over {threads} worker thread(s), {plan.n_chunks} chunks")
    return finish(market, objective, raw, method="enumerate", tol=tol)

