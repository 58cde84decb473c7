"""Encode samples per modality and write pair rows as a parquet shard, atomically.

The columns are the generic preference schema `mmpref train` reads (`prompt`, `chosen`, `rejected`
as encoded bytes) plus provenance: scores, seeds, sample and prompt indices, scorer, strategy and the
margin. Unpaired runs write SINGLE_SCHEMA instead (`prompt`, `image`, `label`: the `single` schema of
unpaired objectives) with the same provenance per sample. A shard is written to a hidden temporary file
and renamed into place, so a reader (or a resumed run) only ever sees complete shards.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PAIR_SCHEMA = pa.schema([
    pa.field("prompt", pa.string()),
    pa.field("chosen", pa.binary()),  # encoded sample: PNG bytes for images
    pa.field("rejected", pa.binary()),
    pa.field("chosen_score", pa.float64()),  # higher is better (see scoring.py)
    pa.field("rejected_score", pa.float64()),
    pa.field("margin", pa.float64()),  # chosen_score - rejected_score
    pa.field("target", pa.float64()),  # probability that chosen beats rejected: 1.0, or the soft target (ranked)
    pa.field("chosen_seed", pa.int64()),
    pa.field("rejected_seed", pa.int64()),
    pa.field("chosen_sample_index", pa.int32()),
    pa.field("rejected_sample_index", pa.int32()),
    pa.field("prompt_index", pa.int64()),  # row of the prompt in its source
    pa.field("scorer", pa.string()),
    pa.field("strategy", pa.string()),
])
"""Columns and types of every shard (also of an empty one)."""

SINGLE_SCHEMA = pa.schema([
    pa.field("prompt", pa.string()),
    pa.field("image", pa.binary()),  # encoded sample: PNG bytes
    pa.field("label", pa.bool_()),  # desirable: score >= pairing.threshold
    pa.field("score", pa.float64()),
    pa.field("seed", pa.int64()),
    pa.field("sample_index", pa.int32()),
    pa.field("prompt_index", pa.int64()),
    pa.field("scorer", pa.string()),
    pa.field("strategy", pa.string()),  # "unpaired"
])
"""Columns and types of every shard of a pairing.strategy: unpaired run."""


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of an HxWx3 uint8 image (deterministic: same pixels, same bytes)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """HxWx3 uint8 pixels of PNG (or any PIL-readable) bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


ENCODERS: dict[str, Callable[[Any], bytes]] = {"image": encode_png}
"""Modality -> encoder of one sample to the bytes stored in `chosen`/`rejected`; audio adds its own."""


def sample_hash(sample: Any) -> str:
    """Content hash of a sample's raw values (dedup of identical samples)."""
    array = np.ascontiguousarray(np.asarray(sample))
    return hashlib.sha1(array.tobytes() + str(array.shape).encode() + str(array.dtype).encode()).hexdigest()


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a hidden sibling temporary file, fsync it, then rename it to `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_table(rows: Sequence[dict[str, Any]], path: Path, schema: pa.Schema) -> int:
    """Write `rows` (dicts with `schema`'s keys) to the parquet file `path` atomically; returns its size."""
    table = pa.Table.from_pylist(list(rows), schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))
    return path.stat().st_size


def write_pairs(rows: Sequence[dict[str, Any]], path: Path) -> int:
    """A shard of pair rows (PAIR_SCHEMA); returns its size."""
    return write_table(rows, path, PAIR_SCHEMA)


def write_samples(rows: Sequence[dict[str, Any]], path: Path) -> int:
    """A shard of labelled single samples (SINGLE_SCHEMA); returns its size."""
    return write_table(rows, path, SINGLE_SCHEMA)
