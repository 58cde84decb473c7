"""The audio world's scorers, for the reward-model registry (modality "audio").

- `audio_truth`: the ground-truth graded score (share of the prompt's checks a clip passes).
- `audio_event_detector`: exact on which sounds are present; blind to counts and order.
- `audio_order_detector`: counts, coarse kinds and order from a cruder segmentation; blind to pitch
  and chirp direction, misses quiet clicks beside louder sounds, merges events closer than 50 ms.

Each is a `ClipScorer` `(waveforms, prompts) -> np.ndarray` of scores in [0, 1]; bare clips are taken
at 16 kHz and `(samples, rate)` clips are resampled. Importing this module registers them through
`mmpref.reward_models.register_procedural`.
"""

from __future__ import annotations

from mmpref.sandbox.audio.detectors import event_detector, order_detector
from mmpref.sandbox.audio.truth import audio_truth
from mmpref.sandbox.audio.waveforms import ClipScorer

AUDIO_SCORERS: dict[str, tuple[ClipScorer, str]] = {
    "audio_truth": (
        audio_truth,
        "audio world ground truth: share of the prompt's sound, count, order checks passed, from the waveform",
    ),
    "audio_event_detector": (
        event_detector,
        "audio world event detector: which sounds are present; blind to counts and order",
    ),
    "audio_order_detector": (
        order_detector,
        "audio world order detector: counts and order of coarse kinds; blind to pitch, crude segmentation",
    ),
}


_done: list[str] = []


def register_audio_scorers() -> list[str]:
    """Register the scorers as procedural reward models; the names registered by this call (none on a
    second call)."""
    from mmpref.reward_models import register_procedural

    if _done:
        return []
    for name, (fn, summary) in AUDIO_SCORERS.items():
        register_procedural(
            name,
            fn,
            summary=summary,
            modality="audio",
            needs_prompt=True,
            differentiable=False,
            scale="share of the prompt's checks passed, [0, 1]",
        )
        _done.append(name)
    return list(_done)


REGISTERED = register_audio_scorers()
