"""Unpaired output of `text_to_audio_pairs` (pairing.strategy: unpaired): every scored clip once, labelled.

A prompt's clips, of every strategy and role, become one row each: `prompt` (the original caption, which
every clip was scored against), `audio` (a datasets Audio struct of WAV bytes, as the pair rows store
clips), `label` (the first scorer's score >= pairing.threshold) - the `single_audio` schema `mmpref train`
reads for unpaired objectives (KTO, BCO, NPO) - plus provenance: the caption the clip was generated from
(`condition`, perturbed for strategy 2/3 clips), its `role`, scores under every scorer, seed and steps.
With dedup a clip identical to an earlier clip of the prompt is dropped (counted as "duplicate", as in
an image run), so no clip counts twice in an unpaired loss. The contact sheet puts desirable clips' mel
spectrograms beside undesirable ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mmpref.pipelines.filters import dedup_samples
from mmpref.pipelines.pairing import PairingConfig, label_samples
from mmpref.pipelines.prompts import Prompt
from mmpref.pipelines.writer import write_table


def clip_rows(prompt: Prompt, clips: Sequence[Any], strategies: Sequence[str], primary: str, pairing: PairingConfig,
              dedup: bool, encode: Callable[[Any], dict[str, Any]], latents: Callable[[Any], bytes | None] = lambda _: None,
              latent_space: str | None = None) -> tuple[list[dict[str, Any]], dict[str, int], list[dict[str, Any]]]:
    """One prompt's rows: each distinct scored clip (`clips` in sample order, with .request, .scores, .hash,
    .strategy, .role; `encode(clip)` its Audio struct, `latents(clip)` its stored latents or None), the drops
    per SAMPLE_FILTERS name, and each strategy of the prompt that wrote no row with why (summary.json's
    prompts.without_samples)."""
    scored = [c for c in clips if c.scores is not None]
    kept, dropped = dedup_samples([c.hash for c in scored], dedup)
    labels = label_samples([c.scores[primary] for c in scored], pairing)
    rows = []
    for position in kept:
        clip, request = scored[position], scored[position].request
        rows.append({
            "prompt": prompt.text,
            "audio": encode(clip),
            "label": labels[position],
            "score": clip.scores[primary],
            "scores": dict(clip.scores),
            "strategy": strategies[clip.strategy],
            "condition": request.condition,
            "role": clip.role,
            "seed": request.seed,
            "steps": request.steps,
            "sample_index": request.sample_index,
            "prompt_index": prompt.index,
            "scorer": primary,
            "audio_latents": latents(clip),
            "latent_space": latent_space,
        })
    written = {strategies[scored[p].strategy] for p in kept}
    without = []
    for k in dict.fromkeys(c.strategy for c in clips):
        if strategies[k] not in written:
            block = [c for c in clips if c.strategy == k]
            count = sum(c.scores is not None for c in block)
            why = f"only 0 of {len(block)} clips scored" if not count else \
                f"all {count} scored clips repeat earlier clips of the prompt (duplicate)"
            without.append({"index": prompt.index, "strategy": strategies[k], "reason": why})
    return rows, dropped, without


def sample_features(labels: Sequence[str]) -> Any:
    """datasets Features of an unpaired shard: the `single_audio` columns first, then provenance."""
    import datasets

    value = datasets.Value
    return datasets.Features({
        "prompt": value("string"),  # the original caption (every clip is scored against it)
        "audio": datasets.Audio(decode=False),  # {bytes: WAV, path: name}
        "label": value("bool"),  # desirable: the first scorer's score >= pairing.threshold
        "score": value("float64"),  # under the first scorer
        "scores": {label: value("float64") for label in labels},  # every scorer, by label
        "strategy": value("string"),  # the strategy's name (1.1, 1.2, 2, 3)
        "condition": value("string"),  # the caption the clip was generated from (perturbed for strategy 2/3)
        "role": value("string"),  # original or perturbed
        "seed": value("int64"),
        "steps": value("int32"),
        "sample_index": value("int32"),
        "prompt_index": value("int64"),
        "scorer": value("string"),  # the first scorer's label
        "audio_latents": value("binary"),  # the sampler's own latents (npy, float16), null when not kept
        "latent_space": value("string"),  # id of the VAE that decodes them (mmpref/audio/latents.py)
    })


def write_audio_samples(rows: Sequence[dict[str, Any]], path: Path, labels: Sequence[str]) -> int:
    """A shard of labelled clips (sample_features) written atomically; returns its size."""
    return write_table(rows, path, sample_features(labels).arrow_schema)


def mel_tile(value: Any) -> bytes:
    """PNG bytes of a clip's mel spectrogram (an Audio struct or WAV bytes); a gray tile when it does not decode."""
    import io

    from PIL import Image

    from mmpref.audio.mel import decode_audio, log_mel, mel_picture

    try:
        wave, _ = decode_audio(value)
        picture = mel_picture(log_mel(wave))
    except Exception:  # noqa: BLE001 - a picture is not worth failing the report
        picture = Image.new("RGB", (8, 8), "gray")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


MEL_CELL = (256, 128)
"""A mel tile's size on a contact sheet (time runs along the width)."""


def audio_sample_sheet(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Mel spectrograms of desirable | undesirable clips per line, each with its score and caption."""
    from mmpref.pipelines.report import sample_contact_sheet

    sample_contact_sheet(rows, path, MEL_CELL, picture=lambda row: mel_tile(row["audio"]))


__all__ = ["MEL_CELL", "audio_sample_sheet", "clip_rows", "mel_tile", "sample_features", "write_audio_samples"]
