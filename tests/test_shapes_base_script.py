"""scripts/train_shapes_base.py at smoke scale: `--init-from` starts from an exported pipeline (its VAE
kept, its UNet trained further, the text encoder frozen when asked), the data options render what they say
(one render per prompt, canonical relation layouts the ground truth accepts), and the finishing stage trains
through `mmpref train` on renders at shared layouts and exports a pipeline stock diffusers loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mmpref.sandbox.shapes.base import shapes_base_path
from mmpref.sandbox.shapes.split import split_prompts
from mmpref.sandbox.shapes.truth import truth_correct
from mmpref.testing.checks import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_shapes_base.py"


def safetensors_state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(next(folder.glob("*.safetensors")))


def test_canonical_relation_renders_are_correct_and_centred():
    script = load_script(SCRIPT)
    relations = [p for p in split_prompts(0).train if p.form == "relation"]
    images = np.stack([np.asarray(script.render_canonical(p, seed=i)) for i, p in enumerate(relations)])
    assert truth_correct(images, relations).mean() == 1.0
    # centred pair: the box around both objects is centred within the 2 px jitter (+1 px antialiasing)
    for image in images:
        ys, xs = np.nonzero(image.astype(int).sum(-1) < 600)
        assert abs((xs.min() + xs.max()) / 2 - 15.5) <= 3.5 and abs((ys.min() + ys.max()) / 2 - 15.5) <= 3.5


def test_init_from_continues_the_shipped_base(tmp_path):
    script = load_script(SCRIPT)
    base = shapes_base_path()
    args = script.parse_args([
        "--init-from", str(base), "--work", str(tmp_path), "--out", str(tmp_path / "out"),
        "--renders-per-prompt", "1", "--relation-layout", "canonical", "--freeze-text-encoder",
        "--constant-lr", "--ema", "0", "--lr", "1e-3", "--batch", "4", "--unet-steps", "2",
    ])
    log = script.Log(tmp_path / "train.log")
    data = script.make_data(args, log)
    assert len(data["images"]) == len(split_prompts(0).train)  # one render of every training prompt
    vae = script.train_vae(args, data, log)
    shipped_vae = safetensors_state(base / "vae")
    assert all(torch.equal(v, shipped_vae[k]) for k, v in vae.state_dict().items())
    latents = script.cache_latents(args, data, vae, log)
    _, unet, text_encoder = script.train_unet(args, data, vae, latents, log)
    shipped_unet, shipped_text = safetensors_state(base / "unet"), safetensors_state(base / "text_encoder")
    moved = [k for k, v in unet.state_dict().items() if not torch.equal(v, shipped_unet[k])]
    assert moved, "two steps at lr 1e-3 must change the UNet"
    assert all(torch.equal(v, shipped_text[k]) for k, v in text_encoder.state_dict().items() if k in shipped_text)
    assert "starting from the weights exported in" in (tmp_path / "train.log").read_text()


def test_init_from_a_foreign_or_empty_directory_says_what_is_wrong(tmp_path):
    script = load_script(SCRIPT)
    log = script.Log(tmp_path / "train.log")
    with pytest.raises(SystemExit, match=r"expected one \.safetensors file in .*vae, found 0"):
        script.train_vae(script.parse_args(["--init-from", str(tmp_path / "nowhere"), "--work", str(tmp_path)]),
                         {}, log)
    foreign = tmp_path / "foreign" / "vae"
    foreign.mkdir(parents=True)
    from safetensors.torch import save_file

    save_file({"encoder.conv_in.weight": torch.zeros(1, 1, 1, 1)}, str(foreign / "model.safetensors"))
    args = script.parse_args(["--init-from", str(tmp_path / "foreign"), "--work", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"does not fit this script's architecture .*: \d+ missing \(e\.g\. encoder\.conv_in\.bias\), 1 of another shape"):
        script.train_vae(args, {}, log)


def test_layout_pairs_share_placements_across_prompts(tmp_path):
    """Every prompt is drawn at the same few placements; chosen is correct, rejected is not its prompt."""
    import io

    from PIL import Image

    from mmpref.sandbox.shapes.layout_pairs import write_layout_pairs

    train = split_prompts(0).train
    chosen_prompts = [p for p in train if p.form == "relation"][:6] + [p for p in train if p.form != "relation"][:4]
    n = write_layout_pairs(tmp_path / "pairs.parquet", chosen_prompts, layouts=2)
    frame = pd.read_parquet(tmp_path / "pairs.parquet")
    assert n == len(frame) == 2 * len(chosen_prompts)
    decode = lambda col: np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in frame[col]])  # noqa: E731
    prompts = [p for p in chosen_prompts for _ in range(2)]
    assert truth_correct(decode("chosen"), prompts).mean() == 1.0
    assert truth_correct(decode("rejected"), prompts).mean() == 0.0
    # two relation prompts at the same seed put their objects in the same places (masks of non-background)
    chosen = decode("chosen")
    occupied = chosen.astype(int).sum(-1) < 600
    assert (occupied[0] == occupied[2]).mean() > 0.9  # prompts 0 and 1, layout 0
    assert (occupied[0] == occupied[1]).mean() < (occupied[0] == occupied[2]).mean()  # layouts differ


def test_finishing_stage_trains_the_unet_through_mmpref_train(tmp_path):
    """`--init-from BASE --unet-steps 0 --finish-steps N M`: only the finishing stage runs, in two trainer runs
    (the second continuing the first); the exported pipeline keeps the VAE and text encoder, moves the UNet,
    and loads in stock diffusers."""
    from diffusers import StableDiffusionPipeline

    script = load_script(SCRIPT)
    base = shapes_base_path()
    args = script.parse_args([
        "--init-from", str(base), "--unet-steps", "0", "--work", str(tmp_path), "--out", str(tmp_path / "out"),
        "--finish-steps", "2", "1", "--finish-layouts", "1", "--finish-batch", "4", "--finish-lr", "1e-3",
        "--finish-forms", "all",
    ])
    log = script.Log(tmp_path / "train.log")
    finished = script.finish(args, args.init_from, log)
    script.export_finished(finished, base, args.out, log)
    first, second = tmp_path / "finish-round-1", tmp_path / "finish-round-2"
    assert finished == second
    for run, steps, start in ((first, 2, base), (second, 1, first)):  # the trainer ran each round from the last
        logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert max(r.get("step", 0) for r in logged) == steps
        assert yaml.safe_load((run / "config.yaml").read_text())["model"]["adapter"]["pretrained"] == str(start)
    assert len(pd.read_parquet(tmp_path / "layout_pairs.parquet")) == len(split_prompts(0).train)
    for part in ("vae", "text_encoder"):
        exported, shipped = safetensors_state(args.out / part), safetensors_state(base / part)
        assert all(torch.equal(v, shipped[k]) for k, v in exported.items())
    exported_unet, shipped_unet = safetensors_state(args.out / "unet"), safetensors_state(base / "unet")
    assert any(not torch.equal(v, shipped_unet[k]) for k, v in exported_unet.items())
    pipe = StableDiffusionPipeline.from_pretrained(args.out, safety_checker=None)
    image = pipe("a red circle", num_inference_steps=2, output_type="np",
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.shape == (32, 32, 3)
    for name in ("vocab.json", "tokenizer_config.json"):  # the base's tokenizer files, byte for byte
        assert (args.out / "tokenizer" / name).read_bytes() == (base / "tokenizer" / name).read_bytes()
    assert "_name_or_path" not in (args.out / "model_index.json").read_text()
    # finishing again resumes: the finished run is found, nothing retrains
    assert script.finish(args, args.init_from, log) == finished


def test_finishing_an_unexported_directory_says_what_to_point_at(tmp_path):
    script = load_script(SCRIPT)
    args = script.parse_args(["--init-from", str(tmp_path / "nowhere"), "--unet-steps", "0", "--work", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"nowhere is not an exported pipeline \(no model_index\.json\)"):
        script.finish(args, args.init_from, script.Log(tmp_path / "train.log"))
    assert not (tmp_path / "layout_pairs.parquet").exists()  # nothing rendered for a run that cannot start


@pytest.mark.parametrize("steps, message", [(["1500", "0"], "every round needs >= 1 step"),
                                            (["-5"], "argument --finish-steps: -5 is out of range: give an integer >= 0")])
def test_finishing_rounds_need_steps(steps, message, capsys):
    script = load_script(SCRIPT)
    with pytest.raises(SystemExit):
        script.parse_args(["--finish-steps", *steps])
    assert message in capsys.readouterr().err


def test_finishing_relation_prompts_only(tmp_path):
    """The default finishing data: only the training relation prompts, each at the shared layouts."""
    script = load_script(SCRIPT)
    args = script.parse_args(["--init-from", str(shapes_base_path()), "--unet-steps", "0", "--work", str(tmp_path),
                              "--finish-layouts", "1", "--finish-steps", "1"])
    assert args.finish_forms == "relation"
    prompts = [p for p in split_prompts(0).train if p.form == "relation"]
    script.write_finish_data(args, script.Log(tmp_path / "train.log"))
    frame = pd.read_parquet(tmp_path / "layout_pairs.parquet")
    assert list(frame["prompt"]) == [p.text for p in prompts]
