"""`mmpref generate CONFIG`: sample a model, score the samples and write preference pairs."""

from __future__ import annotations

import argparse

from mmpref.commands._config_args import add_config_arguments, load_and_maybe_print
from mmpref.errors import NotAvailableYet
from mmpref.registry import PIPELINES


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "generate",
        help="sample -> score -> pair -> filter -> write a preference dataset",
        description="Run the data pipeline named by the config's `pipeline:` key and write a Hugging Face "
        "dataset of preference pairs that `mmpref train` reads without conversion.",
    )
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if not PIPELINES.names():
        raise NotAvailableYet(
            "no generation pipeline is available in this version yet; `mmpref generate` arrives with the "
            "pair-generation pipelines (see README, 'Status')."
        )
    run_config = load_and_maybe_print(args, "pipeline")
    if run_config is None:
        return 0
    run_config.entry.obj(run_config.config)
    return 0
