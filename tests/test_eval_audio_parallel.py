"""`mmpref eval` on audio in two processes: the same clips, scores and files as in one."""

from __future__ import annotations

import json
from pathlib import Path

from mmpref.evaluation.audio import evaluate_audio
from mmpref.evaluation.engine import EvalModel, EvalSettings
from mmpref.sandbox.audio_base.base import audio_base_path


def run(out: Path, processes: int) -> list[str]:
    base = str(audio_base_path())
    settings = EvalSettings(
        models=[EvalModel("base", base), EvalModel("again", base)], prompts="builtin:audio_heldout", limit=3,
        seeds_per_prompt=2, scorers=["audio_truth"], steps=3, batch_size=2, resamples=200, grid_prompts=3,
        out=str(out), save_images=True, processes=processes, threads=1)
    logs: list[str] = []
    evaluate_audio(settings, log=logs.append)
    return logs


def test_two_processes_write_the_same_clips_and_scores_as_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    logs_one, logs_two = run(one, 1), run(two, 2)
    assert " in 2 processes" in logs_two[0] and "processes" not in logs_one[0]
    assert (one / "samples.jsonl").read_text() == (two / "samples.jsonl").read_text()
    clips = sorted(p.relative_to(one) for p in (one / "clips").rglob("*.wav"))
    assert len(clips) == 2 * 3 * 2  # 2 models x 3 prompts x 2 seeds (3 pipeline calls per model over 2 workers)
    assert all((one / c).read_bytes() == (two / c).read_bytes() for c in clips)


def test_the_eval_command_takes_an_audio_pipeline_to_the_audio_evaluator(tmp_path, capsys):
    """With no --prompts / --scorers, audio models get the audio world's held-out prompts and ground truth."""
    from mmpref.cli import main

    out = tmp_path / "cli"
    base = str(audio_base_path())
    rc = main(["eval", f"base={base}", f"again={base}", "--limit", "2", "--seeds", "1", "--out", str(out),
               "--set", "steps=2", "batch_size=2", "resamples=100", "grid_prompts=2", "save_images=true"])
    assert rc == 0
    assert len(list((out / "clips").rglob("*.wav"))) == 2 * 2  # 2 models x 2 prompts x 1 seed
    assert "win rate" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["prompts"] == "builtin:audio_heldout" and report["settings"]["scorers"] == ["audio_truth"]


def test_a_corrupt_model_index_is_named_in_one_line(tmp_path):
    import pytest

    from mmpref.errors import UserError
    from mmpref.evaluation.audio import is_audio_model

    (tmp_path / "model_index.json").write_text("{ not json")
    with pytest.raises(UserError, match=r"model 'broken': .*model_index.json is not valid JSON"):
        is_audio_model(EvalModel("broken", str(tmp_path)))
