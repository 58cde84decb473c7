"""Torch datasets over scanned rows, an epoch-aware sampler, and the collate function.

Determinism is what makes resume exact: the sampler's order depends only on (seed, epoch), and a row's
augmentation only on (seed, epoch, row), never on worker count or on how far a killed run got. The
sampler yields `epoch · N + i`, so the epoch reaches the dataset through the index itself, which is
safe with any number of data-loader workers.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmpref.data.images import MediaError
from mmpref.data.scan import DataReport
from mmpref.data.schema import MEDIA, PROMPT, needed_columns, resolve_media
from mmpref.errors import DataError


class EpochSampler(torch.utils.data.Sampler[int]):
    """A permutation per epoch seeded by (seed, epoch); yields `epoch · n + i`."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        else:
            order = torch.arange(self.n)
        offset = self.epoch * self.n
        return iter((order + offset).tolist())

    def __len__(self) -> int:
        return self.n


class PreferenceDataset(torch.utils.data.Dataset):
    """Used rows of a source, media decoded and augmented by the adapter's media transform (one draw per row and epoch)."""

    def __init__(self, dataset: Any, report: DataReport, base_dir: Path | None,
                 prepare_media: Callable[[Sequence[Any], random.Random], dict[str, torch.Tensor]], seed: int = 0) -> None:
        self.data = dataset.select_columns(needed_columns(report.schema, dataset.column_names))
        self.report = report
        self.base_dir = base_dir
        self.prepare_media = prepare_media
        self.seed = seed
        self.prompt_column = PROMPT[report.schema]
        self.media_columns = MEDIA[report.schema]
        self.paired = len(self.media_columns) == 2
        self.latent_space: str | None = None  # set when training on stored sampler latents (loaders.attach_stored_latents)

    def __len__(self) -> int:
        return len(self.report.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        epoch, i = divmod(int(index), len(self))
        row = self.report.rows[i]
        record = self.data[row]
        if self.latent_space is not None:
            media = {"latents": self._stored_latents(record, i)}
        else:
            values = [resolve_media(record[c], self.base_dir) for c in self.media_columns]
            if self.report.swap[i]:
                values.reverse()
            rng = random.Random(f"{self.seed}-{epoch}-{row}")
            try:
                media = self.prepare_media(values, rng)
            except MediaError as err:
                raise DataError(
                    f"data.source {self.report.source}: row {row}: {err}. Keep data.verify_media: true so such rows "
                    "are counted and skipped before training."
                ) from None
        target = self.report.target[i]
        desirable = [True, False] if self.paired else [bool(target)]
        return {
            "prompt": record[self.prompt_column],
            **media,
            "target": torch.tensor(target if self.paired else 1.0, dtype=torch.float32),
            "desirable": torch.tensor(desirable),
            "row": torch.tensor(row),
        }

    def _stored_latents(self, record: dict[str, Any], i: int) -> torch.Tensor:
        """The row's stored sampler latents [G, C, T, F] in the same order as its media (checked before training)."""
        from mmpref.audio.latents import latents_from_bytes

        arrays = [latents_from_bytes(record[f"{c}_latents"]) for c in self.media_columns]
        if self.report.swap[i]:
            arrays.reverse()
        return torch.from_numpy(np.stack(arrays))


class CachedDataset(torch.utils.data.Dataset):
    """Rows of an encoded-sample cache (arrow, torch format); the epoch in the index is ignored."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache.with_format("torch")
        self.n = len(cache)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.cache[int(index) % self.n]


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors (leading batch axis), keep prompts as a list of strings."""
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else list(values)
    return out
