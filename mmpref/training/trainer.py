"""The preference training loop, one adapter and one objective at a time.

Per micro-batch: encode (or read cached encodings), draw one timestep and noise per pair, run the
reference (no grad) and the policy on the same draw, feed the per-sample log-likelihoods to the
objective, stop on a non-finite loss, backward under accelerate's accumulation. Per optimiser step:
clip, step, EMA, log, validate, checkpoint. All randomness is derived from (seed, micro-step, process)
and (seed, epoch, row), which is why a resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mmpref.adapters.base import Encoded
from mmpref.config import to_plain
from mmpref.data.schema import UNPAIRED
from mmpref.errors import DataError, UserError
from mmpref.objectives.base import Objective, ObjectiveOutput, PairwiseInputs, UnpairedInputs
from mmpref.training.checkpoint import STATE_FILE, Checkpoints, read_json, write_json
from mmpref.training.config import PreferenceTrainConfig
from mmpref.training.faults import maybe_crash
from mmpref.training.guard import check_finite
from mmpref.training.loaders import (
    attach_stored_latents,
    build_dataset,
    build_loader,
    cached_dataset,
    write_report,
)
from mmpref.training.models import Reference, apply_lora, load_ema, lora_config, make_ema, save_ema
from mmpref.training.setup import (
    effective_batch,
    make_accelerator,
    make_optimizer,
    make_scheduler,
    weight_dtype,
)
from mmpref.training.tracking import MetricsLog, flat_config
from mmpref.training.validation import run_validation

LORA_FILE = "lora.safetensors"


@dataclass
class TrainState:
    """Where a run is: optimiser steps done, micro-batches done, epoch and batches done in it."""

    step: int = 0
    micro_step: int = 0
    epoch: int = 0
    position: int = 0
    history: list[float] = field(default_factory=list)


def step_seed(seed: int, micro_step: int, process: int) -> int:
    """A 63-bit seed for one micro-batch of one process."""
    digest = hashlib.sha256(f"mmpref:{seed}:{micro_step}:{process}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_inputs(policy: torch.Tensor, reference: torch.Tensor | None, group_size: int, batch: dict[str, Any],
                paired: bool, soft_targets: bool) -> PairwiseInputs | UnpairedInputs:
    """Group-major per-sample estimates → the objective's inputs (pairs, or single samples)."""
    if paired:
        if group_size != 2:
            raise DataError("this objective needs pairs, but the batch holds single samples")
        p = policy.view(2, -1)
        r = reference.view(2, -1) if reference is not None else None
        target = batch["target"].to(policy.device) if soft_targets else None
        return PairwiseInputs(
            policy_chosen=p[0], policy_rejected=p[1],
            reference_chosen=None if r is None else r[0], reference_rejected=None if r is None else r[1],
            target=target,
        )
    desirable = batch["desirable"].to(policy.device).transpose(0, 1).reshape(-1)
    return UnpairedInputs(policy=policy, reference=reference, desirable=desirable)


