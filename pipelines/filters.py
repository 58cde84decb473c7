"""Pair filters on scores (and sample hashes for dedup), each counting what it drops.

Filters run in a fixed order and a pair is counted under the first filter that drops it, so the
summary's drop counts add up to candidates - kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mmpref.pipelines.pairing import Candidate

FILTERS = ("tie", "min_margin", "max_margin", "min_winner_score", "min_loser_score", "duplicate")
"""Filter names in the order they run (the keys of summary.json's pairs.dropped)."""


@dataclass
class FiltersConfig:
    min_margin: float = 0.0  # drop pairs whose score gap is below this (ties, gap 0, are always dropped)
    max_margin: float | None = None  # drop pairs whose gap is above this (Tango 2 caps its CLAP gap)
    min_winner_score: float | None = None  # drop pairs whose chosen sample scores below this
    min_loser_score: float | None = None  # drop pairs whose rejected sample scores below this
    dedup: bool = True  # drop pairs of identical samples and repeats of the same pair

    def check(self) -> None:
        if self.min_margin < 0:
            raise ValueError("filters.min_margin must be >= 0.")
        if self.max_margin is not None and self.max_margin < self.min_margin:
            raise ValueError("filters.max_margin must be >= filters.min_margin.")


def is_duplicate_pair(cand: Candidate, hashes: Sequence[str], seen: set[tuple[str, str]]) -> bool:
    """Whether a pair shows one sample twice or repeats a (chosen, rejected) pair in `seen`; records it in `seen`.

    The dedup check of every pair filter (this module's and the multi-scorer one), by sample content hash.
    """
    key = (hashes[cand.chosen], hashes[cand.rejected])
    duplicate = key[0] == key[1] or key in seen
    seen.add(key)
    return duplicate


def filter_pairs(candidates: Sequence[Candidate], scores: Sequence[float], hashes: Sequence[str],
                 config: FiltersConfig) -> tuple[list[Candidate], dict[str, int]]:
    """The candidates that pass every filter, and how many each filter dropped."""
    dropped = dict.fromkeys(FILTERS, 0)
    kept: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    for cand in candidates:
        reason = None
        if cand.margin <= 0:
            reason = "tie"
        elif cand.margin < config.min_margin:
            reason = "min_margin"
        elif config.max_margin is not None and cand.margin > config.max_margin:
            reason = "max_margin"
        elif config.min_winner_score is not None and scores[cand.chosen] < config.min_winner_score:
            reason = "min_winner_score"
        elif config.min_loser_score is not None and scores[cand.rejected] < config.min_loser_score:
            reason = "min_loser_score"
        elif config.dedup and is_duplicate_pair(cand, hashes, seen):
            reason = "duplicate"
        if reason is None:
            kept.append(cand)
        else:
            dropped[reason] += 1
    return kept, dropped
