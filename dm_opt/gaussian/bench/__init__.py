"""Benchmark harness: methods × seeded instances, checked against exhaustive enumeration.

* :mod:`.instances` — seeded instance families ``(family, n, seed)`` and instance files;
* :mod:`.runner` — runs (serial or on Dask), per-run records, agreement check (``DISAGREE``);
* :mod:`.summary` — Mittelmann shifted geometric means, Dolan–Moré performance profiles;
* :mod:`.report` — CSV / JSON / Markdown / PNG outputs.

``dm-opt bench`` (see ``docs/bench.md``) is the command-line front end.
"""

from dm_opt.gaussian.bench.instances import FAMILIES, InstanceSpec, from_files, generated
from dm_opt.gaussian.bench.report import prepare_out_dir, write_outputs
from dm_opt.gaussian.bench.runner import DisagreementWarning, GridRun, check_agreement, run_grid, run_task
from dm_opt.gaussian.bench.summary import performance_profile, performance_ratios, shifted_geomean, summarize

__all__ = [
    "FAMILIES", "InstanceSpec", "generated", "from_files", "run_grid", "run_task", "check_agreement",
    "GridRun", "DisagreementWarning", "shifted_geomean", "summarize", "performance_profile",
    "performance_ratios", "prepare_out_dir", "write_outputs",
]
