"""`mmpref generate` with `model.lora`: sample a trained LoRA on its base, which is how an on-policy round starts
(generate -> train -> generate from the aligned model -> train again)."""

from __future__ import annotations

import numpy as np
import pytest
import test_generate_support as support
import torch

from mmpref.cli import main
from mmpref.config import to_plain
from mmpref.pipelines.image_sampler import DiffusersImageSampler, ImageModelConfig, ImageSamplingConfig
from mmpref.pipelines.lora import LORA_FILE, model_fingerprint
from mmpref.pipelines.sampling import SampleRequest
from mmpref.pipelines.writer import decode_png

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def rounds(tmp_path_factory) -> dict:
    """Round 1 on the tiny SD base, a LoRA trained on its pairs by `mmpref train`, round 2 from that LoRA."""
    root = tmp_path_factory.mktemp("rounds")
    model = support.build_model(root / "model")
    first = root / "round1"
    support.run_config(support.config_dict(model, first))
    train = support.write_train_config(root / "train.yaml", model, first, {"name": "dpo", "beta": 5000}, steps=2)
    assert main(["train", str(train), "optimizer.lr=0.05", "optimizer.warmup_steps=0"]) == 0
    lora = root / "trained"
    second = root / "round2"
    config = support.config_dict(model, second)
    config["model"]["lora"] = str(lora)
    summary = support.run_config(config)
    return {"model": model, "lora": lora, "first": first, "second": second, "config": config, "summary": summary}


def _images(out) -> dict[tuple[int, int], np.ndarray]:
    images = {}
    for row in support.read_pairs(out).to_list():
        for side in ("chosen", "rejected"):
            images[(row["prompt_index"], row[f"{side}_sample_index"])] = (decode_png(row[side]), row[f"{side}_seed"],
                                                                          row["prompt"])
    return images


def test_round_two_samples_the_lora_as_stock_diffusers_applies_it(rounds):
    from diffusers import StableDiffusionPipeline

    assert rounds["summary"]["samples"]["failed"] == 0
    second, first = _images(rounds["second"]), _images(rounds["first"])
    shared = set(second) & set(first)
    assert shared, "both rounds pair some of the same (prompt, sample) slots"
    assert all(second[k][1] == first[k][1] for k in shared), "same seeds in both rounds"
    changed = [np.abs(second[k][0].astype(int) - first[k][0].astype(int)).max() for k in shared]
    assert max(changed) > 8, "the LoRA changes the samples"

    pipe = StableDiffusionPipeline.from_pretrained(str(rounds["model"]))
    pipe.load_lora_weights(str(rounds["lora"]))
    pipe.fuse_lora()
    pipe.set_progress_bar_config(disable=True)
    sampling = ImageSamplingConfig(**rounds["config"]["sampling"])
    sampler = DiffusersImageSampler(ImageModelConfig(path=str(rounds["model"])), sampling, torch.device("cpu"),
                                    pipeline=pipe)
    for (prompt_index, sample_index), (stored, seed, prompt) in second.items():
        alone = sampler.sample([SampleRequest(prompt_index, sample_index, seed, prompt, prompt)])[0].sample
        diff = np.abs(alone.astype(int) - stored.astype(int))  # alone vs in a batch: see test_generate_pipeline
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_the_lora_is_part_of_the_resume_fingerprint(rounds, capsys):
    config = rounds["config"]
    path = support.write_config(rounds["second"].parent / "again.yaml", config)
    capsys.readouterr()
    assert main(["generate", str(path)]) == 0, "an unchanged rerun completes (a no-op)"
    weights = rounds["lora"] / LORA_FILE
    original = weights.read_bytes()
    try:
        from safetensors.torch import load_file, save_file

        state = load_file(str(weights))
        save_file({k: v * 2 for k, v in state.items()}, str(weights))
        capsys.readouterr()
        assert main(["generate", str(path)]) != 0
        err = capsys.readouterr().err
        assert "differs in" in err and "model" in err
    finally:
        weights.write_bytes(original)


