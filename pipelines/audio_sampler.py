"""Sample a text-to-audio diffusion pipeline (Tango / Tango 2's `TangoPipeline`, or diffusers' AudioLDM-style
pipelines) in batches across prompts, one CPU generator per clip, per-clip denoising steps.

Each clip's initial noise comes from its own `torch.Generator("cpu")` seeded with its recorded seed, so it
depends on that seed alone. Requests are grouped by their number of denoising steps (Audio-Alpaca's
strategy 1.1 samples one prompt at 5, 25, 50 and 100 steps) and each group runs as one pipeline call; a
group that raises is retried clip by clip, and a clip with non-finite samples is recorded as a failure.
Waveforms come back as float32 mono arrays at the pipeline's rate (`sample_rate`).
"""

from __future__ import annotations

import inspect
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mmpref.config import REQUIRED
from mmpref.errors import ConfigError, UserError
from mmpref.pipelines.lora import check_lora_setting, fuse_lora_into
from mmpref.pipelines.sampling import (
    SampleRequest,
    SampleResult,
    from_pretrained_dtype,
    isolate_failures,
    swap_scheduler,
)


@dataclass
class AudioModelConfig:
    """The model being aligned: a TangoPipeline directory (`python -m mmpref.audio.convert_tango` writes one
    from Tango's checkpoints) or any diffusers text-to-audio pipeline with `audio_length_in_s`."""

    path: str = REQUIRED  # pipeline directory (model_index.json) or hub id
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    variant: str | None = None  # weight variant to load, e.g. fp16
    scheduler: str | None = None  # a diffusers scheduler class to swap in, e.g. DDIMScheduler
    lora: str | None = None  # an `mmpref train` LoRA output folder to apply (fused): sample the aligned model
    lora_scale: float = 1.0  # the LoRA's strength when fused

    def check(self) -> None:
        check_lora_setting(self.lora)


@dataclass
class AudioSamplingConfig:
    """Pipeline call settings shared by every clip (steps may be overridden per clip by a strategy)."""

    seed: int = 0  # global seed; clip seeds derive from (seed, prompt index, sample index)
    steps: int = 100  # num_inference_steps when a strategy gives none (Tango: 100-200)
    guidance_scale: float = 3.0  # Tango's classifier-free guidance
    audio_length_in_s: float | None = None  # null: the pipeline's default (Tango: 10.24 s)
    negative_prompt: str | None = None
    pipeline_kwargs: dict[str, Any] = field(default_factory=dict)  # extra call arguments, e.g. {eta: 0.0}

    def check(self) -> None:
        if self.steps < 1:
            raise ValueError("sampling.steps must be at least 1.")
        if self.audio_length_in_s is not None and not self.audio_length_in_s > 0:
            raise ValueError("sampling.audio_length_in_s must be positive (or null for the pipeline's default).")
        reserved = {"prompt", "generator", "num_inference_steps", "output_type", "num_waveforms_per_prompt",
                    "audio_length_in_s", "guidance_scale", "negative_prompt"}
        clash = sorted(reserved & set(self.pipeline_kwargs))
        if clash:
            raise ValueError(f"sampling.pipeline_kwargs: {', '.join(clash)} are set by mmpref; remove them.")


def load_audio_pipeline(model: AudioModelConfig, device: torch.device) -> Any:
    """A TangoPipeline (when model_index.json names it) or `DiffusionPipeline.from_pretrained`, on `device`."""
    import diffusers

    index = Path(model.path) / "model_index.json"
    cls: Any = diffusers.DiffusionPipeline
    if index.is_file():
        try:
            name = json.loads(index.read_text()).get("_class_name")
        except (OSError, json.JSONDecodeError):
            name = None
        if name == "TangoPipeline":
            from mmpref.audio.pipeline import TangoPipeline

            cls = TangoPipeline
    elif Path(model.path).is_dir() and (Path(model.path) / "main_config.json").is_file():
        raise UserError(f"model.path: {model.path} is a Tango checkpoint in its original layout; convert it once with "
                        f"`python -m mmpref.audio.convert_tango {model.path} {model.path}-diffusers`.")
    try:
        pipe = cls.from_pretrained(model.path, variant=model.variant, **from_pretrained_dtype(model.dtype))
    except (OSError, ValueError, TypeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"model.path: cannot load a text-to-audio pipeline from '{model.path}': {first} Give a "
                        "TangoPipeline directory (mmpref.audio.convert_tango) or a diffusers audio pipeline.") from None
    if model.scheduler:
        swap_scheduler(pipe, model.scheduler)
    if model.lora:
        fuse_lora_into(pipe, model.lora, model.lora_scale, what="model.lora", base=model.path)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def pipeline_sample_rate(pipe: Any) -> int:
    rate = getattr(pipe, "sample_rate", None)
    if rate is None and getattr(pipe, "vocoder", None) is not None:
        rate = getattr(pipe.vocoder.config, "sampling_rate", None)
    if rate is None:
        raise UserError(f"model.path: cannot tell the sample rate of {type(pipe).__name__} (no vocoder config).")
    return int(rate)


