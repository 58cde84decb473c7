"""Tiny Tango-shaped text-to-audio models with random weights, in the two real on-disk layouts.

- `build_tiny_tango(dir)`: a `TangoPipeline` directory (diffusers `save_pretrained` layout): a 2-layer
  T5 encoder (d 32) with a word-level tokenizer, a UNet2DConditionModel over 8-channel mel latents with
  cross-attention to the T5 states, a 1-channel mel AutoencoderKL with 8 latent channels (4× down:
  1.28 s = 128 frames → latent 8 × 32 × 16), a SpeechT5HifiGan vocoder with Tango's up-sampling
  (5·4·2·2·2 = 160 samples per frame, 16 kHz) and SD 2.1's v-prediction DDPM scheduler.
- `write_tiny_tango_checkpoint(dir)`: the layout Tango / Tango 2 publish (`vae_config.json`,
  `stft_config.json`, `main_config.json`, `pytorch_model_{vae,stft,main}.bin`), with the VAE in the
  original latent-diffusion naming (`encoder.down.0.block.0.conv1`, `decoder.up.2.upsample.conv`,
  `mid.attn_1.q` 1×1 convolutions, ...) and the HiFi-GAN in the VAE state dict under `vocoder.`
  (`conv_pre`, `ups.{i}`, `resblocks.{k}.convs1.{j}`, `conv_post`; weight norm removed). The tensor
  names and shapes are enumerated here from that architecture, independently of the converter.

The T5 tokenizer is word-level with a `TemplateProcessing("$A </s>")` post-processor: like the real
T5 tokenizer it appends `</s>`, so the empty prompt has one token and classifier-free guidance works.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TINY_TEXT_LENGTH = 32
TINY_DURATION = 1.28  # seconds: 128 mel frames, latent (8, 32, 16)

# Words of the audio world's grammar plus common audio-caption words; anything else maps to <unk>.
WORDS: tuple[str, ...] = (
    "a", "an", "one", "two", "three", "four", "low", "high", "low-pitched", "high-pitched", "rising", "falling",
    "upward", "downward", "up", "down", "ascending", "descending", "noise", "beep", "beeps", "chirp", "chirps",
    "burst", "bursts", "click", "clicks", "tone", "tones", "followed", "by", "and", "then", "before", "after",
    "while", "with", "of", "the", "in", "on", "is", "are", "dog", "dogs", "barking", "barks", "cat", "meowing",
    "bird", "birds", "singing", "chirping", "car", "engine", "idling", "revving", "passing", "rain", "falling",
    "wind", "blowing", "water", "running", "flowing", "man", "woman", "child", "people", "speaking", "talking",
    "laughing", "crowd", "cheering", "music", "playing", "piano", "guitar", "drum", "drums", "siren", "bell",
    "ringing", "door", "slams", "footsteps", "thunder", "train", "horn", "honking", "loud", "quiet", "soft",
    "distant", "background", "sound", "sounds", "audio", "clip", "silence", "short", "long", "fast", "slow",
)


def write_tiny_t5_tokenizer(directory: str | Path, words: tuple[str, ...] = WORDS,
                            max_length: int = TINY_TEXT_LENGTH) -> Any:
    """Save a word-level T5-style tokenizer (<pad> 0, </s> 1, <unk> 2, lower-cased, '</s>' appended)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                        model_max_length=max_length)
    tokenizer.save_pretrained(str(directory))
    return tokenizer


def tiny_t5_config(vocab_size: int) -> Any:
    from transformers import T5Config

    return T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                    feed_forward_proj="gated-gelu", relative_attention_num_buckets=8,
                    relative_attention_max_distance=32, dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
                    decoder_start_token_id=0)


def tiny_unet(cross_attention_dim: int = 32) -> Any:
    """UNet2DConditionModel over 8-channel mel latents (2 levels: time axis must be a multiple of 2)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=(32, 16), in_channels=8, out_channels=8, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim, attention_head_dim=8, norm_num_groups=8,
        use_linear_projection=True, upcast_attention=True,
    )


def tiny_vocoder_config() -> Any:
    """Tango's HiFi-GAN geometry (64 mels, 16 kHz, up-sampling 5·4·2·2·2 = 160) with 64 initial channels."""
    from transformers import SpeechT5HifiGanConfig

    return SpeechT5HifiGanConfig(
        model_in_dim=64, sampling_rate=16000, upsample_initial_channel=64, upsample_rates=[5, 4, 2, 2, 2],
        upsample_kernel_sizes=[16, 16, 8, 4, 4], resblock_kernel_sizes=[3, 7, 11],
        resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]], normalize_before=False,
    )


def tango_scheduler_config() -> dict[str, Any]:
    """SD 2.1's scheduler (Tango's `scheduler_name`), v-prediction."""
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                clip_sample=False, prediction_type="v_prediction", steps_offset=1, set_alpha_to_one=False)


