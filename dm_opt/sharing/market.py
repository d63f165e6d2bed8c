"""Data-sharing networks of Rasouli & Jordan, *Data Sharing Markets* (RJ).

``N`` agents hold data.  Agent ``i`` values the set ``S`` of agents whose data
it receives by ``U_i(S)`` and pays a sharing cost ``c_i(j)`` for each agent
``j`` that receives *its* data (additive cost structure, RJ Assumption 4.2,
eq. 4).  Two utility families:

* ``table`` — an explicit table ``U_i(S)`` over every subset ``S`` of the
  other agents (small ``N``, at most :data:`MAX_TABLE_AGENTS`);
* ``power`` — the machine-learning family of RJ Remark 5.3 / Corollary 3.1.1:
  the value of data is concave in the total number of samples received,

      U_i(S) = α_i (1 − (n_i + Σ_{j∈S} q_j w_j)^(−β_i)),

  with ``n_i > 0`` the agent's own samples, ``q_j`` the samples delivered by
  one unit of ``j``'s data (default ``q_j = n_j``: the whole data set) and
  ``w_j`` the number of units (0/1 for data sets; up to ``max_queries`` for
  the per-query extension of RJ §6, eq. 35).

The three sections of RJ use the primitives as follows.

* §3 (bilateral sharing): agent ``i``'s preference over ``S_i`` (its partners)
  is :meth:`SharingMarket.bilateral_value` ``= U_i(S) − Σ_{j∈S} c_i(j)`` — it
  receives the partners' data and pays for sending its own to them.
* §4–§6 (unilateral sharing): a directed graph ``G``; agent ``i``'s total
  utility is ``V_i(G) = U_i(S_i^I) − Σ_{j∈S_i^O} c_i(j)`` (eq. 3–4) and the
  welfare decomposes per buyer (eq. 11) into
  :meth:`SharingMarket.buyer_value` ``= U_i(S) − Σ_{j∈S} c_j(i)``.

Agents are indexed ``0..N−1`` (the paper's agent ``k`` is index ``k−1``);
sets of agents are bit masks (bit ``j`` = agent ``j``) in the table family.
"""

from __future__ import annotations

import numbers

import numpy as np

from dm_opt.core.errors import InstanceError, LimitExceeded, ProblemError
from dm_opt.core.validate import MAX_ABS, as_array, as_vector, check_nonnegative

#: Largest N for an explicit utility table (N · 2^N entries).
MAX_TABLE_AGENTS = 16
#: Largest number of queries per seller (§6); units × samples stay far inside float range.
MAX_QUERIES = 10**9
#: Largest N for the power family (the mechanisms build N × N cost matrices: 200 MB).
MAX_POWER_AGENTS = 5000

FAMILIES = ("table", "power")


def _mask(S) -> int:
    """A set of agents (iterable of indices, or an int mask) as a bit mask."""
    if isinstance(S, (numbers.Integral, np.integer)) and not isinstance(S, bool):
        return int(S)
    m = 0
    for j in S:
        m |= 1 << int(j)
    return m


def members(mask: int) -> tuple:
    """Agents in a bit mask, ascending."""
    out = []
    j = 0
    while mask:
        if mask & 1:
            out.append(j)
        mask >>= 1
        j += 1
    return tuple(out)


