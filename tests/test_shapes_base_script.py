"""scripts/train_shapes_base.py's continuation stage at smoke scale: `--init-from` starts from an exported
pipeline (its VAE kept, its UNet trained further, the text encoder frozen when asked), and the data
options render what they say (one render per prompt, canonical relation layouts the ground truth accepts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

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
