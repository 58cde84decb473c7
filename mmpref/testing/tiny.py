"""Tiny Stable Diffusion 1.x / 2.x and SDXL pipelines with random weights, written in diffusers' format.

Tests, demos and data-generation smoke runs need a real pipeline directory that goes through the real
`from_pretrained` path, without a hub. These builders assemble one from stock classes and configs
(a few hundred thousand parameters, 32×32 images, 8×8 or 16×16 latents) and `save_pretrained` it.
The CLIP tokenizer is written from a byte-level vocabulary (no merges), so any prompt tokenizes offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

TINY_MAX_LENGTH = 16
"""Token length of the tiny text encoders (SD uses 77); short keeps the cross-attention cheap."""


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable unicode map (the tokenizer's base alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def write_tiny_clip_tokenizer(directory: Path, max_length: int = TINY_MAX_LENGTH):
    """Write vocab.json/merges.txt of a byte-level CLIP BPE without merges and load it as CLIPTokenizer."""
    from transformers import CLIPTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=max_length, pad_token="<|endoftext|>"
    )


def _text_config(vocab_size: int, hidden: int, projection: int | None = None):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=TINY_MAX_LENGTH,
        projection_dim=projection or hidden,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,  # must lie inside the vocabulary (the pooled token is found by it)
        pad_token_id=vocab_size - 1,
        hidden_act="gelu",
    )


def _vae(latent_channels: int = 4, blocks: int = 2):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(8,) * blocks,
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=0.18215,
    )


def _scheduler(prediction_type: str):
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )


def build_tiny_sd(
    directory: str | Path,
    kind: Literal["sd", "sdxl"] = "sd",
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon",
    seed: int = 0,
    vae_blocks: int = 2,
) -> Path:
    """Save a tiny random SD 1.x-shaped (`sd`) or SDXL-shaped (`sdxl`) pipeline to `directory`.

    `vae_blocks=2` gives 2× down-sampling (32×32 images → 16×16 latents), 3 gives 4×.
    The result loads with `DiffusionPipeline.from_pretrained(directory)`.
    """
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    directory = Path(directory)
    torch.manual_seed(seed)
    tokenizer = write_tiny_clip_tokenizer(directory / "_tokenizer_src")
    vocab = len(tokenizer)
    common = dict(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32),
        norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=4,
    )
    if kind == "sd":
        text_encoder = CLIPTextModel(_text_config(vocab, 16)).eval()
        unet = UNet2DConditionModel(cross_attention_dim=16, **common)
        pipe = StableDiffusionPipeline(
            vae=_vae(blocks=vae_blocks), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
            scheduler=_scheduler(prediction_type), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False,
        )
    elif kind == "sdxl":
        text_encoder = CLIPTextModel(_text_config(vocab, 16)).eval()
        text_encoder_2 = CLIPTextModelWithProjection(_text_config(vocab, 16, projection=16)).eval()
        time_dim = 8
        unet = UNet2DConditionModel(
            cross_attention_dim=32,  # both encoders' hidden states are concatenated: 16 + 16
            addition_embed_type="text_time",
            addition_time_embed_dim=time_dim,
            projection_class_embeddings_input_dim=6 * time_dim + 16,  # six time ids + pooled projection
            use_linear_projection=True,
            **common,
        )
        pipe = StableDiffusionXLPipeline(
            vae=_vae(blocks=vae_blocks), text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
            tokenizer_2=tokenizer, unet=unet, scheduler=_scheduler(prediction_type), force_zeros_for_empty_prompt=True,
        )
    else:
        raise ValueError(f"kind must be 'sd' or 'sdxl', got {kind!r}")
    pipe.save_pretrained(directory)
    import shutil

    shutil.rmtree(directory / "_tokenizer_src", ignore_errors=True)
    return directory
