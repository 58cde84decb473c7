"""Turn the audio a caller holds into mono float 16 kHz numpy clips for the world's judges.

Accepted per clip: a numpy array or torch tensor ([T], or [T, C] / [C, T] with channels averaged), a
`(samples, rate)` tuple (what `mmpref score` loads from files) or a datasets Audio cell
(`{"array", "sampling_rate"}`); a 2-D array passed as the whole batch is [clips, samples]. Bare clips
are taken to be at the judge's `sample_rate`; others are resampled with the reward models' sinc
resampler (imported only then, as it needs torch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mmpref.sandbox.audio.grammar import Prompt, parse_prompt
from mmpref.sandbox.audio.render import SAMPLE_RATE

WaveformLike = Any  # np.ndarray | torch.Tensor | tuple[array, int] | {"array": ..., "sampling_rate": ...}


def _mono(samples: Any) -> np.ndarray:
    if hasattr(samples, "detach"):  # torch tensor
        samples = samples.detach().float().cpu().numpy()
    array = np.asarray(samples)
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float64) / float(np.iinfo(array.dtype).max)
    if array.ndim == 2:
        array = array.mean(axis=0 if array.shape[0] < array.shape[1] else 1)
    if array.ndim != 1:
        raise ValueError(
            f"cannot read a waveform from an array of shape {array.shape}; expected [T] or [T, C]"
        )
    return array.astype(np.float64, copy=False)


def as_waveform(clip: WaveformLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One clip as float64 mono samples at `SAMPLE_RATE`."""
    rate = sample_rate
    if isinstance(clip, dict):
        clip, rate = clip["array"], int(clip["sampling_rate"])
    elif isinstance(clip, tuple):
        clip, rate = clip[0], int(clip[1])
    samples = _mono(clip)
    if rate != SAMPLE_RATE:
        from mmpref.reward_models.audio import resample

        samples = np.asarray(resample(samples.astype(np.float32), rate, SAMPLE_RATE), dtype=np.float64)
    return samples


def as_waveform_list(
    waveforms: Sequence[WaveformLike] | np.ndarray, sample_rate: int = SAMPLE_RATE
) -> list[np.ndarray]:
    """A batch of clips as a list of float64 mono 16 kHz arrays."""
    if isinstance(waveforms, np.ndarray) or hasattr(waveforms, "detach"):
        batch = _as_2d(waveforms)
        return [as_waveform(row, sample_rate) for row in batch]
    return [as_waveform(clip, sample_rate) for clip in waveforms]


def _as_2d(batch: Any) -> np.ndarray:
    array = np.asarray(batch.detach().float().cpu().numpy() if hasattr(batch, "detach") else batch)
    if array.ndim == 3 and array.shape[1] == 1:  # [B, 1, T], as a vocoder returns
        array = array[:, 0]
    if array.ndim != 2:
        raise ValueError(f"a batch of clips as one array must be [clips, samples], got shape {array.shape}")
    return array


def check_lengths(waveforms: Sequence[Any], prompts: Sequence[Any]) -> None:
    if len(waveforms) != len(prompts):
        raise ValueError(f"{len(waveforms)} clips but {len(prompts)} prompts")


class ClipScorer:
    """A batched judge `(waveforms, prompts) -> float64 scores`, built from a per-clip rule.

    `sample_rate` is the rate bare clips are taken to be at (16 kHz, the world's rate); clips given as
    `(samples, rate)` carry their own and are resampled.
    """

    def __init__(
        self, rule: Callable[[np.ndarray, Prompt], float], name: str, sample_rate: int = SAMPLE_RATE
    ) -> None:
        self.rule = rule
        self.__name__ = name
        self.sample_rate = int(sample_rate)

    def __call__(
        self, waveforms: Sequence[WaveformLike] | np.ndarray, prompts: Sequence[str | Prompt]
    ) -> np.ndarray:
        clips = as_waveform_list(waveforms, self.sample_rate)
        check_lengths(clips, prompts)
        return np.array([self.rule(x, parse_prompt(p)) for x, p in zip(clips, prompts)], dtype=np.float64)

    def __repr__(self) -> str:
        return f"ClipScorer({self.__name__}, sample_rate={self.sample_rate})"
