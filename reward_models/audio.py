"""Waveform helpers for audio scorers: mono conversion and resampling without torchaudio.

torchaudio's current release pins an older torch, so resampling is a band-limited (Hann-windowed
sinc) polyphase filter written here, the same construction torchaudio's `resample` uses.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mmpref.errors import UserError


def to_mono(waveform: Any) -> np.ndarray:
    """float32 mono samples from an array [T], [T, C] or [C, T] (channels averaged)."""
    array = np.asarray(waveform.detach().cpu() if isinstance(waveform, torch.Tensor) else waveform)
    if array.ndim == 2:
        array = array.mean(axis=0 if array.shape[0] < array.shape[1] else 1)
    if array.ndim != 1:
        raise UserError(f"cannot read a waveform from an array of shape {array.shape}; expected [T] or [T, C].")
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    return array.astype(np.float32, copy=False)


@lru_cache(maxsize=16)
def _kernel(orig: int, new: int, width: int, rolloff: float) -> tuple[torch.Tensor, int]:
    base = min(orig, new) * rolloff
    pad = int(math.ceil(width * orig / base))
    idx = torch.arange(-pad, pad + orig, dtype=torch.float64)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx
    t = (t * base).clamp(-width, width)
    window = torch.cos(t * math.pi / width / 2) ** 2
    t = t * math.pi
    scale = base / orig
    kernel = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t) * window * scale
    return kernel.float(), pad


def resample(waveform: np.ndarray, orig_sr: int, new_sr: int, *, width: int = 6,
             rolloff: float = 0.99) -> np.ndarray:
    """Band-limited resampling of a mono waveform from `orig_sr` to `new_sr`."""
    if orig_sr == new_sr:
        return waveform
    if orig_sr <= 0 or new_sr <= 0:
        raise UserError(f"sample rates must be positive, got {orig_sr} -> {new_sr}.")
    g = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // g, int(new_sr) // g
    kernel, pad = _kernel(orig, new, width, rolloff)
    x = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))[None, None]
    length = x.shape[-1]
    x = F.pad(x, (pad, pad + orig))
    y = F.conv1d(x, kernel, stride=orig)  # [1, new, frames]
    y = y.transpose(1, 2).reshape(-1)
    target = int(math.ceil(new * length / orig))
    return y[:target].numpy()
