"""From the `data:` config to a data loader: open, scan (bad rows counted), wrap, optionally cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mmpref.data.cache import build_or_load, data_identity, default_cache_root
from mmpref.data.dataset import CachedDataset, EpochSampler, PreferenceDataset, collate
from mmpref.data.scan import DataReport, scan
from mmpref.data.schema import SCHEMAS, UNPAIRED, detect_schema, latent_columns
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
        write_report(config, report)
    dataset = PreferenceDataset(source.dataset, report, source.base_dir, adapter.media_transform(),
                                seed=config.training.seed)
    return dataset, report


def write_report(config: PreferenceTrainConfig, report: DataReport) -> None:
    """OUTPUT_DIR/data_report.json: what the scan found (and, once the model loads, what it trains on)."""
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    report.write(Path(config.output_dir) / "data_report.json")


def attach_stored_latents(config: PreferenceTrainConfig, adapter: Any, dataset: PreferenceDataset,
                          log: Any = print) -> None:
    """Train on the sampler's own latents the data stores (mmpref/audio/latents.py) when they belong to the
    loaded model's VAE; otherwise say why the media are encoded instead. Every used row's latents are read
    once here, so a broken one stops the run before training with its row, not mid-epoch. The choice is
    logged and recorded in the data report (`stored_latents`)."""
    from mmpref.audio.latents import latents_from_bytes

    d, report = config.data, dataset.report
    columns = latent_columns(report.schema, dataset.data.column_names)
    if not columns:
        return

    def encode_media(why: str) -> None:
        report.latents = {"used": False, "why": why}
        log(f"data.source {d.source}: {why}; encoding the media of every row instead")

    if not d.stored_latents:
        return encode_media("stored sampler latents ignored (data.stored_latents: false)")
    if not hasattr(adapter, "latent_space"):
        return encode_media(f"the {type(adapter).__name__} does not train on stored latents")
    mine, rows = adapter.latent_space(), report.rows
    spaces = dataset.data.select_columns(["latent_space"])[list(rows)]["latent_space"] if rows else []
    foreign = [s for s in spaces if s != mine]
    if foreign:
        return encode_media(f"{len(foreign)} of {len(rows)} rows' stored latents are not of this model's VAE "
                            f"(latent space {foreign[0]}, the model's {mine})")
    expected, media, bad = adapter.latent_shape(), columns[:-1], []
    table = dataset.data.select_columns(media)
    for row in rows:
        record = table[int(row)]
        for column in media:
            try:
                shape = latents_from_bytes(record[column]).shape
                if tuple(shape) != tuple(expected):
                    raise ValueError(f"shape {tuple(shape)}, the model's is {tuple(expected)}")
            except ValueError as err:
                bad.append((int(row), column, str(err)))
    if bad:
        row, column, why = bad[0]
        raise DataError(
            f"data.source {d.source}: {len({b[0] for b in bad})} of {len(rows)} rows have unusable stored latents, "
            f"e.g. row {row} {column}: {why}. Regenerate those rows, or set data.stored_latents=false to encode "
            "the media of every row instead."
        )
    dataset.latent_space = mine
    report.latents = {"used": True, "rows": len(rows), "latent_space": mine}
    log(f"data.source {d.source}: training on the sampler's own latents stored with {len(rows)} rows "
        f"(latent space {mine}), not on re-encoded media")


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
