"""Small helpers every objective family shares: float32 inputs, shape checks, TRL-named metrics.

Objectives compute in float32 whatever the adapter's dtype (bf16 log-likelihood differences lose
most of their digits), and return float32.
"""

from __future__ import annotations

import torch

from mmpref.errors import DataError
from mmpref.objectives.base import UnpairedInputs


def f32(x: torch.Tensor) -> torch.Tensor:
    """`x` as float32 (a no-op when it already is), keeping the autograd graph."""
    return x if x.dtype == torch.float32 else x.float()


def optional_f32(x: torch.Tensor | None) -> torch.Tensor | None:
    return None if x is None else f32(x)


def check_shapes(like: torch.Tensor, /, **others: torch.Tensor | None) -> None:
    """Raise a ValueError naming the field whose shape differs from `like`'s (an adapter bug)."""
    for name, value in others.items():
        if value is not None and value.shape != like.shape:
            raise ValueError(
                f"objective input '{name}' has shape {tuple(value.shape)}, expected {tuple(like.shape)} "
                "(one value per pair or sample)"
            )


def check_target(target: torch.Tensor) -> None:
    """Soft targets are probabilities; anything outside [0, 1] is a data error."""
    t = target.detach()
    if bool(((t < 0) | (t > 1) | torch.isnan(t)).any()):
        raise DataError(
            "soft preference targets must lie in [0, 1] (probability that chosen beats rejected)."
        )


def detached_mean(x: torch.Tensor) -> torch.Tensor:
    """A detached float32 0-d mean; NaN for an empty selection (so a missing subset is visible, not 0)."""
    x = x.detach().float()
    if x.numel() == 0:
        return torch.tensor(float("nan"), device=x.device)
    return x.mean()


def pairwise_metrics(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """TRL's DPO metric names, so dashboards users already know read the same."""
    chosen_rewards = chosen_rewards.detach()
    rejected_rewards = rejected_rewards.detach()
    return {
        "rewards/chosen": detached_mean(chosen_rewards),
        "rewards/rejected": detached_mean(rejected_rewards),
        "rewards/accuracies": detached_mean((chosen_rewards > rejected_rewards).float()),
        "rewards/margins": detached_mean(chosen_rewards - rejected_rewards),
        "logps/chosen": detached_mean(policy_chosen),
        "logps/rejected": detached_mean(policy_rejected),
    }


def unpaired_logratio(
    inputs: UnpairedInputs, needs_reference: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 (policy − reference) log-ratio and the bool `desirable` mask, after shape checks."""
    check_shapes(
        inputs.policy,
        reference=inputs.reference,
        desirable=inputs.desirable,
        lengths=inputs.lengths,
        kl_policy=inputs.kl_policy,
        kl_reference=inputs.kl_reference,
        weight=inputs.weight,
    )
    policy = f32(inputs.policy)
    if inputs.reference is None:
        if needs_reference:
            raise ValueError("this objective needs reference log-likelihoods (UnpairedInputs.reference)")
        return policy, inputs.desirable.bool()
    return policy - f32(inputs.reference), inputs.desirable.bool()


def unpaired_metrics(
    rewards: torch.Tensor, policy: torch.Tensor, desirable: torch.Tensor
) -> dict[str, torch.Tensor]:
    """TRL's KTO metric names over the desirable (chosen) and undesirable (rejected) subsets present."""
    rewards, policy = rewards.detach(), policy.detach()
    metrics: dict[str, torch.Tensor] = {}
    if bool(desirable.any()):
        metrics["rewards/chosen"] = detached_mean(rewards[desirable])
        metrics["logps/chosen"] = detached_mean(policy[desirable])
    if bool((~desirable).any()):
        metrics["rewards/rejected"] = detached_mean(rewards[~desirable])
        metrics["logps/rejected"] = detached_mean(policy[~desirable])
    if "rewards/chosen" in metrics and "rewards/rejected" in metrics:
        metrics["rewards/margins"] = metrics["rewards/chosen"] - metrics["rewards/rejected"]
    return metrics


def global_sum_and_count(total: torch.Tensor, count: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ total, Σ count) over every training process; (total, count) in a single process.

    Running statistics that objectives keep (LCPO's η, BCO's δ) and batch statistics (KTO's z0) must
    be the same on every rank: data-parallel ranks see different batches, and only rank 0's state is
    checkpointed. Call it only where every rank calls it (training forward passes).
    """
    import torch.distributed as dist

    pair = torch.stack([total.detach().float().reshape(()),
                        torch.as_tensor(count, dtype=torch.float32, device=total.device).reshape(())])
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(pair, op=dist.ReduceOp.SUM)
    return pair[0], pair[1]


def global_mean(total: torch.Tensor, count: torch.Tensor | float) -> torch.Tensor:
    """Σ total / Σ count over every training process (see `global_sum_and_count`)."""
    summed, counted = global_sum_and_count(total, count)
    return summed / counted.clamp_min(1e-12)
