"""The Sampler interface: prompts + seeds in, samples (or a failure reason per sample) out.

Every modality plugs in here: a diffusers text-to-image sampler today, text-to-audio and others
later. A sampler batches freely across prompts, but each sample must depend only on its own
request (its seed and conditioning text), and a failure of one sample must not lose the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


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
