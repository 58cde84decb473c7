"""The adapter interface: everything the preference trainer needs to know about one model family.

The trainer (`mmpref.training`) is modality-free. It asks an adapter to

1. `load` the model's components (frozen encoders in the weight dtype, the trainable module in fp32),
2. name the `trainable` module (the one LoRA wraps, full fine-tuning updates and EMA tracks),
3. turn raw media of a data row into tensors (`media_transform()`: a small picklable callable, run
   in data-loader workers, with the same random augmentation for every sample of a pair) and check
   media for corruption (`check_media`),
4. `encode` a collated batch into model-space samples plus conditioning (or take them from the cache
   that `encode_for_cache` filled),
5. draw the perturbation shared by the samples of a pair (`draw`) and return per-sample
   log-likelihood estimates for any module (policy or reference) under that perturbation
   (`log_likelihood`): same draw → the noise cancels in policy − reference differences,
6. `sample` validation outputs and `save_lora` / `save_full` outputs that the stock library loads.

Batches have a group axis G: 2 for pairs (chosen first, then rejected), 1 for single samples.
`Encoded` flattens it group-major (all chosen samples, then all rejected), the layout the Diffusion-DPO
reference code uses, so `logp.view(G, B)` gives chosen and rejected rows.

A new modality is one file: subclass `PreferenceAdapter` (or `DiffusionAdapter` for any
denoising model: it already implements `draw` and `log_likelihood`) and register it with
`@ADAPTERS.register(name, summary=..., params=YourParams)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class Encoded:
    """Model-space samples of a batch, flattened group-major, with their conditioning.

    `samples` is [G·B, ...]; every tensor in `cond` has the same leading G·B; `group_size` is G.
    """

    samples: torch.Tensor
    cond: dict[str, torch.Tensor] = field(default_factory=dict)
    group_size: int = 2

    @property
    def groups(self) -> int:
        """Number of pairs (or single samples when G = 1) in the batch."""
        return self.samples.shape[0] // self.group_size


@dataclass
class Draw:
    """The randomness of one likelihood estimate, shared by policy and reference and within a pair."""

    timesteps: torch.Tensor  # [G·B]
    noise: torch.Tensor  # [G·B, ...] like Encoded.samples


class PreferenceAdapter(ABC):
    """What the preference trainer asks of a model family. See the module docstring for the flow."""

    media: str = "image"  # what `media_transform` decodes
    default_lora_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")

    @abstractmethod
    def load(self, device: torch.device, weight_dtype: torch.dtype) -> None:
        """Load every component; frozen ones go to `device` in `weight_dtype`, the trainable one stays fp32."""

    @property
    @abstractmethod
    def trainable(self) -> torch.nn.Module:
        """The module fine-tuning updates (a denoiser for diffusion adapters)."""

    @trainable.setter
    @abstractmethod
    def trainable(self, module: torch.nn.Module) -> None:
        """Replace the trainable module (after LoRA wrapping), so sampling and saving see the trained one."""

    def enable_gradient_checkpointing(self) -> None:
        """Trade compute for activation memory in the trainable module."""
        self.trainable.enable_gradient_checkpointing()  # type: ignore[operator]

    def enable_memory_efficient_attention(self, backend: str) -> str:
        """Switch attention to `backend` ('sdpa' default, 'xformers', 'auto'); return what is in use."""
        return "sdpa"

    @staticmethod
    @abstractmethod
    def check_media(value: Any) -> str | None:
        """Why a raw media value (bytes, path, dict) cannot be used, or None. Must be picklable (workers)."""

    @abstractmethod
    def media_transform(self) -> Callable[[Sequence[Any], Any], dict[str, torch.Tensor]]:
        """`f(values, rng)`: decode and augment the G media of one row with ONE augmentation draw from `rng`.

        Returns tensors with a leading axis G (e.g. pixel values [G, 3, H, W] and SDXL time ids [G, 6]).
        It runs in data-loader workers, so it must be picklable and hold no model (a module-level
        function with its settings bound by `functools.partial`).
        """

    @abstractmethod
    def cache_identity(self) -> dict[str, Any]:
        """What a cache of encoded samples depends on (model id, resolution, augmentation, ...)."""

    @abstractmethod
    def encode_for_cache(self, batch: dict[str, Any], generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Encoded samples and conditioning per row (leading axis B) to store on disk."""

    @abstractmethod
    def encode(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Encoded:
        """A collated batch (raw media or cached tensors) → model-space samples and conditioning."""

    @abstractmethod
    def draw(self, encoded: Encoded, generator: torch.Generator) -> Draw:
        """Timesteps and noise, identical for the G samples of each group."""

    @abstractmethod
    def log_likelihood(self, module: Callable[..., Any], encoded: Encoded, draw: Draw) -> torch.Tensor:
        """Per-sample log-likelihood estimates [G·B] of `module` (policy or reference) under `draw`."""

    @abstractmethod
    def sample(self, prompts: Sequence[str], seeds: Sequence[int], **options: Any) -> list[Any]:
        """One output per (prompt, seed), prompt-major, with the current trainable weights."""

    def save_validation(self, samples: Sequence[Any], prompts: Sequence[str], seeds: Sequence[int], folder: Path,
                        step: int) -> tuple[Path, Any]:
        """Write one step's validation samples; return the file and an image for trackers (None: no image).

        The default lays images out as a grid, one row per prompt and one column per seed; an audio
        adapter would write WAVs and return a spectrogram picture.
        """
        from mmpref.training.validation import make_grid

        grid = make_grid(samples, rows=len(prompts), cols=len(seeds))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step-{step:06d}.png"
        grid.save(path)
        return path, grid

    @abstractmethod
    def save_lora(self, output_dir: Path, lora_state_dict: dict[str, torch.Tensor], lora_config: dict[str, Any]) -> Path:
        """Write LoRA weights where the stock library's loader finds them; return the file."""

    @abstractmethod
    def save_full(self, output_dir: Path, module: torch.nn.Module) -> Path:
        """Write a complete model directory with `module` as the trained component; return it."""
