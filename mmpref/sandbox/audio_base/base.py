"""The audio world's base model: a `TangoPipeline` directory (safetensors) inside the package.

It is built by `scripts/train_audio_base.py`, which exports to `audio_base_path()` and records what it
did (seed, steps, times, vocoder check, held-out accuracy) in `audio_world.json` beside the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmpref.errors import UserError

if TYPE_CHECKING:
    import torch

    from mmpref.audio.pipeline import TangoPipeline

BASE_DIR = Path(__file__).resolve().parents[1] / "assets" / "audio_base"
INFO_FILE = "audio_world.json"
# The sampler the base's accuracy is measured with (also recorded in audio_world.json).
DEFAULT_SAMPLER: dict[str, Any] = {"num_inference_steps": 25, "guidance_scale": 3.0}
BUILD_COMMAND = "nice -n 10 python scripts/train_audio_base.py"


def audio_base_path() -> Path:
    """Directory of the shipped pipeline (model_index.json, unet/, vae/, text_encoder/, vocoder/, ...)."""
    return BASE_DIR


def audio_base_info(path: str | Path | None = None) -> dict[str, Any]:
    """What the training script recorded: seed, training settings, sampler, vocoder check and accuracy."""
    meta = Path(path or BASE_DIR) / INFO_FILE
    return json.loads(meta.read_text()) if meta.exists() else {}


def load_audio_base(
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    path: str | Path | None = None,
) -> TangoPipeline:
    """Load the base with `TangoPipeline.from_pretrained` (offline). Raises UserError when it is not built."""
    import torch
    from diffusers.pipelines import pipeline_utils

    from mmpref.audio.pipeline import TangoPipeline

    root = Path(path or BASE_DIR)
    if not (root / "model_index.json").is_file():
        raise UserError(
            f"the audio world's base model is not at {root}: build it with `{BUILD_COMMAND}` "
            f"(renders the data, trains VAE, vocoder, UNet and text encoder on CPU, exports here; "
            f"`--out DIR` exports elsewhere, then pass that path)"
        )
    dtype_key = "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"  # `dtype` in newer diffusers
    pipe = TangoPipeline.from_pretrained(str(root), local_files_only=True, **{dtype_key: dtype or torch.float32})
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
