"""The contract between adapters and objectives.

An adapter (image, audio, MLLM, video) turns a batch into per-sample log-likelihood estimates of the
policy and of the reference: summed token log-probabilities for an LLM, the scaled negative denoising
error for a diffusion model. An objective is a function of those estimates alone, so one objective
serves every modality. Objectives are plain `torch.nn.Module`s so that state (LCPO's noise rate, BCO's
reward baseline) travels with `state_dict()` into checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class PairwiseInputs:
    """Per-pair estimates, shape [B] each; the chosen (preferred) sample first.

    `chosen_lengths`/`rejected_lengths` are token counts (for length-normalised losses: SimPO, IPO's
    average, RPO's NLL); diffusion adapters leave them None (their error is already a mean).
    `target` is a per-pair probability that chosen really beats rejected (soft labels: SmPO, OSP, ties
    as 0.5); `weight` multiplies each pair's loss.
    """

    policy_chosen: torch.Tensor
    policy_rejected: torch.Tensor
    reference_chosen: torch.Tensor | None = None
    reference_rejected: torch.Tensor | None = None
    chosen_lengths: torch.Tensor | None = None
    rejected_lengths: torch.Tensor | None = None
    target: torch.Tensor | None = None
    weight: torch.Tensor | None = None


@dataclass
class UnpairedInputs:
    """Per-sample estimates, shape [B]; `desirable` is a bool tensor (KTO/BCO), all False for NPO.

    `kl_policy`/`kl_reference` are optional estimates on mismatched (prompt, sample) pairs for KTO's
    reference point; without them the batch's own mean log-ratio is used.
    """

    policy: torch.Tensor
    reference: torch.Tensor | None
    desirable: torch.Tensor
    lengths: torch.Tensor | None = None
    kl_policy: torch.Tensor | None = None
    kl_reference: torch.Tensor | None = None
    weight: torch.Tensor | None = None


@dataclass
class ObjectiveOutput:
    """`losses` has one entry per pair (or sample); metrics are detached 0-d tensors named as TRL names them."""

    losses: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def loss(self) -> torch.Tensor:
        return self.losses.mean()


class Objective(torch.nn.Module):
    """Base class; subclasses set `paired` and implement `forward`."""

    paired: bool = True
    needs_reference: bool = True

    def forward(self, inputs: PairwiseInputs | UnpairedInputs) -> ObjectiveOutput:  # pragma: no cover
        raise NotImplementedError
