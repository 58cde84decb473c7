"""Convert a Tango / Tango 2 checkpoint (the layout declare-lab publishes) into a `TangoPipeline` directory.

    python -m mmpref.audio.convert_tango declare-lab/tango2 models/tango2        # hub id (downloads)
    python -m mmpref.audio.convert_tango ./tango2-checkpoint models/tango2      # local folder

The published layout is three JSON configs and three plain torch state dicts:

- `main_config.json` + `pytorch_model_main.bin`: `text_encoder.*` (a T5 encoder; `text_encoder_name` names
  its config and tokenizer, google/flan-t5-large) and `unet.*` (already diffusers' UNet2DConditionModel
  names; `unet_model_config_path` names its config, a file of the Tango repository whose values are
  built in here), `scheduler_name` (SD 2.1's scheduler, v-prediction).
- `vae_config.json` + `pytorch_model_vae.bin`: the original latent-diffusion AutoencoderKL (`ddconfig`,
  `embed_dim`, `scale_factor`), mapped onto diffusers' `AutoencoderKL` the way diffusers' AudioLDM
  conversion maps `first_stage_model.*`, plus the HiFi-GAN vocoder under `vocoder.*`, mapped onto
  transformers' `SpeechT5HifiGan` (`ups.{i}` → `upsampler.{i}`, mean 0, scale 1, no normalisation).
- `stft_config.json` + `pytorch_model_stft.bin`: the mel front end; checked against `mmpref.audio.mel`
  (settings equal, `mel_basis` within 1e-4 of our Slaney filters), not stored.

State dicts load with `torch.load(weights_only=True)` (tensors only, no pickled code); every tensor
must land somewhere, so a layout change fails loudly instead of leaving random weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mmpref.errors import UserError

# The Tango repository's configs/diffusion_model_config.json (Tango, Tango 2 and Tango-full-ft use it).
TANGO_UNET_CONFIG: dict[str, Any] = {
    "act_fn": "silu", "attention_head_dim": [5, 10, 20, 20], "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
    "in_channels": 8, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
    "num_class_embeds": None, "only_cross_attention": False, "out_channels": 8, "sample_size": [32, 2],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "use_linear_projection": True, "upcast_attention": True,
}
# stabilityai/stable-diffusion-2-1's scheduler config (Tango's `scheduler_name`); Tango samples with DDPM.
SD21_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "clip_sample": False, "prediction_type": "v_prediction", "set_alpha_to_one": False, "steps_offset": 1,
}
SD21_NAMES = ("stabilityai/stable-diffusion-2-1", "stabilityai/stable-diffusion-2-1-base")
# Tango's HiFi-GAN (AudioLDM's 16 kHz, 64-mel generator).
TANGO_VOCODER: dict[str, Any] = {
    "model_in_dim": 64, "sampling_rate": 16000, "upsample_initial_channel": 1024, "upsample_rates": [5, 4, 2, 2, 2],
    "upsample_kernel_sizes": [16, 16, 8, 4, 4], "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "normalize_before": False,
}
LDM_NORM_GROUPS = 32  # the original VAE's GroupNorm(32) is hard-coded, not in its config
FILES = ("vae_config.json", "stft_config.json", "main_config.json",
         "pytorch_model_vae.bin", "pytorch_model_stft.bin", "pytorch_model_main.bin")


# ---- state-dict mappings ---------------------------------------------------------------------------------
def _resnet_names(old: str, new: str) -> dict[str, str]:
    names = {f"{old}.{p}": f"{new}.{p}" for p in ("norm1", "conv1", "norm2", "conv2")}
    names[f"{old}.nin_shortcut"] = f"{new}.conv_shortcut"
    return names


def _mid_names(side: str) -> dict[str, str]:
    names = {**_resnet_names(f"{side}.mid.block_1", f"{side}.mid_block.resnets.0"),
             **_resnet_names(f"{side}.mid.block_2", f"{side}.mid_block.resnets.1")}
    attn, new = f"{side}.mid.attn_1", f"{side}.mid_block.attentions.0"
    names.update({f"{attn}.norm": f"{new}.group_norm", f"{attn}.q": f"{new}.to_q", f"{attn}.k": f"{new}.to_k",
                  f"{attn}.v": f"{new}.to_v", f"{attn}.proj_out": f"{new}.to_out.0"})
    return names


def ldm_vae_module_names(levels: int, res_blocks: int) -> dict[str, str]:
    """Original latent-diffusion VAE module name → diffusers AutoencoderKL module name."""
    names = {"quant_conv": "quant_conv", "post_quant_conv": "post_quant_conv"}
    for side in ("encoder", "decoder"):
        names.update({f"{side}.conv_in": f"{side}.conv_in", f"{side}.conv_out": f"{side}.conv_out",
                      f"{side}.norm_out": f"{side}.conv_norm_out", **_mid_names(side)})
    for i in range(levels):
        for j in range(res_blocks):
            names.update(_resnet_names(f"encoder.down.{i}.block.{j}", f"encoder.down_blocks.{i}.resnets.{j}"))
        names[f"encoder.down.{i}.downsample.conv"] = f"encoder.down_blocks.{i}.downsamplers.0.conv"
        k = levels - 1 - i  # the decoder's up.{levels-1} runs first: diffusers' up_blocks.0
        for j in range(res_blocks + 1):
            names.update(_resnet_names(f"decoder.up.{i}.block.{j}", f"decoder.up_blocks.{k}.resnets.{j}"))
        names[f"decoder.up.{i}.upsample.conv"] = f"decoder.up_blocks.{k}.upsamplers.0.conv"
    return names


def convert_ldm_vae(state: dict[str, Any], levels: int, res_blocks: int) -> dict[str, Any]:
    """Original VAE tensors (without `vocoder.*`) → diffusers AutoencoderKL tensors; attention 1×1 convs
    become linear weights. Raises UserError on a tensor that has no place."""
    names = ldm_vae_module_names(levels, res_blocks)
    out: dict[str, Any] = {}
    unplaced = []
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module not in names:
            unplaced.append(key)
            continue
        new = names[module]
        if ".mid_block.attentions.0.to_" in new and param == "weight" and value.ndim == 4:
            value = value[:, :, 0, 0]
        out[f"{new}.{param}"] = value
    if unplaced:
        raise UserError(f"pytorch_model_vae.bin: {len(unplaced)} tensors of no known VAE layer, e.g. {unplaced[:3]}")
    return out


def _fold_weight_norm(state: dict[str, Any]) -> dict[str, Any]:
    """w = g·v/‖v‖ (norm over all but dim 0) for weight-normed layers; plain weights pass through."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        for g_key, v_key in ((".weight_g", ".weight_v"), (".parametrizations.weight.original0",
                                                          ".parametrizations.weight.original1")):
            if key.endswith(g_key):
                base = key[: -len(g_key)]
                v = state[base + v_key]
                norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.ndim - 1)))
                out[base + ".weight"] = value * v / norm
                break
            if key.endswith(v_key):
                break
        else:
            out[key] = value
    return out


