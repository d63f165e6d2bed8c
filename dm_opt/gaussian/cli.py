"""``dm-opt solve`` output for the Gaussian family: :func:`report` formats a result, nothing else.

``report(market, problem, result, *, summary=None) -> (fields, text)``: ``fields`` are the kind's JSON fields
(for every kind the same keys as before the family-first layout; they may repeat the common
``--json`` keys — ``problem``, ``status``, … — with the same values), ``text`` the table printed
on the terminal.  The formatter is looked up in :data:`REPORTS` (kind → problem → function),
built like :data:`dm_opt.gaussian.problems.PROBLEMS`.

Summary form (``summary=True``; ``dm-opt solve --summary``): objective, bound, gap, status,
sharers (and, for community markets, per community: size, sharers, the leakage of a sharer and
of a non-sharer, the price when it is the same for every user of the community) — no per-user
arrays.  It is the default (``summary=None``) for community markets of more than
:data:`SUMMARY_MIN_N` users, whose full ``--json`` lists every user (about 35 bytes per user:
35 MB at n = 10⁶); ``summary=False`` (``--full``) always gives the full form.
"""

from __future__ import annotations

import numpy as np

from dm_opt.core.errors import ProblemError
from dm_opt.core.jsonenc import json_number as _num
from dm_opt.gaussian.problems import LEAKAGE_KINDS, LEAKAGE_PROBLEMS

#: Per-user rows printed by the community table; larger markets are summarised per community.
COMMUNITY_MAX_ROWS = 60
#: Community markets with more users than this are reported in the summary form by default.
SUMMARY_MIN_N = 10_000
#: Kinds whose results have a summary form (the leakage problems: a SolveResult with a profile).
SUMMARY_KINDS = ("gaussian_market", "community_market", "gaussian_mixture")


def _profile(a) -> str:
    return "".join(str(int(x)) for x in a)


def _fmt(x: float, spec: str = ".6g") -> str:
    return "-" if x != x else format(x, spec)          # NaN = not computed


def _status_lines(status, message: str) -> list[str]:
    if str(status) == "optimal":
        return []
    return [f"status: {status} -- PARTIAL RESULT, not optimal ({message})"]


# ------------------------------------------------------------------ leakage problems (SolveResult)
def compile_note(res) -> str:
    """``" + compile 1.23s"`` when the solve spent time importing numba, compiling or loading
    compiled kernels (``extra["compile_seconds"]``, not part of ``time``), plus which kernels ran when
    ``bnb`` searched in its interpreted twin (``extra["kernels"]``); "" otherwise."""
    extra = getattr(res, "extra", None) or {}
    c = extra.get("compile_seconds")
    note = "" if not c or c < 0.0005 else f" + compile {c:.3f}s"
    kernels = extra.get("kernels")
    if isinstance(kernels, str) and kernels.startswith("python"):
        # bnb ran (part of) its search in the interpreted twin of the kernel: say so, since its
        # node rate (and so the time) differs from the compiled search by orders of magnitude
        note += f" (kernels: {kernels})"
    return note


def result_header(title: str, detail: str, market, res) -> list[str]:
    """Title, source, objective/bound/gap line and message of a result table."""
    lines = [f"{title}: {res.problem}  ({detail}, method = {res.method}, status = {res.status})"]
    if market.source:
        lines.append(f"source: {market.source}")
    lines.append(f"objective {res.objective:.10g}   bound {res.bound:.10g}   gap {res.gap:.3g}   "
                 f"surplus {res.surplus:.10g}   time {res.seconds:.3f}s" + compile_note(res))
    if res.message:
        lines.append(res.message)
    return lines


def optima_lines(res, limit: int = 50, width: int | None = None) -> list[str]:
    """The tie set of a result, at most ``limit`` profiles of at most ``width`` users each."""
    if res.optima is None:
        return []
    lines = ["", f"{len(res.optima)} optimal profile(s) (ties within {res.tie_tol:.2g}):"]
    for o in res.optima[:limit]:
        shown = o if width is None else o[:width]
        lines.append("  " + "".join(str(int(x)) for x in shown) + ("…" if shown.size < o.size else ""))
    if len(res.optima) > limit:
        lines.append(f"  ... and {len(res.optima) - limit} more (use --json for all)")
    return lines


