"""Score a batch of samples with one scorer call, isolating samples the scorer fails on.

Scores are stored "higher is better": a scorer whose lower scores are better (a distance, a count of
detected errors) has its scores negated and its name recorded as `-name`, so pairing and filters
never special-case it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def scorer_label(scorer: Any) -> str:
    """The name written in the dataset's `scorer` column.

    A composite names its members and weights, e.g. `composite(1*pickscore + 0.5*hpsv2)`, so a pair
    says which models ranked it without the config at hand.
    """
    name = str(getattr(scorer, "name", type(scorer).__name__))
    members = getattr(scorer, "members", None)
    if members:
        name += "(" + " + ".join(f"{float(m.weight):g}*{scorer_label(m.scorer)}" for m in members) + ")"
    return name if getattr(scorer, "higher_is_better", True) else f"-{name}"


def score_samples(scorer: Any, samples: Sequence[Any], prompts: Sequence[str]) -> list[float | str]:
    """One entry per sample: its score (higher is better), or the reason it could not be scored.

    The batch goes to the scorer in one call (it chunks internally); if that raises, each sample is
    scored alone so one unreadable sample does not lose the batch. NaN/inf scores become failures.
    """
    if not samples:
        return []
    sign = 1.0 if getattr(scorer, "higher_is_better", True) else -1.0
    try:
        values = [float(v) for v in scorer.score(list(samples), list(prompts)).reshape(-1).tolist()]
        if len(values) != len(samples):
            raise RuntimeError(f"returned {len(values)} scores for {len(samples)} samples")
    except Exception as err:  # noqa: BLE001 - recorded per sample
        if len(samples) == 1:
            return [f"scorer error: {type(err).__name__}: {err}"]
        return [out for s, p in zip(samples, prompts) for out in score_samples(scorer, [s], [p])]
    return [sign * v if math.isfinite(v) else f"scorer returned {v}" for v in values]
