"""`TangoPipeline`: Tango / Tango 2 text-to-audio as a diffusers `DiffusionPipeline` of stock classes.

| component      | class                                  | Tango                                                  |
|----------------|----------------------------------------|--------------------------------------------------------|
| `tokenizer`    | any transformers tokenizer             | FLAN-T5-Large's                                        |
| `text_encoder` | `T5EncoderModel`                       | FLAN-T5-Large encoder (1024-d), frozen                 |
| `unet`         | `UNet2DConditionModel`                 | 8 channels in/out, cross-attention 1024 with the mask  |
| `vae`          | `AutoencoderKL`                        | log-mel [B, 1, T, 64] ↔ latent [B, 8, T/4, 16], scale 0.9227914 |
| `vocoder`      | `SpeechT5HifiGan`                      | HiFi-GAN, 64 mels → 16 kHz, 160 samples per frame      |
| `scheduler`    | DDPM/DDIM (v-prediction)               | SD 2.1's: scaled-linear 0.00085–0.012, 1000 steps      |

`__call__` follows Tango's sampler: prompts padded to the longest and masked; classifier-free guidance
with the empty prompt's encoding padded (and masked) to the prompt length, unconditional first;
ε/v from the UNet with `encoder_attention_mask`; latents → VAE → log-mel → vocoder → waveform trimmed
to the requested length. Tango's own defaults are 100–200 steps and guidance 3.

Saved with `save_pretrained` and loaded with `TangoPipeline.from_pretrained(path)` (the class must be
named: stock `DiffusionPipeline.from_pretrained` does not know it). LoRA files that the trainer writes
load with `pipe.load_lora_weights(folder)` (diffusers' SD LoRA loader: UNet keys).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from diffusers.loaders import StableDiffusionLoraLoaderMixin
from diffusers.pipelines.pipeline_utils import AudioPipelineOutput
from diffusers.utils.torch_utils import randn_tensor

from mmpref.audio.mel import TANGO_DURATION


class TangoPipeline(DiffusionPipeline, StableDiffusionLoraLoaderMixin):
    """Text → waveform with a Tango-shaped latent diffusion model (see the module docstring)."""

    model_cpu_offload_seq = "text_encoder->unet->vae->vocoder"

    def __init__(self, vae: AutoencoderKL, text_encoder: Any, tokenizer: Any, unet: UNet2DConditionModel,
                 scheduler: Any, vocoder: Any, default_audio_length_in_s: float = TANGO_DURATION) -> None:
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                              scheduler=scheduler, vocoder=vocoder)
        self.register_to_config(default_audio_length_in_s=float(default_audio_length_in_s))

    # ---- geometry ------------------------------------------------------------------------------
    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def sample_rate(self) -> int:
        return int(self.vocoder.config.sampling_rate)

    @property
    def hop_length(self) -> int:
        return int(np.prod(self.vocoder.config.upsample_rates))

    @property
    def n_mels(self) -> int:
        return int(self.vocoder.config.model_in_dim)

    @property
    def frame_multiple(self) -> int:
        """Mel frames must be a multiple of this: VAE down-sampling × UNet down-sampling."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    def latent_shape(self, frames: int) -> tuple[int, int, int]:
        """(channels, time, mel) of the latent of `frames` mel frames."""
        return (int(self.unet.config.in_channels), frames // self.vae_scale_factor, self.n_mels // self.vae_scale_factor)

    # ---- text --------------------------------------------------------------------------------------
    def _encode(self, texts: list[str], device: torch.device, max_length: int | None,
                pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.tokenizer
        limit = max_length or getattr(tok, "model_max_length", None) or 512
        if pad_to is None:
            batch = tok(texts, max_length=limit, padding=True, truncation=True, return_tensors="pt")
        else:
            batch = tok(texts, max_length=pad_to, padding="max_length", truncation=True, return_tensors="pt")
        ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
        if ids.shape[1] == 0:
            raise ValueError("the tokenizer gave no tokens for a prompt; it needs an end-of-sequence post-processor")
        hidden = self.text_encoder(input_ids=ids, attention_mask=mask)[0]
        return hidden, mask

    def encode_prompt(self, prompt: str | list[str], device: torch.device | None = None, num_waveforms_per_prompt: int = 1,
                      do_classifier_free_guidance: bool = False, negative_prompt: str | list[str] | None = None,
                      max_length: int | None = None, pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Text states [B·n, L, D] and attention mask [B·n, L] as Tango computes them.

        Prompts are padded to the longest (or to `pad_to`) and truncated at `max_length` (default: the
        tokenizer's limit). With guidance the unconditional part (the empty or negative prompt, padded to
        the prompt length) comes first: [2·B·n, L, D].
        """
        device = device or self._execution_device
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        embeds, mask = self._encode(prompts, device, max_length, pad_to)
        if do_classifier_free_guidance:
            negatives = [""] * len(prompts) if negative_prompt is None else (
                [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else list(negative_prompt))
            if len(negatives) != len(prompts):
                raise ValueError(f"{len(negatives)} negative prompts for {len(prompts)} prompts")
            neg_embeds, neg_mask = self._encode(negatives, device, max_length, pad_to=embeds.shape[1])
            embeds, mask = torch.cat([neg_embeds, embeds]), torch.cat([neg_mask, mask])
        embeds = embeds.repeat_interleave(num_waveforms_per_prompt, dim=0)
        mask = mask.repeat_interleave(num_waveforms_per_prompt, dim=0)
        return embeds.to(self.unet.dtype), mask

    # ---- latents ↔ audio ----------------------------------------------------------------------------
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents → log-mel [B, 1, T, 64]."""
        vae = self.vae
        return vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample

    def mel_to_waveform(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, 1, T, 64] or [B, T, 64] → waveform [B, ≈T·hop], float32."""
        if mel.ndim == 4:
            mel = mel.squeeze(1)
        return self.vocoder(mel.to(self.vocoder.dtype)).float()

    def prepare_extra_step_kwargs(self, generator: Any, eta: float) -> dict[str, Any]:
        params = set(inspect.signature(self.scheduler.step).parameters)
        extra: dict[str, Any] = {}
        if "eta" in params:
            extra["eta"] = eta
        if "generator" in params:
            extra["generator"] = generator
        return extra

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], audio_length_in_s: float | None = None, num_inference_steps: int = 100,
                 guidance_scale: float = 3.0, negative_prompt: str | list[str] | None = None,
                 num_waveforms_per_prompt: int = 1, eta: float = 0.0,
                 generator: torch.Generator | list[torch.Generator] | None = None, latents: torch.Tensor | None = None,
                 output_type: str = "np", return_dict: bool = True, max_length: int | None = None) -> Any:
        """Waveforms [B·n, samples] at `self.sample_rate` (output_type np or pt), or the latents / log-mels
        (output_type latent / mel). `audio_length_in_s` defaults to the pipeline's configured length."""
        device = self._execution_device
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        seconds = float(audio_length_in_s or self.config.default_audio_length_in_s)
        samples = int(round(seconds * self.sample_rate))
        frames = math.ceil(samples / self.hop_length)
        frames = math.ceil(frames / self.frame_multiple) * self.frame_multiple
        guided = guidance_scale > 1.0
        embeds, mask = self.encode_prompt(prompts, device, num_waveforms_per_prompt, guided, negative_prompt, max_length)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        batch = len(prompts) * num_waveforms_per_prompt
        shape = (batch, *self.latent_shape(frames))
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=self.unet.dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {shape}")
        latents = latents.to(device, self.unet.dtype) * self.scheduler.init_noise_sigma
        extra = self.prepare_extra_step_kwargs(generator, eta)
        for t in self.progress_bar(self.scheduler.timesteps):
            model_in = torch.cat([latents] * 2) if guided else latents
            model_in = self.scheduler.scale_model_input(model_in, t)
            pred = self.unet(model_in, t, encoder_hidden_states=embeds, encoder_attention_mask=mask,
                             return_dict=False)[0]
            if guided:
                uncond, cond = pred.chunk(2)
                pred = uncond + guidance_scale * (cond - uncond)
            latents = self.scheduler.step(pred, t, latents, **extra, return_dict=False)[0]
        self.maybe_free_model_hooks()
        if output_type == "latent":
            audio: Any = latents
        else:
            mel = self.decode_latents(latents)
            if output_type == "mel":
                audio = mel.squeeze(1).float()
            else:
                audio = self.mel_to_waveform(mel)[:, :samples]
                if output_type == "np":
                    audio = audio.cpu().numpy()
        if not return_dict:
            return (audio,)
        return AudioPipelineOutput(audios=audio)