class SharingMarket:
    """A data-sharing market (RJ §3–§6).

    Build with :meth:`from_table` or :meth:`power` (or the constructor with
    ``family=``).

    Parameters
    ----------
    family : {"table", "power"}
    utility : array (N, 2^N), table family
        ``utility[i, mask]`` = ``U_i(S)`` for the set ``S`` given by ``mask``;
        bit ``i`` of ``mask`` is ignored (an agent always has its own data).
    samples, alpha, beta : arrays (N,), power family
        Own samples ``n_i > 0``, scale ``α_i ≥ 0`` and exponent ``β_i > 0``.
    cost : scalar, array (N,) or array (N, N)
        Sharing costs ``c_i(j) ≥ 0`` (RJ eq. 4; per query in §6, eq. 35):
        a scalar (same for every pair), a vector (``c_i(j) = cost[i]`` for all
        ``j``: the cost of ``i`` sending its data does not depend on who
        receives it) or a matrix ``cost[i, j] = c_i(j)`` (diagonal ignored).
    query_samples : array (N,), power family, optional
        ``q_j``: samples delivered by one query on ``j``'s data (default ``n_j``).
    max_queries : int or array (N,) of int, optional
        Largest number of queries any buyer may run on ``j``'s data (§6);
        default 1 (plain data sharing, §4–§5).
    names : sequence of str, optional
        Agent labels (default ``"1".."N"``, the paper's numbering).
    """

    kind = "sharing_network"          # the instance-file kind
    family = "sharing"


    kind = "sharing_network"

    def __init__(self, family: str, *, utility=None, samples=None, alpha=None, beta=None,
                 cost=None, query_samples=None, max_queries=None, names=None,
                 name: str | None = None, source: str | None = None, where: str | None = None):
        if not isinstance(family, str) or family not in FAMILIES:
            shown = " ".join(repr(family).split())[:60]
            raise InstanceError("family", f"unknown family {shown}; choose one of {', '.join(FAMILIES)}", where)
        self.family = family
        self.name = name
        self.source = source
        if family == "table":
            for fld, val in (("samples", samples), ("alpha", alpha), ("beta", beta),
                             ("query_samples", query_samples)):
                if val is not None:
                    raise InstanceError(fld, "only for family 'power' (the table family gives utility directly)", where)
            if utility is None:
                raise InstanceError("utility", "missing (family 'table' needs a utility table)", where)
            U = as_array("utility", utility, ndim=2, where=where)
            N = U.shape[0]
            if N < 2:
                raise InstanceError("utility", f"needs at least 2 agents, got {N}", where)
            if N > MAX_TABLE_AGENTS:
                raise InstanceError("utility", f"{N} agents exceed the table limit {MAX_TABLE_AGENTS}; "
                                    "use family 'power'", where)
            if U.shape[1] != 1 << N:
                raise InstanceError("utility", f"expected shape ({N}, {1 << N}) (one column per subset), "
                                    f"got {U.shape}", where)
            U = U.copy()
            # Bit i of row i is irrelevant: make U[i, m | bit i] = U[i, m] so lookups never care.
            for i in range(N):
                idx = np.arange(1 << N)
                U[i] = U[i, idx & ~(1 << i)]
            U.setflags(write=False)
            self._U = U
            self._N = N
        else:
            if utility is not None:
                raise InstanceError("utility", "only for family 'table'", where)
            if samples is None:
                raise InstanceError("samples", "missing (family 'power' needs own sample counts n_i)", where)
            n = as_vector("samples", samples, where=where, positive=True, min_len=2)
            N = n.shape[0]
            if N > MAX_POWER_AGENTS:
                raise InstanceError("samples", f"{N} agents exceed the limit {MAX_POWER_AGENTS} of the power family",
                                    where)
            a = as_vector("alpha", 1.0 if alpha is None else alpha, N, where=where, nonnegative=True)
            b = as_vector("beta", 0.5 if beta is None else beta, N, where=where, positive=True)
            q = n.copy() if query_samples is None else as_vector("query_samples", query_samples, N,
                                                                   where=where, positive=True)
            # U_i = α_i (1 − m^(−β_i)) with m ≥ n_i: its scale α_i n_i^(−β_i) must stay finite (log space)
            with np.errstate(divide="ignore"):
                scale = np.log(a) - b * np.log(n)
            if np.any(scale > np.log(MAX_ABS)):
                i = int(np.argmax(scale > np.log(MAX_ABS)))
                raise InstanceError(f"samples[{i}]", f"= {n[i]:.6g} with alpha[{i}] = {a[i]:.6g} and beta[{i}] = "
                                    f"{b[i]:.6g}: the utility scale alpha·samples^(−beta) = e^{scale[i]:.6g} "
                                    f"exceeds {MAX_ABS:g}; use larger sample counts or a smaller beta", where)
            for arr in (n, a, b, q):
                arr.setflags(write=False)
            self.samples, self.alpha, self.beta, self.query_samples = n, a, b, q
            self._U = None
            self._N = N
        N = self._N
        # costs
        if cost is None:
            cost = 0.0
        if isinstance(cost, numbers.Real) and not isinstance(cost, bool):
            c = as_vector("cost", [cost], where=where)
            check_nonnegative("cost", c, where)
            self.cost_kind, self._cost = "scalar", np.full(N, float(c[0]))
        else:
            c = as_array("cost", cost, where=where)
            if c.ndim == 1:
                if c.shape[0] != N:
                    raise InstanceError("cost", f"expected length {N} (one cost per sender) or an {N}x{N} matrix, "
                                        f"got length {c.shape[0]}", where)
                check_nonnegative("cost", c, where)
                self.cost_kind, self._cost = "vector", c.astype(float)
            elif c.ndim == 2:
                if c.shape != (N, N):
                    raise InstanceError("cost", f"expected shape ({N}, {N}), got {c.shape}", where)
                c = c.astype(float).copy()
                np.fill_diagonal(c, 0.0)
                if np.any(c < 0):
                    i, j = np.argwhere(c < 0)[0]
                    raise InstanceError(f"cost[{i},{j}]", f"must be >= 0, got {c[i, j]}", where)
                self.cost_kind, self._cost = "matrix", c
            else:
                raise InstanceError("cost", f"expected a number, a vector or a matrix, got shape {c.shape}", where)
        self._cost.setflags(write=False)
        # queries (§6)
        if max_queries is None:
            Q = np.ones(N, dtype=np.int64)
        else:
            if isinstance(max_queries, numbers.Integral) and not isinstance(max_queries, bool):
                max_queries = [int(max_queries)] * N
            Qf = as_vector("max_queries", max_queries, N, where=where)
            if np.any(Qf > MAX_QUERIES):
                i = int(np.argmax(Qf > MAX_QUERIES))
                raise InstanceError(f"max_queries[{i}]", f"{Qf[i]:.6g} exceeds the limit {MAX_QUERIES:.0e}", where)
            if np.any(Qf != np.round(Qf)):
                i = int(np.argmax(Qf != np.round(Qf)))
                raise InstanceError(f"max_queries[{i}]", f"must be an integer, got {Qf[i]}", where)
            if np.any(Qf < 1):
                i = int(np.argmax(Qf < 1))
                raise InstanceError(f"max_queries[{i}]", f"must be >= 1, got {Qf[i]}", where)
            Q = Qf.astype(np.int64)
            if family == "table" and np.any(Q != 1):
                raise InstanceError("max_queries", "the per-query extension (§6) needs family 'power'", where)
        Q.setflags(write=False)
        self.max_queries = Q
        if names is None:
            names = [str(k + 1) for k in range(N)]
        if isinstance(names, str) or not isinstance(names, (list, tuple, np.ndarray)):
            raise InstanceError("names", f"expected a list of {N} non-empty strings, got {type(names).__name__}", where)
        names = list(names)
        if len(names) != N or not all(isinstance(s, str) and s for s in names):
            raise InstanceError("names", f"expected {N} non-empty strings", where)
        if len(set(names)) != N:
            raise InstanceError("names", "agent names must be distinct", where)
        self.names = tuple(names)

    # ---------------------------------------------------------------- builders
    @classmethod
    def from_table(cls, utility, cost=None, **kw) -> "SharingMarket":
        """Table family: ``utility[i, mask] = U_i(S)`` (see class docstring)."""
        return cls("table", utility=utility, cost=cost, **kw)

    @classmethod
    def from_sets(cls, n_agents: int, values: dict, cost=None, **kw) -> "SharingMarket":
        """Table family from ``{agent: {frozenset_of_partners: U}}`` (every subset required)."""
        where = kw.get("where")
        if not isinstance(n_agents, numbers.Integral) or isinstance(n_agents, bool) or n_agents < 2:
            raise InstanceError("n", f"must be an integer >= 2, got {n_agents!r}", where)
        if n_agents > MAX_TABLE_AGENTS:
            raise InstanceError("n", f"{n_agents} agents exceed the table limit {MAX_TABLE_AGENTS}", where)
        U = np.full((n_agents, 1 << n_agents), np.nan)
        if not isinstance(values, dict):
            raise InstanceError("utility", "expected a mapping agent -> {partner set: value}", where)
        for i in range(n_agents):
            if i not in values or not isinstance(values[i], dict):
                raise InstanceError(f"utility[{i}]", "missing agent (expected a mapping partner set -> value)", where)
            row = values[i]
            for S, v in row.items():
                m = _mask(S)
                if m >> n_agents or (m >> i) & 1:
                    raise InstanceError(f"utility[{i}]", f"set {sorted(members(m))} is not a set of other agents",
                                        where)
                U[i, m] = v
            others = [j for j in range(n_agents) if j != i]
            for m in range(1 << n_agents):
                if (m >> i) & 1:
                    continue
                if np.isnan(U[i, m]):
                    raise InstanceError(f"utility[{i}]", f"missing value for partner set {list(members(m))}", where)
            idx = np.arange(1 << n_agents)
            U[i] = U[i, idx & ~(1 << i)]
            del others
        return cls("table", utility=U, cost=cost, **kw)

    @classmethod
    def power(cls, samples, alpha=1.0, beta=0.5, cost=0.0, **kw) -> "SharingMarket":
        """Power family ``U_i(S) = α_i (1 − (n_i + Σ_{j∈S} q_j w_j)^(−β_i))``."""
        return cls("power", samples=samples, alpha=alpha, beta=beta, cost=cost, **kw)

    def to_dict(self) -> dict:
        """The instance table (kind ``sharing_network``, docs/instances.md) that
        :func:`dm_opt.load` reads back to an equal market (:func:`dm_opt.save` writes it).

        Table family: every ``U_i(S)`` keyed by the partner names joined by ``","``.  Power
        family: ``samples``, ``alpha``, ``beta`` (a scalar when all agents share it) and
        ``query_samples`` when it differs from ``samples``.  ``cost`` keeps its shape (scalar,
        per sender or matrix); ``max_queries`` only when some seller allows more than one.
        """
        d: dict = {"kind": self.kind}
        if self.name:
            d["name"] = str(self.name)
        if self.source:
            d["source"] = str(self.source)
        d["family"] = self.family
        d["agents"] = list(self.names)

        def scalar_or_list(a: np.ndarray):
            return float(a[0]) if np.all(a == a[0]) else a.tolist()

        if self.family == "table":
            d["utility"] = {
                self.names[i]: {",".join(self.names[j] for j in members(mask)): float(self._U[i, mask])
                                for mask in range(1 << self.n) if not (mask >> i) & 1}
                for i in range(self.n)}
        else:
            d["samples"] = self.samples.tolist()
            d["alpha"] = scalar_or_list(self.alpha)
            d["beta"] = scalar_or_list(self.beta)
            if not np.array_equal(self.query_samples, self.samples):
                d["query_samples"] = self.query_samples.tolist()
        d["cost"] = (float(self._cost[0]) if self.cost_kind == "scalar" else self._cost.tolist())
        if self.has_queries:
            d["max_queries"] = int(self.max_queries[0]) if np.all(self.max_queries == self.max_queries[0]) \
                else [int(k) for k in self.max_queries]
        return d

    # ---------------------------------------------------------------- access
    @property
    def n(self) -> int:
        """Number of agents ``N``."""
        return self._N

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<SharingMarket{label} family={self.family} N={self.n}>"

    def cost(self, i: int, j: int) -> float:
        """``c_i(j)``: cost to ``i`` of sending its data (one query, §6) to ``j``."""
        if i == j:
            return 0.0
        return float(self._cost[i, j]) if self.cost_kind == "matrix" else float(self._cost[i])

    def cost_matrix(self) -> np.ndarray:
        """``C[i, j] = c_i(j)`` with zero diagonal, shape (N, N)."""
        if self.cost_kind == "matrix":
            return self._cost.copy()
        C = np.repeat(self._cost[:, None], self.n, axis=1)
        np.fill_diagonal(C, 0.0)
        return C

    @property
    def cost_data(self) -> np.ndarray:
        """Raw cost data: vector (N,) for scalar/vector costs, else the matrix."""
        return self._cost

    @property
    def has_queries(self) -> bool:
        return bool(np.any(self.max_queries > 1))

    def _check_agent(self, i) -> int:
        if not isinstance(i, (numbers.Integral, np.integer)) or isinstance(i, bool) or not 0 <= i < self.n:
            raise ProblemError(f"agent index must be an integer in [0, {self.n - 1}], got {i!r}")
        return int(i)

    def value(self, i: int, S, weights=None) -> float:
        """``U_i(S)``: agent ``i``'s utility of receiving the data of the agents in ``S``.

        ``S`` is an iterable of agent indices or a bit mask.  For the power
        family ``weights`` (same length as ``S``, or a full (N,) vector of
        query counts / quality weights) multiplies each sender's contribution.
        """
        i = self._check_agent(i)
        if self.family == "table":
            if weights is not None:
                raise ProblemError("weights are only defined for family 'power'")
            return float(self._U[i, _mask(S)])
        if weights is None:
            idx = list(members(S)) if isinstance(S, (numbers.Integral, np.integer)) else [int(j) for j in S]
            idx = [j for j in idx if j != i]
            total = float(np.sum(self.query_samples[idx])) if idx else 0.0
        else:
            w = np.asarray(weights, dtype=float)
            if w.shape == (self.n,):
                w = w.copy()
                w[i] = 0.0
                total = float(w @ self.query_samples)
            else:
                idx = [int(j) for j in S]
                total = float(np.dot(w, self.query_samples[idx]))
        return self.power_value(i, total)

    def power_value(self, i: int, received: float) -> float:
        """``α_i (1 − (n_i + received)^(−β_i))`` for ``received`` samples (power family)."""
        return float(self.alpha[i] * (1.0 - (self.samples[i] + received) ** (-self.beta[i])))

    def bilateral_value(self, i: int, S) -> float:
        """Agent ``i``'s value of partner set ``S`` in bilateral sharing (§3):
        ``U_i(S) − Σ_{j∈S} c_i(j)``."""
        m = _mask(S) & ~(1 << int(i))
        return self.value(i, m) - sum(self.cost(i, j) for j in members(m))

    def buyer_value(self, i: int, S) -> float:
        """Buyer ``i``'s term of the welfare decomposition (RJ eq. 11):
        ``U_i(S) − Σ_{j∈S} c_j(i)``."""
        m = _mask(S) & ~(1 << int(i))
        return self.value(i, m) - sum(self.cost(j, i) for j in members(m))

    # -------------------------------------------------------------- tables
    def utility_table(self, max_agents: int = MAX_TABLE_AGENTS) -> np.ndarray:
        """``U[i, mask] = U_i(S)``, shape (N, 2^N) (power family tabulated; N ≤ ``max_agents``)."""
        if self.family == "table":
            return self._U
        N = self.n
        if N > max_agents:
            raise LimitExceeded(f"tabulating {N} agents needs N·2^N entries; the limit is N = {max_agents}")
        masks = np.arange(1 << N)
        bits = ((masks[:, None] >> np.arange(N)[None, :]) & 1).astype(float)      # (2^N, N)
        U = np.empty((N, 1 << N))
        for i in range(N):
            b = bits.copy()
            b[:, i] = 0.0
            U[i] = self.alpha[i] * (1.0 - (self.samples[i] + b @ self.query_samples) ** (-self.beta[i]))
        return U

    def _pair_cost_table(self, outgoing: bool) -> np.ndarray:
        """``T[i, mask] = Σ_{j∈mask, j≠i} c_i(j)`` (outgoing) or ``Σ c_j(i)`` (incoming)."""
        N = self.n
        C = self.cost_matrix()
        if not outgoing:
            C = C.T
        masks = np.arange(1 << N)
        bits = ((masks[:, None] >> np.arange(N)[None, :]) & 1).astype(float)
        T = bits @ C.T          # T[mask, i] = Σ_j bits[mask, j] C[i, j]
        return np.ascontiguousarray(T.T)

    def bilateral_table(self, max_agents: int = MAX_TABLE_AGENTS) -> np.ndarray:
        """``P[i, mask]`` = :meth:`bilateral_value` for every mask, shape (N, 2^N)."""
        return self.utility_table(max_agents) - self._pair_cost_table(outgoing=True)

    def buyer_table(self) -> np.ndarray:
        """``B[i, mask]`` = :meth:`buyer_value` for every mask, shape (N, 2^N)."""
        return self.utility_table() - self._pair_cost_table(outgoing=False)

    # ------------------------------------------------------------ welfare
    def as_share_matrix(self, share) -> np.ndarray:
        """Validate a directed sharing graph: ``share[i, j]`` = units of ``i``'s data
        sent to ``j`` (0/1; up to ``max_queries[i]`` in §6), integer (N, N), zero diagonal."""
        W = as_array("share", share, ndim=2, shape=(self.n, self.n))
        if np.any(W != np.round(W)) or np.any(W < 0):
            raise InstanceError("share", "entries must be non-negative integers")
        W = W.astype(np.int64)
        if np.any(np.diag(W) != 0):
            raise InstanceError("share", "an agent does not share with itself (diagonal must be 0)")
        if np.any(W > self.max_queries[:, None]):
            i, j = np.argwhere(W > self.max_queries[:, None])[0]
            raise InstanceError(f"share[{i},{j}]", f"exceeds max_queries[{i}] = {self.max_queries[i]}")
        return W

    def agent_values(self, share) -> np.ndarray:
        """``V_i(G) = U_i(S_i^I) − Σ_j share[i, j] c_i(j)`` for every agent (RJ eq. 3–4, 35), shape (N,)."""
        W = self.as_share_matrix(share)
        C = self.cost_matrix()
        out = np.empty(self.n)
        for i in range(self.n):
            if self.family == "table":
                u = self.value(i, _mask(np.flatnonzero(W[:, i])))
            else:
                u = self.value(i, None, weights=W[:, i].astype(float))
            out[i] = u - float(W[i] @ C[i])
        return out

    def welfare(self, share) -> float:
        """Social welfare ``Σ_i V_i(G)`` (RJ eq. 11, left side)."""
        return float(np.sum(self.agent_values(share)))


__all__ = ["SharingMarket", "MAX_TABLE_AGENTS", "members", "FAMILIES"]