def market_table(market, res, title: str = "gaussian market") -> str:
    """Per-user table of a leakage result (value, sharing, leakage, price)."""
    lines = result_header(market.name or title, f"n = {market.n}", market, res)
    if res.profile.size:
        lines.append("")
        lines.append(f"{'user':>5} {'v':>9} {'shares':>6} {'leakage':>12} {'price':>12}")
        for i in range(market.n):
            lines.append(f"{i:>5} {market.values[i]:>9.4g} {int(res.profile[i]):>6} "
                         f"{res.leakage[i]:>12.6g} {res.prices[i]:>12.6g}")
    return "\n".join(lines + optima_lines(res))


def community_table(market, res, *, summary: bool = False) -> str:
    """Per-community summary (and per-user rows up to :data:`COMMUNITY_MAX_ROWS` users; none and no
    tie list with ``summary=True``)."""
    lines = result_header(market.name or "community market", f"n = {market.n}, K = {market.K}", market, res)
    if not res.profile.size:
        return "\n".join(lines)
    lines.append("")
    lines.append(f"{'community':>9} {'size':>8} {'sharers':>8} {'max v sharing':>14} {'min v not':>10} "
                 f"{'leak sharer':>12} {'leak other':>12} {'price':>10}")
    a, v, c = res.profile, market.values, market.community
    for k in range(market.K):
        idx = c == k
        sh, no = idx & (a == 1), idx & (a == 0)
        lines.append(
            f"{k:>9} {int(idx.sum()):>8} {int(sh.sum()):>8} "
            f"{(f'{v[sh].max():.4g}' if sh.any() else '-'):>14} {(f'{v[no].min():.4g}' if no.any() else '-'):>10} "
            f"{(f'{res.leakage[sh][0]:.6g}' if sh.any() else '-'):>12} "
            f"{(f'{res.leakage[no][0]:.6g}' if no.any() else '-'):>12} "
            f"{(f'{res.prices[sh].mean():.4g}' if sh.any() else '-'):>10}")
    if summary:
        if res.optima is not None:
            lines.append(f"{len(res.optima)} optimal profile(s) (ties within {res.tie_tol:.2g}; --full to list them)")
        return "\n".join(lines)
    if market.n <= COMMUNITY_MAX_ROWS:
        lines.append("")
        lines.append(f"{'user':>5} {'comm':>4} {'v':>9} {'shares':>6} {'leakage':>12} {'price':>12}")
        for i in range(market.n):
            lines.append(f"{i:>5} {int(c[i]):>4} {v[i]:>9.4g} {int(a[i]):>6} {res.leakage[i]:>12.6g} "
                         f"{res.prices[i]:>12.6g}")
    return "\n".join(lines + optima_lines(res, limit=20, width=200))


# ------------------------------------------------------------------ summary form
def _constant(x: np.ndarray):
    """The common value of ``x`` when every entry is the same (JSON number), else None."""
    if x.size and float(x.min()) == float(x.max()):
        return _num(float(x[0]))
    return None


def summary_fields(market, res) -> dict:
    """The summary ``--json`` fields of a leakage result: scalars and per-community counts, no
    per-user arrays (size independent of ``n``)."""
    d = {k: v for k, v in res.to_dict().items() if k not in ("profile", "prices", "leakage", "optima")}
    d["summary"] = True
    a = np.asarray(res.profile)
    d["sharers"] = int(a.sum()) if a.size else None
    if res.optima is not None:
        d["optima_count"] = len(res.optima)
    if getattr(market, "kind", None) == "community_market" and a.size:
        v, c, p, leak = market.values, market.community, np.asarray(res.prices), np.asarray(res.leakage)
        rows = []
        for k in range(market.K):
            idx = c == k
            sh, no = idx & (a == 1), idx & (a == 0)
            row = {"community": k, "size": int(idx.sum()), "sharers": int(sh.sum()),
                   "leakage_sharer": _constant(leak[sh]), "leakage_other": _constant(leak[no]),
                   "max_v_sharing": _num(float(v[sh].max())) if sh.any() else None,
                   "min_v_not_sharing": _num(float(v[no].min())) if no.any() else None,
                   "price": _constant(p[idx])}
            if sh.any():
                row["price_sharers"] = {"min": _num(float(p[sh].min())), "max": _num(float(p[sh].max())),
                                        "mean": _num(float(p[sh].mean()))}
            rows.append(row)
        d["K"] = int(market.K)
        d["sharers_per_community"] = [r["sharers"] for r in rows]
        d["communities"] = rows
    return d


