"""Command line: ``dm-opt solve FILE [--problem P] [--method M] [--all-optima] [--json]``.

Exit status 0 on success, 2 on bad input (file, field, flag or output path) with one
line on stderr and no traceback, 130 on Ctrl-C, 143 on SIGTERM (handled exactly like
Ctrl-C: what was computed is printed or written, marked partial).

``--json`` output is strict JSON (RFC 8259): non-finite numbers are the strings
``"inf"``, ``"-inf"``, ``"nan"`` (:mod:`dm_opt.core.jsonenc`).

Output paths (``--out``, ``--csv``) are checked before any work: the directory must
exist and be writable, the target must not be a directory, an existing file needs
``--force``, and two outputs may not be the same file.

This module's top-level imports are deliberately light (standard library and
:mod:`dm_opt.core.errors`; ``import dm_opt`` itself loads nothing heavy): numpy, numba and
the solvers are imported inside :func:`main`, under its Ctrl-C/SIGTERM handling, so an
interrupt during start-up exits 130/143 without a traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings

from dm_opt.core import safeio as _safeio
from dm_opt.core.errors import DmOptError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage over several lines)
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return x


def problems_listing() -> str:
    """Every kind's problems (default first) and the Gaussian methods, for ``dm-opt solve --help``."""
    from dm_opt.core.dispatch import FAMILIES, problems_module
    from dm_opt.core.instances import KIND_MODULES
    from dm_opt.core.registry import known_methods

    lines = ["problems by kind of instance file (default first):"]
    for fam in FAMILIES:
        try:
            pm = problems_module(fam)
        except ImportError:                       # pragma: no cover - a family without a table yet
            continue
        for kind, table in pm.PROBLEMS.items():
            if kind not in KIND_MODULES:          # Python-only market classes (no instance files)
                continue
            default = pm.DEFAULT_PROBLEM[kind]
            names = [default] + [p for p in table if p != default]
            flags = ", ".join("--" + f.replace("_", "-") for f in pm.CLI_OPTIONS.get(kind, ()) if f != "progress")
            lines.append(f"  {kind:<28} {' | '.join(names)}" + (f"   (flags: {flags})" if flags else ""))
    lines.append("methods (--method) for the Gaussian leakage kinds: auto | " + " | ".join(known_methods("gaussian")))
    lines.append("an instance is a .toml path or a shipped model name (dm-opt models), e.g. ammo/example1")
    return "\n".join(lines)


