"""The sampler's own latents stored with generated audio pairs (mmpref/audio/latents.py): `mmpref generate` keeps
each clip's latents and the id of the VAE that decodes them; `mmpref train` on the same VAE trains on exactly
those latents (the encoded-sample cache holds them), re-encodes the WAVs when told to or when the latents belong
to another VAE, and stops with the row when a stored latent is unusable."""

from __future__ import annotations

import glob
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import test_generate_support as support
import torch

from mmpref.audio.latents import latent_space_id, latents_from_bytes, latents_to_bytes
from mmpref.cli import main

PROMPTS = ["a low beep followed by two clicks", "three falling chirps", "a noise burst then a high beep"]
DURATION = 1.28

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def run(tmp_path_factory, energy_scorer):
    root = tmp_path_factory.mktemp("stored_latents")
    model, prompts = support.tiny_tango_and_prompts(root, PROMPTS)
    config = {
        "pipeline": "text_to_audio_pairs",
        "model": {"path": str(model)},
        "prompts": {"source": str(prompts)},
        "sampling": {"seed": 3, "steps": 2, "guidance_scale": 3.0, "audio_length_in_s": DURATION},
        "strategies": [{"name": "1.2", "samples": 3}],
        "scorers": [{"label": "early", "scorer": energy_scorer}],
        "wav_subtype": "FLOAT",
        "output": {"dir": str(root / "pairs"), "prompts_per_shard": 2},
        "runtime": {"device": "cpu", "batch_size": 4, "threads": 1, "progress": False},
    }
    summary = support.run_config(config)
    rows = [row for f in sorted((root / "pairs" / "data").glob("*.parquet")) for row in pq.read_table(f).to_pylist()]
    return {"model": model, "root": root, "out": root / "pairs", "rows": rows, "summary": summary}


def _pipe(model):
    from mmpref.audio.pipeline import TangoPipeline

    pipe = TangoPipeline.from_pretrained(str(model))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_latent_bytes_round_trip_and_refuse_garbage():
    x = np.random.default_rng(0).normal(size=(8, 32, 16)).astype(np.float32)
    back = latents_from_bytes(latents_to_bytes(torch.from_numpy(x)))
    assert back.dtype == np.float32 and back.shape == x.shape
    np.testing.assert_allclose(back, x.astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError):
        latents_from_bytes(b"not an npy file")
    with pytest.raises(ValueError, match="non-finite"):
        latents_from_bytes(latents_to_bytes(np.full((2, 2), np.nan, dtype=np.float32)))


def test_latent_space_id_follows_the_vae_not_the_copy(run, tmp_path):
    pipe = _pipe(run["model"])
    first = latent_space_id(pipe.vae)
    pipe.vae.save_pretrained(tmp_path / "vae")
    from diffusers import AutoencoderKL

    assert latent_space_id(AutoencoderKL.from_pretrained(tmp_path / "vae")) == first, "same weights, same space"
    with torch.no_grad():
        pipe.vae.decoder.conv_out.weight.mul_(1.01)
    assert latent_space_id(pipe.vae) != first
    pipe.vae.register_to_config(scaling_factor=pipe.vae.config.scaling_factor * 2)
    assert len({first, latent_space_id(pipe.vae)}) == 2


def test_generated_rows_keep_each_clips_own_latents(run):
    rows, pipe = run["rows"], _pipe(run["model"])
    assert len(rows) == run["summary"]["pairs"]["kept"] >= 3
    space = latent_space_id(pipe.vae)
    for row in rows[:2]:
        assert row["latent_space"] == space
        for side in ("chosen", "rejected"):
            stored = latents_from_bytes(row[f"{side}_latents"])
            generator = torch.Generator("cpu").manual_seed(row[f"{side}_seed"])
            latents = pipe(row["prompt"], num_inference_steps=2, guidance_scale=3.0, audio_length_in_s=DURATION,
                           generator=generator, output_type="latent").audios[0].numpy()
            assert stored.shape == latents.shape == (8, 32, 16)
            np.testing.assert_allclose(stored, latents, rtol=2e-3, atol=2e-3 * np.abs(latents).max())
            # the WAV is what those latents decode to
            wave = pipe.mel_to_waveform(pipe.decode_latents(torch.from_numpy(latents)[None]))[0].detach().numpy()
            clip, _ = sf.read(io.BytesIO(row[side]["bytes"]), dtype="float32")
            scale = np.abs(clip).max()
            assert scale > 0 and np.abs(wave[: len(clip)] - clip).max() < 1e-4 * scale


