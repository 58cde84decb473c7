"""Pair filters on scores (and sample hashes for dedup), each counting what it drops.

Filters run in a fixed order and a pair is counted under the first filter that drops it, so the
summary's drop counts add up to candidates - kept. Unpaired runs (single labelled samples) only dedup:
the score filters judge a pair's two scores, which a single sample does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from mmpref.pipelines.pairing import Candidate

FILTERS = ("tie", "min_margin", "max_margin", "min_winner_score", "min_loser_score", "duplicate")
"""Filter names in the order they run (the keys of summary.json's pairs.dropped)."""

PAIR_ONLY = ("min_margin", "max_margin", "min_winner_score", "min_loser_score")
"""The filters that judge a pair's scores, refused with pairing.strategy: unpaired."""

SAMPLE_FILTERS = ("duplicate",)
"""Filter names of an unpaired run (the keys of summary.json's samples_written.dropped)."""


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

    def check_unpaired(self) -> None:
        """Refuse the pair filters on an unpaired run instead of silently ignoring them (they would change
        nothing, so a config that sets one says something other than what the run does)."""
        refuse_pair_filters(self, PAIR_ONLY, "filters")


def refuse_pair_filters(config: Any, names: Sequence[str], key: str, path: str | None = None) -> None:
    """Raise when one of the dataclass `config`'s pair-filter fields `names` differs from its default (the "no
    filter" value) on an unpaired run, naming it as `key`.NAME and saying how to unset it with the override
    `path`.NAME=DEFAULT (`path` defaults to `key`; a list item's is its position, e.g. scorers.0)."""
    defaults = {f.name: f.default for f in fields(config)}
    for name in names:
        if getattr(config, name) != defaults[name]:
            unset = "null" if defaults[name] is None else f"{defaults[name]:g}"
            raise ValueError(f"{key}.{name} filters pairs, but pairing.strategy: unpaired writes single samples; "
                             f"unset it ({path or key}.{name}={unset}): pairing.threshold decides which samples "
                             "are desirable.")


def count_drops(candidates: Sequence[Candidate], names: Sequence[str],
                first_failed_check: Callable[[Candidate], str | None], hashes: Sequence[str],
                dedup: bool) -> tuple[list[Candidate], dict[str, int]]:
    """The candidates no check drops, and per name in `names` how many it dropped.

    The loop of every pair filter (this module's and the multi-scorer one): a pair is counted under the
    first check it fails (`first_failed_check`, then "duplicate" when `dedup` is on: one sample twice, or
    a repeat of a (chosen, rejected) pair by sample content hash), so the counts add up to candidates - kept.
    """
    dropped = dict.fromkeys(names, 0)
    kept: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    for cand in candidates:
        reason = first_failed_check(cand)
        if reason is None and dedup:
            key = (hashes[cand.chosen], hashes[cand.rejected])
            if key[0] == key[1] or key in seen:
                reason = "duplicate"
            seen.add(key)
        if reason is None:
            kept.append(cand)
        else:
            dropped[reason] += 1
    return kept, dropped


def filter_pairs(candidates: Sequence[Candidate], scores: Sequence[float], hashes: Sequence[str],
                 config: FiltersConfig) -> tuple[list[Candidate], dict[str, int]]:
    """The candidates that pass every filter, and how many each filter dropped."""

    def first_failed_check(cand: Candidate) -> str | None:
        if cand.margin <= 0:
            return "tie"
        if cand.margin < config.min_margin:
            return "min_margin"
        if config.max_margin is not None and cand.margin > config.max_margin:
            return "max_margin"
        if config.min_winner_score is not None and scores[cand.chosen] < config.min_winner_score:
            return "min_winner_score"
        if config.min_loser_score is not None and scores[cand.rejected] < config.min_loser_score:
            return "min_loser_score"
        return None

    return count_drops(candidates, FILTERS, first_failed_check, hashes, config.dedup)


def dedup_samples(hashes: Sequence[str], dedup: bool) -> tuple[list[int], dict[str, int]]:
    """Positions of one prompt's samples to write (with `dedup`, the first of identical samples only: a
    repeat would count twice in an unpaired loss) and the drops per SAMPLE_FILTERS name."""
    kept: list[int] = []
    seen: set[str] = set()
    for position, digest in enumerate(hashes):
        if not (dedup and digest in seen):
            kept.append(position)
        seen.add(digest)
    return kept, {"duplicate": len(hashes) - len(kept)}
