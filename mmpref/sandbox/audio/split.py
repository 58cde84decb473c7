"""Deterministic train / held-out split of the audio grammar by scene.

Held-out prompts are combinations never seen in training: a held-out single ("a click") still has its
sound in training inside other forms ("two clicks", sequences), and a held-out sequence scene is held
out in all four phrasings ("A followed by B", "A then B", "A before B", "B after A"), so a model can
only get it right by composing what it learnt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmpref.sandbox.audio.grammar import FORMS, Prompt, all_prompts


@dataclass(frozen=True)
class PromptSplit:
    """Training and held-out prompts; no scene is in both."""

    train: tuple[Prompt, ...]
    heldout: tuple[Prompt, ...]

    def texts(self, which: str) -> list[str]:
        return [p.text for p in getattr(self, which)]


def split_prompts(seed: int = 0, heldout_fraction: float = 0.25) -> PromptSplit:
    """Hold out `heldout_fraction` of each form's scenes (rounded, at least one), chosen by `seed`."""
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    rng = np.random.default_rng(seed)
    train: list[Prompt] = []
    heldout: list[Prompt] = []
    for form in FORMS:
        prompts = all_prompts(form)
        scenes = sorted({p.canonical() for p in prompts})
        order = rng.permutation(len(scenes))
        n_out = max(1, round(heldout_fraction * len(scenes)))
        held = {scenes[i] for i in order[:n_out]}
        for p in prompts:
            (heldout if p.canonical() in held else train).append(p)
    return PromptSplit(tuple(train), tuple(heldout))
