"""`mmpref generate` with `text_to_audio_pairs` end to end on a tiny random TangoPipeline (saved and loaded through
the real path), ranked by a tiny CLAP model (real ClapModel files) and filtered by the audio world's event
detector: well-formed Audio-Alpaca pairs, WAVs of the configured length and rate, reproducible seeds, a
resumed run that changes nothing, the report, and `mmpref train` (text_to_audio, DPO) on the output as it is."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import test_generate_support as support
import torch

from mmpref.cli import main
from mmpref.sandbox.audio.grammar import parse_prompt

PROMPTS = ["a low beep followed by two clicks", "two clicks after a rising chirp", "a noise burst then a high beep",
           "three falling chirps"]
STEPS_11 = [1, 3]
MIN_MARGIN = 0.001
DURATION = 1.28
SCORERS = {"early", "clap", "events"}

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def run(tmp_path_factory, energy_scorer):
    from mmpref.reward_models.testing import make_clap

    root = tmp_path_factory.mktemp("audio_generate")
    model, prompts = support.tiny_tango_and_prompts(root, PROMPTS)
    clap = make_clap(root / "clap")
    out = root / "pairs"
    config = {
        "pipeline": "text_to_audio_pairs",
        "model": {"path": str(model)},
        "prompts": {"source": str(prompts)},
        "sampling": {"seed": 5, "steps": 2, "guidance_scale": 3.0, "audio_length_in_s": DURATION},
        "strategies": [{"name": "1.1", "samples": 2, "steps": STEPS_11},
                       {"name": "2", "samples": 1, "perturb": "event", "perturbed": 2},
                       {"name": "3", "samples": 1, "perturb": "temporal", "perturbed": 1}],
        "scorers": [{"label": "early", "scorer": energy_scorer, "min_margin": MIN_MARGIN},
                    {"label": "clap", "scorer": {"name": "clap", "weights": clap, "scaled": False},
                     "require_order": False, "min_winner": -1.0},
                    {"label": "events", "scorer": "audio_event_detector", "require_order": False, "min_winner": 0.0}],
        "wav_subtype": "FLOAT",
        "output": {"dir": str(out), "prompts_per_shard": 2, "contact_sheet_pairs": 4},
        "runtime": {"device": "cpu", "batch_size": 4, "threads": 1, "progress": False},
    }
    summary = support.run_config(config)
    return {"model": model, "out": out, "summary": summary, "config": config, "root": root}


def _rows(out):
    return [row for f in sorted((out / "data").glob("*.parquet")) for row in pq.read_table(f).to_pylist()]


def test_pairs_are_well_formed_audio_alpaca_rows(run):
    rows, summary = _rows(run["out"]), run["summary"]
    assert len(rows) == summary["pairs"]["kept"] >= 3
    pairs = summary["pairs"]
    assert pairs["candidates"] == pairs["kept"] + sum(pairs["dropped"].values())
    assert set(pairs["dropped"]) >= {"early.order", "early.min_margin", "clap.min_winner", "events.min_winner", "duplicate"}
    assert summary["samples"]["failed"] == 0 and summary["samples"]["requested"] == 4 * 2 + 4 * 3 + 3 * 2
    assert list(rows[0])[:4] == ["prompt", "chosen", "rejected", "strategy"], "Audio-Alpaca's columns first"
    meta = json.loads(pq.read_schema(sorted((run["out"] / "data").glob("*.parquet"))[0]).metadata[b"huggingface"])
    assert meta["info"]["features"]["chosen"]["_type"] == "Audio"
    for row in rows:
        assert row["chosen_score"] >= row["rejected_score"] + MIN_MARGIN
        assert row["chosen_scores"]["early"] == row["chosen_score"] and set(row["rejected_scores"]) == SCORERS
        assert row["margin"] == pytest.approx(row["chosen_score"] - row["rejected_score"])
        for side in ("chosen", "rejected"):
            wave, rate = sf.read(io.BytesIO(row[side]["bytes"]), dtype="float32")
            info = sf.info(io.BytesIO(row[side]["bytes"]))
            assert rate == 16000 and wave.shape == (int(DURATION * 16000),) and info.subtype == "FLOAT"
            assert row[side]["path"].endswith(".wav")
        assert row["chosen_prompt"] == row["prompt"], "winners are clips of the original caption"
        if row["strategy"] == "1.1":
            assert row["rejected_prompt"] == row["prompt"] and {row["chosen_steps"], row["rejected_steps"]} <= set(STEPS_11)
        else:
            assert row["rejected_prompt"] != row["prompt"]
        if row["strategy"] == "3":
            assert parse_prompt(row["rejected_prompt"]).groups == parse_prompt(row["prompt"]).groups[::-1]
    assert {r["strategy"] for r in rows} <= {"1.1", "2", "3"}
    assert not any(r["strategy"] == "3" and r["prompt_index"] == 3 for r in rows), "no temporal edit of one sound"
    assert {"index": 3, "strategy": "3", "reason": "no temporal perturbation of this caption"} in \
        summary["prompts"]["without_pairs"]
    assert summary["strategies"]["3"]["clips"] == 3 * 2 and summary["strategies"]["1.1"]["clips"] == 4 * 2


def test_report_and_plots(run):
    summary, out = run["summary"], run["out"]
    assert set(summary["scores_by_scorer"]) == SCORERS
    assert summary["scores_by_scorer"]["clap"]["count"] == summary["samples"]["scored"]
    assert sum(s["pairs"] for s in summary["strategies"].values()) == summary["pairs"]["kept"]
    assert summary["audio"]["sample_rate"] == 16000
    for name in ("summary.json", "score_distributions.png", "scores_by_scorer.png", "contact_sheet.png", "config.yaml"):
        assert (out / name).is_file(), name
    records = [json.loads(p.read_text()) for p in sorted((out / "shards").glob("*.json"))]
    clips = [s for r in records for s in r["samples"]]
    assert {c["role"] for c in clips} == {"original", "perturbed"} and all(c["scores"] for c in clips)


def test_seeds_reproduce_a_clip_alone(run):
    from mmpref.audio.pipeline import TangoPipeline

    row = next(r for r in _rows(run["out"]) if r["strategy"] != "1.1")
    pipe = TangoPipeline.from_pretrained(str(run["model"]))
    pipe.set_progress_bar_config(disable=True)
    for side in ("chosen", "rejected"):
        generator = torch.Generator("cpu").manual_seed(row[f"{side}_seed"])
        wave = pipe(row[f"{side}_prompt"], num_inference_steps=row[f"{side}_steps"], guidance_scale=3.0,
                    audio_length_in_s=DURATION, generator=generator).audios[0]
        stored, _ = sf.read(io.BytesIO(row[side]["bytes"]), dtype="float32")
        scale = np.abs(stored).max()
        assert scale > 0 and np.abs(wave - stored).max() < 1e-3 * scale, "the recorded seed, steps and caption give it"
        other = pipe(row[f"{side}_prompt"], num_inference_steps=row[f"{side}_steps"], guidance_scale=3.0,
                     audio_length_in_s=DURATION, generator=torch.Generator("cpu").manual_seed(1)).audios[0]
        assert np.abs(other - stored).max() > 1e-2 * scale, "another seed gives another clip"


def test_rerun_resumes_without_regenerating(run):
    out = run["out"]
    before = {p.name: p.read_bytes() for p in (out / "data").glob("*.parquet")}
    summary = support.run_config(run["config"])
    assert {p.name: p.read_bytes() for p in (out / "data").glob("*.parquet")} == before
    assert summary["pairs"] == run["summary"]["pairs"]


def test_generated_audio_pairs_train_for_a_step(run, tmp_path, capsys):
    kept = run["summary"]["pairs"]["kept"]
    train = tmp_path / "train.yaml"
    train.write_text(f"""method: preference
