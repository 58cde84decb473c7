"""`pairing.strategy: unpaired`: every scored sample once, labelled by a score threshold, in the `single` schema
that unpaired objectives (KTO, BCO, NPO) train on as it is; pair runs are unchanged (tests/test_generate_*.py).

The tiny random SD pipeline's brightness scores sit near 0.42 (spread ~0.003), so THRESHOLD splits them.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import test_generate_support as support

from mmpref.cli import main
from mmpref.errors import ConfigError
from mmpref.pipelines.image_sampler import DiffusersImageSampler
from mmpref.pipelines.seeds import derive_seed
from mmpref.pipelines.writer import SINGLE_SCHEMA, decode_png

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # the generate runs and the KTO run set it up

THRESHOLD = 0.42
UNPAIRED = {"strategy": "unpaired", "threshold": THRESHOLD}


class FirstTwiceSampler(DiffusersImageSampler):
    """The real sampler, except that sample 1 of a prompt is a copy of its sample 0: identical samples for
    the dedup filter to drop (prompt-major batches make sample 0 come first)."""

    def sample(self, requests):
        firsts = self.__dict__.setdefault("firsts", {})
        results = []
        for res in super().sample(requests):
            index = (res.request.prompt_index, res.request.sample_index)
            if index[1] == 0:
                firsts[index[0]] = res.sample
            results.append(replace(res, sample=firsts[index[0]].copy()) if index[1] == 1 else res)
        return results


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return support.build_model(tmp_path_factory.mktemp("tiny") / "sd")


@pytest.fixture(scope="module")
def unpaired(model, tmp_path_factory) -> tuple[dict, Path, dict, str]:
    """6 prompts x 3 samples in 3 shards, sample 1 of each prompt a duplicate; returns the console line too."""
    out = tmp_path_factory.mktemp("unpaired") / "out"
    config = support.config_dict(model, out, pairing=UNPAIRED)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr("mmpref.pipelines.text_to_image.DiffusersImageSampler", FirstTwiceSampler)
        summary = support.run_config(config)
    return config, out, summary, printed.getvalue()


def _sample_records(out: Path) -> list[dict]:
    return [s for p in sorted((out / "shards").glob("*.json")) for s in json.loads(p.read_text())["samples"]]


def test_every_distinct_scored_sample_is_one_labelled_row(unpaired):
    _, out, summary, printed = unpaired
    dataset = support.read_pairs(out)
    assert dataset.column_names == SINGLE_SCHEMA.names
    rows = dataset.to_list()
    scored = {(s["prompt_index"], s["sample_index"]): s for s in _sample_records(out) if s["score"] is not None}
    written = [(r["prompt_index"], r["sample_index"]) for r in rows]
    assert len(written) == len(set(written)) == 12, "each sample at most once"
    assert set(written) == {k for k in scored if k[1] != 1}, "all but the duplicates (sample 1 = sample 0)"
    for row in rows:
        key = (row["prompt_index"], row["sample_index"])
        assert row["score"] == scored[key]["score"] and row["seed"] == derive_seed(7, *key)
        assert row["label"] is (row["score"] >= THRESHOLD)
        assert row["strategy"] == "unpaired" and row["scorer"] == "brightness"
        pixels = decode_png(row["image"])
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    labels = [r["label"] for r in rows]
    assert any(labels) and not all(labels), f"THRESHOLD splits the scores: {sorted(r['score'] for r in rows)}"
    report = summary["samples_written"]
    assert report["kept"] == len(rows) and report["dropped"] == {"duplicate": 6} and report["threshold"] == THRESHOLD
    assert summary["samples"]["scored"] == 18 == report["kept"] + sum(report["dropped"].values())
    assert report["desirable"] == sum(labels) and report["desirable"] + report["undesirable"] == report["kept"]
    assert "pairs" not in summary and "margins" not in summary and summary["prompts"]["without_samples"] == []
    assert json.loads((out / "summary.json").read_text()) == summary
    assert json.loads((out / "manifest.json").read_text())["rows"] == len(rows)
    assert (f"wrote 12 samples ({report['desirable']} desirable, {report['undesirable']} undesirable) "
            "from 6 prompts") in printed


def test_contact_sheet_puts_desirable_beside_undesirable(unpaired):
    from PIL import Image

    config, out, summary, _ = unpaired
    lines = min(config["output"]["contact_sheet_pairs"],
                max(summary["samples_written"]["desirable"], summary["samples_written"]["undesirable"]))
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.size == (2 * 128 + 3 * 6, lines * (128 + 30 + 6) + 6)
    assert (out / "score_distributions.png").read_bytes()[:4] == b"\x89PNG"


def test_prompts_without_a_scored_sample_are_listed(model, tmp_path, monkeypatch):
    scorer = support.register_fragile_scorer(monkeypatch)
    config = support.config_dict(model, tmp_path / "out", prompts=["a red cat", "explode the tree"], scorer=scorer,
                                 pairing={"strategy": "unpaired", "threshold": 0.0})
    summary = support.run_config(config)
    assert summary["prompts"]["without_samples"] == [{"index": 1, "reason": "only 0 of 3 samples scored"}]
    assert summary["samples_written"]["kept"] == 3 == summary["samples"]["scored"]
    assert {r["prompt_index"] for r in support.read_pairs(tmp_path / "out").to_list()} == {0}


def test_unpaired_output_trains_with_kto(unpaired, model, tmp_path, capsys):
    _, out, summary, _ = unpaired
    train = support.write_train_config(tmp_path / "train.yaml", model, out, {"name": "kto", "beta": 500}, steps=2)
    capsys.readouterr()
    assert main(["train", str(train)]) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "trained" / "data_report.json").read_text())
    assert report["schema"] == "single" and report["used"] == summary["samples_written"]["kept"]
    rows = [json.loads(line) for line in (tmp_path / "trained" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(math.isfinite(r["loss"]) for r in rows)


def test_a_changed_threshold_or_strategy_is_refused_on_resume(unpaired, capsys):
    config, out, _, _ = unpaired
    path = support.write_config(out.parent / "again.yaml", config)
    for override, key in (("pairing.threshold=0.5", "pairing.threshold"), ("pairing.strategy=best_vs_worst",
                                                                          "pairing.strategy")):
        capsys.readouterr()
        assert main(["generate", str(path), override]) == 2
        assert f"differs in: {key}" in capsys.readouterr().err


def test_pair_runs_keep_their_fingerprint_keys(model, tmp_path):
    from mmpref.config import load_config
    from mmpref.pipelines.text_to_image import make_job

    path = support.write_config(tmp_path / "pairs.yaml", support.config_dict(model, tmp_path / "out"))
    job = make_job(load_config(str(path), kind="pipeline").config)
    assert job.content["pairing"] == {"strategy": "best_vs_worst", "temperature": 1.0}, "resumes older pair runs"
    from mmpref.pipelines import text_to_audio

    audio = load_config("audio_demo_generate", kind="pipeline").config
    assert text_to_audio.make_job(audio).content["pairing"] == {"strategy": "all_pairs", "temperature": 1.0}


@pytest.mark.parametrize("config, overrides, message", [
    ("generate_sd15_pickscore", ["pairing.strategy=unpaired"], "pairing.threshold is required"),
    ("generate_sd15_pickscore", ["pairing.strategy=unpaired", "pairing.threshold=21"],
     r"filters.min_margin filters pairs.*unset it \(filters.min_margin=0\)"),
    ("generate_sd15_pickscore", ["pairing.strategy=unpaired", "pairing.threshold=21", "filters.min_margin=0",
                                 "filters.min_winner_score=20"], r"filters.min_winner_score=null"),
    ("generate_sd15_pickscore", ["pairing.strategy=unpaired", "pairing.threshold=.inf", "filters.min_margin=0"],
     "pairing.threshold must be a finite number"),
    ("generate_tango2_clap", ["pairing.strategy=unpaired"], "pairing.threshold is required"),
    ("generate_tango2_clap", ["pairing.strategy=unpaired", "pairing.threshold=0.5"],
     r"scorers.clap1.min_margin filters pairs.*unset it \(scorers.0.min_margin=0\)"),
])
def test_config_errors_name_the_key(config, overrides, message):
    from mmpref.config import load_config

    with pytest.raises(ConfigError, match=message) as err:
        load_config(str(support.REPO / "configs" / f"{config}.yaml"), overrides, kind="pipeline")
    assert "\n" not in str(err.value)


def test_the_overrides_the_errors_suggest_make_an_unpaired_audio_config_load():
    """Following each refusal's own `unset it (KEY=VALUE)` hint turns Tango 2's two-CLAP pair recipe into a
    valid unpaired run: the hints are overrides that work, list positions included."""
    import re

    from mmpref.config import load_config

    path = str(support.REPO / "configs" / "generate_tango2_clap.yaml")
    overrides = ["pairing.strategy=unpaired", "pairing.threshold=0.5"]
    for _ in range(10):
        try:
            config = load_config(path, overrides, kind="pipeline").config
            break
        except ConfigError as err:
            overrides.append(re.search(r"unset it \((\S+=\S+)\)", str(err)).group(1))
    else:
        pytest.fail(f"still refused after {overrides}")
    assert config.pairing.unpaired and all(f.min_margin == 0 and f.max_margin is None for f in config.scorers)
    assert any(o.startswith("scorers.1.") for o in overrides)  # the second scorer's windows were reached too


def test_labels_and_dedup_are_per_sample():
    from mmpref.pipelines.filters import dedup_samples
    from mmpref.pipelines.pairing import PairingConfig, form_pairs, label_samples

    config = PairingConfig(strategy="unpaired", threshold=0.5)
    assert label_samples([0.2, 0.5, 0.9, 0.49], config) == [False, True, True, False]
    assert dedup_samples(["a", "b", "a", "c", "b"], dedup=True) == ([0, 1, 3], {"duplicate": 2})
    assert dedup_samples(["a", "a"], dedup=False) == ([0, 1], {"duplicate": 0})
    with pytest.raises(ValueError, match="forms no pairs"):
        form_pairs([0.1, 0.2], config)
