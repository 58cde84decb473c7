"""Apply an `mmpref train` LoRA output to a loaded diffusers pipeline and fuse it.

`mmpref eval` compares LoRA outputs with their base, and `mmpref generate` samples one (`model.lora`), which
is how an on-policy round starts: pairs from the model as it is now, not as it was. Fused, the LoRA costs
nothing per denoising step.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmpref.errors import UserError

LORA_FILE = "pytorch_lora_weights.safetensors"  # what `mmpref train` with finetune: lora writes (diffusers' name)
ADAPTER = "mmpref_lora"


def missing_lora(lora: str) -> str | None:
    """What is wrong with a LoRA folder before anything loads it (None: it holds the LoRA file)."""
    if (Path(lora).expanduser() / LORA_FILE).is_file():
        return None
    return f"{lora} holds no {LORA_FILE}; give the output folder of an `mmpref train` run with finetune: lora"


def check_lora_setting(lora: str | None) -> None:
    """Config-time check of `model.lora`, so a wrong folder stops the run before any model loads."""
    problem = lora and missing_lora(lora)
    if problem:
        raise ValueError(f"lora {problem} (or null to sample the base).")


def fuse_lora_into(pipe: Any, lora_dir: str, scale: float, *, what: str, base: str) -> None:
    """Load the LoRA in `lora_dir` into `pipe` (loaded from `base`) and fuse it at `scale`.

    `what` names the setting in errors (e.g. "model.lora" or "model 'aligned'")."""
    problem = missing_lora(lora_dir)
    if problem:
        raise UserError(f"{what}: {problem}.")
    folder = Path(lora_dir).expanduser()
    try:
        with consistent_lora_dir(folder) as path, _quiet_loader():
            pipe.load_lora_weights(path, adapter_name=ADAPTER)
    except Exception as err:  # noqa: BLE001 - diffusers/peft raise many types for mismatched LoRAs
        first = str(err).splitlines()[0] if str(err) else ""
        raise UserError(f"{what}: cannot apply the LoRA in {lora_dir} to {base} ({type(err).__name__}: {first}). "
                        "Is it a LoRA of this base model?") from None
    pipe.fuse_lora(lora_scale=scale, adapter_names=[ADAPTER])


@contextlib.contextmanager
def _quiet_loader() -> Iterator[None]:
    """Drop two diffusers log records that say nothing to an mmpref user: its error log of a failed LoRA load
    (the exception text again, which reads like a traceback; the UserError above says what failed) and its
    notice that a UNet-only LoRA has no text-encoder keys ("safe to ignore", in its own words), which every
    audio LoRA load printed. Its other warnings (unexpected or missing keys) still show."""
    import logging

    def keep(record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR and not str(record.msg).startswith("No LoRA keys associated to")

    loggers = [logging.getLogger(f"diffusers.loaders.{name}") for name in ("peft", "lora_base")]
    for logger in loggers:
        logger.addFilter(keep)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(keep)


@contextlib.contextmanager
def consistent_lora_dir(path: Path) -> Iterator[str]:
    """`path`, or a temporary copy (removed afterwards) whose keys all use PEFT's names.

    LoRA files written by mmpref before it kept peft's key names (and by diffusers'
    `convert_state_dict_to_diffusers` with targets beyond attention) mix `lora.down/up` and `lora_A/B`
    keys; `load_lora_weights` then takes the file for PEFT format and silently drops the attention
    layers. One naming (with the file's metadata, which holds alpha) loads every layer.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    file = path / LORA_FILE
    state = load_file(str(file))
    old = any(".lora.down." in k or ".lora.up." in k for k in state)
    peft = any(".lora_A." in k or ".lora_B." in k for k in state)
    if not (old and peft):
        yield str(path)
        return
    with safe_open(str(file), "pt") as f:
        metadata = f.metadata()
    fixed = {k.replace(".lora.down.", ".lora_A.").replace(".lora.up.", ".lora_B."): v for k, v in state.items()}
    with tempfile.TemporaryDirectory(prefix="mmpref-lora-") as folder:
        save_file(fixed, str(Path(folder) / LORA_FILE), metadata=metadata)
        yield folder


def model_fingerprint(model: Any) -> dict[str, Any]:
    """The `model:` keys of a generate run's resume fingerprint. A LoRA counts by its file's content (a LoRA
    retrained into the same folder is another model); an unset one is left out, so runs started before
    `model.lora` existed still resume."""
    import hashlib

    from mmpref.config import to_plain

    plain = to_plain(model)
    lora = plain.pop("lora", None)
    scale = plain.pop("lora_scale", 1.0)
    if lora:
        file = Path(lora).expanduser() / LORA_FILE
        digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16] if file.is_file() else None
        plain.update(lora=str(lora), lora_scale=scale, lora_sha256=digest)
    return plain
