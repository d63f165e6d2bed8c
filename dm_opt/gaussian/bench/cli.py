"""``dm-opt bench``: the command-line front end of the harness (registered in :mod:`dm_opt.cli`).

Exit status: 0 = every run checked out; 1 = at least one ``DISAGREE`` (a wrong
answer: a bug, never averaged away); 2 = bad flags/input, or an output directory
that cannot be used (checked before any run; one line on stderr); 130 = Ctrl-C,
143 = SIGTERM (the runs completed so far are written first, marked partial).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings

#: Exit status when a run contradicts enumeration.
EXIT_DISAGREE = 1


def parse_range(text: str) -> list[int]:
    """``"10:40:5"`` → 10, 15, …, 40 (inclusive); ``"8,10,12"``; ``"12"``."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if ":" in part:
                bits = [int(b) for b in part.split(":")]
                if len(bits) not in (2, 3):
                    raise ValueError
                lo, hi, step = (bits + [1])[:3]
                if step < 1 or hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1, step))
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP[:STEP] or a comma list of integers, got {text!r}") \
            from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive integers, got {text!r}")
    return sorted(set(out))


def _csv_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _nonneg_int(text: str) -> int:
    try:
        x = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return x


def _pos_int(text: str) -> int:
    x = _nonneg_int(text)
    if x < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return x


