"""`text_to_image_pairs` end to end on a tiny SD pipeline (random weights, saved and loaded from disk).

What "exact" means for seeds, on CPU fp32: a sample regenerated in the same batch composition (which
the shard plan fixes, so any re-run has it) gives bit-identical pixels; regenerated alone from its seed,
the float result differs by ~1e-6 (batch size changes the GEMM blocking), which moves a rare pixel
across a rounding boundary: at most 1/255, on under 1 % of the values. Both are asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import test_generate_support as support
import torch

from mmpref.cli import main
from mmpref.pipelines.image_sampler import DiffusersImageSampler, ImageModelConfig, ImageSamplingConfig
from mmpref.pipelines.sampling import SampleRequest
from mmpref.pipelines.seeds import derive_seed
from mmpref.pipelines.writer import decode_png


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return support.build_model(tmp_path_factory.mktemp("tiny") / "sd")


@pytest.fixture(scope="module")
def reference(model, tmp_path_factory) -> tuple[dict, Path, dict]:
    """One uninterrupted single-process run: 6 prompts in 3 shards, 3 samples each."""
    out = tmp_path_factory.mktemp("ref") / "out"
    config = support.config_dict(model, out, filters={"min_margin": 0.002})
    return config, out, support.run_config(config)


def _rows(out: Path) -> list[dict]:
    return support.read_pairs(out).to_list()


def test_pairs_are_well_formed_and_scores_are_the_scorers(reference):
    import datasets

    from mmpref.reward_models import build_scorer

    config, out, summary = reference
    rows = _rows(out)
    assert datasets.load_dataset(str(out), split="train").num_rows == len(rows), "load_dataset(OUTPUT_DIR) works"
    assert rows, "the tiny run keeps some pairs"
    scorer = build_scorer("brightness")
    for row in rows:
        assert row["chosen_score"] >= row["rejected_score"] + 0.002
        assert row["margin"] == pytest.approx(row["chosen_score"] - row["rejected_score"], abs=1e-12)
        assert row["target"] == 1.0 and row["scorer"] == "brightness" and row["strategy"] == "best_vs_worst"
        assert row["chosen_sample_index"] != row["rejected_sample_index"]
        for side in ("chosen", "rejected"):
            assert row[f"{side}_seed"] == derive_seed(7, row["prompt_index"], row[f"{side}_sample_index"])
            pixels = decode_png(row[side])
            assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
            rescored = float(scorer.score([pixels], [row["prompt"]])[0])
            assert rescored == pytest.approx(row[f"{side}_score"], abs=1e-6), "stored score is the scorer's"
    assert summary["prompts"]["used"] == summary["prompts"]["done"] == 6
    assert summary["samples"] == {"requested": 18, "scored": 18, "failed": 0, "failed_by_stage": {}}
    pairs = summary["pairs"]
    assert pairs["candidates"] == 6 and pairs["kept"] == len(rows)
    assert pairs["kept"] + sum(pairs["dropped"].values()) == pairs["candidates"]
    assert summary["scores"]["count"] == 18 and summary["margins"]["count"] == len(rows)
    unpaired = summary["prompts"]["without_pairs"]
    assert sorted([u["index"] for u in unpaired] + [r["prompt_index"] for r in rows]) == list(range(6))
    assert all(u["reason"] == "every candidate pair was dropped: 1 min_margin" for u in unpaired)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["complete"] == [0, 1, 2] and manifest["rows"] == len(rows)
    for name in ("score_distributions.png", "contact_sheet.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "config.yaml").is_file()


def test_seeds_reproduce_the_images(reference, model):
    config, out, _ = reference
    sampling = ImageSamplingConfig(**config["sampling"])
    sampler = DiffusersImageSampler(ImageModelConfig(path=str(model)), sampling, device=torch.device("cpu"))
    rows = _rows(out)
    # Shard 0 holds prompt rows 0 and 1: its first batch (batch_size 4) is samples 0-2 of row 0 and 0 of row 1.
    from mmpref.pipelines.prompts import PromptsConfig, load_prompts

    prompts = load_prompts(PromptsConfig(source="builtin:objects", limit=6)).prompts
    batch = [SampleRequest(p.index, s, derive_seed(7, p.index, s), p.text, p.text) for p in prompts[:2] for s in range(3)][:4]
    same_batch = {(r.request.prompt_index, r.request.sample_index): r.sample for r in sampler.sample(batch)}
    checked_exact = checked_alone = 0
    for row in rows:
        for side in ("chosen", "rejected"):
            key = (row["prompt_index"], row[f"{side}_sample_index"])
            stored = decode_png(row[side])
            if key in same_batch:
                assert np.array_equal(same_batch[key], stored), "same batch composition: bit-identical"
                checked_exact += 1
            request = SampleRequest(key[0], key[1], row[f"{side}_seed"], row["prompt"], row["prompt"])
            alone = sampler.sample([request])[0].sample
            assert np.array_equal(alone, sampler.sample([request])[0].sample), "alone: deterministic"
            diff = np.abs(alone.astype(int) - stored.astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 0.01, "alone: within 1/255 on under 1% of values"
            checked_alone += 1
    assert checked_exact >= 1 and checked_alone == 2 * len(rows)


def test_failures_are_recorded_per_sample_with_reasons(model, tmp_path, monkeypatch):
    poisoned = support.poison_model(model, tmp_path / "poisoned")
    prompts = ["a red cat", f"a blue {support.POISON} dog", "explode the green tree", "a yellow sun"]
    scorer = support.register_fragile_scorer(monkeypatch)
    config = support.config_dict(poisoned, tmp_path / "out", prompts=prompts, scorer=scorer,
                                 output={"prompts_per_shard": 4})
    summary = support.run_config(config)
    failures = {(f["prompt_index"], f["sample_index"]): f for f in summary["failures"]}
    assert set(failures) == {(p, s) for p in (1, 2) for s in range(3)}
    assert all(failures[(1, s)]["stage"] == "sample" and "non-finite latents" in failures[(1, s)]["reason"]
               for s in range(3))
    assert all(failures[(2, s)] == {"prompt_index": 2, "sample_index": s, "seed": derive_seed(7, 2, s),
                                    "stage": "score", "reason": "scorer error: ValueError: cannot score an exploding prompt"}
               for s in range(3))
    assert summary["samples"]["failed_by_stage"] == {"sample": 3, "score": 3}
    assert summary["prompts"]["without_pairs"] == [{"index": 1, "reason": "only 0 of 3 samples scored"},
                                                   {"index": 2, "reason": "only 0 of 3 samples scored"}]
    rows = _rows(tmp_path / "out")
    assert sorted(r["prompt_index"] for r in rows) == [0, 3], "samples batched with the failures are kept"


def test_ranked_pairs_carry_soft_targets_and_transforms_only_change_conditioning(model, tmp_path):
    out = tmp_path / "out"
    config = support.config_dict(model, out, prompts=["a red cat", "a blue dog"],
                                 pairing={"strategy": "ranked", "temperature": 0.01})
    config["prompts"]["transform"] = "test_generate_support:shout_odd_samples"
    summary = support.run_config(config)
    rows = _rows(out)
    assert summary["pairs"]["candidates"] == 2 * 3  # C(3, 2) pairs per prompt
    for row in rows:
        assert row["target"] == pytest.approx(1 / (1 + np.exp(-row["margin"] / 0.01)))
        assert 0.5 < row["target"] <= 1.0 and row["strategy"] == "ranked"
        assert row["prompt"] in ("a red cat", "a blue dog"), "pairs keep the original prompt"
    records = [json.loads(p.read_text()) for p in sorted((out / "shards").glob("*.json"))]
    conditions = {(s["prompt_index"], s["sample_index"]): s.get("condition") for r in records for s in r["samples"]}
    assert conditions[(0, 1)] == "A RED CAT" and conditions[(0, 0)] is None and conditions[(1, 1)] == "A BLUE DOG"


def test_two_processes_give_the_same_dataset_as_one(reference, tmp_path):
    config, out, _ = reference
    two = dict(config, output={**config["output"], "dir": str(tmp_path / "two")},
               runtime={**config["runtime"], "processes": 2})
    summary = support.run_config(two)
    assert _rows(tmp_path / "two") == _rows(out)
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "two" / "shards").glob("*.json"))]
    assert sorted(r["process"] for r in records) == [0, 0, 1] and {r["processes"] for r in records} == {2}
    assert summary["pairs"] == json.loads((out / "summary.json").read_text())["pairs"]


def test_rerun_is_a_no_op_and_a_changed_config_is_refused(reference, capsys):
    config, out, _ = reference
    before = {p.name: p.stat().st_mtime_ns for p in (out / "data").iterdir()}
    support.run_config(config)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "data").iterdir()} == before, "complete shards are kept"
    path = support.write_config(out.parent / "changed.yaml", config)
    capsys.readouterr()
    code = main(["generate", str(path), "sampling.steps=3"])
    err = capsys.readouterr().err
    assert code == 2 and "differs in: sampling.steps" in err and len(err.strip().splitlines()) == 1


def test_bad_model_path_is_one_clear_line(tmp_path, capsys):
    config = support.config_dict(tmp_path / "no_model", tmp_path / "out")
    code = main(["generate", str(support.write_config(tmp_path / "c.yaml", config))])
    err = capsys.readouterr().err
    assert code == 2 and "model.path: cannot load a diffusers pipeline" in err and "Traceback" not in err


def test_sdxl_pipelines_go_through_the_same_stages(tmp_path):
    from mmpref.testing.tiny import build_tiny_sd

    model = build_tiny_sd(tmp_path / "sdxl", "sdxl")
    summary = support.run_config(support.config_dict(model, tmp_path / "out", prompts=["a red cat", "a blue dog"]))
    rows = _rows(tmp_path / "out")
    assert summary["samples"]["failed"] == 0 and len(rows) == 2
    assert all(decode_png(r[side]).shape == (32, 32, 3) for r in rows for side in ("chosen", "rejected"))
