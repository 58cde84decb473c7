"""Image preprocessing written once in torch, so inference and differentiable mode share the maths.

The official pipelines resize with PIL (OpenAI CLIP, BLIP/ImageReward, open_clip) or torchvision on
tensors (HPS); torch's antialiased bicubic uses PIL's kernel (a = -0.5), which is why the
differentiable path agrees with the PIL path to within uint8 rounding after a resize.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from .images import pil_to_tensor

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def normalize(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x - mean) / std per channel on [B, 3, H, W]."""
    m = torch.as_tensor(mean, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
    return (pixels - m) / s


def shortest_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Output (h, w) when the shorter side becomes `size`: torchvision's and transformers' rule."""
    short, long = (height, width) if height <= width else (width, height)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if height <= width else (new_long, new_short)


def bicubic(pixels: torch.Tensor, size: tuple[int, int], *, clamp: bool) -> torch.Tensor:
    """Antialiased bicubic resize (PIL's kernel); `clamp` mimics PIL's uint8 output range."""
    if tuple(pixels.shape[-2:]) == tuple(size):
        return pixels
    out = F.interpolate(pixels, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp(0.0, 1.0) if clamp else out


def center_crop(pixels: torch.Tensor, crop: tuple[int, int], *, rounding: str = "round") -> torch.Tensor:
    """Centre crop; `rounding` is 'round' for torchvision's CenterCrop, 'floor' for transformers'."""
    height, width = pixels.shape[-2:]
    ch, cw = crop
    if rounding == "round":
        top, left = int(round((height - ch) / 2.0)), int(round((width - cw) / 2.0))
    else:
        top, left = (height - ch) // 2, (width - cw) // 2
    return pixels[..., top:top + ch, left:left + cw]


def resize_shortest_center_crop(pixels: torch.Tensor, size: int, crop: int | tuple[int, int], *,
                                rounding: str = "round") -> torch.Tensor:
    """Shorter side to `size` then centre crop: the CLIP/BLIP evaluation transform, differentiable."""
    crop_hw = (crop, crop) if isinstance(crop, int) else tuple(crop)
    resized = bicubic(pixels, shortest_side_size(pixels.shape[-2], pixels.shape[-1], size), clamp=True)
    return center_crop(resized, crop_hw, rounding=rounding)


def resize_longest_pad(pixels: torch.Tensor, size: int, fill: float = 0.0) -> torch.Tensor:
    """Longer side to `size`, then pad the shorter one symmetrically with `fill`: HPS's ResizeMaxSize.

    HPS applies it to tensors after ToTensor (torchvision bicubic with antialias, no clamping). Unlike
    the original, an image whose longer side already equals `size` is still padded to a square, so
    batches stack.
    """
    height, width = pixels.shape[-2:]
    scale = size / float(max(height, width))
    new_h, new_w = round(height * scale), round(width * scale)
    out = bicubic(pixels, (new_h, new_w), clamp=False)
    pad_h, pad_w = size - new_h, size - new_w
    if pad_h or pad_w:
        out = F.pad(out, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=fill)
    return out


def clip_pil_transform(image: Image.Image, size: int, crop: int | None = None) -> torch.Tensor:
    """OpenAI CLIP / BLIP / open_clip evaluation transform on a PIL image -> float [3, crop, crop].

    Resize(size, BICUBIC) on the PIL image, CenterCrop(crop), ToTensor; normalisation is left to
    the caller. PIL does the resize, as in the reference code.
    """
    crop = crop or size
    image = image.convert("RGB")
    width, height = image.size
    new_h, new_w = shortest_side_size(height, width, size)
    if (new_h, new_w) != (height, width):
        image = image.resize((new_w, new_h), Image.BICUBIC)
    tensor = pil_to_tensor(image)
    return center_crop(tensor, (crop, crop), rounding="round")
