"""One pass over the data before training: every row is used, dropped as a tie, or counted as bad.

Nothing is dropped silently: the report lists each bad row's index and reason, counts ties, prints a
summary, is written to `data_report.json`, and the run stops with a DataError when the bad share exceeds
`data.max_bad_fraction`. The pass runs through `datasets.map` (parallel, and cached on disk for datasets
that have cache files) and keeps only a few small columns, never a copy of the media.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmpref.data.schema import MEDIA, UNPAIRED, interpret, resolve_media
from mmpref.errors import DataError

SHOWN = 5  # bad rows named in the one-line summary; all of them go to data_report.json
SCAN_VERSION = 2  # part of the datasets cache fingerprint: bump when row checks change


@dataclass
class DataReport:
    """What the scan found. `rows` are the used row indices; `swap`/`target` are per used row."""

    source: str
    schema: str
    total: int
    rows: list[int]
    swap: list[bool]
    target: list[float]
    ties: int
    ties_kept: bool
    bad: list[tuple[int, str]] = field(default_factory=list)
    # What training feeds the model for data with stored sampler latents (set once the model has loaded).
    latents: dict[str, Any] | None = None

    @property
    def used(self) -> int:
        return len(self.rows)

    def summary(self) -> str:
        kind = "samples" if self.schema in UNPAIRED else "pairs"
        parts = [f"data {self.source}: {self.total} rows ({self.schema}) -> {self.used} {kind} used"]
        if self.ties:
            parts.append(f"{self.ties} ties {'kept as soft targets 0.5' if self.ties_kept else 'dropped'} (data.ties)")
        if self.bad:
            share = 100.0 * len(self.bad) / max(self.total, 1)
            shown = "; ".join(f"row {i}: {why}" for i, why in self.bad[:SHOWN])
            more = f"; ... {len(self.bad) - SHOWN} more" if len(self.bad) > SHOWN else ""
            parts.append(f"{len(self.bad)} bad rows skipped ({share:.1f}%): {shown}{more}")
        else:
            parts.append("0 bad rows")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "schema": self.schema, "total_rows": self.total, "used": self.used,
            "ties": self.ties, "ties_kept": self.ties_kept, "bad_rows": len(self.bad),
            "bad": [{"row": i, "reason": why} for i, why in self.bad],
            **({"stored_latents": self.latents} if self.latents is not None else {}),
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2))


def _scan_batch(batch: dict[str, list[Any]], indices: list[int], schema: str, base_dir: str | None,
                check_media: Callable[[Any], str | None] | None, version: int) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"status": [], "problem": [], "swap": [], "target": []}
    base = Path(base_dir) if base_dir else None
    for k in range(len(indices)):
        row = {name: values[k] for name, values in batch.items()}
        meaning = interpret(row, schema)
        status, problem = meaning.status, meaning.problem
        if status != "bad" and check_media is not None:
            for column in MEDIA[schema]:
                why = check_media(resolve_media(row[column], base))
                if why:
                    status, problem = "bad", f"{column}: {why}"
                    break
        out["status"].append(status)
        out["problem"].append(problem)
        out["swap"].append(meaning.swap)
        out["target"].append(meaning.target)
    return out


def scan(dataset: Any, schema: str, *, source: str, base_dir: Path | None, ties: str,
         check_media: Callable[[Any], str | None] | None, max_bad_fraction: float,
         workers: int | None = None) -> DataReport:
    """Classify every row; raise DataError when too many are bad or none is usable."""
    columns = [c for c in dataset.column_names]
    n = len(dataset)
    if workers is None:
        workers = 1 if n < 20_000 else min(8, os.cpu_count() or 1)
    result = dataset.map(
        _scan_batch,
        batched=True,
        batch_size=256,
        with_indices=True,
        remove_columns=columns,
        num_proc=workers if workers > 1 else None,
        fn_kwargs={"schema": schema, "base_dir": str(base_dir) if base_dir else None, "check_media": check_media,
                   "version": SCAN_VERSION},
        desc="checking data",
    )
    status, problem = result["status"], result["problem"]
    swap, target = result["swap"], result["target"]
    keep_ties = ties == "soft"
    rows, swaps, targets, bad, n_ties = [], [], [], [], 0
    for i in range(n):
        if status[i] == "bad":
            bad.append((i, problem[i]))
            continue
        if status[i] == "tie":
            n_ties += 1
            if not keep_ties:
                continue
        rows.append(i)
        swaps.append(bool(swap[i]))
        targets.append(float(target[i]))
    report = DataReport(source=source, schema=schema, total=n, rows=rows, swap=swaps, target=targets,
                        ties=n_ties, ties_kept=keep_ties, bad=bad)
    if n and len(bad) / n > max_bad_fraction:
        first = "; ".join(f"row {i}: {why}" for i, why in bad[:3])
        raise DataError(
            f"data.source {source}: {len(bad)} of {n} rows ({100.0 * len(bad) / n:.1f}%) cannot be used, more than "
            f"data.max_bad_fraction={max_bad_fraction}. First: {first}. Fix or remove those rows, or raise "
            "data.max_bad_fraction."
        )
    if not rows:
        raise DataError(f"data.source {source}: no usable rows ({report.summary()}).")
    return report
