"""The config of `method: preference`: which model (adapter), objective, data, and how to train.

Every field is a knob of the YAML recipe; comments are the documentation `mmpref cp` users read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mmpref.config import Component, component
from mmpref.data.settings import DataSettings

SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")


@dataclass
class LoraSettings:
    rank: int = 8  # LoRA rank r (diffusers' DPO scripts: 8)
    alpha: float | None = None  # LoRA alpha; null = rank (scale 1)
    dropout: float = 0.0
    target_modules: list[str] | None = None  # module names to adapt; null = the adapter's (attention q/k/v/out projections)

    def check(self) -> None:
        if self.rank < 1:
            raise ValueError(f"rank must be >= 1, got {self.rank}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class EMASettings:
    enabled: bool = False  # keep an exponential moving average of the trained weights (full: the module, lora: the factors); saved as the output
    decay: float = 0.9999  # a ceiling: diffusers' EMAModel uses min(decay, (1 + t) / (10 + t)) at step t, so decay d
    # is reached only after (10d - 1) / (1 - d) steps (0.99: 890, 0.9999: ~90,000); shorter runs average fewer steps
    update_after_step: int = 0

    def check(self) -> None:
        if not 0 < self.decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {self.decay}")


@dataclass
class ModelSettings:
    adapter: Component = component("adapters")  # {name: text_to_image, pretrained: ..., ...}
    finetune: Literal["lora", "full"] = "lora"  # lora: reference = same weights with adapters off; full: frozen reference copy
    lora: LoraSettings = field(default_factory=LoraSettings)
    ema: EMASettings = field(default_factory=EMASettings)
    gradient_checkpointing: bool = False  # recompute activations in backward (less memory, ~30% more compute)
    attention: Literal["auto", "sdpa", "xformers"] = "auto"  # auto: xformers on CUDA when installed, else SDPA


@dataclass
class OptimizerSettings:
    lr: float = 1e-5  # learning rate (per optimiser step; see scale_lr)
    scale_lr: bool = False  # multiply lr by the effective batch (pairs per step), as the Diffusion-DPO launchers do
    scheduler: Literal[SCHEDULERS] = "constant_with_warmup"  # type: ignore[valid-type]
    warmup_steps: int = 0
    weight_decay: float = 1e-2
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    max_grad_norm: float | None = 1.0  # gradient clipping; null = off
    use_8bit_adam: bool = False  # bitsandbytes AdamW8bit (CUDA only)

    def check(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")


@dataclass
class TrainingSettings:
    max_steps: int = 2000  # optimiser steps
    batch_size: int = 1  # pairs (or single samples) per device per micro-batch
    gradient_accumulation_steps: int = 1  # micro-batches per optimiser step
    sft_epochs: int = 0  # first epochs train objective `sft` (chosen samples' NLL, no reference) before the objective; Tango 2: 1
    mixed_precision: Literal["no", "fp16", "bf16", False] = "no"  # frozen parts run in this dtype; trainable weights stay fp32
    device: Literal["auto", "cpu"] = "auto"  # auto: the launch's accelerator (CUDA when present); cpu: force CPU (gloo when launched with several processes)
    seed: int = 0
    log_every: int = 10  # optimiser steps between logged metrics
    checkpoint_every: int = 500  # optimiser steps between checkpoints (0 = only at the end)
    checkpoints_to_keep: int | None = 3  # retention limit; null = keep all
    resume_from: str | None = None  # latest (newest complete checkpoint in output_dir, or a fresh start), or a checkpoint folder
    allow_tf32: bool = True  # TF32 matmuls on Ampere+ GPUs

    def check(self) -> None:
        if self.mixed_precision is False:  # YAML 1.1 reads an unquoted `no` as false
            self.mixed_precision = "no"
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.sft_epochs < 0:
            raise ValueError(f"sft_epochs must be >= 0, got {self.sft_epochs}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.checkpoints_to_keep is not None and self.checkpoints_to_keep < 1:
            raise ValueError(f"checkpoints_to_keep must be >= 1 or null, got {self.checkpoints_to_keep}")


@dataclass
class ValidationSettings:
    every: int = 0  # optimiser steps between validation grids (0 = off); also runs before training and at the end
    prompts: list[str] = field(default_factory=lambda: [
        "a photo of an astronaut riding a horse on the moon",
        "a watercolor painting of a lighthouse at dawn",
    ])
    seeds: list[int] = field(default_factory=lambda: [0, 1])  # one grid column per seed
    steps: int = 25  # sampling steps
    guidance_scale: float = 7.5
    resolution: int | None = None  # default: the adapter's training resolution


@dataclass
class LoggingSettings:
    trackers: list[Literal["tensorboard", "wandb"]] = field(default_factory=lambda: ["tensorboard"])
    project: str = "mmpref"  # tracker project name
    run_name: str | None = None
    progress_bar: bool = True


@dataclass
class PreferenceTrainConfig:
    model: ModelSettings = field(default_factory=ModelSettings)
    objective: Component = component("objectives", "dpo", beta=5000.0)
    data: DataSettings = field(default_factory=DataSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    output_dir: str = "outputs/preference"  # checkpoints, logs, validation grids, the final LoRA or pipeline

    def check(self) -> None:
        params = self.objective.params
        labels = getattr(params, "labels", None)
        if self.data.ties == "soft" and labels is not None and labels != "soft":
            raise ValueError(
                f"data.ties: soft keeps ties as targets 0.5, but objective '{self.objective.name}' uses labels "
                f"'{labels}' and would ignore them; set objective.labels=soft (or objective: soft_dpo) or data.ties=drop"
            )
