"""argparse types for numeric flags (the `mmpref` commands and the worlds' base scripts): a flag out of range stops
at parse time with the flag's name, instead of minutes later inside a stage (a zero batch, a negative learning
rate, an EMA of 1.5) or as a message about a config key the user never typed."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _number(kind: type, low: float | None, high: float | None, *, low_open: bool = False,
            high_open: bool = False, what: str) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if value != value:  # NaN passes every comparison below
            raise argparse.ArgumentTypeError(f"{text!r} is not a number")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {what}")
        return value

    return parse


positive_int = _number(int, 1, None, what="an integer >= 1")
"""Steps, batch sizes, dataset sizes, thread and process counts, seeds per prompt."""
non_negative_int = _number(int, 0, None, what="an integer >= 0")
"""Counts where 0 switches a stage off or means a default (--finish-steps 0, demo --train-threads 0)."""
positive_float = _number(float, 0.0, None, low_open=True, what="a number > 0")
"""Learning rates."""
non_negative_float = _number(float, 0.0, None, what="a number >= 0")
"""Loss weights and dB floors."""
unit_interval = _number(float, 0.0, 1.0, high_open=True, what="a number in [0, 1)")
"""EMA decays and shares of the batch (1 would freeze the EMA or drop every prompt)."""