def _summary_text(market, res) -> str:
    if getattr(market, "kind", None) == "community_market":
        return community_table(market, res, summary=True)
    lines = result_header(market.name or "gaussian market", f"n = {market.n}", market, res)
    if res.profile.size:
        lines.append(f"sharers: {int(res.profile.sum())} of {market.n} (--full for the per-user table)")
    if res.optima is not None:
        lines.append(f"{len(res.optima)} optimal profile(s) (ties within {res.tie_tol:.2g}; --full to list them)")
    return "\n".join(lines)


def default_summary(market) -> bool:
    """Whether ``dm-opt solve`` reports ``market`` in the summary form when neither ``--summary``
    nor ``--full`` is given: community markets of more than :data:`SUMMARY_MIN_N` users."""
    return getattr(market, "kind", None) == "community_market" and int(market.n) > SUMMARY_MIN_N


def _leakage(market, problem, res):
    return res.to_dict(), market_table(market, res)


def _community(market, problem, res):
    return res.to_dict(), community_table(market, res)


def _mixture(market, problem, res):
    return res.to_dict(), market_table(market, res).replace("gaussian market", "gaussian mixture market", 1)


def _of_underlying(fmt):
    """A leakage report on ``market.market`` (taxes and valuations kinds wrap a GaussianMarket)."""
    def report_underlying(market, problem, res):
        return fmt(market.market, problem, res)

    return report_underlying


# ------------------------------------------------------------------ gaussian_taxes
def _head(m) -> str:
    return f"{m.name or 'gaussian market'} (n = {m.n})" + (f"\nsource: {m.source}" if m.source else "")


def _uniform_sweep(tm, problem, sw):
    m = tm.market
    lines = [_head(m), f"uniform tax sweep on [0, {sw.t_max:.6g}] ({sw.solver_calls} solver calls; exact breakpoints)"
             f"   (status = {sw.status})"]
    if not sw.complete:
        lines.append(f"status: {sw.status} -- PARTIAL RESULT, not optimal ({sw.message}); nothing is claimed "
                     f"for t in ({sw.covered:.10g}, {sw.t_max:.6g}]")
    lines.append(f"{'t from':>14} {'t to':>14} {'profile':>{max(8, m.n)}} {'sharers':>7} {'surplus':>14}")
    for p in sw.pieces:
        lines.append(f"{p.lo:>14.10g} {p.hi:>14.10g} {_profile(p.profile):>{max(8, m.n)}} {p.sharers:>7} "
                     f"{p.surplus:>14.8g}" + ("  (ties not checked)" if not p.ties_checked else
                                             "" if p.surplus_min == p.surplus_max else
                                             f"  (ties: surplus in [{p.surplus_min:.6g}, {p.surplus_max:.6g}])"))
    within = "" if sw.complete else f" within the swept [0, {sw.covered:.10g}]"
    lines.append(f"best uniform tax{within}: any t in [{sw.best.lo:.10g}, {sw.best.hi:.10g}] "
                 f"(e.g. {sw.best_tax:.6g}), surplus {sw.best.surplus:.8g}")
    if sw.shutdown_tax is not None:
        lines.append(f"the market shuts down (nobody shares) for t > {sw.shutdown_tax:.10g}")
    return sw.to_dict(), "\n".join(lines)


