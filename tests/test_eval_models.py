"""`mmpref eval` on a base pipeline, a LoRA dir (base from its config.yaml or explicit) and a full pipeline dir."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from mmpref.cli import main
from mmpref.evaluation.engine import EvalModel, EvalSettings, describe_model, evaluate
from mmpref.testing.tiny import build_tiny_sd


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    root = tmp_path_factory.mktemp("eval_models")
    base = build_tiny_sd(root / "base", "sd")
    full = root / "full"
    shutil.copytree(base, full)  # a "fine-tuned" pipeline directory (same weights: every comparison a tie)
    lora = root / "lora"
    lora.mkdir()
    pipe = StableDiffusionPipeline.from_pretrained(str(base))
    torch.manual_seed(0)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                     target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    StableDiffusionPipeline.save_lora_weights(str(lora), unet_lora_layers={k: v * 20 for k, v in layers.items()})
    (lora / "config.yaml").write_text(yaml.safe_dump({"method": "preference", "model": {
        "adapter": {"name": "text_to_image", "pretrained": str(base)}, "finetune": "lora"}}))
    prompts = root / "prompts.txt"
    prompts.write_text("a red circle\ntwo blue squares\na green triangle\n")
    return {"base": base, "full": full, "lora": lora, "prompts": prompts, "root": root}


def test_kinds_and_bases(models):
    assert describe_model(EvalModel("b", str(models["base"])))["kind"] == "pipeline"
    lora = describe_model(EvalModel("l", str(models["lora"])))
    assert lora == {"kind": "lora", "path": str(models["lora"]), "base": str(models["base"])}
    assert describe_model(EvalModel("l", str(models["lora"]), base=str(models["full"])))["base"] == str(models["full"])


def test_eval_base_lora_and_full_pipeline(models):
    out = models["root"] / "report"
    settings = EvalSettings(
        models=[EvalModel("base", str(models["base"])), EvalModel("lora", str(models["lora"])),
                EvalModel("full", str(models["full"])),
                EvalModel("lora_explicit", str(models["lora"]), base=str(models["base"]))],
        prompts=str(models["prompts"]), seeds_per_prompt=2, scorers=["brightness"], steps=2, guidance_scale=1.0,
        batch_size=4, resamples=200, grid_prompts=3, out=str(out), save_images=True,
    )
    logs: list[str] = []
    report = evaluate(settings, log=logs.append)
    base, lora, full, explicit = report["models"]
    assert report["accuracy"] is None and "accuracy" not in base["metrics"]  # no ground truth among the scorers
    # the full-pipeline copy has the base's weights: identical images, all ties
    assert full["vs_first"]["tie_share"] == 1.0 and np.isnan(full["vs_first"]["win_rate"])
    # the LoRA changes the images; given explicitly or read from config.yaml it is the same model
    assert lora["vs_first"]["tie_share"] < 1.0 and lora["metrics"] == explicit["metrics"]
    assert lora["kind"] == "lora" and lora["base"] == str(models["base"])
    for name in ("report.json", "report.html", "grid_comparison.png", "grid_base.png", "grid_lora.png", "samples.jsonl"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "report.json").read_text())["models"][1]["name"] == "lora"
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * 3 * 2 and {"model", "prompt", "seed", "brightness"} <= set(rows[0])
    seeds = {(r["prompt_row"], r["sample"]): r["seed"] for r in rows if r["model"] == "base"}
    assert all(seeds[(r["prompt_row"], r["sample"])] == r["seed"] for r in rows)  # same seeds for every model
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 1 + 3 * 4  # the chart + 3 prompts x 4 models
    assert "http" not in html.replace("http-equiv", "")  # self-contained
    assert len(list((out / "images" / "lora").glob("*.png"))) == 6


def test_eval_cli_and_user_errors(models, capsys):
    out = models["root"] / "cli"
    code = main(["eval", f"base={models['base']}", f"lora={models['lora']}", "--prompts", str(models["prompts"]),
                 "--seeds", "1", "--scorers", "brightness", "--out", str(out),
                 "--set", "steps=1", "resamples=100", "guidance_scale=1.0"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "win rate (brightness)" in captured.out and (out / "report.html").exists()
    code = main(["eval", f"x={models['root']}", "--scorers", "brightness", "--out", str(out)])
    assert code == 2 and "neither a diffusers pipeline directory" in capsys.readouterr().err
    code = main(["eval", f"a={models['base']}", "--set", "seeds_per_prompt=0"])
    assert code == 2 and "seeds_per_prompt" in capsys.readouterr().err


def test_lora_file_mixing_key_formats_loads_every_layer(models, tmp_path):
    """`mmpref train` LoRAs beyond attention mix `lora.down/up` and `lora_A/B` names; no layer may be dropped."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from mmpref.evaluation.engine import load_model
    from mmpref.pipelines.lora import LORA_FILE

    source = models["lora"] / LORA_FILE
    state = load_file(str(source))
    with safe_open(str(source), "pt") as f:
        metadata = f.metadata()
    keys = sorted(k for k in state if ".lora.down." in k)
    half = {k.rsplit(".lora.down.", 1)[0] for k in keys[: len(keys) // 2]}
    mixed = {}
    for k, v in state.items():
        layer = k.replace(".lora.down.", "|").replace(".lora.up.", "|").split("|")[0]
        mixed[k.replace(".lora.down.", ".lora_A.").replace(".lora.up.", ".lora_B.") if layer in half else k] = v
    (tmp_path / "mixed").mkdir()
    save_file(mixed, str(tmp_path / "mixed" / LORA_FILE), metadata=metadata)
    settings = EvalSettings(scorers=["brightness"])

    def fused(model: EvalModel) -> dict:
        state = load_model(model, settings, torch.device("cpu")).unet.state_dict()
        return {k.replace(".base_layer", ""): v for k, v in state.items() if "lora_" not in k}

    reference = fused(EvalModel("a", str(models["lora"])))
    loaded = fused(EvalModel("b", str(tmp_path / "mixed"), base=str(models["base"])))
    base = fused(EvalModel("c", str(models["base"])))
    changed = [k for k in base if not torch.equal(base[k], reference[k])]
    assert len(changed) == len(keys)  # the fused weight of every adapted layer, from both halves of the file
    assert all(torch.allclose(loaded[k], reference[k], atol=1e-6) for k in reference)


def test_two_processes_give_the_same_images_as_one(models):
    """processes: 2 deals the pipeline calls (3 here, so unevenly) to spawned workers; every image, score and
    file is what one process writes, for a base and a LoRA model."""
    def run(processes: int) -> Path:
        out = models["root"] / f"processes{processes}"
        settings = EvalSettings(
            models=[EvalModel("base", str(models["base"])), EvalModel("lora", str(models["lora"]))],
            prompts=str(models["prompts"]), seeds_per_prompt=2, scorers=["brightness"], steps=2,
            guidance_scale=1.0, batch_size=2, resamples=200, out=str(out), save_images=True,
            processes=processes, threads=1)
        logs: list[str] = []
        evaluate(settings, log=logs.append)
        assert (f" in {processes} processes" in logs[0]) == (processes > 1)
        return out

    one, two = run(1), run(2)
    assert (one / "samples.jsonl").read_text() == (two / "samples.jsonl").read_text()
    images = sorted(p.relative_to(one) for p in (one / "images").rglob("*.png"))
    assert len(images) == 2 * 3 * 2
    assert all((one / p).read_bytes() == (two / p).read_bytes() for p in images)


def test_processes_and_threads_at_least_one(models):
    from mmpref.errors import ConfigError
    from mmpref.evaluation.engine import build_settings

    for bad in ({"processes": 0}, {"threads": 0}):
        with pytest.raises(ConfigError, match="processes and threads"):
            build_settings({"models": [{"name": "a", "path": str(models["base"])}], **bad})
