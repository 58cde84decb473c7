"""ImageReward's network on transformers' BLIP modules, and the map from the official checkpoint keys.

The image-reward package pins BLIP code that no longer runs on transformers 5. The network is BLIP's
ViT (timm layout) feeding a BERT text encoder with cross-attention (transformers' BlipTextModel is
that same "med" encoder), then a linear MLP head on the [CLS] state. The official `ImageReward.pt`
names (`blip.visual_encoder.*`, `blip.text_encoder.*`, `mlp.layers.*`) are renamed to ours below.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn

from mmpref.errors import UserError

from .heads import LinearMLPHead

IMAGEREWARD_MEAN = 0.16717362830052426
IMAGEREWARD_STD = 1.0333394966054072

# The released med_config.json (BERT-base with cross-attention); vocab size is read from the weights.
OFFICIAL_MED_CONFIG: dict[str, Any] = {
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
    "max_position_embeddings": 512, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0,
}

_VISION_RENAMES = [
    (r"^blip\.visual_encoder\.cls_token$", "vision.embeddings.class_embedding"),
    (r"^blip\.visual_encoder\.pos_embed$", "vision.embeddings.position_embedding"),
    (r"^blip\.visual_encoder\.patch_embed\.proj\.", "vision.embeddings.patch_embedding."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.norm1\.", r"vision.encoder.layers.\1.layer_norm1."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.norm2\.", r"vision.encoder.layers.\1.layer_norm2."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.attn\.qkv\.", r"vision.encoder.layers.\1.self_attn.qkv."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.attn\.proj\.", r"vision.encoder.layers.\1.self_attn.projection."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.mlp\.fc([12])\.", r"vision.encoder.layers.\1.mlp.fc\2."),
    (r"^blip\.visual_encoder\.norm\.", "vision.post_layernorm."),
    (r"^blip\.text_encoder\.", "text."),
    (r"^mlp\.layers\.", "mlp.layers."),
]
# Present in the official file but unused for scoring (ITC projections, position-id buffer).
_IGNORED = re.compile(r"^blip\.(vision_proj|text_proj)\.|^blip\.text_encoder\.embeddings\.position_ids$")


def map_official_keys(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(renamed state dict, keys that had no counterpart); ignorable official extras are dropped."""
    mapped: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        if _IGNORED.search(key):
            continue
        for pattern, replacement in _VISION_RENAMES:
            new_key, count = re.subn(pattern, replacement, key)
            if count:
                mapped[new_key] = value
                break
        else:
            unknown.append(key)
    return mapped, unknown


def configs_from_state_dict(state_dict: dict[str, torch.Tensor], med_config: dict[str, Any],
                            vision_heads: int = 0) -> tuple[Any, Any]:
    """BlipVisionConfig and BlipTextConfig that fit the official tensors (ViT size read from shapes)."""
    from transformers import BlipTextConfig, BlipVisionConfig

    prefix = "blip.visual_encoder."
    try:
        width = int(state_dict[prefix + "cls_token"].shape[-1])
        patch = int(state_dict[prefix + "patch_embed.proj.weight"].shape[-1])
        positions = int(state_dict[prefix + "pos_embed"].shape[1])
        words = state_dict["blip.text_encoder.embeddings.word_embeddings.weight"]
        mlp_width = int(state_dict[prefix + "blocks.0.mlp.fc1.weight"].shape[0])
    except KeyError as err:
        raise UserError(f"imagereward: the checkpoint lacks {err.args[0]!r}; is it an official ImageReward.pt?") from err
    depth = 1 + max(int(m.group(1)) for k in state_dict if (m := re.match(re.escape(prefix) + r"blocks\.(\d+)\.", k)))
    vision = BlipVisionConfig(
        hidden_size=width, intermediate_size=mlp_width, num_hidden_layers=depth,
        num_attention_heads=vision_heads or max(1, width // 64), image_size=int(math.isqrt(positions - 1)) * patch,
        patch_size=patch, hidden_act="gelu", layer_norm_eps=1e-6,  # timm ViT: LayerNorm(eps=1e-6), exact GELU
    )
    med = {**OFFICIAL_MED_CONFIG, **med_config}
    text = BlipTextConfig(
        vocab_size=int(words.shape[0]), hidden_size=int(med["hidden_size"]), encoder_hidden_size=width,
        intermediate_size=int(med["intermediate_size"]), num_hidden_layers=int(med["num_hidden_layers"]),
        num_attention_heads=int(med["num_attention_heads"]),
        max_position_embeddings=int(med["max_position_embeddings"]), layer_norm_eps=float(med["layer_norm_eps"]),
        hidden_act=med["hidden_act"], pad_token_id=int(med.get("pad_token_id", 0)),
        bos_token_id=30522 if words.shape[0] > 30522 else None, sep_token_id=102 if words.shape[0] > 102 else None,
        is_decoder=True,  # builds the cross-attention layers; forward runs bidirectionally (is_decoder=False)
    )
    return vision, text


class ImageRewardModel(nn.Module):
    """BLIP ViT -> BERT with cross-attention to the image -> [CLS] -> linear MLP head (raw reward)."""

    def __init__(self, vision_config: Any, text_config: Any) -> None:
        super().__init__()
        from transformers import BlipTextModel, BlipVisionModel

        self.vision = BlipVisionModel(vision_config)
        self.text = BlipTextModel(text_config, add_pooling_layer=False)
        self.mlp = LinearMLPHead(text_config.hidden_size)

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        """Raw (un-normalised) reward [B]."""
        image_embeds = self.vision(pixel_values=pixel_values).last_hidden_state
        image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        text = self.text(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image_embeds,
                         encoder_attention_mask=image_mask)
        return self.mlp(text.last_hidden_state[:, 0, :])


def model_from_official(state_dict: dict[str, torch.Tensor], med_config: dict[str, Any],
                        vision_heads: int = 0) -> ImageRewardModel:
    """An ImageRewardModel holding the official tensors (built without random init, then filled)."""
    from accelerate import init_empty_weights

    vision_cfg, text_cfg = configs_from_state_dict(state_dict, med_config, vision_heads)
    mapped, unknown = map_official_keys(state_dict)
    with init_empty_weights(include_buffers=False):
        model = ImageRewardModel(vision_cfg, text_cfg)
    expected = set(model.state_dict())
    missing = sorted(expected - set(mapped))
    extra = sorted(set(mapped) - expected) + unknown
    if missing or extra:
        raise UserError(f"imagereward: checkpoint does not match the ImageReward layout (missing {missing[:3]}, "
                        f"unexpected {extra[:3]}); is it the official ImageReward.pt?")
    model.load_state_dict(mapped, strict=True, assign=True)
    return model
