"""Pretext tasks: keras.Models that own heads and augmentations and wrap an encoder.

Every module of this package is imported here, so a task registers itself by being in it
(`@PRETEXTS.register(name)` on a PretextTask subclass). Modules outside sslrun are imported
from SSLRUN_PLUGINS (sslrun/plugins.py); docs/contributing.md shows both ways.
"""

import importlib
import pkgutil

from sslrun.plugins import import_plugins
from sslrun.pretext.registry import PRETEXTS

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
import_plugins()

__all__ = ["PRETEXTS"]
