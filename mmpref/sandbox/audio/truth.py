"""Ground-truth reward of the audio world, from the waveform alone.

Events are found by energy segmentation (`segment.py`) and named by their spectrum (`classify.py`).
A prompt is a list of checks: per group, its sound is present and its count is exact; for a sequence,
every event of the first group starts before every event of the second; and no other sound (nor an
unidentifiable one) is in the clip. The graded score is the share of checks passed; "correct" means
all passed.

Measured (3 seeds of all 498 sentences): 1494/1494 clean renders correct; 300/300 after Tango's log-mel
and a Griffin-Lim vocoder; random mismatched prompts and all 5406 near misses of 498 renders rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mmpref.sandbox.audio.classify import Event, classify
from mmpref.sandbox.audio.grammar import Prompt, parse_prompt
from mmpref.sandbox.audio.segment import find_segments
from mmpref.sandbox.audio.waveforms import (
    ClipScorer,
    WaveformLike,
    as_waveform,
    as_waveform_list,
    check_lengths,
)


@dataclass(frozen=True)
class Judgement:
    """The graded score in [0, 1], whether the clip is fully correct, each check's credit, and the events
    the judgement rests on."""

    score: float
    correct: bool
    checks: dict[str, float] = field(default_factory=dict)
    events: tuple[Event, ...] = ()


def detect_events(waveform: WaveformLike) -> list[Event]:
    """The events of a clip (16 kHz unless given as `(samples, rate)`), in time order."""
    x = as_waveform(waveform)
    return [classify(x, s) for s in find_segments(x)]


def check_prompt(events: Sequence[Event], prompt: Prompt, *, use_order: bool = True) -> dict[str, float]:
    """Credit in {0, 1} per check of `prompt` given the detected events (the order check optional)."""
    checks: dict[str, float] = {}
    onsets: dict[str, list[float]] = {}
    for e in events:
        onsets.setdefault(e.sound, []).append(e.onset)
    for i, group in enumerate(prompt.groups):
        found = onsets.get(group.sound, [])
        checks[f"{i}:{group.sound} present"] = float(len(found) >= 1)
        checks[f"{i}:{group.sound} count"] = float(len(found) == group.count)
    if use_order and prompt.connective is not None:
        first, second = (onsets.get(s, []) for s in prompt.sounds)
        checks["order"] = float(bool(first and second) and max(first) < min(second))
    checks["nothing else"] = float(all(e.sound in prompt.sounds for e in events))
    return checks


def judge(waveform: WaveformLike, prompt: str | Prompt) -> Judgement:
    """Score one clip against one prompt."""
    events = detect_events(waveform)
    checks = check_prompt(events, parse_prompt(prompt))
    score = float(np.mean(list(checks.values())))
    return Judgement(
        score=score, correct=all(v == 1.0 for v in checks.values()), checks=checks, events=tuple(events)
    )


def judge_batch(
    waveforms: Sequence[WaveformLike] | np.ndarray, prompts: Sequence[str | Prompt]
) -> list[Judgement]:
    clips = as_waveform_list(waveforms)
    check_lengths(clips, prompts)
    return [judge(x, p) for x, p in zip(clips, prompts)]


def truth_scores(
    waveforms: Sequence[WaveformLike] | np.ndarray, prompts: Sequence[str | Prompt]
) -> np.ndarray:
    """Graded ground-truth scores in [0, 1], one per (clip, prompt)."""
    return np.array([j.score for j in judge_batch(waveforms, prompts)], dtype=np.float64)


def truth_correct(
    waveforms: Sequence[WaveformLike] | np.ndarray, prompts: Sequence[str | Prompt]
) -> np.ndarray:
    """Whether each clip satisfies its prompt completely (bool array)."""
    return np.array([j.correct for j in judge_batch(waveforms, prompts)], dtype=bool)


def _graded(waveform: np.ndarray, prompt: Prompt) -> float:
    return judge(waveform, prompt).score


audio_truth = ClipScorer(_graded, "audio_truth")
"""The ground truth as a batched scorer with a `sample_rate` attribute (same scores as `truth_scores`)."""
