"""Diffusion-DPO with `method: preference` on tiny SD 1.x and SDXL pipelines and a Pick-a-Pic parquet.

Real components end to end: pipelines saved with save_pretrained and loaded by the adapter through
from_pretrained, configs validated from YAML, outputs loaded by stock diffusers pipelines.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mmpref.config import load_config
from mmpref.errors import ConfigError, DataError
from mmpref.testing.data import write_pickapic_parquet, write_single_parquet
from mmpref.testing.tiny import build_tiny_sd
from mmpref.training.guard import TrainingDiverged
from mmpref.training.tracking import read_metrics
from mmpref.training.trainer import PreferenceTrainer, step_seed

LOG2 = math.log(2.0)


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    return {
        "sd": build_tiny_sd(root / "sd", "sd"),
        "sdxl": build_tiny_sd(root / "sdxl", "sdxl"),
        "pickapic": write_pickapic_parquet(root / "pickapic.parquet", n=8, ties=1, corrupt=("undecodable",)),
        "single": write_single_parquet(root / "single.parquet", n=6),
    }


def make_config(tmp_path: Path, pipe: Path, data: Path, *overrides: str, finetune: str = "lora"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "run.yaml"
    path.write_text(f"""method: preference
model:
  adapter: {{name: text_to_image, pretrained: {pipe}, resolution: 32}}
  finetune: {finetune}
  lora: {{rank: 4}}
