"""The audio world: prompts whose satisfaction is computable from the waveform.

Prompts ("a low beep followed by two clicks", "three noise bursts") come from a small grammar split
into training and held-out scenes; a renderer synthesises what they should sound like (16 kHz,
1.28 s); a ground-truth reward judges any clip against a prompt by detecting, naming, counting and
ordering its events; two imperfect detectors stand in for real reward models. `mel.py` holds a
Tango-style log-mel front end and a Griffin-Lim inverse, for checking the world through mel space.
torch and transformers load only when the mel functions or a non-16 kHz clip need them.
"""

from mmpref.sandbox.audio.classify import Event, Features
from mmpref.sandbox.audio.detectors import event_detector, order_detector
from mmpref.sandbox.audio.grammar import (
    CONNECTIVES,
    FORMS,
    SOUNDS,
    EventGroup,
    Prompt,
    PromptError,
    all_prompts,
    near_misses,
    parse_prompt,
)
from mmpref.sandbox.audio.mel import log_mel, mel_round_trip, mel_to_waveform
from mmpref.sandbox.audio.render import DURATION, SAMPLE_RATE, PlacedEvent, draw, layout, render, render_batch
from mmpref.sandbox.audio.split import PromptSplit, split_prompts
from mmpref.sandbox.audio.truth import (
    Judgement,
    audio_truth,
    detect_events,
    judge,
    judge_batch,
    truth_correct,
    truth_scores,
)
from mmpref.sandbox.audio.waveforms import ClipScorer

__all__ = [
    "CONNECTIVES",
    "DURATION",
    "FORMS",
    "SAMPLE_RATE",
    "SOUNDS",
    "ClipScorer",
    "Event",
    "EventGroup",
    "Features",
    "Judgement",
    "PlacedEvent",
    "Prompt",
    "PromptError",
    "PromptSplit",
    "all_prompts",
    "audio_truth",
    "detect_events",
    "draw",
    "event_detector",
    "judge",
    "judge_batch",
    "layout",
    "log_mel",
    "mel_round_trip",
    "mel_to_waveform",
    "near_misses",
    "order_detector",
    "parse_prompt",
    "render",
    "render_batch",
    "split_prompts",
    "truth_correct",
    "truth_scores",
]
