"""`method: preference`: pairwise or unpaired preference training of any adapter with any objective.

Diffusion-DPO on SD/SDXL is `model.adapter: text_to_image` + `objective: dpo` (β = 5000 SDXL, 2000 SD1.5
in the ½-factor convention; see mmpref.adapters.diffusion); other objectives (ipo, cdpo, rdpo, lcpo,
soft_dpo, kto, npo, ...) and adapters plug into the same trainer (mmpref.training).
"""

from __future__ import annotations

from typing import Any

from mmpref.registry import METHODS
from mmpref.training.config import PreferenceTrainConfig


@METHODS.register(
    "preference",
    summary="preference fine-tuning (Diffusion-DPO and any pairwise/unpaired objective) of an adapter's model",
    params=PreferenceTrainConfig,
)
def run(config: PreferenceTrainConfig) -> dict[str, Any]:
    from mmpref.training.trainer import train

    result = train(config)
    losses = result["losses"]
    if losses:
        print(f"trained {result['steps']} steps: loss {losses[0]:.4f} -> {losses[-1]:.4f}; output {result['output']}")
    return result
