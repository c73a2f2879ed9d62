"""Name-keyed registries: `register("name")`, `build("name", **params)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sslrun.errors import UnknownName

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a component name to the function that builds it.

    Duplicate names are refused; an unknown name is answered with the valid ones.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = fn
            return fn

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            raise UnknownName(f"unknown {self.kind} '{name}': valid names are {valid}") from None

    def build(self, name: str, /, **params: Any) -> T:
        return self.get(name)(**params)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
