"""On-disk cache of encoded samples (VAE latents, text embeddings), keyed by model, resolution and data.

Both reference implementations VAE-encode both images of every pair at every step; with the cache the
encoders run once, and later runs on the same model, resolution, augmentation settings and rows reuse
it. Each process encodes a contiguous shard and writes it with `datasets`' ArrowWriter into a
temporary folder that is renamed when complete; `manifest.json`, written last by the main process,
marks the cache usable. A cache holds one augmentation draw per row (epoch 0's crop and flip).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mmpref.data.dataset import PreferenceDataset, collate

FORMAT_VERSION = 1


def default_cache_root() -> Path:
    return Path(os.environ.get("MMPREF_CACHE", Path.home() / ".cache" / "mmpref")) / "encoded"


def cache_key(identity: dict[str, Any]) -> str:
    """A short stable hash of everything the encoded samples depend on."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]


def data_identity(dataset: PreferenceDataset) -> dict[str, Any]:
    """The rows a cache covers: source fingerprint, used rows, order within pairs, seed."""
    report = dataset.report
    rows = hashlib.sha256(np.asarray(report.rows, dtype=np.int64).tobytes()
                          + np.asarray(report.swap, dtype=np.bool_).tobytes()).hexdigest()
    return {
        "fingerprint": getattr(dataset.data, "_fingerprint", None), "source": report.source,
        "schema": report.schema, "rows": rows, "seed": dataset.seed, "version": FORMAT_VERSION,
        "stored_latents": dataset.latent_space,
    }


def _features(example: dict[str, Any], dtype: str) -> Any:
    from datasets import Array2D, Array3D, Array4D, Array5D, Features, List, Value

    arrays = {2: Array2D, 3: Array3D, 4: Array4D, 5: Array5D}
    spec: dict[str, Any] = {}
    for key, value in example.items():
        if isinstance(value, str):
            spec[key] = Value("string")
        elif value.ndim == 0:
            spec[key] = Value("bool" if value.dtype == torch.bool else "int64" if not value.is_floating_point() else "float32")
        elif value.ndim == 1:
            inner = "bool" if value.dtype == torch.bool else dtype if value.is_floating_point() else "int64"
            spec[key] = List(Value(inner), length=value.shape[0])
        else:
            spec[key] = arrays[value.ndim](shape=tuple(value.shape), dtype=dtype)
    return Features(spec)


def _as_numpy(value: Any, dtype: str) -> Any:
    if isinstance(value, torch.Tensor):
        if value.ndim == 0:
            return value.item()
        if value.is_floating_point():
            return value.to(torch.float32).numpy().astype(dtype)
        return value.numpy()
    return value


def _encode_shard(adapter: Any, dataset: PreferenceDataset, start: int, stop: int, path: Path, dtype: str,
                  batch_size: int, num_workers: int, seed: int, progress: bool) -> None:
    from datasets.arrow_writer import ArrowWriter

    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, range(start, stop)), batch_size=batch_size, num_workers=num_workers,
        collate_fn=collate,
    )
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writer = None
    done = start
    for batch in tqdm(loader, desc=f"encoding rows {start}-{stop}", disable=not progress):
        generator = torch.Generator(adapter.device).manual_seed(seed * 1_000_003 + done)
        encoded = adapter.encode_for_cache(batch, generator)
        keep = {k: batch[k] for k in ("prompt", "target", "desirable", "row")}
        for i in range(len(batch["row"])):
            example = {k: v[i] for k, v in {**keep, **encoded}.items()}
            if writer is None:
                writer = ArrowWriter(features=_features(example, dtype), path=str(tmp / "data.arrow"))
            writer.write({k: _as_numpy(v, dtype) for k, v in example.items()})
        done += len(batch["row"])
    if writer is not None:
        writer.finalize()
        writer.close()
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def build_or_load(adapter: Any, dataset: PreferenceDataset, root: Path, identity: dict[str, Any], accelerator: Any,
                  dtype: str = "float16", batch_size: int = 8, num_workers: int = 0) -> tuple[Any, Path, bool]:
    """The cache for (adapter identity, data) under `root`: loaded when complete, else built by all processes.

    Returns (arrow dataset, its folder, whether it was built now).
    """
    from datasets import Dataset, concatenate_datasets

    folder = Path(root) / cache_key({**identity, "dtype": dtype})
    manifest = folder / "manifest.json"
    built = False
    if not manifest.exists():
        built = True
        n, parts = len(dataset), accelerator.num_processes
        bounds = [round(n * p / parts) for p in range(parts + 1)]
        me = accelerator.process_index
        folder.mkdir(parents=True, exist_ok=True)
        _encode_shard(adapter, dataset, bounds[me], bounds[me + 1], folder / f"part-{me:03d}-of-{parts:03d}", dtype,
                      batch_size, num_workers, seed=dataset.seed, progress=accelerator.is_local_main_process)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            names = [f"part-{p:03d}-of-{parts:03d}" for p in range(parts) if bounds[p + 1] > bounds[p]]
            tmp = folder / ".manifest.tmp"
            tmp.write_text(json.dumps({"identity": identity, "dtype": dtype, "rows": n, "parts": names}, default=str))
            os.replace(tmp, manifest)
        accelerator.wait_for_everyone()
    info = json.loads(manifest.read_text())
    shards = [Dataset.from_file(str(folder / name / "data.arrow")) for name in info["parts"]]
    return (concatenate_datasets(shards) if len(shards) > 1 else shards[0]), folder, built
