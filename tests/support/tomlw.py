"""The package's minimal TOML writer, for the fuzz tests."""

from dm_opt.core.tomlw import dumps, value  # noqa: F401
