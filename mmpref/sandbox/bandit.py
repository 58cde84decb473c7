"""A preference bandit: the smallest world in which a preference objective provably moves a true reward.

Each of P prompts has K candidate responses with a hidden true reward. The policy is a softmax over the
responses (one logit per prompt and response); the reference is its initial state. Preference pairs are
drawn from the reference, labelled by a Bradley-Terry model of the true rewards and optionally flipped
at a known rate, exactly the data model the DPO family assumes. Any registered objective trains the
policy; the expected true reward under the policy is the ground truth that must rise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BanditWorldConfig:
    prompts: int = 64  # number of prompts
    responses: int = 8  # candidate responses per prompt
    pairs: int = 4096  # preference pairs drawn from the reference policy
    label_temperature: float = 1.0  # Bradley-Terry temperature of the labeller (lower = more decisive)
    flip_rate: float = 0.0  # share of labels flipped at random after labelling (label noise)
    reference_scale: float = 0.5  # std of the reference policy's logits
    seed: int = 0

    def check(self) -> None:
        if self.prompts < 1 or self.responses < 2:
            raise ValueError("world needs at least 1 prompt and 2 responses per prompt")
        if not 0.0 <= self.flip_rate < 0.5:
            raise ValueError(f"flip_rate must be in [0, 0.5), got {self.flip_rate}")


@dataclass
class BanditData:
    """Pairs as index tensors: prompt [N], chosen [N], rejected [N], and which labels were flipped."""

    prompt: torch.Tensor
    chosen: torch.Tensor
    rejected: torch.Tensor
    flipped: torch.Tensor


class BanditWorld:
    """Hidden rewards, a reference policy and a labeller; all reproducible from the seed."""

    def __init__(self, config: BanditWorldConfig) -> None:
        self.config = config
        gen = torch.Generator().manual_seed(config.seed)
        self.true_reward = torch.randn(config.prompts, config.responses, generator=gen)
        self.reference_logits = config.reference_scale * torch.randn(
            config.prompts, config.responses, generator=gen
        )
        self._gen = gen

    def sample_pairs(self) -> BanditData:
        cfg, gen = self.config, self._gen
        prompt = torch.randint(cfg.prompts, (cfg.pairs,), generator=gen)
        probs = torch.softmax(self.reference_logits[prompt], dim=-1)
        two = torch.multinomial(probs, 2, replacement=False, generator=gen)
        a, b = two[:, 0], two[:, 1]
        gap = (self.true_reward[prompt, a] - self.true_reward[prompt, b]) / cfg.label_temperature
        a_wins = torch.rand(cfg.pairs, generator=gen) < torch.sigmoid(gap)
        flipped = torch.rand(cfg.pairs, generator=gen) < cfg.flip_rate
        a_wins = a_wins ^ flipped
        chosen = torch.where(a_wins, a, b)
        rejected = torch.where(a_wins, b, a)
        return BanditData(prompt=prompt, chosen=chosen, rejected=rejected, flipped=flipped)

    def expected_reward(self, logits: torch.Tensor) -> float:
        """Mean over prompts of the expected true reward of a softmax policy."""
        return float((torch.softmax(logits, dim=-1) * self.true_reward).sum(-1).mean())

    def best_reward(self) -> float:
        return float(self.true_reward.max(-1).values.mean())
