"""Deterministic train / held-out split of the audio grammar by scene.

Held-out prompts are combinations never seen in training: a held-out single ("a click") still has its
sound in training inside other forms ("two clicks", sequences), and a held-out sequence scene is held
out in all four phrasings ("A followed by B", "A then B", "A before B", "B after A"), so a model can
only get it right by composing what it learnt.
"""

from __future__ import annotations

from mmpref.sandbox.audio.grammar import FORMS, all_prompts
from mmpref.sandbox.scene_split import PromptSplit, split_by_scene

__all__ = ["PromptSplit", "split_prompts"]


def split_prompts(seed: int = 0, heldout_fraction: float = 0.25) -> PromptSplit:
    """Hold out `heldout_fraction` of each form's scenes (rounded, at least one), chosen by `seed`."""
    return split_by_scene(FORMS, all_prompts, seed, heldout_fraction)
