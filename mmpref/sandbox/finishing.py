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
