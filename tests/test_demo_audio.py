"""A reduced `mmpref demo --world audio` end to end on the shipped audio base: a complete report, trained LoRA.

The full gain is demonstrated by `mmpref demo --world audio` itself (its report.json, figures in
mmpref/demo/audio.py), not asserted here: a few prompts, clips and steps only prove the wiring.
"""

from __future__ import annotations

import pytest

from mmpref.cli import main
from mmpref.config import load_config
from mmpref.config.loader import bundled_configs
from mmpref.demo.audio import DEFAULT_EVAL
from mmpref.testing.checks import check_demo_report, check_lora_trained

REDUCED = [
    "generate.prompts.limit=6", "generate.sampling.steps=6", "generate.runtime.batch_size=24",
    "train.training.max_steps=3", "train.training.batch_size=2", "train.optimizer.warmup_steps=0",
    "eval.limit=4", "eval.seeds_per_prompt=2", "eval.steps=6", "eval.resamples=200", "eval.grid_prompts=4",
]


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def test_reduced_audio_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--world", "audio", "--out", str(out), "--threads", "1", "--train-threads", "1", *REDUCED])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "torch threads 1)" in captured.out  # --train-threads reached the train stage
    report = check_demo_report(out, captured.out)
    assert report["world"] == "audio" and report["eval"]["modality"] == "audio"
    assert report["eval"]["prompts"]["source"] == "builtin:audio_heldout"
    assert set(report["eval"]["models"][0]["metrics"]) >= {"audio_truth", "accuracy"}
    assert report["configs"]["generate"]["pipeline"] == "text_to_audio_pairs"
    assert report["configs"]["train"]["model"]["adapter"]["name"] == "text_to_audio"
    assert (out / "pairs" / "summary.json").is_file()
    check_lora_trained(out / "aligned")


def test_audio_demo_configs_are_bundled_and_agree():
    for name in ("audio_demo_generate", "audio_dpo"):
        assert name in bundled_configs()
        assert bundled_configs()[name].read_text().splitlines()[0].startswith("# Audio world")
    train = load_config("audio_dpo", kind="method").config
    generate = load_config("audio_demo_generate", kind="pipeline").config
    assert train.data.source == generate.output.dir  # `mmpref train audio_dpo` reads what the generate step writes
    assert generate.prompts.source == "builtin:audio_train"
    assert [f.scorer.name for f in generate.scorers][0] in ("audio_truth", "audio_event_detector", "audio_order_detector")
    assert train.model.adapter.params.audio_length_in_s == pytest.approx(1.28)
    assert train.model.finetune == "lora"
    # the eval measures the sampler the pairs came from
    assert (DEFAULT_EVAL["steps"], DEFAULT_EVAL["guidance_scale"]) == (generate.sampling.steps,
                                                                      generate.sampling.guidance_scale)


def test_mmpref_cp_copies_the_audio_configs(tmp_path):
    for name in ("audio_demo_generate", "audio_dpo"):
        dest = tmp_path / f"{name}.yaml"
        assert main(["cp", name, str(dest)]) == 0
        assert dest.read_text() == bundled_configs()[name].read_text()


def test_reduced_audio_demo_in_two_on_policy_rounds(tmp_path, capsys):
    import json
    from pathlib import Path

    import torch
    from safetensors.torch import load_file

    out = tmp_path / "demo"
    code = main(["demo", "--world", "audio", "--out", str(out), "--threads", "1", "--train-threads", "1",
                 "--rounds", "2", *REDUCED])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = check_demo_report(out, captured.out)
    first, second = report["rounds"]
    assert first == {"round": 1, "model": report["eval"]["models"][0]["path"], "pairs": str(out / "pairs"),
                     "aligned": str(out / "aligned"), "pairs_kept": report["pairs"]["pairs"]["kept"]}
    model = out / "round2" / "model"
    assert second["model"] == str(model) and second["aligned"] == str(out / "round2" / "aligned")
    assert second["pairs_kept"] >= 1 and set(second["seconds"]) == {"generate", "train"}
    assert report["stage_seconds"]["fuse"] >= 0
    # round 2's policy and reference: the shipped base with round 1's LoRA fused in
    fused = json.loads((model / "mmpref_fused.json").read_text())
    assert fused["lora"] == str(out / "aligned") and fused["path"] == first["model"]
    base_unet = load_file(str(sorted((Path(first["model"]) / "unet").glob("*.safetensors"))[0]))
    round2_unet = load_file(str(sorted((model / "unet").glob("*.safetensors"))[0]))
    assert any(not torch.equal(base_unet[k], round2_unet[k]) for k in base_unet)
    # round 2 sampled that model with the next seed, and the eval compares the base with round 2's LoRA on it
    pairs_config = (out / "round2" / "pairs" / "config.yaml").read_text()
    assert f"path: {model}" in pairs_config and "seed: 1" in pairs_config
    aligned = report["eval"]["models"][1]
    assert aligned["kind"] == "lora" and aligned["path"] == str(out / "round2" / "aligned")
    assert aligned["base"] == str(model)
    check_lora_trained(out / "round2" / "aligned")
