"""A weighted sum of scorers, each standardised, so one reward can trade off several models.

Scores on different scales (PickScore ~21, HPS ~0.3, ImageReward ~N(0, 1)) are standardised
first, by fixed (mean, std) constants from the config or by running statistics, then summed with
their weights; members where lower is better are negated so the composite is always
higher-is-better.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from mmpref.errors import UserError
from mmpref.registry import REWARD_MODELS

from .base import Scorer, ScorerParams

MEMBER_KEYS = ("name", "weight", "mean", "std")


@dataclass
class CompositeParams(ScorerParams):
    members: list[dict[str, Any]] = field(default_factory=list)  # [{name: pickscore, weight: 1.0, mean: 21.0, std: 1.0}]
    standardize: Literal["running", "fixed", "none"] = "running"  # running stats, fixed mean/std, or raw scores
    eps: float = 1e-6

    def check(self) -> None:
        super().check()
        if not self.members:
            raise ValueError("composite needs at least one entry under `members` ({name: ..., weight: ...})")
        for member in self.members:
            if not isinstance(member, dict) or "name" not in member:
                raise ValueError(f"each composite member is a mapping with a `name` key, got {member!r}")
            if self.standardize == "fixed" and ("mean" not in member or "std" not in member):
                raise ValueError(f"member '{member['name']}' needs `mean` and `std` with standardize: fixed")
            from .build import make_params  # each member's own parameters are checked before anything loads

            entry = REWARD_MODELS.get(str(member["name"]))
            make_params(entry.name, entry.params, {k: v for k, v in member.items() if k not in MEMBER_KEYS})


class RunningStats:
    """Mean and standard deviation of every score seen so far (Welford's update)."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def update(self, values: torch.Tensor) -> None:
        for v in values.detach().double().reshape(-1).tolist():
            self.count += 1
            delta = v - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (v - self.mean)

    @property
    def std(self) -> float:
        return (self.m2 / (self.count - 1)) ** 0.5 if self.count > 1 else 1.0


@dataclass
class Member:
    """One part of a composite: its scorer, weight and optional fixed standardisation constants."""

    scorer: Scorer
    weight: float = 1.0
    mean: float | None = None
    std: float | None = None
    stats: RunningStats = field(default_factory=RunningStats)


class CompositeScorer(Scorer):
    """Composite = sum_i w_i * sign_i * (s_i - mean_i) / std_i over its members.

    Scale: a weighted sum of z-scores, ~N(0, sum w_i^2) once the statistics settle. In 'running'
    mode the statistics are updated by every `score` call before standardising (so early calls
    see few samples), while `score_pixels` uses them frozen and lets gradients through.
    """

    name = "composite"
    scale = "weighted sum of standardised scores; ~N(0, sum w^2)"

    def __init__(self, members: list[Member], *, standardize: str = "running", eps: float = 1e-6,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not members:
            raise UserError("a composite reward needs at least one member under `members`.")
        if standardize not in ("running", "fixed", "none"):
            raise UserError(f"composite standardize must be 'running', 'fixed' or 'none', got '{standardize}'.")
        modalities = {m.scorer.modality for m in members}
        if len(modalities) > 1:
            raise UserError(f"composite members mix modalities {sorted(modalities)}; combine scorers of one modality.")
        for m in members:
            if standardize == "fixed" and (m.mean is None or m.std is None):
                raise UserError(f"composite member '{m.scorer.name}' needs `mean` and `std` with standardize: fixed.")
            if m.std is not None and m.std <= 0:
                raise UserError(f"composite member '{m.scorer.name}': std must be positive, got {m.std}.")
        self.members, self.standardize, self.eps = members, standardize, eps
        self.modality = modalities.pop()
        self.differentiable = all(m.scorer.differentiable for m in members)
        self.needs_prompt = any(m.scorer.needs_prompt for m in members)

    def _combine(self, parts: list[torch.Tensor], update: bool) -> torch.Tensor:
        total = torch.zeros_like(parts[0], dtype=torch.float32)
        for m, s in zip(self.members, parts):
            s = s.float()
            if self.standardize == "running":
                if update:
                    m.stats.update(s)
                s = (s - m.stats.mean) / max(m.stats.std, self.eps)
            elif self.standardize == "fixed":
                s = (s - m.mean) / max(m.std, self.eps)
            total = total + m.weight * (s if m.scorer.higher_is_better else -s)
        return total

    def _score_batch(self, samples: list[Any], prompts: list[str]) -> torch.Tensor:
        return self._combine([m.scorer._score_batch(samples, prompts).float().cpu() for m in self.members],
                             update=True)

    def _score_pixels(self, pixels: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        parts = [m.scorer._score_pixels(pixels, prompts).float().to(pixels.device) for m in self.members]
        return self._combine(parts, update=False)


@REWARD_MODELS.register("composite", summary="weighted sum of standardised scorers (running or fixed statistics)",
                        params=CompositeParams)
def build(params: CompositeParams, device: str | torch.device = "cpu",
          dtype: torch.dtype = torch.float32) -> CompositeScorer:
    from .build import build_scorer

    members = []
    for raw in params.members:  # already checked by CompositeParams.check
        if not isinstance(raw, dict):
            raise UserError(f"each composite member is a mapping with 'name'; got {raw!r}.")
        spec = dict(raw)
        try:
            weight = float(spec.pop("weight", 1.0))
            mean = spec.pop("mean", None)
            std = spec.pop("std", None)
            mean, std = (None if mean is None else float(mean)), (None if std is None else float(std))
        except (TypeError, ValueError) as err:
            raise UserError(f"composite member {raw!r}: weight, mean and std must be numbers.") from err
        members.append(Member(build_scorer(spec, device=device, dtype=dtype), weight, mean, std))
    return CompositeScorer(members, standardize=params.standardize, eps=params.eps, device=device, dtype=dtype,
                           batch_size=params.batch_size)
