"""Read a YAML config (a path or a bundled config's name), apply `a.b=c` overrides, validate it.

A train config names its `method:` and a generate config its `pipeline:`; the rest of the file is
validated against the dataclass that method or pipeline registered, so each recipe shows every knob
it has and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mmpref.config.schema import Where, build_dataclass, to_plain
from mmpref.errors import ConfigError, UserError, did_you_mean


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-5` (no dot) as a float, as every ML config writer expects."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def bundled_configs() -> dict[str, Path]:
    from mmpref.configs import bundled_configs as _bundled

    return _bundled()


def find_config(name_or_path: str) -> Path:
    """A config path as given, or a bundled config by name (`sd15_diffusion_dpo`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = bundled_configs()
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if not path.exists() and stem in bundled and len(path.parts) <= 2:
        return bundled[stem]
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; pass a YAML config file.")
    hint = did_you_mean(stem, bundled)
    raise ConfigError(
        f"{path}: config file not found.{hint} Bundled configs: {', '.join(bundled) or 'none'} "
        "(`mmpref cp NAME DEST` copies one to edit)."
    )


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML mapping, turning syntax errors into one line with file, line and column."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror}).") from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: YAML syntax error: {problem}. Fix the file and retry.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys, got {type(data).__name__}.")
    return data


def _list_index(items: list[Any], part: str, item: str, where: str, file: str) -> int:
    """The position a numeric key part names in a list (`scorers.0.min_margin`), or a ConfigError."""
    if not part.isdigit():
        raise ConfigError(f"{file}: override '{item}': {where} is a list; give an item's position, e.g. "
                          f"{where}.0 for the first of its {len(items)} items.")
    if int(part) >= len(items):
        raise ConfigError(f"{file}: override '{item}': {where} has {len(items)} items (positions 0 to "
                          f"{len(items) - 1}), not {part}.")
    return int(part)


def apply_overrides(data: dict[str, Any], overrides: list[str], file: str) -> dict[str, Any]:
    """Set `a.b.c=value` overrides (values parsed as YAML) into a copy of `data`; a number indexes a list
    (`scorers.0.scorer.name=clap` sets the first scorer's name)."""
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}': expected KEY.PATH=VALUE, e.g. training.lr=1e-5.")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".")]
        if not key.strip() or any(not p for p in parts):
            raise ConfigError(f"override '{item}': the key path is empty or has an empty part.")
        try:
            value = parse_yaml(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node: Any = data
        for i, part in enumerate(parts):
            if isinstance(node, list):
                part = _list_index(node, part, item, ".".join(parts[:i]), file)  # type: ignore[assignment]
            if i == len(parts) - 1:
                node[part] = value
                break
            nxt = node[part] if isinstance(node, list) else node.get(part)
            if isinstance(nxt, str):  # `objective: dpo` shorthand gains parameters
                nxt = {"name": nxt}
            elif nxt is None:
                nxt = {}
            elif not isinstance(nxt, (dict, list)):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"{file}: override '{item}': {where} is a value, not a section.")
            node[part] = nxt
            node = nxt
    return data


@dataclass
class RunConfig:
    """A validated config: the chosen method or pipeline entry, its config object and the plain data."""

    kind: str  # "method" or "pipeline"
    name: str
    entry: Any
    config: Any
    path: Path

    def plain(self) -> dict[str, Any]:
        return {self.kind: self.name, **to_plain(self.config)}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.plain(), sort_keys=False)


def load_config(name_or_path: str, overrides: list[str] | None = None, *, kind: str = "method") -> RunConfig:
    """Load, override and validate a `method:` (train) or `pipeline:` (generate) config."""
    from mmpref.registry import METHODS, PIPELINES

    registry = METHODS if kind == "method" else PIPELINES
    path = find_config(name_or_path)
    data = apply_overrides(read_yaml(path), overrides or [], str(path))
    where = Where(str(path))
    if kind not in data:
        raise where.fail(
            f"missing top-level `{kind}:` key; name one of: {', '.join(registry.names())}."
        )
    name = data.pop(kind)
    try:
        entry = registry.get(str(name))
    except UserError as err:
        raise where.child(kind).fail(str(err)) from None
    if entry.params is None:
        raise where.child(kind).fail(f"{registry.kind} '{name}' has no config schema (internal error).")
    config = build_dataclass(entry.params, data, where)
    return RunConfig(kind=kind, name=entry.name, entry=entry, config=config, path=path)
