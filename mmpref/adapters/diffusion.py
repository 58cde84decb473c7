"""Shared log-likelihood estimate of every denoising adapter (images, audio, video latents).

logp(x₀ | c) ≈ −scale · mean((f(x_t, t, c) − target)²), the negative per-sample denoising error (mean
over every latent element) at one random timestep t and noise ε, with target from `DiffusionProcess`.

**The ½-factor convention.** `scale` (`logp_scale` in configs) is 0.5 by default, so with the library's
DPO objective −log σ(β·[(logp_w − ref_w) − (logp_l − ref_l)]) a config `objective: {name: dpo, beta: 5000}`
is exactly the published Diffusion-DPO loss

    −log σ(−½·β·[(err_w − err_l) − (ref_err_w − ref_err_l)])

with β = 5000 for SDXL and 2000 for SD1.5 (Wallace et al.; Salesforce DiffusionDPO; diffusers' SDXL
script; Tango 2 uses 2000). Diffusers' SD1.5 research script drops the ½ and uses β = 2500, which is
the same coefficient: β = 5000 here. With `logp_scale: 1.0`, β means what it means in that script.

Timestep and noise are drawn once per group (pair) and shared by its samples and by the policy and
reference passes, so the noise cancels in the DPO differences.

The helpers below (weight-file signature, move-and-cast, LoRA metadata, `sampling_mode`) are what the
stock-pipeline adapters (`text_to_image`, `text_to_audio`) would otherwise each spell out.
"""

from __future__ import annotations

import contextlib
import json
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from mmpref.adapters.base import Draw, Encoded, PreferenceAdapter
from mmpref.adapters.prediction import DiffusionProcess, per_sample_mse
from mmpref.errors import UserError


def weight_files_signature(root: str, subfolders: Sequence[str]) -> list[Any]:
    """Sizes and mtimes of a local model's weight files, so a cache notices replaced weights."""
    out: list[Any] = []
    for sub in subfolders:
        folder = Path(root) / sub
        if folder.is_dir():
            for f in sorted(folder.glob("*.safetensors")):
                stat = f.stat()
                out.append([f"{sub}/{f.name}", stat.st_size, int(stat.st_mtime)])
    return out


def move_and_cast(module: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Move, and cast only when the dtype changes (diffusers warns on every dtype-carrying `.to`)."""
    module = module.to(device)
    return module if module.dtype == dtype else module.to(dtype=dtype)


def lora_metadata(lora_config: dict[str, Any]) -> dict[str, Any]:
    """The LoRA config as JSON-safe file metadata (sets sorted, other non-JSON values as strings)."""
    return json.loads(json.dumps(lora_config, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))


class DiffusionAdapter(PreferenceAdapter):
    """A `PreferenceAdapter` whose trainable module is a denoiser; subclasses implement `denoise`."""

    process: DiffusionProcess
    logp_scale: float = 0.5
    device: torch.device
    weight_dtype: torch.dtype

    @abstractmethod
    def denoise(self, module: Callable[..., Any], noisy: torch.Tensor, timesteps: torch.Tensor,
                cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """Run `module` (policy or reference denoiser) on x_t with the batch's conditioning."""

    def enable_memory_efficient_attention(self, backend: str) -> str:
        """'sdpa' is diffusers' default; 'xformers' needs the package; 'auto' takes xformers on CUDA when installed."""
        import importlib.util

        has_xformers = importlib.util.find_spec("xformers") is not None
        if backend == "xformers" and not has_xformers:
            raise UserError("model.attention: xformers is not installed; `pip install mmpref[xformers]` or use sdpa.")
        if backend == "xformers" or (backend == "auto" and has_xformers and self.device.type == "cuda"):
            self.trainable.enable_xformers_memory_efficient_attention()
            return "xformers"
        return "sdpa"

    @contextlib.contextmanager
    def sampling_mode(self) -> Iterator[None]:
        """Sample with the denoiser in eval mode, under autocast to the weight dtype unless that is float32;
        the denoiser's training mode comes back afterwards, even when sampling fails."""
        module = self.trainable
        was_training = module.training
        module.eval()
        autocast = (torch.autocast(self.device.type, dtype=self.weight_dtype)
                    if self.weight_dtype != torch.float32 else contextlib.nullcontext())
        try:
            with autocast:
                yield
        finally:
            module.train(was_training)

    def draw(self, encoded: Encoded, generator: torch.Generator) -> Draw:
        """One timestep and one noise tensor per group, repeated for its G samples (group-major layout)."""
        x0 = encoded.samples
        groups, g = encoded.groups, encoded.group_size
        t = self.process.sample_timesteps(groups, generator, x0.device)
        noise = torch.randn((groups, *x0.shape[1:]), generator=generator, device=x0.device, dtype=torch.float32)
        return Draw(timesteps=t.repeat(g), noise=noise.repeat(g, *([1] * (x0.ndim - 1))).to(x0.dtype))

    def log_likelihood(self, module: Callable[..., Any], encoded: Encoded, draw: Draw) -> torch.Tensor:
        """−logp_scale · per-sample denoising error [G·B], float32."""
        x0 = encoded.samples
        noisy = self.process.add_noise(x0, draw.noise, draw.timesteps)
        target = self.process.target(x0, draw.noise, draw.timesteps)
        prediction = self.denoise(module, noisy, draw.timesteps, encoded.cond)
        return -self.logp_scale * per_sample_mse(prediction, target)
