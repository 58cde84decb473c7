"""Config sections every generate pipeline shares: where the output goes and how the run is executed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmpref.config import REQUIRED


@dataclass
class OutputConfig:
    dir: str = REQUIRED  # output folder; re-running the same command there resumes from the complete shards
    prompts_per_shard: int = 32  # shard size: the unit of resume and of work split between processes
    contact_sheet_pairs: int = 8  # pairs drawn in contact_sheet.png

    def check(self) -> None:
        if self.prompts_per_shard < 1:
            raise ValueError("output.prompts_per_shard must be at least 1.")
        if self.contact_sheet_pairs < 0:
            raise ValueError("output.contact_sheet_pairs must be >= 0.")


@dataclass
class RuntimeConfig:
    """Execution knobs: they change speed, not which samples, pairs or seeds the run produces.

    Floating-point results (and so the exact pixels) are bit-identical across runs and process counts
    for the same batch_size, threads, device and library versions.
    """

    device: str = "auto"  # auto (cuda when available, else cpu), cpu, cuda, cuda:1, ...
    processes: int = 1  # worker processes when not started by `accelerate launch` (which sets its own count)
    batch_size: int = 8  # samples per model call, across prompts
    threads: int | None = None  # CPU threads per process (null: torch's default, split between processes)
    scorer_dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    progress: bool = True  # progress bar with prompts/s and ETA

    def check(self) -> None:
        if self.processes < 1 or self.batch_size < 1:
            raise ValueError("runtime.processes and runtime.batch_size must be at least 1.")
        if self.threads is not None and self.threads < 1:
            raise ValueError("runtime.threads must be at least 1 (or null).")
