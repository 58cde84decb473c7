"""BCO (Jung et al. 2024): unpaired samples as a binary classifier of desirability.

The implicit reward βr (r = policy − reference) is the classifier logit, shifted by a baseline δ: the
running mean of all rewards seen in training (desirable and undesirable), which keeps the two classes
balanced around zero. Desirable samples lose −log σ(βr − δ), undesirable −log σ(−(βr − δ)).
δ and its sample count are buffers, so resuming from a checkpoint continues the same running mean.
Not included: BCO's optional density-ratio (UDM) weighting of prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mmpref.objectives.base import Objective, ObjectiveOutput, UnpairedInputs
from mmpref.objectives.common import f32, global_sum_and_count, unpaired_logratio, unpaired_metrics
from mmpref.registry import OBJECTIVES


@dataclass
class BCOParams:
    """BCO parameters; names as in TRL's BCOConfig."""

    beta: float = 0.1  # β, scale of the reward r in the classifier logit

    def check(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")


class BCOObjective(Objective):
    """BCO loss with a running-mean reward baseline δ (a buffer); see the module docstring."""

    paired = False
    reward_mean: torch.Tensor
    reward_count: torch.Tensor

    def __init__(self, params: BCOParams) -> None:
        super().__init__()
        params.check()
        self.params = params
        self.register_buffer("reward_mean", torch.zeros((), dtype=torch.float32))
        self.register_buffer("reward_count", torch.zeros((), dtype=torch.int64))

    def extra_repr(self) -> str:
        return f"beta={self.params.beta}, delta={float(self.reward_mean):.4f}, seen={int(self.reward_count)}"

    @torch.no_grad()
    def _update_baseline(self, rewards: torch.Tensor) -> None:
        """Fold a batch into the cumulative mean of all training rewards (exact, order independent)."""
        if rewards.numel() == 0:
            return
        summed, counted = global_sum_and_count(rewards.float().sum(), rewards.numel())  # every rank's batch
        batch_mean, n = summed / counted, int(counted.item())
        total = self.reward_count + n
        self.reward_mean.add_((batch_mean - self.reward_mean) * (n / total.float()))
        self.reward_count.copy_(total)

    def forward(self, inputs: UnpairedInputs) -> ObjectiveOutput:  # type: ignore[override]
        beta = self.params.beta
        r, desirable = unpaired_logratio(inputs)
        rewards = beta * r
        if self.training:
            self._update_baseline(rewards.detach())
        delta = self.reward_mean.detach().float()
        logit = rewards - delta
        losses = torch.where(desirable, F.softplus(-logit), F.softplus(logit))  # −log σ(±logit)
        if inputs.weight is not None:
            losses = losses * f32(inputs.weight)
        metrics = unpaired_metrics(rewards, f32(inputs.policy), desirable)
        metrics["delta"] = delta.clone()
        return ObjectiveOutput(losses=losses, metrics=metrics)


@OBJECTIVES.register(
    "bco",
    summary="BCO: unpaired samples as a reward classifier with a running-mean baseline",
    params=BCOParams,
)
def build_bco(params: BCOParams) -> BCOObjective:
    return BCOObjective(params)
