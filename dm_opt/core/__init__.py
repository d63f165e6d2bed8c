"""The core shared by every model family: errors, status, the result protocol, limits, the
backend registry, dispatch of ``dm_opt.solve``, instance files, validation, JSON, HiGHS helpers.

It imports no family.  Submodules are imported on first access (``dm_opt.core.instances``
works after ``import dm_opt``), so ``import dm_opt`` stays light.
"""

import importlib as _importlib


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
