"""Two CPU processes (gloo) through `accelerate launch`: DDP training writes one checkpoint with both RNG states."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys

import pytest

from mmpref.testing.data import write_pickapic_parquet
from mmpref.testing.tiny import build_tiny_sd
from mmpref.training.tracking import read_metrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_cpu_run_trains_and_writes_one_checkpoint(tmp_path):
    pipe = build_tiny_sd(tmp_path / "sd", "sd")
    data = write_pickapic_parquet(tmp_path / "p.parquet", n=8)
    out = tmp_path / "out"
    config = tmp_path / "run.yaml"
    config.write_text(f"""method: preference
model:
  adapter: {{name: text_to_image, pretrained: {pipe}, resolution: 32}}
  lora: {{rank: 4}}
objective: {{name: lcpo, beta: 5000}}  # its noise rate is all-reduced across the 2 ranks
data: {{source: {data}}}
training: {{max_steps: 2, batch_size: 2, log_every: 1, checkpoint_every: 2, device: cpu}}
optimizer: {{lr: 1.0e-3}}
logging: {{trackers: [], progress_bar: false}}
output_dir: {out}
""")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(free_port()), "-m", "mmpref", "train", str(config)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "effective batch: 4 pairs per step = 2 per device × 2 processes × 1 accumulation" in proc.stdout + proc.stderr
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-000002"]
    files = {p.name for p in (out / "checkpoints" / "checkpoint-000002").iterdir()}
    assert {"random_states_0.pkl", "random_states_1.pkl", "lora.safetensors", "optimizer.bin"} <= files
    state = json.loads((out / "checkpoints" / "checkpoint-000002" / "trainer_state.json").read_text())
    assert state["num_processes"] == 2 and state["step"] == 2
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2] and rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert (out / "pytorch_lora_weights.safetensors").exists()
