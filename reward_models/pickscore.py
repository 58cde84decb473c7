"""PickScore (Kirstain et al. 2023): CLIP-H fine-tuned on Pick-a-Pic preferences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmpref.registry import REWARD_MODELS

from .base import Scorer, ScorerParams
from .clip_hf import HFClip, has_processor_files

LAION_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


@dataclass
class PickScoreParams(ScorerParams):
    weights: str = "yuvalkirstain/PickScore_v1"
    processor: str = ""  # '' = the weights directory if it has processor files, else the LAION CLIP-H one


class PickScoreScorer(Scorer):
    """PickScore = logit_scale.exp() x cosine(image, prompt) of the normalised CLIP embeddings.

    Scale: logit_scale.exp() is 100 in the released model, so scores sit around 18-23 (about 21-22
    for good SDXL images); the paper reports this raw value and a softmax over candidate images
    gives preference probabilities. Preprocessing: the LAION CLIP-ViT-H-14 processor (shorter side
    to 224 bicubic, centre crop 224, CLIP mean/std), as in the official example.
    """

    name = "pickscore"
    scale = "logit_scale.exp() * cos; ~18-23, ~21 on good images"

    def __init__(self, clip: HFClip, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clip = clip
        clip.model = self._freeze(clip.model)

    def _score(self, pixel_values: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        image = self.clip.image_embeds(pixel_values)
        text = self.clip.text_embeds(prompts)
        return self.clip.logit_scale() * (image * text).sum(-1)

    def _score_batch(self, samples: list[Any], prompts: list[str]) -> torch.Tensor:
        return self._score(self.clip.pixel_values_from_images(samples), prompts)

    def _score_pixels(self, pixels: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self._score(self.clip.pixel_values_from_pixels(pixels), prompts)


@REWARD_MODELS.register("pickscore", summary="PickScore_v1: logit_scale.exp()*cos of CLIP-H embeddings (~21)",
                        params=PickScoreParams)
def build(params: PickScoreParams, device: str | torch.device = "cpu",
          dtype: torch.dtype = torch.float32) -> PickScoreScorer:
    processor = params.processor or (params.weights if has_processor_files(params.weights) else LAION_PROCESSOR)
    clip = HFClip.load(params.weights, processor, scorer="pickscore")
    return PickScoreScorer(clip, device=device, dtype=dtype, batch_size=params.batch_size)
