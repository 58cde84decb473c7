"""From the `data:` config to a data loader: open, scan (bad rows counted), wrap, optionally cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mmpref.data.cache import build_or_load, data_identity, default_cache_root
from mmpref.data.dataset import CachedDataset, EpochSampler, PreferenceDataset, collate
from mmpref.data.scan import DataReport, scan
from mmpref.data.schema import SCHEMAS, UNPAIRED, detect_schema
from mmpref.data.sources import open_source
from mmpref.errors import DataError
from mmpref.training.config import PreferenceTrainConfig


def build_dataset(config: PreferenceTrainConfig, adapter: Any, objective: Any, accelerator: Any,
                  log: Any = print) -> tuple[PreferenceDataset, DataReport]:
    """Open and scan the data (bad rows counted) and wrap it; needs no loaded model, so data errors come first."""
    d = config.data
    with accelerator.main_process_first():
        source = open_source(d.source, d.split, d.subset, d.max_rows)
        schema = detect_schema(source.dataset.column_names, d.schema, d.source)
        if schema in UNPAIRED and getattr(objective, "paired", True):
            raise DataError(
                f"data.source {d.source}: single samples ({', '.join(SCHEMAS[schema])}), but objective "
                f"'{config.objective.name}' needs pairs; use an unpaired objective (kto, npo, ...) or pair data."
            )
        report = scan(
            source.dataset, schema, source=d.source, base_dir=source.base_dir, ties=d.ties,
            check_media=type(adapter).check_media if d.verify_media else None,
            max_bad_fraction=d.max_bad_fraction, workers=d.scan_workers,
        )
    if accelerator.is_main_process:
        log(report.summary())
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
        report.write(Path(config.output_dir) / "data_report.json")
    dataset = PreferenceDataset(source.dataset, report, source.base_dir, adapter.media_transform(),
                                seed=config.training.seed)
    return dataset, report


def cached_dataset(config: PreferenceTrainConfig, adapter: Any, dataset: PreferenceDataset, accelerator: Any,
                   log: Any = print) -> CachedDataset:
    """The encoded-sample cache of `dataset` for this (loaded) adapter: reused when it exists, else built."""
    d = config.data
    root = Path(d.cache.dir) if d.cache.dir else default_cache_root()
    identity = {"model": adapter.cache_identity(), "data": data_identity(dataset)}
    cached, folder, built = build_or_load(
        adapter, dataset, root, identity, accelerator, dtype=d.cache.dtype,
        batch_size=config.training.batch_size, num_workers=d.num_workers,
    )
    if accelerator.is_main_process:
        log(f"encoded-sample cache {'written to' if built else 'reused from'} {folder}")
    return CachedDataset(cached)


def build_loader(dataset: torch.utils.data.Dataset, config: PreferenceTrainConfig,
                 num_processes: int) -> torch.utils.data.DataLoader:
    """Fixed-size batches in a (seed, epoch)-determined order; accelerate shards them across processes."""
    batch = config.training.batch_size
    if len(dataset) < batch * num_processes:
        raise DataError(
            f"data.source {config.data.source}: {len(dataset)} usable rows, fewer than one batch "
            f"(training.batch_size {batch} × {num_processes} processes)."
        )
    sampler = EpochSampler(len(dataset), seed=config.training.seed, shuffle=config.data.shuffle)
    batches = torch.utils.data.BatchSampler(sampler, batch_size=batch, drop_last=True)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, collate_fn=collate, num_workers=config.data.num_workers,
        persistent_workers=config.data.num_workers > 0,
    )
