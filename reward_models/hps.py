"""HPS v2 and v2.1 (Wu et al. 2023): open_clip ViT-H-14 fine-tuned on human preference pairs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmpref.registry import REWARD_MODELS

from .base import Scorer, ScorerParams
from .clip_openclip import OpenClip, load_open_clip
from .weights import resolve_file

HPS_REPO = "xswu/HPSv2"


@dataclass
class HPSParams(ScorerParams):
    weights: str = ""  # '' = the official file from the Hub; or a local .pt / .safetensors / 'org/repo:file'
    arch: str = "ViT-H-14"
    model_config: str = ""  # an open_clip model config JSON instead of `arch` (custom or tiny models)


class HPSScorer(Scorer):
    """HPS = cosine(image, prompt) of the normalised open_clip embeddings (no logit scale).

    Scale: raw cosine, about 0.20-0.35; papers and leaderboards print it x100 (e.g. HPSv2.1 31.19 for
    DI*-SDXL). Preprocessing: ToTensor, resize the longer side to 224 (bicubic, antialiased), pad
    to a square with zeros, CLIP mean/std: the official `ResizeMaxSize` evaluation transform.
    """

    name = "hpsv2"
    scale = "cosine; ~0.20-0.35 (papers print x100)"

    def __init__(self, clip: OpenClip, *, name: str = "hpsv2", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.clip = clip
        clip.model = self._freeze(clip.model)

    def _score(self, pixel_values: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return (self.clip.image_embeds(pixel_values) * self.clip.text_embeds(prompts)).sum(-1)

    def _score_batch(self, samples: list[Any], prompts: list[str]) -> torch.Tensor:
        return self._score(self.clip.pixel_values_from_images(samples), prompts)

    def _score_pixels(self, pixels: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self._score(self.clip.pixel_values_from_pixels(pixels), prompts)


def _builder(name: str, filename: str):
    def build(params: HPSParams, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> HPSScorer:
        checkpoint = resolve_file(params.weights, filename, scorer=name, default_repo=HPS_REPO)
        model, tokenizer, info = load_open_clip(params.arch, params.model_config, checkpoint, scorer=name)
        clip = OpenClip(model, tokenizer, info, resize_mode="longest")
        return HPSScorer(clip, name=name, device=device, dtype=dtype, batch_size=params.batch_size)

    build.__doc__ = f"Build {name} from {filename} (local file or Hub repo {HPS_REPO})."
    return build


REWARD_MODELS.register("hpsv2", summary="HPS v2: cosine of open_clip ViT-H-14 embeddings (~0.27; papers x100)",
                       params=HPSParams)(_builder("hpsv2", "HPS_v2_compressed.pt"))
REWARD_MODELS.register("hpsv2.1", summary="HPS v2.1: cosine of open_clip ViT-H-14 embeddings (~0.30; papers x100)",
                       params=HPSParams)(_builder("hpsv2.1", "HPS_v2.1_compressed.pt"))
