"""Label models: how much each pair's loss trusts its label, written once for every pairwise link.

A pairwise family is a link ℓ(Δ) (the loss when the label "chosen beats rejected" is right). A label
model turns each pair into coefficients (a, b) and the pair's loss becomes a·ℓ(Δ) + b·ℓ(−Δ), so label
smoothing, unbiased noise correction, soft targets and LCPO's EM posterior work with DPO, IPO, hinge,
SimPO, ... alike instead of being copied into each loss:

| labels      | (a, b)                                   | source                                |
|-------------|------------------------------------------|---------------------------------------|
| `hard`      | (1, 0)                                   | DPO                                   |
| `smoothing` | (1 − ε, ε)                               | conservative DPO (cDPO)               |
| `robust`    | ((1 − ε)/(1 − 2ε), −ε/(1 − 2ε))          | rDPO, known flip rate ε (unbiased)    |
| `soft`      | (p, 1 − p), p = `inputs.target`          | SmPO/OSP-style soft labels, ties 0.5  |
| `lcpo`      | (w, 1 − w), w = P(label correct | data)  | LCPO EM with a learned noise rate     |
"""

from __future__ import annotations

from typing import Literal

import torch

from mmpref.errors import DataError
from mmpref.objectives.common import check_target, detached_mean, f32, global_mean

LabelName = Literal["hard", "smoothing", "robust", "soft", "lcpo"]
LABEL_NAMES: tuple[str, ...] = ("hard", "smoothing", "robust", "soft", "lcpo")

Coefficients = tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]


class LabelModel(torch.nn.Module):
    """Maps per-pair link losses (and targets) to coefficients (a, b) plus label metrics.

    `loss_pos` = ℓ(Δ) and `loss_neg` = ℓ(−Δ) arrive with their graph; label models that look at them
    (LCPO) must detach, so coefficients never carry gradient.
    """

    name: str = ""

    def forward(
        self,
        loss_pos: torch.Tensor,
        loss_neg: torch.Tensor,
        target: torch.Tensor | None,
        weight: torch.Tensor | None,
    ) -> Coefficients:  # pragma: no cover - abstract
        raise NotImplementedError


class HardLabels(LabelModel):
    """The label is right: loss ℓ(Δ). `inputs.target` is not used (choose `soft` to use it)."""

    name = "hard"

    def forward(
        self,
        loss_pos: torch.Tensor,
        loss_neg: torch.Tensor,
        target: torch.Tensor | None,
        weight: torch.Tensor | None,
    ) -> Coefficients:
        return torch.ones_like(loss_pos), torch.zeros_like(loss_pos), {}


class SmoothedLabels(LabelModel):
    """cDPO: each label is wrong with probability ε, so the target is 1 − ε instead of 1 (bounded loss)."""

    name = "smoothing"

    def __init__(self, epsilon: float) -> None:
        super().__init__()
        self.epsilon = float(epsilon)

    def forward(
        self,
        loss_pos: torch.Tensor,
        loss_neg: torch.Tensor,
        target: torch.Tensor | None,
        weight: torch.Tensor | None,
    ) -> Coefficients:
        eps = self.epsilon
        return torch.full_like(loss_pos, 1.0 - eps), torch.full_like(loss_pos, eps), {}

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"


class RobustLabels(LabelModel):
    """rDPO: with a known flip rate ε the expected loss over flips equals the clean loss (unbiased).

    The coefficient of ℓ(−Δ) is negative, so the loss is unbounded below when the policy confidently
    disagrees with a label: the price of unbiasedness.
    """

    name = "robust"

    def __init__(self, flip_rate: float) -> None:
        super().__init__()
        self.flip_rate = float(flip_rate)

    def forward(
        self,
        loss_pos: torch.Tensor,
        loss_neg: torch.Tensor,
        target: torch.Tensor | None,
        weight: torch.Tensor | None,
    ) -> Coefficients:
        eps = self.flip_rate
        scale = 1.0 / (1.0 - 2.0 * eps)
        return torch.full_like(loss_pos, (1.0 - eps) * scale), torch.full_like(loss_pos, -eps * scale), {}

    def extra_repr(self) -> str:
        return f"flip_rate={self.flip_rate}"


