"""accelerate, optimizer and learning-rate schedule from the config (CPU and CUDA alike)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from mmpref.errors import UserError
from mmpref.training.config import PreferenceTrainConfig
from mmpref.training.tracking import tracker_names

DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def make_accelerator(config: PreferenceTrainConfig) -> Any:
    """An Accelerator with the config's mixed precision, accumulation and trackers.

    The config is authoritative for mixed precision; the launch (`accelerate launch`, an accelerate
    config file) decides processes, DDP/FSDP/DeepSpeed and devices.
    """
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    out = Path(config.output_dir)
    trackers = tracker_names(config.logging.trackers)
    try:
        accelerator = Accelerator(
            cpu=config.training.device == "cpu",
            gradient_accumulation_steps=config.training.gradient_accumulation_steps,
            mixed_precision=config.training.mixed_precision,
            log_with=trackers or None,
            project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
        )
    except ValueError as err:
        raise UserError(f"training.mixed_precision: {err}".splitlines()[0]) from None
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes == 1:
        raise UserError(
            f"launched with {launched} processes, but accelerate found no device to distribute over, so each would train "
            "alone; on a machine without GPUs pass training.device=cpu (or set ACCELERATE_USE_CPU=true)."
        )
    if accelerator.device.type == "cpu":
        # A saturated preference loss (large beta) back-propagates gradients of ~1e-40: subnormal floats, which
        # x86 CPUs process many times slower. Flushing them to zero loses nothing an optimizer could use;
        # benchmarks/bench_flush_denormal.py measures the difference.
        torch.set_flush_denormal(True)
    if accelerator.device.type == "cuda" and config.training.allow_tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return accelerator


def weight_dtype(config: PreferenceTrainConfig) -> torch.dtype:
    """The dtype frozen parts run in (the mixed-precision dtype); trainable weights stay fp32."""
    return DTYPES[config.training.mixed_precision]


def effective_batch(config: PreferenceTrainConfig, num_processes: int) -> int:
    t = config.training
    return t.batch_size * t.gradient_accumulation_steps * num_processes


def make_optimizer(params: list[torch.nn.Parameter], config: PreferenceTrainConfig, num_processes: int) -> Any:
    o = config.optimizer
    lr = o.lr * (effective_batch(config, num_processes) if o.scale_lr else 1)
    kwargs = dict(lr=lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay, eps=o.eps)
    if o.use_8bit_adam:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise UserError("optimizer.use_8bit_adam: bitsandbytes is not installed (`pip install bitsandbytes`, CUDA only).") from None
        return bnb.optim.AdamW8bit(params, **kwargs)
    return torch.optim.AdamW(params, **kwargs)


def make_scheduler(optimizer: Any, config: PreferenceTrainConfig, num_processes: int) -> Any:
    """diffusers' schedules; counts are multiplied by processes because accelerate steps it once per process."""
    from diffusers.optimization import get_scheduler

    return get_scheduler(
        config.optimizer.scheduler, optimizer,
        num_warmup_steps=config.optimizer.warmup_steps * num_processes,
        num_training_steps=config.training.max_steps * num_processes,
    )
