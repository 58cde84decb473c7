"""Fuse an `mmpref train` LoRA into its base and save the result as a pipeline directory (`mmpref fuse`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mmpref.errors import UserError

RECORD = "mmpref_fused.json"  # beside model_index.json: which base, LoRA (content hash) and scale made it


def fuse_to_pipeline(lora: str, out: str, *, base: str | None = None, scale: float = 1.0,
                     dtype: str = "float32") -> Path:
    """Write base + LoRA (fused in float32, adapters unloaded, saved as `dtype`) to `out` in diffusers' format,
    atomically: a killed run leaves no half-written pipeline behind under `out`."""
    import torch

    from mmpref.evaluation.audio import is_audio_model
    from mmpref.evaluation.engine import EvalModel, describe_model
    from mmpref.pipelines.lora import model_fingerprint

    target = Path(out).expanduser()
    if target.exists():
        raise UserError(f"--out {out} exists; give a new folder (a fused pipeline is never written over another).")
    if base is None and not (Path(lora).expanduser() / "config.yaml").is_file():
        raise UserError(f"{lora} has no config.yaml naming its base (not an `mmpref train` output?); give the base "
                        "pipeline with --base.")
    model = EvalModel("lora", lora, base=base)
    info = describe_model(model)
    if info["kind"] != "lora":
        raise UserError(f"{lora} is not a LoRA output (no pytorch_lora_weights.safetensors); nothing to fuse.")
    cpu = torch.device("cpu")
    if is_audio_model(model):
        from mmpref.pipelines.audio_sampler import AudioModelConfig, load_audio_pipeline

        config = AudioModelConfig(path=info["base"], lora=info["path"], lora_scale=scale)
        pipe = load_audio_pipeline(config, cpu)
    else:
        from mmpref.pipelines.image_sampler import ImageModelConfig, load_diffusers_pipeline

        config = ImageModelConfig(path=info["base"], lora=info["path"], lora_scale=scale)
        pipe = load_diffusers_pipeline(config, cpu)
    pipe.unload_lora_weights()  # the fused weights stay; the LoRA layers go
    pipe.to(dtype=getattr(torch, dtype))
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # what a killed run left
    target.parent.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(str(partial), safe_serialization=True)
    (partial / RECORD).write_text(json.dumps({**model_fingerprint(config), "saved_dtype": dtype}, indent=2) + "\n")
    partial.rename(target)
    return target