def _train(run, tmp_path, capsys, *overrides):
    config = support.write_config(tmp_path / "train.yaml", {
        "method": "preference",
        "model": {"adapter": {"name": "text_to_audio", "pretrained": str(run["model"]), "audio_length_in_s": DURATION,
                              "max_text_length": 16}, "finetune": "lora", "lora": {"rank": 4}},
        "objective": {"name": "dpo", "beta": 2000},
        "data": {"source": str(run["out"]), "cache": {"enabled": True, "dir": str(tmp_path / "cache")}},
        "training": {"max_steps": 1, "batch_size": 2, "log_every": 1, "checkpoint_every": 0},
        "logging": {"trackers": [], "progress_bar": False},
        "output_dir": str(tmp_path / "trained"),
    })
    capsys.readouterr()
    code = main(["train", str(config), *overrides])
    out = capsys.readouterr()
    return code, out.out + out.err


def _cached_latents(tmp_path):
    from datasets import Dataset

    (arrow,) = glob.glob(str(tmp_path / "cache" / "*" / "part-*" / "data.arrow"))
    cache = Dataset.from_file(arrow)
    return {int(r): np.asarray(x, dtype=np.float32) for r, x in zip(cache["row"], cache["latents"])}


def _latents_report(tmp_path):
    return json.loads((tmp_path / "trained" / "data_report.json").read_text())["stored_latents"]


def _stored(row):
    return np.stack([latents_from_bytes(row["chosen_latents"]), latents_from_bytes(row["rejected_latents"])])


def test_training_uses_the_stored_latents_exactly(run, tmp_path, capsys):
    code, log = _train(run, tmp_path, capsys)
    assert code == 0, log
    assert "training on the sampler's own latents stored with" in log
    cached = _cached_latents(tmp_path)
    assert len(cached) == len(run["rows"])
    for r, latents in cached.items():
        np.testing.assert_array_equal(latents, _stored(run["rows"][r]))  # float16 both ways: exact
    record = _latents_report(tmp_path)
    assert record["used"] is True and record["rows"] == len(run["rows"]) and len(record["latent_space"]) == 16


def test_stored_latents_off_re_encodes_the_wavs(run, tmp_path, capsys):
    code, log = _train(run, tmp_path, capsys, "data.stored_latents=false")
    assert code == 0, log
    assert "stored sampler latents ignored (data.stored_latents: false)" in log
    cached = _cached_latents(tmp_path)
    gaps = [np.linalg.norm(x - _stored(run["rows"][r])) / np.linalg.norm(_stored(run["rows"][r]))
            for r, x in cached.items()]
    assert min(gaps) > 1e-2, "re-encoded latents are not the sampler's"
    assert _latents_report(tmp_path) == {"used": False,
                                         "why": "stored sampler latents ignored (data.stored_latents: false)"}


def _rewrite(run, tmp_path, change):
    """A copy of the generated pairs with `change(rows)` applied (same columns and types)."""
    table = pa.concat_tables([pq.read_table(f) for f in sorted((run["out"] / "data").glob("*.parquet"))])
    rows = table.to_pylist()
    change(rows)
    (tmp_path / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), tmp_path / "data" / "pairs.parquet")
    return dict(run, out=tmp_path / "data")


def test_latents_of_another_vae_are_not_used(run, tmp_path, capsys):
    def foreign(rows):
        rows[1]["latent_space"] = "0123456789abcdef"

    code, log = _train(_rewrite(run, tmp_path, foreign), tmp_path, capsys)
    assert code == 0, log
    assert f"1 of {len(run['rows'])} rows' stored latents are not of this model's VAE (latent space 0123456789abcdef" in log
    assert "encoding the media of every row instead" in log
    assert "training on the sampler's own latents" not in log
    record = _latents_report(tmp_path)
    assert record["used"] is False and "not of this model's VAE" in record["why"]


def test_an_unreadable_stored_latent_stops_with_its_row(run, tmp_path, capsys):
    def corrupt(rows):
        rows[2]["rejected_latents"] = b"\x93NUMPY broken"
        rows[0]["chosen_latents"] = latents_to_bytes(np.zeros((8, 16, 16), dtype=np.float32))

    code, log = _train(_rewrite(run, tmp_path, corrupt), tmp_path, capsys)
    assert code != 0
    assert f"2 of {len(run['rows'])} rows have unusable stored latents, e.g. row 0 chosen_latents: shape (8, 16, 16), " \
           "the model's is (8, 32, 16)" in log
    assert "data.stored_latents=false" in log and "Traceback" not in log
    assert not (tmp_path / "trained" / "metrics.jsonl").exists()

