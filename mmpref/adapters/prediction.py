"""Forward noising and the regression target of a denoiser: epsilon, v-prediction, sample, flow matching.

This is the only place that knows what a denoiser predicts, so a new model family (SD3, FLUX and video
models train with flow matching) changes nothing in the objectives or the trainer:

| prediction      | x_t                          | target                       |
|-----------------|------------------------------|------------------------------|
| `epsilon`       | √ᾱ_t·x₀ + √(1−ᾱ_t)·ε         | ε                            |
| `v_prediction`  | same                         | √ᾱ_t·ε − √(1−ᾱ_t)·x₀         |
| `sample`        | same                         | x₀                           |
| `flow_matching` | (1−σ)·x₀ + σ·ε,  σ = t/T     | ε − x₀                       |

DDPM-family noising and velocity come from the diffusers scheduler itself (`add_noise`,
`get_velocity`); flow matching is written out (its scheduler only noises at its own sigmas).
"""

from __future__ import annotations

from typing import Any, Literal

import torch

PredictionType = Literal["epsilon", "v_prediction", "sample", "flow_matching"]
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "sample", "flow_matching")


def scheduler_prediction_type(scheduler: Any) -> str:
    """What a diffusers scheduler's model predicts; flow-matching schedulers map to `flow_matching`."""
    if type(scheduler).__name__.startswith("FlowMatch"):
        return "flow_matching"
    return str(getattr(scheduler.config, "prediction_type", "epsilon"))


def check_timestep_range(value: Any) -> tuple[float, float]:
    """[low, high] as fractions of the training horizon T, 0 <= low < high <= 1 (configs' `timestep_range`)."""
    values = list(value)
    if len(values) != 2 or not 0.0 <= float(values[0]) < float(values[1]) <= 1.0:
        raise ValueError(f"timestep_range must be [low, high] with 0 <= low < high <= 1, got {values}")
    return float(values[0]), float(values[1])


class DiffusionProcess:
    """Noise x₀ at timestep t and give the denoiser's regression target, for one prediction type."""

    def __init__(self, scheduler: Any, prediction_type: str = "auto",
                 timestep_range: tuple[float, float] = (0.0, 1.0)) -> None:
        self.scheduler = scheduler
        self.timestep_range = check_timestep_range(timestep_range)
        self.prediction_type = scheduler_prediction_type(scheduler) if prediction_type == "auto" else prediction_type
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"unknown prediction type {self.prediction_type!r}; expected one of {PREDICTION_TYPES}")
        self.num_train_timesteps = int(scheduler.config.num_train_timesteps)
        self.flow = self.prediction_type == "flow_matching"

    def sample_timesteps(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Uniform training timesteps in [low·T, high·T): integers (DDPM family) or reals (flow matching).

        The default range is all of [0, T). A narrower one focuses the preference signal: a sample's
        layout (where objects go, their count) is decided at high noise, its texture at low noise.
        """
        low, high = (r * self.num_train_timesteps for r in self.timestep_range)
        if self.flow:
            return low + torch.rand(n, generator=generator, device=device) * (high - low)
        return torch.randint(round(low), max(round(high), round(low) + 1), (n,), generator=generator, device=device)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """x_t for the given timesteps."""
        if self.flow:
            sigma = self._sigma(timesteps, x0)
            return (1.0 - sigma) * x0 + sigma * noise
        return self.scheduler.add_noise(x0, noise, timesteps)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """What the denoiser should output at x_t."""
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "v_prediction":
            return self.scheduler.get_velocity(x0, noise, timesteps)
        if self.prediction_type == "sample":
            return x0
        return noise - x0

    def _sigma(self, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        sigma = (timesteps.float() / self.num_train_timesteps).to(like.device, like.dtype)
        return sigma.view(-1, *([1] * (like.ndim - 1)))


def per_sample_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every non-batch axis, in float32 (bf16 squares lose the small differences)."""
    diff = prediction.float() - target.float()
    return diff.pow(2).flatten(1).mean(dim=1)