def build_tiny_tango(directory: str | Path, seed: int = 0, audio_length_in_s: float = TINY_DURATION) -> Path:
    """Save a tiny random `TangoPipeline` to `directory` (loads with `TangoPipeline.from_pretrained`)."""
    import shutil

    import torch
    from diffusers import AutoencoderKL, DDPMScheduler
    from transformers import SpeechT5HifiGan, T5EncoderModel

    from mmpref.audio.pipeline import TangoPipeline

    directory = Path(directory)
    torch.manual_seed(seed)
    tokenizer = write_tiny_t5_tokenizer(directory / "_tokenizer_src")
    text_encoder = T5EncoderModel(tiny_t5_config(len(tokenizer))).eval()
    vae = AutoencoderKL(
        in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 16, 16), layers_per_block=1,
        latent_channels=8, norm_num_groups=4, sample_size=128, scaling_factor=0.9227914214134216,
    )
    pipe = TangoPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=tiny_unet(), vocoder=SpeechT5HifiGan(tiny_vocoder_config()).eval(),
        scheduler=DDPMScheduler.from_config(tango_scheduler_config()), default_audio_length_in_s=audio_length_in_s,
    )
    pipe.save_pretrained(str(directory))
    shutil.rmtree(directory / "_tokenizer_src", ignore_errors=True)
    return directory


