"""The probabilistic prompt matcher's model terms: the scale and popularity nets, a client's
log-likelihood (the Adam step's objective) and its assignment cost matrix (the Hungarian step's).
prob_matching.py has the model, the two costs ("joint", "official") and the loop that uses them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["PopularityNet", "ScaleNet", "client_cost", "client_log_likelihood"]

_LOG_2PI = math.log(2 * math.pi)


class ScaleNet(nn.Module):
    """s_gamma: d -> hidden -> ReLU -> d -> sigmoid, the per-dimension std of a centre's prompts."""

    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, d))

    def forward(self, centres: Tensor) -> Tensor:
        return torch.sigmoid(self.body(centres))

    def log_std(self, centres: Tensor) -> Tensor:
        """log s(phi), via logsigmoid so that tiny stds do not underflow."""
        return F.logsigmoid(self.body(centres))


class PopularityNet(nn.Module):
    """b_zeta: d -> hidden -> ReLU -> 1 -> sigmoid, the probability that a client selects a centre."""

    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, centres: Tensor) -> Tensor:
        return torch.sigmoid(self.logit(centres))

    def logit(self, centres: Tensor) -> Tensor:
        """logit(b(phi)) = log b - log(1 - b), shape [m]: the column gain of the assignment step."""
        return self.body(centres).squeeze(-1)


def client_log_likelihood(
    q: Tensor, centres: Tensor, z: np.ndarray, log_std: Tensor, logit: Tensor, cost: str = "joint"
) -> Tensor:
    """Client t's term for prompts q [n, d] matched to columns z, given log s(phi) [m, d] and
    logit(b(phi)) [m]: L_t for ``"joint"``, l1 + l2 for ``"official"`` (module docstring)."""
    idx = torch.as_tensor(z, dtype=torch.long)
    ls = log_std[idx]
    resid = (q - centres[idx]) * torch.exp(-ls)
    l1 = -0.5 * (resid**2).sum() - ls.sum() - 0.5 * q.numel() * _LOG_2PI
    if cost == "official":
        return l1 + q.shape[0] * F.logsigmoid(logit[idx]).sum()
    chosen = torch.zeros_like(logit, dtype=torch.bool)
    chosen[idx] = True
    l2 = torch.where(chosen, F.logsigmoid(logit), F.logsigmoid(-logit)).sum()
    return l1 + l2


def client_cost(
    q: Tensor,
    centres: Tensor,
    log_std: Tensor,
    logit: Tensor,
    used_by_others: np.ndarray | None = None,
    new_cluster_cost: float | None = None,
    *,
    cost: str = "joint",
    previous: np.ndarray | None = None,
) -> np.ndarray:
    """M [n, m]: log N(q_j; phi_i, s_i^2) plus the column term, minus lambda where no other client is.

    Column term: logit(pi_i) for ``"joint"``; n * log Bern(c_i; pi_i) for ``"official"``, c being
    the client's ``previous`` assignment. The Gaussian term is expanded as q^2 w - 2 q phi w +
    phi^2 w with w = 1/s^2 so it costs three matrix products instead of an [n, m, d] tensor;
    float64 keeps the cancellation harmless.
    """
    with torch.no_grad():
        q64, c64, ls64 = q.double(), centres.double(), log_std.double()
        w = torch.exp(-2 * ls64)
        quad = (q64**2) @ w.T - 2 * q64 @ (c64 * w).T + ((c64**2) * w).sum(1)
        log_n = -0.5 * quad.clamp_min(0) - ls64.sum(1) - 0.5 * q.shape[1] * _LOG_2PI
        if cost == "official":
            if previous is None:
                raise ValueError("client_cost: cost='official' needs the previous assignment")
            was = torch.zeros_like(logit, dtype=torch.bool)
            was[torch.as_tensor(np.asarray(previous), dtype=torch.long)] = True
            gain = q.shape[0] * torch.where(was, F.logsigmoid(logit), F.logsigmoid(-logit))
        else:
            gain = logit
        cost_m = (log_n + gain.double()).numpy()
    if new_cluster_cost is not None:
        if used_by_others is None:
            raise ValueError("client_cost: new_cluster_cost needs used_by_others")
        cost_m = cost_m - new_cluster_cost * (np.asarray(used_by_others) == 0)
    return cost_m
