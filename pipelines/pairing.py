"""Pairing strategies: turn one prompt's scored samples into (chosen, rejected) candidates.

Strategies see scores only (higher is better), never samples, so every modality and scorer shares
them. Ties in score are ordered by sample index, so the result is deterministic.

- best_vs_worst: one pair per prompt, highest against lowest score (Diffusion-DPO-style on-policy data).
- all_pairs: every pair of samples, the higher-scored one chosen (combine with filters.min_margin
  for "all pairs above a margin").
- ranked: the same pairs, each with a soft target p = sigmoid(gap / temperature), the probability
  that chosen beats rejected, for soft-label objectives (SmPO/OSP-style); hard strategies write 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Strategy = Literal["best_vs_worst", "all_pairs", "ranked"]


@dataclass
class PairingConfig:
    strategy: Strategy = "best_vs_worst"
    temperature: float = 1.0  # ranked only: target = sigmoid(score gap / temperature), in score units

    def check(self) -> None:
        if not self.temperature > 0:
            raise ValueError("pairing.temperature must be positive.")


@dataclass(frozen=True)
class Candidate:
    chosen: int  # position in the scores list
    rejected: int
    margin: float  # chosen score - rejected score (>= 0)
    target: float  # probability that chosen beats rejected


def _ranking(scores: Sequence[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def form_pairs(scores: Sequence[float], config: PairingConfig) -> list[Candidate]:
    """Candidate pairs for one prompt, best-ranked chosen first, in a deterministic order."""
    order = _ranking(scores)
    if len(order) < 2:
        return []
    if config.strategy == "best_vs_worst":
        index_pairs = [(order[0], order[-1])]
    else:
        index_pairs = [(order[a], order[b]) for a in range(len(order)) for b in range(a + 1, len(order))]
    candidates = []
    for chosen, rejected in index_pairs:
        margin = float(scores[chosen]) - float(scores[rejected])
        target = 1.0 / (1.0 + math.exp(-margin / config.temperature)) if config.strategy == "ranked" else 1.0
        candidates.append(Candidate(chosen, rejected, margin, target))
    return candidates
