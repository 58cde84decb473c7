"""Turn the image types users hold (PIL, numpy, torch) into what the scorers' preprocessing expects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from mmpref.errors import UserError


def to_pil(image: Any) -> Image.Image:
    """An RGB PIL image from a PIL image, an HWC/HW array (uint8, or float in [0, 1]) or a CHW tensor."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.ndim == 3 and tensor.shape[0] in (1, 3, 4):
            tensor = tensor.permute(1, 2, 0)
        image = tensor.numpy()
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
            raise UserError(f"cannot read an image from an array of shape {array.shape}; expected HxWx3 or HxW.")
        if array.dtype != np.uint8:
            if np.issubdtype(array.dtype, np.floating):
                array = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
            else:
                array = np.clip(array, 0, 255).astype(np.uint8)
        return Image.fromarray(array).convert("RGB")
    raise UserError(f"cannot score an object of type {type(image).__name__} as an image; "
                    "pass PIL images, HxWx3 uint8 arrays or CHW tensors.")


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """float32 [3, H, W] in [0, 1], exactly as torchvision's ToTensor gives it."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0)


def stack_if_same_size(tensors: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """[B, 3, H, W] when all images share a size, else None (callers then go image by image)."""
    if tensors and all(t.shape == tensors[0].shape for t in tensors):
        return torch.stack(list(tensors))
    return None
