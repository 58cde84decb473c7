"""Stop a run at the first non-finite loss, naming the step, the micro-batch and its data rows."""

from __future__ import annotations

from typing import Any

import torch

from mmpref.errors import UserError


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the message says where and what to try."""


def check_finite(loss: torch.Tensor, accelerator: Any, *, step: int, micro_step: int, rows: torch.Tensor,
                 last_checkpoint: str | None) -> None:
    """Raise TrainingDiverged on every process when any process's loss is not finite (before backward)."""
    bad = (~torch.isfinite(loss.detach())).float().reshape(1)
    if accelerator.num_processes > 1:
        bad = accelerator.reduce(bad, reduction="sum")
    if bool(bad.item()):
        value = loss.detach().float().item()
        shown = ", ".join(str(int(r)) for r in rows.flatten()[:16].tolist())
        resume = f"; the last checkpoint is {last_checkpoint}" if last_checkpoint else ""
        raise TrainingDiverged(
            f"loss is {value} at step {step} (micro-batch {micro_step}, data rows [{shown}]) on this or another "
            f"process{resume}. Lower optimizer.lr or objective.beta, use bf16 instead of fp16, or inspect those rows."
        )
