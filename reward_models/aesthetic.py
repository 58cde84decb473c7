"""LAION aesthetic predictor v2 (Schuhmann 2022): an MLP on L2-normalised CLIP ViT-L/14 image embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmpref.errors import UserError
from mmpref.registry import REWARD_MODELS

from .base import Scorer, ScorerParams
from .clip_hf import pooled
from .heads import LinearMLPHead
from .images import to_pil
from .preprocess import (
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    clip_pil_transform,
    normalize,
    resize_shortest_center_crop,
)
from .weights import from_pretrained, load_state_dict, quiet_transformers, resolve_file, url_file

AESTHETIC_FILE = "sac+logos+ava1-l14-linearMSE.pth"
AESTHETIC_URL = ("https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/"
                 "sac%2Blogos%2Bava1-l14-linearMSE.pth")


@dataclass
class AestheticParams(ScorerParams):
    weights: str = ""  # '' = the official sac+logos+ava1-l14-linearMSE.pth (GitHub, cached once); or a local .pth
    clip_model: str = "openai/clip-vit-large-patch14"  # transformers CLIP ViT-L/14 directory or Hub id


class AestheticScorer(Scorer):
    """Aesthetic score = MLP(CLIP ViT-L/14 image embedding / ||embedding||); the prompt is ignored.

    Scale: the AVA-style 1-10 rating; most generated images score 4.5-6.5 and LAION-Aesthetics
    uses > 6.5 as "very aesthetic". Preprocessing: OpenAI CLIP's (shorter side to 224 bicubic on the
    PIL image, centre crop, CLIP mean/std), as in the reference `simple_inference.py`.
    """

    name = "aesthetic"
    needs_prompt = False
    scale = "AVA 1-10 rating; ~4.5-6.5 for generated images"

    def __init__(self, vision: nn.Module, mlp: LinearMLPHead, image_size: int = 224, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vision = self._freeze(vision)
        self.mlp = self._freeze(mlp)
        self.image_size = image_size

    def _score(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.vision(pixel_values=pixel_values)
        embeds = out.image_embeds if hasattr(out, "image_embeds") else pooled(out)
        return self.mlp(F.normalize(embeds, dim=-1).to(self.dtype)).float()

    def _score_batch(self, samples: list[Any], prompts: list[str]) -> torch.Tensor:
        tensors = torch.stack([clip_pil_transform(to_pil(s), self.image_size) for s in samples]).to(self.device)
        return self._score(normalize(tensors, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD).to(self.dtype))

    def _score_pixels(self, pixels: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        x = resize_shortest_center_crop(pixels.to(self.device), self.image_size, self.image_size)
        return self._score(normalize(x, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD).to(self.dtype))


def load_mlp(path: str, *, scorer: str) -> LinearMLPHead:
    """The official `.pth` state dict (layers.0.weight ... layers.7.bias), read with weights_only."""
    sd = load_state_dict(path, scorer=scorer)
    if "layers.0.weight" not in sd:
        raise UserError(f"{scorer}: '{path}' is not an aesthetic-predictor state dict (no 'layers.0.weight').")
    mlp = LinearMLPHead(int(sd["layers.0.weight"].shape[1]))
    try:
        mlp.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        raise UserError(f"{scorer}: '{path}' does not match the v2 MLP layout: {str(err).splitlines()[0]}") from err
    return mlp


@REWARD_MODELS.register("aesthetic", summary="LAION aesthetic predictor v2: MLP on normalised CLIP-L/14 embeddings",
                        params=AestheticParams)
def build(params: AestheticParams, device: str | torch.device = "cpu",
          dtype: torch.dtype = torch.float32) -> AestheticScorer:
    from transformers import AutoConfig, CLIPVisionModelWithProjection

    path = (resolve_file(params.weights, AESTHETIC_FILE, scorer="aesthetic") if params.weights
            else url_file(AESTHETIC_URL, AESTHETIC_FILE, scorer="aesthetic"))
    mlp = load_mlp(path, scorer="aesthetic")
    files = "config.json and model.safetensors of a CLIP ViT-L/14"
    config = from_pretrained(AutoConfig.from_pretrained, params.clip_model, scorer="aesthetic", files=files,
                             key="clip_model")
    if getattr(config, "model_type", "") == "clip":  # a full CLIP checkpoint: keep only the image tower
        vision_config = config.vision_config
        vision_config.projection_dim = config.projection_dim
        config = vision_config
    with quiet_transformers():  # the unused text-tower weights would print a long "unexpected keys" report
        vision = from_pretrained(CLIPVisionModelWithProjection.from_pretrained, params.clip_model, scorer="aesthetic",
                                 files=files, key="clip_model", config=config)
    return AestheticScorer(vision, mlp, int(vision.config.image_size), device=device, dtype=dtype,
                           batch_size=params.batch_size)