def add_parser(sub, positive_float) -> None:
    """Add the ``bench`` subcommand to the ``dm-opt`` sub-parsers."""
    b = sub.add_parser("bench", help="benchmark methods x instances against exhaustive enumeration")
    b.add_argument("--families", type=_csv_list, default=None,
                   help="comma list of generated families (wishart, equicorrelated, block, banded, straddle)")
    b.add_argument("--n", dest="sizes", type=parse_range, default=[8, 10, 12],
                   help="sizes START:STOP[:STEP] (inclusive) or a comma list (default 8,10,12)")
    b.add_argument("--seeds", type=_pos_int, default=3, help="seeds 0..SEEDS-1 per (family, n) (default 3)")
    b.add_argument("--models", nargs="+", default=None, metavar="PATH",
                   help="gaussian_market instance files or directories (searched for *.toml)")
    b.add_argument("--methods", type=_csv_list, default=None,
                   help="comma list of backends (default: every registered backend)")
    b.add_argument("--problems", type=_csv_list, default=["equilibrium"],
                   help="comma list of problems (first_best, equilibrium, decorrelated; default equilibrium)")
    b.add_argument("--time-limit", type=positive_float, default=60.0, help="seconds per run (default 60)")
    b.add_argument("--out", required=True, help="output directory (CSV, JSON, summary, profile PNG)")
    b.add_argument("--force", action="store_true", help="overwrite a non-empty output directory")
    b.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask cluster (e.g. tcp://host:8786)")
    b.add_argument("--workers", type=_pos_int, default=None,
                   help="run on a local Dask cluster with N single-threaded worker processes (default 1: "
                        "runs one at a time, so timings are not disturbed by each other)")
    b.add_argument("--serial", action="store_true",
                   help="run in this process without Dask (also the fallback when Dask is not installed)")
    b.add_argument("--reference-max-n", type=_nonneg_int, default=20,
                   help="also enumerate (as the reference) instances up to this n when 'enumerate' is not "
                        "among the methods (default 20)")
    b.add_argument("--memory", choices=("tracemalloc", "none"), default="tracemalloc",
                   help="peak-memory measurement (default tracemalloc; 'none' for timing-only runs)")
    b.add_argument("--retries", type=_nonneg_int, default=1, help="Dask retries of a failed run (default 1)")
    b.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def run(args, usage_error) -> int:
    """Execute ``dm-opt bench`` (``usage_error`` = the CLI's one-line usage exception class)."""
    from dm_opt.core.errors import BackendUnavailable
    from dm_opt.core.registry import get_backend, known_methods
    from dm_opt.core.safeio import deferred_signals
    from dm_opt.gaussian.bench import report
    from dm_opt.gaussian.bench.instances import FAMILIES, from_files, generated
    from dm_opt.gaussian.bench.runner import run_grid
    from dm_opt.gaussian.bench.summary import format_table, summarize
    from dm_opt.gaussian.objectives import PROBLEMS

    # the output directory is checked before anything is generated or run
    report.check_out_dir(args.out, args.force, "--out")
    if args.scheduler and args.workers:
        raise usage_error("--scheduler and --workers are exclusive (the cluster at ADDRESS has its own workers)")
    if args.serial and (args.scheduler or args.workers):
        raise usage_error("--serial excludes --scheduler and --workers")
    if not args.families and not args.models:
        raise usage_error(f"nothing to run: give --families (one of {', '.join(FAMILIES)}) and/or --models PATH")
    for fam in args.families or ():
        if fam not in FAMILIES:
            raise usage_error(f"--families: unknown family '{fam}'; choose from {', '.join(FAMILIES)}")
    for prob in args.problems:
        if prob not in PROBLEMS:
            raise usage_error(f"--problems: unknown problem '{prob}'; choose from {', '.join(PROBLEMS)}")
    instances = []
    if args.families:
        instances += generated(args.families, args.sizes, args.seeds)
    if args.models:
        skipped = []
        instances += from_files(args.models, on_skip=lambda f, kind: skipped.append(f"{f} ({kind})"))
        if skipped:
            print(f"dm-opt: skipping {len(skipped)} file(s) of other kinds: " + ", ".join(skipped), file=sys.stderr)
    if args.methods is None:
        # every registered backend that can run here; the others are named on stderr
        methods, missing = [], []
        for m in known_methods():
            try:
                get_backend(m)
                methods.append(m)
            except (BackendUnavailable, ImportError) as exc:
                missing.append(f"{m} ({exc})")
        if missing:
            print("dm-opt: skipping unavailable method(s): " + "; ".join(missing), file=sys.stderr)
    else:
        methods = args.methods
        if len(set(methods)) != len(methods):
            raise usage_error("--methods: a method is listed twice")
        for m in methods:
            if m not in known_methods():
                raise usage_error(f"--methods: unknown method '{m}'; available: {', '.join(known_methods())}")
            try:
                get_backend(m)
            except ImportError as exc:
                raise usage_error(f"--methods: method '{m}' cannot be loaded here ({exc})") from None
    out_dir = report.prepare_out_dir(args.out, args.force, "--out")

    progress = (not args.no_progress) and sys.stderr.isatty()
    with contextlib.ExitStack() as stack:
        client = None
        executor = "serial"
        if not args.serial:
            # Dask by default: a local cluster of one single-threaded worker unless told otherwise
            from dm_opt.gaussian.distributed import dask_available, open_client
            if args.scheduler or args.workers or dask_available():
                client = stack.enter_context(open_client(args.scheduler, args.workers or 1))
                executor = args.scheduler or f"LocalCluster({args.workers or 1})"
            else:
                print("dm-opt: note: Dask is not installed (pip install 'dm-opt[dist]'); running serially",
                      file=sys.stderr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # disagreements are printed below, once, loudly
            grid = run_grid(instances, methods, args.problems, time_limit=args.time_limit, client=client,
                            progress=progress, memory=args.memory, reference_max_n=args.reference_max_n,
                            retries=args.retries)
        meta = {"args": {k: v for k, v in vars(args).items() if k != "command"}, "methods": methods,
                "problems": args.problems, "memory": args.memory, "executor": executor}
        # written before the cluster is shut down; Ctrl-C/SIGTERM arriving meanwhile waits for the files
        with deferred_signals():
            paths = report.write_outputs(out_dir, grid, instances=instances, time_limit=args.time_limit, meta=meta,
                                         on_note=lambda msg: print(f"dm-opt: note: {msg}", file=sys.stderr))
    print(format_table(summarize(grid.rows, args.time_limit), args.time_limit))
    print("wrote " + ", ".join(paths.values()))
    if grid.interrupted:
        print("dm-opt: interrupted; partial results written", file=sys.stderr)
    for r in grid.disagreements:
        print(f"dm-opt: DISAGREE: {r['method']} on {r['instance']} ({r['problem']}): {r['check_message']}",
              file=sys.stderr)
    if grid.disagreements:
        print(f"dm-opt: {len(grid.disagreements)} run(s) DISAGREE with the reference: this is a bug "
              f"(see {paths['summary']})", file=sys.stderr)
        return EXIT_DISAGREE
    return 130 if grid.interrupted else 0
