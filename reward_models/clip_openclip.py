"""An open_clip model built from its architecture config plus a state dict read with weights_only.

HPS v2/v2.1 ship bare state dicts for open_clip's ViT-H-14; building the model from the config and
loading the tensors ourselves avoids the unmaintained hpsv2 package and any pickle execution.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from mmpref.errors import UserError, did_you_mean

from .preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, normalize
from .weights import load_state_dict


def model_config(arch: str, config_path: str, *, scorer: str) -> dict[str, Any]:
    """The open_clip model config: from a JSON file when given, else open_clip's built-in `arch`."""
    import open_clip

    if config_path:
        path = Path(config_path).expanduser()
        if not path.is_file():
            raise UserError(f"{scorer}: model_config '{config_path}' does not exist; give an open_clip model "
                            "config JSON (embed_dim, vision_cfg, text_cfg) or leave it empty to use `arch`.")
        cfg = json.loads(path.read_text())
        cfg = cfg.get("model_cfg", cfg)
    else:
        cfg = open_clip.get_model_config(arch)
        if cfg is None:
            names = open_clip.list_models()
            raise UserError(f"{scorer}: unknown open_clip architecture '{arch}'.{did_you_mean(arch, names)}")
    return json.loads(json.dumps(cfg))  # a private deep copy


def build_model(cfg: dict[str, Any]) -> torch.nn.Module:
    """An open_clip CLIP (or CustomTextCLIP) with random weights from a config dict."""
    from open_clip.model import CLIP, CustomTextCLIP

    cfg = dict(cfg)
    cfg.pop("preprocess_cfg", None)
    custom = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    return (CustomTextCLIP if custom else CLIP)(**cfg)


def state_dict_from_checkpoint(raw: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Unwrap {'state_dict': ...} and DataParallel 'module.' prefixes."""
    sd = raw.get("state_dict", raw)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_open_clip(arch: str, config_path: str, checkpoint: str, *, scorer: str) -> tuple[torch.nn.Module, Any, dict]:
    """(model, tokenizer, preprocess info {image_size, mean, std}) for a CLIP state dict file."""
    import open_clip

    cfg = model_config(arch, config_path, scorer=scorer)
    model = build_model(cfg)
    sd = state_dict_from_checkpoint(load_state_dict(checkpoint, scorer=scorer))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("attn_mask")]
    if missing or unexpected:
        raise UserError(f"{scorer}: '{checkpoint}' does not fit open_clip '{arch or config_path}' "
                        f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]}); is it the right checkpoint?")
    text_cfg = cfg.get("text_cfg", {})
    if text_cfg.get("hf_tokenizer_name"):
        tokenizer = open_clip.tokenizer.HFTokenizer(text_cfg["hf_tokenizer_name"],
                                                    context_length=text_cfg.get("context_length", 77))
    else:
        tokenizer = open_clip.SimpleTokenizer(context_length=text_cfg.get("context_length", 77))
    pre = cfg.get("preprocess_cfg", {})
    size = model.visual.image_size
    info = {
        "image_size": int(size[0] if isinstance(size, (tuple, list)) else size),
        "mean": tuple(pre.get("mean", OPENAI_CLIP_MEAN)),
        "std": tuple(pre.get("std", OPENAI_CLIP_STD)),
    }
    return model, tokenizer, info


class OpenClip:
    """An open_clip model with its tokenizer and evaluation preprocessing; embeddings L2-normalised.

    `resize_mode` 'shortest' is open_clip's default (shorter side, centre crop, PIL bicubic); 'longest'
    is HPS's ResizeMaxSize (tensor resize of the longer side, zero padding).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, info: dict, resize_mode: str = "shortest") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.image_size = int(info["image_size"])
        self.mean, self.std = tuple(info["mean"]), tuple(info["std"])
        self.resize_mode = resize_mode

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def pixel_values_from_images(self, images: list[Any]) -> torch.Tensor:
        """Official preprocessing of PIL images / arrays, image by image (sizes may differ)."""
        from .images import pil_to_tensor, to_pil
        from .preprocess import clip_pil_transform

        if self.resize_mode == "longest":
            return torch.cat([self.pixel_values_from_pixels(pil_to_tensor(to_pil(im))[None]) for im in images])
        tensors = torch.stack([clip_pil_transform(to_pil(im), self.image_size) for im in images])
        return normalize(tensors.to(self.device), self.mean, self.std).to(self.dtype)

    def pixel_values_from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """The same preprocessing in torch (differentiable) for float pixels in [0, 1]."""
        from .preprocess import resize_longest_pad, resize_shortest_center_crop

        pixels = pixels.to(self.device)
        if self.resize_mode == "longest":
            x = resize_longest_pad(pixels, self.image_size, fill=0.0)
        else:
            x = resize_shortest_center_crop(pixels, self.image_size, self.image_size, rounding="round")
        return normalize(x, self.mean, self.std).to(self.dtype)

    def image_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.model.encode_image(pixel_values).float(), dim=-1)

    def text_embeds(self, prompts: list[str]) -> torch.Tensor:
        """Normalised text embeddings, each distinct prompt encoded once."""
        unique = list(dict.fromkeys(prompts))
        feats = self.model.encode_text(self.tokenizer(unique).to(self.device)).float()
        feats = torch.nn.functional.normalize(feats, dim=-1)
        return feats[torch.tensor([unique.index(p) for p in prompts], device=feats.device)]

    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale.float().exp()