objective: {{name: dpo, beta: 5000}}
data: {{source: {data}, max_bad_fraction: 0.2}}
training: {{max_steps: 3, batch_size: 2, log_every: 1, checkpoint_every: 0}}
optimizer: {{lr: 1.0e-3}}
logging: {{trackers: [], progress_bar: false}}
output_dir: {tmp_path / 'out'}
""")
    return load_config(str(path), list(overrides)).config


def stock_images(pipe_cls, path: Path, lora_dir: Path | None = None) -> np.ndarray:
    pipe = pipe_cls.from_pretrained(str(path))
    pipe.set_progress_bar_config(disable=True)
    if lora_dir is not None:
        pipe.load_lora_weights(str(lora_dir))
    return pipe("a red cube on a table", num_inference_steps=2, height=32, width=32, output_type="np",
                generator=torch.Generator().manual_seed(0)).images


def test_sd_lora_dpo_log2_formula_shared_draws_and_stock_lora_loading(tmp_path, assets):
    from diffusers import StableDiffusionPipeline

    cfg = make_config(tmp_path, assets["sd"], assets["pickapic"])
    trainer = PreferenceTrainer(cfg, progress=False).setup()
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = trainer.adapter.unet.register_forward_pre_hook(
        lambda module, args: calls.append((args[0].detach().clone(), args[1].detach().clone()))
    )
    result = trainer.fit()
    hook.remove()

    # Bad rows and ties were counted and reported, not silently dropped.
    assert result["data"]["ties"] == 1 and result["data"]["bad"] == [
        {"row": 9, "reason": "jpg_1: cannot decode image (not a recognised image format)"}]
    report = json.loads((tmp_path / "out" / "data_report.json").read_text())
    assert report["used"] == 8 and report["bad_rows"] == 1

    # Step 1: policy equals reference, so every pair's loss is log 2 and no pair is "won" yet.
    rows = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[0]["loss"] == pytest.approx(LOG2, abs=1e-6)
    assert rows[0]["rewards/accuracies"] == 0.0 and rows[0]["rewards/margins"] == 0.0
    assert rows[-1]["loss"] != pytest.approx(LOG2, abs=1e-5)

    # Each micro-batch ran the reference then the policy on identical inputs; t shared within each pair.
    assert len(calls) == 2 * 3
    for (ref_x, ref_t), (pol_x, pol_t) in zip(calls[::2], calls[1::2]):
        assert torch.equal(ref_x, pol_x) and torch.equal(ref_t, pol_t)
        b = ref_t.shape[0] // 2
        assert torch.equal(ref_t[:b], ref_t[b:])

    # The loss equals an independent computation of the published formula on the same batch and draw.
    adapter, unet = trainer.adapter, trainer.adapter.unet
    batch = next(iter(trainer.loader))
    with torch.no_grad():
        out = trainer.forward(batch, micro_step=123)
        g = torch.Generator().manual_seed(step_seed(cfg.training.seed, 123, 0))
        encoded = adapter.encode(batch, g)
        draw = adapter.draw(encoded, g)
        a = adapter.process.scheduler.alphas_cumprod[draw.timesteps].view(-1, 1, 1, 1)
        noisy = a.sqrt() * encoded.samples + (1 - a).sqrt() * draw.noise
        text = encoded.cond["prompt_embeds"]
        err = ((unet(noisy, draw.timesteps, encoder_hidden_states=text).sample - draw.noise) ** 2).mean(dim=(1, 2, 3))
        with trainer.peft_model.disable_adapter():
            ref = ((unet(noisy, draw.timesteps, encoder_hidden_states=text).sample - draw.noise) ** 2).mean(dim=(1, 2, 3))
    b = err.shape[0] // 2
    inside = -0.5 * 5000 * ((err[:b] - err[b:]) - (ref[:b] - ref[b:]))
    expected = -torch.nn.functional.logsigmoid(inside).mean()
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.metrics["rewards/accuracies"].item() == pytest.approx((inside > 0).float().mean().item())

    # The LoRA output loads in a stock pipeline and changes its images.
    lora = tmp_path / "out" / "pytorch_lora_weights.safetensors"
    assert Path(result["output"]) == lora and lora.exists()
    before = stock_images(StableDiffusionPipeline, assets["sd"])
    after = stock_images(StableDiffusionPipeline, assets["sd"], tmp_path / "out")
    assert np.abs(before - after).max() > 1e-4


def test_sdxl_lora_with_cache_validation_grid_and_tensorboard(tmp_path, assets):
    from diffusers import StableDiffusionXLPipeline

    cfg = make_config(
        tmp_path, assets["sdxl"], assets["pickapic"], "training.max_steps=2", "data.cache.enabled=true",
        f"data.cache.dir={tmp_path / 'cache'}", "validation.every=1", "validation.steps=2",
        "validation.prompts=[a cat, a dog]", "validation.seeds=[0, 1, 2]", "logging.trackers=[tensorboard]",
        "training.checkpoint_every=1", "training.checkpoints_to_keep=1",
    )
    result = PreferenceTrainer(cfg, progress=False).setup().fit()
    out = tmp_path / "out"
    rows = read_metrics(out / "metrics.jsonl")
    assert rows[0]["loss"] == pytest.approx(LOG2, abs=1e-6)
    assert any((tmp_path / "cache").rglob("manifest.json"))
    grids = sorted(p.name for p in (out / "validation").glob("*.png"))
    assert grids == ["step-000000.png", "step-000001.png", "step-000002.png"]
    from PIL import Image

    assert Image.open(out / "validation" / "step-000002.png").size == (3 * 32, 2 * 32)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((out / "logs").rglob("events.out.tfevents*")).parent))
    events.Reload()
    assert [e.step for e in events.Images("validation")] == [0, 1, 2]  # the grids reached the tracker
    assert [e.step for e in events.Scalars("loss")] == [1, 2]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-000002"]  # retention limit 1
    assert result["output"].endswith("pytorch_lora_weights.safetensors")
    before = stock_images(StableDiffusionXLPipeline, assets["sdxl"])
    after = stock_images(StableDiffusionXLPipeline, assets["sdxl"], out)
    assert np.abs(before - after).max() > 1e-4


def test_lora_beyond_attention_loads_every_trained_layer_in_stock_diffusers(tmp_path, assets):
    """Targets past attention (proj_in, ff) once gave a file stock diffusers half-loaded; now all of it loads."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    targets = "[to_q, to_k, to_v, to_out.0, proj_in, proj_out, ff.net.0.proj, ff.net.2]"
    cfg = make_config(tmp_path, assets["sd"], assets["pickapic"], "training.max_steps=2",
                      f"model.lora.target_modules={targets}")
    trainer = PreferenceTrainer(cfg, progress=False).setup()
    trainer.fit()
    trained = {n for n, m in trainer.adapter.unet.named_modules() if hasattr(m, "lora_A")}
    assert {n.rsplit(".", 1)[-1] for n in trained} >= {"to_q", "proj_in", "2"}

    keys = load_file(str(tmp_path / "out" / "pytorch_lora_weights.safetensors"))
    assert all(".lora_A." in k or ".lora_B." in k for k in keys), "one key naming in the file"
    pipe = StableDiffusionPipeline.from_pretrained(str(assets["sd"]))
    pipe.load_lora_weights(str(tmp_path / "out"))
    loaded = {n for n, m in pipe.unet.named_modules() if hasattr(m, "lora_A")}
    assert loaded == trained


