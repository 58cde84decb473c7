"""`mmpref demo`: align a tiny built-in model end to end on a CPU and report the measured gain."""

from __future__ import annotations

import argparse

from mmpref.errors import NotAvailableYet


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="align a tiny built-in model and prove the gain (not available yet)")
    parser.add_argument("--out", default="./mmpref-demo", help="output directory (default ./mmpref-demo)")


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet(
        "`mmpref demo` is not available in this version yet; it arrives with the shapes world. "
        "Meanwhile `mmpref train bandit_dpo` runs a real end-to-end alignment on a CPU in seconds."
    )
