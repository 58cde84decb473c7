"""Tango 2 audio DPO with `method: preference` on a tiny TangoPipeline and an Audio-Alpaca-schema parquet.

Real components end to end: the pipeline saved with save_pretrained and loaded by the adapter, clips
decoded from WAV bytes through the Tango mel front end, configs validated from YAML, outputs loaded by
`TangoPipeline.from_pretrained` / `load_lora_weights`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mmpref.config import load_config
from mmpref.errors import DataError, UserError
from mmpref.testing.audio_data import write_audio_alpaca_parquet, write_audio_pairs_folder
from mmpref.testing.tiny_audio import build_tiny_tango, write_tiny_tango_checkpoint
from mmpref.training.tracking import read_metrics
from mmpref.training.trainer import PreferenceTrainer, step_seed

LOG2 = math.log(2.0)
JUNK_REASON = "rejected: cannot decode audio (Error in WAV file. No 'data' chunk marker.)"


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    return {
        "tango": build_tiny_tango(root / "tango"),
        "alpaca": write_audio_alpaca_parquet(root / "alpaca" / "train.parquet", n=8, corrupt=("undecodable",)),
        "folder": write_audio_pairs_folder(root / "pairs", n=4, sample_rate=22050, fmt="FLAC"),
    }


def make_config(tmp_path: Path, pipe: Path, data: Path, *overrides: str, finetune: str = "lora"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "run.yaml"
    path.write_text(f"""method: preference
model:
  adapter: {{name: text_to_audio, pretrained: {pipe}, audio_length_in_s: 1.28, max_text_length: 16}}
  finetune: {finetune}
  lora: {{rank: 4}}
