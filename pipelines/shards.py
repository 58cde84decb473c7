"""The output directory of a generate run: shard files, per-shard records and the manifest.

Layout (the dataset is `data/`, in the Hugging Face naming `load_dataset(OUTPUT_DIR)` picks up):

    OUTPUT_DIR/data/train-00000-of-00012.parquet   pair shards (the dataset)
    OUTPUT_DIR/shards/00000.json                   per-shard record: samples, scores, failures, drops
    OUTPUT_DIR/manifest.json                       the plan, its fingerprint and the complete shards
    OUTPUT_DIR/config.yaml, summary.json, *.png    the resolved config and the report

A shard is complete when its record exists and names a parquet file of the recorded size; both are
written atomically (parquet first), so a run killed at any moment restarts from the complete shards.
The manifest is rewritten from the records after each shard; processes never write the same file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from mmpref.errors import ConfigError
from mmpref.pipelines.writer import write_atomic

FORMAT = "mmpref-generate/1"


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def fingerprint(content: dict[str, Any]) -> str:
    """sha256 of everything that decides the dataset's content (config keys, prompt list, shard plan)."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """JSON written atomically: a killed run never leaves a torn file behind."""
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


class RunDirectory:
    """Paths and atomic bookkeeping of one generate run's output directory."""

    def __init__(self, root: str | Path, total_shards: int) -> None:
        self.root = Path(root)
        self.total_shards = int(total_shards)
        self.data_dir = self.root / "data"
        self.records_dir = self.root / "shards"
        self.manifest_path = self.root / "manifest.json"
        self._complete: dict[int, dict[str, Any]] = {}  # records of shards seen complete (they never change)

    def shard_file(self, shard: int) -> Path:
        return self.data_dir / f"train-{shard:05d}-of-{self.total_shards:05d}.parquet"

    def record_file(self, shard: int) -> Path:
        return self.records_dir / f"{shard:05d}.json"

    def read_record(self, shard: int) -> dict[str, Any] | None:
        """The shard's record if the shard is complete, else None."""
        if shard in self._complete:
            return self._complete[shard]
        path = self.record_file(shard)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        data = self.shard_file(shard)
        if not data.is_file() or data.stat().st_size != record.get("bytes"):
            return None
        self._complete[shard] = record
        return record

    def complete_shards(self) -> list[int]:
        return [k for k in range(self.total_shards) if self.read_record(k) is not None]

    def write_record(self, shard: int, record: dict[str, Any]) -> None:
        self.records_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.record_file(shard), record)

    def clean_temporaries(self) -> int:
        """Delete temporary files a killed run left behind; returns how many."""
        removed = 0
        for folder in (self.root, self.data_dir, self.records_dir):
            if folder.is_dir():
                for path in folder.glob(".*.tmp-*"):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def _has_data(self) -> bool:
        return self.data_dir.is_dir() and any(self.data_dir.glob("*.parquet"))

    # -- manifest ---------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.is_file():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def start(self, pipeline: str, content: dict[str, Any]) -> bool:
        """Create the manifest, or check that the one there describes the same run; True when resuming.

        A directory holding shards of a different run (other model, prompts, seed, ...) is
        an error, not a silent mix of two datasets; one without any shard yet is simply restarted.
        """
        existing = self.read_manifest()
        if existing is None:
            if self._has_data():
                raise ConfigError(f"output.dir: '{self.root}' already has parquet files in data/ but no manifest.json; "
                                  "choose an empty output.dir.")
            self.root.mkdir(parents=True, exist_ok=True)
            self.write_manifest(pipeline, content, [], status="running")
            return False
        if existing.get("format") != FORMAT or existing.get("fingerprint") != fingerprint(content):
            if not self._has_data():  # nothing to protect yet (e.g. the model failed to load): start afresh
                self.write_manifest(pipeline, content, [], status="running")
                return False
            old, new = _flatten(existing.get("content", {})), _flatten(content)
            differs = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)) or ["format"]
            raise ConfigError(f"output.dir: '{self.root}' holds a run with a different config (differs in: "
                              f"{', '.join(differs[:6])}). Use a new output.dir, or delete that folder to start over.")
        return True

    def write_manifest(self, pipeline: str, content: dict[str, Any], complete: list[int], status: str,
                       rows: int | None = None) -> None:
        manifest = {
            "format": FORMAT,
            "pipeline": pipeline,
            "status": status,
            "fingerprint": fingerprint(content),
            "shards": self.total_shards,
            "complete": complete,
            "files": [str(self.shard_file(k).relative_to(self.root)) for k in range(self.total_shards)],
            "rows": rows,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "pid": os.getpid(),
            "content": content,
        }
        write_json(self.manifest_path, manifest)

    def refresh_manifest(self, pipeline: str, content: dict[str, Any]) -> list[int]:
        """Rewrite the manifest from the shard records on disk; returns the complete shards."""
        complete = self.complete_shards()
        rows = sum(int(self.read_record(k)["rows"]) for k in complete)  # type: ignore[index]
        status = "shards complete" if len(complete) == self.total_shards else "running"
        self.write_manifest(pipeline, content, complete, status=status, rows=rows)
        return complete
