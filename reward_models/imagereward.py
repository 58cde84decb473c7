"""ImageReward (Xu et al. 2023), natively on transformers' BLIP modules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmpref.errors import UserError
from mmpref.registry import REWARD_MODELS

from .base import Scorer, ScorerParams
from .imagereward_model import (
    IMAGEREWARD_MEAN,
    IMAGEREWARD_STD,
    ImageRewardModel,
    model_from_official,
)
from .images import to_pil
from .preprocess import (
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    clip_pil_transform,
    normalize,
    resize_shortest_center_crop,
)
from .weights import from_pretrained, load_state_dict, resolve_file


@dataclass
class ImageRewardParams(ScorerParams):
    weights: str = "THUDM/ImageReward"  # Hub id, a directory holding ImageReward.pt, or the .pt file
    med_config: str = ""  # '' = med_config.json next to the weights if present, else the released values
    tokenizer: str = "bert-base-uncased"  # BERT tokenizer directory or Hub id
    vision_heads: int = 0  # 0 = ViT width / 64 (16 for the released ViT-L)
    max_length: int = 35  # prompt tokens, as in the reference code


class ImageRewardScorer(Scorer):
    """ImageReward = (MLP(BLIP [CLS] state) - 0.16717362830052426) / 1.0333394966054072.

    Scale: standardised over the ImageReward training set, so ~N(0, 1) over typical generations:
    good images score above 0, poor ones below (SDXL averages ~0.5-0.8 on common prompts).
    Preprocessing: shorter side to 224 (bicubic on the PIL image), centre crop, CLIP mean/std;
    prompts padded to 35 BERT tokens, as in the official `ImageReward.score`.
    """

    name = "imagereward"
    scale = "(raw - 0.1672) / 1.0333; ~N(0, 1), > 0 is better than average"

    def __init__(self, model: ImageRewardModel, tokenizer: Any, *, max_length: int = 35, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = self._freeze(model)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.image_size = int(model.vision.config.image_size)

    def _score(self, pixel_values: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=self.max_length,
                                return_tensors="pt").to(self.device)
        raw = self.model(pixel_values, tokens["input_ids"], tokens["attention_mask"]).float()
        return (raw - IMAGEREWARD_MEAN) / IMAGEREWARD_STD

    def _score_batch(self, samples: list[Any], prompts: list[str]) -> torch.Tensor:
        tensors = torch.stack([clip_pil_transform(to_pil(s), self.image_size) for s in samples]).to(self.device)
        return self._score(normalize(tensors, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD).to(self.dtype), prompts)

    def _score_pixels(self, pixels: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        x = resize_shortest_center_crop(pixels.to(self.device), self.image_size, self.image_size)
        return self._score(normalize(x, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD).to(self.dtype), prompts)


def load_tokenizer(spec: str) -> Any:
    """BLIP's BERT tokenizer: bert-base-uncased plus the [DEC] bos and [ENC] special tokens."""
    from transformers import BertTokenizer

    tokenizer = from_pretrained(BertTokenizer.from_pretrained, spec, scorer="imagereward", key="tokenizer",
                                files="vocab.txt of bert-base-uncased")
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    return tokenizer


def read_med_config(path: str, checkpoint: str) -> dict[str, Any]:
    """The BERT config: the given file, else med_config.json beside the checkpoint, else released values."""
    candidate = Path(path).expanduser() if path else Path(checkpoint).with_name("med_config.json")
    if path and not candidate.is_file():
        raise UserError(f"imagereward: med_config '{path}' does not exist.")
    return json.loads(candidate.read_text()) if candidate.is_file() else {}


@REWARD_MODELS.register("imagereward", summary="ImageReward: BLIP cross-attention + MLP, standardised (~N(0,1))",
                        params=ImageRewardParams)
def build(params: ImageRewardParams, device: str | torch.device = "cpu",
          dtype: torch.dtype = torch.float32) -> ImageRewardScorer:
    checkpoint = resolve_file(params.weights, "ImageReward.pt", scorer="imagereward")
    state_dict = load_state_dict(checkpoint, scorer="imagereward")
    model = model_from_official(state_dict, read_med_config(params.med_config, checkpoint), params.vision_heads)
    return ImageRewardScorer(model, load_tokenizer(params.tokenizer), max_length=params.max_length,
                             device=device, dtype=dtype, batch_size=params.batch_size)
