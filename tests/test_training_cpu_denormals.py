"""The trainer's accelerator flushes subnormal floats to zero on CPU (why: benchmarks/bench_flush_denormal.py)."""

import pytest
import torch

from mmpref.training.config import PreferenceTrainConfig
from mmpref.training.setup import make_accelerator

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def product_of_two_tiny_numbers() -> float:
    return (torch.tensor([1e-30]) * torch.tensor([1e-9])).item()  # 1e-39: below float32's smallest normal


def test_a_cpu_accelerator_flushes_subnormals_to_zero(tmp_path):
    torch.set_flush_denormal(False)
    try:
        assert product_of_two_tiny_numbers() == pytest.approx(1e-39, rel=1e-2)  # kept as a subnormal
        config = PreferenceTrainConfig(output_dir=str(tmp_path))
        config.training.device = "cpu"
        assert make_accelerator(config).device.type == "cpu"
        assert product_of_two_tiny_numbers() == 0.0
        assert (torch.tensor([1e-20]) * torch.tensor([1e-9])).item() == pytest.approx(1e-29)  # normal range untouched
    finally:
        torch.set_flush_denormal(False)
