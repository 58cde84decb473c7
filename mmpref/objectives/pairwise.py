"""Pairwise preference losses: one objective, a link × a label model × an optional NLL term.

Δ = (policy_chosen − reference_chosen) − (policy_rejected − reference_rejected) (reference-free:
policy_chosen − policy_rejected), optionally on length-normalised log-likelihoods, and h = β·Δ.
A link ℓ(Δ) is the loss of one pair when its label is right:

- `sigmoid` (DPO): −log σ(h − γ)
- `hinge` (SLiC): max(0, 1 − (h − γ))
- `ipo` (IPO, TRL's form): (Δ − 1/(2β))², β playing IPO's τ
- `symmetric` (SymPO): 1 − σ(h − γ), so ℓ(h) + ℓ(−h) = 1 and flipped labels leave the minimiser alone

A label model (see `labels.py`) turns each pair into coefficients (a, b), and the pair's loss is
weight·(a·ℓ(Δ) + b·ℓ(−Δ) + α·NLL(chosen)), NLL = −policy_chosen / chosen_length. The registered
names (`dpo`, `cdpo`, `rdpo`, `lcpo`, `sympo`, `ipo`, ...) are this one objective with different defaults, so
any of them can switch `link` or `labels` in the config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from mmpref.objectives.base import Objective, ObjectiveOutput, PairwiseInputs
from mmpref.objectives.common import check_shapes, detached_mean, f32, optional_f32, pairwise_metrics
from mmpref.objectives.labels import LABEL_NAMES, LabelName, build_labels
from mmpref.registry import OBJECTIVES

LinkName = Literal["sigmoid", "hinge", "ipo", "symmetric"]
LINK_NAMES: tuple[str, ...] = ("sigmoid", "hinge", "ipo", "symmetric")
Link = Callable[[torch.Tensor], torch.Tensor]


def make_link(name: str, beta: float, gamma: float = 0.0) -> Link:
    """The per-pair loss ℓ(Δ) of link `name`, as a function of the unscaled log-ratio difference Δ."""
    if name == "sigmoid":
        return lambda delta: F.softplus(-(beta * delta - gamma))  # = −log σ(βΔ − γ), stable
    if name == "hinge":
        return lambda delta: torch.relu(1.0 - (beta * delta - gamma))
    if name == "symmetric":  # ℓ(h) + ℓ(−h) = 1: flipped labels shift the risk, not its minimiser
        return lambda delta: torch.sigmoid(-(beta * delta - gamma))
    if name == "ipo":
        half_inv_tau = 1.0 / (2.0 * beta)
        return lambda delta: (delta - half_inv_tau) ** 2
    raise ValueError(f"unknown link '{name}'; expected one of {', '.join(LINK_NAMES)}")


@dataclass
class PairwiseParams:
    """Parameters shared by every pairwise objective; each registered name changes some defaults."""

    beta: float = 0.1  # β: scale of the implicit reward h = β·Δ (IPO: τ). Diffusion-DPO uses 2000-5000
    link: LinkName = "sigmoid"  # per-pair loss ℓ: sigmoid (DPO), hinge (SLiC), ipo (IPO), symmetric (SymPO)
    gamma: float = 0.0  # target reward margin γ subtracted from h (SimPO); sigmoid, hinge and symmetric links only
    labels: LabelName = "hard"  # label model: hard, smoothing (cDPO), robust (rDPO), soft, lcpo (EM)
    label_smoothing: float = 0.0  # ε of labels: smoothing, probability a label is wrong; in [0, 0.5)
    flip_rate: float = 0.0  # ε of labels: robust, known label flip rate; in [0, 0.5)
    lcpo_alpha: float = 0.1  # labels: lcpo, moving-average rate of the learned P(label correct) η
    lcpo_eta0: float = 0.9  # labels: lcpo, initial η = P(label correct); in (0.5, 1)
    nll_alpha: float = 0.0  # weight α of NLL(chosen) = −logp_chosen / length added to each pair (RPO, CPO)
    length_normalize: bool = False  # divide log-likelihoods by token counts when the adapter gives them
    reference_free: bool = False  # Δ from the policy alone (SimPO, CPO); no reference model needed

    def check(self) -> None:
        """Raise ValueError on values outside their range or parameters the chosen labels ignore."""
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.link not in LINK_NAMES:
            raise ValueError(f"link must be one of {', '.join(LINK_NAMES)}, got {self.link!r}")
        if self.labels not in LABEL_NAMES:
            raise ValueError(f"labels must be one of {', '.join(LABEL_NAMES)}, got {self.labels!r}")
        if self.gamma != 0 and self.link == "ipo":
            raise ValueError("gamma (a reward margin) applies to the sigmoid, hinge and symmetric links, not ipo")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if not 0 <= self.flip_rate < 0.5:
            raise ValueError(f"flip_rate must be in [0, 0.5), got {self.flip_rate}")
        if not 0 < self.lcpo_alpha <= 1:
            raise ValueError(f"lcpo_alpha must be in (0, 1], got {self.lcpo_alpha}")
        if not 0.5 < self.lcpo_eta0 < 1:
            raise ValueError(f"lcpo_eta0 must be in (0.5, 1), got {self.lcpo_eta0}")
        if self.nll_alpha < 0:
            raise ValueError(f"nll_alpha must be >= 0, got {self.nll_alpha}")
        # A parameter changed from its default but unused by the chosen labels is a silent no-op: refuse it.
        users = {
            "label_smoothing": "smoothing",
            "flip_rate": "robust",
            "lcpo_alpha": "lcpo",
            "lcpo_eta0": "lcpo",
        }
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for key, needs in users.items():
            if getattr(self, key) != defaults[key] and self.labels != needs:
                raise ValueError(
                    f"{key} is only used with labels: {needs} (labels is '{self.labels}'); "
                    f"set labels: {needs} or remove {key}"
                )


# Each registered name is the same objective with paper defaults; comments say where they come from.
@dataclass
class DPOParams(PairwiseParams):
    """DPO (Rafailov et al. 2023): −log σ(β·Δ)."""


@dataclass
class IPOParams(PairwiseParams):
    """IPO (Azar et al. 2023), TRL's form (Δ − 1/(2τ))² on length-averaged log-likelihoods."""

    link: LinkName = "ipo"  # squared loss towards the margin 1/(2β)
    length_normalize: bool = True  # TRL averages token log-probs for IPO


