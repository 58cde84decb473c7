"""Validate plain YAML data against dataclass schemas, with errors a user can act on.

Every message names the file, the key path (`training.lr`) and what to do, with a did-you-mean for
misspelt keys and component names. Supported field types: bool, int, float, str, Path, Any, Literal,
Optional/unions of those, list[X], tuple[X, ...], dict[str, X], nested dataclasses and `Component`
fields (a registered component chosen by name, whose parameters are validated against the dataclass
the component registered).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, Union

from mmpref.errors import ConfigError, UserError, did_you_mean

REQUIRED = "???"
"""Sentinel default for keys a config must set (a path, a model id): validation fails when it is left."""


@dataclass
class Component:
    """A registered component chosen by name in a config, with its validated parameters.

    In YAML either `objective: dpo` or `objective: {name: dpo, beta: 0.1}`.
    """

    registry: str
    name: str
    params: Any = None

    def entry(self) -> Any:
        from mmpref.registry import ALL_REGISTRIES

        return ALL_REGISTRIES[self.registry].get(self.name)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Call the registered builder with the validated params (if any) and extra arguments."""
        entry = self.entry()
        if entry.params is None:
            return entry.obj(*args, **kwargs)
        return entry.obj(self.params, *args, **kwargs)


def component(registry: str, default: str | None = None, **default_params: Any) -> Any:
    """A dataclass field holding a `Component` from `registry`, defaulting to `default` (or required)."""
    if default is None:
        return field(default=REQUIRED, metadata={"registry": registry})

    def make() -> Component:
        return resolve_component(registry, {"name": default, **default_params}, Where("<defaults>", registry))

    return field(default_factory=make, metadata={"registry": registry})


@dataclass(frozen=True)
class Where:
    """Where a value came from: the config file and the key path inside it."""

    file: str
    path: str = ""

    def child(self, key: str | int) -> Where:
        if isinstance(key, int):
            return Where(self.file, f"{self.path}[{key}]")
        return Where(self.file, f"{self.path}.{key}" if self.path else key)

    def fail(self, message: str) -> ConfigError:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return ConfigError(f"{where}: {message}")


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_value(tp: Any, value: Any, where: Where, registry: str | None = None) -> Any:
    """Check `value` against type `tp` and return it converted (nested dataclasses built)."""
    if registry is not None:
        return resolve_component(registry, value, where)
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            hint = did_you_mean(str(value), [str(a) for a in allowed])
            raise where.fail(f"{_show(value)} is not one of {', '.join(repr(a) for a in allowed)}.{hint}")
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise where.fail(f"must be set (expected {_type_name(tp)}), got null")
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return validate_value(option, value, where)
            except ConfigError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        raise where.fail(f"expected {_type_name(tp)}, got {_show(value)}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise where.fail(f"expected a list, got {_show(value)}")
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        items = [validate_value(item_tp, v, where.child(i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise where.fail(f"expected a mapping, got {_show(value)}")
        args = typing.get_args(tp)
        value_tp = args[1] if args else Any
        return {str(k): validate_value(value_tp, v, where.child(str(k))) for k, v in value.items()}
    if is_dataclass(tp):
        return build_dataclass(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise where.fail(f"expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.fail(f"expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML 1.1 reads `1e-5` (no dot) as a string; accept numeric strings.
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise where.fail(f"expected a number, got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise where.fail(f"expected a string, got {_show(value)}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise where.fail(f"expected a path, got {_show(value)}")
        return Path(value)
    raise TypeError(f"unsupported schema type {tp!r} at {where.path}")


def build_dataclass(cls: type, data: Any, where: Where) -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and checking every field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise where.fail(f"expected a mapping of keys ({', '.join(f.name for f in fields(cls))}), got {_show(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    for key in data:
        if key not in known:
            hint = did_you_mean(str(key), known)
            raise where.child(str(key)).fail(
                f"unknown key.{hint} Valid keys here: {', '.join(sorted(known))}."
            )
    kwargs = {}
    for name, f in known.items():
        sub = where.child(name)
        registry = f.metadata.get("registry")
        if name in data:
            kwargs[name] = validate_value(hints[name], data[name], sub, registry)
        elif f.default is REQUIRED or (f.default is MISSING and f.default_factory is MISSING):
            raise _missing(sub, registry)
    obj = cls(**kwargs)
    for name, f in known.items():  # an absent section's defaults may hold required keys of their own
        if name not in data and f.default is MISSING:
            _check_required(getattr(obj, name), where.child(name))
    check = getattr(obj, "check", None)
    if callable(check):
        try:
            check()
        except (ValueError, UserError) as err:
            raise where.fail(str(err)) from None
    return obj


def _missing(where: Where, registry: str | None = None) -> ConfigError:
    """The error for a required key left unset (a component key also lists the names it accepts)."""
    if registry is not None:
        from mmpref.registry import ALL_REGISTRIES

        reg = ALL_REGISTRIES[registry]
        return where.fail(
            f"required key is missing: name one of the {reg.plural} ({', '.join(reg.names())}), "
            f"e.g. `{where.path}={next(iter(reg.names()), 'NAME')}`."
        )
    return where.fail(f"required key is missing: set it in the config or pass `{where.path}=...`.")


def _check_required(value: Any, where: Where) -> None:
    """Fail on the first REQUIRED left in a default-built section (`data:` omitted, `data.source` required)."""
    if isinstance(value, str) and value == REQUIRED:
        raise _missing(where)
    if is_dataclass(value) and not isinstance(value, type) and not isinstance(value, Component):
        for f in fields(value):
            if f.init:
                sub = where.child(f.name)
                if getattr(value, f.name) == REQUIRED and f.metadata.get("registry"):
                    raise _missing(sub, f.metadata["registry"])
                _check_required(getattr(value, f.name), sub)


def resolve_component(registry: str, value: Any, where: Where) -> Component:
    """Resolve `name` or `{name: ..., **params}` against a registry, validating the params."""
    from mmpref.registry import ALL_REGISTRIES

    reg = ALL_REGISTRIES[registry]
    if value == REQUIRED or value is None:
        raise where.fail(f"required: name one of the {reg.plural} ({', '.join(reg.names())}).")
    if isinstance(value, Component):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or "name" not in value:
        raise where.fail(f"expected a {reg.kind} name or a mapping with a `name` key, got {_show(value)}")
    params = {k: v for k, v in value.items() if k != "name"}
    name = value["name"]
    try:
        entry = reg.get(str(name))
    except UserError as err:
        raise where.child("name").fail(str(err)) from None
    if entry.params is None:
        if params:
            raise where.child(next(iter(params))).fail(f"{reg.kind} '{name}' takes no parameters.")
        return Component(registry, entry.name, None)
    return Component(registry, entry.name, build_dataclass(entry.params, params, where))


def to_plain(obj: Any) -> Any:
    """Turn a validated config back into plain YAML-able data (for printing and saving with a run)."""
    if isinstance(obj, Component):
        out: dict[str, Any] = {"name": obj.name}
        if obj.params is not None:
            out.update(to_plain(obj.params))
        return out
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj
