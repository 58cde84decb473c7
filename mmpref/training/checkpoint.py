"""Atomic checkpoints with a retention limit, and finding the one to resume from.

A checkpoint is written into `checkpoints/.tmp-checkpoint-NNNNNN` (accelerate state: trainable weights,
optimizer, scheduler, RNG states; plus the objective's buffers, EMA weights and `trainer_state.json`,
written last) and renamed to `checkpoint-NNNNNN` only when complete, so a run killed at any moment
leaves either a complete checkpoint or a temporary folder that resume ignores and removes.
Everything is read back as safetensors, JSON, or `torch.load(weights_only=True)` (accelerate's own files).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmpref.errors import UserError
from mmpref.training.faults import maybe_crash

PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"
_NAME = re.compile(rf"^{PREFIX}(\d+)$")


class Checkpoints:
    """The checkpoints folder of one run."""

    def __init__(self, root: Path, keep: int | None) -> None:
        self.root = Path(root)
        self.keep = keep

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.root.iterdir()
                 if (m := _NAME.match(p.name)) and (p / STATE_FILE).is_file()]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def remove_partial(self) -> list[Path]:
        """Delete leftovers of checkpoints a killed run did not finish; return what was removed."""
        removed = []
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.name.startswith(".tmp-"):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p)
        return removed

    def resolve(self, resume_from: str | None) -> Path | None:
        """The checkpoint `training.resume_from` names: None, 'latest' (None when there is none yet) or a folder."""
        if not resume_from:
            return None
        if resume_from == "latest":
            return self.latest()
        path = Path(resume_from)
        if not (path / STATE_FILE).is_file():
            raise UserError(
                f"training.resume_from: {path} is not a complete mmpref checkpoint (no {STATE_FILE}); "
                f"use 'latest' or one of {', '.join(p.name for p in self.complete()) or 'none yet'}."
            )
        return path

    def save(self, step: int, accelerator: Any, write_extra: Callable[[Path], None]) -> Path:
        """Write checkpoint `step` atomically on all processes; the main process renames it into place."""
        name = f"{PREFIX}{step:06d}"
        tmp, final = self.root / f".tmp-{name}", self.root / name
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        if accelerator.is_main_process:
            write_extra(tmp)
        accelerator.wait_for_everyone()
        maybe_crash("checkpoint", step)
        if accelerator.is_main_process:
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            self._retain()
        accelerator.wait_for_everyone()
        return final

    def _retain(self) -> None:
        if self.keep is None:
            return
        done = self.complete()
        for old in done[: max(0, len(done) - self.keep)]:
            shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
