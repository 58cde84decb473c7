"""KTO (Ethayarajh et al. 2024): unpaired desirable/undesirable samples against a KL reference point.

r = policy − reference per sample. The reference point z0 = max(0, mean(kl_policy − kl_reference)),
an estimate of KL(policy ‖ reference) from mismatched (prompt, sample) pairs, detached; without those
inputs the batch's own mean log-ratio stands in. Desirable samples lose λ_D·(1 − σ(β(r − z0))),
undesirable ones λ_U·(1 − σ(β(z0 − r))): a bounded, prospect-theory value function, so thumbs-up /
thumbs-down data trains without pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmpref.objectives.base import Objective, ObjectiveOutput, UnpairedInputs
from mmpref.objectives.common import f32, global_mean, unpaired_logratio, unpaired_metrics
from mmpref.registry import OBJECTIVES


@dataclass
class KTOParams:
    """KTO parameters; names as in TRL's KTOConfig."""

    beta: float = 0.1  # β, scale of the reward r inside the sigmoid
    desirable_weight: float = 1.0  # λ_D; raise it when desirable samples are rarer (paper: λ_D·n_D ≈ λ_U·n_U)
    undesirable_weight: float = 1.0  # λ_U

    def check(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.desirable_weight < 0 or self.undesirable_weight < 0:
            raise ValueError("desirable_weight and undesirable_weight must be >= 0")


class KTOObjective(Objective):
    """KTO loss on per-sample log-likelihoods; see the module docstring."""

    paired = False

    def __init__(self, params: KTOParams) -> None:
        super().__init__()
        params.check()
        self.params = params

    def extra_repr(self) -> str:
        p = self.params
        return (
            f"beta={p.beta}, desirable_weight={p.desirable_weight}, undesirable_weight={p.undesirable_weight}"
        )

    def forward(self, inputs: UnpairedInputs) -> ObjectiveOutput:  # type: ignore[override]
        p = self.params
        r, desirable = unpaired_logratio(inputs)
        if (inputs.kl_policy is None) != (inputs.kl_reference is None):
            raise ValueError("KTO needs both kl_policy and kl_reference (or neither)")
        if inputs.kl_policy is not None and inputs.kl_reference is not None:
            gaps = (f32(inputs.kl_policy) - f32(inputs.kl_reference)).detach()
        else:
            gaps = r.detach()
        # The reference point is one number for the whole (global) batch, as in the paper and TRL.
        kl = global_mean(gaps.sum(), gaps.numel()) if self.training else gaps.mean()
        z0 = kl.clamp(min=0)
        losses = torch.where(
            desirable,
            p.desirable_weight * (1.0 - torch.sigmoid(p.beta * (r - z0))),
            p.undesirable_weight * (1.0 - torch.sigmoid(p.beta * (z0 - r))),
        )
        if inputs.weight is not None:
            losses = losses * f32(inputs.weight)
        metrics = unpaired_metrics(p.beta * r, f32(inputs.policy), desirable)
        metrics["kl"] = z0.detach()
        return ObjectiveOutput(losses=losses, metrics=metrics)


@OBJECTIVES.register(
    "kto", summary="KTO: unpaired desirable/undesirable samples vs a KL reference point", params=KTOParams
)
def build_kto(params: KTOParams) -> KTOObjective:
    return KTOObjective(params)
