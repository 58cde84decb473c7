"""`model.adapter: text_to_audio`: Tango / Tango 2 (and any `TangoPipeline`) through stock diffusers and
transformers classes.

Data: each clip (bytes, path, or a datasets Audio {bytes, path} dict; WAV/FLAC/OGG/MP3 via soundfile) goes
through Tango's front end in the data-loader workers (`mmpref.audio.mel`: 16 kHz, mean removed, peak 0.5,
padded or trimmed to `audio_length_in_s`, log-mel [frames, 64]). Clips that do not decode are counted and
reported by row before training, like undecodable images.

Model space: the mel VAE's latent (a posterior sample × its learned scaling factor, 0.9227914 for Tango:
[8, frames/4, 16]); conditioning: the T5 encoder's states with their attention mask (prompts padded to the
longest in the batch, as Tango does; cached ones to `max_text_length`). The UNet is the trainable module;
the text encoder, VAE and vocoder stay frozen (Tango 2 freezes the text encoder).

Log-likelihoods are the shared diffusion estimate (`mmpref.adapters.diffusion`): the scheduler's target
(v for Tango, `get_velocity`), one timestep and noise per pair shared by both clips and by policy and
reference, error averaged over all latent elements, times −`logp_scale` (½: `objective: {name: dpo,
beta: 2000}` is Tango 2's loss −log σ(−½·2000·[(err_w − err_l) − (ref_w − ref_l)])).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from mmpref.adapters.base import Encoded
from mmpref.adapters.diffusion import DiffusionAdapter, lora_metadata, move_and_cast, weight_files_signature
from mmpref.adapters.prediction import check_timestep_range
from mmpref.config import REQUIRED
from mmpref.errors import UserError
from mmpref.registry import ADAPTERS


@dataclass
class TextToAudioParams:
    pretrained: str = REQUIRED  # TangoPipeline directory or hub id; convert Tango's own checkpoints first: python -m mmpref.audio.convert_tango declare-lab/tango2 DEST
    revision: str | None = None  # hub revision (branch, tag or commit)
    variant: str | None = None  # weight file variant to load, e.g. fp16
    audio_length_in_s: float = 10.24  # clips padded or trimmed to this many seconds (Tango: 10.24 = 1024 mel frames; the audio world: 1.28)
    max_text_length: int = 128  # prompt tokens kept (Tango truncates at T5's 512; captions are far shorter); cached text states are padded to it
    logp_scale: float = 0.5  # logp = −scale·MSE; 0.5 is the ½-factor convention (Tango 2: beta 2000)
    prediction_type: Literal["auto", "epsilon", "v_prediction"] = "auto"  # auto: the scheduler config's (Tango: v_prediction)
    timestep_range: list[float] = field(default_factory=lambda: [0.0, 1.0])  # training t drawn in [low·T, high·T)
    vae_dtype: Literal["weight", "float32"] = "weight"  # precision of the frozen VAE and vocoder (float32 if fp16 overflows)

    def check(self) -> None:
        from mmpref.audio.mel import HOP_LENGTH, SAMPLE_RATE

        samples = self.audio_length_in_s * SAMPLE_RATE
        if not self.audio_length_in_s > 0 or abs(samples - round(samples)) > 1e-6 or round(samples) % HOP_LENGTH:
            raise ValueError(f"audio_length_in_s must be a positive multiple of 0.01 s (one 160-sample mel frame at "
                             f"16 kHz), got {self.audio_length_in_s}")
        if self.max_text_length < 1:
            raise ValueError(f"max_text_length must be >= 1, got {self.max_text_length}")
        if not self.logp_scale > 0:
            raise ValueError(f"logp_scale must be > 0, got {self.logp_scale}")
        check_timestep_range(self.timestep_range)


class TextToAudioAdapter(DiffusionAdapter):
    """Tango-shaped latent diffusion: mel-VAE latents, T5 states + mask, a UNet2DConditionModel denoiser."""

    media = "audio"

    def __init__(self, params: TextToAudioParams) -> None:
        self.params = params
        self.logp_scale = float(params.logp_scale)
        self.unet: Any = None
        self.pipeline: Any = None
        self.device = torch.device("cpu")
        self.weight_dtype = torch.float32

    # ---- loading -------------------------------------------------------------------------------
    def _check_layout(self) -> None:
        root = Path(self.params.pretrained)
        if root.is_dir() and not (root / "model_index.json").exists():
            if (root / "main_config.json").exists():
                raise UserError(
                    f"model.adapter.pretrained: {root} is a Tango checkpoint in its original layout; convert it once "
                    f"with `python -m mmpref.audio.convert_tango {root} {root}-diffusers` and point pretrained there."
                )
            raise UserError(f"model.adapter.pretrained: {root} has no model_index.json (not a TangoPipeline directory).")

    def load(self, device: torch.device, weight_dtype: torch.dtype) -> None:
        from diffusers import DDPMScheduler

        from mmpref.adapters.prediction import DiffusionProcess
        from mmpref.audio.mel import HOP_LENGTH, N_MELS, SAMPLE_RATE, num_frames
        from mmpref.audio.pipeline import TangoPipeline

        p = self.params
        self._check_layout()
        kwargs: dict[str, Any] = {"revision": p.revision, "use_safetensors": True}
        if p.variant:
            kwargs["variant"] = p.variant
        try:
            pipe = TangoPipeline.from_pretrained(p.pretrained, **kwargs)
        except (OSError, ValueError, TypeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(
                f"model.adapter.pretrained: cannot load a TangoPipeline from {p.pretrained} ({first}). Give a "
                "directory written by TangoPipeline.save_pretrained or mmpref.audio.convert_tango (safetensors)."
            ) from None
        geometry = (pipe.sample_rate, pipe.hop_length, pipe.n_mels)
        if geometry != (SAMPLE_RATE, HOP_LENGTH, N_MELS):
            raise UserError(f"model.adapter.pretrained: the vocoder works at (rate, hop, mels) = {geometry}; the audio "
                            f"front end is Tango's {(SAMPLE_RATE, HOP_LENGTH, N_MELS)}.")
        frames = num_frames(p.audio_length_in_s)
        if frames % pipe.frame_multiple:
            raise UserError(
                f"model.adapter.audio_length_in_s: {p.audio_length_in_s} s is {frames} mel frames, not a multiple of "
                f"{pipe.frame_multiple} (VAE × UNet down-sampling); use a multiple of {pipe.frame_multiple / 100:g} s."
            )
        self.device, self.weight_dtype = torch.device(device), weight_dtype
        frozen_dtype = torch.float32 if p.vae_dtype == "float32" else weight_dtype
        # T5 (FLAN-T5 included) overflows in fp16; it stays fp32 then (bf16 is fine).
        text_dtype = torch.float32 if weight_dtype == torch.float16 else weight_dtype
        pipe.text_encoder = move_and_cast(pipe.text_encoder.requires_grad_(False).eval(), self.device, text_dtype)
        pipe.vae = move_and_cast(pipe.vae.requires_grad_(False).eval(), self.device, frozen_dtype)
        pipe.vocoder = move_and_cast(pipe.vocoder.requires_grad_(False).eval(), self.device, frozen_dtype)
        self.unet = pipe.unet.to(self.device).train()
        self.vae = pipe.vae
        self.pipeline = pipe
        self.pipeline.set_progress_bar_config(disable=True)
        self.process = DiffusionProcess(DDPMScheduler.from_config(pipe.scheduler.config), p.prediction_type,
                                        tuple(p.timestep_range))
        if p.prediction_type != "auto":
            pipe.scheduler.register_to_config(prediction_type=p.prediction_type)

    @property
    def trainable(self) -> torch.nn.Module:
        return self.unet

    @trainable.setter
    def trainable(self, module: torch.nn.Module) -> None:
        self.unet = module
        self.pipeline.unet = module

    # ---- data ----------------------------------------------------------------------------------
    @staticmethod
    def check_media(value: Any) -> str | None:
        from mmpref.audio.mel import audio_problem

        return audio_problem(value)

    def media_transform(self) -> Callable[[Sequence[Any], Any], dict[str, torch.Tensor]]:
        from mmpref.audio.mel import prepare_clips

        return functools.partial(prepare_clips, duration=self.params.audio_length_in_s)

    def cache_identity(self) -> dict[str, Any]:
        p = self.params
        identity: dict[str, Any] = {
            "adapter": "text_to_audio", "pretrained": p.pretrained, "revision": p.revision, "variant": p.variant,
            "audio_length_in_s": p.audio_length_in_s, "max_text_length": p.max_text_length, "front_end": "tango-mel-v1",
        }
        if os.path.isdir(p.pretrained):
            identity["pretrained"] = str(Path(p.pretrained).resolve())
            identity["files"] = weight_files_signature(p.pretrained, ["vae", "text_encoder"])
        return identity

    def latent_space(self) -> str:
        """Id of the loaded VAE's latent space: stored sampler latents with this id are trained on as they are."""
        from mmpref.audio.latents import latent_space_id

        return latent_space_id(self.vae)

    def latent_shape(self) -> tuple[int, ...]:
        """(channels, time, mel) of one clip's latents at the configured length."""
        from mmpref.audio.mel import num_frames

        return tuple(self.pipeline.latent_shape(num_frames(self.params.audio_length_in_s)))

    # ---- encoding ------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str], pad_to: int | None = None) -> dict[str, torch.Tensor]:
        """T5 states [B, L, D] and attention mask [B, L] (L: the longest prompt, or `pad_to`)."""
        embeds, mask = self.pipeline.encode_prompt(list(prompts), self.device, max_length=self.params.max_text_length,
                                                   pad_to=pad_to)
        return {"prompt_embeds": embeds, "attention_mask": mask}

    @torch.no_grad()
    def encode_mels(self, mel: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """VAE latents of log-mels [N, 1, frames, 64] (a posterior sample, as Tango 2 trains), scaled, float32."""
        vae = self.vae
        dist = vae.encode(mel.to(self.device, vae.dtype)).latent_dist
        return dist.sample(generator=generator).float() * vae.config.scaling_factor

    def batch_latents(self, batch: dict[str, Any], generator: torch.Generator | None) -> torch.Tensor:
        """[B, G, C, T, F] float32: the batch's latents when it carries them (the sampler's own, stored with the
        data, or the cache's), else the VAE's of its mels [B, G, 1, frames, 64]."""
        if "latents" in batch:
            return batch["latents"].to(self.device, torch.float32)
        mel = batch["mel"]
        flat = self.encode_mels(mel.flatten(0, 1), generator)
        return flat.view(mel.shape[0], mel.shape[1], *flat.shape[1:])

    def encode_for_cache(self, batch: dict[str, Any], generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        out = {"latents": self.batch_latents(batch, generator)}
        out.update(self.encode_prompts(batch["prompt"], pad_to=self.params.max_text_length))
        return {k: v.detach().cpu() for k, v in out.items()}

    def encode(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Encoded:
        latents = self.batch_latents(batch, generator)
        b, g = latents.shape[:2]
        samples = latents.transpose(0, 1).reshape(g * b, *latents.shape[2:])
        text = ({"prompt_embeds": batch["prompt_embeds"], "attention_mask": batch["attention_mask"]}
                if "prompt_embeds" in batch else self.encode_prompts(batch["prompt"]))
        cond = {"prompt_embeds": text["prompt_embeds"].to(self.device, self.weight_dtype).repeat(g, 1, 1),
                "attention_mask": text["attention_mask"].to(self.device).long().repeat(g, 1)}
        return Encoded(samples=samples, cond=cond, group_size=g)

    def denoise(self, module: Callable[..., Any], noisy: torch.Tensor, timesteps: torch.Tensor,
                cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return module(noisy, timesteps, encoder_hidden_states=cond["prompt_embeds"],
                      encoder_attention_mask=cond["attention_mask"], return_dict=False)[0]

    # ---- sampling and outputs -------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, prompts: Sequence[str], seeds: Sequence[int], steps: int = 100, guidance_scale: float = 3.0,
               audio_length_in_s: float | None = None, **_: Any) -> list[Any]:
        """Waveforms (float32 numpy, 16 kHz) for every (prompt, seed), prompt-major, with the current weights."""
        seconds = audio_length_in_s or self.params.audio_length_in_s
        clips: list[Any] = []
        with self.sampling_mode():
            for prompt in prompts:
                generators = [torch.Generator(self.device).manual_seed(int(s)) for s in seeds]
                out = self.pipeline([prompt] * len(seeds), audio_length_in_s=seconds, num_inference_steps=steps,
                                    guidance_scale=guidance_scale, generator=generators,
                                    max_length=self.params.max_text_length)
                clips.extend(list(out.audios))
        return clips

    def save_validation(self, samples: Sequence[Any], prompts: Sequence[str], seeds: Sequence[int], folder: Path,
                        step: int) -> tuple[Path, Any]:
        """WAVs `step-NNNNNN/p{i}-seed{s}.wav` and a picture of their log-mels (rows: prompts, columns: seeds)."""
        from mmpref.audio.mel import SAMPLE_RATE, log_mel, mel_picture, write_wav
        from mmpref.training.validation import make_grid

        clips = folder / f"step-{step:06d}"
        clips.mkdir(parents=True, exist_ok=True)
        names = [f"p{i}-seed{s}" for i in range(len(prompts)) for s in seeds]
        for name, clip in zip(names, samples):
            write_wav(clips / f"{name}.wav", clip, SAMPLE_RATE)
        (clips / "prompts.json").write_text(json.dumps({f"p{i}": p for i, p in enumerate(prompts)}, indent=1))
        mels = [log_mel(clip) for clip in samples]
        top = max(float(m.max()) for m in mels)  # one colour scale for the whole grid
        pictures = [mel_picture(m, vmax=top) for m in mels]
        grid = make_grid(pictures, rows=len(prompts), cols=len(seeds))
        path = folder / f"step-{step:06d}.png"
        grid.save(path)
        return path, grid

    def log_validation(self, accelerator: Any, samples: Sequence[Any], prompts: Sequence[str], seeds: Sequence[int],
                       step: int) -> None:
        """Send the validation clips to the trackers (TensorBoard audio, wandb.Audio)."""
        from mmpref.audio.mel import SAMPLE_RATE
        from mmpref.training.validation import log_audio

        captions = [f"{prompt} (seed {s})" for prompt in prompts for s in seeds]
        log_audio(accelerator, list(zip(captions, samples)), SAMPLE_RATE, step)

    def save_lora(self, output_dir: Path, lora_state_dict: dict[str, torch.Tensor], lora_config: dict[str, Any]) -> Path:
        """`pytorch_lora_weights.safetensors` that `TangoPipeline.load_lora_weights` reads (peft key names,
        for the reason given in the text-to-image adapter's `save_lora`)."""
        from mmpref.audio.pipeline import TangoPipeline

        layers = {k: v.detach().float().cpu() for k, v in lora_state_dict.items()}
        metadata = lora_metadata(lora_config)
        TangoPipeline.save_lora_weights(str(output_dir), unet_lora_layers=layers, unet_lora_adapter_metadata=metadata)
        return Path(output_dir) / "pytorch_lora_weights.safetensors"

    def save_full(self, output_dir: Path, module: torch.nn.Module) -> Path:
        """A complete TangoPipeline directory: the trained UNet plus the original components, freshly loaded."""
        from mmpref.audio.pipeline import TangoPipeline

        p = self.params
        kwargs: dict[str, Any] = {"revision": p.revision, "use_safetensors": True, "unet": module}
        if p.variant:
            kwargs["variant"] = p.variant
        pipe = TangoPipeline.from_pretrained(p.pretrained, **kwargs)
        pipe.save_pretrained(str(output_dir), safe_serialization=True)
        return Path(output_dir)


@ADAPTERS.register(
    "text_to_audio",
    summary="Tango / Tango 2 text-to-audio (mel latent diffusion, T5, HiFi-GAN): Tango 2 DPO and any objective on audio pairs",
    params=TextToAudioParams,
)
def build_text_to_audio(params: TextToAudioParams) -> TextToAudioAdapter:
    """Nothing heavy happens here; the trainer calls `load` when it runs (so --dry-run stays instant)."""
    return TextToAudioAdapter(params)
