"""SFT: supervised fine-tuning on the preferred samples, the negative log-likelihood of desirable ones.

loss = mean over desirable samples of −logp (÷ length when the adapter gives token counts). For a
diffusion adapter −logp = logp_scale·MSE, the plain denoising loss (with logp_scale ½ it is half of
it; AdamW is invariant to that constant). On pairs the chosen sample is desirable and the rejected one
is not: undesirable samples add nothing, and `desirable_only` lets the trainer skip computing them. No
reference model is needed.

Use it alone (`objective: sft`) or as a first stage: `training.sft_epochs: 1` trains the first epoch(s)
with it and the configured objective afterwards, Tango 2's recipe (one epoch on the Audio-Alpaca
winners, then DPO against the frozen original model).
"""

from __future__ import annotations

from dataclasses import dataclass

from mmpref.objectives.base import Objective, ObjectiveOutput, UnpairedInputs
from mmpref.objectives.common import check_shapes, detached_mean, f32
from mmpref.registry import OBJECTIVES


@dataclass
class SFTParams:
    """SFT parameters."""

    length_normalize: bool = True  # divide −logp by token counts when the adapter gives them (diffusion: none)

    def check(self) -> None:
        pass


class SFTObjective(Objective):
    """Mean NLL of the desirable samples; see the module docstring."""

    paired = False
    needs_reference = False
    desirable_only = True  # the trainer may drop undesirable samples (rejected clips) before the forward pass

    def __init__(self, params: SFTParams | None = None) -> None:
        super().__init__()
        self.params = params or SFTParams()

    def forward(self, inputs: UnpairedInputs) -> ObjectiveOutput:  # type: ignore[override]
        check_shapes(inputs.policy, desirable=inputs.desirable, lengths=inputs.lengths, weight=inputs.weight)
        policy = f32(inputs.policy)
        desirable = inputs.desirable.bool()
        nll = -policy
        if self.params.length_normalize and inputs.lengths is not None:
            nll = nll / f32(inputs.lengths).clamp_min(1.0)
        if inputs.weight is not None:
            nll = nll * f32(inputs.weight)
        # Mean over desirable samples, written per sample so that `losses.mean()` is that mean.
        share = desirable.float() * (desirable.numel() / desirable.sum().clamp_min(1).float())
        losses = nll * share
        metrics = {"nll_loss": detached_mean(nll[desirable]), "logps/chosen": detached_mean(policy[desirable])}
        return ObjectiveOutput(losses=losses, metrics=metrics)


@OBJECTIVES.register(
    "sft",
    summary="SFT: NLL (diffusion: the denoising loss) of the chosen/desirable samples; Tango 2's first epoch",
    params=SFTParams,
)
def build_sft(params: SFTParams) -> SFTObjective:
    params.check()
    return SFTObjective(params)