def convert_hifigan(state: dict[str, Any], model_in_dim: int) -> dict[str, Any]:
    """HiFi-GAN generator tensors → SpeechT5HifiGan tensors (`ups.{i}` → `upsampler.{i}`, mean 0, scale 1)."""
    import torch

    out = {}
    for key, value in _fold_weight_norm(state).items():
        out["upsampler." + key[len("ups."):] if key.startswith("ups.") else key] = value
    out["mean"] = torch.zeros(model_in_dim)
    out["scale"] = torch.ones(model_in_dim)
    return out


def _load_strict(module: Any, state: dict[str, Any], what: str, allow_missing: tuple[str, ...] = ()) -> None:
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in allow_missing]
    if missing or result.unexpected_keys:
        raise UserError(f"{what}: the checkpoint does not match the model (missing {missing[:3]}, "
                        f"unexpected {list(result.unexpected_keys)[:3]}); is this a Tango checkpoint?")


# ---- the conversion -----------------------------------------------------------------------------------------
def _source_dir(source: str) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists() or source.startswith((".", "/", "~")):
        raise UserError(f"{source}: not a folder with a Tango checkpoint.")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=source, allow_patterns=["*.json", "*.bin"]))
    except Exception as err:
        raise UserError(f"{source}: not a local folder, and downloading it from the hub failed ({err}).") from None


def _torch_load(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"{path}: cannot load as a tensors-only state dict ({type(err).__name__}: {err}).") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def _unet_config(src: Path, main_config: dict[str, Any], override: str | None) -> dict[str, Any]:
    from diffusers import UNet2DConditionModel

    if override:
        return dict(UNet2DConditionModel.load_config(override))
    given = main_config.get("unet_model_config_path")
    if given:
        for candidate in (Path(given), src / given):
            if candidate.is_file():
                return dict(UNet2DConditionModel.load_config(str(candidate)))
        if Path(given).name == "diffusion_model_config.json":
            return dict(TANGO_UNET_CONFIG)
        raise UserError(f"main_config.json names the UNet config {given!r}, which is not here; pass --unet-config.")
    if main_config.get("unet_model_name"):
        raise UserError("this checkpoint's UNet was initialised from a Stable Diffusion model with extra group_in/"
                        "group_out layers, which TangoPipeline does not have.")
    return dict(TANGO_UNET_CONFIG)


