"""NPO (Zhang et al. 2024, negative preference optimisation): push down the likelihood of samples
to unlearn, with a loss that saturates instead of diverging like gradient ascent.

ρ = policy − reference per undesirable sample; loss (2/β)·(−log σ(−βρ)) = (2/β)·softplus(βρ). As
β → 0 it tends to ρ (gradient ascent on the NLL, up to a constant); the sigmoid slows it once the
policy is below the reference. Desirable samples (a retain set) are not part of NPO: they add
`retain_weight`·NLL (the paper's NPO+RT) and nothing when that is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mmpref.objectives.base import Objective, ObjectiveOutput, UnpairedInputs
from mmpref.objectives.common import detached_mean, f32, unpaired_logratio, unpaired_metrics
from mmpref.registry import OBJECTIVES


@dataclass
class NPOParams:
    """NPO parameters."""

    beta: float = 0.1  # β; the paper uses 0.1
    retain_weight: float = 0.0  # weight of NLL = −logp/length on desirable (retain) samples; 0 ignores them

    def check(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.retain_weight < 0:
            raise ValueError(f"retain_weight must be >= 0, got {self.retain_weight}")


class NPOObjective(Objective):
    """NPO loss on undesirable samples (plus optional retain NLL); see the module docstring."""

    paired = False

    def __init__(self, params: NPOParams) -> None:
        super().__init__()
        params.check()
        self.params = params

    def extra_repr(self) -> str:
        return f"beta={self.params.beta}, retain_weight={self.params.retain_weight}"

    def forward(self, inputs: UnpairedInputs) -> ObjectiveOutput:  # type: ignore[override]
        beta = self.params.beta
        rho, desirable = unpaired_logratio(inputs)
        negative = (2.0 / beta) * F.softplus(beta * rho)
        nll = -f32(inputs.policy)
        if inputs.lengths is not None:
            nll = nll / f32(inputs.lengths).clamp_min(1.0)
        losses = torch.where(desirable, self.params.retain_weight * nll, negative)
        if inputs.weight is not None:
            losses = losses * f32(inputs.weight)
        metrics = unpaired_metrics(beta * rho, f32(inputs.policy), desirable)
        if self.params.retain_weight > 0 and bool(desirable.any()):
            metrics["nll_loss"] = detached_mean(nll[desirable])
        return ObjectiveOutput(losses=losses, metrics=metrics)


@OBJECTIVES.register(
    "npo",
    summary="NPO: push down the likelihood of undesirable samples with a saturating loss",
    params=NPOParams,
)
def build_npo(params: NPOParams) -> NPOObjective:
    return NPOObjective(params)
