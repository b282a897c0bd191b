"""Pooler and classifier shared by the prompt methods (ViLT's layout, scaled to the backbone)."""

from __future__ import annotations

import torch
from torch import nn


class Pooler(nn.Module):
    """Linear + tanh over one token, initialised from the backbone's pretrained pooler if it has one."""

    def __init__(self, hidden: int, init: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        if init is not None:
            self.dense.load_state_dict(init)

    def forward(self, token: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(token))


class ClassifierHead(nn.Module):
    """Linear(H, 2H) -> LayerNorm -> GELU -> Linear(2H, C), as ViLT's downstream heads."""

    def __init__(self, hidden: int, num_classes: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, 2 * hidden),
            nn.LayerNorm(2 * hidden),
            nn.GELU(),
            nn.Linear(2 * hidden, num_classes),
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled)
