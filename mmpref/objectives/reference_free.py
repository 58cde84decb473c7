"""Reference-free pairwise losses (SimPO, CPO): Δ = policy_chosen − policy_rejected, no reference pass.

They are the pairwise objective of `pairwise.py` with `reference_free: true`, so label models (cDPO
smoothing, soft targets, LCPO) and the other links compose with them too. Dropping the reference
saves one forward pass per pair, which for diffusion models is half the compute of a DPO step.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmpref.objectives.pairwise import PairwiseParams, build_pairwise
from mmpref.registry import OBJECTIVES


@dataclass
class SimPOParams(PairwiseParams):
    """SimPO (Meng et al. 2024): −log σ(β/|y_w|·logp_w − β/|y_l|·logp_l − γ)."""

    beta: float = 2.0  # β; the paper uses 2.0-2.5
    gamma: float = 1.0  # target reward margin γ; the paper tunes γ in 0.3-1.6 (γ/β ≈ 0.5)
    length_normalize: bool = True  # average log-likelihood over tokens (no-op for diffusion adapters)
    reference_free: bool = True  # no reference model


@dataclass
class CPOParams(PairwiseParams):
    """CPO (Xu et al. 2024): −log σ(β(logp_w − logp_l)) + λ·NLL(chosen)."""

    nll_alpha: float = 1.0  # λ, weight of the behaviour-cloning NLL on the chosen sample
    reference_free: bool = True  # no reference model


OBJECTIVES.register(
    "simpo", summary="SimPO: reference-free, length-normalised margin −log σ(β·Δ/|y| − γ)", params=SimPOParams
)(build_pairwise)
OBJECTIVES.register("cpo", summary="CPO: reference-free −log σ(β·Δ) + λ·NLL(chosen)", params=CPOParams)(
    build_pairwise
)
