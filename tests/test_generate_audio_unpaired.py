"""`text_to_audio_pairs` with `pairing.strategy: unpaired` end to end on a tiny random TangoPipeline: every scored
clip of a prompt (perturbed-caption clips included) once, labelled by a threshold on the first scorer, in the
`single_audio` schema; repeated clips dropped; the pair windows, a missing threshold and a changed threshold on
resume refused; summary counts; and `mmpref train` (text_to_audio, KTO) on the output as it is.

Strategy "1.1" samples three clips from one shared seed at steps 1, 1, 2, so clips 0 and 1 of every prompt are
identical (a real duplicate for dedup); strategy "3" adds one clip of the temporally reordered caption, which
"three falling chirps" (one sound) does not have. The first scorer is the share of a clip's energy in its first
half (continuous: the tiny model's clips all look alike to the audio world's ground truth, the second scorer).
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import pyarrow.parquet as pq
import pytest
import soundfile as sf
import test_generate_support as support

from mmpref.cli import main
from mmpref.errors import ConfigError
from mmpref.pipelines.seeds import derive_seed
from mmpref.sandbox.audio.grammar import parse_prompt

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

PROMPTS = ["a low beep followed by two clicks", "two clicks after a rising chirp", "three falling chirps"]
THRESHOLD = 0.56
DURATION = 1.28
SEED = 5


@pytest.fixture(scope="module")
def run(tmp_path_factory, energy_scorer):
    root = tmp_path_factory.mktemp("audio_unpaired")
    model, prompts = support.tiny_tango_and_prompts(root, PROMPTS)
    out = root / "samples"
    config = {
        "pipeline": "text_to_audio_pairs",
        "model": {"path": str(model)},
        "prompts": {"source": str(prompts)},
        "sampling": {"seed": SEED, "steps": 2, "guidance_scale": 3.0, "audio_length_in_s": DURATION},
        "strategies": [{"name": "1.1", "samples": 3, "steps": [1, 1, 2], "shared_seed": True},
                       {"name": "3", "samples": 1, "perturb": "temporal", "perturbed": 1}],
        "scorers": [{"label": "early", "scorer": energy_scorer},
                    {"label": "truth", "scorer": "audio_truth", "require_order": False}],
        "pairing": {"strategy": "unpaired", "threshold": THRESHOLD},
        "wav_subtype": "PCM_24",
        "output": {"dir": str(out), "prompts_per_shard": 2, "contact_sheet_pairs": 4},
        "runtime": {"device": "cpu", "batch_size": 4, "threads": 1, "progress": False},
    }
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        summary = support.run_config(config)
    return {"model": model, "out": out, "summary": summary, "config": config, "printed": printed.getvalue()}


def _rows(out):
    return [row for f in sorted((out / "data").glob("*.parquet")) for row in pq.read_table(f).to_pylist()]


def _clips(out):
    return [s for p in sorted((out / "shards").glob("*.json")) for s in json.loads(p.read_text())["samples"]]


def test_every_distinct_scored_clip_is_one_labelled_row(run):
    rows, clips = _rows(run["out"]), _clips(run["out"])
    assert list(rows[0])[:3] == ["prompt", "audio", "label"], "the single_audio schema's columns first"
    meta = json.loads(pq.read_schema(sorted((run["out"] / "data").glob("*.parquet"))[0]).metadata[b"huggingface"])
    assert meta["info"]["features"]["audio"]["_type"] == "Audio"
    scored = {(c["prompt_index"], c["sample_index"]): c for c in clips if c["score"] is not None}
    assert len(scored) == len(clips) == 2 * (3 + 2) + 3, "3 clips of 1.1 per prompt, 2 of strategy 3 where it applies"
    written = [(r["prompt_index"], r["sample_index"]) for r in rows]
    assert len(written) == len(set(written)), "each clip at most once"
    assert set(written) == {k for k in scored if k[1] != 1}, "all but clip 1 of each prompt (a repeat of clip 0)"
    for row in rows:
        clip = scored[(row["prompt_index"], row["sample_index"])]
        assert row["label"] is (row["score"] >= THRESHOLD)
        assert row["score"] == clip["score"] == row["scores"]["early"] and set(row["scores"]) == {"early", "truth"}
        assert row["scorer"] == "early" and row["strategy"] == clip["strategy"] and row["role"] == clip["role"]
        assert row["prompt"] == PROMPTS[row["prompt_index"]], "the original caption, which every clip was scored against"
        wave, rate = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        assert rate == 16000 and wave.shape == (int(DURATION * 16000),)
        assert sf.info(io.BytesIO(row["audio"]["bytes"])).subtype == "PCM_24" and row["audio"]["path"].endswith(".wav")
        if row["role"] == "perturbed":
            assert row["strategy"] == "3" and row["condition"] == clip["condition"] != row["prompt"]
            assert parse_prompt(row["condition"]).groups == parse_prompt(row["prompt"]).groups[::-1]
            assert row["seed"] == derive_seed(SEED, row["prompt_index"], row["sample_index"])
        else:
            assert row["condition"] == row["prompt"]
        assert row["steps"] == ([1, 1, 2][row["sample_index"]] if row["strategy"] == "1.1" else 2)
    assert sum(r["role"] == "perturbed" for r in rows) == 2
    labels = [r["label"] for r in rows]
    assert any(labels) and not all(labels), f"THRESHOLD splits the scores: {sorted(r['score'] for r in rows)}"


def test_summary_counts_add_up(run):
    summary, rows, out = run["summary"], _rows(run["out"]), run["out"]
    written = summary["samples_written"]
    assert written["kept"] == len(rows) and written["threshold"] == THRESHOLD
    assert written["dropped"] == {"duplicate": 3}, "the image pipeline's drop names"
    assert written["kept"] + sum(written["dropped"].values()) == summary["samples"]["scored"]
    assert written["desirable"] == sum(r["label"] for r in rows)
    assert written["desirable"] + written["undesirable"] == written["kept"]
    assert "pairs" not in summary and "margins" not in summary
    assert summary["prompts"]["without_samples"] == [{"index": 2, "strategy": "3",
                                                      "reason": "no temporal perturbation of this caption"}]
    assert sum(s["samples"] for s in summary["strategies"].values()) == written["kept"]
    assert set(summary["scores_by_scorer"]) == {"early", "truth"}
    assert json.loads((out / "manifest.json").read_text())["rows"] == len(rows)
    assert (f"wrote {len(rows)} samples ({written['desirable']} desirable, {written['undesirable']} undesirable) "
            "from 3 prompts") in run["printed"]


def test_contact_sheet_puts_desirable_mels_beside_undesirable(run):
    from PIL import Image

    from mmpref.pipelines.report import sample_caption

    perturbed = next(r for r in _rows(run["out"]) if r["role"] == "perturbed")
    label = "desirable" if perturbed["label"] else "undesirable"
    assert sample_caption(perturbed, 200) == (f"{label} {perturbed['score']:.4g}, made from '{perturbed['condition']}'",
                                              perturbed["prompt"])
    original = next(r for r in _rows(run["out"]) if r["role"] == "original")
    label = "desirable" if original["label"] else "undesirable"
    assert sample_caption(original, 200) == (f"{label} {original['score']:.4g}", original["prompt"])
    assert sample_caption(original, 8) == (label[:8], original["prompt"][:8])

    written = run["summary"]["samples_written"]
    lines = min(4, max(written["desirable"], written["undesirable"]))
    with Image.open(run["out"] / "contact_sheet.png") as sheet:
        assert sheet.size == (2 * 256 + 3 * 6, lines * (128 + 30 + 6) + 6)
    for name in ("score_distributions.png", "scores_by_scorer.png"):
        assert (run["out"] / name).read_bytes()[:4] == b"\x89PNG"


def test_resume_keeps_the_shards_and_refuses_a_changed_threshold(run, capsys):
    out = run["out"]
    before = {p.name: p.read_bytes() for p in (out / "data").glob("*.parquet")}
    assert support.run_config(run["config"])["samples_written"] == run["summary"]["samples_written"]
    assert {p.name: p.read_bytes() for p in (out / "data").glob("*.parquet")} == before
    path = support.write_config(out.parent / "again.yaml", run["config"])
    for override, key in (("pairing.threshold=0.6", "pairing.threshold"),
                          ("pairing.strategy=best_vs_worst", "pairing.strategy")):
        capsys.readouterr()
        assert main(["generate", str(path), override]) == 2
        assert f"differs in: {key}" in capsys.readouterr().err


@pytest.mark.parametrize("position, key, value, message", [
    (0, "min_margin", 0.1, r": scorers\.early\.min_margin filters pairs.*unset it \(scorers\.0\.min_margin=0\)"),
    (1, "min_winner", 0.5, r": scorers\.truth\.min_winner filters pairs.*unset it \(scorers\.1\.min_winner=null\)"),
    (1, "max_margin", 0.5, r": scorers\.truth\.max_margin filters pairs.*\(scorers\.1\.max_margin=null\)"),
    (1, "min_loser", 0.0, r": scorers\.truth\.min_loser filters pairs"),
    (0, None, None, "pairing.threshold is required with pairing.strategy: unpaired"),
])
def test_pair_filters_and_a_missing_threshold_are_refused(run, position, key, value, message):
    from mmpref.config import load_config

    scorers = [dict(s) for s in run["config"]["scorers"]]
    overrides = ["pairing.threshold=null"] if key is None else []
    if key is not None:
        scorers[position][key] = value
    path = support.write_config(run["out"].parent / "check.yaml", {**run["config"], "scorers": scorers})
    with pytest.raises(ConfigError, match=message) as err:
        load_config(str(path), overrides, kind="pipeline")
    assert "\n" not in str(err.value)


def test_one_clip_strategies_are_unpaired_only(run):
    from mmpref.config import load_config

    config = {**run["config"], "strategies": [{"name": "1.2", "samples": 1}]}
    path = support.write_config(run["out"].parent / "one.yaml", config)
    assert load_config(str(path), kind="pipeline").config.strategies[0].samples == 1
    with pytest.raises(ConfigError, match="a pair needs two clips"):
        load_config(str(path), ["pairing.strategy=best_vs_worst"], kind="pipeline")


def test_unpaired_audio_trains_with_kto(run, tmp_path, capsys):
    kept = run["summary"]["samples_written"]["kept"]
    train = support.write_config(tmp_path / "train.yaml", {
        "method": "preference",
        "model": {"adapter": {"name": "text_to_audio", "pretrained": str(run["model"]), "audio_length_in_s": DURATION,
                              "max_text_length": 16},
                  "finetune": "lora", "lora": {"rank": 4}},
        "objective": {"name": "kto", "beta": 2000},
        "data": {"source": str(run["out"])},
        "training": {"max_steps": 2, "batch_size": 2, "log_every": 1, "checkpoint_every": 0},
        "logging": {"trackers": [], "progress_bar": False},
        "output_dir": str(tmp_path / "trained"),
    })
    capsys.readouterr()
    assert main(["train", str(train)]) == 0, capsys.readouterr().err
    assert f"training on the sampler's own latents stored with {kept} rows" in capsys.readouterr().out, \
        "each clip's audio_latents, not its re-encoded WAV"
    report = json.loads((tmp_path / "trained" / "data_report.json").read_text())
    assert report["schema"] == "single_audio" and report["used"] == kept and report["bad_rows"] == 0
    rows = [json.loads(line) for line in (tmp_path / "trained" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(math.isfinite(r["loss"]) for r in rows)