def test_runs_without_a_lora_keep_their_fingerprint():
    model = ImageModelConfig(path="some/model")
    assert model_fingerprint(model) == {"path": "some/model", "dtype": "float32", "variant": None, "scheduler": None}
    assert set(to_plain(model)) - set(model_fingerprint(model)) == {"lora", "lora_scale"}


def test_a_folder_without_a_lora_is_one_clear_line(rounds, tmp_path, capsys):
    config = support.config_dict(rounds["model"], tmp_path / "out")
    config["model"]["lora"] = str(tmp_path)
    path = support.write_config(tmp_path / "bad.yaml", config)
    capsys.readouterr()
    assert main(["generate", str(path)]) != 0
    err = capsys.readouterr().err
    assert f"model: lora {tmp_path} holds no {LORA_FILE}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def audio(tmp_path_factory, energy_scorer) -> dict:
    """A tiny TangoPipeline, a LoRA on its UNet (random factors, saved as the text_to_audio adapter saves) and
    pairs generated from base + LoRA."""
    from peft import LoraConfig, get_peft_model_state_dict

    from mmpref.audio.pipeline import TangoPipeline

    root = tmp_path_factory.mktemp("audio_lora")
    model, prompts = support.tiny_tango_and_prompts(root, ["a low beep followed by two clicks", "three chirps"])
    pipe = TangoPipeline.from_pretrained(str(model))
    torch.manual_seed(0)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_v"]))
    layers = {k: v * 10 for k, v in get_peft_model_state_dict(pipe.unet).items()}
    TangoPipeline.save_lora_weights(str(root / "lora"), unet_lora_layers=layers)
    config = {
        "pipeline": "text_to_audio_pairs",
        "model": {"path": str(model), "lora": str(root / "lora")},
        "prompts": {"source": str(prompts)},
        "sampling": {"seed": 3, "steps": 2, "guidance_scale": 3.0, "audio_length_in_s": 1.28},
        "strategies": [{"name": "1.2", "samples": 2}],
        "scorers": [{"label": "early", "scorer": energy_scorer}],
        "output": {"dir": str(root / "pairs"), "prompts_per_shard": 2},
        "runtime": {"device": "cpu", "batch_size": 4, "threads": 1, "progress": False},
    }
    support.run_config(config)
    return {"model": model, "lora": root / "lora", "config": config, "rows": support.read_pairs(root / "pairs").to_list()}


def _latents(pipe, row, side):
    generator = torch.Generator("cpu").manual_seed(row[f"{side}_seed"])
    return pipe(row["prompt"], num_inference_steps=2, guidance_scale=3.0, audio_length_in_s=1.28,
                generator=generator, output_type="latent").audios[0].numpy()


def test_audio_pairs_come_from_the_lora(audio):
    from mmpref.audio.latents import latents_from_bytes
    from mmpref.audio.pipeline import TangoPipeline

    base = TangoPipeline.from_pretrained(str(audio["model"]))
    tuned = TangoPipeline.from_pretrained(str(audio["model"]))
    tuned.load_lora_weights(str(audio["lora"]))
    tuned.fuse_lora()
    for pipe in (base, tuned):
        pipe.set_progress_bar_config(disable=True)
    assert audio["rows"]
    for row in audio["rows"]:
        for side in ("chosen", "rejected"):
            stored = latents_from_bytes(row[f"{side}_latents"])
            # float16 storage and batch-vs-alone float order, through a LoRA of random 10x factors: <= 1 %
            gaps = [np.linalg.norm(stored - _latents(pipe, row, side)) / np.linalg.norm(stored) for pipe in (tuned, base)]
            assert gaps[0] < 2e-2 and gaps[1] > 0.3, f"relative L2 to base + LoRA and to the base: {gaps}"


def test_a_lora_of_another_model_is_refused_with_both_paths(rounds, audio, tmp_path, capsys):
    config = dict(audio["config"], model={"path": str(audio["model"]), "lora": str(rounds["lora"])},
                  output={"dir": str(tmp_path / "out")})
    path = support.write_config(tmp_path / "bad.yaml", config)
    capsys.readouterr()
    assert main(["generate", str(path)]) != 0
    err = capsys.readouterr().err
    assert f"model.lora: cannot apply the LoRA in {rounds['lora']} to {audio['model']}" in err
    assert "Traceback" not in err


