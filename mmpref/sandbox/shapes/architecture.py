"""The shapes base model's components, built from configs (stock diffusers / transformers classes).

Sizes are chosen for 2 CPU cores: 32x32 RGB images, a VAE that halves the resolution into 4 x 16 x 16
latents, a UNet whose 16x16 level has no attention (it costs most and adds least) with cross-attention
at 8x8 and 4x4, and a 2-layer CLIP text encoder over a vocabulary where each grammar word is one token.
A UNet forward on 64 latents takes about 0.1 s on 2 cores, so sampling with classifier-free guidance
costs a few ms per image per step.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mmpref.sandbox.shapes.render import DEFAULT_SIZE
from mmpref.sandbox.shapes.tokenizer import MAX_LENGTH, write_tokenizer_files

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

LATENT_SIZE = DEFAULT_SIZE // 2
TEXT_DIM = 64
# SD's latent scaling factor, kept as is although this VAE's latents have std ~1.36: the UNet then sees
# latents of std ~0.25, i.e. a noisier effective schedule (terminal SNR ~3e-4 instead of ~5e-3), which
# spends its capacity on layout and colour, what the shapes world is about. The shipped base was
# trained this way.
LATENT_SCALE = 0.18215

# Noise schedule of Stable Diffusion 1.x, so recipes written for SD apply unchanged.
SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
)


def build_vae() -> AutoencoderKL:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=DEFAULT_SIZE,
        mid_block_add_attention=False,  # flat shapes need no global attention to reconstruct
        scaling_factor=LATENT_SCALE,
    )


def build_unet() -> UNet2DConditionModel:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64, 96),
        layers_per_block=1,
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=4,  # diffusers' legacy name: this is the number of heads
        norm_num_groups=8,
    )


def build_tokenizer(directory: str | Path) -> CLIPTokenizer:
    """Write the grammar vocabulary into `directory` and load it with stock CLIPTokenizer."""
    from transformers import CLIPTokenizer

    write_tokenizer_files(directory)
    return CLIPTokenizer.from_pretrained(str(directory), model_max_length=MAX_LENGTH)


def build_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_DIM,
        intermediate_size=2 * TEXT_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,  # must be a real id: the pooled output looks for it
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def build_scheduler() -> DDIMScheduler:
    """The sampler the base is shipped with (DDIM); training uses the same betas with DDPM noising."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**SCHEDULE)
