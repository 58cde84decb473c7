"""scripts/train_audio_base.py end to end at smoke scale: every stage runs, the exported directory is a
TangoPipeline that loads and generates 1.28 s clips, and an interrupted stage resumes from its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmpref.errors import UserError
from mmpref.sandbox.audio.grammar import all_prompts
from mmpref.sandbox.audio_base import accuracy_by_form, generate, load_audio_base
from mmpref.sandbox.audio_base import architecture as arch
from mmpref.testing.checks import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_audio_base.py"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio_base")
    work, out = root / "work", root / "out"
    script = load_script(SCRIPT)
    torch_threads = torch.get_num_threads()
    try:
        assert script.main(["--smoke", "--threads", "1", "--work", str(work), "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(torch_threads)
    return script, work, out


def test_tokenizer_knows_every_grammar_word():
    tokenizer = arch.build_tokenizer()
    unk = tokenizer.unk_token_id
    for prompt in all_prompts():
        ids = tokenizer(prompt.text).input_ids
        assert unk not in ids and ids[-1] == tokenizer.eos_token_id, prompt.text
        assert len(ids) <= arch.MAX_LENGTH
    assert tokenizer("").input_ids == [tokenizer.eos_token_id]  # the empty prompt is one token: CFG works


def test_vocoder_hop_and_vae_geometry():
    config = arch.vocoder_config()
    assert int(np.prod(config.upsample_rates)) == 160 and config.model_in_dim == 64
    vae = arch.build_vae()
    with torch.no_grad():
        z = vae.encode(torch.zeros(1, 1, arch.FRAMES, 64)).latent_dist.mean
    assert tuple(z.shape[1:]) == arch.LATENT_SHAPE == (8, 32, 16)


def test_missing_base_says_how_to_build_it(tmp_path):
    with pytest.raises(UserError, match="train_audio_base.py"):
        load_audio_base(path=tmp_path / "nothing")


def test_smoke_run_exports_a_loadable_pipeline(smoke_run):
    from mmpref.audio.pipeline import TangoPipeline

    _, work, out = smoke_run
    stock = TangoPipeline.from_pretrained(str(out), local_files_only=True)
    assert stock.sample_rate == 16000 and stock.hop_length == 160 and stock.vae.config.scaling_factor > 0
    assert {p.name for p in out.rglob("*.safetensors")} and not list(out.rglob("*.bin"))
    pipe = load_audio_base(path=out)
    clips = generate(pipe, ["a low beep followed by two clicks", "three clicks"], [1, 2], num_inference_steps=2)
    assert clips.shape == (2, 20480) and clips.dtype == np.float32 and np.isfinite(clips).all()
    again = generate(pipe, ["three clicks"], [2], num_inference_steps=2)
    np.testing.assert_allclose(again[0], clips[1], atol=1e-4)  # seeded per clip, whatever the batch
    acc = accuracy_by_form(pipe, ["a click", "two noise bursts"], seeds=[0], num_inference_steps=2)
    assert acc["n"] == 2 and 0.0 <= acc["all"] <= 1.0
    info = json.loads((out / "audio_world.json").read_text())
    assert set(info["vocoder_check"]) >= {"clean", "vocoded", "vae_vocoded"} and info["vocoder_check"]["clean"] == 1.0
    assert "heldout" in info["accuracy"] and info["training"]["unet_steps"] == 4
    assert set(info["training"]["seconds"]) >= {"data", "vae", "vocoder", "latents", "unet", "eval", "total"}


def test_an_interrupted_stage_resumes_from_its_checkpoint(smoke_run):
    script, work, out = smoke_run
    assert torch.load(work / "unet_ckpt.pt", weights_only=True)["step"] == 4
    # More steps than the finished stage has: it continues from its step-4 checkpoint, as a run interrupted
    # there would (the final weights record their step count).
    before = (work / "train.log").read_text()
    threads = torch.get_num_threads()
    try:
        argv = ["--smoke", "--threads", "1", "--work", str(work), "--out", str(out), "--unet-steps", "6",
                "--stop-after", "unet"]
        assert script.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    log = (work / "train.log").read_text()[len(before):]
    assert "unet: resumed at step 4" in log and "unet step 5/6" in log and "unet step 1/" not in log
    assert "vae step" not in log and "vocoder step" not in log  # finished stages are reused
    assert torch.load(work / "unet_ckpt.pt", weights_only=True)["step"] == 6
    assert torch.load(work / "unet_final.pt", weights_only=True)["step"] == 6
