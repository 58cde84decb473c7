"""Ground-truth accuracy per prompt form, shared by the synthetic worlds' base-model evaluations.

Every world samples its pipeline on (prompt, seed) cases and judges each sample against its prompt;
only the sampler, the judge and the list of forms differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np


def accuracy_by_form(
    prompts: Sequence[Any],
    seeds: Iterable[int],
    *,
    parse: Callable[[Any], Any],
    sample: Callable[[list[Any], list[int]], Any],
    judge: Callable[[Any, list[Any]], Sequence[Any]],
    forms: Sequence[str],
) -> dict[str, float]:
    """Share of correct samples overall and per form (forms with no prompt are left out), the mean graded
    score and the number of samples. Every prompt is sampled once per seed."""
    parsed = [parse(p) for p in prompts]
    cases = [(p, s) for s in seeds for p in parsed]
    outputs = sample([p for p, _ in cases], [s for _, s in cases])
    verdicts = judge(outputs, [p for p, _ in cases])
    correct = np.array([v.correct for v in verdicts])
    result = {"all": float(correct.mean()), "score": float(np.mean([v.score for v in verdicts])), "n": len(cases)}
    for form in forms:
        mask = np.array([p.form == form for p, _ in cases])
        if mask.any():
            result[form] = float(correct[mask].mean())
    return result