def _tax_outcome(tm, problem, out):
    lines = [_head(tm.market), f"{problem}: taxes {np.array2string(out.taxes, precision=6)}",
             f"post-tax equilibrium {_profile(out.profile)} ({len(out.optima)} optimum/optima), surplus "
             f"{out.surplus:.10g} (range over optima [{out.surplus_min:.10g}, {out.surplus_max:.10g}])",
             f"first best {_profile(out.first_best_profile)}, surplus {out.first_best_surplus:.10g}; "
             f"implements the first best: {'yes' if out.implements_first_best else 'no'}",
             f"tax revenue {out.tax_revenue:.6g}"]
    return {"status": "optimal", **out.to_dict()}, "\n".join(lines)


# ------------------------------------------------------------------ gaussian_valuations
def _mechanism(vm, problem, res):
    out = res.outcome
    lines = [f"{vm.name or 'gaussian market'}: optimal mechanism with unknown valuations (Thm B-2), n = {vm.n}"
             f"   (status = {out.status})"]
    if vm.source:
        lines.append(f"source: {vm.source}")
    lines += _status_lines(out.status, out.message)
    pp = (f"{out.platform_payoff:.10g}" if out.complete else
          f"in [{out.platform_payoff_bounds[0]:.10g}, {out.platform_payoff_bounds[1]:.10g}]")
    lines.append(f"virtual objective {out.virtual_objective:.10g}   platform payoff {pp}"
                 f"   surplus {out.surplus:.10g}")
    lines.append(f"{'user':>5} {'v':>9} {'Phi(v)':>9} {'shares':>6} {'A_i':>12} {'payment':>12} {'rent':>12}"
                 + ("" if out.complete else "   payment bounds"))
    for i in range(vm.n):
        row = (f"{i:>5} {out.reported[i]:>9.4g} {out.virtual_values[i]:>9.4g} {int(out.profile[i]):>6} "
               f"{out.allocation[i]:>12.6g} {_fmt(out.payments[i]):>12} {_fmt(out.rents[i]):>12}")
        if not out.payments_exact[i]:
            lo, hi = out.payment_bounds[i]
            row += f"   [{lo:.8g}, {hi:.8g}]"
        lines.append(row)
    for s in out.steps:
        if s is not None:
            lines.append(f"user {s.user}: A_i(x) steps at x = {', '.join(f'{e:.10g}' for e in s.edges)}"
                         + ("" if s.complete else " (last intervals unresolved: bounds only)"))
    return out.to_dict(), "\n".join(lines)


def _vcg(vm, problem, res):
    out = res.outcome
    lines = [f"{vm.name or 'gaussian market'}: VCG pricing (Prop B-1), first-best profile "
             f"{_profile(out.profile)}, surplus {out.surplus:.10g}   (status = {out.status})"]
    lines += _status_lines(out.status, out.message)
    lines.append(f"{'user':>5} {'v':>9} {'price':>12}" + ("" if out.complete else "   price bounds"))
    for i in range(vm.n):
        row = f"{i:>5} {out.reported[i]:>9.4g} {_fmt(out.prices[i]):>12}"
        if out.prices[i] != out.prices[i]:
            row += f"   [{out.price_bounds[i][0]:.8g}, {out.price_bounds[i][1]:.8g}]"
        lines.append(row)
    return out.to_dict(), "\n".join(lines)


def _expected_payoff(vm, problem, res):
    e = res.outcome
    if e.method == "exact" and str(e.status) != "optimal":
        text = (f"expected platform payoff (Thm B-2, exact, {e.samples} of {e.requested} report vectors summed): "
                f"proven in [{e.lower:.10g}, {e.upper:.10g}]   (status = {e.status})")
    else:
        text = (f"expected platform payoff (Thm B-2, {e.method}, {e.samples} report vectors): {e.mean:.10g}"
                + (f"  95% CI [{e.ci_low:.6g}, {e.ci_high:.6g}] (seed {e.seed})" if e.method == "monte_carlo"
                   else "") + f"   (status = {e.status})")
    text = "\n".join([text] + _status_lines(e.status, e.message))
    # "method" is the estimator (exact | monte_carlo); "estimator" repeats it beside the common "method" key
    return {**e.to_dict(), "estimator": e.method}, text


