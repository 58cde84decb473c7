"""Procedural renderer: what a prompt should sound like, synthesised from a seed at 16 kHz.

A clip is 1.28 s by default: 128 mel frames at hop 160, so a Tango-shaped model with a 4x VAE works on
an 8 x 32 x 16 latent, cheap enough to train and sample on two CPU cores. Events are placed in temporal
order with random durations, gaps of at least 0.1 s (so they stay separate after a mel round trip's
64 ms window smears them), random amplitudes, and faint background noise. Tones and chirps are pure
sines with 10 ms raised-cosine ramps; a chirp sweeps exponentially over at least 1.6 octaves; a noise
burst is white noise; a click is a 6 ms burst of noise decaying with a 1.5 ms time constant. Pitch
ranges keep low beeps (300-550 Hz) and high beeps (1.6-2.8 kHz) far from the 1 kHz decision boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmpref.sandbox.audio.grammar import Prompt, parse_prompt

SAMPLE_RATE = 16000
HOP_LENGTH = 160
DURATION = 1.28  # seconds: 128 mel frames, 20480 samples
MIN_GAP = 0.10  # seconds of silence between two events
MARGIN = 0.04  # seconds of silence kept at each end of the clip
BACKGROUND = 0.002  # standard deviation of the background noise (about -54 dBFS)

# Per sound: duration range (s), amplitude range (peak), start and end frequency ranges (Hz) of tonal sounds.
SOUND_SPECS: dict[str, dict[str, tuple[float, float]]] = {
    "low beep": {"duration": (0.08, 0.16), "amplitude": (0.3, 0.8), "f0": (300.0, 550.0)},
    "high beep": {"duration": (0.08, 0.16), "amplitude": (0.3, 0.8), "f0": (1600.0, 2800.0)},
    "rising chirp": {
        "duration": (0.12, 0.20),
        "amplitude": (0.3, 0.8),
        "f0": (400.0, 650.0),
        "f1": (2000.0, 3000.0),
    },
    "falling chirp": {
        "duration": (0.12, 0.20),
        "amplitude": (0.3, 0.8),
        "f0": (2000.0, 3000.0),
        "f1": (400.0, 650.0),
    },
    "noise burst": {"duration": (0.10, 0.18), "amplitude": (0.3, 0.8)},
    "click": {"duration": (0.006, 0.006), "amplitude": (0.6, 1.0)},
}
_RAMP = 0.01  # seconds of raised-cosine fade in and out for tones, chirps and noise
_CLICK_DECAY = 0.0015  # seconds


@dataclass(frozen=True)
class PlacedEvent:
    """One synthesised event: its sound, onset and duration in seconds, peak amplitude, and for tonal
    sounds the start and end frequency in Hz (equal for beeps)."""

    sound: str
    onset: float
    duration: float
    amplitude: float
    f_start: float = 0.0
    f_end: float = 0.0

    @property
    def offset(self) -> float:
        return self.onset + self.duration


def layout(prompt: str | Prompt, seed: int, duration: float = DURATION) -> list[PlacedEvent]:
    """Random timings, amplitudes and pitches for the prompt's events, in order; same seed, same layout."""
    prompt = parse_prompt(prompt)
    rng = np.random.default_rng(seed)
    sounds = prompt.events
    specs = [SOUND_SPECS[s] for s in sounds]
    lengths = np.array([rng.uniform(*spec["duration"]) for spec in specs])
    slack = duration - 2 * MARGIN - lengths.sum() - MIN_GAP * (len(sounds) - 1)
    if slack < 0:
        raise ValueError(f"{prompt.text!r} does not fit in {duration} s; use a longer clip")
    extra = rng.dirichlet(np.ones(len(sounds) + 1)) * slack
    events = []
    t = MARGIN + extra[0]
    for i, (sound, spec, length) in enumerate(zip(sounds, specs, lengths)):
        f_start = float(rng.uniform(*spec["f0"])) if "f0" in spec else 0.0
        f_end = float(rng.uniform(*spec["f1"])) if "f1" in spec else f_start
        amplitude = float(rng.uniform(*spec["amplitude"]))
        events.append(PlacedEvent(sound, float(t), float(length), amplitude, f_start, f_end))
        t += length + MIN_GAP + extra[i + 1]
    return events


def synthesize(event: PlacedEvent, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The samples of one event (float64, starting at its onset)."""
    n = max(1, round(event.duration * sample_rate))
    t = np.arange(n) / sample_rate
    if event.sound == "click":
        return event.amplitude * rng.uniform(-1.0, 1.0, n) * np.exp(-t / _CLICK_DECAY)
    if event.sound == "noise burst":
        body = np.clip(rng.normal(0.0, 1.0 / 3.0, n), -1.0, 1.0)
    else:  # exponential sweep from f_start to f_end (a constant tone when they are equal)
        ratio = event.f_end / event.f_start
        if abs(ratio - 1.0) < 1e-9:
            phase = 2 * np.pi * event.f_start * t
        else:
            k = np.log(ratio) / event.duration
            phase = 2 * np.pi * event.f_start * (np.exp(k * t) - 1.0) / k
        body = np.sin(phase + rng.uniform(0, 2 * np.pi))
    ramp = min(round(_RAMP * sample_rate), n // 2)
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    body[:ramp] *= fade
    body[n - ramp :] *= fade[::-1]
    return event.amplitude * body


def draw(
    events: Sequence[PlacedEvent],
    seed: int = 0,
    duration: float = DURATION,
    background: float = BACKGROUND,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Mix placed events over background noise into a float32 clip of `duration` seconds."""
    rng = np.random.default_rng([seed, 1])
    clip = (
        rng.normal(0.0, background, round(duration * sample_rate))
        if background > 0
        else np.zeros(round(duration * sample_rate))
    )
    for event in events:
        samples = synthesize(event, rng, sample_rate)
        start = round(event.onset * sample_rate)
        end = min(len(clip), start + len(samples))
        clip[start:end] += samples[: end - start]
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


def render(
    prompt: str | Prompt, seed: int = 0, duration: float = DURATION, background: float = BACKGROUND
) -> np.ndarray:
    """A clean clip of the prompt: mono float32 samples at 16 kHz, `duration` seconds long."""
    return draw(layout(prompt, seed, duration), seed, duration, background)


def render_batch(
    prompts: Sequence[str | Prompt],
    seeds: Sequence[int],
    duration: float = DURATION,
    background: float = BACKGROUND,
) -> np.ndarray:
    """Clean clips as float32 [N, samples]."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    return np.stack([render(p, s, duration, background) for p, s in zip(prompts, seeds)])