model:
  adapter: {{name: text_to_audio, pretrained: {run['model']}, audio_length_in_s: {DURATION}, max_text_length: 16}}
  finetune: lora
  lora: {{rank: 4}}
objective: {{name: dpo, beta: 2000}}
data: {{source: {run['out']}}}
training: {{max_steps: 1, batch_size: 2, log_every: 1, checkpoint_every: 0}}
logging: {{trackers: [], progress_bar: false}}
output_dir: {tmp_path / 'trained'}
""")
    capsys.readouterr()
    code = main(["train", str(train)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "trained" / "data_report.json").read_text())
    assert report["schema"] == "pairs" and report["used"] == kept and report["bad_rows"] == 0
    rows = [json.loads(line) for line in (tmp_path / "trained" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-6), "policy == reference at step 1"


def test_two_processes_write_the_same_dataset_as_one(run):
    """Shards split over spawned worker processes give byte-identical parquet files (WAV bytes included)."""
    root = run["root"]
    outputs = {}
    for processes in (1, 2):
        out = root / f"procs{processes}"
        config = {**run["config"], "output": {"dir": str(out), "prompts_per_shard": 1},
                  "strategies": [{"name": "1.1", "samples": 2, "steps": STEPS_11},
                                 {"name": "3", "samples": 1, "perturb": "temporal", "perturbed": 1}],
                  "scorers": [{"label": "order", "scorer": "audio_order_detector", "require_order": False},
                              {"label": "events", "scorer": "audio_event_detector", "require_order": False}],
                  "prompts": {"source": run["config"]["prompts"]["source"], "limit": 2},
                  "runtime": {**run["config"]["runtime"], "processes": processes}}
        summary = support.run_config(config)
        assert summary["pairs"]["kept"] >= 1
        outputs[processes] = {p.name: p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))}
    assert len(outputs[1]) == 2 and outputs[1] == outputs[2]
