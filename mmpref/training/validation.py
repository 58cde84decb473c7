"""Validation: fixed prompts × fixed seeds sampled with the current weights, written by the adapter
(images: a grid PNG; audio: WAVs plus a mel-spectrogram grid) into the run folder and sent to the trackers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def make_grid(images: Sequence[Image.Image], rows: int, cols: int) -> Image.Image:
    """Paste `rows × cols` images (row-major) into one image."""
    w, h = images[0].size
    grid = Image.new("RGB", (cols * w, rows * h))
    for i, image in enumerate(images):
        grid.paste(image.convert("RGB"), ((i % cols) * w, (i // cols) * h))
    return grid


def log_grid(accelerator: Any, grid: Image.Image, step: int, tag: str = "validation") -> None:
    """Send the grid to every active tracker that takes images."""
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images({tag: np.asarray(grid)[None]}, step=step, dataformats="NHWC")
        elif tracker.name == "wandb":
            tracker.log_images({tag: [grid]}, step=step)


def log_audio(accelerator: Any, clips: Sequence[tuple[str, Any]], sample_rate: int, step: int,
              tag: str = "validation_audio") -> None:
    """Send (caption, mono waveform) clips to every active tracker that takes audio."""
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            for i, (caption, clip) in enumerate(clips):
                wave = np.clip(np.asarray(clip, dtype=np.float32).reshape(1, -1), -1.0, 1.0)
                tracker.writer.add_audio(f"{tag}/{i:02d}", wave, global_step=step, sample_rate=sample_rate)
                tracker.writer.add_text(f"{tag}/{i:02d}", caption, global_step=step)
        elif tracker.name == "wandb":
            import wandb

            tracker.log({tag: [wandb.Audio(np.asarray(clip).reshape(-1), sample_rate=sample_rate, caption=caption)
                               for caption, clip in clips]}, step=step)


def run_validation(adapter: Any, settings: Any, accelerator: Any, folder: Path, step: int) -> Path | None:
    """Sample on the main process (others wait); return the written file there. Adapters with a
    `log_validation(accelerator, samples, prompts, seeds, step)` method also send their own media (audio)."""
    path = None
    if accelerator.is_main_process:
        samples = adapter.sample(
            settings.prompts, settings.seeds, steps=settings.steps, guidance_scale=settings.guidance_scale,
            resolution=settings.resolution,
        )
        path, picture = adapter.save_validation(samples, settings.prompts, settings.seeds, folder, step)
        if picture is not None:
            log_grid(accelerator, picture, step)
        if hasattr(adapter, "log_validation"):
            adapter.log_validation(accelerator, samples, settings.prompts, settings.seeds, step)
    accelerator.wait_for_everyone()
    return path
