"""Sample a Tango-shaped pipeline on audio-world prompts with fixed seeds and measure ground-truth accuracy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mmpref.sandbox.audio.grammar import FORMS, Prompt, parse_prompt
from mmpref.sandbox.audio.truth import judge_batch
from mmpref.sandbox.audio_base.base import DEFAULT_SAMPLER
from mmpref.sandbox.form_accuracy import accuracy_by_form as form_accuracy

if TYPE_CHECKING:
    from mmpref.audio.pipeline import TangoPipeline


def generate(
    pipe: TangoPipeline,
    prompts: Sequence[str | Prompt],
    seeds: Sequence[int],
    *,
    batch_size: int = 32,
    **sampler: float,
) -> np.ndarray:
    """Waveforms as float32 [N, samples] at `pipe.sample_rate`; clip i starts from the noise of `seeds[i]`,
    whatever its batch. `sampler` overrides DEFAULT_SAMPLER (and may set `audio_length_in_s`)."""
    import torch

    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    settings = {**DEFAULT_SAMPLER, **sampler}
    out = []
    for i in range(0, len(prompts), batch_size):
        texts = [str(p) for p in prompts[i : i + batch_size]]
        gens = [torch.Generator(pipe.device).manual_seed(int(s)) for s in seeds[i : i + batch_size]]
        audio = pipe(prompt=texts, generator=gens, output_type="np", **settings).audios
        out.append(np.asarray(audio, dtype=np.float32))
    return np.concatenate(out)


def accuracy_by_form(
    pipe: TangoPipeline,
    prompts: Sequence[str | Prompt],
    seeds: Iterable[int] = (0,),
    **sampler: float,
) -> dict[str, float]:
    """Share of ground-truth-correct clips, overall and per prompt form, plus the mean graded score."""
    return form_accuracy(prompts, seeds, parse=parse_prompt, judge=judge_batch, forms=FORMS,
                         sample=lambda ps, ss: generate(pipe, ps, ss, **sampler))
