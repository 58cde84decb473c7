"""Metrics: averaged over each logging interval, reduced across processes, sent to accelerate's trackers,
appended to `metrics.jsonl` and shown on the progress bar (loss, implicit accuracy, ETA)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from mmpref.errors import UserError


def tracker_names(requested: list[str]) -> list[str]:
    """The trackers to pass to accelerate; a UserError naming the package when one is not installed."""
    import importlib.util

    packages = {"tensorboard": "tensorboard", "wandb": "wandb"}
    for name in requested:
        if importlib.util.find_spec(packages[name]) is None:
            raise UserError(f"logging.trackers: {name} is not installed; `pip install {packages[name]}` or remove it.")
    return list(requested)


def flat_config(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as one level of scalars (what TensorBoard's hparams accept)."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flat_config(value, f"{prefix}{key}."))
    elif isinstance(data, (int, float, str, bool)):
        out[prefix[:-1]] = data
    else:
        out[prefix[:-1]] = str(data)
    return out


class MetricsLog:
    """Sums metrics on device between logs (no host sync per step) and writes them at log steps."""

    def __init__(self, accelerator: Any, path: Path, bar: Any) -> None:
        self.accelerator, self.path, self.bar = accelerator, path, bar
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, torch.Tensor] = {}
        self.count = 0
        self.started = time.monotonic()

    def add(self, loss: torch.Tensor, metrics: dict[str, torch.Tensor]) -> None:
        """Accumulate one micro-batch; NaN metrics (an empty subset, e.g. no desirable sample) are not counted."""
        values = {"loss": loss.detach().float(), **{k: v.detach().float() for k, v in metrics.items()}}
        for key, value in values.items():
            value = value.reshape(())
            seen = torch.isfinite(value).float()
            self.sums[key] = self.sums.get(key, 0.0) + torch.nan_to_num(value, nan=0.0) * seen
            self.counts[key] = self.counts.get(key, 0.0) + seen
        self.count += 1

    def flush(self, step: int, extra: dict[str, float]) -> dict[str, float]:
        """Mean over the interval and over processes; log everywhere; reset."""
        if not self.count:
            return {}
        keys = sorted(self.sums)
        sums = torch.stack([torch.as_tensor(self.sums[k]) for k in keys])
        counts = torch.stack([torch.as_tensor(self.counts[k]) for k in keys])
        sums = self.accelerator.reduce(sums, reduction="sum")
        counts = self.accelerator.reduce(counts, reduction="sum")
        values = {k: (s / c if c else float("nan")) for k, s, c in zip(keys, sums.tolist(), counts.tolist())}
        values.update(extra)
        self.accelerator.log(values, step=step)
        if self.accelerator.is_main_process:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": step, **values, "time": round(time.monotonic() - self.started, 3)}) + "\n")
            postfix = {"loss": f"{values['loss']:.4f}"}
            if "rewards/accuracies" in values:
                postfix["acc"] = f"{values['rewards/accuracies']:.2f}"
            self.bar.set_postfix(postfix, refresh=False)
        self.sums, self.counts, self.count = {}, {}, 0
        return values


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl; for steps logged twice (a killed run, then its resume) the last row wins."""
    rows: dict[int, dict[str, Any]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["step"]] = row
    return [rows[k] for k in sorted(rows)]
