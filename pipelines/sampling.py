"""The Sampler interface: prompts + seeds in, samples (or a failure reason per sample) out.

Every modality plugs in here: a diffusers text-to-image sampler today, text-to-audio and others
later. A sampler batches freely across prompts, but each sample must depend only on its own
request (its seed and conditioning text), and a failure of one sample must not lose the others.

The diffusers-backed samplers (image and audio) also share two loading steps from here: the dtype
keyword `from_pretrained` reads, and the `model.scheduler` swap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from mmpref.errors import ConfigError, did_you_mean

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class SampleRequest:
    prompt_index: int  # row of the prompt in its source
    sample_index: int  # 0 .. samples_per_prompt - 1
    seed: int  # derive_seed(global seed, prompt_index, sample_index)
    prompt: str  # the prompt as written; pairs and scorers use it
    condition: str  # what the model is conditioned on (the prompt after the optional transform)
    steps: int | None = None  # denoising steps of this sample (None: the sampling config's; audio sampler)


@dataclass
class SampleResult:
    request: SampleRequest
    sample: Any = None  # an HxWx3 uint8 array for images; None when the sample failed
    error: str | None = None  # why it failed: "non-finite latents at step 3", "sampling error: ..."
    latents: Any = None  # the sampler's own latents of the sample, where it keeps them (audio: see audio/latents.py)

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Sampler(Protocol):
    """Generates one sample per request; `modality` picks the writer's encoder (image -> PNG)."""

    modality: str

    def sample(self, requests: Sequence[SampleRequest]) -> list[SampleResult]:
        """One result per request, in order; failures carry a reason instead of raising."""
        ...


def isolate_failures(run: Callable[[Sequence[SampleRequest]], list[SampleResult]],
                     requests: Sequence[SampleRequest], what: str = "sampling") -> list[SampleResult]:
    """Run a batch; if it raises, rerun each request alone so one bad sample only fails itself."""
    try:
        return run(requests)
    except Exception as err:  # noqa: BLE001 - recorded per sample, never swallowed
        if len(requests) == 1:
            return [SampleResult(requests[0], None, f"{what} error: {type(err).__name__}: {err}")]
    return [result for request in requests for result in isolate_failures(run, [request], what)]


def from_pretrained_dtype(dtype: str) -> dict[str, torch.dtype]:
    """The `from_pretrained` keyword argument for a model config's `dtype` ("float32", "float16", "bfloat16").

    diffusers renamed `torch_dtype` to `dtype` (the old name now warns); this passes whichever this version reads.
    """
    from diffusers.utils import deprecation_utils

    dtype_key = "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
    return {dtype_key: _DTYPES[dtype]}


def swap_scheduler(pipe: Any, name: str) -> None:
    """Give a loaded pipeline diffusers' scheduler class `name` (`model.scheduler`), built from its current
    scheduler's config; a name diffusers lacks is a ConfigError with close matches."""
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_config"):
        names = [n for n in dir(diffusers) if n.endswith("Scheduler")]
        raise ConfigError(f"model.scheduler: diffusers has no scheduler '{name}'.{did_you_mean(name, names)}")
    pipe.scheduler = cls.from_config(pipe.scheduler.config)
