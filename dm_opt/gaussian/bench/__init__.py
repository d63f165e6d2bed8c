"""Benchmark harness: methods × seeded instances, checked against exhaustive enumeration.

* :mod:`.instances` — seeded instance families ``(family, n, seed)`` and instance files;
* :mod:`.runner` — runs (serial or on Dask), per-run records, agreement check (``DISAGREE``);
* :mod:`.summary` — Mittelmann shifted geometric means, Dolan–Moré performance profiles;
* :mod:`.report` — CSV / JSON / Markdown / PNG outputs.

``dm-opt bench`` (see ``docs/bench.md``) is the command-line front end.
"""

import importlib as _importlib

#: public name -> submodule (imported on first access, PEP 562: ``dm-opt`` builds its parser from
#: :mod:`.cli` without loading numpy)
_LAZY = {
    "FAMILIES": "instances", "InstanceSpec": "instances", "generated": "instances", "from_files": "instances",
    "prepare_out_dir": "report", "write_outputs": "report",
    "DisagreementWarning": "runner", "GridRun": "runner", "check_agreement": "runner", "run_grid": "runner",
    "run_task": "runner",
    "performance_profile": "summary", "performance_ratios": "summary", "shifted_geomean": "summary",
    "summarize": "summary",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FAMILIES", "InstanceSpec", "generated", "from_files", "run_grid", "run_task", "check_agreement",
    "GridRun", "DisagreementWarning", "shifted_geomean", "summarize", "performance_profile",
    "performance_ratios", "prepare_out_dir", "write_outputs",
]
