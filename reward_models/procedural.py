"""Any Python callable as a scorer: the synthetic worlds' ground-truth rewards are computed from pixels.

A procedural scorer is `fn(pixels, prompts) -> Tensor[B]` with pixels a float tensor [B, 3, H, W]
in [0, 1] (audio: `fn(waveforms, prompts)` with the raw list). It goes into the same registry as the
learned reward models, so configs, pipelines and `mmpref score` use it by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mmpref.errors import UserError
from mmpref.registry import REWARD_MODELS

from .base import Scorer, ScorerParams
from .images import pil_to_tensor, to_pil

ScoreFn = Callable[[Any, Sequence[str]], torch.Tensor]


@dataclass
class ProceduralParams(ScorerParams):
    batch_size: int = 64


class ProceduralScorer(Scorer):
    """Wraps `fn`; images of different sizes in one chunk are passed to `fn` size by size."""

    def __init__(self, fn: ScoreFn, *, name: str, modality: str = "image", higher_is_better: bool = True,
                 needs_prompt: bool = False, differentiable: bool = True, scale: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fn = fn
        self.name, self.modality, self.higher_is_better = name, modality, higher_is_better
        self.needs_prompt, self.differentiable, self.scale = needs_prompt, differentiable, scale

    def _call(self, inputs: Any, prompts: list[str]) -> torch.Tensor:
        out = torch.as_tensor(self.fn(inputs, prompts))
        if out.ndim != 1:
            out = out.reshape(-1)
        return out

    def _score_batch(self, samples: list[Any], prompts: list[str]) -> torch.Tensor:
        if self.modality != "image":
            return self._call(samples, prompts).float()
        tensors = [pil_to_tensor(to_pil(s)) for s in samples]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, t in enumerate(tensors):
            groups.setdefault(tuple(t.shape), []).append(i)
        result = torch.empty(len(samples), dtype=torch.float32)
        for idx in groups.values():
            pixels = torch.stack([tensors[i] for i in idx]).to(self.device)
            result[idx] = self._call(pixels, [prompts[i] for i in idx]).float().cpu()
        return result

    def _score_pixels(self, pixels: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self._call(pixels, prompts)


def register_procedural(name: str, fn: ScoreFn, *, summary: str, modality: str = "image",
                        higher_is_better: bool = True, needs_prompt: bool = False, differentiable: bool = True,
                        scale: str = "") -> ScoreFn:
    """Register `fn` as reward model `name`; `build_scorer(name)` then returns a ProceduralScorer."""
    if modality not in ("image", "audio"):
        raise UserError(f"procedural scorer '{name}': modality must be 'image' or 'audio', got '{modality}'.")

    def build(params: ProceduralParams, device: str | torch.device = "cpu",
              dtype: torch.dtype = torch.float32) -> ProceduralScorer:
        return ProceduralScorer(fn, name=name, modality=modality, higher_is_better=higher_is_better,
                                needs_prompt=needs_prompt, differentiable=differentiable, scale=scale,
                                device=device, dtype=dtype, batch_size=params.batch_size)

    build.procedural_fn = fn  # type: ignore[attr-defined]
    try:
        REWARD_MODELS.register(name, summary=summary, params=ProceduralParams)(build)
    except ValueError as err:
        raise UserError(f"a reward model called '{name}' is already registered; pick another name.") from err
    return fn


def procedural_scorer(name: str, *, summary: str, **options: Any) -> Callable[[ScoreFn], ScoreFn]:
    """Decorator form of `register_procedural`: `@procedural_scorer("redness", summary="...")`."""

    def decorator(fn: ScoreFn) -> ScoreFn:
        return register_procedural(name, fn, summary=summary, **options)

    return decorator


@procedural_scorer("brightness", summary="mean luminance (Rec. 601) in [0, 1]; a procedural example",
                   scale="mean luminance in [0, 1]")
def brightness(pixels: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
    """Mean Rec. 601 luminance of each image: a prompt-free, differentiable smoke-test reward."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    return (pixels * weights).sum(1).mean(dim=(1, 2))
