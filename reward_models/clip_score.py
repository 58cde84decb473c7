"""CLIP score (Hessel et al. 2021) as torchmetrics defines it, on any transformers or open_clip CLIP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from mmpref.errors import UserError
from mmpref.registry import REWARD_MODELS

from .base import Scorer, ScorerParams
from .clip_hf import HFClip
from .clip_openclip import OpenClip, load_open_clip
from .weights import resolve_file


@dataclass
class ClipScoreParams(ScorerParams):
    weights: str = "openai/clip-vit-large-patch14"  # transformers dir / Hub id, or an open_clip checkpoint file
    backend: Literal["transformers", "open_clip"] = "transformers"
    processor: str = ""  # transformers backend: '' = same place as the weights
    arch: str = "ViT-L-14"  # open_clip backend: built-in architecture name
    model_config: str = ""  # open_clip backend: model config JSON instead of `arch`


class ClipScoreScorer(Scorer):
    """CLIP score = 100 x max(cosine(image, prompt), 0), the torchmetrics definition.

    Scale: 0-100; real captioned photos score ~30 with CLIP ViT-L/14 and text-to-image papers
    report 25-35. Preprocessing: the model's own evaluation transform (CLIP processor or open_clip's
    shorter-side resize + centre crop).
    """

    name = "clip_score"
    scale = "100 * max(cos, 0); ~25-35"

    def __init__(self, clip: HFClip | OpenClip, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clip = clip
        clip.model = self._freeze(clip.model)

    def _score(self, pixel_values: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        cosine = (self.clip.image_embeds(pixel_values) * self.clip.text_embeds(prompts)).sum(-1)
        return 100.0 * cosine.clamp(min=0.0)

    def _score_batch(self, samples: list[Any], prompts: list[str]) -> torch.Tensor:
        return self._score(self.clip.pixel_values_from_images(samples), prompts)

    def _score_pixels(self, pixels: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self._score(self.clip.pixel_values_from_pixels(pixels), prompts)


@REWARD_MODELS.register("clip_score", summary="CLIP score: 100*max(cos, 0) on any transformers/open_clip CLIP",
                        params=ClipScoreParams)
def build(params: ClipScoreParams, device: str | torch.device = "cpu",
          dtype: torch.dtype = torch.float32) -> ClipScoreScorer:
    if params.backend == "transformers":
        clip: HFClip | OpenClip = HFClip.load(params.weights, params.processor or params.weights,
                                              scorer="clip_score")
    elif params.backend == "open_clip":
        checkpoint = resolve_file(params.weights, "open_clip_pytorch_model.bin", scorer="clip_score")
        model, tokenizer, info = load_open_clip(params.arch, params.model_config, checkpoint, scorer="clip_score")
        clip = OpenClip(model, tokenizer, info, resize_mode="shortest")
    else:
        raise UserError(f"clip_score: backend must be 'transformers' or 'open_clip', got '{params.backend}'.")
    return ClipScoreScorer(clip, device=device, dtype=dtype, batch_size=params.batch_size)