@dataclass
class HingeParams(PairwiseParams):
    """SLiC-HF (Zhao et al. 2023) calibration loss max(0, 1 − β·Δ)."""

    link: LinkName = "hinge"  # max(0, 1 − h)


@dataclass
class SymPOParams(PairwiseParams):
    """SymPO (Nishimori et al. 2025): the symmetric sigmoid loss 1 − σ(β·Δ) for noisy preferences.

    Because ℓ(h) + ℓ(−h) = 1, a label flipped with probability ε < 0.5 gives the expected loss
    (1 − 2ε)·ℓ(h) + ε: the same gradient direction as clean labels at every margin. DPO's −log σ
    instead keeps pulling hardest on the pairs the model disagrees with, which under noise are the
    flipped ones. Needs no flip rate.
    """

    link: LinkName = "symmetric"  # 1 − σ(h), bounded, gradient vanishing for |h| large


@dataclass
class CDPOParams(PairwiseParams):
    """Conservative DPO: label smoothing ε."""

    labels: LabelName = "smoothing"  # (1 − ε)·ℓ(Δ) + ε·ℓ(−Δ)
    label_smoothing: float = 0.1  # ε, assumed probability that a label is wrong


@dataclass
class RDPOParams(PairwiseParams):
    """Robust DPO (Chowdhury et al. 2024): unbiased under a known flip rate ε."""

    labels: LabelName = "robust"  # ((1 − ε)ℓ(Δ) − εℓ(−Δ)) / (1 − 2ε)
    flip_rate: float = 0.1  # ε, the known label flip rate; set it to your data's


@dataclass
class RPOParams(PairwiseParams):
    """RPO (Pang et al. 2024, iterative RPO): DPO + α·NLL of the chosen sample."""

    nll_alpha: float = 1.0  # α; the paper uses 1


@dataclass
class SoftDPOParams(PairwiseParams):
    """DPO on soft targets p (per-pair `target`; ties 0.5): p·ℓ(Δ) + (1 − p)·ℓ(−Δ)."""

    labels: LabelName = "soft"  # coefficients (p, 1 − p) from the data


@dataclass
class LCPOParams(PairwiseParams):
    """LCPO: EM over label correctness with a learned noise rate 1 − η."""

    labels: LabelName = "lcpo"  # (w, 1 − w), w the posterior that the label is correct


