"""What the worlds' base scripts share for their finishing stage (scripts/train_{shapes,audio}_base.py):
a short `mmpref train` run on an exported base, exported again as a clean pipeline directory."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def require_exported(base: Path, example: str) -> None:
    """Stop with one line when `base` is not a pipeline directory a base script exported."""
    if not (base / "model_index.json").exists():
        raise SystemExit(f"--init-from: {base} is not an exported pipeline (no model_index.json); point it at a "
                         f"directory this script exported, e.g. {example}")


def finish_prompts(prompts: Iterable[Any], forms: str) -> list[Any]:
    """The training prompts a finishing pass renders: all of them, or those of one form."""
    return [p for p in prompts if forms in ("all", p.form)]


def write_sft_config(path: Path, *, adapter: dict[str, Any], data: dict[str, Any], out: Path, steps: int,
                     batch: int, seed: int, lr: float, warmup: int = 20, log_every: int = 50,
                     checkpoint_every: int = 250, progress_bar: bool = True) -> Path:
    """An `mmpref train` config for a finishing pass: full fine-tuning of the adapter's pretrained
    pipeline with objective sft on `data` (the pairs' chosen samples), on the CPU, resuming from its latest
    checkpoint when run again."""
    import yaml

    config = {
        "method": "preference",
        "model": {"adapter": adapter, "finetune": "full"},
        "objective": {"name": "sft"},
        "data": {"source": data["source"], "ties": "drop", "verify_media": True, "num_workers": 0, **data},
        "training": {"max_steps": steps, "batch_size": batch, "mixed_precision": "no", "device": "cpu", "seed": seed,
                     "log_every": log_every, "checkpoint_every": checkpoint_every, "resume_from": "latest"},
        "optimizer": {"lr": lr, "scheduler": "constant_with_warmup", "warmup_steps": warmup, "weight_decay": 0.0,
                      "max_grad_norm": 1.0},
        "validation": {"every": 0},
        "logging": {"trackers": [], "progress_bar": progress_bar},
        "output_dir": str(out),
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=120))
    return path


def run_train_config(path: Path) -> None:
    """Run a written train config through the same entry point as `mmpref train`."""
    from mmpref.config import load_config

    run = load_config(str(path), [], kind="method")
    run.entry.obj(run.config)


def tidy_export(dest: Path, stage1: Path) -> None:
    """After saving a finished pipeline to `dest`: the first stage's tokenizer files byte for byte, and no
    local paths (`_name_or_path`) in its configs."""
    shutil.rmtree(dest / "tokenizer")
    shutil.copytree(stage1 / "tokenizer", dest / "tokenizer")
    for config in dest.rglob("*.json"):
        data = json.loads(config.read_text())
        if isinstance(data, dict) and data.pop("_name_or_path", None) is not None:
            config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
