"""From pixels to objects: colour segmentation and connected components (shapes: classify.py).

Colours are told apart by hue and found by chroma (max - min channel), both of which survive blending
with the light background: a blurred edge keeps its hue and loses chroma in proportion to how much of
the object the pixel covers. A pixel belongs to an object when it covers at least `COVERAGE` of it, so
blob areas stay unbiased under blur, and blobs smaller than a minimum area (speckle from a diffusion
model) are dropped. Everything is numpy; no image-processing dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mmpref.sandbox.shapes.classify import fit_shape
from mmpref.sandbox.shapes.grammar import COLORS
from mmpref.sandbox.shapes.render import DEFAULT_SIZE, PALETTE

COVERAGE = 0.45  # share of an object's colour a pixel must carry to count as that object
MIN_AREA_AT_32 = 8  # pixels; blobs below this (scaled by image area) are noise
# Hue boundaries (degrees) halfway between the palette's hues: red 0, yellow ~50, green ~129, blue ~223.
_HUE_EDGES = (25.0, 90.0, 176.0, 291.0)
_HUE_COLORS = ("red", "yellow", "green", "blue", "red")


@dataclass(frozen=True)
class Blob:
    """A connected region of one colour: its area, mass centroid, box and shape."""

    color: str
    area: int
    cx: float
    cy: float
    box: tuple[int, int, int, int]  # y0, x0, y1, x1 (exclusive)
    shape: str  # circle / square / triangle / other


ImageLike = Image.Image | np.ndarray


def as_rgb(image: ImageLike) -> np.ndarray:
    """One image as float [H, W, 3] in 0..255; accepts PIL, uint8 HWC/CHW, or float in [0, 1]."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float32)
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise ValueError(f"expected one RGB image, got shape {arr.shape}")
    if arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32)
    return np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0


def as_image_list(images: Sequence[ImageLike] | np.ndarray) -> list[np.ndarray]:
    """A batch (list of PIL/arrays, or an [N, ...] array) as a list of uint8 [H, W, 3] arrays."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = images[None]
    return [np.round(as_rgb(im)).astype(np.uint8) for im in images]


def _chroma_and_hue(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.asarray(rgb, dtype=np.float32)  # uint8 differences would wrap around
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    top, bottom = rgb.max(-1), rgb.min(-1)
    chroma = top - bottom
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(
        top == r,
        ((g - b) / safe) % 6.0,
        np.where(top == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    return chroma, hue * 60.0


_PURE_CHROMA = {name: float(max(c) - min(c)) for name, c in PALETTE.items()}


def color_coverage(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Per colour, each pixel's share of that colour: chroma over the colour's pure chroma where the
    hue is that colour's, else 0 (clipped to [0, 1])."""
    chroma, hue = _chroma_and_hue(rgb)
    which = np.digitize(hue, _HUE_EDGES)
    out = {}
    for name in COLORS:
        in_hue = np.isin(which, [i for i, c in enumerate(_HUE_COLORS) if c == name])
        out[name] = np.where(in_hue, np.clip(chroma / _PURE_CHROMA[name], 0.0, 1.0), 0.0)
    return out


def label_components(mask: np.ndarray) -> np.ndarray:
    """8-connected component labels (0 = background, then 1..K in raster order of first pixel)."""
    h, w = mask.shape
    big = h * w
    flat_idx = np.arange(big).reshape(h, w)
    lab = np.where(mask, flat_idx, big)
    while True:
        padded = np.pad(lab, 1, constant_values=big)
        low = lab.copy()
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                np.minimum(low, padded[dy : dy + h, dx : dx + w], out=low)
        low = np.where(mask, low, big)
        flat = np.append(low.ravel(), big)
        low = np.where(mask, flat[low], big)  # pointer jumping: follow the label to its own label
        if np.array_equal(low, lab):
            break
        lab = low
    out = np.zeros((h, w), dtype=np.int32)
    roots = np.unique(lab[mask])
    for k, root in enumerate(roots, start=1):
        out[lab == root] = k
    return out


def dilate(mask: np.ndarray) -> np.ndarray:
    """Grow a mask by one pixel in all 8 directions."""
    h, w = mask.shape
    padded = np.pad(mask, 1)
    out = np.zeros_like(mask)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= padded[dy : dy + h, dx : dx + w]
    return out


def blobs_from_coverage(
    coverage: np.ndarray, color: str, min_area: int, threshold: float = COVERAGE
) -> list[Blob]:
    """The colour's connected components of at least `min_area` pixels, largest first, with shapes."""
    labels = label_components(coverage >= threshold)
    found = []
    for k in range(1, int(labels.max()) + 1):
        component = labels == k
        ys, xs = np.nonzero(component)
        if len(ys) < min_area:
            continue
        support = dilate(component) & ((labels == 0) | component)
        sy, sx = np.nonzero(support)
        y0, y1, x0, x1 = sy.min(), sy.max() + 1, sx.min(), sx.max() + 1
        shape, _ = fit_shape(coverage[y0:y1, x0:x1], support[y0:y1, x0:x1])
        box = (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)
        found.append(Blob(color, len(ys), float(xs.mean()) + 0.5, float(ys.mean()) + 0.5, box, shape))
    return sorted(found, key=lambda b: -b.area)


def min_area_for(rgb: np.ndarray) -> int:
    return max(2, round(MIN_AREA_AT_32 * rgb.shape[0] * rgb.shape[1] / DEFAULT_SIZE**2))


def find_blobs(image: ImageLike, coverage: float = COVERAGE) -> dict[str, list[Blob]]:
    """Every colour's blobs in one image, largest first."""
    rgb = as_rgb(image)
    min_area = min_area_for(rgb)
    return {c: blobs_from_coverage(cov, c, min_area, coverage) for c, cov in color_coverage(rgb).items()}