class _SolveHelp(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.epilog = problems_listing()
        parser.print_help()
        parser.exit()


class _VersionAction(argparse.Action):
    """``--version``: the package metadata is read only when asked for (it costs ~0.1 s per process)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "show the program's version number and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from dm_opt import __version__

        print(f"dm-opt {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dm-opt", description="Exact optimisation models for data markets.")
    p.add_argument("--version", action=_VersionAction)
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log what dm_opt does (method chosen, bounds, rounds, chunks) on stderr")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    s = sub.add_parser("solve", help="solve an instance file", add_help=False,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("-h", "--help", action=_SolveHelp, nargs=0, help="show this help (with every kind's problems "
                   "and methods) and exit")
    s.add_argument("file", help="instance file (.toml)")
    s.add_argument("--problem", help="problem to solve (default depends on the kind; "
                   "gaussian_market: first_best | equilibrium | decorrelated)")
    s.add_argument("--method", default="auto", help="solver backend (default auto)")
    s.add_argument("--all-optima", action="store_true", help="list every optimal profile (ties)")
    s.add_argument("--time-limit", type=_positive_float, help="seconds; returns best found with bound and gap")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --method bnb: search subtrees in parallel on the Dask cluster at ADDRESS")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    sm = s.add_mutually_exclusive_group()
    sm.add_argument("--summary", dest="summary", action="store_true", default=None,
                    help="per-community counts and prices instead of per-user arrays (the default for "
                         "community markets above 10,000 users)")
    sm.add_argument("--full", dest="summary", action="store_false", help="per-user arrays even for huge markets")
    s.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    from dm_opt.gaussian.bench.cli import add_parser as _add_bench_parser
    _add_bench_parser(sub, _positive_float)
    r = sub.add_parser("report", help="efficiency diagnostics of a Gaussian market (AMMO Thm 3, Props 3-4, Thm 6)")
    r.add_argument("file", help="instance file (.toml) of a Gaussian market kind")
    r.add_argument("--method", default="auto", help="solver backend (default auto)")
    r.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    r.add_argument("--time-limit", type=_positive_float, help="seconds for all the solves of the report together")
    x = sub.add_parser("export", help="write the MILP of docs/spec.md §1.2 (MPS or LP) for an external solver")
    x.add_argument("file", help="instance file (.toml) of kind gaussian_market")
    x.add_argument("--problem", default="first_best", help="first_best | equilibrium | decorrelated "
                   "(equilibrium: relaxation with the initial tangent table)")
    x.add_argument("--format", choices=("mps", "lp"), default="mps", help="file format (default mps)")
    x.add_argument("--out", required=True, help="output path")
    x.add_argument("--force", action="store_true", help="overwrite an existing output file")
    x.add_argument("--constraints", metavar="JSON",
                   help='side constraints as rows, a JSON object with the keys of dm_opt.solve(constraints=...): '
                        'max_sharers, min_sharers, budget, force_in, force_out, linear (a list of '
                        '{"A": [[...]], "lb": [...], "ub": [...]}, null for an infinite side)')
    wu = sub.add_parser("warmup", help="compile the numba kernels once into numba's cache (run after installing)")
    wu.add_argument("--jobs", type=int, default=1, help="processes to compile in (default 1)")
    mo = sub.add_parser("models", help="list the models shipped with dm_opt (usable by name: ammo/example1)")
    mo.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    fg = sub.add_parser("figure", help="draw AMMO's Figure 1, 2 or 3 from solver data (PNG, optional CSV)")
    fg.add_argument("name", choices=("fig1", "fig2", "fig3"), help="fig1 | fig2 | fig3")
    fg.add_argument("--out", required=True, help="output PNG path")
    fg.add_argument("--csv", help="also write the data as CSV")
    fg.add_argument("--rho", type=float, help="correlation for fig1/fig2 (default 0.8)")
    fg.add_argument("--force", action="store_true", help="overwrite existing output files")
    fg.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    fg.add_argument("--workers", type=int, help="compute the grid on a local Dask cluster of N workers")
    fg.add_argument("--scheduler", metavar="ADDRESS", help="compute the grid on an existing Dask cluster")
    fg.add_argument("--time-limit", type=_positive_float,
                    help="seconds (checked between grid rows); writes the rows done, labelled PARTIAL, "
                         "and exits 0 with a note on stderr (Ctrl-C: the same, exit 130; SIGTERM: exit 143)")
    return p


#: the first fields of every ``dm-opt solve --json`` object, whatever the kind (then the family's)
JSON_HEAD = ("kind", "name", "n", "problem", "method", "status", "solution_status", "objective", "bound",
             "gap", "seconds")


def solve_record(market, problem: str, result, fields: dict) -> dict:
    """The ``--json`` object of ``dm-opt solve``: :data:`JSON_HEAD` from the market and the
    result's protocol (:mod:`dm_opt.core.result`), then the family's ``fields``."""
    proto = result.protocol_dict()
    head = {
        "kind": getattr(market, "kind", ""),
        "name": getattr(market, "name", None) or "",
        "n": int(getattr(market, "n", 0) or 0),
        "problem": problem,
        "method": str(getattr(result, "method", "") or fields.get("method", "")),
        "status": proto["status"],
        "solution_status": proto["solution_status"],
        "objective": proto["objective"],
        "bound": proto["bound"],
        "gap": proto["gap"],
        "seconds": proto["seconds"],
    }
    out = dict(head)
    for k, v in fields.items():
        if k not in head:
            out[k] = v
    if "message" not in out:
        out["message"] = proto["message"]
    return out


def _cmd_solve(args) -> int:
    import importlib

    from dm_opt.core.dispatch import family_of, problems_module
    from dm_opt.core.instances import from_dict, read_toml, resolve

    args.file = resolve(args.file)
    data = read_toml(args.file)
    market = from_dict(data, args.file)
    family = family_of(market)
    pm = problems_module(family)
    kind = data["kind"]
    table = pm.PROBLEMS[kind]
    problem = args.problem or pm.DEFAULT_PROBLEM[kind]
    if problem not in table:
        raise _UsageError(f"--problem: '{problem}' is not a problem of kind '{kind}'; choose one of {', '.join(table)}")
    used = pm.CLI_OPTIONS.get(kind, ())
    # a flag a kind does not use is refused, never silently ignored
    given = {"method": args.method != "auto", "all_optima": args.all_optima, "time_limit": args.time_limit is not None,
             "scheduler": args.scheduler is not None}
    for flag, key in (("--method", "method"), ("--all-optima", "all_optima"), ("--time-limit", "time_limit"),
                      ("--scheduler", "scheduler")):
        if given[key] and key not in used:
            raise _UsageError(f"{flag} does not apply to kind '{kind}'")
    if args.summary is not None and family != "gaussian":
        raise _UsageError(f"--{'summary' if args.summary else 'full'} applies to Gaussian kinds only")
    if args.summary:
        from dm_opt.gaussian.cli import LEAKAGE_PROBLEMS, SUMMARY_KINDS

        if kind not in SUMMARY_KINDS or problem not in LEAKAGE_PROBLEMS:       # refused before any work
            raise _UsageError(f"--summary: no summary form for problem '{problem}' of kind '{kind}' (its "
                              f"report has no per-user arrays to leave out)")
    kw = {}
    if "all_optima" in used:
        kw["all_optima"] = args.all_optima
    if args.scheduler is not None:
        if args.method != "bnb":
            raise _UsageError("--scheduler: the parallel search is method bnb's; add --method bnb")
        kw["options"] = {"scheduler": args.scheduler}
    if "progress" in used:
        kw["progress"] = (not args.no_progress) and (not args.json) and sys.stderr.isatty()
    from dm_opt.core.limits import Deadline

    time_limit = Deadline(args.time_limit, field="--time-limit") if args.time_limit is not None else None
    result = table[problem](market, method=args.method, time_limit=time_limit, **kw)
    report = importlib.import_module(f"dm_opt.{family}.cli").report
    if args.summary is None:
        fields, text = report(market, problem, result)
    else:
        fields, text = report(market, problem, result, summary=args.summary)
    if args.json:
        from dm_opt.core.jsonenc import dumps

        print(dumps(solve_record(market, problem, result, fields)))
    else:
        _print_text(text)
    # an interrupted solve still prints its best answer and bound, then exits like Ctrl-C
    # (main turns 130 into 143 when the interrupt was a SIGTERM)
    return 130 if str(result.status) == "interrupted" else 0


def _print_text(text: str) -> None:
    """Print ``text``; characters the terminal's encoding cannot show (Ω, r̄ on a cp1252 console)
    are replaced, never a UnicodeEncodeError."""
    enc = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(enc)
    except (UnicodeEncodeError, LookupError):
        text = text.encode(enc, errors="replace").decode(enc, errors="replace")
    print(text)


def _cmd_bench(args) -> int:
    from dm_opt.gaussian.bench.cli import run

    return run(args, _UsageError)


def _cmd_report(args) -> int:
    from dm_opt.core.instances import load
    from dm_opt.gaussian.diagnostics import efficiency_report
    from dm_opt.gaussian.market import GaussianMarket

    obj = load(args.file)
    market = obj if isinstance(obj, GaussianMarket) else getattr(obj, "market", None)
    if not isinstance(market, GaussianMarket):
        raise _UsageError(f"report: {args.file} is a '{getattr(obj, 'kind', type(obj).__name__)}' instance; "
                          f"the efficiency report needs a Gaussian market (kind gaussian_market, "
                          f"gaussian_valuations or gaussian_taxes)")
    from dm_opt.core.limits import Deadline
    from dm_opt.core.result import Termination

    dl = Deadline(args.time_limit, field="--time-limit")
    rep = efficiency_report(market, method=args.method, time_limit=dl)
    out, text = rep.to_dict(), rep.format()
    if getattr(obj, "kind", None) == "gaussian_valuations" and rep.status is Termination.OPTIMAL:
        from dm_opt.gaussian.valuations import valuation_report

        out["valuations"], extra = valuation_report(obj, method=args.method, time_limit=dl)
        text += "\n" + extra
    if args.json:
        from dm_opt.core.jsonenc import dumps

        text = dumps(out)
    print(text)
    # like `solve`: an interrupted report still prints what it has, then exits like Ctrl-C
    return 130 if rep.status is Termination.INTERRUPTED else 0


def _json_bound(bound, sign):
    """A JSON bound list with ``null`` for an infinite side (``sign`` −1: lower, +1: upper)."""
    if isinstance(bound, list):
        return [sign * float("inf") if b is None else b for b in bound]
    return bound


def _cmd_export(args) -> int:
    from dm_opt.core.instances import load
    from dm_opt.gaussian.backends.milp import export_model
    from dm_opt.gaussian.market import GaussianMarket

    check_output_file(args.out, "--out", args.force)
    from dm_opt.core.instances import resolve

    try:
        _safeio.check_distinct([("the instance file", resolve(args.file)), ("--out", args.out)])
    except DmOptError as exc:
        raise _UsageError(str(exc)) from None
    market = load(args.file)
    if not isinstance(market, GaussianMarket):
        raise _UsageError(f"export: {args.file} is not a gaussian_market instance (the MILP is Gaussian-MSE-only)")
    if args.problem not in ("first_best", "equilibrium", "decorrelated"):
        raise _UsageError(f"--problem: '{args.problem}' is not one of first_best, equilibrium, decorrelated")
    constraints = None
    if args.constraints is not None:
        import json

        from dm_opt.gaussian.constraints import SideConstraints

        try:
            spec = json.loads(args.constraints)
            if not isinstance(spec, dict):
                raise ValueError("not a JSON object")
            if isinstance(spec.get("linear"), list):      # {"A", "lb", "ub"} objects -> (A, lb, ub) triples
                for q in spec["linear"]:
                    extra = sorted(set(q) - {"A", "lb", "ub"}) if isinstance(q, dict) else []
                    if extra:             # a typo such as "UB" would silently drop a bound
                        keys = ", ".join(repr(str(x))[:20] for x in extra[:3])
                        raise _UsageError(f"--constraints: a linear row has unknown key(s) {keys}; a row is "
                                          f'{{"A": [...], "lb": ..., "ub": ...}}')
                spec["linear"] = [(q.get("A"), _json_bound(q.get("lb"), -1), _json_bound(q.get("ub"), 1))
                                  if isinstance(q, dict) else q for q in spec["linear"]]
            constraints = SideConstraints.from_any(spec, market.n)
        except DmOptError as exc:         # first: a field error (InstanceError is also a ValueError)
            raise _UsageError(f"--constraints: {exc}") from None
        except (ValueError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else " ".join(str(exc).split())[:80]
            raise _UsageError(f"--constraints: not a JSON object of side constraints ({why})") from None
    with _writing(("--out", args.out)):
        note = export_model(market, args.problem, args.out, args.format, constraints=constraints)
    print(note, file=sys.stderr)
    return 0


def _cmd_figure(args) -> int:
    """Exit 0 when written (also when ``--time-limit`` stopped it: the output is labelled partial
    and stderr says so), 130 after Ctrl-C, 143 after SIGTERM (the rows completed are written,
    labelled partial)."""
    # every output checked before the grid is computed (and before matplotlib/numba are imported)
    outputs = [("--out", args.out), ("--csv", args.csv)]
    try:
        _safeio.check_distinct(outputs)
    except DmOptError as exc:
        raise _UsageError(str(exc)) from None
    for flag, path in outputs:
        if path:
            check_output_file(path, flag, args.force)
    ext = os.path.splitext(args.out)[1].lower().lstrip(".")
    try:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = set(FigureCanvasBase.get_supported_filetypes())
    except ImportError:          # make_figure reports the missing matplotlib (and still writes --csv)
        formats = None
    if formats is not None and ext not in formats:
        what = f"as '.{ext}'" if ext else "without a file extension"
        raise _UsageError(f"--out: cannot draw a figure {what} ({args.out}); use one of "
                          f"{', '.join('.' + f for f in sorted(formats))}")
    from dm_opt.gaussian.figures import make_figure

    params = {}
    if args.rho is not None:
        if args.name == "fig3":
            raise _UsageError("--rho: fig3 sweeps rho itself (Example 2); use it with fig1 or fig2")
        params["rho"] = args.rho
    if args.workers is not None and args.workers < 1:
        raise _UsageError(f"--workers: must be a positive integer, got {args.workers}")
    progress = (not args.no_progress) and sys.stderr.isatty()
    params["time_limit"] = args.time_limit
    if args.workers or args.scheduler:
        from dm_opt.gaussian.distributed import open_client

        with open_client(args.scheduler, args.workers) as client, _writing(*outputs):
            data = make_figure(args.name, args.out, args.csv, force=True, progress=progress, client=client,
                               **params)
    else:
        with _writing(*outputs):
            data = make_figure(args.name, args.out, args.csv, force=True, progress=progress, **params)
    files = f"{args.out}" + (f" and {args.csv}" if args.csv else "")
    if not data.partial:
        print(f"wrote {files}", file=sys.stderr)
        return 0
    what = "interrupted" if str(data.status) == "interrupted" else "time limit"
    print(f"dm-opt: {what}: wrote PARTIAL {files} ({data.message})", file=sys.stderr)
    return 130 if str(data.status) == "interrupted" else 0


def _cmd_models(args) -> int:
    from dm_opt.core.instances import shipped_models

    models = shipped_models()
    if args.json:
        from dm_opt.core.jsonenc import dumps

        print(dumps({"models": [{"name": n, "source": s} for n, s in models]}))
    else:
        width = max((len(n) for n, _ in models), default=0)
        _print_text("\n".join(f"{n:<{width}}  {s}" for n, s in models))
    return 0


def _cmd_warmup(args) -> int:
    from dm_opt.warmup import CASES, warmup

    if args.jobs < 1:
        raise _UsageError(f"--jobs must be >= 1, got {args.jobs}")
    print(f"compiling dm_opt's kernels ({len(CASES)} cases; a second run only loads them)", file=sys.stderr)
    times = warmup(jobs=args.jobs, progress=True)
    print(f"done: {sum(t for _, t in times):.1f} s of compile and cache load")
    return 0


COMMANDS = {"models": _cmd_models, "warmup": _cmd_warmup, "solve": _cmd_solve, "bench": _cmd_bench,
            "report": _cmd_report, "export": _cmd_export, "figure": _cmd_figure}


def check_output_file(path, flag: str, force: bool) -> str:
    """:func:`dm_opt.core.safeio.check_output_file` with the CLI's one-line usage error."""
    try:
        return _safeio.check_output_file(path, flag, force)
    except (DmOptError, FileExistsError) as exc:
        raise _UsageError(str(exc)) from None


#: errno values that, without a file name, can only come from writing an output (disk full, quota, ...)
_WRITE_ERRNOS = {getattr(errno, e) for e in ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EROFS") if hasattr(errno, e)}


class _writing:
    """An OSError on one of the output files (checked beforehand, so rare: disk full, a path
    that vanished meanwhile) becomes one line naming the option, not a traceback."""

    def __init__(self, *outputs):
        self.outputs = [(flag, path) for flag, path in outputs if path]

    def __enter__(self):
        return self

    def __exit__(self, tp, exc, tb):
        if tp is None or not issubclass(tp, OSError) or issubclass(tp, BrokenPipeError):
            return False
        name = getattr(exc, "filename", None)
        for flag, path in self.outputs:
            if name is not None and os.path.realpath(os.fspath(name)) == os.path.realpath(path):
                raise _UsageError(f"{flag}: cannot write {path}: {exc.strerror or exc}") from None
        if name is None and getattr(exc, "errno", None) in _WRITE_ERRNOS and self.outputs:
            # a write error without a file name (e.g. ENOSPC from a flush): one of our outputs
            flags = ", ".join(f"{flag} {path}" for flag, path in self.outputs)
            raise _UsageError(f"cannot write {flags}: {exc.strerror or exc}") from None
        return False


def _one_line_warnings(previous):
    """A ``showwarning`` printing dm_opt's numba-cache repair as one ``dm-opt: warning:`` line."""

    def show(message, category, filename, lineno, file=None, line=None):
        from dm_opt.core.numba_cache import NumbaCacheWarning

        if issubclass(category, NumbaCacheWarning):
            print(f"dm-opt: warning: {message}", file=sys.stderr if file is None else file)
        else:
            previous(message, category, filename, lineno, file, line)

    return show


def _run(argv) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if args.verbose:
            from dm_opt.core.log import enable

            enable()
        return COMMANDS[args.command](args)
    except _UsageError as exc:
        print(f"dm-opt: error: {exc}", file=sys.stderr)
        return 2
    except DmOptError as exc:
        print(f"dm-opt: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # output piped into e.g. `head`: not an error of ours; silence the flush at exit too
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` was caused, directly or through its chain, by a Ctrl-C/SIGTERM."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv=None) -> int:
    """Run one ``dm-opt`` command; returns the exit status.

    SIGTERM is handled like Ctrl-C while the command runs (:class:`dm_opt.core.safeio.TerminateAsInterrupt`,
    restored afterwards): partial results are printed/written as after Ctrl-C, and the status is
    143 instead of 130.  Heavy modules are imported inside, so an interrupt during start-up is a
    clean exit too.
    """
    term = _safeio.TerminateAsInterrupt()
    previous_show = warnings.showwarning
    reported = False
    try:
        with term:
            warnings.showwarning = _one_line_warnings(previous_show)
            try:
                rc = _run(argv)
            except (KeyboardInterrupt, ImportError) as exc:
                # numpy turns a Ctrl-C during the import of its C extensions into an ImportError
                if isinstance(exc, ImportError) and not _interrupted(exc):
                    raise
                reported = True
                print("dm-opt: terminated" if term.received else "dm-opt: interrupted", file=sys.stderr)
                rc = _safeio.EXIT_SIGINT
            finally:
                warnings.showwarning = previous_show
    except KeyboardInterrupt:           # a second Ctrl-C/SIGTERM while reporting the first
        if not reported:
            print("dm-opt: interrupted", file=sys.stderr)
        rc = _safeio.EXIT_SIGINT
    if term.received and rc in (0, _safeio.EXIT_SIGINT):
        rc = _safeio.EXIT_SIGTERM
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
