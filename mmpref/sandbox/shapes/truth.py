"""Ground-truth reward of the shapes world, from pixels alone.

A prompt is a list of checks: per object group, its colour is present, its count is exact and its
blobs have the named shape; for a relation, the two objects lie along the named axis (the offset along
it larger than across it, the rule the renderer draws with a 2:1 margin); and nothing of another colour
is in the image. The graded score is the share of checks passed (shape checks give partial credit per
blob), and "correct" means all passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mmpref.sandbox.shapes.grammar import COLORS, MIRROR, Prompt, parse_prompt
from mmpref.sandbox.shapes.segment import Blob, ImageLike, as_image_list, find_blobs


@dataclass(frozen=True)
class Judgement:
    """The graded score in [0, 1], whether the image is fully correct, and each check's credit."""

    score: float
    correct: bool
    checks: dict[str, float] = field(default_factory=dict)


def relation_holds(first: Blob, second: Blob, relation: str) -> bool:
    """Does `first` lie `relation` `second` ("left of", ...), judged on the dominant axis?"""
    dx, dy = second.cx - first.cx, second.cy - first.cy  # image y grows downwards
    along, across = {
        "left of": (dx, dy),
        "right of": (-dx, dy),
        "above": (dy, dx),
        "below": (-dy, dx),
    }[relation]
    return along > 0 and along > abs(across)


def check_prompt(blobs: dict[str, list[Blob]], prompt: Prompt, *, use_shape: bool = True) -> dict[str, float]:
    """Credit in [0, 1] per check of `prompt` given the blobs per colour (shape checks optional)."""
    checks: dict[str, float] = {}
    for i, group in enumerate(prompt.groups):
        found = blobs[group.color]
        key = f"{i}:{group.color}"
        checks[f"{key} present"] = float(len(found) >= 1)
        checks[f"{key} count"] = float(len(found) == group.count)
        if use_shape:
            matching = sum(b.shape == group.shape for b in found)
            checks[f"{key} {group.shape}"] = min(matching, group.count) / max(group.count, len(found))
    if prompt.relation is not None:
        a, b = (blobs[g.color] for g in prompt.groups)
        checks[prompt.relation] = float(bool(a and b) and relation_holds(a[0], b[0], prompt.relation))
    extras = [c for c in COLORS if c not in prompt.colors and blobs[c]]
    checks["nothing else"] = float(not extras)
    return checks


def judge(image: ImageLike, prompt: str | Prompt) -> Judgement:
    """Score one image against one prompt."""
    checks = check_prompt(find_blobs(image), parse_prompt(prompt))
    score = float(np.mean(list(checks.values())))
    return Judgement(score=score, correct=all(v == 1.0 for v in checks.values()), checks=checks)


def judge_batch(images: Sequence[ImageLike] | np.ndarray, prompts: Sequence[str | Prompt]) -> list[Judgement]:
    arrays = as_image_list(images)
    if len(arrays) != len(prompts):
        raise ValueError(f"{len(arrays)} images but {len(prompts)} prompts")
    return [judge(im, p) for im, p in zip(arrays, prompts)]


def truth_scores(images: Sequence[ImageLike] | np.ndarray, prompts: Sequence[str | Prompt]) -> np.ndarray:
    """Graded ground-truth scores in [0, 1], one per (image, prompt)."""
    return np.array([j.score for j in judge_batch(images, prompts)], dtype=np.float64)


def truth_correct(images: Sequence[ImageLike] | np.ndarray, prompts: Sequence[str | Prompt]) -> np.ndarray:
    """Whether each image satisfies its prompt completely (bool array)."""
    return np.array([j.correct for j in judge_batch(images, prompts)], dtype=bool)


RELATION_OUTCOMES: tuple[str, ...] = ("right", "reversed", "other", "missing")


def relation_outcome(image: ImageLike, prompt: str | Prompt) -> str | None:
    """How a relation prompt's layout came out: "right", "reversed" (the objects swapped: the model knows
    the axis but not which object goes where, the typical failure of a model that reads a prompt as a bag
    of words), "other" (neither), or "missing" (an object's colour absent); None for other forms."""
    parsed = parse_prompt(prompt)
    if parsed.relation is None:
        return None
    blobs = find_blobs(image)
    first, second = (blobs[g.color] for g in parsed.groups)
    if not (first and second):
        return "missing"
    if relation_holds(first[0], second[0], parsed.relation):
        return "right"
    if relation_holds(first[0], second[0], MIRROR[parsed.relation]):
        return "reversed"
    return "other"

