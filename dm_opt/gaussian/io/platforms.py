"""Instance kind ``two_platforms`` (AMMO §4: competition with data prices).

    kind = "two_platforms"
    source = "AMMO slides, 'Does Competition Help Efficiency?'"
    cov = [[1.0, 0.8], [0.8, 1.0]]            # Gaussian types; leakage = MSE reduction (§2.2)
    values = [0.5, 5.0]
    noise_var = 1.0                           # optional
    leakage = "mse"                           # or "mutual_information" (§5.1); optional
    deviation = "paper"                       # or "robust"; optional
    candidate_levels = [[0, 0.25], [0, 1]]    # optional per-user price levels (default: critical prices)
    max_candidates = 200                      # optional cap on the candidate set

    [joining]                                 # c_i(J) = base_i + slope_i (|J| - 1)
    base = [6.0, 6.0]
    slope = [0.01, 0.01]
    # or: table = [[...], ...]                # (2^n, n), row = bit mask of J

``dm-opt solve FILE --time-limit S`` stops the price search after S seconds (Ctrl-C
likewise, exit 130) and prints the equilibria among the candidate pairs examined so far,
with ``status`` ``time_limit``/``interrupted`` and how much of the candidate set was covered.
"""

from __future__ import annotations

import numbers

from dm_opt.core.errors import InstanceError, ProblemError
from dm_opt.core.instances import check_keys
from dm_opt.core.validate import as_vector, describe, precheck_noise_ratio
from dm_opt.gaussian.io import market as _gaussian
from dm_opt.gaussian.leakage.mutual_information import MutualInformationMarket
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.platforms import MAX_PLATFORM_N, JoiningValues, TwoPlatformMarket


def from_dict(data: dict, where: str | None = None) -> TwoPlatformMarket:
    check_keys(data, {"kind", "cov", "values", "joining"},
               {"source", "name", "noise_var", "description", "leakage", "deviation", "candidate_levels",
                "max_candidates", "require_assumption1"}, where)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InstanceError("name", "must be a string", where)
    leak = data.get("leakage", "mse")
    if leak in ("mse", "mutual_information"):
        precheck_noise_ratio(data["cov"], data.get("noise_var"), where)
    if leak == "mse":
        market = GaussianMarket(data["cov"], data["values"], data.get("noise_var"), where=where)
    elif leak == "mutual_information":
        market = MutualInformationMarket(data["cov"], data["values"], data.get("noise_var"), where=where)
    else:
        raise InstanceError("leakage", f"must be 'mse' or 'mutual_information', got {describe(leak)}", where)
    if market.n > MAX_PLATFORM_N:     # before building 2^n joining rows
        raise InstanceError("cov", f"{market.n} users exceed the two-platform limit n <= {MAX_PLATFORM_N} "
                            f"(the analysis enumerates 5^n joint actions)", where)
    j = data["joining"]
    if not isinstance(j, dict):
        raise InstanceError("joining", "must be a table with base/slope or table", where)
    if "table" in j:
        check_keys(j, {"table"}, set(), where, prefix="joining.")
        joining = JoiningValues(j["table"], where=where, field_name="joining.table")
    else:
        check_keys(j, {"base", "slope"}, set(), where, prefix="joining.")
        joining = JoiningValues.linear(j["base"], j["slope"], market.n, where=where)
    req = data.get("require_assumption1", True)
    if not isinstance(req, bool):
        raise InstanceError("require_assumption1", "must be true or false", where)
    tp = TwoPlatformMarket(market, joining, require_assumption1=req, name=name,
                           source=data.get("source"), where=where)
    dev = data.get("deviation", "paper")
    if dev not in ("paper", "robust"):
        raise InstanceError("deviation", f"must be 'paper' or 'robust', got {describe(dev)}", where)
    mc = data.get("max_candidates", 200)
    if isinstance(mc, bool) or not isinstance(mc, numbers.Integral) or mc < 1:
        raise InstanceError("max_candidates", f"must be a positive integer, got {describe(mc)}", where)
    levels = data.get("candidate_levels")
    if levels is not None:
        if not isinstance(levels, list) or len(levels) != market.n:
            raise InstanceError("candidate_levels", f"needs one list of prices per user ({market.n})", where)
        levels = [as_vector(f"candidate_levels[{i}]", lv, where=where).tolist() for i, lv in enumerate(levels)]
    tp.search_options = {"deviation": dev, "max_candidates": int(mc), "levels": levels}
    return tp


#: the search options of :func:`from_dict` for absent fields (and of dm_opt.gaussian.problems for a market
#: without ``search_options``); tests/core/test_save_roundtrip.py fails if they drift apart
_SEARCH_DEFAULTS = {"deviation": "paper", "max_candidates": 200, "levels": None}


def to_dict(market: TwoPlatformMarket) -> dict:
    """The instance table of ``market`` (:func:`dm_opt.save`), the inverse of :func:`from_dict`.

    The leakage market's ``cov``, ``values``, ``noise_var`` as the Gaussian market's own ``to_dict``
    writes them (``leakage = "mutual_information"`` for a :class:`MutualInformationMarket`); the
    joining values as their full ``(2^n, n)`` ``table`` (a ``base``/``slope`` pair is not kept, and
    the table it produced is the exact record); ``require_assumption1 = false`` only when
    Assumption 1 fails (otherwise the default reproduces the market); the price-search options
    ``deviation``, ``max_candidates``, ``candidate_levels`` (``search_options``, set by
    :func:`from_dict`) where they differ from the defaults, which a market without them searches
    with too (so saving a saved market gives the same file).  Raises :class:`ProblemError` for
    another leakage market, which no instance file describes.
    """
    inner = market.market
    if type(inner) is GaussianMarket:
        leakage, gaussian = "mse", inner
    elif type(inner) is MutualInformationMarket:
        leakage, gaussian = "mutual_information", inner.gaussian
    else:
        raise ProblemError(f"cannot save a two-platform market over a {type(inner).__name__}: instance files "
                           f"hold a GaussianMarket (leakage = \"mse\") or a MutualInformationMarket")
    d = _gaussian.nested_dict("two_platforms", market, gaussian)
    if leakage != "mse":
        d["leakage"] = leakage
    opts = getattr(market, "search_options", None) or _SEARCH_DEFAULTS
    if opts["deviation"] != _SEARCH_DEFAULTS["deviation"]:
        d["deviation"] = str(opts["deviation"])
    if opts["max_candidates"] != _SEARCH_DEFAULTS["max_candidates"]:
        d["max_candidates"] = int(opts["max_candidates"])
    if opts.get("levels") is not None:
        d["candidate_levels"] = [[float(x) for x in lv] for lv in opts["levels"]]
    if not market.assumption1.holds:
        d["require_assumption1"] = False
    d["joining"] = {"table": market.joining.table.tolist()}
    return d


__all__ = ["from_dict", "to_dict"]