class PairwiseObjective(Objective):
    """A link ℓ, a label model and an optional NLL term on per-pair log-likelihood estimates."""

    paired = True

    def __init__(self, params: PairwiseParams) -> None:
        super().__init__()
        params.check()
        self.params = params
        self.beta = float(params.beta)
        self.needs_reference = not params.reference_free
        self.link = make_link(params.link, self.beta, params.gamma)
        self.labels = build_labels(
            params.labels,
            label_smoothing=params.label_smoothing,
            flip_rate=params.flip_rate,
            lcpo_alpha=params.lcpo_alpha,
            lcpo_eta0=params.lcpo_eta0,
        )

    def extra_repr(self) -> str:
        p = self.params
        parts = [f"link={p.link}", f"beta={p.beta}"]
        if p.gamma:
            parts.append(f"gamma={p.gamma}")
        if p.nll_alpha:
            parts.append(f"nll_alpha={p.nll_alpha}")
        if p.length_normalize:
            parts.append("length_normalize=True")
        if p.reference_free:
            parts.append("reference_free=True")
        return ", ".join(parts)

    def _normalised(self, inputs: PairwiseInputs) -> tuple[torch.Tensor, ...]:
        """Policy and reference log-likelihoods in float32, length-averaged when asked and available."""
        pc, pr = f32(inputs.policy_chosen), f32(inputs.policy_rejected)
        if self.params.reference_free:
            rc = rr = None
        else:
            if inputs.reference_chosen is None or inputs.reference_rejected is None:
                raise ValueError(
                    "this objective needs reference log-likelihoods (reference_chosen/reference_rejected); "
                    "set reference_free: true or use simpo/cpo to train without a reference"
                )
            rc, rr = f32(inputs.reference_chosen), f32(inputs.reference_rejected)
        lc, lr = optional_f32(inputs.chosen_lengths), optional_f32(inputs.rejected_lengths)
        if self.params.length_normalize and (lc is None) != (lr is None):
            raise ValueError("length_normalize needs both chosen_lengths and rejected_lengths (or neither)")
        if self.params.length_normalize and lc is not None and lr is not None:
            lc, lr = lc.clamp_min(1.0), lr.clamp_min(1.0)
            pc, pr = pc / lc, pr / lr
            if rc is not None and rr is not None:
                rc, rr = rc / lc, rr / lr
        return pc, pr, rc, rr

    def forward(self, inputs: PairwiseInputs) -> ObjectiveOutput:  # type: ignore[override]
        check_shapes(
            inputs.policy_chosen,
            policy_rejected=inputs.policy_rejected,
            reference_chosen=None if self.params.reference_free else inputs.reference_chosen,
            reference_rejected=None if self.params.reference_free else inputs.reference_rejected,
            chosen_lengths=inputs.chosen_lengths,
            rejected_lengths=inputs.rejected_lengths,
            target=inputs.target,
            weight=inputs.weight,
        )
        pc, pr, rc, rr = self._normalised(inputs)
        chosen_logratio = pc if rc is None else pc - rc
        rejected_logratio = pr if rr is None else pr - rr
        delta = chosen_logratio - rejected_logratio

        loss_pos, loss_neg = self.link(delta), self.link(-delta)
        a, b, metrics = self.labels(
            loss_pos, loss_neg, optional_f32(inputs.target), optional_f32(inputs.weight)
        )
        losses = a * loss_pos + b * loss_neg
        if self.params.nll_alpha > 0:
            nll = -f32(inputs.policy_chosen)
            if inputs.chosen_lengths is not None:
                nll = nll / f32(inputs.chosen_lengths).clamp_min(1.0)
            losses = losses + self.params.nll_alpha * nll
            metrics["nll_loss"] = detached_mean(nll)
        if inputs.weight is not None:
            losses = losses * f32(inputs.weight)

        metrics.update(pairwise_metrics(self.beta * chosen_logratio, self.beta * rejected_logratio, pc, pr))
        return ObjectiveOutput(losses=losses, metrics=metrics)


def build_pairwise(params: PairwiseParams) -> PairwiseObjective:
    """Builder registered under every pairwise name: the params carry the name's defaults."""
    return PairwiseObjective(params)


_REGISTERED: list[tuple[str, str, type]] = [
    ("dpo", "DPO: −log σ(β·Δ) on implicit reward margins (Diffusion-DPO, Tango 2, LLM DPO)", DPOParams),
    ("ipo", "IPO: (Δ − 1/(2β))², a squared loss that does not push margins to infinity", IPOParams),
    ("hinge", "SLiC hinge: max(0, 1 − β·Δ)", HingeParams),
    ("sympo", "SymPO: symmetric loss 1 − σ(β·Δ), robust to flipped labels without knowing their rate", SymPOParams),
    ("cdpo", "conservative DPO: label smoothing ε, (1 − ε)·ℓ(Δ) + ε·ℓ(−Δ)", CDPOParams),
    ("rdpo", "robust DPO: loss unbiased under a known label flip rate ε", RDPOParams),
    ("rpo", "RPO: DPO + α·NLL of the chosen sample", RPOParams),
    ("soft_dpo", "DPO on soft per-pair targets p (ties 0.5): p·ℓ(Δ) + (1 − p)·ℓ(−Δ)", SoftDPOParams),
    ("lcpo", "LCPO: EM-weighted labels with a learned label-noise rate (noisy preferences)", LCPOParams),
]
for _name, _summary, _params in _REGISTERED:
    OBJECTIVES.register(_name, summary=_summary, params=_params)(build_pairwise)