class PreferenceTrainer:
    """Builds everything from a `PreferenceTrainConfig` and trains; `fit()` returns a summary dict."""

    def __init__(self, config: PreferenceTrainConfig, progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        self.out = Path(config.output_dir)
        self.state = TrainState()
        self.ema: Any = None
        self.peft_model: Any = None
        self.last_checkpoint: str | None = None

    # ---- setup ---------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.accelerator.is_main_process:
            (tqdm.write if self.progress else print)(message)

    def setup(self) -> PreferenceTrainer:
        from accelerate.utils import set_seed

        cfg = self.config
        self.accelerator = acc = make_accelerator(cfg)
        set_seed(cfg.training.seed)
        self.weight_dtype = weight_dtype(cfg)
        self.objective = cfg.objective.build().to(acc.device)
        self.sft: Objective | None = None
        if cfg.training.sft_epochs:
            from mmpref.objectives import build_objective

            self.sft = build_objective("sft").to(acc.device)
        self.adapter = cfg.model.adapter.build()
        dataset, self.report = build_dataset(cfg, self.adapter, self.objective, acc, log=self.log)
        self.adapter.load(acc.device, self.weight_dtype)
        attach_stored_latents(cfg, self.adapter, dataset, log=self.log)
        if acc.is_main_process and self.report.latents is not None:
            write_report(cfg, self.report)  # now with what the model trains on
        if cfg.data.cache.enabled:
            dataset = cached_dataset(cfg, self.adapter, dataset, acc, log=self.log)
        self.soft_targets = any(t != 1.0 for t in self.report.target) and self.report.schema not in UNPAIRED
        if self.soft_targets and getattr(getattr(cfg.objective, "params", None), "labels", "soft") != "soft":
            self.log(f"note: the data has soft targets (ties or a target column), which objective "
                     f"'{cfg.objective.name}' ignores; use objective.labels=soft to train on them")
        self._setup_model()
        loader = build_loader(dataset, cfg, acc.num_processes)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.model.ema.enabled:  # of the trained weights only: the whole module (full) or the LoRA factors
            self.ema = make_ema(params, cfg.model.ema)
            self.ema.to(acc.device)
        optimizer = make_optimizer(params, cfg, acc.num_processes)
        scheduler = make_scheduler(optimizer, cfg, acc.num_processes)
        self.model, self.optimizer, self.loader, self.scheduler = acc.prepare(self.model, optimizer, loader, scheduler)
        self.params = params
        self.checkpoints = Checkpoints(self.out / "checkpoints", cfg.training.checkpoints_to_keep)
        if self.peft_model is not None:
            acc.register_save_state_pre_hook(self._save_lora_hook)
            acc.register_load_state_pre_hook(self._load_lora_hook)
        self._resume()
        if acc.is_main_process:
            import yaml

            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(yaml.safe_dump({"method": "preference", **to_plain(cfg)}, sort_keys=False))
        if acc.log_with:
            acc.init_trackers(cfg.logging.project, config=flat_config(to_plain(cfg)),
                              init_kwargs={"wandb": {"name": cfg.logging.run_name}} if cfg.logging.run_name else {})
        t = cfg.training
        self.log(
            f"effective batch: {effective_batch(cfg, acc.num_processes)} "
            f"{'pairs' if self.objective.paired else 'samples'} per step = {t.batch_size} per device × "
            f"{acc.num_processes} processes × {t.gradient_accumulation_steps} accumulation; "
            f"{sum(p.numel() for p in params):,} trainable parameters ({cfg.model.finetune}); "
            f"lr {self.optimizer.param_groups[0]['lr']:.3g}; device {acc.device}; mixed precision {acc.mixed_precision}"
        )
        if self.sft is not None:
            self.log(f"stages: objective sft for epochs 0-{t.sft_epochs - 1}, then {cfg.objective.name}")
        return self

    def _setup_model(self) -> None:
        cfg, adapter = self.config, self.adapter
        module = adapter.trainable
        if cfg.model.gradient_checkpointing:
            adapter.enable_gradient_checkpointing()
        adapter.enable_memory_efficient_attention(cfg.model.attention)
        if cfg.model.finetune == "lora":
            self.peft_model = apply_lora(module, cfg.model.lora, adapter.default_lora_targets, self.weight_dtype)
            self.model = self.peft_model
            self.reference = Reference(peft_model=self.peft_model)
        else:
            module.requires_grad_(True)
            self.model = module
            self.reference = Reference.frozen_copy(module, self.weight_dtype) if self.objective.needs_reference else None
        self.model.train()

    # ---- checkpoints ---------------------------------------------------------------------------
    def _save_lora_hook(self, models: list[Any], weights: list[Any], output_dir: str) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        if self.accelerator.is_main_process:
            state = get_peft_model_state_dict(self.peft_model)
            save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(Path(output_dir) / LORA_FILE))
        while weights:
            weights.pop()

    def _load_lora_hook(self, models: list[Any], input_dir: str) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        while models:
            models.pop()
        result = set_peft_model_state_dict(self.peft_model, load_file(str(Path(input_dir) / LORA_FILE)))
        if getattr(result, "unexpected_keys", None):
            raise UserError(f"{input_dir}: LoRA weights do not match model.lora (unexpected {result.unexpected_keys[:3]}).")

    def _write_extra(self, folder: Path) -> None:
        from safetensors.torch import save_file

        buffers = {k: v.detach().contiguous().cpu() for k, v in self.objective.state_dict().items()}
        if buffers:
            save_file(buffers, str(folder / "objective.safetensors"))
        if self.ema is not None:
            save_ema(self.ema, folder / "ema")
        s = self.state
        write_json(folder / STATE_FILE, {
            "step": s.step, "micro_step": s.micro_step, "epoch": s.epoch, "position": s.position,
            "dataset_rows": len(self.loader.dataset), "num_processes": self.accelerator.num_processes,
            "objective": self.config.objective.name,
        })

    def save_checkpoint(self) -> Path:
        path = self.checkpoints.save(self.state.step, self.accelerator, self._write_extra)
        self.last_checkpoint = str(path)
        return path

    def _resume(self) -> None:
        acc = self.accelerator
        if acc.is_main_process:
            for p in self.checkpoints.remove_partial():
                self.log(f"removed unfinished checkpoint {p} (left by a killed run)")
        acc.wait_for_everyone()
        path = self.checkpoints.resolve(self.config.training.resume_from)
        if path is None:
            if self.config.training.resume_from == "latest":
                self.log(f"no checkpoint in {self.checkpoints.root} yet; starting from step 0")
            return
        info = read_json(path / STATE_FILE)
        rows = len(self.loader.dataset)
        if info["dataset_rows"] != rows or info["num_processes"] != acc.num_processes:
            raise UserError(
                f"training.resume_from: {path} was written with {info['dataset_rows']} usable rows on "
                f"{info['num_processes']} processes, this run has {rows} on {acc.num_processes}; exact resume needs the "
                "same data and process count (set training.resume_from=null to start over)."
            )
        acc.load_state(str(path))
        if (path / "objective.safetensors").exists():
            from safetensors.torch import load_file

            self.objective.load_state_dict(load_file(str(path / "objective.safetensors"), device=str(acc.device)))
        if self.ema is not None:
            load_ema(self.ema, path / "ema")
        self.state = TrainState(step=info["step"], micro_step=info["micro_step"], epoch=info["epoch"],
                                position=info["position"])
        self.last_checkpoint = str(path)
        self.log(f"resumed from {path} at step {self.state.step}")

    # ---- the loop ------------------------------------------------------------------------------
    def objective_at(self, epoch: int) -> Objective:
        """The objective of an epoch: `sft` during the first `training.sft_epochs`, the configured one after."""
        return self.sft if self.sft is not None and epoch < self.config.training.sft_epochs else self.objective

    def forward(self, batch: dict[str, Any], micro_step: int, epoch: int | None = None) -> ObjectiveOutput:
        """Loss and metrics of one micro-batch (also used by tests to recompute a step independently)."""
        acc, adapter = self.accelerator, self.adapter
        objective = self.objective_at(self.state.epoch if epoch is None else epoch)
        generator = torch.Generator(acc.device).manual_seed(step_seed(self.config.training.seed, micro_step,
                                                                      acc.process_index))
        encoded = adapter.encode(batch, generator)
        if getattr(objective, "desirable_only", False) and encoded.group_size == 2:
            b = encoded.groups  # group-major: the first B samples are the chosen ones
            encoded = Encoded(samples=encoded.samples[:b], cond={k: v[:b] for k, v in encoded.cond.items()},
                              group_size=1)
            batch = {**batch, "desirable": batch["desirable"][:, :1]}
        draw = adapter.draw(encoded, generator)
        reference = None
        if objective.needs_reference:
            with torch.no_grad(), self.reference() as ref_module, acc.autocast():
                reference = adapter.log_likelihood(ref_module, encoded, draw)
        with acc.autocast():
            policy = adapter.log_likelihood(self.model, encoded, draw)
        inputs = make_inputs(policy, reference, encoded.group_size, batch, objective.paired, self.soft_targets)
        return objective(inputs)

    def fit(self) -> dict[str, Any]:
        acc, cfg, s = self.accelerator, self.config, self.state
        t, v = cfg.training, cfg.validation
        bar = tqdm(total=t.max_steps, initial=s.step, desc="train", dynamic_ncols=True,
                   disable=not (self.progress and cfg.logging.progress_bar and acc.is_local_main_process))
        metrics = MetricsLog(acc, self.out / "metrics.jsonl", bar)
        if v.every and s.step == 0:
            run_validation(self.adapter, v, acc, self.out / "validation", 0)
        while s.step < t.max_steps:
            self.loader.set_epoch(s.epoch)
            loader = acc.skip_first_batches(self.loader, s.position) if s.position else self.loader
            for batch in loader:
                with acc.accumulate(self.model):
                    out = self.forward(batch, s.micro_step)
                    check_finite(out.loss, acc, step=s.step + 1, micro_step=s.micro_step, rows=batch["row"],
                                 last_checkpoint=self.last_checkpoint)
                    acc.backward(out.loss)
                    if acc.sync_gradients and cfg.optimizer.max_grad_norm:
                        acc.clip_grad_norm_(self.params, cfg.optimizer.max_grad_norm)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                metrics.add(out.loss, out.metrics)
                s.micro_step += 1
                s.position += 1
                if acc.sync_gradients:
                    s.step += 1
                    self._after_step(metrics, bar)
                    if s.step >= t.max_steps:
                        break
            else:
                s.epoch += 1
                s.position = 0
                if self.sft is not None and s.epoch == t.sft_epochs:
                    self.log(f"epoch {s.epoch}: SFT stage done at step {s.step}; training {cfg.objective.name} from here")
        bar.close()
        return self.finish()

    def _after_step(self, metrics: MetricsLog, bar: Any) -> None:
        cfg, s = self.config, self.state
        if self.ema is not None:
            self.ema.step(self.params)
        bar.update(1)
        if s.step % cfg.training.log_every == 0 or s.step == cfg.training.max_steps:
            values = metrics.flush(s.step, {"lr": self.scheduler.get_last_lr()[0], "epoch": s.epoch})
            if "loss" in values:
                s.history.append(values["loss"])
        if cfg.validation.every and s.step % cfg.validation.every == 0 and s.step < cfg.training.max_steps:
            run_validation(self.adapter, cfg.validation, self.accelerator, self.out / "validation", s.step)
        if cfg.training.checkpoint_every and s.step % cfg.training.checkpoint_every == 0:
            self.save_checkpoint()
        maybe_crash("step", s.step)

    # ---- outputs -------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """Write the final output (LoRA file or full pipeline), the last validation grid, end trackers."""
        acc, cfg = self.accelerator, self.config
        acc.wait_for_everyone()
        if self.ema is not None:
            self.ema.copy_to(self.params)
        if cfg.validation.every:
            run_validation(self.adapter, cfg.validation, acc, self.out / "validation", self.state.step)
        output = None
        if acc.is_main_process:
            if self.peft_model is not None:
                from peft import get_peft_model_state_dict

                base = acc.unwrap_model(self.model).get_base_model()
                config = lora_config(cfg.model.lora, self.adapter.default_lora_targets).to_dict()
                output = self.adapter.save_lora(self.out, get_peft_model_state_dict(base), config)
            else:
                output = self.adapter.save_full(self.out, acc.unwrap_model(self.model))
            self.log(f"wrote {output}")
        acc.wait_for_everyone()
        acc.end_training()
        return {
            "steps": self.state.step, "losses": list(self.state.history), "output": str(output) if output else None,
            "output_dir": str(self.out), "data": self.report.to_json(),
            "checkpoint": self.last_checkpoint,
        }


def train(config: PreferenceTrainConfig, progress: bool = True) -> dict[str, Any]:
    """Build and run a preference training from a validated config."""
    return PreferenceTrainer(config, progress=progress).setup().fit()


def describe(result: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in result.items() if k != "data"}, indent=2, default=str)