# ------------------------------------------------------------------ two_platforms
def _competition(tp, problem, res):
    search = res.outcome
    d = {"problem": "competition", "kind": "two_platforms", "n": tp.n, "status": str(search.status),
         "message": search.message, **res.outcome_dict()}
    fb, mono, mono_a = res.first_best_surplus, res.monopoly_surplus, res.monopoly_sharing
    lines = [f"{tp.name or 'two platforms'}: competition with data prices (n = {tp.n}, status = {search.status})"]
    if tp.source:
        lines.append(f"source: {tp.source}")
    if not search.complete:
        lines.append(f"status: {search.status} -- PARTIAL SEARCH ({search.message}); pairs not examined may hold "
                     f"further equilibria")
    lines.append(str(res.assumption1))
    lines.append(f"first best surplus {fb:.10g}: " + " | ".join(o.describe() for o in res.first_best_outcomes[:2]))
    lines.append(f"monopoly (all on one platform, Thm 1 sharing {''.join(map(str, mono_a))}) surplus {mono:.10g}")
    c = search.candidates
    scope = (f"{c} candidate price vectors per platform ({c ** 2} pairs, " if search.complete
             else f"the first {search.candidates_covered} of {c} candidate price vectors per platform "
                  f"({search.pairs_checked} of {c ** 2} pairs, ")
    lines.append(f"searched {scope}"
                 f"{search.pairs_without_user_equilibrium} without a pure user equilibrium), deviation rule "
                 f"'{search.deviation}'; equilibria are relative to this candidate set only")
    groups = res.outcome_groups()
    if not search.equilibria:
        lines.append("no pure equilibrium within the candidate set" if search.complete
                     else "no pure equilibrium among the pairs examined")
    for (desc, s, eff), n_pairs in groups:
        lines.append(f"  {n_pairs:>6} price pairs -> {desc}; surplus {s:.10g} "
                     f"({'efficient' if eff else 'inefficient'}; {'>' if s > mono else '<='} monopoly)")
    return d, "\n".join(lines)


# ------------------------------------------------------------------ the table
_LEAKAGE_REPORT = {"community_market": _community, "gaussian_mixture": _mixture}
REPORTS: dict = {kind: {p: _LEAKAGE_REPORT.get(kind, _leakage) for p in LEAKAGE_PROBLEMS} for kind in LEAKAGE_KINDS}
REPORTS["gaussian_taxes"] = {"uniform_sweep": _uniform_sweep, "pigovian": _tax_outcome,
                             "post_tax_equilibrium": _tax_outcome,
                             **{p: _of_underlying(_leakage) for p in LEAKAGE_PROBLEMS}}
REPORTS["gaussian_valuations"] = {"mechanism": _mechanism, "vcg": _vcg, "expected_payoff": _expected_payoff,
                                  **{p: _of_underlying(_leakage) for p in LEAKAGE_PROBLEMS}}
REPORTS["two_platforms"] = {"competition": _competition}


def report(market, problem: str, result, *, summary: bool | None = None) -> tuple[dict, str]:
    """``(family JSON fields, terminal text)`` of ``result`` of ``problem`` on ``market``.

    ``summary``: True = the summary form (:func:`summary_fields`; leakage problems only), False =
    the full form, None = by size (:func:`default_summary`: community markets above
    :data:`SUMMARY_MIN_N` users)."""
    kind = getattr(market, "kind", None) or "gaussian_market"
    fmt = REPORTS.get(kind, {}).get(problem)
    if fmt is None:
        raise ProblemError(f"no report for problem '{problem}' of kind '{kind}'")
    if summary is None:
        summary = default_summary(market)
    if summary:
        if kind not in SUMMARY_KINDS or problem not in LEAKAGE_PROBLEMS:
            raise ProblemError(f"no summary form for problem '{problem}' of kind '{kind}' (its report has no "
                               f"per-user arrays to leave out); drop --summary")
        return summary_fields(market, result), _summary_text(market, result)
    return fmt(market, problem, result)


__all__ = ["report", "REPORTS", "SUMMARY_MIN_N", "default_summary", "summary_fields", "result_header", "optima_lines",
           "market_table", "community_table"]
