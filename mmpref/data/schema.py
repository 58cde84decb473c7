"""Row schemas and what each row means: which media comes first, its soft target, or why it is unusable.

| schema     | columns                                   | meaning                                           |
|------------|-------------------------------------------|---------------------------------------------------|
| `pickapic` | caption, jpg_0, jpg_1, label_0 (label_1)  | Pick-a-Pic v2: winner first (swap when label_0 = 0), label_0 = 0.5 a tie |
| `pairs`    | prompt, chosen, rejected (target)         | generic pairs (what `mmpref generate` writes); optional target = P(chosen ≻ rejected) |
| `single`   | prompt, image, label                      | one sample, label true/1 = desirable (KTO, NPO)   |
| `single_audio` | prompt, audio, label                  | the same for a clip (`mmpref generate`'s unpaired audio output) |

Media values are bytes, `{"bytes", "path"}` dicts (datasets' Image feature) or paths; relative paths
are taken from the data folder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpref.errors import DataError

SCHEMAS: dict[str, tuple[str, ...]] = {
    "pickapic": ("caption", "jpg_0", "jpg_1", "label_0"),
    "pairs": ("prompt", "chosen", "rejected"),
    "single": ("prompt", "image", "label"),
    "single_audio": ("prompt", "audio", "label"),
}
PROMPT = {"pickapic": "caption", "pairs": "prompt", "single": "prompt", "single_audio": "prompt"}
MEDIA = {"pickapic": ("jpg_0", "jpg_1"), "pairs": ("chosen", "rejected"), "single": ("image",),
         "single_audio": ("audio",)}
OPTIONAL = {"pickapic": ("label_1",), "pairs": ("target",), "single": (), "single_audio": ()}
UNPAIRED = frozenset({"single", "single_audio"})  # one sample per row with a desirability label


def detect_schema(columns: list[str], requested: str, label: str) -> str:
    """The schema to read `columns` with; a DataError naming the missing columns otherwise."""
    if requested != "auto":
        missing = [c for c in SCHEMAS[requested] if c not in columns]
        if missing:
            raise DataError(
                f"data.source {label}: schema '{requested}' needs columns {', '.join(missing)}, which are missing "
                f"(columns: {', '.join(columns)}). Rename them or choose another data.schema."
            )
        return requested
    for name, required in SCHEMAS.items():
        if all(c in columns for c in required):
            return name
    expected = "; ".join(f"{n} ({', '.join(c)})" for n, c in SCHEMAS.items())
    raise DataError(
        f"data.source {label}: cannot tell the schema from columns {', '.join(columns)}. Expected one of: {expected}. "
        "Rename the columns or set data.schema."
    )


def latent_columns(schema: str, columns: list[str]) -> list[str]:
    """The stored-latent columns of the schema's media (chosen_latents, ...; audio/latents.py), with the
    latent-space id column, when the data has all of them; else none."""
    wanted = [f"{m}_latents" for m in MEDIA[schema]] + ["latent_space"]
    return wanted if all(c in columns for c in wanted) else []


def needed_columns(schema: str, columns: list[str]) -> list[str]:
    return [c for c in (*SCHEMAS[schema], *OPTIONAL[schema], *latent_columns(schema, columns)) if c in columns]


def resolve_media(value: Any, base_dir: Path | None) -> Any:
    """Relative paths (plain or in a {'path'} dict without bytes) resolved against the data folder."""
    if base_dir is None:
        return value
    if isinstance(value, str) and value and not os.path.isabs(value):
        return str(base_dir / value)
    if isinstance(value, dict) and not value.get("bytes") and isinstance(value.get("path"), str):
        path = value["path"]
        return {"bytes": None, "path": path if os.path.isabs(path) else str(base_dir / path)}
    return value


@dataclass(frozen=True)
class RowMeaning:
    """`status` ok / tie / bad; `swap` puts the second media first; `target` P(first ≻ second) or desirability."""

    status: str
    problem: str = ""
    swap: bool = False
    target: float = 1.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def _prompt_problem(value: Any, column: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"missing {column}"
    if not isinstance(value, str):
        return f"{column} is not text ({type(value).__name__})"
    return ""


def interpret(row: dict[str, Any], schema: str) -> RowMeaning:
    """What one row means under `schema` (media are checked separately)."""
    problem = _prompt_problem(row.get(PROMPT[schema]), PROMPT[schema])
    if problem:
        return RowMeaning("bad", problem)
    for column in MEDIA[schema]:
        if row.get(column) is None:
            return RowMeaning("bad", f"missing {column}")
    if schema == "pickapic":
        label = _number(row.get("label_0"))
        if label not in (0.0, 0.5, 1.0):
            return RowMeaning("bad", f"bad label_0 {row.get('label_0')!r} (expected 0, 0.5 or 1)")
        other = _number(row.get("label_1")) if "label_1" in row else 1.0 - label
        if other is None or abs(label + other - 1.0) > 1e-6:
            return RowMeaning("bad", f"label_0 {row.get('label_0')!r} and label_1 {row.get('label_1')!r} do not sum to 1")
        if label == 0.5:
            return RowMeaning("tie", target=0.5)
        return RowMeaning("ok", swap=label == 0.0)
    if schema == "pairs":
        if row.get("target") is None:
            return RowMeaning("ok")
        target = _number(row["target"])
        if target is None or not 0.0 <= target <= 1.0:
            return RowMeaning("bad", f"bad target {row['target']!r} (expected a probability in [0, 1])")
        return RowMeaning("tie", target=0.5) if target == 0.5 else RowMeaning("ok", target=target)
    label = _number(row.get("label"))
    if label not in (0.0, 1.0):
        return RowMeaning("bad", f"bad label {row.get('label')!r} (expected true/false or 1/0)")
    return RowMeaning("ok", target=label)
