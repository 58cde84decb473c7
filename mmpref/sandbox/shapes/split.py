"""Deterministic train / held-out split of the grammar by scene.

Held-out prompts are combinations never seen in training: a held-out single ("a yellow triangle") still
has its colour and shape in training inside other forms ("two yellow triangles", relations), and a
held-out relation scene is held out in both phrasings ("A left of B" and "B right of A"), so a model can
only get it right by composing what it learnt.
"""

from __future__ import annotations

from mmpref.sandbox.scene_split import PromptSplit, split_by_scene
from mmpref.sandbox.shapes.grammar import FORMS, all_prompts

__all__ = ["PromptSplit", "split_prompts"]


def split_prompts(seed: int = 0, heldout_fraction: float = 0.25) -> PromptSplit:
    """Hold out `heldout_fraction` of each form's scenes (rounded, at least one), chosen by `seed`."""
    return split_by_scene(FORMS, all_prompts, seed, heldout_fraction)
