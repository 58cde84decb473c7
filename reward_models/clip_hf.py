"""A transformers CLIP model with its tokenizer and preprocessing, shared by the CLIP-based scorers.

PickScore, CLIP score (transformers backend) and the aesthetic predictor all need normalised image
and text embeddings; this holds the loading, the PIL (official) and torch (differentiable) image
paths and the prompt de-duplication in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .images import to_pil
from .preprocess import normalize, resize_shortest_center_crop
from .weights import from_pretrained

_MODEL_FILES = "config.json and model.safetensors (or pytorch_model.bin)"
_PROCESSOR_FILES = "preprocessor_config.json and the tokenizer files (tokenizer.json or vocab.json + merges.txt)"


def has_processor_files(path: str) -> bool:
    """True when `path` is a local directory that carries its own processor config."""
    folder = Path(path)
    return folder.is_dir() and any((folder / name).is_file()
                                   for name in ("preprocessor_config.json", "processor_config.json"))


def pooled(output: Any) -> torch.Tensor:
    """Embeddings from get_*_features: a tensor in transformers 4, an output object in 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class HFClip:
    """CLIPModel + tokenizer + image processor; embeddings come back L2-normalised."""

    def __init__(self, model: Any, tokenizer: Any, image_processor: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        size, crop = image_processor.size, image_processor.crop_size
        self.resize_to = int(size["shortest_edge"])
        self.crop = (int(crop["height"]), int(crop["width"]))
        self.mean = tuple(image_processor.image_mean)
        self.std = tuple(image_processor.image_std)
        max_positions = int(model.config.text_config.max_position_embeddings)
        self.max_length = min(max_positions, int(getattr(tokenizer, "model_max_length", max_positions) or max_positions))

    @classmethod
    def load(cls, weights: str, processor: str, *, scorer: str, processor_key: str = "processor") -> HFClip:
        """Load with `from_pretrained` (safetensors preferred, .bin via weights_only; never remote code)."""
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        model = from_pretrained(CLIPModel.from_pretrained, weights, scorer=scorer, files=_MODEL_FILES)
        tokenizer = from_pretrained(AutoTokenizer.from_pretrained, processor, scorer=scorer,
                                    files=_PROCESSOR_FILES, key=processor_key)
        # The PIL backend is the preprocessing these models were trained and evaluated with.
        image_processor = from_pretrained(AutoImageProcessor.from_pretrained, processor, scorer=scorer,
                                          files=_PROCESSOR_FILES, key=processor_key, backend="pil")
        return cls(model, tokenizer, image_processor)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def pixel_values_from_images(self, images: Sequence[Any]) -> torch.Tensor:
        """Official preprocessing (the model's PIL image processor) of PIL images / arrays."""
        batch = self.image_processor(images=[to_pil(im) for im in images], return_tensors="pt")
        return batch["pixel_values"].to(device=self.device, dtype=self.dtype)

    def pixel_values_from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """The same preprocessing in torch (differentiable) for float pixels in [0, 1]."""
        x = resize_shortest_center_crop(pixels.to(self.device), self.resize_to, self.crop, rounding="floor")
        return normalize(x, self.mean, self.std).to(self.dtype)

    def image_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return F.normalize(pooled(self.model.get_image_features(pixel_values=pixel_values)).float(), dim=-1)

    def text_embeds(self, prompts: Sequence[str]) -> torch.Tensor:
        """Normalised text embeddings, each distinct prompt encoded once."""
        unique = list(dict.fromkeys(prompts))
        tokens = self.tokenizer(unique, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt").to(self.device)
        feats = pooled(self.model.get_text_features(input_ids=tokens["input_ids"],
                                                    attention_mask=tokens["attention_mask"]))
        feats = F.normalize(feats.float(), dim=-1)
        index = torch.tensor([unique.index(p) for p in prompts], device=feats.device)
        return feats[index]

    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale.float().exp()
