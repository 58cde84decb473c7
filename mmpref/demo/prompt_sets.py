"""The synthetic worlds' prompt sets for `prompts.source: builtin:NAME` (registered in mmpref.pipelines.prompt_sets).

- `shapes_train`: the training split of the shapes grammar (351 prompts, default split seed 0);
- `shapes_heldout`: the held-out split (117 prompts: scenes never seen in training, both phrasings);
- `audio_train`: the training split of the audio grammar (373 prompts, split seed 0);
- `audio_heldout`: its held-out split (125 prompts: scenes never seen in training, every phrasing).

Light: only a grammar (numpy) is imported, and only when a set is read.
"""

from __future__ import annotations

from collections.abc import Callable


def _split(which: str) -> list[str]:
    from mmpref.sandbox.shapes.split import split_prompts

    return split_prompts().texts(which)


def _audio_split(which: str) -> list[str]:
    from mmpref.sandbox.audio.split import split_prompts

    return split_prompts().texts(which)


def shapes_train() -> list[str]:
    """The shapes world's training prompts (the demo generates pairs on them)."""
    return _split("train")


def shapes_heldout() -> list[str]:
    """The shapes world's held-out prompts (the demo evaluates on them)."""
    return _split("heldout")


def audio_train() -> list[str]:
    """The audio world's training prompts (the audio base was trained on them; the audio demo pairs on them)."""
    return _audio_split("train")


def audio_heldout() -> list[str]:
    """The audio world's held-out prompts (the audio demo evaluates on them)."""
    return _audio_split("heldout")


AUDIO_PROMPT_SETS: dict[str, Callable[[], list[str]]] = {
    "audio_train": audio_train,
    "audio_heldout": audio_heldout,
}

# mmpref.pipelines.prompt_sets merges this mapping into the built-in sets; it carries both worlds' sets.
SHAPES_PROMPT_SETS: dict[str, Callable[[], list[str]]] = {
    "shapes_train": shapes_train,
    "shapes_heldout": shapes_heldout,
    **AUDIO_PROMPT_SETS,
}
