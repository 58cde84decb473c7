"""Train / held-out splits by scene, shared by the synthetic worlds.

A scene is a prompt's canonical form (every phrasing of the same content), so a held-out scene is held
out in all its phrasings and a model can only get it right by composing what it learnt in training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PromptSplit:
    """Training and held-out prompts; no scene is in both."""

    train: tuple[Any, ...]
    heldout: tuple[Any, ...]

    def texts(self, which: str) -> list[str]:
        return [p.text for p in getattr(self, which)]


def split_by_scene(forms: Sequence[str], prompts_of_form: Callable[[str], Sequence[Any]], seed: int = 0,
                   heldout_fraction: float = 0.25) -> PromptSplit:
    """Hold out `heldout_fraction` of each form's scenes (rounded, at least one), chosen by `seed`.

    Prompts need `.canonical()` (the scene, sortable) and `.text`.
    """
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    rng = np.random.default_rng(seed)
    train: list[Any] = []
    heldout: list[Any] = []
    for form in forms:
        prompts = prompts_of_form(form)
        scenes = sorted({p.canonical() for p in prompts})
        order = rng.permutation(len(scenes))
        n_out = max(1, round(heldout_fraction * len(scenes)))
        held = {scenes[i] for i in order[:n_out]}
        for p in prompts:
            (heldout if p.canonical() in held else train).append(p)
    return PromptSplit(tuple(train), tuple(heldout))
