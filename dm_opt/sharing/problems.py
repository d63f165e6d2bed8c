"""The problem table of the sharing family (RJ; read by :func:`dm_opt.solve` and ``dm-opt solve``;
see :mod:`dm_opt.core.dispatch`).

Every function has the shape ``fn(market, *, method="auto", time_limit=None, options=None, **kw)``
and returns a result following :mod:`dm_opt.core.result`'s protocol.  ``method`` is ``"auto"``
(each problem has one exact algorithm); the per-buyer algorithm of the welfare problems is
``buyer_method=`` (``enumerate``, ``bnb``, ``milp``), which ``method=`` also accepts (the
spelling of ``dm-opt solve --method``).  ``options`` are the buyer-search options
``node_limit`` and ``max_rounds``.  ``time_limit`` is seconds or a shared
:class:`~dm_opt.core.limits.Deadline`; ``progress`` (passed by the CLI) is accepted and unused.

=================  ==============================================  =========================================
problem            what (RJ)                                       result
=================  ==============================================  =========================================
``ordered_match``  Prop 3.1 (assumptions checked; refused if they  :class:`~.bilateral.OrderedMatchResult`
                   fail)
``ordered_match_   §6 with §3: ordered match with query weights    :class:`~.queries.WeightedMatchResult`
queries``          (power family; see :mod:`~.queries` for what
                   it guarantees)
``check``          Defs 3.3–3.5 (top agent, limited compl.)        :class:`~.bilateral.AssumptionChecks`
``stability``      Def 3.2: every stable graph (N ≤ 6), else the   :class:`~.bilateral.StableOutcomes` /
                   ordered-match graph checked exhaustively         :class:`~.bilateral.StabilityResult`
``welfare``        eq. 11 (default)                                :class:`~.welfare.WelfareResult`
``prices``         Props 4.1–4.2                                   :class:`~.prices.PriceResult`
``vcg``            eqs. 18–21                                      :class:`~.mechanisms.MechanismResult`
``mixed_vcg``      Def 5.3, Prop 5.1                               :class:`~.mechanisms.MechanismResult`
``d_mixed_vcg``    eqs. 32–34 with base quality                    :class:`~.mechanisms.MechanismResult`
                   :data:`D_MIXED_BASE_QUALITY`
=================  ==============================================  =========================================
"""

from __future__ import annotations

from dm_opt.core.errors import ProblemError
from dm_opt.sharing import bilateral as _bilateral
from dm_opt.sharing import mechanisms as _mechanisms
from dm_opt.sharing import queries as _queries
from dm_opt.sharing import welfare as _welfare

#: Base quality ``w⁰`` of ``d_mixed_vcg`` (RJ eq. 32) unless ``base_quality=`` is given.
D_MIXED_BASE_QUALITY = 0.5


def _only_auto(method, options, problem: str) -> None:
    if method not in (None, "auto"):
        raise ProblemError(f"unknown method {method!r} for problem '{problem}' of kind sharing_network: it has "
                           "one exact algorithm (method 'auto'); buyer methods apply to welfare, prices and "
                           "the mechanisms")
    if options:
        raise ProblemError(f"problem '{problem}' takes no options, got {', '.join(sorted(options))}")


def ordered_match(market, *, method: str = "auto", time_limit=None, options=None, progress: bool = False, **kw):
    """Ordered match (RJ Prop 3.1) with its assumptions checked
    (:func:`dm_opt.sharing.bilateral.ordered_match`)."""
    _only_auto(method, options, "ordered_match")
    return _bilateral.ordered_match(market, time_limit=time_limit, **kw)


def ordered_match_queries(market, *, method: str = "auto", time_limit=None, options=None, progress: bool = False,
                          **kw):
    """Ordered match with query weights (RJ §6; :func:`dm_opt.sharing.queries.ordered_match_queries`)."""
    _only_auto(method, options, "ordered_match_queries")
    return _queries.ordered_match_queries(market, time_limit=time_limit, **kw)


def check(market, *, method: str = "auto", time_limit=None, options=None, progress: bool = False, **kw):
    """Top agent property and limited complementarity (RJ Defs 3.3–3.5) for the candidate ranking
    (:func:`dm_opt.sharing.bilateral.check_assumptions`)."""
    _only_auto(method, options, "check")
    return _bilateral.check_assumptions(market, time_limit=time_limit, **kw)


def stability(market, *, method: str = "auto", time_limit=None, options=None, progress: bool = False, **kw):
    """Strong stability (RJ Def 3.2): every stable graph for ``N ≤``
    :data:`~dm_opt.sharing.bilateral.MAX_OUTCOME_AGENTS`, else the ordered-match graph checked
    exhaustively."""
    _only_auto(method, options, "stability")
    if market.n <= _bilateral.MAX_OUTCOME_AGENTS:
        return _bilateral.stable_outcomes(market, time_limit=time_limit, **kw)
    return _bilateral.ordered_match_stability(market, time_limit=time_limit, **kw)


def welfare(market, *, method: str = "auto", time_limit=None, options=None, progress: bool = False, **kw):
    """The welfare-maximising directed graph (RJ eq. 11; :func:`dm_opt.sharing.welfare.welfare_max`)."""
    return _welfare.welfare_max(market, method, time_limit=time_limit, options=options, **kw)


def prices(market, *, method: str = "auto", time_limit=None, options=None, progress: bool = False, **kw):
    """Competitive prices and their range (RJ Props 4.1–4.2;
    :func:`dm_opt.sharing.welfare.competitive_prices`)."""
    return _welfare.competitive_prices(market, method=method, time_limit=time_limit, options=options, **kw)


def _mechanism(name: str, base_quality: float):
    def fn(market, *, method: str = "auto", time_limit=None, options=None, progress: bool = False, **kw):
        kw.setdefault("base_quality", base_quality)
        return _mechanisms.mixed_vcg(market, method=method, mechanism=name, time_limit=time_limit,
                                     options=options, **kw)

    fn.__name__ = name
    fn.__doc__ = f"``{name}`` (RJ §5; :func:`dm_opt.sharing.mechanisms.mixed_vcg`)."
    return fn


vcg = _mechanism("vcg", 1.0)
mixed_vcg = _mechanism("mixed_vcg", 1.0)
d_mixed_vcg = _mechanism("d_mixed_vcg", D_MIXED_BASE_QUALITY)

PROBLEMS = {"sharing_network": {
    "ordered_match": ordered_match, "ordered_match_queries": ordered_match_queries, "check": check,
    "stability": stability, "welfare": welfare,
    "prices": prices, "vcg": vcg, "mixed_vcg": mixed_vcg, "d_mixed_vcg": d_mixed_vcg,
}}
#: ``welfare`` is defined for every instance (``ordered_match`` refuses when Prop 3.1's assumptions fail).
DEFAULT_PROBLEM = {"sharing_network": "welfare"}
#: ``dm-opt solve`` flags this kind uses (the CLI refuses the others).
CLI_OPTIONS = {"sharing_network": ("method", "time_limit")}

__all__ = ["PROBLEMS", "DEFAULT_PROBLEM", "CLI_OPTIONS", "D_MIXED_BASE_QUALITY"]
