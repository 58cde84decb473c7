"""`mmpref list`: every registered component and bundled config, one line each."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmpref.config import read_yaml
from mmpref.config.loader import bundled_configs
from mmpref.registry import ALL_REGISTRIES

TITLES = {
    "objectives": "Objectives (objective: NAME)",
    "adapters": "Adapters (model.adapter: NAME)",
    "methods": "Methods (method: NAME, for `mmpref train`)",
    "reward_models": "Reward models (for `mmpref score --model NAME` and pipelines)",
    "pipelines": "Pipelines (pipeline: NAME, for `mmpref generate`)",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("list", help="list objectives, adapters, methods, reward models, pipelines, configs")
    parser.add_argument("what", nargs="?", choices=[*TITLES, "configs"], help="show only one section")


def config_summary(path: Path) -> str:
    """The first comment line of a bundled config, which says what the recipe is."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            break
    data = read_yaml(path)
    return f"{data.get('method') or data.get('pipeline') or ''}".strip()


def run(args: argparse.Namespace) -> int:
    sections = [args.what] if args.what else [*TITLES, "configs"]
    for section in sections:
        if section == "configs":
            rows = [(name, config_summary(path)) for name, path in bundled_configs().items()]
            title = "Bundled configs (mmpref train NAME, mmpref cp NAME DEST)"
        else:
            rows = [(e.name, e.summary) for e in ALL_REGISTRIES[section].entries()]
            title = TITLES[section]
        print(f"{title}:")
        if not rows:
            print("  (none in this version yet)")
        width = max((len(n) for n, _ in rows), default=0)
        for name, summary in rows:
            print(f"  {name.ljust(width)}  {summary}")
        print()
    return 0
