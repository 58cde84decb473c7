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
    assert set(info["training"]["seconds"]) >= {"data", "vae", "vocoder", "latents", "text", "unet", "eval", "total"}
    assert set(info["text_parse"]["heldout"]) == {"slot", "sound", "count", "prompts"}


def test_the_unet_stage_trains_against_the_frozen_pretrained_text_encoder(smoke_run):
    from transformers import T5EncoderModel

    _, work, out = smoke_run
    pretrained = torch.load(work / "text_final.pt", weights_only=True)["model"]
    exported = T5EncoderModel.from_pretrained(str(out / "text_encoder"), local_files_only=True).state_dict()
    assert pretrained.keys() == exported.keys()
    for name, weight in pretrained.items():
        assert torch.equal(weight, exported[name]), name
    fresh = torch.load(work / "unet_final.pt", weights_only=True)
    assert all(torch.equal(w, fresh["text_encoder"][k]) for k, w in pretrained.items())


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
    assert "vae step" not in log and "vocoder step" not in log and "vocoder polish" not in log  # finished: reused
    assert torch.load(work / "unet_ckpt.pt", weights_only=True)["step"] == 6
    assert torch.load(work / "unet_final.pt", weights_only=True)["step"] == 6


def test_the_vocoder_is_polished_after_its_main_steps_and_its_round_trip_recorded(smoke_run, tmp_path):
    """Smoke: 3 main steps then 2 polish steps (the quiet background's loss added); a vocoder finished before
    the polish existed (its final weights at the main step count, no checkpoint) is polished from those
    weights, not retrained; the check records how far a vocoded clip's log-mel lands from its source."""
    import shutil

    script, work, out = smoke_run
    log = (work / "train.log").read_text()
    assert "vocoder step 3/5" in log and "vocoder polish step 4/5" in log and "vocoder polish step 5/5" in log
    assert torch.load(work / "vocoder_final.pt", weights_only=True)["step"] == 5
    roundtrip = json.loads((out / "audio_world.json").read_text())["vocoder_check"]["mel_roundtrip"]
    assert roundtrip["relative_l2"] > 0 and roundtrip["mean_abs"] > 0
    info = json.loads((out / "audio_world.json").read_text())["training"]
    assert info["vocoder_polish_steps"] == 2 and info["vocoder_deep_floor_db"] == 80.0

    older = tmp_path / "work"
    shutil.copytree(work, older)
    unpolished = torch.load(older / "vocoder_final.pt", weights_only=True)["model"]
    torch.save({"model": unpolished, "step": 3}, older / "vocoder_final.pt")
    (older / "vocoder_ckpt.pt").unlink()
    (older / "train.log").write_text("")
    threads = torch.get_num_threads()
    try:
        argv = ["--smoke", "--threads", "1", "--work", str(older), "--out", str(tmp_path / "o"), "--stop-after",
                "vocoder"]
        assert script.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    log = (older / "train.log").read_text()
    assert "polishing the finished 3-step vocoder" in log and "vocoder polish step 4/5" in log
    assert "vocoder step 1/" not in log
    polished = torch.load(older / "vocoder_final.pt", weights_only=True)
    assert polished["step"] == 5
    assert any(not torch.equal(w, unpolished[k]) for k, w in polished["model"].items())


# ---------------------------------------------------------------- finishing stage (shared layouts)
def test_layout_pairs_are_judged_right_and_share_onset_slots(tmp_path):
    """chosen is what the truth judge accepts for its prompt, rejected (reversed sequence, near miss) is not;
    at one layout seed, prompts with as many events put them in the same slots."""
    import io

    import pandas as pd
    import soundfile as sf

    from mmpref.sandbox.audio.grammar import Prompt
    from mmpref.sandbox.audio.layout_pairs import contrast, shared_layout, write_layout_pairs
    from mmpref.sandbox.audio.split import split_prompts
    from mmpref.sandbox.audio.truth import detect_events, truth_correct

    train = split_prompts(0).train
    three = [p for p in train if p.form == "sequence" and len(p.events) == 3][:4]
    prompts = three + [p for p in train if p.form != "sequence"][:3]
    assert contrast(three[0]) == Prompt(three[0].groups[::-1], three[0].connective)
    n = write_layout_pairs(tmp_path / "pairs.parquet", prompts, layouts=2)
    frame = pd.read_parquet(tmp_path / "pairs.parquet")
    assert n == len(frame) == 2 * len(prompts) and list(frame["layout"]) == [0, 1] * len(prompts)
    assert list(frame["prompt"]) == [p.text for p in prompts for _ in range(2)]
    clips = {col: [sf.read(io.BytesIO(v["bytes"]), dtype="float32")[0] for v in frame[col]] for col in ("chosen", "rejected")}
    assert all(c.shape == (20480,) for c in clips["chosen"])
    expected = [p for p in prompts for _ in range(2)]
    assert truth_correct(clips["chosen"], expected).all()
    assert not truth_correct(clips["rejected"], expected).any()
    # three-event prompts at layout 0 (rows 0, 2, 4, 6): the same onsets, heard in the audio itself
    onsets = np.array([[e.onset for e in detect_events(clips["chosen"][2 * i])] for i in range(len(three))])
    assert onsets.shape == (len(three), 3) and np.ptp(onsets, axis=0).max() < 0.02
    slots = {tuple(e.onset for e in shared_layout(p, 0)) for p in train if len(p.events) == 4}
    assert len(slots) == 1  # every four-event training prompt, one set of onsets
    assert [e.onset for e in shared_layout(three[0], 0)] != [e.onset for e in shared_layout(three[0], 1)]


