"""Procedural renderer: what a prompt should look like, drawn from a seed.

Flat, saturated shapes on a plain light background, antialiased by drawing at 4x and averaging down.
Layouts keep a gap between objects (so they stay separate blobs after blur) and put related objects
clearly along the relation's axis (the offset along it is at least twice the offset across it), so the
ground-truth reward is unambiguous on every clean render.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from mmpref.sandbox.shapes.grammar import Prompt, parse_prompt

BACKGROUND: tuple[int, int, int] = (245, 245, 245)
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (30, 170, 50),
    "blue": (40, 90, 220),
    "yellow": (240, 200, 20),
}
DEFAULT_SIZE = 32
_SUPERSAMPLE = 4
# Object side lengths in pixels at 32x32, by form: (low, high) inclusive.
_SIDES = {"single": (10, 15), "count": (7, 11), "relation": (8, 12)}
_GAP = 3.0  # minimum empty pixels between two objects' boxes at 32x32
# Unit vector of "first object -> second object" for "first <relation> second" (image y grows downwards).
_DIRECTION = {"left of": (1.0, 0.0), "right of": (-1.0, 0.0), "above": (0.0, 1.0), "below": (0.0, -1.0)}


@dataclass(frozen=True)
class PlacedShape:
    """One drawn object: colour, shape, box centre and side length, in output pixels."""

    color: str
    shape: str
    cx: float
    cy: float
    side: float


def layout(prompt: str | Prompt, seed: int, size: int = DEFAULT_SIZE) -> list[PlacedShape]:
    """Random sizes and positions for the prompt's objects; the same seed gives the same layout."""
    prompt = parse_prompt(prompt)
    rng = np.random.default_rng(seed)
    scale = size / DEFAULT_SIZE
    low, high = _SIDES[prompt.form]
    kinds = [(g.color, g.shape) for g in prompt.groups for _ in range(g.count)]
    for _attempt in range(1000):
        sides = rng.uniform(low, high + 1, len(kinds)) * scale
        centres = [rng.uniform(s / 2 + scale, size - s / 2 - scale, 2) for s in sides]
        if _fits(centres, sides, prompt.relation, scale):
            return [
                PlacedShape(c, s, float(x), float(y), float(d))
                for (c, s), (x, y), d in zip(kinds, centres, sides)
            ]
        if _attempt % 50 == 49:  # crowded: shrink the objects a little
            low, high = max(5, low - 1), max(6, high - 1)
    raise RuntimeError(f"could not lay out {prompt.text!r} at {size}px")


def _fits(centres: list[np.ndarray], sides: np.ndarray, relation: str | None, scale: float) -> bool:
    for i in range(len(centres)):
        for j in range(i + 1, len(centres)):
            reach = (sides[i] + sides[j]) / 2 + _GAP * scale
            dx, dy = np.abs(centres[i] - centres[j])
            if dx < reach and dy < reach:
                return False
    if relation is None:
        return True
    ux, uy = _DIRECTION[relation]
    delta = centres[1] - centres[0]
    along = delta[0] * ux + delta[1] * uy
    across = abs(delta[0] * uy - delta[1] * ux)
    return along >= (sides[0] + sides[1]) / 2 + _GAP * scale and across <= 0.5 * along


def draw(shapes: Sequence[PlacedShape], size: int = DEFAULT_SIZE) -> Image.Image:
    """Draw placed shapes antialiased on the background."""
    big = size * _SUPERSAMPLE
    canvas = Image.new("RGB", (big, big), BACKGROUND)
    pen = ImageDraw.Draw(canvas)
    for s in shapes:
        cx, cy, half = s.cx * _SUPERSAMPLE, s.cy * _SUPERSAMPLE, s.side * _SUPERSAMPLE / 2
        box = (cx - half, cy - half, cx + half, cy + half)
        fill = PALETTE[s.color]
        if s.shape == "circle":
            pen.ellipse(box, fill=fill)
        elif s.shape == "square":
            pen.rectangle(box, fill=fill)
        else:  # triangle, apex up
            pen.polygon([(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], fill=fill)
    return canvas.resize((size, size), Image.Resampling.BOX)


def render(prompt: str | Prompt, seed: int = 0, size: int = DEFAULT_SIZE) -> Image.Image:
    """A clean image of the prompt (RGB, `size` x `size`)."""
    return draw(layout(prompt, seed, size), size)


def render_batch(
    prompts: Sequence[str | Prompt], seeds: Sequence[int], size: int = DEFAULT_SIZE
) -> np.ndarray:
    """Clean images as uint8 [N, size, size, 3]."""
    return np.stack([np.asarray(render(p, s, size)) for p, s in zip(prompts, seeds)])