class DiffusersAudioSampler:
    """Sampler for text-to-audio pipelines whose call takes prompt, generator and audio_length_in_s."""

    modality = "audio"

    def __init__(self, model: AudioModelConfig, sampling: AudioSamplingConfig, device: torch.device,
                 pipeline: Any = None) -> None:
        self.sampling = sampling
        self.pipe = pipeline if pipeline is not None else load_audio_pipeline(model, device)
        self._accepts = set(inspect.signature(self.pipe.__call__).parameters)
        if not {"prompt", "generator", "audio_length_in_s"} <= self._accepts:
            raise UserError(f"model.path: {type(self.pipe).__name__} is not a text-to-audio pipeline (its call takes no "
                            "`prompt`/`generator`/`audio_length_in_s`).")
        self.sample_rate = pipeline_sample_rate(self.pipe)
        default = getattr(getattr(self.pipe, "config", None), "default_audio_length_in_s", None)
        self.audio_length_in_s = float(sampling.audio_length_in_s or default or 10.24)
        wanted = {"guidance_scale": sampling.guidance_scale, "audio_length_in_s": self.audio_length_in_s,
                  **sampling.pipeline_kwargs}
        unknown = sorted(set(wanted) - self._accepts)
        if unknown:
            raise ConfigError(f"sampling: {type(self.pipe).__name__} does not take {', '.join(unknown)}; "
                              "remove them from the config.")
        self._call_kwargs = wanted
        self.latent_space = self._latent_space()

    def _latent_space(self) -> str | None:
        """The VAE latent space id when the pipeline can return latents and decode them itself (TangoPipeline),
        so each clip's own latents come back with it; None for other pipelines (audio only)."""
        from mmpref.audio.latents import latent_space_id

        pipe = self.pipe
        if not (hasattr(pipe, "decode_latents") and hasattr(pipe, "mel_to_waveform") and "output_type" in self._accepts
                and getattr(pipe, "vae", None) is not None):
            return None
        return latent_space_id(pipe.vae)

    @property
    def num_samples(self) -> int:
        """Samples per clip: the configured length at the pipeline's rate."""
        return int(round(self.audio_length_in_s * self.sample_rate))

    def sample(self, requests: Sequence[SampleRequest]) -> list[SampleResult]:
        by_steps: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            by_steps.setdefault(int(request.steps or self.sampling.steps), []).append(i)
        results: list[SampleResult | None] = [None] * len(requests)
        for steps, positions in by_steps.items():  # insertion order: deterministic for a given request list
            group = [requests[i] for i in positions]
            for i, result in zip(positions, isolate_failures(lambda reqs, s=steps: self._sample_batch(reqs, s), group)):
                results[i] = result
        return results  # type: ignore[return-value]

    def _sample_batch(self, requests: Sequence[SampleRequest], steps: int) -> list[SampleResult]:
        generators = [torch.Generator("cpu").manual_seed(r.seed) for r in requests]
        kwargs = dict(self._call_kwargs)
        if self.sampling.negative_prompt is not None:
            kwargs["negative_prompt"] = [self.sampling.negative_prompt] * len(requests)
        latents = None
        with torch.no_grad():
            out = self.pipe(prompt=[r.condition for r in requests], generator=generators, num_inference_steps=steps,
                            output_type="latent" if self.latent_space else "np", **kwargs)
            audios = out.audios if hasattr(out, "audios") else out[0]
            if self.latent_space:  # decode as the pipeline would, keeping the latents
                latents = audios.float().cpu()
                audios = self.pipe.mel_to_waveform(self.pipe.decode_latents(audios))
        audios = audios.detach().float().cpu().numpy() if isinstance(audios, torch.Tensor) else np.asarray(audios)
        results = []
        for i, request in enumerate(requests):
            wave = np.asarray(audios[i], dtype=np.float32).reshape(-1)[: self.num_samples]
            if not np.isfinite(wave).all():
                results.append(SampleResult(request, None, f"non-finite waveform after {steps} denoising steps"))
            else:
                results.append(SampleResult(request, wave, latents=None if latents is None else latents[i].numpy()))
        return results


def encode_wav(waveform: Any, sample_rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    """WAV bytes (16-bit PCM by default; FLOAT is lossless) of a mono float waveform clipped to [-1, 1].

    Deterministic: the same samples give the same bytes (libsndfile's PEAK chunk, which float WAVs carry with
    a write timestamp, is removed; readers do not need it).
    """
    import soundfile as sf

    buffer = io.BytesIO()
    data = np.clip(np.asarray(waveform, dtype=np.float32).reshape(-1), -1.0, 1.0)
    sf.write(buffer, data, int(sample_rate), format="WAV", subtype=subtype)
    return _drop_wav_chunks(buffer.getvalue(), {b"PEAK"})


def _drop_wav_chunks(wav: bytes, drop: set[bytes]) -> bytes:
    """The RIFF/WAVE file without the chunks named in `drop` (sizes fixed up)."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        return wav
    out, pos = [], 12
    while pos + 8 <= len(wav):
        size = int.from_bytes(wav[pos + 4:pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        if wav[pos:pos + 4] not in drop:
            out.append(wav[pos:end])
        pos = end
    body = b"WAVE" + b"".join(out)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def register_encoder() -> None:
    """Make the writer's per-modality encoder table know audio (16 kHz WAV)."""
    from mmpref.pipelines.writer import ENCODERS

    ENCODERS.setdefault("audio", encode_wav)


register_encoder()
