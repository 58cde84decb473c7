"""The shapes world's scorers in the reward-model registry (imported by mmpref.reward_models).

- `shapes_truth`: the ground-truth graded score (share of the prompt's checks an image passes).
- `shapes_color_blobs`: colour-blob detector, exact on colours, counts and relations, blind to shape.
- `shapes_shape_detector`: shape detector, blind to colour and noisier on shapes.

The registry hands procedural scorers float pixels [B, 3, H, W] in [0, 1] (possibly on a GPU); the
world's functions work on numpy images, so each is wrapped to move pixels to the CPU and return a
tensor. None is differentiable (segmentation thresholds have no useful gradient).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from mmpref.reward_models.procedural import register_procedural
from mmpref.sandbox.shapes.detectors import color_blob_detector, shape_detector
from mmpref.sandbox.shapes.truth import truth_scores

WorldScorer = Callable[[Any, Sequence[str]], np.ndarray]

SHAPES_SCORERS: dict[str, tuple[WorldScorer, str]] = {
    "shapes_truth": (
        truth_scores,
        "shapes world ground truth: share of the prompt's checks (colour, count, shape, relation) passed",
    ),
    "shapes_color_blobs": (
        color_blob_detector,
        "shapes world colour-blob detector: colours, counts and relations exact, blind to shape",
    ),
    "shapes_shape_detector": (
        shape_detector,
        "shapes world shape detector: counts, shapes and relations from a noisy rule, blind to colour",
    ),
}
SCALE = "share of the prompt's checks passed, in [0, 1]; 1 = all passed"


def on_pixels(fn: WorldScorer) -> Callable[[torch.Tensor, Sequence[str]], torch.Tensor]:
    """`fn` as a registry scorer: float pixels [B, 3, H, W] in [0, 1] in, float32 scores [B] out."""

    def scorer(pixels: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        images = pixels.detach().float().cpu().numpy() if isinstance(pixels, torch.Tensor) else pixels
        return torch.as_tensor(fn(images, list(prompts)), dtype=torch.float32)

    scorer.__name__ = scorer.__qualname__ = fn.__name__
    scorer.__doc__ = fn.__doc__
    return scorer


def register_shapes_scorers() -> list[str]:
    for name, (fn, summary) in SHAPES_SCORERS.items():
        register_procedural(
            name, on_pixels(fn), summary=summary, needs_prompt=True, differentiable=False, scale=SCALE
        )
    return list(SHAPES_SCORERS)


REGISTERED = register_shapes_scorers()
