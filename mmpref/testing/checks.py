"""Checks that several test modules make of the same artefact: a shipped base directory, a demo's report, a
trained LoRA, a repository script. One copy each, so the two worlds are held to the same contract.

tests/conftest.py registers this module for pytest's assertion rewriting, so failures show the values.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".h5", ".msgpack")
DEMO_REPORT_KEYS = ("base", "aligned", "gain", "gain_ci95", "win_rate", "seconds", "eval", "configs", "stage_seconds")
DEMO_FILES = ("report.html", "grid_comparison.png", "grid_base.png", "grid_aligned.png", "samples.jsonl")


def load_script(path: Path) -> ModuleType:
    """Import a script from scripts/ (not a package) as a module, so tests can call its functions."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_shipped_base_dir(root: Path, components: Iterable[str], max_bytes: int = 20 * 2**20) -> dict[str, Any]:
    """Weights only in `components`, all safetensors, the directory within `max_bytes`; returns model_index.json."""
    files = [f for f in root.rglob("*") if f.is_file()]
    weights = [f for f in files if f.suffix in WEIGHT_SUFFIXES]
    assert {f.parent.name for f in weights} == set(components)
    assert all(f.suffix == ".safetensors" for f in weights)
    assert sum(f.stat().st_size for f in files) <= max_bytes
    return json.loads((root / "model_index.json").read_text())


def check_demo_report(out: Path, stdout: str) -> dict[str, Any]:
    """The contract every world's `mmpref demo` keeps: stage lines, report.json's headline figures (gain =
    aligned - base inside its CI), a LoRA as the aligned model, the DPO objective, and non-empty report files."""
    for stage in ("[1/3] generate", "[2/3] train", "[3/3] eval", "gain", "win rate"):
        assert stage in stdout
    report = json.loads((out / "report.json").read_text())
    for key in DEMO_REPORT_KEYS:
        assert key in report, key
    for model in ("base", "aligned"):
        assert 0.0 <= report[model]["accuracy"] <= 1.0
    assert math.isclose(report["gain"], report["aligned"]["accuracy"] - report["base"]["accuracy"],
                        rel_tol=1e-6, abs_tol=1e-12)
    low, high = report["gain_ci95"]
    assert low <= report["gain"] + 1e-9 and report["gain"] <= high + 1e-9
    assert report["win_rate"] is None or 0.0 <= report["win_rate"] <= 1.0  # null: every comparison tied
    stages = set(report["stage_seconds"])  # "fuse" too with --rounds > 1
    assert report["seconds"] > 0 and {"generate", "train", "eval"} <= stages <= {"generate", "train", "eval", "fuse"}
    checks = report["targets"]["checks"]
    assert len(checks) == 3 and report["targets"]["met"] == all(c["met"] for c in checks)
    assert report["machine"]["cores"] >= 1 and f"on {report['machine']['cores']} cores of" in stdout
    assert report["eval"]["models"][1]["kind"] == "lora"
    assert report["configs"]["train"]["objective"]["name"] == "dpo"
    for name in DEMO_FILES:
        assert (out / name).stat().st_size > 0, name
    return report


def check_lora_trained(lora_dir: Path) -> None:
    """Training moved the LoRA away from its zero-initialised up-projections, and every weight is finite."""
    from safetensors.torch import load_file

    weights = load_file(str(lora_dir / "pytorch_lora_weights.safetensors"))
    ups = [v for k, v in weights.items() if "lora_B" in k or "lora.up" in k]
    assert ups and max(float(v.abs().max()) for v in ups) > 0.0
    assert all(math.isfinite(float(v.abs().sum())) for v in weights.values())
