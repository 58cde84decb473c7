"""`mmpref train CONFIG`: fine-tune a model with the config's method and objective."""

from __future__ import annotations

import argparse

from mmpref.commands._config_args import add_config_arguments, load_and_maybe_print


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="fine-tune a model with a preference objective",
        description="Fine-tune a model with the method named by the config's `method:` key. "
        "Launch with `accelerate launch -m mmpref train CONFIG` for several GPUs.",
    )
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    run_config = load_and_maybe_print(args, "method")
    if run_config is None:
        return 0
    run_config.entry.obj(run_config.config)
    return 0