def _scheduler(name: str | None) -> Any:
    from diffusers import DDPMScheduler

    if not name or name in SD21_NAMES:
        return DDPMScheduler.from_config(SD21_SCHEDULER)
    return DDPMScheduler.from_pretrained(name, subfolder="scheduler")


def check_mel_front_end(stft_config: dict[str, Any], stft_state: dict[str, Any]) -> float:
    """Raise UserError when the checkpoint's mel settings are not `mmpref.audio.mel`'s; return the
    largest difference between its `mel_basis` and our filters (0 when it has none)."""
    from mmpref.audio import mel

    expected = {"filter_length": mel.N_FFT, "hop_length": mel.HOP_LENGTH, "win_length": mel.WIN_LENGTH,
                "n_mel_channels": mel.N_MELS, "sampling_rate": mel.SAMPLE_RATE, "mel_fmin": mel.F_MIN,
                "mel_fmax": mel.F_MAX}
    wrong = {k: (stft_config.get(k), v) for k, v in expected.items() if k in stft_config and stft_config[k] != v}
    if wrong:
        raise UserError(f"stft_config.json: mel settings {wrong} (found, expected) differ from Tango's; "
                        "mmpref.audio.mel implements Tango's front end only.")
    basis = stft_state.get("mel_basis")
    if basis is None:
        return 0.0
    import numpy as np

    diff = float(np.abs(basis.float().numpy() - mel.mel_filters().T).max())
    if diff > 1e-4:
        raise UserError(f"pytorch_model_stft.bin: mel_basis differs from the Slaney filters by {diff:.2e}.")
    return diff


