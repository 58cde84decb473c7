"""The one interface every reward model and detector offers to pipelines, training methods and the CLI.

Preference pipelines rank samples with `score` (inference mode: PIL images or arrays in, the model's
official preprocessing, no autograd, internal batching); reward-guided training (RG-LCD, DI*)
backpropagates through `score_pixels` (differentiable mode: float pixels in [0, 1] in, the same
preprocessing written in torch). Both return one float per sample, so callers never special-case a
scorer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mmpref.errors import UserError


@dataclass
class ScorerParams:
    """Parameters every scorer accepts; each scorer's own dataclass extends this one."""

    batch_size: int = 16

    def check(self) -> None:
        """Called by the config validator and build_scorer: reject values no scorer can use."""
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


def expand_prompts(prompts: str | Sequence[str] | None, n: int, *, required: bool, name: str) -> list[str]:
    """One prompt per sample: a single string is broadcast, a sequence must match the sample count."""
    if prompts is None:
        if required:
            raise UserError(f"scorer '{name}' compares samples with their prompts: pass one prompt per sample.")
        return [""] * n
    if isinstance(prompts, str):
        return [prompts] * n
    prompts = [str(p) if p is not None else "" for p in prompts]
    if len(prompts) != n:
        raise UserError(f"scorer '{name}' got {n} samples but {len(prompts)} prompts; pass one prompt per sample.")
    return prompts


class Scorer(ABC):
    """A reward model: scores a batch of (sample, prompt) pairs with one float each.

    Subclasses set the class attributes below, document their scale (typical range and the paper's
    convention) in their docstring, and implement `_score_batch` (and `_score_pixels` when
    differentiable). Model weights are frozen (`requires_grad_(False)`) and kept in eval mode.
    """

    name: str = "scorer"
    modality: str = "image"  # "image" or "audio"
    higher_is_better: bool = True
    differentiable: bool = True
    needs_prompt: bool = True
    scale: str = ""  # one line: typical range and the paper's convention

    def __init__(self, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 batch_size: int = 16) -> None:
        if batch_size < 1:
            raise UserError(f"scorer '{self.name}': batch_size must be at least 1, got {batch_size}.")
        self.device = torch.device(device)
        self.dtype = dtype
        self.batch_size = int(batch_size)

    # -- inference mode ---------------------------------------------------------------------------
    def score(self, samples: Sequence[Any], prompts: str | Sequence[str] | None = None, *,
              batch_size: int | None = None) -> torch.Tensor:
        """Scores of `samples` (PIL images / uint8 arrays, or waveforms for audio) as float32 [B] on CPU.

        Runs without autograd, in chunks of `batch_size` (default: the scorer's own), so a long list
        costs no more memory than one chunk.
        """
        samples = list(samples)
        texts = expand_prompts(prompts, len(samples), required=self.needs_prompt, name=self.name)
        size = int(batch_size or self.batch_size)
        chunks: list[torch.Tensor] = []
        with torch.no_grad():
            for start in range(0, len(samples), size):
                out = self._score_batch(samples[start:start + size], texts[start:start + size])
                chunks.append(out.detach().float().reshape(-1).cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0)

    @abstractmethod
    def _score_batch(self, samples: list[Any], prompts: list[str]) -> torch.Tensor:
        """Scores of one chunk, already converted to a list; called under `torch.no_grad`."""

    # -- differentiable mode ----------------------------------------------------------------------
    def score_pixels(self, pixels: torch.Tensor, prompts: str | Sequence[str] | None = None) -> torch.Tensor:
        """Differentiable scores [B] (float32) of `pixels`, a float tensor [B, 3, H, W] in [0, 1].

        Preprocessing runs in torch, so gradients flow back to `pixels`; the model's own weights stay
        frozen. The caller chooses the batch (this path does not chunk). Agreement with `score` on the
        same images: to 1e-5 when no resize is needed; after a resize, PIL's uint8 rounding (inference)
        against torch's float output moves scores by less than 2 % of their spread across images.
        """
        if not self.differentiable:
            raise UserError(f"scorer '{self.name}' is not differentiable; use score() or pick another scorer "
                            "for reward-guided training.")
        if not isinstance(pixels, torch.Tensor) or pixels.ndim != 4 or pixels.shape[1] != 3:
            shape = tuple(pixels.shape) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
            raise UserError(f"score_pixels expects a float tensor [B, 3, H, W] in [0, 1]; got {shape}.")
        if not pixels.is_floating_point():
            raise UserError("score_pixels expects float pixels in [0, 1]; convert uint8 images with x / 255.")
        texts = expand_prompts(prompts, pixels.shape[0], required=self.needs_prompt, name=self.name)
        return self._score_pixels(pixels, texts).float().reshape(-1)

    def _score_pixels(self, pixels: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement the differentiable path")

    # -- helpers ------------------------------------------------------------------------------------
    def _freeze(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move a model to the scorer's device/dtype, eval mode, no parameter gradients."""
        module = module.to(device=self.device, dtype=self.dtype)
        module.eval()
        module.requires_grad_(False)
        return module

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, modality={self.modality!r}, "
                f"device={str(self.device)!r}, dtype={self.dtype}, batch_size={self.batch_size})")
