"""Pairing strategies: turn one prompt's scored samples into (chosen, rejected) candidates.

Strategies see scores only (higher is better), never samples, so every modality and scorer shares
them. Ties in score are ordered by sample index, so the result is deterministic.

- best_vs_worst: one pair per prompt, highest against lowest score (Diffusion-DPO-style on-policy data).
- all_pairs: every pair of samples, the higher-scored one chosen (combine with filters.min_margin
  for "all pairs above a margin").
- ranked: the same pairs, each with a soft target p = sigmoid(gap / temperature), the probability
  that chosen beats rejected, for soft-label objectives (SmPO/OSP-style); hard strategies write 1.0.
- unpaired: no pairs at all; every scored sample is one row labelled desirable when its score reaches
  `threshold` (the `single` schema of KTO/BCO/NPO-style objectives), so a sample never carries both labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Strategy = Literal["best_vs_worst", "all_pairs", "ranked", "unpaired"]


@dataclass
class PairingConfig:
    strategy: Strategy = "best_vs_worst"
    temperature: float = 1.0  # ranked only: target = sigmoid(score gap / temperature), in score units
    threshold: float | None = None  # unpaired only (required there): label = score >= threshold, in score units

    def check(self) -> None:
        if not self.temperature > 0:
            raise ValueError("pairing.temperature must be positive.")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ValueError("pairing.threshold must be a finite number.")

    def check_unpaired(self) -> None:
        """Require the threshold of an unpaired run; called by the pipelines that write unpaired rows, so a
        pipeline that refuses unpaired says that first rather than asking for a threshold it would not use."""
        if self.threshold is None:
            raise ValueError("pairing.threshold is required with pairing.strategy: unpaired (a sample is "
                             "desirable when its score >= threshold); set it in the scorer's units, e.g. "
                             "pairing.threshold=0.5.")

    @property
    def unpaired(self) -> bool:
        """Whether rows are single labelled samples rather than pairs (decides the writer and the report)."""
        return self.strategy == "unpaired"


def pairing_fingerprint(config: PairingConfig) -> dict[str, Any]:
    """The pairing keys of a run's resume fingerprint: an unset threshold is left out, so runs started before
    pairing.threshold existed still resume, while a changed strategy or threshold is refused."""
    from mmpref.config import to_plain

    return {k: v for k, v in to_plain(config).items() if not (k == "threshold" and v is None)}


def label_samples(scores: Sequence[float], config: PairingConfig) -> list[bool]:
    """Desirable (True) or not per score: one fixed cut, so a sample's label does not depend on its siblings."""
    if config.threshold is None:
        raise ValueError("label_samples needs pairing.threshold.")
    return [float(score) >= config.threshold for score in scores]


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
    if config.unpaired:
        raise ValueError("form_pairs: pairing.strategy unpaired forms no pairs (use label_samples).")
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
