"""Small audio preference datasets in the real on-disk formats (Audio-Alpaca parquet, generic audio pairs).

Audio-Alpaca (declare-lab/audio-alpaca) has columns `prompt`, `chosen` and `rejected` (datasets Audio
features: {bytes, path} structs holding WAV files) and `strategy` (how the pair was made: "1.1", "1.2",
"2", "3"). `write_audio_alpaca_parquet` writes that schema with the `huggingface` feature metadata the
hub's parquet shards carry (so `datasets` sees Audio columns), without needing an audio encoder.
Clips are short tones and noise at 16 kHz (or another rate, to exercise resampling).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

AUDIO_CORRUPT_KINDS = ("undecodable", "empty_audio", "missing_prompt")
STRATEGIES = ("1.1", "1.2", "2", "3")


def tone(rng: np.random.Generator, duration: float = 1.28, sample_rate: int = 16000, noise: float = 0.05) -> np.ndarray:
    """A sine of random pitch (200–3000 Hz) and amplitude with a little white noise, float32."""
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    wave = rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * rng.uniform(200, 3000) * t)
    return (wave + noise * rng.standard_normal(t.shape)).astype(np.float32)


def wav_bytes(wave: np.ndarray, sample_rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1, 1), sample_rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def audio_alpaca_rows(n: int, *, corrupt: tuple[str, ...] = (), seed: int = 0, duration: float = 1.28,
                      sample_rate: int = 16000) -> list[dict[str, Any]]:
    """`n` pairs in Audio-Alpaca's schema, then one row per corrupt kind (an undecodable clip, empty audio bytes,
    a missing prompt). Clips may differ in length from `duration` (the adapter pads or trims)."""
    rng = np.random.default_rng(seed)

    def clip(i: int, side: str) -> dict[str, Any]:
        length = duration * rng.uniform(0.7, 1.3)
        return {"bytes": wav_bytes(tone(rng, length, sample_rate), sample_rate), "path": f"{i:05d}_{side}.wav"}

    rows: list[dict[str, Any]] = []
    for i in range(n):
        rows.append({"prompt": f"a dog barking then two clicks {i}", "chosen": clip(i, "chosen"),
                     "rejected": clip(i, "rejected"), "strategy": STRATEGIES[i % len(STRATEGIES)]})
    for kind in corrupt:
        i = len(rows)
        row = {"prompt": f"corrupt {kind}", "chosen": clip(i, "chosen"), "rejected": clip(i, "rejected"),
               "strategy": "1.1"}
        if kind == "undecodable":
            row["rejected"] = {"bytes": b"RIFF\x00\x00\x00\x00WAVEnot really audio", "path": f"{i:05d}_rejected.wav"}
        elif kind == "empty_audio":
            row["chosen"] = {"bytes": wav_bytes(np.zeros(0, dtype=np.float32), sample_rate), "path": f"{i:05d}_chosen.wav"}
        elif kind == "missing_prompt":
            row["prompt"] = None
        else:
            raise ValueError(f"unknown corrupt kind {kind!r}; one of {AUDIO_CORRUPT_KINDS}")
        rows.append(row)
    return rows


def write_audio_alpaca_parquet(path: str | Path, n: int = 8, *, corrupt: tuple[str, ...] = (), seed: int = 0,
                               duration: float = 1.28, sample_rate: int = 16000) -> Path:
    """Write `audio_alpaca_rows(...)` as a parquet file with datasets' Audio feature metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    audio = {"_type": "Audio"}
    features = {"prompt": {"dtype": "string", "_type": "Value"}, "chosen": audio, "rejected": audio,
                "strategy": {"dtype": "string", "_type": "Value"}}
    table = pa.Table.from_pylist(audio_alpaca_rows(n, corrupt=corrupt, seed=seed, duration=duration,
                                                   sample_rate=sample_rate))
    table = table.replace_schema_metadata({b"huggingface": json.dumps({"info": {"features": features}}).encode()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def write_audio_pairs_folder(folder: str | Path, n: int = 6, seed: int = 0, duration: float = 1.28,
                             sample_rate: int = 16000, fmt: str = "WAV") -> Path:
    """A folder of audio files plus `metadata.jsonl` with prompt/chosen/rejected as relative paths (generic schema)."""
    import soundfile as sf

    folder = Path(folder)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        names = []
        for side in ("chosen", "rejected"):
            name = f"audio/{i:03d}_{side}.{fmt.lower()}"
            sf.write(str(folder / name), tone(rng, duration, sample_rate), sample_rate, format=fmt)
            names.append(name)
        lines.append(json.dumps({"prompt": f"pair {i}", "chosen": names[0], "rejected": names[1]}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder
