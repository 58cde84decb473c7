"""The linear MLP head shared by the LAION aesthetic predictor v2 and ImageReward.

Both official checkpoints store it as `layers.{0,2,4,6,7}` of an nn.Sequential with dropouts in
between and no activations (the ReLUs are commented out in both reference implementations).
"""

from __future__ import annotations

import torch
from torch import nn


class LinearMLPHead(nn.Module):
    """Linear input-1024-128-64-16-1 with dropout 0.2/0.2/0.1, no activations; returns [B]."""

    def __init__(self, input_size: int = 768) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(input_size, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features).squeeze(-1)
