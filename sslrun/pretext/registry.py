"""PRETEXTS: pretext task classes by name; `build(name, **params)` calls the class's `create`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sslrun.config import PRETEXT_SCHEMAS
from sslrun.registry import Registry

if TYPE_CHECKING:
    from sslrun.pretext.base import PretextTask


class TaskRegistry(Registry["PretextTask"]):
    """Entries are PretextTask subclasses: each carries its schema and facts (`needs_colour`, ...).

    `pretext=name` composes against the schema stored under the same name: sslrun's own
    (sslrun/config.py) must be the one the task names; a task registered from outside
    sslrun (SSLRUN_PLUGINS) brings its own."""

    def register(self, name: str) -> Callable[[type[PretextTask]], type[PretextTask]]:
        store = super().register(name)

        def decorator(cls: type[PretextTask]) -> type[PretextTask]:
            stored = PRETEXT_SCHEMAS.get(name) if name in PRETEXT_SCHEMAS else None
            if stored is not None and stored is not cls.schema and name not in self:
                raise ValueError(
                    f"pretext task '{name}' names {cls.schema.__name__} as its schema, but "
                    f"/schema/pretext/{name} is {stored.__name__}"
                )
            store(cls)  # refuses a duplicate name
            if stored is None:
                PRETEXT_SCHEMAS.register(name)(cls.schema)
            cls.task_name = name
            return cls

        return decorator

    def build(self, name: str, /, **params: Any) -> PretextTask:
        return self.get(name).create(**params)


PRETEXTS = TaskRegistry("pretext task")
