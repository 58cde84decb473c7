"""Open a data source as a `datasets.Dataset` whose media columns are left undecoded.

Local sources: a .parquet/.arrow/.jsonl/.json/.csv file, a folder of parquet files, a `save_to_disk`
folder, or a folder with `metadata.jsonl`/`metadata.csv` (an imagefolder when it has `file_name`,
otherwise media columns hold paths relative to the folder). Anything else is a `datasets` name.
Image and Audio columns are cast to `decode=False` so that undecodable media reach the scan as bytes
and are counted there instead of crashing a data-loader worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpref.errors import DataError

_LOADERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


@dataclass
class Source:
    """A loaded split, where relative media paths are resolved from, and a label for messages."""

    dataset: Any
    base_dir: Path | None
    label: str


def _load_files(builder: str, files: list[str] | str, label: str) -> Any:
    from datasets import load_dataset

    try:
        return load_dataset(builder, data_files=files, split="train")
    except Exception as err:  # datasets raises a wide range here; one line is enough for the user
        raise DataError(f"data.source {label}: cannot read as {builder} ({type(err).__name__}: {err}).") from None


def _undecoded(dataset: Any) -> Any:
    """Image and Audio columns as raw {bytes, path}: the adapter decodes, and the scan counts failures."""
    import datasets

    kinds = tuple(getattr(datasets, k) for k in ("Image", "Audio") if hasattr(datasets, k))
    for name, feature in dataset.features.items():
        if isinstance(feature, kinds) and getattr(feature, "decode", False):
            dataset = dataset.cast_column(name, type(feature)(decode=False))
    return dataset


def _open_local(path: Path, split: str) -> tuple[Any, Path | None]:
    from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

    label = str(path)
    if path.is_file():
        if path.suffix == ".arrow":
            return Dataset.from_file(str(path)), path.parent
        if path.suffix in _LOADERS:
            return _load_files(_LOADERS[path.suffix], str(path), label), path.parent
        raise DataError(f"data.source {label}: unsupported file type '{path.suffix}'; use .parquet, .arrow, .jsonl or .csv.")
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        loaded = load_from_disk(str(path))
        if isinstance(loaded, DatasetDict):
            if split not in loaded:
                raise DataError(f"data.source {label}: no split '{split}' (has {', '.join(loaded)}); set data.split.")
            loaded = loaded[split]
        return loaded, path
    for meta in ("metadata.jsonl", "metadata.csv"):
        if (path / meta).exists():
            builder = _LOADERS[Path(meta).suffix]
            probe = _load_files(builder, str(path / meta), label)
            if "file_name" in probe.column_names:
                try:
                    return load_dataset("imagefolder", data_dir=str(path), split="train"), path
                except Exception as err:
                    raise DataError(f"data.source {label}: cannot read as an imagefolder ({err}).") from None
            return probe, path
    parquet = sorted(str(p) for p in path.rglob("*.parquet"))
    if parquet:
        return _load_files("parquet", parquet, label), path
    # datasets writes `cache-<fingerprint>.arrow` next to arrow files it maps (the scan does): not data.
    arrow = sorted(str(p) for p in path.rglob("*.arrow") if not p.name.startswith("cache-"))
    if arrow:
        from datasets import concatenate_datasets

        return concatenate_datasets([Dataset.from_file(a) for a in arrow]), path
    raise DataError(
        f"data.source {label}: found no parquet, arrow, metadata.jsonl/csv or save_to_disk data in this folder."
    )


def open_source(source: str, split: str = "train", subset: str | None = None, max_rows: int | None = None) -> Source:
    """Load `source` (see module docstring); `max_rows` keeps the first rows only."""
    path = Path(source).expanduser()
    if path.exists():
        dataset, base_dir = _open_local(path, split)
    elif source.startswith((".", "/", "~")) or Path(source).suffix in (*_LOADERS, ".arrow"):
        raise DataError(f"data.source {source}: no such file or folder.")
    else:
        from datasets import load_dataset

        try:
            dataset = load_dataset(source, subset, split=split)
        except Exception as err:
            raise DataError(
                f"data.source {source}: not a local path, and loading it as a datasets name failed "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). Check the name, the split "
                f"('{split}') and your connection (offline: HF_DATASETS_OFFLINE=1 needs a cached copy)."
            ) from None
        base_dir = None
    if max_rows is not None and max_rows < len(dataset):
        dataset = dataset.select(range(max_rows))
    return Source(dataset=_undecoded(dataset), base_dir=base_dir, label=source)
