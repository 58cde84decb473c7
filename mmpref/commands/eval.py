"""`mmpref eval`: compare models on a prompt set with scores, confidence intervals and win rates."""

from __future__ import annotations

import argparse

from mmpref.errors import NotAvailableYet


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="compare models on held-out prompts (not available yet)")
    parser.add_argument("args", nargs=argparse.REMAINDER)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet(
        "`mmpref eval` is not available in this version yet; it arrives with the shapes world "
        "(see README, 'Status'). Score images meanwhile with `mmpref score`."
    )
