"""What to score, from a folder, a list file or a dataset, loaded one item at a time.

`mmpref score` (and any pipeline that scores existing data) gets a list of `Item`s cheaply up
front, then loads samples chunk by chunk; an unreadable file becomes an error string for that item
instead of stopping the run.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpref.errors import UserError, did_you_mean

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
LIST_EXTENSIONS = {".txt", ".lst", ".list"}
TABLE_EXTENSIONS = {".parquet", ".jsonl", ".json", ".csv"}


@dataclass
class Item:
    """One thing to score: where it comes from (`key`), its raw source (path or cell) and its prompt."""

    key: str
    source: Any
    prompt: str | None = None


def _files(folder: Path, extensions: set[str]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions
                  and not p.name.startswith("."))


def _read_table(path: Path) -> Any:
    import pandas as pd

    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".jsonl":
            return pd.read_json(path, lines=True)
        if path.suffix == ".json":
            return pd.read_json(path)
        return pd.read_csv(path)
    except Exception as err:
        raise UserError(f"cannot read the dataset '{path}': {str(err).splitlines()[0][:200]}") from err


def _rows_from_saved_dataset(folder: Path, split: str | None) -> tuple[list[str], Iterable[dict]]:
    import datasets

    data = datasets.load_from_disk(str(folder))
    if isinstance(data, datasets.DatasetDict):
        names = list(data)
        chosen = split or ("train" if "train" in names else names[0] if len(names) == 1 else None)
        if chosen not in data:
            raise UserError(f"'{folder}' holds splits {', '.join(names)}; choose one with --split.")
        data = data[chosen]
    return list(data.column_names), data


def discover(source: str, *, modality: str = "image", image_column: str = "image", prompt_column: str = "prompt",
             split: str | None = None) -> tuple[list[Item], bool]:
    """(items, whether prompts came with them) for a folder, a list file or a dataset (file or saved folder)."""
    path = Path(source).expanduser()
    extensions = AUDIO_EXTENSIONS if modality == "audio" else IMAGE_EXTENSIONS
    if not path.exists():
        raise UserError(f"'{source}' does not exist; give a folder of {modality} files, a list file "
                        f"({', '.join(sorted(LIST_EXTENSIONS))}) or a dataset ({', '.join(sorted(TABLE_EXTENSIONS))}).")
    if path.is_dir() and not ((path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file()):
        files = _files(path, extensions)
        if not files:
            raise UserError(f"no {modality} files ({', '.join(sorted(extensions))}) in '{source}'.")
        return [Item(str(p), p) for p in files], False
    if path.suffix.lower() in LIST_EXTENSIONS:
        lines = [line.strip() for line in path.read_text().splitlines()]
        entries = [line for line in lines if line and not line.startswith("#")]
        if not entries:
            raise UserError(f"the list file '{source}' names no files.")
        return [Item(e, (path.parent / e) if not Path(e).is_absolute() else Path(e)) for e in entries], False
    if path.is_dir():
        columns, rows = _rows_from_saved_dataset(path, split)
    elif path.suffix.lower() in TABLE_EXTENSIONS:
        table = _read_table(path)
        columns, rows = list(table.columns), table.to_dict(orient="records")
    else:
        raise UserError(f"cannot tell what '{source}' is: give a folder, a list file "
                        f"({', '.join(sorted(LIST_EXTENSIONS))}) or a dataset ({', '.join(sorted(TABLE_EXTENSIONS))}).")
    if image_column not in columns:
        raise UserError(f"dataset '{source}' has no column '{image_column}'.{did_you_mean(image_column, columns)} "
                        f"Columns: {', '.join(map(str, columns))}; pick one with --image-column.")
    has_prompts = prompt_column in columns
    base = path if path.is_dir() else path.parent
    items = []
    for index, row in enumerate(rows):
        cell = row[image_column]
        key = cell if isinstance(cell, str) else (cell.get("path") if isinstance(cell, dict) else None) or str(index)
        if isinstance(cell, str) and not Path(cell).is_absolute():
            cell = base / cell
        items.append(Item(str(key), cell, str(row[prompt_column]) if has_prompts else None))
    return items, has_prompts


def load_image(source: Any) -> Any:
    """A fully decoded RGB PIL image from a path, bytes, an HF Image cell or a PIL image."""
    from PIL import Image

    if isinstance(source, dict):
        source = source.get("bytes") or source.get("path")
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    with Image.open(source) as image:
        image.load()
        return image.convert("RGB")


def load_audio(source: Any) -> tuple[Any, int]:
    """(mono float32 samples, sample rate) from a path, bytes or an HF Audio cell."""
    import soundfile

    from .audio import to_mono

    if isinstance(source, dict) and source.get("array") is not None:
        return to_mono(source["array"]), int(source["sampling_rate"])
    if isinstance(source, dict):
        source = source.get("bytes") or source.get("path")
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    return to_mono(data.T), int(rate)


def load(item: Item, modality: str) -> tuple[Any, str | None]:
    """(sample, None) or (None, why it could not be read)."""
    try:
        return (load_audio(item.source) if modality == "audio" else load_image(item.source)), None
    except Exception as err:  # corrupt, truncated, missing or unsupported: report and go on
        return None, (str(err).splitlines()[0][:200] if str(err).strip() else type(err).__name__)
