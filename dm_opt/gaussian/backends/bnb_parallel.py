"""Parallel exact branch-and-bound over subtrees (``method="bnb"`` with ``workers=`` or ``scheduler=``).

The serial compiled depth-first search (:func:`dm_opt.gaussian.backends.bnb._gaussian_dfs`) is
run on *subtrees*: a subtree is an open node of the serial search — a partial profile
``state`` (int8 (n,): 0 free, 1 in, 2 out) produced by the search's own branching (its
order, its symmetry-chain fixings) — with a proven bound on all its completions (its
parent's node bound, docs/spec.md §1.3).  Searching a subtree is exactly the serial search
continued from that node, so the union of the subtrees' searches visits what the serial
search visits, less what a better incumbent prunes.

* **split**: the root is expanded breadth-first with the kernel itself (one node per
  call, ``node_limit=1``) into about :data:`SUBTREES_PER_WORKER` subtrees per worker,
  queued in the serial search's depth-first order;
* **dynamic queue**: a free worker takes the next subtree; a queued subtree whose bound
  is within the pruning slack of the incumbent is dropped (the serial search prunes it
  by the same rule);
* **work stealing** (local threads): when the queue is empty and a worker is idle, the
  longest-running subtree is asked to stop at its next chunk and return its open nodes
  (its depth-first stack: the nodes nearest its root are its largest remaining parts),
  which are queued again;  on Dask every task stops after :data:`DASK_SLICE` seconds and
  returns its open nodes the same way (no messages to running tasks);
* **shared incumbent**: local threads exchange the incumbent between compiled chunks
  (every ~50 ms, :data:`dm_opt.gaussian.backends.bnb.CHUNK_SECONDS`), Dask tasks through a
  Dask ``Variable`` every :data:`DASK_SYNC` seconds; every started subtree (thread or Dask task)
  receives the best incumbent so far as its cutoff.

Local workers are threads: the kernels are compiled ``nogil``, so threads run on all cores
and share the incumbent in memory (measured against the serial search in
``benchmarks/bnb_parallel.py``).

Exactness: every subtree prunes with the serial rule (``bound ≤ incumbent + PRUNE_FRACTION·tol``
with an exact incumbent value), so the answer is within ``PRUNE_FRACTION·tol`` of the
optimum (a tie).  A stopped run (time or node limit, Ctrl-C, a failed Dask task) reports
the proven bound ``max(incumbent, bounds of every subtree not fully searched)``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.core.registry import RawSolution
from dm_opt.core.result import Termination

#: Subtrees made at the root per worker before the parallel search starts.
SUBTREES_PER_WORKER = 8
#: Most root expansions (kernel calls of one node each) spent on the split.
MAX_SPLIT_EXPANSIONS = 512
#: A running subtree is split for an idle worker only once it has run this long (s).
SPLIT_AFTER = 0.1
#: Seconds one Dask task searches before it returns its open nodes to the queue.
DASK_SLICE = 2.0
#: Seconds between incumbent exchanges of a Dask task with the shared Dask ``Variable``.
DASK_SYNC = 0.25
#: Longest the driver blocks waiting for a subtree (s): the latency of time-limit stops and split requests.
WAIT = 0.05
#: Message of a subtree that stopped to hand its open nodes back (not a user-visible status).
SPLIT_MESSAGE = "split for an idle worker"


def check_parallel(market, workers, scheduler, *, search, generic, constraints) -> None:
    """Validate the options ``workers`` / ``scheduler`` (one message naming the field)."""
    from dm_opt.gaussian.market import GaussianMarket

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 1):
        raise ProblemError(f"workers must be a positive integer, got {workers!r}")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ProblemError(f"scheduler must be a Dask scheduler address such as 'tcp://host:8786', got {scheduler!r}")
    why = ("the market is not a GaussianMarket" if not isinstance(market, GaussianMarket)
           else "generic=True" if generic
           else f"search='{search}'" if search != "depth"
           else "linear side rows are given" if constraints is not None and constraints.linear is not None
           else "")
    if why:
        raise ProblemError(f"options workers/scheduler parallelise the compiled depth-first search only "
                           f"(a GaussianMarket, search='depth', no linear side rows); here {why}")


@dataclass
class Outcome:
    """What one subtree search returns (picklable: it travels back from Dask workers)."""
    value: float                  # best incumbent value seen (the cutoff it started with, at least)
    profile: np.ndarray | None    # its profile (None: nothing feasible seen)
    status: Termination
    message: str
    nodes: int
    open_nodes: list              # [(state int8 (n,), bound)]: nodes left unexplored
    seconds: float
    cpu: float = 0.0              # CPU seconds of the thread that ran it
    worker: str = ""              # which thread (and Dask worker) ran it

    @property
    def split(self) -> bool:
        return self.status is Termination.NODE_LIMIT and self.message == SPLIT_MESSAGE


def solve_subtree(market, objective, setup, order, prefer_in, state, incumbent, options, *, tol, time_limit,
                  node_limit, between=None) -> Outcome:
    """Serial compiled search of the subtree at ``state`` (shape (n,)) with the cutoff ``incumbent``
    (``(value, profile)`` or None); ``options``: the dfs options (``order_name``, ``modular``, …)."""
    from dm_opt.gaussian.backends.bnb import _gaussian_dfs

    t0, c0 = time.perf_counter(), time.thread_time()
    sub = dataclasses.replace(setup, state0=np.asarray(state, dtype=np.int8).copy())
    open_nodes: list = []
    raw = _gaussian_dfs(market, objective, sub, order, prefer_in, tol=tol, time_limit=time_limit,
                        node_limit=node_limit, progress=False, incumbent=incumbent, between=between,
                        open_out=open_nodes, **options)
    value = float(raw.extra["incumbent_value"])
    status = Termination.OPTIMAL if raw.status is Termination.INFEASIBLE else raw.status
    return Outcome(value, raw.profile if np.isfinite(value) else None, status, raw.message, int(raw.nodes),
                   open_nodes, time.perf_counter() - t0, time.thread_time() - c0, _worker_name())


def _worker_name() -> str:
    prefix = ""
    dist = sys.modules.get("distributed")       # never imported here for local threads (slow import)
    if dist is not None:
        try:
            prefix = dist.get_worker().address + "/"
        except ValueError:                      # not on a Dask worker
            pass
    return prefix + threading.current_thread().name


class _Slice:
    """``between`` hook of a Dask task: exchange the incumbent with the Dask ``Variable`` named
    ``shared`` every :data:`DASK_SYNC` seconds, and stop after ``seconds`` to hand the open nodes back."""

    def __init__(self, seconds, shared):
        self.seconds = seconds
        self.t0 = self.last = time.perf_counter()
        self.var = None
        if shared is not None:
            from distributed import Variable

            self.var = Variable(shared)

    def __call__(self, inc_a, inc_val):
        now = time.perf_counter()
        if self.var is not None and now - self.last >= DASK_SYNC:
            self.last = now
            # read-then-write races only lose pruning, never exactness: every value is an exact profile value
            try:
                got = self.var.get(timeout=DASK_SYNC)
                if got[0] > inc_val[0]:
                    inc_val[0], inc_a[:] = got[0], got[1]
                elif inc_val[0] > got[0]:
                    self.var.set((float(inc_val[0]), inc_a.copy()))
            except TimeoutError:          # a slow scheduler: exchange at the next chunk
                pass
        if now - self.t0 >= self.seconds:
            return Termination.NODE_LIMIT, SPLIT_MESSAGE
        return None


def _dask_subtree(market, objective, setup, order, prefer_in, state, incumbent, options, tol, time_limit,
                  node_limit, slice_seconds, shared=None) -> Outcome:
    return solve_subtree(market, objective, setup, order, prefer_in, state, incumbent, options, tol=tol,
                         time_limit=time_limit, node_limit=node_limit, between=_Slice(slice_seconds, shared))


# ------------------------------------------------------------------ pools
class _Shared:
    """The incumbent shared by the threads (and the driver), and the stop request."""

    def __init__(self):
        self.lock = threading.Lock()
        self.value = -np.inf
        self.profile = None
        self.stop = None

    def offer(self, value, profile) -> None:
        with self.lock:
            if value > self.value and profile is not None:
                self.value, self.profile = float(value), np.array(profile, dtype=np.int8)

    def incumbent(self):
        with self.lock:
            return None if self.profile is None else (self.value, self.profile.copy())


class _ThreadTask:
    def __init__(self, shared: _Shared):
        self.shared = shared
        self.split = False

    def between(self, inc_a, inc_val):
        sh = self.shared
        v = float(inc_val[0])
        with sh.lock:
            if v > sh.value:
                sh.value, sh.profile = v, inc_a.copy()
            elif sh.value > v:
                inc_val[0] = sh.value
                inc_a[:] = sh.profile
        if sh.stop is not None:
            return sh.stop
        if self.split:
            return Termination.NODE_LIMIT, SPLIT_MESSAGE
        return None


class _ThreadPool:
    kind = "threads"

    def __init__(self, workers, problem):
        self.slots = int(workers)
        self.problem = problem
        self.shared = _Shared()
        self.ex = concurrent.futures.ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="dm_opt-bnb")

    def submit(self, state, incumbent, time_limit, node_limit):
        task = _ThreadTask(self.shared)
        p = self.problem
        fut = self.ex.submit(solve_subtree, p.market, p.objective, p.setup, p.order, p.prefer_in, state,
                             incumbent, p.options, tol=p.tol, time_limit=time_limit, node_limit=node_limit,
                             between=task.between)
        fut.task = task
        return fut

    def wait(self, futs, timeout) -> None:
        concurrent.futures.wait(futs, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)

    def request_split(self, fut) -> bool:
        if fut.task.split:
            return False
        fut.task.split = True
        return True

    def stop(self, status) -> None:
        self.shared.stop = status

    def result(self, fut):
        return fut.result()           # an exception in a thread is a bug: raised here

    def failed(self, fut) -> str:
        return ""

    def cancelled(self, fut) -> bool:
        return False

    def cancel(self, futs) -> None:
        pass                          # threads stop at their next chunk (``stop``)

    def close(self):
        self.ex.shutdown(wait=True)


class _DaskPool:
    kind = "dask"

    def __init__(self, client, workers, problem, retries):
        from dm_opt.gaussian.distributed import _n_threads

        self.client = client
        self.slots = int(workers) if workers is not None else _n_threads(client)
        self.problem = problem
        self.retries = retries
        self.shared = _Shared()
        # the market and objective go to every worker once (tasks carry data, never pointers)
        # (hash=False: fresh keys, never data a previous run's client is releasing)
        self.market_f, self.objective_f = client.scatter([problem.market, problem.objective], broadcast=True,
                                                         hash=False)
        self.tag = uuid.uuid4().hex[:8]
        self.count = 0
        from distributed import Variable

        self.var = Variable(f"dm_opt-bnb-incumbent-{self.tag}", client=client)
        self.var.set((-np.inf, None))

    def submit(self, state, incumbent, time_limit, node_limit):
        p = self.problem
        self.count += 1
        if incumbent is not None:
            self.publish(incumbent)
        return self.client.submit(_dask_subtree, self.market_f, self.objective_f, p.setup, p.order, p.prefer_in,
                                  state, incumbent, p.options, p.tol, time_limit, node_limit, DASK_SLICE,
                                  self.var.name, key=f"dm_opt-bnb-{self.tag}-{self.count}", pure=False,
                                  retries=self.retries)

    def publish(self, incumbent):
        """Put the driver's incumbent into the shared Variable when it is better (and take a better one)."""
        got = self.var.get(timeout=60)
        if got[0] > incumbent[0]:
            self.shared.offer(*got)
        elif incumbent[0] > got[0]:
            self.var.set((float(incumbent[0]), np.array(incumbent[1], dtype=np.int8)))

    def wait(self, futs, timeout) -> None:
        from distributed import wait

        try:
            wait(futs, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            pass

    def request_split(self, fut) -> bool:
        return False                  # tasks return by themselves every DASK_SLICE seconds

    def stop(self, status) -> None:
        self.shared.stop = status

    def result(self, fut):
        return fut.result()

    def failed(self, fut) -> str:
        if fut.status == "error":
            exc = fut.exception()
            return f"{type(exc).__name__}: {exc}"
        return ""

    def cancelled(self, fut) -> bool:
        return fut.status == "cancelled"

    def cancel(self, futs) -> None:
        pending = [f for f in futs if not f.done()]
        if pending:
            self.client.cancel(pending)

    def close(self):
        with contextlib.suppress(Exception):     # the cluster may be gone already
            self.var.delete()


@dataclass
class _Problem:
    market: object
    objective: object
    setup: object
    order: np.ndarray
    prefer_in: np.ndarray
    options: dict
    tol: float


# ------------------------------------------------------------------ driver
def _split_root(problem: _Problem, target: int, shared: _Shared, deadline) -> tuple[deque, int]:
    """Expand the root breadth-first with the kernel (one node per call) into ≥ ``target`` open
    nodes (fewer if the tree is smaller), in the serial depth-first order; the incumbents found on
    the way go to ``shared``.  Returns the queue of ``(state, bound)`` and the nodes processed."""
    prune_tol = _prune_tol(problem.tol)
    frontier = [(problem.setup.state0.copy(), np.inf)]
    nodes = 0
    expansions = 0
    while 0 < len(frontier) < target and expansions < MAX_SPLIT_EXPANSIONS:
        if expansions > 0 and deadline is not None and time.perf_counter() >= deadline:
            break             # (the root is always processed: a stopped run has its incumbents)
        before = expansions
        nxt = []
        for i, (state, bound) in enumerate(frontier):
            if len(nxt) + (len(frontier) - i) >= target or expansions >= MAX_SPLIT_EXPANSIONS:
                nxt.append((state, bound))
                continue
            if bound <= shared.value + prune_tol:
                continue
            out = solve_subtree(problem.market, problem.objective, problem.setup, problem.order,
                                problem.prefer_in, state, shared.incumbent(), problem.options, tol=problem.tol,
                                time_limit=None, node_limit=1)
            expansions += 1
            nodes += out.nodes
            shared.offer(out.value, out.profile)
            # the stack lists bottom → top; the serial search pops the top first
            nxt.extend(reversed(out.open_nodes))
        frontier = nxt
        if expansions == before:
            break
    return deque(frontier), nodes


def _prune_tol(tol):
    from dm_opt.gaussian.backends.bnb import PRUNE_FRACTION

    return PRUNE_FRACTION * tol


def parallel_dfs(market, objective, setup, order, prefer_in, *, workers, scheduler, tol, time_limit, node_limit,
                 progress, retries: int = 2, client=None, **options) -> RawSolution:
    """Parallel version of :func:`dm_opt.gaussian.backends.bnb._gaussian_dfs` (same arguments, plus
    ``workers`` / ``scheduler``): local threads, or tasks on the Dask cluster at ``scheduler``
    (or on ``client``).  Returns the raw solution with ``extra["workers"]``, ``["subtrees"]``
    (subtree searches run), ``["splits"]`` (subtrees handed back for idle workers),
    ``["worker_cpu_seconds"]`` (CPU seconds per worker thread) and ``["driver_cpu_seconds"]`` (this thread:
    the root split and the queue)."""
    from dm_opt.gaussian.backends.bnb import _Progress, _raw, symmetry_chains

    t0, c0 = time.perf_counter(), time.thread_time()
    deadline = None if time_limit is None else t0 + float(time_limit)
    if setup.symmetry:
        chained = int(np.sum(symmetry_chains(market, objective, setup)[1] >= 0))
        # no twins: spare every subtree the detection
        setup = dataclasses.replace(setup, symmetry=chained > 0, chained=chained)
    problem = _Problem(market, objective, setup, order, prefer_in, options, float(tol))
    prune_tol = _prune_tol(problem.tol)
    show = _Progress(progress)
    with contextlib.ExitStack() as stack:
        if scheduler is not None or client is not None:
            if client is None:
                from dm_opt.gaussian.distributed import CONNECT_TIMEOUT, open_client

                # a silent scheduler may not hold the solve past its time limit
                wait = CONNECT_TIMEOUT if deadline is None else min(CONNECT_TIMEOUT, max(1.0, deadline - t0))
                client = stack.enter_context(open_client(scheduler, connect_timeout=wait))
            pool = _DaskPool(client, workers, problem, retries)
            stack.callback(pool.close)
        else:
            pool = _ThreadPool(workers or 1, problem)
            stack.callback(pool.close)
        shared = pool.shared
        queue, nodes = _split_root(problem, SUBTREES_PER_WORKER * pool.slots, shared, deadline)
        running: dict = {}                 # future -> (state, bound, start time)
        unresolved: list = []              # bounds of subtrees left unexplored at a stop
        failed: list = []
        stop = None
        subtrees = splits = 0
        cpu: dict = {}                     # CPU seconds per worker thread
        while queue or running:
            try:
                if stop is None:
                    if deadline is not None and time.perf_counter() >= deadline:
                        stop = (Termination.TIME_LIMIT, f"time limit {time_limit}s reached")
                    elif node_limit is not None and nodes >= node_limit:
                        stop = (Termination.NODE_LIMIT, f"node limit {node_limit} reached")
                    if stop is not None:
                        pool.stop(stop)          # running subtrees stop by their own limits
                if stop is not None and queue:
                    unresolved.extend(b for _, b in queue)      # never started: their bounds stay open
                    queue.clear()
                while stop is None and queue and len(running) < pool.slots:
                    state, bound = queue.popleft()
                    if bound <= shared.value + prune_tol:
                        continue                       # the serial search prunes it by the same rule
                    left = None if deadline is None else max(0.0, deadline - time.perf_counter())
                    fut = pool.submit(state, shared.incumbent(), left,
                                      None if node_limit is None else max(1, node_limit - nodes))
                    running[fut] = (state, bound, time.perf_counter())
                    subtrees += 1
                if stop is None and not queue and 0 < len(running) < pool.slots:
                    # an idle worker: the longest-running subtree hands back its open nodes
                    fut, (_, _, started) = min(running.items(), key=lambda kv: kv[1][2])
                    if time.perf_counter() - started >= SPLIT_AFTER:
                        pool.request_split(fut)
                if running:
                    pool.wait(list(running), WAIT)         # blocks: no polling CPU in the driver
                done = [f for f in running if f.done()]
                if not done:
                    continue
                for fut in done:
                    state, bound, _ = running.pop(fut)
                    if pool.cancelled(fut):
                        unresolved.append(bound)
                        continue
                    why = pool.failed(fut)
                    if why:
                        failed.append(why)
                        unresolved.append(bound)
                        continue
                    out = pool.result(fut)
                    nodes += out.nodes
                    cpu[out.worker] = cpu.get(out.worker, 0.0) + out.cpu
                    shared.offer(out.value, out.profile)
                    if out.split:
                        splits += 1
                        queue.extendleft(out.open_nodes)     # top of its stack first: depth-first order
                    elif out.status is not Termination.OPTIMAL:
                        unresolved.extend(b for _, b in out.open_nodes)
                        if stop is None:
                            stop = (out.status, out.message)
                            pool.stop(stop)
                open_b = max([b for _, b, _ in running.values()] + [b for _, b in queue] + unresolved,
                             default=-np.inf)
                show(nodes, shared.value, max(shared.value, open_b))
            except KeyboardInterrupt:
                stop = (Termination.INTERRUPTED, "interrupted by the user")
                pool.stop(stop)
                pool.cancel(list(running))
    elapsed = time.perf_counter() - t0
    best = shared.value
    status, message = (Termination.OPTIMAL, "") if stop is None else stop
    if failed:
        status = Termination.ERROR
        message = (f"{len(failed)} subtree task(s) failed (first error: {failed[0]}); the answer is NOT a "
                   f"proven optimum, the bound covers the failed subtrees")
    bound = max([best] + unresolved) if status is not Termination.OPTIMAL else best
    show(nodes, best, bound, force=True)
    raw = _raw(shared.profile if np.isfinite(best) else None, best, bound, status, message, nodes, elapsed,
               setup, search="depth", path=f"gaussian-{pool.kind}")
    driver_cpu = time.thread_time() - c0
    raw.extra.update({"workers": pool.slots, "subtrees": subtrees, "splits": splits,
                      "worker_cpu_seconds": dict(sorted(cpu.items())), "driver_cpu_seconds": driver_cpu})
    return raw
