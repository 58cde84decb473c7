"""The shipped shapes-world base model: a stock StableDiffusionPipeline directory inside the package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from diffusers import StableDiffusionPipeline

BASE_DIR = Path(__file__).resolve().parents[1] / "assets" / "shapes_base"
# The sampler the base's accuracy is measured with (also recorded in shapes_world.json).
DEFAULT_SAMPLER: dict[str, Any] = {"num_inference_steps": 20, "guidance_scale": 4.0}


def shapes_base_path() -> Path:
    """Directory of the shipped pipeline (model_index.json, unet/, vae/, text_encoder/, ...)."""
    return BASE_DIR


def shapes_base_info(path: str | Path | None = None) -> dict[str, Any]:
    """What the training script recorded: seed, training settings, sampler and measured accuracy."""
    meta = Path(path or BASE_DIR) / "shapes_world.json"
    return json.loads(meta.read_text()) if meta.exists() else {}


def load_shapes_base(
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    path: str | Path | None = None,
) -> StableDiffusionPipeline:
    """Load the base through stock `StableDiffusionPipeline.from_pretrained` (offline, no safety checker)."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.pipelines import pipeline_utils

    dtype_key = (
        "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"
    )  # `dtype` in newer diffusers
    pipe = StableDiffusionPipeline.from_pretrained(
        str(path or BASE_DIR), local_files_only=True, **{dtype_key: dtype or torch.float32}
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