objective: {{name: dpo, beta: 2000}}
data: {{source: {data}, max_bad_fraction: 0.2}}
training: {{max_steps: 3, batch_size: 2, log_every: 1, checkpoint_every: 0}}
optimizer: {{lr: 1.0e-3}}
logging: {{trackers: [], progress_bar: false}}
output_dir: {tmp_path / 'out'}
""")
    return load_config(str(path), list(overrides)).config


def stock_audio(path: Path, lora_dir: Path | None = None) -> np.ndarray:
    from mmpref.audio.pipeline import TangoPipeline

    pipe = TangoPipeline.from_pretrained(str(path))
    pipe.set_progress_bar_config(disable=True)
    if lora_dir is not None:
        pipe.load_lora_weights(str(lora_dir))
    return pipe("a dog barking", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).audios


def test_tango2_dpo_lora_log2_formula_shared_draws_corrupt_row_and_stock_lora(tmp_path, assets):
    cfg = make_config(tmp_path, assets["tango"], assets["alpaca"])
    trainer = PreferenceTrainer(cfg, progress=False).setup()
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = trainer.adapter.unet.register_forward_pre_hook(
        lambda module, args: calls.append((args[0].detach().clone(), args[1].detach().clone())))
    result = trainer.fit()
    hook.remove()

    # Audio-Alpaca's columns read as pairs (strategy ignored); the undecodable clip's row is reported.
    assert result["data"]["schema"] == "pairs" and result["data"]["used"] == 8
    assert result["data"]["bad"] == [{"row": 8, "reason": JUNK_REASON}]
    assert json.loads((tmp_path / "out" / "data_report.json").read_text())["bad_rows"] == 1

    # Step 1: policy = reference, so every pair's loss is log 2.
    rows = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[0]["loss"] == pytest.approx(LOG2, abs=1e-6) and rows[0]["rewards/margins"] == 0.0
    assert rows[-1]["loss"] != pytest.approx(LOG2, abs=1e-5)

    # Reference then policy on identical inputs; one timestep per pair, shared by its two clips.
    assert len(calls) == 2 * 3
    for (ref_x, ref_t), (pol_x, pol_t) in zip(calls[::2], calls[1::2]):
        assert torch.equal(ref_x, pol_x) and torch.equal(ref_t, pol_t)
        assert ref_x.shape == (4, 8, 32, 16) and torch.equal(ref_t[:2], ref_t[2:])

    # The loss on a fixed batch, t and noise, recomputed from the definitions.
    adapter, unet, pipe = trainer.adapter, trainer.adapter.unet, trainer.adapter.pipeline
    batch = next(iter(trainer.loader))
    assert batch["mel"].shape == (2, 2, 1, 128, 64)
    with torch.no_grad():
        out = trainer.forward(batch, micro_step=123)
        g = torch.Generator().manual_seed(step_seed(cfg.training.seed, 123, 0))
        encoded = adapter.encode(batch, g)
        draw = adapter.draw(encoded, g)
        b = encoded.groups
        assert torch.equal(draw.noise[:b], draw.noise[b:]) and torch.equal(draw.timesteps[:b], draw.timesteps[b:])
        tok = pipe.tokenizer(batch["prompt"], padding=True, return_tensors="pt")
        states = pipe.text_encoder(input_ids=tok.input_ids, attention_mask=tok.attention_mask).last_hidden_state
        torch.testing.assert_close(encoded.cond["prompt_embeds"], states.repeat(2, 1, 1))
        mask = tok.attention_mask.repeat(2, 1)
        a = pipe.scheduler.alphas_cumprod[draw.timesteps].view(-1, 1, 1, 1)
        x0, eps = encoded.samples, draw.noise
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * eps
        velocity = a.sqrt() * eps - (1 - a).sqrt() * x0  # v-prediction target

        def error() -> torch.Tensor:
            pred = unet(noisy, draw.timesteps, encoder_hidden_states=states.repeat(2, 1, 1),
                        encoder_attention_mask=mask).sample
            return ((pred - velocity) ** 2).mean(dim=(1, 2, 3))

        err = error()
        with trainer.peft_model.disable_adapter():
            ref = error()
    inside = -0.5 * 2000 * ((err[:b] - err[b:]) - (ref[:b] - ref[b:]))
    expected = -torch.nn.functional.logsigmoid(inside).mean()
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.metrics["rewards/accuracies"].item() == pytest.approx((inside > 0).float().mean().item())

    # The LoRA file loads into a stock TangoPipeline and changes its audio.
    assert Path(result["output"]) == tmp_path / "out" / "pytorch_lora_weights.safetensors"
    before, after = stock_audio(assets["tango"]), stock_audio(assets["tango"], tmp_path / "out")
    assert np.abs(before - after).max() > 0


def test_sft_epoch_then_dpo_full_finetune_with_cache_validation_audio_and_tensorboard(tmp_path, assets):
    from diffusers import UNet2DConditionModel
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mmpref.audio.pipeline import TangoPipeline

    cfg = make_config(
        tmp_path, assets["tango"], assets["alpaca"], "training.max_steps=6", "training.sft_epochs=1",
        "optimizer.lr=1.0e-4", "data.cache.enabled=true", f"data.cache.dir={tmp_path / 'cache'}",
        "validation.every=3", "validation.steps=2", "validation.prompts=[a dog barking, two clicks]",
        "validation.seeds=[0, 1]", "logging.trackers=[tensorboard]", finetune="full")
    trainer = PreferenceTrainer(cfg, progress=False).setup()
    reference_calls: list[int] = []
    trainer.reference.module.register_forward_pre_hook(lambda m, args: reference_calls.append(args[0].shape[0]))
    policy_batches: list[int] = []
    trainer.adapter.unet.register_forward_pre_hook(
        lambda m, args: policy_batches.append(args[0].shape[0]) if m.training else None)
    result = trainer.fit()

    # 8 pairs / 2 per step: steps 1-4 are the SFT epoch (chosen clips only, no reference), 5-6 are DPO.
    rows = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert [("nll_loss" in r, "rewards/accuracies" in r) for r in rows] == [(True, False)] * 4 + [(False, True)] * 2
    assert policy_batches == [2] * 4 + [4] * 2 and reference_calls == [4] * 2
    assert all(r["loss"] == pytest.approx(r["nll_loss"]) for r in rows[:4])
    # The DPO reference is the start model, not the SFT result (as Tango 2's frozen copy).
    original = UNet2DConditionModel.from_pretrained(str(assets["tango"]), subfolder="unet")
    for a, b in zip(trainer.reference.module.state_dict().values(), original.state_dict().values()):
        assert torch.equal(a, b)

    # SFT loss of a batch = ½·MSE(v) of its chosen clips, on the draw the trainer makes for them.
    batch = next(iter(trainer.loader))
    assert batch["prompt_embeds"].shape == (2, 16, 32) and batch["attention_mask"].shape == (2, 16)  # cached rows
    with torch.no_grad():
        out = trainer.forward(batch, micro_step=5, epoch=0)
        adapter = trainer.adapter
        g = torch.Generator().manual_seed(step_seed(cfg.training.seed, 5, 0))
        encoded = adapter.encode(batch, g)
        x0, cond = encoded.samples[:2], {k: v[:2] for k, v in encoded.cond.items()}
        t = adapter.process.sample_timesteps(2, g, x0.device)
        eps = torch.randn(x0.shape, generator=g)
        a = adapter.process.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        pred = adapter.unet(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, encoder_hidden_states=cond["prompt_embeds"],
                            encoder_attention_mask=cond["attention_mask"]).sample
        mse = ((pred - (a.sqrt() * eps - (1 - a).sqrt() * x0)) ** 2).mean(dim=(1, 2, 3))
    assert out.loss.item() == pytest.approx(0.5 * mse.mean().item(), rel=1e-5)

    # Cache written; validation WAVs (16 kHz, 1.28 s) and mel grids before, during and after training.
    assert any((tmp_path / "cache").rglob("manifest.json"))
    val = tmp_path / "out" / "validation"
    assert sorted(p.name for p in val.glob("*.png")) == ["step-000000.png", "step-000003.png", "step-000006.png"]
    wavs = sorted(p.name for p in (val / "step-000006").glob("*.wav"))
    assert wavs == ["p0-seed0.wav", "p0-seed1.wav", "p1-seed0.wav", "p1-seed1.wav"]
    info = sf.info(str(val / "step-000006" / "p1-seed1.wav"))
    assert (info.samplerate, info.frames) == (16000, 20480)
    from PIL import Image

    assert Image.open(val / "step-000006.png").size == (2 * 128, 2 * 128)
    events = [str(p) for p in (tmp_path / "out" / "logs").rglob("events.out.tfevents*")]
    tags: set[str] = set()
    for path in events:
        acc = EventAccumulator(path, size_guidance={"audio": 0, "images": 0})
        acc.Reload()
        tags |= set(acc.Tags()["audio"]) | set(acc.Tags()["images"])
    assert {"validation_audio/00", "validation_audio/03", "validation"} <= tags

    # The output is a complete TangoPipeline with the trained UNet.
    pipe = TangoPipeline.from_pretrained(result["output"])
    assert any(not torch.equal(a, b) for a, b in zip(pipe.unet.state_dict().values(), original.state_dict().values()))


def test_generic_audio_pairs_with_paths_and_an_unpaired_objective(tmp_path, assets):
    cfg = make_config(tmp_path, assets["tango"], assets["folder"], "objective={name: kto, beta: 500}",
                      "training.max_steps=2")
    result = PreferenceTrainer(cfg, progress=False).setup().fit()
    rows = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert result["data"]["used"] == 4 and result["data"]["bad_rows"] == 0
    assert len(rows) == 2 and all(math.isfinite(r["loss"]) for r in rows)
    assert rows[0]["rewards/chosen"] == 0.0 and rows[0]["rewards/rejected"] == 0.0  # policy = reference at step 1


def test_adapter_errors_name_the_fix(tmp_path, assets):
    original = write_tiny_tango_checkpoint(tmp_path / "tango-original")
    cfg = make_config(tmp_path / "a", original, assets["alpaca"])
    with pytest.raises(UserError, match="original layout; convert it once with `python -m mmpref.audio.convert_tango"):
        PreferenceTrainer(cfg, progress=False).setup()
    cfg = make_config(tmp_path / "b", assets["tango"], assets["alpaca"], "model.adapter.audio_length_in_s=1.3")
    with pytest.raises(UserError, match="130 mel frames, not a multiple of 8"):
        PreferenceTrainer(cfg, progress=False).setup()
    with pytest.raises(Exception, match="multiple of 0.01 s"):
        make_config(tmp_path / "c", assets["tango"], assets["alpaca"], "model.adapter.audio_length_in_s=1.2805")


def test_bundled_tango2_recipe_validates(capsys):
    from mmpref.cli import main

    assert main(["train", "tango2_dpo", "--dry-run"]) == 0
    assert "# ok: method 'preference'" in capsys.readouterr().out
    run = load_config("tango2_dpo", [])
    cfg = run.config
    t, o = cfg.training, cfg.optimizer
    assert cfg.model.adapter.name == "text_to_audio" and cfg.model.finetune == "full"
    assert cfg.objective.name == "dpo" and cfg.objective.params.beta == 2000 and cfg.model.adapter.params.logp_scale == 0.5
    assert (o.lr, o.scheduler, o.warmup_steps, t.sft_epochs) == (9.6e-7, "linear", 200, 1)
    assert t.batch_size * t.gradient_accumulation_steps == 32
    assert Path(run.path).read_text().startswith("# Tango 2 recipe:")


def test_sft_objective_is_the_mean_nll_of_desirable_samples():
    from mmpref.objectives import UnpairedInputs, build_objective

    sft = build_objective("sft")
    assert not sft.paired and not sft.needs_reference and sft.desirable_only
    policy = torch.tensor([-1.0, -3.0, -10.0, -20.0], requires_grad=True)
    out = sft(UnpairedInputs(policy=policy, reference=None, desirable=torch.tensor([True, True, False, False])))
    assert out.loss.item() == pytest.approx(2.0) and out.metrics["nll_loss"].item() == pytest.approx(2.0)
    out.loss.backward()
    assert policy.grad.tolist() == [-0.5, -0.5, 0.0, 0.0]
    none = sft(UnpairedInputs(policy=policy, reference=None, desirable=torch.zeros(4, dtype=torch.bool)))
    assert none.loss.item() == 0.0  # a batch without desirable samples trains nothing (and is not NaN)


def write_single_audio_parquet(pairs: Path, path: Path) -> Path:
    """The Audio-Alpaca rows as single clips (prompt, audio, label): chosen desirable, rejected not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": row["prompt"], "audio": row[side], "label": side == "chosen"}
            for row in pq.read_table(pairs).to_pylist() for side in ("chosen", "rejected")]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_single_audio_clips_train_an_unpaired_objective_and_bad_clips_are_counted(tmp_path, assets):
    import pyarrow.parquet as pq

    data = write_single_audio_parquet(assets["alpaca"], tmp_path / "single" / "train.parquet")
    cfg = make_config(tmp_path / "kto", assets["tango"], data, "objective={name: kto, beta: 500}",
                      "training.max_steps=2")
    result = PreferenceTrainer(cfg, progress=False).setup().fit()
    report = json.loads((tmp_path / "kto" / "out" / "data_report.json").read_text())
    assert report["schema"] == "single_audio"  # told apart from image singles by its `audio` column
    # Two clips per Audio-Alpaca row; the one undecodable (rejected) clip is counted by its row, the rest train.
    clips = 2 * len(pq.read_table(assets["alpaca"]))
    assert report["total_rows"] == clips and result["data"]["used"] == clips - 1 and result["data"]["bad_rows"] == 1
    assert report["bad"] == [{"row": clips - 1, "reason": JUNK_REASON.replace("rejected:", "audio:")}]
    rows = read_metrics(tmp_path / "kto" / "out" / "metrics.jsonl")
    assert len(rows) == 2 and all(math.isfinite(r["loss"]) for r in rows)

    cfg = make_config(tmp_path / "dpo", assets["tango"], data)
    with pytest.raises(DataError, match=r"single samples \(prompt, audio, label\), but objective 'dpo' needs pairs"):
        PreferenceTrainer(cfg, progress=False).setup()
