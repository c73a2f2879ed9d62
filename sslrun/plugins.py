"""SSLRUN_PLUGINS: modules outside sslrun that register components (a pretext task, ...) on import.

    SSLRUN_PLUGINS=my_method,lab.tasks sslrun pretext=my_method 'hydra.searchpath=[file:///path/to/conf]'

Each comma-separated name is imported with importlib, so its folder must be on PYTHONPATH (or the
module installed). Its YAML options are found through Hydra's `hydra.searchpath`.
"""

from __future__ import annotations

import importlib
import os

from sslrun.errors import ConfigError

PLUGINS_ENV = "SSLRUN_PLUGINS"


def plugin_names(value: str | None = None) -> list[str]:
    value = os.environ.get(PLUGINS_ENV, "") if value is None else value
    return [name.strip() for name in value.split(",") if name.strip()]


def import_plugins() -> None:
    """Import every module SSLRUN_PLUGINS names (once: Python caches imported modules)."""
    for name in plugin_names():
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ConfigError(
                f"{PLUGINS_ENV}={os.environ[PLUGINS_ENV]!r}: cannot import {name!r} ({err}); "
                "put the folder that holds it on PYTHONPATH, or install it"
            ) from err
