"""Find the events in a waveform: where the short-time energy rises clearly above the background.

The envelope is the RMS level in 16 ms frames every 5 ms. Segmentation uses hysteresis: a segment is a
run of frames above a low threshold (6 dB above the background, the envelope's 10th percentile, as
every rendered clip is mostly silence; and at most 45 dB below the loudest frame) holding at least one
frame above a high threshold (15 dB above the background, at most 35 dB below the loudest frame). The
low threshold carries a segment through the flutter a Griffin-Lim tone has, the high one keeps
background ripples out; runs closer than 20 ms are merged. Thresholds are relative, so a clip's gain
does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmpref.sandbox.audio.render import SAMPLE_RATE

FRAME = 256  # samples (16 ms)
HOP = 80  # samples (5 ms)
ABOVE_BACKGROUND_DB = 15.0  # high threshold
BELOW_PEAK_DB = 35.0
LOW_ABOVE_BACKGROUND_DB = 6.0  # low threshold
LOW_BELOW_PEAK_DB = 45.0
MERGE_GAP = 0.02  # seconds


@dataclass(frozen=True)
class Segment:
    """An active stretch of the clip: first and one-past-last sample, and its loudest frame level (dB)."""

    start: int
    end: int
    peak_db: float

    @property
    def duration(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE

    @property
    def onset(self) -> float:
        return self.start / SAMPLE_RATE


def envelope_db(waveform: np.ndarray, frame: int = FRAME, hop: int = HOP) -> np.ndarray:
    """RMS level (dB re full scale) of each frame; frame i covers samples [i * hop, i * hop + frame)."""
    x = np.asarray(waveform, dtype=np.float64)
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    power = np.convolve(x * x, np.ones(frame) / frame, mode="valid")[::hop]
    return 10.0 * np.log10(power + 1e-12)


def find_segments(
    waveform: np.ndarray,
    *,
    above_background_db: float = ABOVE_BACKGROUND_DB,
    below_peak_db: float = BELOW_PEAK_DB,
    merge_gap: float = MERGE_GAP,
    frame: int = FRAME,
    hop: int = HOP,
) -> list[Segment]:
    """The active segments of a 16 kHz clip, in time order."""
    env = envelope_db(waveform, frame, hop)
    background, peak = float(np.percentile(env, 10)), float(env.max())
    high = max(background + above_background_db, peak - below_peak_db)
    low = min(high, max(background + LOW_ABOVE_BACKGROUND_DB, peak - LOW_BELOW_PEAK_DB))
    runs = [(a, b) for a, b in _runs(env > low) if env[a:b].max() > high]
    merged: list[list[int]] = []
    max_gap = merge_gap * SAMPLE_RATE / hop
    for a, b in runs:
        if merged and a - merged[-1][1] < max_gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    segments = []
    for a, b in merged:
        # Frame centres bound the segment, so a 6 ms click spans about a frame, not 16 ms + hops.
        start = max(0, a * hop + (frame - hop) // 2)
        end = min(len(waveform), (b - 1) * hop + (frame + hop) // 2)
        segments.append(Segment(start, end, float(env[a:b].max())))
    return segments


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a boolean vector."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))
