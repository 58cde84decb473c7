"""`mmpref score`: score images or audio with bundled reward models (placeholder until scorers land)."""

from __future__ import annotations

import argparse

from mmpref.errors import NotAvailableYet


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("score", help="score images/audio with reward models (not available yet)")
    parser.add_argument("args", nargs=argparse.REMAINDER)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`mmpref score` is not available in this version yet.")
