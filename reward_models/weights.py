"""Find and safely load official reward-model weights, from a local path or the Hugging Face Hub.

Only safetensors or `torch.load(weights_only=True)` are used: a reward checkpoint is data, never
code. When a file cannot be had (offline, wrong path), the UserError names the file, where to fetch
it and which config key / CLI flag points the scorer at it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from mmpref.errors import UserError

T = TypeVar("T")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def reason(err: BaseException) -> str:
    """The first sentence of an exception message, short enough for a one-line error."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= 200 else first[:197] + "..."


def looks_like_hub_id(spec: str) -> bool:
    """'org/name' with no local meaning: a Hub repository id."""
    return bool(_HUB_ID.match(spec)) and not os.path.exists(spec)


def where_to_put(scorer: str, key: str, example: str) -> str:
    """The sentence that tells a user how to point a scorer at local weights."""
    return (f"set `{key}: {example}` in the scorer's config (or pass --weights {scorer}={example} to "
            "`mmpref score`).") if key == "weights" else f"set `{key}: {example}` in the scorer's config."


def hub_file(repo_id: str, filename: str, *, scorer: str, key: str = "weights") -> str:
    """Download (or reuse the cached) `filename` of Hub repo `repo_id`; a UserError if that fails."""
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id=repo_id, filename=filename)
    except Exception as err:  # offline, missing repo/file, HTTP errors: all fixed the same way
        url = f"https://huggingface.co/{repo_id}/resolve/main/{filename}"
        raise UserError(
            f"{scorer}: could not get '{filename}' from the Hugging Face Hub repo '{repo_id}' ({reason(err)}). "
            f"Download {url} on a machine with internet and {where_to_put(scorer, key, '/path/to/' + filename)}"
        ) from err


def resolve_file(spec: str, default_filename: str, *, scorer: str, key: str = "weights",
                 default_repo: str = "") -> str:
    """A local file for `spec`: a file path, a directory holding `default_filename`, or a Hub id.

    A Hub id may name the file after a colon ('org/repo:file.pt'); an empty spec means `default_repo`.
    """
    spec = os.path.expanduser(spec or default_repo)
    if not spec:
        raise UserError(f"{scorer}: no weights given; {where_to_put(scorer, key, '/path/to/' + default_filename)}")
    path = Path(spec)
    if path.is_file():
        return str(path)
    if path.is_dir():
        candidate = path / default_filename
        if candidate.is_file():
            return str(candidate)
        raise UserError(f"{scorer}: '{spec}' is a directory without '{default_filename}'; put the file there "
                        f"or {where_to_put(scorer, key, '/path/to/' + default_filename)}")
    repo, _, filename = spec.partition(":")
    if looks_like_hub_id(repo):
        return hub_file(repo, filename or default_filename, scorer=scorer, key=key)
    raise UserError(f"{scorer}: weights file '{spec}' does not exist; "
                    f"{where_to_put(scorer, key, '/path/to/' + default_filename)}")


def load_state_dict(path: str, *, scorer: str) -> dict[str, Any]:
    """Tensors from a .safetensors file or a torch pickle read with weights_only=True (no code runs)."""
    import torch

    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"{scorer}: cannot read '{path}' as tensors only (weights_only=True refuses pickled "
                        f"code; the file may also be corrupt or truncated): {reason(err)}") from err
    if not isinstance(obj, dict):
        raise UserError(f"{scorer}: '{path}' holds a {type(obj).__name__}, not a state dict.")
    return obj


def from_pretrained(load: Callable[..., T], spec: str, *, scorer: str, files: str, key: str = "weights",
                    **kwargs: Any) -> T:
    """Call a transformers `from_pretrained` on a local dir or Hub id, turning failures into UserErrors."""
    spec = os.path.expanduser(spec)
    if not os.path.isdir(spec) and not looks_like_hub_id(spec):
        raise UserError(f"{scorer}: '{spec}' is neither a local directory nor a Hub id; "
                        f"{where_to_put(scorer, key, '/path/to/dir')}")
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one "Loading weights" bar per component is noise in a CLI run
    try:
        return load(spec, **kwargs)
    except (OSError, ValueError) as err:
        if os.path.isdir(spec):
            raise UserError(f"{scorer}: cannot load '{spec}' ({reason(err)}); the directory needs {files}.") from err
        raise UserError(
            f"{scorer}: could not load '{spec}' from the Hugging Face Hub ({reason(err)}). On a machine with internet "
            f"run `hf download {spec} --local-dir DIR` (it needs {files}), copy DIR here and "
            f"{where_to_put(scorer, key, 'DIR')}"
        ) from err
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def model_and_processor(model_class: Any, spec: str, *, scorer: str) -> tuple[Any, Any]:
    """A transformers model and its `AutoProcessor`, both from one directory or Hub id (how CLAP and the
    open-vocabulary detectors ship), with the same UserErrors as `from_pretrained` naming what the directory needs."""
    from transformers import AutoProcessor

    files = "config.json, model.safetensors and the processor files (preprocessor_config.json, tokenizer)"
    model = from_pretrained(model_class.from_pretrained, spec, scorer=scorer, files=files)
    processor = from_pretrained(AutoProcessor.from_pretrained, spec, scorer=scorer, files=files)
    return model, processor


def url_file(url: str, filename: str, *, scorer: str, key: str = "weights") -> str:
    """A file published outside the Hub (e.g. on GitHub), downloaded once into ~/.cache/mmpref/weights."""
    cache = Path(os.environ.get("MMPREF_CACHE", Path.home() / ".cache" / "mmpref")) / "weights"
    target = cache / filename
    if target.is_file():
        return str(target)
    hint = f"Download {url} on a machine with internet and {where_to_put(scorer, key, '/path/to/' + filename)}"
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise UserError(f"{scorer}: '{filename}' is not cached and HF_HUB_OFFLINE=1. {hint}")
    import urllib.request

    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        partial.replace(target)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise UserError(f"{scorer}: could not download '{filename}' ({reason(err)}). {hint}") from err
    return str(target)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' loading reports (expected unused weights) for the duration of a load."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
