"""`mmpref cp NAME DEST`: copy a bundled config to edit it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from mmpref.config.loader import bundled_configs
from mmpref.errors import UserError, did_you_mean


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cp", help="copy a bundled config to edit it")
    parser.add_argument("name", help="bundled config name (see `mmpref list configs`)")
    parser.add_argument("dest", help="destination file or directory")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")


def run(args: argparse.Namespace) -> int:
    bundled = bundled_configs()
    name = args.name[:-5] if args.name.endswith(".yaml") else args.name
    if name not in bundled:
        raise UserError(
            f"no bundled config '{args.name}'.{did_you_mean(name, bundled)} "
            f"Bundled configs: {', '.join(bundled) or 'none'}."
        )
    dest = Path(args.dest)
    if dest.is_dir():
        dest = dest / f"{name}.yaml"
    if dest.exists() and not args.force:
        raise UserError(f"{dest} already exists; pass --force to overwrite it.")
    if not dest.parent.exists():
        raise UserError(f"{dest.parent}: directory does not exist; create it first.")
    shutil.copyfile(bundled[name], dest)
    print(f"copied {name} to {dest}; edit it, then run `mmpref train {dest}`.")
    return 0
