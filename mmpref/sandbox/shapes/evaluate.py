"""Sample a pipeline on shapes prompts with fixed seeds and measure ground-truth accuracy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mmpref.sandbox.form_accuracy import accuracy_by_form as form_accuracy
from mmpref.sandbox.shapes.base import DEFAULT_SAMPLER
from mmpref.sandbox.shapes.grammar import FORMS, Prompt, parse_prompt
from mmpref.sandbox.shapes.truth import judge_batch

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline


def generate(
    pipe: StableDiffusionPipeline,
    prompts: Sequence[str | Prompt],
    seeds: Sequence[int],
    *,
    batch_size: int = 32,
    **sampler: float,
) -> np.ndarray:
    """Images as uint8 [N, H, W, 3]; image i starts from the noise of `seeds[i]`, whatever its batch."""
    import torch

    settings = {**DEFAULT_SAMPLER, **sampler}
    out = []
    for i in range(0, len(prompts), batch_size):
        texts = [str(p) for p in prompts[i : i + batch_size]]
        gens = [torch.Generator(pipe.device).manual_seed(int(s)) for s in seeds[i : i + batch_size]]
        images = pipe(prompt=texts, generator=gens, output_type="np", **settings).images
        out.append(np.clip(np.round(images * 255), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def accuracy_by_form(
    pipe: StableDiffusionPipeline,
    prompts: Sequence[str | Prompt],
    seeds: Iterable[int] = (0,),
    **sampler: float,
) -> dict[str, float]:
    """Share of ground-truth-correct samples, overall and per prompt form, plus the mean graded score."""
    return form_accuracy(prompts, seeds, parse=parse_prompt, judge=judge_batch, forms=FORMS,
                         sample=lambda ps, ss: generate(pipe, ps, ss, **sampler))