def _stock_fused_unet(cls, base, lora) -> dict:
    pipe = cls.from_pretrained(str(base))
    pipe.load_lora_weights(str(lora))
    pipe.fuse_lora()
    pipe.unload_lora_weights()
    return pipe.unet.state_dict()


def test_fuse_writes_the_next_rounds_base(rounds, audio, tmp_path, capsys):
    import json

    from diffusers import StableDiffusionPipeline

    from mmpref.audio.pipeline import TangoPipeline

    out = tmp_path / "fused"
    assert main(["fuse", str(rounds["lora"]), "--out", str(out)]) == 0, "base read from the LoRA's config.yaml"
    fused = StableDiffusionPipeline.from_pretrained(str(out)).unet.state_dict()
    stock = _stock_fused_unet(StableDiffusionPipeline, rounds["model"], rounds["lora"])
    assert fused.keys() == stock.keys() and all(torch.equal(fused[k], stock[k]) for k in stock)
    base = StableDiffusionPipeline.from_pretrained(str(rounds["model"])).unet.state_dict()
    assert any(not torch.equal(fused[k], base[k]) for k in base), "the LoRA is in the weights"
    assert list(out.rglob("*.bin")) == [] and list(out.rglob("*.safetensors"))
    record = json.loads((out / "mmpref_fused.json").read_text())
    assert record["path"] == str(rounds["model"]) and record["lora"] == str(rounds["lora"]) and record["lora_sha256"]

    sound = tmp_path / "fused_audio"
    assert main(["fuse", str(audio["lora"]), "--base", str(audio["model"]), "--out", str(sound)]) == 0
    fused = TangoPipeline.from_pretrained(str(sound)).unet.state_dict()
    stock = _stock_fused_unet(TangoPipeline, audio["model"], audio["lora"])
    assert all(torch.equal(fused[k], stock[k]) for k in stock)
    half = tmp_path / "fused_half"
    assert main(["fuse", str(rounds["lora"]), "--out", str(half), "--dtype", "float16"]) == 0
    from safetensors.torch import load_file

    weights = load_file(str(half / "unet" / "diffusion_pytorch_model.safetensors"))  # as saved, not as loaded
    stock = _stock_fused_unet(StableDiffusionPipeline, rounds["model"], rounds["lora"])
    assert all(weights[k].dtype == torch.float16 and torch.equal(weights[k], stock[k].half()) for k in stock)

    capsys.readouterr()
    assert main(["fuse", str(rounds["lora"]), "--out", str(out)]) != 0
    assert f"--out {out} exists" in capsys.readouterr().err
    assert main(["fuse", str(audio["lora"]), "--out", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err
    assert "has no config.yaml naming its base" in err and "--base" in err and "Traceback" not in err


def test_an_audio_lora_loads_without_diffusers_text_encoder_notice(audio):
    """diffusers says a UNet-only LoRA has no T5 keys ("safe to ignore") on every load; mmpref's loader drops it."""
    import logging

    from mmpref.audio.pipeline import TangoPipeline
    from mmpref.pipelines.audio_sampler import AudioModelConfig, load_audio_pipeline

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_warning()  # the test session may run with diffusers' warnings off
    logger, handler = logging.getLogger("diffusers.loaders.lora_base"), Collect()
    logger.addHandler(handler)
    try:
        TangoPipeline.from_pretrained(str(audio["model"])).load_lora_weights(str(audio["lora"]))
        stock = list(messages)
        messages.clear()
        load_audio_pipeline(AudioModelConfig(path=str(audio["model"]), lora=str(audio["lora"])), torch.device("cpu"))
    finally:
        logger.removeHandler(handler)
        diffusers_logging.set_verbosity(level)
    assert any(m.startswith("No LoRA keys associated to T5EncoderModel") for m in stock), "the notice stock prints"
    assert not any("No LoRA keys" in m for m in messages)
