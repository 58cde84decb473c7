"""The shapes world's prompt sets for `prompts.source: builtin:NAME` (registered in mmpref.pipelines.prompt_sets).

- `shapes_train`: the training split of the shapes grammar (351 prompts, default split seed 0);
- `shapes_heldout`: the held-out split (117 prompts: scenes never seen in training, both phrasings).

Light: only the grammar (numpy) is imported, and only when a set is read.
"""

from __future__ import annotations

from collections.abc import Callable


def _split(which: str) -> list[str]:
    from mmpref.sandbox.shapes.split import split_prompts

    return split_prompts().texts(which)


def shapes_train() -> list[str]:
    """The shapes world's training prompts (the demo generates pairs on them)."""
    return _split("train")


def shapes_heldout() -> list[str]:
    """The shapes world's held-out prompts (the demo evaluates on them)."""
    return _split("heldout")


SHAPES_PROMPT_SETS: dict[str, Callable[[], list[str]]] = {
    "shapes_train": shapes_train,
    "shapes_heldout": shapes_heldout,
}