def test_full_finetune_with_ema_writes_a_pipeline_that_loads(tmp_path, assets):
    from diffusers import DiffusionPipeline, UNet2DConditionModel

    cfg = make_config(tmp_path, assets["sd"], assets["pickapic"], "training.max_steps=2", "model.ema.enabled=true",
                      "optimizer.lr=1.0e-4", finetune="full")
    trainer = PreferenceTrainer(cfg, progress=False).setup()
    assert trainer.reference.module is not trainer.adapter.unet
    result = trainer.fit()
    assert read_metrics(tmp_path / "out" / "metrics.jsonl")[0]["loss"] == pytest.approx(LOG2, abs=1e-6)
    pipe = DiffusionPipeline.from_pretrained(result["output"])
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    original = UNet2DConditionModel.from_pretrained(str(assets["sd"]), subfolder="unet")
    changed = [not torch.equal(a, b) for a, b in zip(pipe.unet.state_dict().values(), original.state_dict().values())]
    assert any(changed)
    # The saved UNet is the EMA of the trained weights.
    for saved, shadow in zip(pipe.unet.parameters(), trainer.ema.shadow_params):
        torch.testing.assert_close(saved, shadow)


@pytest.mark.parametrize("objective, data", [("kto", "single"), ("npo", "pickapic")])
def test_unpaired_objectives_on_single_images_and_on_pairs(tmp_path, assets, objective, data):
    cfg = make_config(tmp_path, assets["sd"], assets[data], f"objective={{name: {objective}, beta: 500}}",
                      "training.max_steps=2")
    trainer = PreferenceTrainer(cfg, progress=False).setup()
    assert not trainer.objective.paired
    result = trainer.fit()
    rows = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert len(rows) == 2 and all(math.isfinite(r["loss"]) for r in rows)
    assert rows[0]["rewards/rejected"] == 0.0  # policy == reference at step 1
    assert result["data"]["schema"] == data


@pytest.mark.parametrize("objective, step1", [
    ("{name: ipo, beta: 0.5}", 1.0),  # (Δ − 1/(2β))² at Δ = 0
    ("{name: cdpo, beta: 5000, label_smoothing: 0.2}", LOG2),
    ("{name: rdpo, beta: 5000, flip_rate: 0.2}", LOG2),
])
def test_other_pairwise_objectives_train_on_image_pairs(tmp_path, assets, objective, step1):
    cfg = make_config(tmp_path, assets["sd"], assets["pickapic"], f"objective={objective}", "training.max_steps=2")
    PreferenceTrainer(cfg, progress=False).setup().fit()
    rows = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert rows[0]["loss"] == pytest.approx(step1, rel=1e-6) and math.isfinite(rows[1]["loss"])
    assert rows[1]["loss"] != pytest.approx(step1, rel=1e-9)


