"""Small preference datasets written in the real on-disk formats (Pick-a-Pic v2 parquet, generic pairs).

Images are random-noise JPEGs (or flat colours), so decoding, swapping, tie and corrupt-row handling
run exactly as they do on real data, in milliseconds.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

CORRUPT_KINDS = ("undecodable", "missing_caption", "bad_label", "empty_image")


def jpeg_bytes(rng: np.random.Generator, height: int = 40, width: int = 32) -> bytes:
    """A random-noise RGB JPEG."""
    from PIL import Image

    array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def pickapic_rows(n: int, *, ties: int = 0, corrupt: tuple[str, ...] = (), seed: int = 0,
                  size: tuple[int, int] = (40, 32)) -> list[dict[str, Any]]:
    """Rows in Pick-a-Pic v2's schema: `n` decided pairs (alternating label_0 1/0), then ties, then corrupt rows."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        label = 1.0 if i % 2 == 0 else 0.0
        rows.append({"caption": f"a picture number {i}", "jpg_0": jpeg_bytes(rng, *size), "jpg_1": jpeg_bytes(rng, *size),
                     "label_0": label, "label_1": 1.0 - label, "best_image_uid": f"uid-{i}"})
    for i in range(ties):
        rows.append({"caption": f"a tie {i}", "jpg_0": jpeg_bytes(rng, *size), "jpg_1": jpeg_bytes(rng, *size),
                     "label_0": 0.5, "label_1": 0.5, "best_image_uid": ""})
    for kind in corrupt:
        row = {"caption": f"corrupt {kind}", "jpg_0": jpeg_bytes(rng, *size), "jpg_1": jpeg_bytes(rng, *size),
               "label_0": 1.0, "label_1": 0.0, "best_image_uid": "x"}
        if kind == "undecodable":
            row["jpg_1"] = b"this is not an image"
        elif kind == "missing_caption":
            row["caption"] = None
        elif kind == "bad_label":
            row["label_0"], row["label_1"] = 0.3, 0.7
        elif kind == "empty_image":
            row["jpg_0"] = b""
        else:
            raise ValueError(f"unknown corrupt kind {kind!r}; one of {CORRUPT_KINDS}")
        rows.append(row)
    return rows


def write_pickapic_parquet(path: str | Path, n: int = 16, *, ties: int = 0, corrupt: tuple[str, ...] = (),
                           seed: int = 0, size: tuple[int, int] = (40, 32)) -> Path:
    """Write `pickapic_rows(...)` as a parquet file (binary image columns, like the published shards)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(pickapic_rows(n, ties=ties, corrupt=corrupt, seed=seed, size=size)), path)
    return path


def write_pairs_folder(folder: str | Path, n: int = 8, seed: int = 0) -> Path:
    """A folder of PNGs plus `metadata.jsonl` with prompt/chosen/rejected as relative paths (generic schema)."""
    from PIL import Image

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        names = []
        for side in ("chosen", "rejected"):
            name = f"images/{i:03d}_{side}.png"
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / name)
            names.append(name)
        lines.append(json.dumps({"prompt": f"pair {i}", "chosen": names[0], "rejected": names[1]}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def write_single_parquet(path: str | Path, n: int = 8, seed: int = 0) -> Path:
    """Single samples (prompt, image, label) for unpaired objectives (KTO, NPO): alternating desirable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    rows = [{"prompt": f"single {i}", "image": jpeg_bytes(rng), "label": i % 2 == 0} for i in range(n)]
    path = Path(path)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path