def test_finishing_stage_trains_through_mmpref_train_and_exports_a_stock_pipeline(smoke_run, tmp_path):
    """`--init-from BASE --unet-steps 0 --finish-steps 2`: only the finishing stage runs (the real trainer, sft,
    text encoder frozen), the export keeps the base's VAE, vocoder, text encoder and tokenizer files, moves the
    UNet, holds no trainer files or local paths, loads in stock TangoPipeline, and is evaluated and recorded."""
    from safetensors.torch import load_file

    from mmpref.audio.pipeline import TangoPipeline

    script, _, base = smoke_run
    work, out = tmp_path / "work", tmp_path / "out"
    argv = ["--smoke", "--threads", "1", "--init-from", str(base), "--unet-steps", "0", "--finish-steps", "2",
            "--finish-layouts", "1", "--finish-batch", "4", "--finish-lr", "1e-3", "--finish-forms", "sequence",
            "--work", str(work), "--out", str(out)]
    threads = torch.get_num_threads()
    try:
        assert script.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    log = (work / "train.log").read_text()
    assert "vae step" not in log and "unet step" not in log  # no earlier stage ran
    metrics = (work / "finished" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(metrics[-1])["step"] == 2  # the trainer's own log of its steps
    assert "objective: {name: sft}" in (work / "finish.yaml").read_text()

    def state(root: Path, part: str) -> dict:
        return load_file(next((root / part).glob("*.safetensors")))

    for part in ("vae", "vocoder", "text_encoder"):
        exported, shipped = state(out, part), state(base, part)
        assert exported.keys() == shipped.keys() and all(torch.equal(v, shipped[k]) for k, v in exported.items())
    exported_unet, base_unet = state(out, "unet"), state(base, "unet")
    assert any(not torch.equal(v, base_unet[k]) for k, v in exported_unet.items())
    for f in (base / "tokenizer").iterdir():
        assert (out / "tokenizer" / f.name).read_bytes() == f.read_bytes(), f.name
    assert not any("_name_or_path" in f.read_text() for f in out.rglob("*.json"))
    assert not (out / "metrics.jsonl").exists() and not (out / "checkpoints").exists()
    stock = TangoPipeline.from_pretrained(str(out), local_files_only=True)
    clips = generate(stock, ["a low beep followed by two clicks"], [0], num_inference_steps=2)
    assert clips.shape == (1, 20480) and np.isfinite(clips).all()
    info = json.loads((out / "audio_world.json").read_text())
    finish = info["training"]["finish"]
    assert (finish["steps"], finish["layouts"], finish["lr"], finish["batch"], finish["forms"]) == (2, 1, 1e-3, 4, "sequence")
    assert info["training"]["unet_steps"] == 4  # the base's own record is kept
    assert "heldout" in info["accuracy"] and "heldout" in info["sequence_order"]
    # finishing again finds the finished run: nothing retrains
    args = script.parse_args(argv)
    assert script.finish(args, base, script.Log(work / "train.log")) == work / "finished"


def test_finishing_an_unexported_directory_stops_before_rendering(tmp_path, capsys):
    script = load_script(SCRIPT)
    argv = ["--init-from", str(tmp_path / "nowhere"), "--finish-steps", "2", "--work", str(tmp_path / "w"),
            "--out", str(tmp_path / "o"), "--threads", "1"]
    threads = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit, match=r"nowhere is not an exported pipeline \(no model_index\.json\)"):
            script.main(argv)
        with pytest.raises(SystemExit):  # --init-from runs only the finishing stage: it needs steps
            script.parse_args(["--init-from", str(tmp_path), "--work", str(tmp_path / "w")])
    finally:
        torch.set_num_threads(threads)
    assert "--finish-steps" in capsys.readouterr().err
    assert not (tmp_path / "w" / "layout_pairs.parquet").exists() and not (tmp_path / "o").exists()
