"""Renders of training prompts at a few shared layouts, as an audio pairs parquet the trainer reads.

Every prompt is rendered at layout seeds 0..layouts-1, and at one seed all prompts with the same number
of events put their events in the same onset slots, with the same per-slot duration, loudness and pitch
draws: the only thing that varies between two such clips is which sound sits in which slot. That makes
temporal order a short, consistent signal: the audio base's finishing stage (scripts/train_audio_base.py)
fine-tunes on these clips, as the shapes base's does on shared spatial layouts
(mmpref/sandbox/shapes/layout_pairs.py).

`render.layout` does not share slots: its onsets come from sound-specific durations (a click lasts 6 ms,
a chirp up to 200 ms), so at one seed the same slot of two 3- or 4-event prompts moves by up to 0.3 s of
the 1.28 s clip. `shared_layout` therefore reserves a slot of the longest sound's duration per event, and
draws the slots' onsets from the seed and the event count only; each event starts at its slot's onset.

chosen is the prompt's clip; rejected is the same layout with the two groups of a sequence in reversed
order, or a near miss of the prompt (singles and counts). Rows follow Audio-Alpaca's schema: `prompt`,
`chosen`, `rejected` as datasets Audio {bytes, path} structs of 16-bit WAV, plus the `layout` seed. SFT
reads only chosen, DPO reads both.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mmpref.sandbox.audio.grammar import Prompt, near_misses, parse_prompt
from mmpref.sandbox.audio.render import DURATION, MARGIN, MIN_GAP, SAMPLE_RATE, SOUND_SPECS, PlacedEvent, draw

SLOT = max(spec["duration"][1] for spec in SOUND_SPECS.values())  # 0.2 s: room for any sound


def contrast(prompt: Prompt | str) -> Prompt:
    """The rejected scene for `prompt`: a sequence's two groups in reversed order, or its first near miss."""
    prompt = parse_prompt(prompt)
    if prompt.connective is not None:
        return Prompt(prompt.groups[::-1], prompt.connective)
    return near_misses(prompt)[0]


def slot_onsets(events: int, seed: int, duration: float = DURATION) -> np.ndarray:
    """Onsets (s) of `events` slots, a function of the seed and the event count only."""
    slack = duration - 2 * MARGIN - events * SLOT - MIN_GAP * (events - 1)
    if events < 1 or slack < 0:
        raise ValueError(f"{events} events do not fit in shared slots of a {duration} s clip")
    extra = np.random.default_rng([seed, events]).dirichlet(np.ones(events + 1)) * slack
    return MARGIN + extra[:-1].cumsum() + np.arange(events) * (SLOT + MIN_GAP)


def shared_layout(prompt: Prompt | str, seed: int, duration: float = DURATION) -> list[PlacedEvent]:
    """The prompt's events in order, event i at slot i of `slot_onsets`; its duration, amplitude and pitch
    take the slot's shared uniform draws within the sound's ranges (`render.SOUND_SPECS`)."""
    prompt = parse_prompt(prompt)
    sounds = prompt.events
    onsets = slot_onsets(len(sounds), seed, duration)
    draws = np.random.default_rng([seed, len(sounds), 1]).uniform(size=(len(sounds), 4))
    events = []
    for sound, onset, (u_len, u_amp, u_f0, u_f1) in zip(sounds, onsets, draws):
        spec = SOUND_SPECS[sound]

        def pick(key: str, u: float, spec=spec) -> float:
            low, high = spec[key]
            return float(low + u * (high - low))

        f_start = pick("f0", u_f0) if "f0" in spec else 0.0
        f_end = pick("f1", u_f1) if "f1" in spec else f_start
        events.append(PlacedEvent(sound, float(onset), pick("duration", u_len), pick("amplitude", u_amp), f_start, f_end))
    return events


def render_shared(prompt: Prompt | str, seed: int, duration: float = DURATION) -> np.ndarray:
    """The prompt's clip at shared layout `seed` (float32, 16 kHz; background and phases from the seed)."""
    return draw(shared_layout(prompt, seed, duration), seed, duration)


def wav_bytes(clip: np.ndarray) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(clip, -1.0, 1.0), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_layout_pairs(path: Path, prompts: Iterable[Prompt], layouts: int) -> int:
    """Write (prompt, chosen, rejected, layout) rows for every prompt at layout seeds 0..layouts-1
    atomically; the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if layouts < 1:
        raise ValueError(f"layouts must be >= 1, got {layouts}")
    rows = []
    for i, prompt in enumerate(prompts):
        prompt = parse_prompt(prompt)
        for seed in range(layouts):
            rows.append({
                "prompt": prompt.text,
                "chosen": {"bytes": wav_bytes(render_shared(prompt, seed)), "path": f"{i:05d}_{seed}_chosen.wav"},
                "rejected": {"bytes": wav_bytes(render_shared(contrast(prompt), seed)),
                             "path": f"{i:05d}_{seed}_rejected.wav"},
                "layout": seed,
            })
    audio = {"_type": "Audio"}
    features = {"prompt": {"dtype": "string", "_type": "Value"}, "chosen": audio, "rejected": audio,
                "layout": {"dtype": "int64", "_type": "Value"}}
    table = pa.Table.from_pylist(rows)
    table = table.replace_schema_metadata({b"huggingface": json.dumps({"info": {"features": features}}).encode()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return len(rows)
