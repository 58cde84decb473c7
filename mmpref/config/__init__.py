"""YAML configs validated against dataclass schemas, with `a.b=c` overrides and clear errors."""

from mmpref.config.loader import RunConfig, apply_overrides, find_config, load_config, read_yaml
from mmpref.config.schema import REQUIRED, Component, Where, build_dataclass, component, to_plain

__all__ = [
    "REQUIRED",
    "Component",
    "RunConfig",
    "Where",
    "apply_overrides",
    "build_dataclass",
    "component",
    "find_config",
    "load_config",
    "read_yaml",
    "to_plain",
]
