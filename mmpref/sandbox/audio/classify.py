"""Name the sound of one segment from its waveform and spectrum.

Features, on a 32 ms STFT every 5 ms over the segment's frames within 12 dB of its loudest:
- width: time span holding the central 80 % of the segment's energy: under 5 ms for clicks (under
  20 ms after a noisy mel round trip), 40 ms or more for every other sound;
- flatness: median spectral flatness (geometric / arithmetic mean power, 100 Hz - 7.5 kHz): 0.2-0.6
  for noise, below 0.005 for sines even after a noisy mel round trip;
- pitch: median frequency of the spectral peak; a 1 kHz boundary separates low from high beeps;
- sweep: octaves between the median peak frequency of the last and first third of those frames,
  1 or more (either sign) for chirps, under 0.1 for beeps.
Impulsive segments are clicks; broadband ones noise bursts; tonal ones chirps when they sweep and beeps
otherwise. A tonal segment too short to judge its pitch course is "unknown", which matches no prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmpref.sandbox.audio.render import SAMPLE_RATE
from mmpref.sandbox.audio.segment import Segment

N_FFT = 512
HOP = 80
CLICK_WIDTH = 0.03  # seconds of central energy: narrower segments are clicks
FLATNESS_NOISY = 0.05
PITCH_BOUNDARY = 1000.0  # Hz
SWEEP_OCTAVES = 0.5
MIN_TONAL = 0.04  # seconds of central energy: narrower tonal segments are "unknown"
_BAND = (100.0, 7500.0)


@dataclass(frozen=True)
class Features:
    """What the classifier looks at for one segment."""

    flatness: float
    pitch: float
    sweep: float
    width: float
    duration: float


@dataclass(frozen=True)
class Event:
    """One detected event: its sound (or "unknown"), onset and offset in seconds, and its features."""

    sound: str
    onset: float
    offset: float
    features: Features


def _frames(x: np.ndarray, start: int, end: int) -> np.ndarray:
    """Hann-windowed frames centred every HOP samples from start to end, [n, N_FFT]."""
    centres = np.arange(start, max(end, start + 1), HOP)
    padded = np.pad(x, (N_FFT // 2, N_FFT // 2))
    idx = centres[:, None] + np.arange(N_FFT)[None]
    return padded[idx] * np.hanning(N_FFT + 2)[1:-1]


def features(waveform: np.ndarray, segment: Segment) -> Features:
    """The spectral and temporal features of one segment of a 16 kHz clip."""
    x = np.asarray(waveform, dtype=np.float64)
    power = np.abs(np.fft.rfft(_frames(x, segment.start, segment.end), axis=1)) ** 2
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    band = (freqs >= _BAND[0]) & (freqs <= _BAND[1])
    energy = power.sum(axis=1)
    loud = energy >= energy.max() * 10 ** (-12 / 10)
    p = power[loud][:, band] + 1e-20
    flatness = float(np.median(np.exp(np.log(p).mean(axis=1)) / p.mean(axis=1)))
    peaks = np.log2(np.array([_peak_frequency(row, freqs[band]) for row in p]))
    third = max(1, len(peaks) // 3)
    sweep = float(np.median(peaks[-third:]) - np.median(peaks[:third])) if len(peaks) >= 3 else 0.0
    return Features(
        flatness=flatness,
        pitch=float(2 ** np.median(peaks)),
        sweep=sweep,
        width=_energy_width(x[segment.start : segment.end]),
        duration=segment.duration,
    )


def _peak_frequency(row: np.ndarray, freqs: np.ndarray) -> float:
    """Frequency of the spectral peak, refined by a parabola through the log power around it."""
    k = int(np.argmax(row))
    if 0 < k < len(row) - 1:
        a, b, c = np.log(row[k - 1 : k + 2])
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
        return float(freqs[k] + shift * (freqs[1] - freqs[0]))
    return float(freqs[k])


def _energy_width(x: np.ndarray) -> float:
    """Seconds between the 10th and 90th percentile of the cumulative energy."""
    cumulative = np.cumsum(x * x)
    if len(x) == 0 or cumulative[-1] <= 0:
        return 0.0
    cumulative /= cumulative[-1]
    return float((np.searchsorted(cumulative, 0.9) - np.searchsorted(cumulative, 0.1)) / SAMPLE_RATE)


def name_sound(f: Features) -> str:
    """The world's sound these features describe, or "unknown"."""
    if f.width < CLICK_WIDTH:
        return "click"
    if f.flatness >= FLATNESS_NOISY:
        return "noise burst"
    if f.width < MIN_TONAL:
        return "unknown"
    if f.sweep >= SWEEP_OCTAVES:
        return "rising chirp"
    if f.sweep <= -SWEEP_OCTAVES:
        return "falling chirp"
    return "low beep" if f.pitch < PITCH_BOUNDARY else "high beep"


def classify(waveform: np.ndarray, segment: Segment) -> Event:
    """The detected event in `segment`."""
    f = features(waveform, segment)
    return Event(name_sound(f), segment.onset, segment.end / SAMPLE_RATE, f)
