"""Named registries for pluggable parts (backends, metrics, losses, benchmarks, generators).

A registry maps a name to an object. Entries may be registered lazily as "module:attribute" so a
registry can list an implementation (the vLLM backend, say) without importing it: the import
happens on first `get`. An unknown name fails with the list of known ones.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from qwenlong.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping with helpful errors and lazy entries."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@REGISTRY.register("name")` above a function or class."""

        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T) -> None:
        if name in self._entries or name in self._lazy:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = obj

    def add_lazy(self, name: str, target: str) -> None:
        """Register `target` ("package.module:attr"), imported only when first asked for."""
        if name in self._entries or name in self._lazy:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._lazy[name] = target

    def get(self, name: str) -> T:
        if name in self._entries:
            return self._entries[name]
        if name in self._lazy:
            module_name, attr = self._lazy[name].split(":")
            obj = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = obj
            del self._lazy[name]
            return obj
        raise ConfigError(self._unknown(name))

    def check(self, name: str) -> str:
        """`name` if registered, else a ValueError with the did-you-mean line (for config
        validators: nothing lazy is imported)."""
        if name not in self:
            raise ValueError(self._unknown(name))
        return name

    def _unknown(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.what} {name!r}{hint}; known: {', '.join(known)}"

    def names(self) -> list[str]:
        return sorted({*self._entries, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