# ---- the published Tango layout -------------------------------------------------------------------------
TINY_DDCONFIG: dict[str, Any] = {
    "double_z": True, "z_channels": 8, "resolution": 256, "downsample_time": False, "in_channels": 1,
    "out_ch": 1, "ch": 32, "ch_mult": [1, 2, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
}
TINY_SCALE_FACTOR = 0.9227914214134216


def ldm_vae_state_dict(ddconfig: dict[str, Any], embed_dim: int, generator: Any, std: float = 0.02) -> dict[str, Any]:
    """Random tensors under every name of the original latent-diffusion AutoencoderKL (Encoder, Decoder,
    quant convs), enumerated from its architecture: resnets norm1/conv1/norm2/conv2(/nin_shortcut),
    stride-2 `downsample.conv`, `upsample.conv`, mid block_1/attn_1/block_2 with 1×1-conv q/k/v/proj_out."""
    import torch

    sd: dict[str, Any] = {}

    def conv(name: str, cin: int, cout: int, k: int) -> None:
        sd[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=generator) * std
        sd[f"{name}.bias"] = torch.randn(cout, generator=generator) * std

    def norm(name: str, c: int) -> None:
        sd[f"{name}.weight"] = 1.0 + torch.randn(c, generator=generator) * std
        sd[f"{name}.bias"] = torch.randn(c, generator=generator) * std

    def resnet(name: str, cin: int, cout: int) -> None:
        norm(f"{name}.norm1", cin)
        conv(f"{name}.conv1", cin, cout, 3)
        norm(f"{name}.norm2", cout)
        conv(f"{name}.conv2", cout, cout, 3)
        if cin != cout:
            conv(f"{name}.nin_shortcut", cin, cout, 1)

    def mid(prefix: str, c: int) -> None:
        resnet(f"{prefix}.mid.block_1", c, c)
        norm(f"{prefix}.mid.attn_1.norm", c)
        for part in ("q", "k", "v", "proj_out"):
            conv(f"{prefix}.mid.attn_1.{part}", c, c, 1)
        resnet(f"{prefix}.mid.block_2", c, c)

    ch, mult, blocks, z = ddconfig["ch"], ddconfig["ch_mult"], ddconfig["num_res_blocks"], ddconfig["z_channels"]
    levels = len(mult)
    conv("encoder.conv_in", ddconfig["in_channels"], ch, 3)
    block_in = ch
    for i in range(levels):
        block_out = ch * mult[i]
        for j in range(blocks):
            resnet(f"encoder.down.{i}.block.{j}", block_in, block_out)
            block_in = block_out
        if i != levels - 1:
            conv(f"encoder.down.{i}.downsample.conv", block_in, block_in, 3)
    mid("encoder", block_in)
    norm("encoder.norm_out", block_in)
    conv("encoder.conv_out", block_in, 2 * z if ddconfig["double_z"] else z, 3)

    block_in = ch * mult[-1]
    conv("decoder.conv_in", z, block_in, 3)
    mid("decoder", block_in)
    for i in reversed(range(levels)):
        block_out = ch * mult[i]
        for j in range(blocks + 1):
            resnet(f"decoder.up.{i}.block.{j}", block_in, block_out)
            block_in = block_out
        if i != 0:
            conv(f"decoder.up.{i}.upsample.conv", block_in, block_in, 3)
    norm("decoder.norm_out", block_in)
    conv("decoder.conv_out", block_in, ddconfig["out_ch"], 3)
    conv("quant_conv", 2 * z, 2 * embed_dim, 1)
    conv("post_quant_conv", embed_dim, z, 1)
    return sd


def hifigan_state_dict(config: Any, generator: Any, std: float = 0.02) -> dict[str, Any]:
    """Random tensors under the HiFi-GAN (V1 generator) names, weight norm removed: conv_pre, ups.{i}
    (ConvTranspose1d, [in, out, k]), resblocks.{i·K + j}.convs{1,2}.{d}, conv_post."""
    import torch

    sd: dict[str, Any] = {}

    def conv1d(name: str, shape: tuple[int, ...], out: int) -> None:
        sd[f"{name}.weight"] = torch.randn(*shape, generator=generator) * std
        sd[f"{name}.bias"] = torch.randn(out, generator=generator) * std

    c0 = config.upsample_initial_channel
    conv1d("conv_pre", (c0, config.model_in_dim, 7), c0)
    for i, kernel in enumerate(config.upsample_kernel_sizes):
        cin, cout = c0 // 2**i, c0 // 2 ** (i + 1)
        conv1d(f"ups.{i}", (cin, cout, kernel), cout)
        for j, (k, dilations) in enumerate(zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)):
            for part in ("convs1", "convs2"):
                for d in range(len(dilations)):
                    conv1d(f"resblocks.{i * len(config.resblock_kernel_sizes) + j}.{part}.{d}", (cout, cout, k), cout)
    conv1d("conv_post", (1, c0 // 2 ** len(config.upsample_rates), 7), 1)
    return sd


def write_tiny_tango_checkpoint(directory: str | Path, seed: int = 0) -> Path:
    """Write a tiny random Tango / Tango 2 checkpoint in the published layout to `directory`.

    `main_config.json` names the text encoder by a folder holding its config and tokenizer (the real
    one says `google/flan-t5-large`), the UNet config by a path relative to the checkpoint (the real
    one: the Tango repository's `configs/diffusion_model_config.json`), and SD 2.1's scheduler.
    """
    import torch
    from transformers import T5EncoderModel

    from mmpref.audio.mel import mel_filters

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    tokenizer = write_tiny_t5_tokenizer(directory / "text_encoder")
    t5_config = tiny_t5_config(len(tokenizer))
    t5_config.save_pretrained(str(directory / "text_encoder"))
    text_encoder = T5EncoderModel(t5_config)
    unet = tiny_unet(cross_attention_dim=t5_config.d_model)
    (directory / "configs").mkdir(exist_ok=True)
    unet_config = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
    (directory / "configs" / "diffusion_model_config.json").write_text(
        json.dumps({"_class_name": "UNet2DConditionModel", **unet_config}, indent=2, default=list))

    vae_config = {"image_key": "fbank", "subband": 1, "embed_dim": 8, "time_shuffle": 1, "ddconfig": TINY_DDCONFIG,
                  "scale_factor": TINY_SCALE_FACTOR}
    stft_config = {"filter_length": 1024, "hop_length": 160, "win_length": 1024, "n_mel_channels": 64,
                   "sampling_rate": 16000, "mel_fmin": 0, "mel_fmax": 8000}
    main_config = {"text_encoder_name": str(directory / "text_encoder"),
                   "scheduler_name": "stabilityai/stable-diffusion-2-1",
                   "unet_model_config_path": "configs/diffusion_model_config.json",
                   "snr_gamma": None, "freeze_text_encoder": True, "uncondition": False}
    for name, config in (("vae", vae_config), ("stft", stft_config), ("main", main_config)):
        (directory / f"{name}_config.json").write_text(json.dumps(config, indent=2))

    vae_state = ldm_vae_state_dict(TINY_DDCONFIG, vae_config["embed_dim"], generator)
    vae_state.update({f"vocoder.{k}": v for k, v in hifigan_state_dict(tiny_vocoder_config(), generator).items()})
    # Tango's STFT module: the Fourier bases (not used by the converter) and librosa's mel filters.
    stft_state = {"mel_basis": torch.from_numpy(mel_filters().T.copy()),
                  "stft_fn.forward_basis": torch.randn(1026, 1, 1024, generator=generator),
                  "stft_fn.inverse_basis": torch.randn(1026, 1, 1024, generator=generator)}
    main_state = {f"text_encoder.{k}": v for k, v in text_encoder.state_dict().items()}
    main_state.update({f"unet.{k}": v for k, v in unet.state_dict().items()})
    for name, state in (("vae", vae_state), ("stft", stft_state), ("main", main_state)):
        torch.save({k: v.contiguous() for k, v in state.items()}, directory / f"pytorch_model_{name}.bin")
    return directory
