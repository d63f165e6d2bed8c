"""dm_opt's logging: one logger tree under ``"dm_opt"`` (quiet by default, as a library should be).

Modules log through ``logging.getLogger(__name__)`` (children of ``dm_opt``): the method ``auto``
chose, the bound when a search stops, enumeration chunks, outer-approximation rounds.  Nothing is
printed unless the application configures logging, e.g.::

    import logging
    logging.basicConfig(level=logging.INFO)      # or: dm_opt.core.log.enable()

``dm-opt --verbose`` (any command) shows these INFO messages on stderr.
"""

from __future__ import annotations

import logging

LOGGER_NAME = "dm_opt"
logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(logging.NullHandler())


def enable(level: int = logging.INFO, stream=None) -> logging.Handler:
    """Show dm_opt's log messages at ``level`` on ``stream`` (default stderr); returns the handler
    (remove it with ``logging.getLogger("dm_opt").removeHandler(h)``)."""
    h = logging.StreamHandler(stream)
    h.setFormatter(logging.Formatter("dm-opt: %(levelname)s: %(name)s: %(message)s"))
    logger.addHandler(h)
    logger.setLevel(level)
    return h


__all__ = ["logger", "enable", "LOGGER_NAME"]
