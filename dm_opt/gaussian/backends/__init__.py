"""Exact backends of the Gaussian data market (AMMO): each registers itself in
:mod:`dm_opt.core.registry` when its module is imported (on first use)."""

#: method name -> module registering it (imported on demand by :func:`dm_opt.core.registry.get_backend`)
BACKEND_MODULES: dict[str, str] = {
    "enumerate": "dm_opt.gaussian.backends.enumeration",
    "bnb": "dm_opt.gaussian.backends.bnb",
    "milp": "dm_opt.gaussian.backends.milp",
    "misocp-scip": "dm_opt.gaussian.backends.scip",
    "scip-check": "dm_opt.gaussian.backends.scip_check",
    "community": "dm_opt.gaussian.backends.community",
}
