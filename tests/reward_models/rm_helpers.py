"""Shared helpers for the reward-model tests (images, pixels, prompts)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

PROMPTS = ["a red cat", "two dogs", "a cat and a dog", "blue square", "x", "photo of a table",
           "two red circles", "the dog"]


def smooth_images(n: int, height: int, width: int, seed: int = 0) -> list[Image.Image]:
    """Natural-ish test images: upsampled colour noise, so resizing behaves as on real pictures."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
        out.append(Image.fromarray(small).resize((width, height), Image.BILINEAR))
    return out


def to_pixels(images: list[Image.Image]):
    return torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255.0 for im in images])
