"""EMA of LoRA factors: the saved adapter is the average, not the last iterate.

diffusers' EMAModel uses decay_t = min(decay, (1 + t) / (10 + t)), so a tiny decay keeps the shadow on the
weights (the output equals a run without EMA) while 0.9 lags behind them (the output differs); the
averaged adapter is what stock diffusers loads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmpref.config import load_config
from mmpref.testing.data import write_pickapic_parquet
from mmpref.testing.tiny import build_tiny_sd
from mmpref.training.trainer import PreferenceTrainer

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def train_lora(tmp_path: Path, pipe: Path, data: Path, name: str, ema: str) -> dict[str, torch.Tensor]:
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"""method: preference
model:
  adapter: {{name: text_to_image, pretrained: {pipe}, resolution: 32}}
  finetune: lora
  lora: {{rank: 4}}
  ema: {ema}
objective: {{name: dpo, beta: 5000}}
data: {{source: {data}}}
training: {{max_steps: 4, batch_size: 2}}
optimizer: {{lr: 1.0e-2}}
logging: {{trackers: [], progress_bar: false}}
output_dir: {tmp_path / name}
""")
    PreferenceTrainer(load_config(str(config)).config, progress=False).setup().fit()
    return load_file(str(tmp_path / name / "pytorch_lora_weights.safetensors"))


def test_lora_ema_saves_the_average(tmp_path):
    pipe = build_tiny_sd(tmp_path / "sd", "sd")
    data = write_pickapic_parquet(tmp_path / "p.parquet", n=8)
    raw = train_lora(tmp_path, pipe, data, "raw", "{enabled: false}")
    tracking = train_lora(tmp_path, pipe, data, "tracking", "{enabled: true, decay: 1.0e-6}")
    lagging = train_lora(tmp_path, pipe, data, "lagging", "{enabled: true, decay: 0.9}")
    assert raw.keys() == tracking.keys() == lagging.keys()
    lora_b = [k for k in raw if "lora_B" in k]
    assert lora_b and all(raw[k].abs().max() > 0 for k in lora_b)  # trained: B starts at zero
    for key in raw:
        torch.testing.assert_close(tracking[key], raw[key], rtol=1e-4, atol=1e-6)
    assert max((lagging[k] - raw[k]).abs().max().item() for k in lora_b) > 1e-4
    # the averaged B factors are smaller than the trained ones (the shadow starts at B = 0 and lags)
    assert sum(lagging[k].norm() for k in lora_b) < sum(raw[k].norm() for k in lora_b)

    from diffusers import StableDiffusionPipeline

    sd = StableDiffusionPipeline.from_pretrained(pipe)
    sd.load_lora_weights(str(tmp_path / "lagging"))
    assert any("lora" in n for n, _ in sd.unet.named_parameters())
