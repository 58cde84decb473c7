"""Shared pieces of the `mmpref generate` tests (no tests here): tiny models, configs, dataset readers.

Importable by worker and CLI subprocesses too (they get this folder on PYTHONPATH), so the prompt
transform here can be named as "test_generate_support:shout_odd_samples" in any process of a run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from mmpref.registry import REWARD_MODELS

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
POISON = "~"  # the tiny text encoder of `poisoned_model` maps this character to NaN embeddings


def _fragile(pixels: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
    """Mean redness; raises on prompts containing 'explode' (a scorer error to be recorded)."""
    if any("explode" in p for p in prompts):
        raise ValueError("cannot score an exploding prompt")
    return pixels[:, 0].mean(dim=(1, 2)) - pixels[:, 1:].mean(dim=(1, 2, 3))


def register_fragile_scorer(monkeypatch) -> str:
    """Register `_fragile` as a reward model for one test (the registry is restored afterwards, so the
    README's component table, which lists every registered component, is not affected)."""
    from mmpref.reward_models import register_procedural

    monkeypatch.setattr(REWARD_MODELS, "_entries", dict(REWARD_MODELS._entries))
    register_procedural("test_fragile_redness", _fragile, summary="test only: redness, fails on 'explode'",
                        needs_prompt=True)
    return "test_fragile_redness"


def _early_energy(waveforms: Sequence[Any], prompts: Sequence[str]) -> torch.Tensor:
    """Share of a clip's energy in its first half: continuous and scale-free (the tiny random vocoder's clips are
    ~1e-9 in amplitude, and the tiny random CLAP and the audio world's truth score every clip of a prompt alike)."""
    out = []
    for w in waveforms:
        x = np.asarray(w, dtype=np.float64) ** 2
        out.append(float(x[: len(x) // 2].sum() / max(x.sum(), 1e-300)))
    return torch.tensor(out)


@contextlib.contextmanager
def early_energy_scorer(name: str) -> Iterator[str]:
    """`_early_energy` registered as the audio reward model `name` while the block runs (the registry is
    restored afterwards, so the README's component table is not affected)."""
    from mmpref.reward_models import register_procedural

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(REWARD_MODELS, "_entries", dict(REWARD_MODELS._entries))
        register_procedural(name, _early_energy, summary="test only: early energy share", modality="audio",
                            differentiable=False)
        yield name


def shout_odd_samples(prompt: str, prompt_index: int, sample_index: int, seed: int) -> str:
    """A prompt transform for tests: odd samples are conditioned on the upper-cased prompt."""
    return prompt.upper() if sample_index % 2 else prompt


def build_model(directory: Path) -> Path:
    """The tiny SD 1.x pipeline (32x32 images, random weights) written in diffusers' format."""
    from mmpref.testing.tiny import build_tiny_sd

    return build_tiny_sd(directory)


def poison_model(source: Path, directory: Path) -> Path:
    """A copy of the tiny pipeline whose text encoder embeds POISON as NaN (real NaN latents)."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(source)
    ids = [pipe.tokenizer.convert_tokens_to_ids(t) for t in (POISON, POISON + "</w>")]
    with torch.no_grad():
        pipe.text_encoder.get_input_embeddings().weight[ids] = float("nan")
    pipe.save_pretrained(directory)
    return directory


def config_dict(model: Path, out: Path, prompts: Sequence[str] | None = None, **sections: Any) -> dict[str, Any]:
    """A small text_to_image_pairs config: 2 steps, 32x32, brightness scorer, threads fixed at 1."""
    config: dict[str, Any] = {
        "pipeline": "text_to_image_pairs",
        "model": {"path": str(model)},
        "prompts": {"source": "builtin:objects", "limit": 6},
        "sampling": {"samples_per_prompt": 3, "steps": 2, "guidance_scale": 3.0, "height": 32, "width": 32, "seed": 7},
        "scorer": "brightness",
        "pairing": {"strategy": "best_vs_worst"},
        "output": {"dir": str(out), "prompts_per_shard": 2, "contact_sheet_pairs": 4},
        "runtime": {"device": "cpu", "batch_size": 4, "threads": 1, "progress": False},
    }
    if prompts is not None:
        path = out.parent / f"{out.name}_prompts.txt"
        path.write_text("\n".join(prompts) + "\n")
        config["prompts"] = {"source": str(path)}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def tiny_tango_and_prompts(root: Path, prompts: Sequence[str]) -> tuple[Path, Path]:
    """A tiny random TangoPipeline saved under root/tango and the prompts as a text file (an audio run's inputs)."""
    from mmpref.testing.tiny_audio import build_tiny_tango

    model = build_tiny_tango(root / "tango")
    path = root / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n")
    return model, path


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate a config dict through the real loader and run the pipeline in this process."""
    from mmpref.config import load_config

    path = Path(config["output"]["dir"]).parent / f"{Path(config['output']['dir']).name}.yaml"
    write_config(path, config)
    run = load_config(str(path), kind="pipeline")
    return run.entry.obj(run.config)


def write_train_config(path: Path, model: Path, data: Path, objective: dict[str, Any], steps: int) -> Path:
    """A tiny LoRA `mmpref train` config on generated data (2 rows per step), output in `trained` beside it."""
    return write_config(path, {
        "method": "preference",
        "model": {"adapter": {"name": "text_to_image", "pretrained": str(model), "resolution": 32},
                  "finetune": "lora", "lora": {"rank": 4}},
        "objective": objective,
        "data": {"source": str(data)},
        "training": {"max_steps": steps, "batch_size": 2, "log_every": 1, "checkpoint_every": 0},
        "logging": {"trackers": [], "progress_bar": False},
        "output_dir": str(path.parent / "trained"),
    })


def read_pairs(out: Path) -> Any:
    """The generated dataset as datasets loads it (rows in shard order)."""
    import datasets

    files = sorted(str(p) for p in (out / "data").glob("*.parquet"))
    return datasets.load_dataset("parquet", data_files=files, split="train")


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env



