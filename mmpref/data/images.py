"""Image decoding with a reason when it fails, and the paired crop/flip that keeps pairs comparable.

Both images of a pair get the same augmentation draw (crop position as a fraction of the slack, and
the flip), so a preference is never confounded with one image being cropped or mirrored differently.
SDXL conditioning records per image (original size, crop top-left, target size) as `time_ids`.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image


class MediaError(ValueError):
    """A media value that cannot be decoded; the message says why."""


def _source(value: Any) -> Any:
    """The bytes or path inside the forms datasets and users give: bytes, {'bytes','path'}, path, PIL."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        if value.get("path"):
            return value["path"]
        raise MediaError("image entry has neither bytes nor a path")
    return value


def open_image(value: Any) -> Image.Image:
    """Decode fully to RGB; raise MediaError (not PIL's zoo of exceptions) when it cannot be used."""
    if value is None:
        raise MediaError("image is missing (null)")
    if isinstance(value, Image.Image):
        return value.convert("RGB")
    src = _source(value)
    try:
        if isinstance(src, (bytes, bytearray, memoryview)):
            if len(src) == 0:
                raise MediaError("image bytes are empty")
            image = Image.open(io.BytesIO(bytes(src)))
        elif isinstance(src, (str, os.PathLike)):
            if not os.path.isfile(src):
                raise MediaError(f"image file not found: {src}")
            image = Image.open(src)
        else:
            raise MediaError(f"expected image bytes or a path, got {type(src).__name__}")
        image.load()
        return image.convert("RGB")
    except MediaError:
        raise
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        from PIL import UnidentifiedImageError

        if isinstance(err, UnidentifiedImageError):
            raise MediaError("cannot decode image (not a recognised image format)") from None
        raise MediaError(f"cannot decode image ({type(err).__name__}: {err})") from None


def image_problem(value: Any) -> str | None:
    """Why `value` is not a usable image, or None (the check the data scan runs on every row)."""
    try:
        open_image(value)
    except MediaError as err:
        return str(err)
    return None


def _to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def paired_crop_flip(
    images: Sequence[Image.Image],
    resolution: int,
    rng: random.Random,
    random_crop: bool = False,
    random_flip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize the shorter side to `resolution`, crop a square, maybe flip: one draw for all `images`.

    Returns pixel values in [-1, 1] of shape [G, 3, R, R] and SDXL time ids [G, 6]
    (original h, w, crop top, crop left, target h, w), the crop measured on the resized image and in
    the frame of the flipped image when flipped.
    """
    u = rng.random() if random_crop else 0.5
    v = rng.random() if random_crop else 0.5
    flip = random_flip and rng.random() < 0.5
    pixels, time_ids = [], []
    for image in images:
        w, h = image.size
        scale = resolution / min(w, h)
        nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
        if (nw, nh) != (w, h):
            image = image.resize((nw, nh), Image.BILINEAR)
        left, top = int(round(u * (nw - resolution))), int(round(v * (nh - resolution)))
        image = image.crop((left, top, left + resolution, top + resolution))
        if flip:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
            left = nw - resolution - left
        pixels.append(_to_tensor(image))
        time_ids.append(torch.tensor([h, w, top, left, resolution, resolution], dtype=torch.float32))
    return torch.stack(pixels), torch.stack(time_ids)
