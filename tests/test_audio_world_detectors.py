"""The audio world's two imperfect detectors do what their docstrings say, on hand-placed clips, and all
three scorers work through the reward-model registry."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mmpref.sandbox.audio import (
    SAMPLE_RATE,
    PlacedEvent,
    all_prompts,
    audio_truth,
    draw,
    event_detector,
    order_detector,
    render,
    render_batch,
    truth_scores,
)
from mmpref.sandbox.audio.detectors import coarse_events

BEEP_THEN_TWO_CLICKS = draw(
    [
        PlacedEvent("low beep", 0.15, 0.15, 0.6, 440.0, 440.0),
        PlacedEvent("click", 0.55, 0.006, 0.8),
        PlacedEvent("click", 0.85, 0.006, 0.8),
    ]
)


def score(detector, clip, prompt: str) -> float:
    return float(detector([clip], [prompt])[0])


@pytest.mark.parametrize("detector", [audio_truth, event_detector, order_detector])
def test_detectors_score_batches_in_unit_range(detector):
    prompts = ["two clicks", "a rising chirp followed by two noise bursts"]
    clips = render_batch(prompts, [0, 1])
    for batch in (clips, list(clips), [(c, SAMPLE_RATE) for c in clips]):
        scores = detector(batch, prompts)
        assert scores.shape == (2,) and scores.dtype == np.float64
        assert np.all(scores == 1.0)
    assert np.all((detector(clips, prompts[::-1]) >= 0) & (detector(clips, prompts[::-1]) < 1))
    assert detector.sample_rate == SAMPLE_RATE
    with pytest.raises(ValueError):
        detector(clips, prompts[:1])


def test_event_detector_is_blind_to_counts_and_order():
    clip = BEEP_THEN_TWO_CLICKS
    assert score(audio_truth, clip, "a low beep followed by two clicks") == 1.0
    for prompt in (
        "two clicks followed by a low beep",
        "a low beep followed by a click",
        "two clicks after two low beeps",
    ):
        assert score(event_detector, clip, prompt) == 1.0
        assert score(audio_truth, clip, prompt) < 1.0
    assert score(event_detector, clip, "a high beep followed by two clicks") == pytest.approx(1 / 3)
    assert score(event_detector, clip, "three clicks") == pytest.approx(1 / 2)  # the beep is stray


def test_order_detector_is_blind_to_pitch_and_sweep_direction():
    clip = BEEP_THEN_TWO_CLICKS
    assert coarse_events(clip) == ["tone", "click", "click"]
    for prompt in ("a high beep followed by two clicks", "a falling chirp then two clicks"):
        assert score(order_detector, clip, prompt) == 1.0
        assert score(audio_truth, clip, prompt) < 1.0
    # Count and kinds right, order wrong.
    assert score(order_detector, clip, "two clicks followed by a low beep") == pytest.approx(2 / 3)
    # One event short: count wrong, two of three kinds matched, order wrong.
    assert score(order_detector, clip, "a low beep followed by a click") == pytest.approx(2 / 9)


def test_order_detector_misses_quiet_clicks_beside_loud_sounds():
    clip = draw(
        [PlacedEvent("high beep", 0.2, 0.15, 0.9, 2000.0, 2000.0), PlacedEvent("click", 0.7, 0.006, 0.3)]
    )
    assert score(audio_truth, clip, "a high beep followed by a click") == 1.0
    assert coarse_events(clip) == ["tone"]
    assert score(order_detector, clip, "a high beep followed by a click") < 1.0


def test_order_detector_merges_fast_repeats():
    clip = draw([PlacedEvent("click", 0.5, 0.006, 0.8), PlacedEvent("click", 0.56, 0.006, 0.8)])
    assert score(audio_truth, clip, "two clicks") == 1.0
    assert len(coarse_events(clip)) == 1
    assert score(order_detector, clip, "two clicks") < 1.0


def test_order_detector_is_noisier_than_the_truth_on_clean_renders():
    prompts = [p for p in all_prompts("sequence") if "click" in p.sounds][::3]
    clips = render_batch(prompts, range(len(prompts)))
    assert np.all(truth_scores(clips, prompts) == 1.0)
    full_marks = np.mean(order_detector(clips, prompts) == 1.0)
    print(f"\norder detector full marks on {len(prompts)} clean click sequences: {full_marks:.3f}")
    assert 0.5 < full_marks < 1.0


def test_detectors_take_other_sample_rates():
    from mmpref.reward_models.audio import resample

    clip = render("a rising chirp then two clicks", seed=4)
    at_44k = resample(clip, SAMPLE_RATE, 44100)
    for detector in (audio_truth, event_detector, order_detector):
        assert detector([(at_44k, 44100)], ["a rising chirp then two clicks"])[0] == 1.0


def test_scorers_register_and_score_through_the_registry():
    """In a fresh interpreter, so registering does not leak into other tests' view of the registry."""
    code = """
import mmpref.sandbox.audio.scorers as s
from mmpref.reward_models import build_scorer
from mmpref.sandbox.audio import render
clips = [(render("two clicks", 0), 16000), (render("a low beep then a click", 1), 16000)]
assert s.REGISTERED == ["audio_truth", "audio_event_detector", "audio_order_detector"]
assert s.register_audio_scorers() == []  # a second call registers nothing twice
for name in s.REGISTERED:
    scorer = build_scorer(name)
    assert scorer.modality == "audio" and scorer.needs_prompt and not scorer.differentiable
    print(name, scorer.score(clips, ["two clicks"] * 2).tolist())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    scores = {line.split()[0]: json.loads(line.split(maxsplit=1)[1]) for line in out.stdout.splitlines()}
    # "a low beep then a click" against "two clicks": present, count wrong, a stray beep.
    assert scores["audio_truth"] == [1.0, pytest.approx(1 / 3)]
    assert scores["audio_event_detector"] == [1.0, 0.5]
    clips = [render("two clicks", 0), render("a low beep then a click", 1)]
    for name, detector in (
        ("audio_event_detector", event_detector),
        ("audio_order_detector", order_detector),
    ):
        assert scores[name] == pytest.approx(detector(clips, ["two clicks"] * 2).tolist())
