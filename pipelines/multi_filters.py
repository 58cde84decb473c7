"""Pair filters over several scorers at once: a floor for the winner and the loser and a margin window per scorer.

Tango 2 kept an Audio-Alpaca pair only when two CLAP models agreed: model 1 winner ≥ 0.45, loser ≥ 0.40,
0.05 ≤ Δ ≤ 0.35; model 2 winner ≥ 0.60, 0.08 ≤ Δ ≤ 0.70; the winner above the loser under both. In a
config that is a list of scorers, each with its thresholds:

    scorers:
      - {label: clap1, scorer: {name: clap, scaled: false}, min_winner: 0.45, min_loser: 0.40,
         min_margin: 0.05, max_margin: 0.35}
      - {label: clap2, scorer: {name: clap, weights: ..., scaled: false}, min_winner: 0.60,
         min_margin: 0.08, max_margin: 0.70}

The first scorer ranks the samples (it decides chosen and rejected); every scorer filters. Checks run scorer
by scorer in a fixed order (order, min_margin, max_margin, min_winner, min_loser) and then the duplicate
check; a pair is counted under the first check that drops it (`LABEL.CHECK` in summary.json), so the drop
counts add up to candidates - kept. With pairing.strategy: unpaired the first scorer's score labels each clip
and the windows, which judge pairs, are refused (require_order, on by default, is left alone).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mmpref.config import REQUIRED, Component, component
from mmpref.pipelines.filters import count_drops, refuse_pair_filters
from mmpref.pipelines.pairing import Candidate

TOLERANCE = 1e-9
"""Margin windows are inclusive up to float rounding (0.45 - 0.40 is 0.0499999... in binary)."""

CHECKS: tuple[str, ...] = ("order", "min_margin", "max_margin", "min_winner", "min_loser")
"""Per-scorer checks in the order they run."""

PAIR_WINDOWS: tuple[str, ...] = ("min_margin", "max_margin", "min_winner", "min_loser")
"""The fields of a scorer's window, refused with pairing.strategy: unpaired when set."""


@dataclass
class ScorerFilter:
    """One scorer and the window a pair must fall in under it (scores higher-is-better, see scoring.py)."""

    label: str = REQUIRED  # name in the dataset's score columns and in summary.json (letters, digits, _)
    scorer: Component = component("reward_models")  # any registered reward model (`mmpref list`)
    min_winner: float | None = None  # drop pairs whose chosen clip scores below this
    min_loser: float | None = None  # drop pairs whose rejected clip scores below this
    min_margin: float = 0.0  # drop pairs whose gap (chosen - rejected) is below this
    max_margin: float | None = None  # drop pairs whose gap is above this
    require_order: bool = True  # drop pairs whose chosen clip does not score strictly above the rejected one

    def check(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.label or ""):
            raise ValueError(f"label '{self.label}' must be an identifier (letters, digits, _): it names dataset columns.")
        if self.min_margin < 0:
            raise ValueError(f"{self.label}: min_margin must be >= 0.")
        if self.max_margin is not None and self.max_margin < self.min_margin:
            raise ValueError(f"{self.label}: max_margin must be >= min_margin.")

    def check_unpaired(self, position: int) -> None:
        """Refuse a window set on an unpaired run (it would filter nothing), naming it as scorers.LABEL.KEY and
        the override that unsets it by the entry's `position` in the scorers list."""
        refuse_pair_filters(self, PAIR_WINDOWS, f"scorers.{self.label}", f"scorers.{position}")

    def why_dropped(self, winner: float, loser: float) -> str | None:
        """The first check this pair fails under this scorer, or None."""
        gap = winner - loser
        if self.require_order and not gap > 0:
            return "order"
        if gap < self.min_margin - TOLERANCE:
            return "min_margin"
        if self.max_margin is not None and gap > self.max_margin + TOLERANCE:
            return "max_margin"
        if self.min_winner is not None and winner < self.min_winner:
            return "min_winner"
        if self.min_loser is not None and loser < self.min_loser:
            return "min_loser"
        return None


def filter_names(filters: Sequence[ScorerFilter]) -> list[str]:
    """Every drop reason in the order checks run (the keys of summary.json's pairs.dropped)."""
    return [f"{f.label}.{check}" for f in filters for check in CHECKS] + ["duplicate"]


def check_labels(filters: Sequence[ScorerFilter]) -> None:
    if not filters:
        raise ValueError("scorers: give at least one scorer (the first one ranks the samples).")
    labels = [f.label for f in filters]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise ValueError(f"scorers: labels must be unique; repeated: {', '.join(repeated)}.")


def filter_multi(candidates: Sequence[Candidate], scores: Sequence[Mapping[str, float]], hashes: Sequence[str],
                 filters: Sequence[ScorerFilter], dedup: bool = True) -> tuple[list[Candidate], dict[str, int]]:
    """The candidates that pass every scorer's window, and how many each check dropped.

    `scores[i]` maps each scorer label to sample i's score; `hashes[i]` is sample i's content hash.
    """

    def first_failed_check(cand: Candidate) -> str | None:
        for f in filters:
            why = f.why_dropped(float(scores[cand.chosen][f.label]), float(scores[cand.rejected][f.label]))
            if why is not None:
                return f"{f.label}.{why}"
        return None

    return count_drops(candidates, filter_names(filters), first_failed_check, hashes, dedup)
