"""Named registries of components: objectives, adapters, methods, reward models, pipelines.

Adding a component is one new file with a `@REGISTRY.register(...)` decorator plus one import line in
its package's `__init__.py`. Configs name components by their registered name; each entry may declare
a dataclass of parameters that the config validator checks the YAML against.

Component modules must keep heavy imports (diffusers, transformers, open_clip, peft) inside functions,
so that `mmpref list` and config validation stay fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mmpref.errors import UserError, did_you_mean


@dataclass(frozen=True)
class Entry:
    """One registered component: the object to build, its parameter schema and a one-line summary."""

    name: str
    obj: Any
    summary: str
    params: type | None = None
    kind: str = ""


class Registry:
    """A name -> component table that loads its plugin modules on first use."""

    def __init__(self, kind: str, plural: str, modules: tuple[str, ...]) -> None:
        self.kind = kind
        self.plural = plural
        self._modules = modules
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def register(self, name: str, *, summary: str, params: type | None = None) -> Callable[[Any], Any]:
        """Decorator: register `obj` under `name` with its parameter dataclass."""

        def decorator(obj: Any) -> Any:
            if name in self._entries and self._entries[name].obj is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = Entry(name=name, obj=obj, summary=summary, params=params, kind=self.kind)
            return obj

        return decorator

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._modules:
            importlib.import_module(module)

    def get(self, name: str) -> Entry:
        """The entry called `name`; a UserError with a did-you-mean when there is none."""
        self._load()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none yet"
            raise UserError(
                f"unknown {self.kind} '{name}'.{did_you_mean(name, self._entries)} Known {self.plural}: {known}."
            )
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry]:
        self._load()
        for name in sorted(self._entries):
            yield self._entries[name]


OBJECTIVES = Registry("objective", "objectives", ("mmpref.objectives",))
ADAPTERS = Registry("adapter", "adapters", ("mmpref.adapters",))
METHODS = Registry("method", "methods", ("mmpref.methods",))
REWARD_MODELS = Registry("reward model", "reward models", ("mmpref.reward_models",))
PIPELINES = Registry("pipeline", "pipelines", ("mmpref.pipelines",))

ALL_REGISTRIES: dict[str, Registry] = {
    "objectives": OBJECTIVES,
    "adapters": ADAPTERS,
    "methods": METHODS,
    "reward_models": REWARD_MODELS,
    "pipelines": PIPELINES,
}