def convert_tango(source: str | Path, dest: str | Path, *, text_encoder: str | None = None,
                  unet_config: str | None = None, audio_length_in_s: float | None = None,
                  log: Any = print) -> Path:
    """Convert the checkpoint at `source` (folder or hub id) into a TangoPipeline directory at `dest`."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import AutoConfig, AutoTokenizer, SpeechT5HifiGan, SpeechT5HifiGanConfig, T5EncoderModel

    from mmpref.audio.mel import TANGO_DURATION
    from mmpref.audio.pipeline import TangoPipeline

    src = _source_dir(str(source))
    missing = [f for f in FILES if not (src / f).exists()]
    if missing:
        raise UserError(f"{src}: not a Tango checkpoint (missing {', '.join(missing)}).")
    vae_config, stft_config, main_config = (json.loads((src / f"{n}_config.json").read_text())
                                            for n in ("vae", "stft", "main"))

    # Mel front end: only checked.
    diff = check_mel_front_end(stft_config, _torch_load(src / "pytorch_model_stft.bin"))

    # VAE and vocoder.
    dd = vae_config.get("ddconfig", vae_config)
    embed_dim = int(vae_config.get("embed_dim", dd["z_channels"]))
    if embed_dim != dd["z_channels"] or not dd.get("double_z", True):
        raise UserError(f"vae_config.json: embed_dim {embed_dim} != z_channels {dd['z_channels']} (or double_z off); "
                        "diffusers' AutoencoderKL needs them equal.")
    if int(vae_config.get("subband", 1)) != 1:
        raise UserError("vae_config.json: subband decomposition is not supported.")
    levels, blocks = len(dd["ch_mult"]), int(dd["num_res_blocks"])
    vae = AutoencoderKL(
        in_channels=int(dd["in_channels"]), out_channels=int(dd["out_ch"]),
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(int(dd["ch"]) * m for m in dd["ch_mult"]), layers_per_block=blocks,
        latent_channels=int(dd["z_channels"]), norm_num_groups=LDM_NORM_GROUPS,
        sample_size=int(dd.get("resolution", 256)), scaling_factor=float(vae_config.get("scale_factor", 1.0)),
    )
    vae_state = _torch_load(src / "pytorch_model_vae.bin")
    vocoder_state = {k[len("vocoder."):]: v for k, v in vae_state.items() if k.startswith("vocoder.")}
    _load_strict(vae, convert_ldm_vae({k: v for k, v in vae_state.items() if not k.startswith("vocoder.")},
                                      levels, blocks), "pytorch_model_vae.bin (VAE)")
    vocoder_config = SpeechT5HifiGanConfig(**TANGO_VOCODER)
    if vocoder_config.model_in_dim != stft_config.get("n_mel_channels", vocoder_config.model_in_dim):
        raise UserError("the vocoder's mel bands differ from stft_config.json's n_mel_channels")
    if "conv_pre.weight" in vocoder_state:  # geometry from the tensors (tiny test checkpoints differ from Tango's)
        vocoder_config.upsample_initial_channel = int(vocoder_state["conv_pre.weight"].shape[0])
    vocoder = SpeechT5HifiGan(vocoder_config)
    _load_strict(vocoder, convert_hifigan(vocoder_state, vocoder_config.model_in_dim), "pytorch_model_vae.bin (vocoder.*)")

    # Text encoder, tokenizer, UNet.
    main_state = _torch_load(src / "pytorch_model_main.bin")
    others = sorted({k.split(".")[0] for k in main_state} - {"text_encoder", "unet"})
    if others:
        raise UserError(f"pytorch_model_main.bin: unexpected parts {others}; expected text_encoder.* and unet.*")
    name = text_encoder or main_config.get("text_encoder_name") or "google/flan-t5-large"
    try:
        t5_config = AutoConfig.from_pretrained(name)
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise UserError(f"text encoder {name!r}: cannot load its config and tokenizer ({str(err).splitlines()[0]}); "
                        "download it once or pass --text-encoder PATH.") from None
    encoder = T5EncoderModel(t5_config)
    _load_strict(encoder, {k[len("text_encoder."):]: v for k, v in main_state.items() if k.startswith("text_encoder.")},
                 "pytorch_model_main.bin (text_encoder.*)", allow_missing=("encoder.embed_tokens.weight",))
    unet = UNet2DConditionModel.from_config(_unet_config(src, main_config, unet_config))
    _load_strict(unet, {k[len("unet."):]: v for k, v in main_state.items() if k.startswith("unet.")},
                 "pytorch_model_main.bin (unet.*)")
    if unet.config.cross_attention_dim != t5_config.d_model:
        raise UserError(f"UNet cross-attention {unet.config.cross_attention_dim} != text encoder width {t5_config.d_model}")

    pipe = TangoPipeline(vae=vae.eval(), text_encoder=encoder.eval(), tokenizer=tokenizer, unet=unet.eval(),
                         scheduler=_scheduler(main_config.get("scheduler_name")), vocoder=vocoder.eval(),
                         default_audio_length_in_s=audio_length_in_s or TANGO_DURATION)
    if pipe.hop_length != stft_config.get("hop_length", pipe.hop_length):
        raise UserError(f"vocoder up-sampling {pipe.hop_length} != stft hop_length {stft_config['hop_length']}")
    dest = Path(dest)
    pipe.save_pretrained(str(dest), safe_serialization=True)
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in
              (("unet", unet), ("text_encoder", encoder), ("vae", vae), ("vocoder", vocoder))}
    log(f"converted {src} -> {dest}: " + ", ".join(f"{n} {c / 1e6:.1f}M" for n, c in params.items())
        + f"; VAE scaling factor {vae.config.scaling_factor}; mel_basis matches (max diff {diff:.1e}); "
        f"load with mmpref.audio.pipeline.TangoPipeline.from_pretrained('{dest}')")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mmpref.audio.convert_tango",
        description="Convert a Tango / Tango 2 checkpoint (vae/stft/main configs and pytorch_model_*.bin) into a "
                    "TangoPipeline directory (diffusers layout, safetensors) for model.adapter: text_to_audio.")
    parser.add_argument("source", help="checkpoint folder or hub id (declare-lab/tango2, declare-lab/tango-full-ft, ...)")
    parser.add_argument("dest", help="output pipeline directory")
    parser.add_argument("--text-encoder", default=None,
                        help="config and tokenizer of the T5 encoder (default: main_config's text_encoder_name)")
    parser.add_argument("--unet-config", default=None, help="UNet config JSON (default: Tango's built in)")
    parser.add_argument("--audio-length", type=float, default=None, help="default clip length in s (10.24)")
    args = parser.parse_args(argv)
    try:
        convert_tango(args.source, args.dest, text_encoder=args.text_encoder, unet_config=args.unet_config,
                      audio_length_in_s=args.audio_length)
    except UserError as err:
        print(f"convert_tango: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
