"""Prompt sources (a built-in set, a text file, a dataset column) and the prompt-transform hook.

Each prompt keeps its row index in the source: seeds derive from it, so skipping a blank row or a
duplicate never shifts the seeds of the others. Skipped rows are returned with their reason (they
end up in summary.json), never dropped silently.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmpref.config import REQUIRED
from mmpref.errors import ConfigError, DataError, did_you_mean
from mmpref.pipelines.prompt_sets import PROMPT_SETS

PromptTransform = Callable[[str, int, int, int], str]
"""(prompt, prompt_index, sample_index, seed) -> the text the model is conditioned on for that sample.

The pair keeps the original prompt; scorers score against it. A hook for pipelines that perturb
prompts on purpose (Tango 2's perturbed captions) or add templates. Must be deterministic in its
arguments, or a resumed run would not reproduce the uninterrupted one.
"""

PROMPT_TRANSFORMS: dict[str, PromptTransform] = {}


def register_prompt_transform(name: str) -> Callable[[PromptTransform], PromptTransform]:
    """Decorator: make a transform available as `prompts.transform: NAME`."""

    def decorator(fn: PromptTransform) -> PromptTransform:
        if name in PROMPT_TRANSFORMS and PROMPT_TRANSFORMS[name] is not fn:
            raise ValueError(f"prompt transform '{name}' is registered twice")
        PROMPT_TRANSFORMS[name] = fn
        return fn

    return decorator


BUILTIN = "builtin:"


@dataclass
class PromptsConfig:
    """Where prompts come from and how they are used."""

    source: str = REQUIRED  # builtin:NAME, a text file (a prompt per line), a parquet/csv/json/arrow file or folder, a datasets name
    column: str = "prompt"  # dataset column holding the prompt text
    split: str = "train"  # dataset split (datasets names and folders)
    limit: int | None = None  # use only the first N prompts (after skipping empty and duplicate rows)
    dedup: bool = True  # skip prompts that repeat an earlier row (recorded in summary.json)
    transform: str | None = None  # a registered transform name or "package.module:function" (see PromptTransform)

    def check(self) -> None:
        if self.source.startswith(BUILTIN):
            name = self.source[len(BUILTIN):]
            if name not in PROMPT_SETS:
                raise ValueError(f"prompts.source: unknown built-in prompt set '{name}'.{did_you_mean(name, PROMPT_SETS)} "
                                 f"Built-in sets: {', '.join(BUILTIN + n for n in PROMPT_SETS)}.")
        if self.limit is not None and self.limit < 1:
            raise ValueError("prompts.limit must be at least 1 (or null for all prompts).")


@dataclass(frozen=True)
class Prompt:
    index: int  # row of the prompt in its source (0-based); seeds derive from it
    text: str


@dataclass
class PromptList:
    prompts: list[Prompt]
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"index", "reason"} per unused row
    source: str = ""
    digest: str = ""  # sha256 of the used prompts: a changed prompt list is a different run


_DATASET_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".arrow": "arrow"}


def _read_text(path: Path) -> list[Any]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"prompts.source: '{path}' is not UTF-8 text (byte {err.start}); save it as UTF-8.") from None


def _read_dataset(source: str, column: str, split: str) -> list[Any]:
    import datasets

    path = Path(source)
    try:
        if path.is_file():
            ds = datasets.load_dataset(_DATASET_BUILDERS[path.suffix], data_files=str(path), split="train")
        else:  # a local folder of data files, or a datasets name
            ds = datasets.load_dataset(source, split=split)
    except Exception as err:  # noqa: BLE001 - datasets raises many types here; one line is enough
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(f"prompts.source: cannot load '{source}' (split '{split}'): {first}. Give a text file, a "
                        f"{'/'.join(_DATASET_BUILDERS)} file or folder, or a datasets name when online.") from None
    if column not in ds.column_names:
        raise DataError(f"prompts.source: '{source}' has no column '{column}'.{did_you_mean(column, ds.column_names)} "
                        f"Columns: {', '.join(ds.column_names)}; set prompts.column.")
    return list(ds[column])


def _read_rows(config: PromptsConfig) -> list[Any]:
    """The raw rows of the source: built-in set, text file lines, or a dataset column."""
    source = config.source
    if source.startswith(BUILTIN):
        return PROMPT_SETS[source[len(BUILTIN):]]()
    path = Path(source).expanduser()
    if path.is_file():
        return _read_dataset(str(path), config.column, config.split) if path.suffix in _DATASET_BUILDERS \
            else _read_text(path)
    if path.is_dir():
        return _read_dataset(str(path), config.column, config.split)
    if source.startswith((".", "/", "~")) or path.suffix in (*_DATASET_BUILDERS, ".txt"):
        raise ConfigError(f"prompts.source: '{source}' does not exist; give a text file (one prompt per line), a "
                          "data file or folder, a datasets name, or builtin:objects.")
    return _read_dataset(source, config.column, config.split)


def load_prompts(config: PromptsConfig) -> PromptList:
    """The prompts to generate for, in source order, with every skipped row and why."""
    rows, source = _read_rows(config), config.source
    prompts: list[Prompt] = []
    skipped: list[dict[str, Any]] = []
    first_row: dict[str, int] = {}
    for index, value in enumerate(rows):
        if not isinstance(value, str):
            skipped.append({"index": index, "reason": f"not text ({type(value).__name__})"})
            continue
        text = value.strip()
        if not text:
            skipped.append({"index": index, "reason": "empty prompt"})
            continue
        if config.dedup and text in first_row:
            skipped.append({"index": index, "reason": f"duplicate of row {first_row[text]}"})
            continue
        if config.limit is not None and len(prompts) >= config.limit:
            break
        first_row.setdefault(text, index)
        prompts.append(Prompt(index, text))
    if not prompts:
        raise DataError(f"prompts: {source} holds no usable prompt ({len(skipped)} rows skipped); "
                        "give at least one non-empty prompt.")
    digest = hashlib.sha256("\n".join(f"{p.index}\t{p.text}" for p in prompts).encode()).hexdigest()
    return PromptList(prompts=prompts, skipped=skipped, source=source, digest=digest)


def resolve_transform(spec: str | None) -> PromptTransform | None:
    """The transform a config names: a registered name or "package.module:function"; None for none."""
    if not spec:
        return None
    if spec in PROMPT_TRANSFORMS:
        return PROMPT_TRANSFORMS[spec]
    if ":" not in spec:
        raise ConfigError(f"prompts.transform: unknown transform '{spec}'.{did_you_mean(spec, PROMPT_TRANSFORMS)} "
                          f"Registered: {', '.join(sorted(PROMPT_TRANSFORMS)) or 'none'}; or give "
                          "'package.module:function'.")
    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"prompts.transform: cannot import '{spec}' ({err}); check the module is on "
                          "PYTHONPATH and the function name.") from None
    if not callable(fn):
        raise ConfigError(f"prompts.transform: '{spec}' is not callable.")
    return fn
