"""Built-in prompt sets, so a generate config can run without a prompt file (`prompts.source: builtin:NAME`).

Generated from small word lists in a fixed order: the same name always gives the same prompts and so
the same seeds. Public benchmarks (PartiPrompts, HPDv2) are not bundled; point `prompts.source` at
a copy of them.
"""

from __future__ import annotations

from collections.abc import Callable

_COLORS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "black")
_OBJECTS = ("cat", "dog", "car", "apple", "house", "bird", "chair", "flower", "boat", "teapot")
_SETTINGS = ("on a wooden table", "in a field", "on a beach", "in the snow", "at night", "in a studio")
_STYLES = ("a photo of", "a watercolor painting of", "a pencil sketch of", "a 3d render of")


def _objects() -> list[str]:
    """80 prompts: every colour × object, with a rotating style and setting (attribute binding)."""
    prompts = []
    for i, (color, obj) in enumerate((c, o) for c in _COLORS for o in _OBJECTS):
        prompts.append(f"{_STYLES[i % len(_STYLES)]} a {color} {obj} {_SETTINGS[i % len(_SETTINGS)]}")
    return prompts


def _counting() -> list[str]:
    """40 prompts asking for 1-4 objects (counting is a common failure the scorers can rank)."""
    words = ("one", "two", "three", "four")
    return [f"{n} {obj}{'' if n == 'one' else 's'} {_SETTINGS[i % len(_SETTINGS)]}"
            for i, (n, obj) in enumerate((n, o) for o in _OBJECTS for n in words)]


PROMPT_SETS: dict[str, Callable[[], list[str]]] = {"objects": _objects, "counting": _counting}
"""Built-in prompt set name -> builder."""

from mmpref.demo.prompt_sets import SHAPES_PROMPT_SETS  # noqa: E402  isort: skip

PROMPT_SETS.update(SHAPES_PROMPT_SETS)  # builtin:shapes_train, builtin:shapes_heldout (the shapes world)
