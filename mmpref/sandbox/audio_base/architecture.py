"""The audio world's base model components, built from configs (stock diffusers / transformers classes).

Tango's shape at the audio world's scale (1.28 s clips, 128 mel frames, 2 CPU cores):

| component      | class                   | here                                                              |
|----------------|-------------------------|-------------------------------------------------------------------|
| `tokenizer`    | PreTrainedTokenizerFast | word level, one token per grammar word, `</s>` appended (T5-like)  |
| `text_encoder` | `T5EncoderModel`        | 2 layers, d 64, 4 heads (Tango: FLAN-T5-Large, 1024-d)             |
| `vae`          | `AutoencoderKL`         | log-mel [B, 1, 128, 64] <-> latent [B, 8, 32, 16] (4x down), no attention |
| `unet`         | `UNet2DConditionModel`  | 8 ch in/out, (32, 64, 96), cross-attention 64 at 16x8 and 8x4, mask |
| `vocoder`      | `SpeechT5HifiGan`       | 64 mels -> 16 kHz, up-sampling 5*4*2*2*2 = 160, 64 initial channels |
| `scheduler`    | `DDIMScheduler`         | SD 2.1's betas, v-prediction (training noises with DDPMScheduler)  |

The VAE's `scaling_factor` is set after its training to 1 / std of its latent means, as Tango's learned
factor is, so the UNet sees unit-variance latents. The mel front end is `mmpref.audio.mel` (peak 0.5,
log-mel), the one the trainer encodes preference data with, so DPO on this base sees the same inputs
the base was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmpref.audio.mel import HOP_LENGTH, N_MELS, SAMPLE_RATE
from mmpref.sandbox.audio.render import DURATION

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
    from transformers import PreTrainedTokenizerFast, SpeechT5HifiGan, T5EncoderModel

FRAMES = round(DURATION * SAMPLE_RATE) // HOP_LENGTH  # 128 mel frames per 1.28 s clip
VAE_DOWN = 4
LATENT_CHANNELS = 8
LATENT_SHAPE = (LATENT_CHANNELS, FRAMES // VAE_DOWN, N_MELS // VAE_DOWN)  # (8, 32, 16)
TEXT_DIM = 64
MAX_LENGTH = 16  # tokens with </s>; the longest grammar sentence has 8 words

# Every word the audio grammar prints or its parser accepts (aliases included), so no prompt hits <unk>.
GRAMMAR_WORDS: tuple[str, ...] = (
    "a", "an", "one", "two", "three",
    "low", "high", "rising", "falling", "noise", "low-pitched", "high-pitched", "upward", "up", "ascending",
    "downward", "down", "descending",
    "beep", "beeps", "chirp", "chirps", "burst", "bursts", "click", "clicks", "tone", "tones",
    "followed", "by", "then", "and", "before", "after",
)

# SD 2.1's schedule with v-prediction, as Tango uses it.
SCHEDULE: dict[str, Any] = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="v_prediction",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
)


def build_tokenizer(directory: str | Path | None = None) -> PreTrainedTokenizerFast:
    """A T5-style word-level tokenizer (<pad> 0, </s> 1, <unk> 2, lower-cased, `</s>` appended, so the empty
    prompt is one token); saved to `directory` when given."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in GRAMMAR_WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(",", " ")])
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=MAX_LENGTH
    )
    if directory is not None:
        tokenizer.save_pretrained(str(directory))
    return tokenizer


def build_text_encoder(vocab_size: int) -> T5EncoderModel:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab_size, d_model=TEXT_DIM, d_kv=16, d_ff=2 * TEXT_DIM, num_layers=2, num_heads=4,
        feed_forward_proj="gated-gelu", relative_attention_num_buckets=8, relative_attention_max_distance=MAX_LENGTH,
        dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    return T5EncoderModel(config)


def build_vae(scaling_factor: float = 1.0) -> AutoencoderKL:
    """Log-mel [B, 1, 128, 64] <-> [B, 8, 32, 16]: three levels (two 2x down-samplings), no attention."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=1,
        out_channels=1,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=FRAMES,
        mid_block_add_attention=False,
        scaling_factor=scaling_factor,
    )


def build_unet() -> UNet2DConditionModel:
    """8-channel latents (32 x 16); the full-resolution level has no attention (costly, adds little)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SHAPE[1:],
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64, 96),
        layers_per_block=1,
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=4,  # diffusers' legacy name: the number of heads
        norm_num_groups=8,
        use_linear_projection=True,  # as Tango's UNet
    )


def vocoder_config() -> Any:
    """Tango's HiFi-GAN geometry (64 mels, 16 kHz, kernels 16,16,8,4,4, resblocks 3/7/11 x dilations 1,3,5)
    with 64 initial channels (Tango: 1024): 64 -> 32 -> 16 -> 8 -> 4 -> 2 channels over the up-samplings.
    `normalize_before`: the vocoder standardises each mel bin with its stored `mean` / `scale` buffers
    (set from the training data by `build_vocoder`), so raw log-mels (-11.5 in silence) go in unchanged."""
    from transformers import SpeechT5HifiGanConfig

    return SpeechT5HifiGanConfig(
        model_in_dim=N_MELS, sampling_rate=SAMPLE_RATE, upsample_initial_channel=64, upsample_rates=[5, 4, 2, 2, 2],
        upsample_kernel_sizes=[16, 16, 8, 4, 4], resblock_kernel_sizes=[3, 7, 11],
        resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]], normalize_before=True,
    )


def build_vocoder(mel_mean: Any = None, mel_std: Any = None) -> SpeechT5HifiGan:
    """A fresh vocoder for training: PyTorch's default convolution weights with zero biases (transformers'
    N(0, 0.01) leaves a 5-stage stack of 64 channels nearly silent; random biases make an input-independent
    noise floor that MR-STFT training settles into) and per-bin mel statistics [64]."""
    import torch
    from transformers import SpeechT5HifiGan

    vocoder = SpeechT5HifiGan(vocoder_config())
    for module in vocoder.modules():
        if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            module.reset_parameters()
            torch.nn.init.zeros_(module.bias)
    with torch.no_grad():
        if mel_mean is not None:
            vocoder.mean.copy_(torch.as_tensor(mel_mean, dtype=torch.float32))
        if mel_std is not None:
            vocoder.scale.copy_(torch.as_tensor(mel_std, dtype=torch.float32).clamp(min=1e-3))
    return vocoder


def build_scheduler() -> DDIMScheduler:
    """The sampler the base ships with: DDIM over SD 2.1's betas, v-prediction."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**SCHEDULE)


def build_noise_scheduler() -> DDPMScheduler:
    """The training-time noiser (same betas): `add_noise` and `get_velocity`."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**{k: v for k, v in SCHEDULE.items() if k != "set_alpha_to_one"})


def parameter_counts() -> dict[str, int]:
    """Parameters per component (for the docs and the recorded info)."""
    tokenizer = build_tokenizer()
    parts = {
        "vae": build_vae(),
        "unet": build_unet(),
        "text_encoder": build_text_encoder(len(tokenizer)),
        "vocoder": build_vocoder(),
    }
    return {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}
