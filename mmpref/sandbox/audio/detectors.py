"""Two imperfect detectors of the audio world, for pairing with scorers that are wrong in known ways.

- `event_detector` finds and names events exactly as the ground truth does, but checks only which
  sounds are there (each group's sound present, nothing else): blind to counts and to order.
- `order_detector` checks the number of events, their kinds and their order, but on coarse kinds
  only (tone, click, noise: blind to pitch and to a chirp's direction), with a cruder segmentation:
  20 ms frames every 10 ms, a threshold 15 dB below the loudest frame (so it misses quiet clicks
  beside louder sounds: it gives full marks to about 92 % of clean renders of their own prompts, the
  ground truth to all) and events closer than 50 ms merged (so it undercounts fast repeats).

Both are `ClipScorer`s: `(waveforms, prompts) -> float64 scores in [0, 1]` with a `sample_rate`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from mmpref.sandbox.audio.classify import CLICK_WIDTH, FLATNESS_NOISY, features
from mmpref.sandbox.audio.grammar import Prompt
from mmpref.sandbox.audio.segment import find_segments
from mmpref.sandbox.audio.truth import check_prompt, detect_events
from mmpref.sandbox.audio.waveforms import ClipScorer

COARSE: dict[str, str] = {
    "low beep": "tone",
    "high beep": "tone",
    "rising chirp": "tone",
    "falling chirp": "tone",
    "noise burst": "noise",
    "click": "click",
}
_CRUDE = dict(frame=320, hop=160, below_peak_db=15.0, merge_gap=0.05)


def _event_rule(waveform: np.ndarray, prompt: Prompt) -> float:
    checks = check_prompt(detect_events(waveform), prompt, use_order=False)
    kept = [v for k, v in checks.items() if not k.endswith(" count")]
    return float(np.mean(kept))


def coarse_events(waveform: np.ndarray) -> list[str]:
    """The coarse kinds ("tone", "click", "noise") of the events the crude segmentation finds, in order."""
    kinds = []
    for segment in find_segments(waveform, **_CRUDE):
        f = features(waveform, segment)
        if f.width < CLICK_WIDTH:
            kinds.append("click")
        else:
            kinds.append("noise" if f.flatness >= FLATNESS_NOISY else "tone")
    return kinds


def _order_rule(waveform: np.ndarray, prompt: Prompt) -> float:
    found = coarse_events(waveform)
    wanted = [COARSE[s] for s in prompt.events]
    overlap = sum((Counter(found) & Counter(wanted)).values()) / max(len(found), len(wanted))
    return float(np.mean([len(found) == len(wanted), overlap, found == wanted]))


event_detector = ClipScorer(_event_rule, "audio_event_detector")
order_detector = ClipScorer(_order_rule, "audio_order_detector")
