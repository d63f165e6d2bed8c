"""Benchmark outputs: raw CSV and JSON, a Markdown summary, a performance-profile PNG.

Files written in the output directory:

* ``runs.csv`` — one row per run (columns :data:`~dm_opt.gaussian.bench.runner.CSV_COLUMNS`);
* ``runs.json`` — ``{"meta", "instances", "runs", "summary"}``;
* ``summary.md`` — the Mittelmann-style table and the list of disagreements;
* ``profile.png`` — Dolan–Moré performance profile (needs the ``plot`` extra).
"""

from __future__ import annotations

import csv
import os
import platform
import re
import subprocess
import time
import warnings

from dm_opt.core import jsonenc
from dm_opt.core.errors import DmOptError, DmOptWarning, InstanceError
from dm_opt.core.safeio import check_output_dir
from dm_opt.gaussian.bench.runner import CSV_COLUMNS, rows_for_output
from dm_opt.gaussian.bench.summary import (
    MISSING_PLOT_NOTE,
    format_table,
    plot_available,
    plot_performance_profile,
    summarize,
)

OUTPUT_FILES = ("runs.csv", "runs.json", "summary.md", "profile.png")


def check_out_dir(path, force: bool, option: str = "out") -> str:
    """Check, without creating anything, that the output directory ``path`` can be used: an
    existing non-empty directory needs ``force``; a missing one is created later with its
    parents, so its nearest existing ancestor must be a writable directory.  Raises
    :class:`~dm_opt.core.errors.InstanceError` (field ``option``) naming the path."""
    try:
        return check_output_dir(path, option, force, OUTPUT_FILES)
    except (DmOptError, FileExistsError) as exc:
        msg = str(exc)
        raise InstanceError(option, msg[len(option) + 2:] if msg.startswith(option + ": ") else msg) from None


def prepare_out_dir(path, force: bool, option: str = "out") -> str:
    """Create ``path`` (and missing parents) after :func:`check_out_dir`."""
    path = check_out_dir(path, force, option)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise InstanceError(option, f"cannot create {path}: {exc.strerror or exc}") from None
    return path


#: Distributions whose versions every run records (``meta["versions"]``; None = not installed).
VERSIONED = {"dm_opt": "dm-opt", "numpy": "numpy", "numba": "numba", "highspy": "highspy"}


def versions() -> dict:
    """Installed versions of dm_opt, numpy, numba and highspy (HiGHS's Python package, whose version
    is the HiGHS release it wraps); None for one that is not installed.  Read from the package
    metadata: nothing is imported."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for key, dist in VERSIONED.items():
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            out[key] = None
    return out


def git_commit(path: str | None = None) -> str | None:
    """``git rev-parse HEAD`` of the checkout holding dm_opt (or ``path``); None — quietly — when
    that is not a git checkout, git is not installed or does not answer within 5 s."""
    if path is None:
        path = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = (out.stdout or "").strip()
    if out.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", sha):
        return None
    return sha


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, list):           # the profile: "[0, 3, 7]" (a spreadsheet keeps it as text)
        return "[" + ", ".join(str(int(x)) for x in value) + "]"
    return value


def write_outputs(out_dir, grid, *, instances, time_limit, meta: dict | None = None, on_note=None) -> dict:
    """Write every output file for a finished (or interrupted) grid; return ``{name: path}``.

    ``on_note(message)`` receives what was skipped (``profile.png`` without matplotlib); by default
    it is issued as a :class:`~dm_opt.core.errors.DmOptWarning` (``dm-opt bench`` prints one line)."""
    if on_note is None:
        def on_note(message):
            warnings.warn(message, DmOptWarning, stacklevel=3)
    rows = rows_for_output(grid.rows)
    summary = summarize(grid.rows, time_limit)
    paths = {}
    p = os.path.join(out_dir, "runs.csv")
    with open(p, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_cell(r.get(k)) for k in CSV_COLUMNS})
    paths["csv"] = p
    info = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(), "python": platform.python_version(), "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "time_limit": time_limit, "interrupted": grid.interrupted,
        "complete": not grid.interrupted, "disagreements": len(grid.disagreements),
        "versions": versions(),
    }
    commit = git_commit()
    if commit is not None:
        info["git_commit"] = commit
    info.update(meta or {})
    p = os.path.join(out_dir, "runs.json")
    with open(p, "w") as fh:
        # strict JSON: non-finite numbers as "inf" / "-inf" / "nan" (dm_opt.core.jsonenc)
        jsonenc.dump({"meta": info, "instances": [i.to_dict() for i in instances], "runs": rows,
                      "summary": summary}, fh, indent=1)
    paths["json"] = p
    text = [f"# dm-opt bench summary ({info['created']})", ""]
    if grid.interrupted:
        text += ["**INTERRUPTED**: partial results (only the runs completed before Ctrl-C or SIGTERM).", ""]
    text += [format_table(summary, time_limit), ""]
    by_size = ("problem", "method", "n")
    text += ["## By size", "", format_table(summarize(grid.rows, time_limit, by=by_size), time_limit, by=by_size,
                                            caption=False), ""]
    if grid.disagreements:
        text += [f"## DISAGREE: {len(grid.disagreements)} run(s) contradict the reference", ""]
        text += [f"- {r['method']} on {r['instance']} ({r['problem']}): {r['check_message']}"
                 for r in grid.disagreements]
    else:
        count = {k: sum(r["agreement"] == k for r in grid.rows) for k in ("agree", "consistent", "unchecked")}
        text += [f"No disagreement: {count['agree']} run(s) checked against enumeration, "
                 f"{count['consistent']} cross-checked against other methods only (no enumeration), "
                 f"{count['unchecked']} unchecked (no reference)."]
    p = os.path.join(out_dir, "summary.md")
    with open(p, "w") as fh:
        fh.write("\n".join(text) + "\n")
    paths["summary"] = p
    p = os.path.join(out_dir, "profile.png")
    if not plot_available():
        on_note(MISSING_PLOT_NOTE)
    else:
        partial = None
        if grid.interrupted:
            partial = f"interrupted after {len(grid.rows)} run(s); the runs not done are missing"
        if plot_performance_profile(grid.rows, p, partial=partial):
            paths["profile"] = p
    return paths