class SoftLabels(LabelModel):
    """Per-pair probability p that chosen beats rejected (`inputs.target`): cross-entropy to p."""

    name = "soft"

    def forward(
        self,
        loss_pos: torch.Tensor,
        loss_neg: torch.Tensor,
        target: torch.Tensor | None,
        weight: torch.Tensor | None,
    ) -> Coefficients:
        if target is None:
            raise DataError(
                "labels 'soft' needs a per-pair `target` (probability that chosen beats rejected); "
                "this batch has none. Use a dataset with soft labels, or labels: hard."
            )
        check_target(target)
        p = f32(target).detach()
        return p, 1.0 - p, {"labels/target_mean": detached_mean(p)}


class LCPOLabels(LabelModel):
    """LCPO EM: weight each label by the posterior probability that it is correct.

    With η = P(label correct) and the model's own belief p* = σ(ℓ(−Δ) − ℓ(Δ)) that chosen wins
    (σ(h) for DPO), the E-step posterior is w = p*η / (p*η + (1 − p*)(1 − η)), computed stably as
    σ(logit p* + logit η) and detached. Each training forward then moves η towards the mean
    posterior, η ← (1 − α)η + α·mean(w). η is a buffer, so it is saved and restored with the
    objective's `state_dict()`; in eval mode η is left alone.
    """

    name = "lcpo"
    eta: torch.Tensor

    def __init__(self, alpha: float = 0.1, eta0: float = 0.9, eta_min: float = 1e-4) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.eta_min = float(eta_min)
        self.register_buffer("eta", torch.tensor(float(eta0), dtype=torch.float32))

    def posterior(self, loss_pos: torch.Tensor, loss_neg: torch.Tensor) -> torch.Tensor:
        """w = P(label correct | Δ, η), detached, float32."""
        eta = self.eta.float().clamp(self.eta_min, 1.0 - self.eta_min)
        logit_eta = torch.log(eta) - torch.log1p(-eta)
        return torch.sigmoid(f32(loss_neg).detach() - f32(loss_pos).detach() + logit_eta)

    def forward(
        self,
        loss_pos: torch.Tensor,
        loss_neg: torch.Tensor,
        target: torch.Tensor | None,
        weight: torch.Tensor | None,
    ) -> Coefficients:
        w = self.posterior(loss_pos, loss_neg)
        wt = f32(weight).detach() if weight is not None else torch.ones_like(w)
        mean_w = (w * wt).sum() / wt.sum().clamp_min(1e-12)
        if self.training and w.numel() > 0:
            with torch.no_grad():  # the same η on every rank: the posterior mean over all ranks' pairs
                mean_all = global_mean((w * wt).sum(), wt.sum())
                self.eta.mul_(1.0 - self.alpha).add_(self.alpha * mean_all.to(self.eta.dtype))
        metrics = {
            "lcpo/noise_rate": (1.0 - self.eta.detach().float()).clone(),
            "lcpo/posterior_mean": mean_w.detach(),
        }
        return w, 1.0 - w, metrics

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, eta={float(self.eta):.4f}"


def build_labels(
    name: str,
    *,
    label_smoothing: float = 0.0,
    flip_rate: float = 0.0,
    lcpo_alpha: float = 0.1,
    lcpo_eta0: float = 0.9,
) -> LabelModel:
    """The label model called `name` with its parameter (validated by the params' `check()`)."""
    if name == "hard":
        return HardLabels()
    if name == "smoothing":
        return SmoothedLabels(label_smoothing)
    if name == "robust":
        return RobustLabels(flip_rate)
    if name == "soft":
        return SoftLabels()
    if name == "lcpo":
        return LCPOLabels(alpha=lcpo_alpha, eta0=lcpo_eta0)
    raise ValueError(f"unknown labels '{name}'; expected one of {', '.join(LABEL_NAMES)}")
