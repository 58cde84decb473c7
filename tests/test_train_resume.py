"""Kill-and-resume: a training process SIGKILLed while writing a checkpoint resumes exactly.

The run is killed for real (MMPREF_CRASH_AT makes the process SIGKILL itself after checkpoint 6's
files are written but before the folder is renamed into place). `resume_from: latest` must ignore and
remove the unfinished folder, continue from checkpoint 3 (mid-epoch, mid-accumulation schedule), and
reproduce the uninterrupted run's loss sequence and final weights, objective state (LCPO's noise
rate) and EMA (of the LoRA factors or of the full UNet: the saved weights are its averages) included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmpref.config import load_config
from mmpref.testing.data import write_pickapic_parquet
from mmpref.testing.tiny import build_tiny_sd
from mmpref.training.tracking import read_metrics
from mmpref.training.trainer import PreferenceTrainer

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def write_config(tmp_path: Path, finetune: str) -> Path:
    pipe = build_tiny_sd(tmp_path / "sd", "sd")
    data = write_pickapic_parquet(tmp_path / "p.parquet", n=8)
    objective = "{name: lcpo, beta: 5000}" if finetune == "lora" else "{name: dpo, beta: 5000}"
    path = tmp_path / "run.yaml"
    path.write_text(f"""method: preference
model:
  adapter: {{name: text_to_image, pretrained: {pipe}, resolution: 32, random_crop: true}}
  finetune: {finetune}
  lora: {{rank: 4}}
  ema: {{enabled: true, decay: 0.9}}
objective: {objective}
data: {{source: {data}}}
training: {{max_steps: 7, batch_size: 1, gradient_accumulation_steps: 2, log_every: 1, checkpoint_every: 3}}
optimizer: {{lr: 1.0e-3}}
logging: {{trackers: [], progress_bar: false}}
output_dir: {tmp_path / 'unused'}
""")
    return path


def final_weights(out: Path, finetune: str) -> dict[str, torch.Tensor]:
    if finetune == "lora":
        return load_file(str(out / "pytorch_lora_weights.safetensors"))
    return load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors"))


@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_sigkilled_run_resumes_to_the_same_losses_and_weights(tmp_path, finetune):
    config = write_config(tmp_path, finetune)
    straight, killed = tmp_path / "straight", tmp_path / "killed"

    PreferenceTrainer(load_config(str(config), [f"output_dir={straight}"]).config, progress=False).setup().fit()

    env = {**os.environ, "MMPREF_CRASH_AT": "checkpoint:6", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mmpref", "train", str(config), f"output_dir={killed}"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    ckpts = killed / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == [".tmp-checkpoint-000006", "checkpoint-000003"]
    assert not (killed / "pytorch_lora_weights.safetensors").exists()

    trainer = PreferenceTrainer(
        load_config(str(config), [f"output_dir={killed}", "training.resume_from=latest"]).config, progress=False
    ).setup()
    assert trainer.state.step == 3 and trainer.state.micro_step == 6 and trainer.state.position == 6
    trainer.fit()
    assert sorted(p.name for p in ckpts.iterdir()) == ["checkpoint-000003", "checkpoint-000006"]

    expected = read_metrics(straight / "metrics.jsonl")
    resumed = read_metrics(killed / "metrics.jsonl")
    assert [r["step"] for r in resumed] == list(range(1, 8))
    for a, b in zip(expected, resumed):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-6, abs=1e-9), (a["step"], a["loss"], b["loss"])
        assert b["epoch"] == a["epoch"] and b["lr"] == a["lr"]
    if finetune == "lora":  # LCPO's learned label-noise rate travelled through the checkpoint and keeps moving
        rates = [r["lcpo/noise_rate"] for r in resumed]
        assert rates == pytest.approx([r["lcpo/noise_rate"] for r in expected], rel=1e-6)
        assert rates[-1] != pytest.approx(rates[0])
    want, got = final_weights(straight, finetune), final_weights(killed, finetune)
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-6, atol=1e-8)
