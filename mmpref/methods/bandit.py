"""`method: bandit`: align a softmax policy in the preference bandit with any registered objective.

Seconds on a CPU, with a ground truth: the run reports the policy's expected true reward before and
after training. Useful to compare objectives (e.g. under label noise) and as a smoke test of the stack.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mmpref.config import Component, component, to_plain
from mmpref.objectives.base import PairwiseInputs, UnpairedInputs
from mmpref.registry import METHODS
from mmpref.sandbox.bandit import BanditData, BanditWorld, BanditWorldConfig


@dataclass
class BanditTraining:
    steps: int = 300  # optimiser steps
    batch_size: int = 256  # pairs per step
    lr: float = 0.05  # Adam learning rate on the policy logits
    seed: int = 0

    def check(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps and batch_size must be >= 1 and lr > 0")


@dataclass
class BanditConfig:
    world: BanditWorldConfig = field(default_factory=BanditWorldConfig)
    objective: Component = component("objectives", "dpo")
    training: BanditTraining = field(default_factory=BanditTraining)
    output_dir: str | None = None  # where metrics.json and the resolved config are written (optional)


def _batch_inputs(objective: torch.nn.Module, logp: torch.Tensor, ref: torch.Tensor, data: BanditData,
                  idx: torch.Tensor) -> PairwiseInputs | UnpairedInputs:
    p, c, r = data.prompt[idx], data.chosen[idx], data.rejected[idx]
    if getattr(objective, "paired", True):
        return PairwiseInputs(
            policy_chosen=logp[p, c], policy_rejected=logp[p, r],
            reference_chosen=ref[p, c], reference_rejected=ref[p, r],
        )
    # Unpaired objectives see each pair as one desirable and one undesirable sample.
    policy = torch.cat([logp[p, c], logp[p, r]])
    reference = torch.cat([ref[p, c], ref[p, r]])
    desirable = torch.cat([torch.ones_like(c, dtype=torch.bool), torch.zeros_like(r, dtype=torch.bool)])
    return UnpairedInputs(policy=policy, reference=reference, desirable=desirable)


def train_bandit(config: BanditConfig, progress: bool = True) -> dict[str, Any]:
    """Train and return metrics: expected true reward of reference and policy, final loss, ..."""
    world = BanditWorld(config.world)
    data = world.sample_pairs()
    objective = config.objective.build()
    objective.train()
    torch.manual_seed(config.training.seed)
    logits = torch.nn.Parameter(world.reference_logits.clone())
    ref_logp = torch.log_softmax(world.reference_logits, dim=-1)
    optimizer = torch.optim.Adam([logits], lr=config.training.lr)
    gen = torch.Generator().manual_seed(config.training.seed)
    history: list[float] = []
    metrics: dict[str, float] = {}
    bar = tqdm(range(config.training.steps), desc="bandit", disable=not progress)
    for step in bar:
        idx = torch.randint(len(data.prompt), (config.training.batch_size,), generator=gen)
        logp = torch.log_softmax(logits, dim=-1)
        out = objective(_batch_inputs(objective, logp, ref_logp, data, idx))
        loss = out.loss
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
        metrics = {k: float(v) for k, v in out.metrics.items()}
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    result = {
        "objective": config.objective.name,
        "reference_reward": world.expected_reward(world.reference_logits),
        "policy_reward": world.expected_reward(logits.detach()),
        "best_reward": world.best_reward(),
        "first_loss": history[0],
        "final_loss": history[-1],
        "final_metrics": metrics,
    }
    result["gain"] = result["policy_reward"] - result["reference_reward"]
    return result


@METHODS.register("bandit", summary="align a softmax policy in a synthetic preference bandit (CPU, seconds)",
                  params=BanditConfig)
def run(config: BanditConfig) -> dict[str, Any]:
    result = train_bandit(config)
    print(
        f"objective {result['objective']}: expected true reward {result['reference_reward']:.3f} (reference) "
        f"-> {result['policy_reward']:.3f} (policy); best possible {result['best_reward']:.3f}; "
        f"loss {result['first_loss']:.4f} -> {result['final_loss']:.4f}"
    )
    if config.output_dir:
        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2))
        import yaml

        (out / "config.yaml").write_text(yaml.safe_dump({"method": "bandit", **to_plain(config)}, sort_keys=False))
        print(f"wrote {out / 'metrics.json'}")
    return result
