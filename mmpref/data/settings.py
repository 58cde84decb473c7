"""The `data:` section of a training config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mmpref.config import REQUIRED

SchemaName = Literal["auto", "pickapic", "pairs", "single", "single_audio"]


@dataclass
class CacheSettings:
    enabled: bool = False  # encode every sample once (VAE latents + text embeddings) and train from disk
    dir: str | None = None  # where caches live; default ~/.cache/mmpref/encoded (keyed by model, resolution, data)
    dtype: Literal["float16", "float32"] = "float16"  # storage precision of cached tensors


@dataclass
class DataSettings:
    source: str = REQUIRED  # local .parquet/.arrow/.jsonl/.csv file, a folder of them, a save_to_disk folder, or a datasets name
    split: str = "train"  # split of a datasets name or a saved DatasetDict
    subset: str | None = None  # configuration name of a datasets name
    schema: SchemaName = "auto"  # pickapic (caption, jpg_0, jpg_1, label_0), pairs (prompt, chosen, rejected), single (prompt, image, label), single_audio (prompt, audio, label)
    ties: Literal["drop", "soft"] = "drop"  # Pick-a-Pic ties (label_0 = 0.5): drop and count, or keep as soft targets 0.5
    max_rows: int | None = None  # use only the first N rows (quick runs)
    verify_media: bool = True  # decode every image once before training so bad rows are counted, not crashed on
    # train on the sampler's own latents where the data stores them (`mmpref generate`'s audio pairs) and they
    # belong to this model's VAE; false: always encode the media (mmpref/audio/latents.py says why it matters)
    stored_latents: bool = True
    max_bad_fraction: float = 0.01  # stop with a clear message when a larger share of rows cannot be used
    scan_workers: int | None = None  # processes for the scan and caching; default: 1 for small data, up to 8 otherwise
    shuffle: bool = True
    num_workers: int = 0  # DataLoader worker processes
    cache: CacheSettings = field(default_factory=CacheSettings)

    def check(self) -> None:
        if not 0 <= self.max_bad_fraction <= 1:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {self.max_rows}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
