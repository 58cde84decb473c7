"""Sample any diffusers text-to-image pipeline in batches across prompts, one generator per image.

Each image gets its own CPU `torch.Generator` seeded with its recorded seed, so its initial noise
depends on that seed alone (and is the same on CPU and GPU, as diffusers draws CPU-generator noise on
the CPU). Non-finite latents are caught per image during denoising, and a batch that raises is
retried image by image, so one bad sample is recorded and the rest of the batch is kept.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
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
class ImageModelConfig:
    """The model being aligned: any pipeline `DiffusionPipeline.from_pretrained` loads."""

    path: str = REQUIRED  # a diffusers pipeline directory or hub id (e.g. stable-diffusion-v1-5/stable-diffusion-v1-5)
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    variant: str | None = None  # weight variant to load, e.g. fp16
    scheduler: str | None = None  # a diffusers scheduler class to swap in, e.g. DPMSolverMultistepScheduler
    lora: str | None = None  # an `mmpref train` LoRA output folder to apply (fused): sample the aligned model
    lora_scale: float = 1.0  # the LoRA's strength when fused

    def check(self) -> None:
        check_lora_setting(self.lora)


@dataclass
class ImageSamplingConfig:
    """How each prompt is sampled; every field except seed and samples_per_prompt goes to the pipeline call."""

    samples_per_prompt: int = 4  # images per prompt (the candidates a pair is chosen from)
    seed: int = 0  # global seed; sample seeds derive from (seed, prompt index, sample index)
    steps: int = 30  # num_inference_steps
    guidance_scale: float = 7.5
    height: int | None = None  # null: the pipeline's default resolution
    width: int | None = None
    negative_prompt: str | None = None
    pipeline_kwargs: dict[str, Any] = field(default_factory=dict)  # extra call arguments, e.g. {eta: 0.0}

    def check(self) -> None:
        if self.samples_per_prompt < 2:
            raise ValueError("sampling.samples_per_prompt must be at least 2 (a pair needs two samples).")
        if self.steps < 1:
            raise ValueError("sampling.steps must be at least 1.")
        for key in ("height", "width"):
            value = getattr(self, key)
            if value is not None and (value < 8 or value % 8):
                raise ValueError(f"sampling.{key} must be a multiple of 8 (got {value}).")
        reserved = {"prompt", "generator", "num_inference_steps", "output_type", "num_images_per_prompt"}
        clash = sorted(reserved & set(self.pipeline_kwargs))
        if clash:
            raise ValueError(f"sampling.pipeline_kwargs: {', '.join(clash)} are set by mmpref; remove them.")


def load_diffusers_pipeline(model: ImageModelConfig, device: torch.device) -> Any:
    """`DiffusionPipeline.from_pretrained` with the config's dtype, variant and scheduler, on `device`."""
    import diffusers

    try:
        pipe = diffusers.DiffusionPipeline.from_pretrained(model.path, variant=model.variant,
                                                           **from_pretrained_dtype(model.dtype))
    except (OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"model.path: cannot load a diffusers pipeline from '{model.path}': {first} "
                        "Give a pipeline directory (with model_index.json) or a hub id when online.") from None
    if model.scheduler:
        swap_scheduler(pipe, model.scheduler)
    if model.lora:
        fuse_lora_into(pipe, model.lora, model.lora_scale, what="model.lora", base=model.path)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


class DiffusersImageSampler:
    """Sampler for diffusers text-to-image pipelines (SD 1.x/2.x, SDXL, PixArt, SD3, ...)."""

    modality = "image"

    def __init__(self, model: ImageModelConfig, sampling: ImageSamplingConfig, device: torch.device,
                 pipeline: Any = None) -> None:
        self.sampling = sampling
        self.pipe = pipeline if pipeline is not None else load_diffusers_pipeline(model, device)
        self._accepts = set(inspect.signature(self.pipe.__call__).parameters)
        if not {"prompt", "generator"} <= self._accepts:
            raise UserError(f"model.path: {type(self.pipe).__name__} is not a text-to-image pipeline (its call "
                            "takes no `prompt`/`generator`); use a text-to-image model.")
        wanted = {"guidance_scale": sampling.guidance_scale, **sampling.pipeline_kwargs}
        for key in ("height", "width", "negative_prompt"):
            if getattr(sampling, key) is not None:
                wanted[key] = getattr(sampling, key)
        unknown = sorted(set(wanted) - self._accepts)
        if unknown:
            raise ConfigError(f"sampling: {type(self.pipe).__name__} does not take {', '.join(unknown)}; "
                              "remove them from the config.")
        self._call_kwargs = wanted

    def sample(self, requests: Sequence[SampleRequest]) -> list[SampleResult]:
        return isolate_failures(self._sample_batch, requests)

    def _sample_batch(self, requests: Sequence[SampleRequest]) -> list[SampleResult]:
        generators = [torch.Generator("cpu").manual_seed(r.seed) for r in requests]
        first_bad_step: list[int | None] = [None] * len(requests)
        kwargs = dict(self._call_kwargs)
        if "negative_prompt" in kwargs:
            kwargs["negative_prompt"] = [kwargs["negative_prompt"]] * len(requests)
        if "callback_on_step_end" in self._accepts:

            def watch(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                latents = tensors.get("latents")
                if latents is not None:
                    finite = torch.isfinite(latents.reshape(latents.shape[0], -1)).all(dim=1).tolist()
                    for i, ok in enumerate(finite[: len(requests)]):
                        if not ok and first_bad_step[i] is None:
                            first_bad_step[i] = step
                return tensors

            kwargs["callback_on_step_end"] = watch
            kwargs["callback_on_step_end_tensor_inputs"] = ["latents"]
        with torch.no_grad():
            out = self.pipe(prompt=[r.condition for r in requests], generator=generators,
                            num_inference_steps=self.sampling.steps, output_type="np", **kwargs)
        images = np.asarray(out.images if isinstance(out.images, np.ndarray) else [np.asarray(i) for i in out.images])
        flagged = getattr(out, "nsfw_content_detected", None) or [False] * len(requests)
        results = []
        for i, request in enumerate(requests):
            image = images[i]
            if first_bad_step[i] is not None:
                results.append(SampleResult(request, None, f"non-finite latents at denoising step "
                                                      f"{first_bad_step[i] + 1}/{self.sampling.steps}"))
            elif image.dtype != np.uint8 and not np.isfinite(image).all():
                results.append(SampleResult(request, None, "non-finite pixels after decoding"))
            elif flagged[i]:
                results.append(SampleResult(request, None, "the pipeline's safety checker blacked the image out"))
            else:
                results.append(SampleResult(request, to_uint8(image)))
        return results


def to_uint8(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 from diffusers' float output in [0, 1], rounded as diffusers' numpy_to_pil does."""
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)
