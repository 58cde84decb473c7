"""Two imperfect detectors of the shapes world, for pairing with scorers that are wrong in known ways.

- `color_blob_detector` checks colours, counts, the relation and stray colours exactly as the ground
  truth does, but is blind to shape: "a red circle" and "a red square" score the same.
- `shape_detector` is blind to colour: it finds objects of any colour, judges each one's shape from the
  fill ratio of its binary mask (a cheap rule that confuses blurred squares with circles and ragged
  circles with squares) and checks the total count, the multiset of shapes and, for relations, that some
  object of the first shape lies as stated from some object of the second.

Both are plain callables `(images, prompts) -> float scores in [0, 1]`, like `truth_scores`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from mmpref.sandbox.shapes.grammar import Prompt, parse_prompt
from mmpref.sandbox.shapes.segment import (
    Blob,
    ImageLike,
    as_image_list,
    color_coverage,
    label_components,
    min_area_for,
)
from mmpref.sandbox.shapes.truth import check_prompt, relation_holds


def _check_lengths(images: list, prompts: Sequence) -> None:
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")


def color_blob_detector(
    images: Sequence[ImageLike] | np.ndarray, prompts: Sequence[str | Prompt]
) -> np.ndarray:
    """Share of the prompt's colour, count, relation and no-stray-colour checks passed; ignores shape."""
    arrays = as_image_list(images)
    _check_lengths(arrays, prompts)
    scores = []
    for rgb, prompt in zip(arrays, prompts):
        min_area = min_area_for(rgb)
        blobs = {c: _blobs(cov >= 0.45, c, min_area) for c, cov in color_coverage(rgb).items()}
        checks = check_prompt(blobs, parse_prompt(prompt), use_shape=False)
        scores.append(float(np.mean(list(checks.values()))))
    return np.array(scores, dtype=np.float64)


def shape_detector(images: Sequence[ImageLike] | np.ndarray, prompts: Sequence[str | Prompt]) -> np.ndarray:
    """Share of total-count, shape and relation checks passed, judged on shapes alone (any colour)."""
    arrays = as_image_list(images)
    _check_lengths(arrays, prompts)
    scores = []
    for rgb, prompt in zip(arrays, prompts):
        prompt = parse_prompt(prompt)
        coverage = np.max(np.stack(list(color_coverage(rgb).values())), axis=0)
        blobs = _blobs(coverage >= 0.45, "any", min_area_for(rgb))
        wanted = Counter({g.shape: 0 for g in prompt.groups})
        for g in prompt.groups:
            wanted[g.shape] += g.count
        total = sum(wanted.values())
        seen = Counter(b.shape for b in blobs)
        checks = [
            float(len(blobs) == total),
            sum(min(seen[s], n) for s, n in wanted.items()) / max(total, len(blobs)),
        ]
        if prompt.relation is not None:
            first, second = (g.shape for g in prompt.groups)
            checks.append(
                float(
                    any(
                        relation_holds(a, b, prompt.relation)
                        for a in blobs
                        for b in blobs
                        if a is not b and a.shape == first and b.shape == second
                    )
                )
            )
        scores.append(float(np.mean(checks)))
    return np.array(scores, dtype=np.float64)


def _blobs(mask: np.ndarray, color: str, min_area: int) -> list[Blob]:
    """Components of a mask with a fill-ratio shape guess, largest first."""
    labels = label_components(mask)
    found = []
    for k in range(1, int(labels.max()) + 1):
        ys, xs = np.nonzero(labels == k)
        if len(ys) < min_area:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        fill = len(ys) / float((y1 - y0) * (x1 - x0))
        shape = "square" if fill >= 0.88 else "circle" if fill >= 0.66 else "triangle"
        found.append(
            Blob(color, len(ys), float(xs.mean()) + 0.5, float(ys.mean()) + 0.5, (y0, x0, y1, x1), shape)
        )
    return sorted(found, key=lambda b: -b.area)
