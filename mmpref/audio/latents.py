"""The sampler's own latents, stored beside each generated clip, and the VAE latent space they belong to.

A text-to-audio model's clip reaches a trainer through decode, vocoder, WAV, mel front end and VAE encode,
and that round trip is lossy: in the audio world the re-encoded latents of the demo's pairs sit 0.64
(relative L2) from the latents the UNet produced. `mmpref generate` therefore keeps each clip's latents
(npy bytes, float16) with an id of the VAE that decodes them, and `mmpref train` on a model with the same
VAE trains on them instead of re-encoding the audio (`data.stored_latents`).
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import numpy as np
import torch


@torch.no_grad()
def latent_space_id(vae: Any) -> str:
    """A short id of a VAE's latent space: its config (the learned scaling factor included) and the weights of
    its encoder's first and decoder's last convolution, so two differently trained VAEs never share an id."""
    config = {k: v for k, v in dict(vae.config).items() if not k.startswith("_")}  # not the path it came from
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name in ("encoder.conv_in.weight", "decoder.conv_out.weight"):
        weight = vae.get_parameter(name).detach().to("cpu", torch.float32).contiguous()
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()[:16]


def latents_to_bytes(latents: Any) -> bytes:
    """One clip's latents as npy bytes (float16, shape kept)."""
    if isinstance(latents, torch.Tensor):
        latents = latents.detach().to("cpu", torch.float32).numpy()
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(latents, dtype=np.float16), allow_pickle=False)
    return buffer.getvalue()


def latents_from_bytes(data: bytes) -> np.ndarray:
    """The array `latents_to_bytes` wrote, as float32; ValueError when the bytes are not a finite npy array."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"expected npy bytes, got {type(data).__name__}")
    array = np.load(io.BytesIO(bytes(data)), allow_pickle=False).astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("non-finite values")
    return array
