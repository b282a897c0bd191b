"""FedMVP's local optimiser: AdamW with cosine annealing over the local epochs (methods.md §4b).

A fresh optimiser and schedule per client fit, as the official code (each client trains a copy
of the global model with a new AdamW). ``cosine_step`` picks when the schedule steps: once per
local epoch (the paper) or after every batch (the official code steps a
``CosineAnnealingLR(T_max=local epochs)`` inside its batch loop, so the rate falls to zero
within ``local_epochs`` batches and then cycles with that half-period).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from fedbench.methods.fedmvp.config import FedMVPOptions

__all__ = ["configure_optimizer"]


def configure_optimizer(
    params: Iterable[nn.Parameter], opts: FedMVPOptions, local_epochs: int
) -> dict[str, Any]:
    """Lightning's ``configure_optimizers`` dict: AdamW(lr, weight_decay) and CosineAnnealingLR
    with T_max = local_epochs, stepped per epoch (``interval="epoch"``) or per batch ("step")."""
    if local_epochs < 1:
        raise ValueError(f"configure_optimizer: local_epochs must be >= 1, got {local_epochs}")
    optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=local_epochs)
    interval = "epoch" if opts.cosine_step == "epoch" else "step"
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler, "interval": interval, "frequency": 1},
    }