def test_pairwise_objective_refuses_single_samples(tmp_path, assets):
    with pytest.raises(DataError, match="needs pairs"):
        PreferenceTrainer(make_config(tmp_path, assets["sd"], assets["single"]), progress=False).setup()


def test_bf16_autocast_with_gradient_checkpointing(tmp_path, assets):
    cfg = make_config(tmp_path, assets["sd"], assets["pickapic"], "training.mixed_precision=bf16",
                      "model.gradient_checkpointing=true", "training.max_steps=2")
    trainer = PreferenceTrainer(cfg, progress=False).setup()
    assert trainer.adapter.unet.is_gradient_checkpointing and trainer.adapter.vae.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters() if p.requires_grad)
    trainer.fit()
    rows = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert rows[0]["loss"] == pytest.approx(LOG2, abs=1e-6) and math.isfinite(rows[1]["loss"])


def test_nan_loss_stops_naming_step_and_rows(tmp_path, assets):
    trainer = PreferenceTrainer(make_config(tmp_path, assets["sd"], assets["pickapic"]), progress=False).setup()
    with torch.no_grad():
        next(p for p in trainer.model.parameters() if p.requires_grad).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 1 \(micro-batch 0, data rows \[\d+, \d+\]\)"):
        trainer.fit()


def test_ties_as_soft_targets_need_a_soft_objective(tmp_path, assets):
    with pytest.raises(ConfigError, match="objective.labels=soft"):
        make_config(tmp_path, assets["sd"], assets["pickapic"], "data.ties=soft")
    cfg = make_config(tmp_path, assets["sd"], assets["pickapic"], "data.ties=soft", "objective={name: soft_dpo, beta: 5000}",
                      "training.max_steps=1", "training.batch_size=9", "data.shuffle=false", "data.num_workers=1")
    trainer = PreferenceTrainer(cfg, progress=False).setup()
    batch = next(iter(trainer.loader))
    assert trainer.soft_targets and batch["target"].tolist() == [1.0] * 8 + [0.5]
    assert trainer.fit()["data"]["ties_kept"]


def test_progress_bar_shows_loss_accuracy_and_eta(tmp_path):
    import io

    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from mmpref.training.tracking import MetricsLog

    stream = io.StringIO()
    bar = tqdm(total=4, file=stream, mininterval=0)
    log = MetricsLog(Accelerator(cpu=True), tmp_path / "metrics.jsonl", bar)
    log.add(torch.tensor(0.5), {"rewards/accuracies": torch.tensor(1.0)})
    log.add(torch.tensor(0.7), {"rewards/accuracies": torch.tensor(0.5)})
    assert log.flush(1, {})["rewards/accuracies"] == 0.75
    bar.update(1)
    text = stream.getvalue().split("\r")[-1]
    assert "loss=0.6000" in text and "acc=0.75" in text and "1/4 [00:00<" in text  # '<' precedes tqdm's ETA


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_8bit_adam_without_bitsandbytes_is_one_clear_line(tmp_path, assets):
    from mmpref.errors import UserError
    from mmpref.training.setup import make_optimizer

    cfg = make_config(tmp_path, assets["sd"], assets["pickapic"], "optimizer.use_8bit_adam=true")
    with pytest.raises(UserError, match=r"^optimizer.use_8bit_adam: bitsandbytes is not installed"):
        make_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg, 1)


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_missing_tracker_is_one_clear_line(tmp_path, assets):
    from mmpref.errors import UserError

    cfg = make_config(tmp_path, assets["sd"], assets["pickapic"], "logging.trackers=[tensorboard, wandb]")
    with pytest.raises(UserError, match=r"^logging.trackers: wandb is not installed; `pip install wandb`"):
        PreferenceTrainer(cfg, progress=False).setup()
