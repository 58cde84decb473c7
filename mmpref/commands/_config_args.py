"""Arguments shared by the config-driven commands (`train`, `generate`)."""

from __future__ import annotations

import argparse

from mmpref.config import RunConfig, load_config


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a YAML config path, or a bundled config's name (see `mmpref list`)")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY.PATH=VALUE", help="override config values, e.g. training.lr=1e-5"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the config, resolve every component name, print the resolved config and exit",
    )


def load_and_maybe_print(args: argparse.Namespace, kind: str) -> RunConfig | None:
    """Validate the config; on --dry-run print it and return None."""
    run_config = load_config(args.config, args.overrides, kind=kind)
    if args.dry_run:
        print(f"# {run_config.path} (resolved, with overrides)")
        print(run_config.to_yaml(), end="")
        print(f"# ok: {kind} '{run_config.name}' and every component resolved; nothing was built (--dry-run).")
        return None
    return run_config
