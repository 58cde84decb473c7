"""Bundled YAML recipes, installed as `mmpref.configs` so `pip install mmpref` users can run them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_configs() -> dict[str, Path]:
    """Map each bundled config's name (file stem) to its path."""
    root = Path(str(resources.files(__name__)))
    return {p.stem: p for p in sorted(root.glob("*.yaml"))}
