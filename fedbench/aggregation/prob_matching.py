"""Probabilistic prompt matching: PFPT's server aggregator, reused by FedPrime for inter-client prompts.

Generative model (methods.md §3c). There are m global prompts phi_1..phi_m. Client t selects each
global prompt i independently with probability pi_i = b(phi_i) (c^t_i in {0, 1}); each selected
phi_i emits one local prompt q ~ N(phi_i, diag s(phi_i)^2). z^t matches every local prompt of
client t to a distinct global prompt, so c^t_i = sum_j z^t_ji. The joint log-likelihood of client t
is

    L_t = sum_ji z_ji log N(q_j; phi_i, s_i^2) + sum_i [c_i log pi_i + (1 - c_i) log(1 - pi_i)].

Column gain (the assignment step). Substituting c_i = sum_j z_ji,

    L_t = sum_i log(1 - pi_i) + sum_ji z_ji [log N(q_j; phi_i, s_i^2) + log pi_i - log(1 - pi_i)],

and the first sum does not depend on z. So with M_ji = log N(q_j; phi_i, s_i^2) + logit(pi_i), the
one-to-one assignment of maximal total M is exactly the z^t that maximises L_t with every parameter
and every other client fixed. logit(pi_i) is the popularity net's pre-sigmoid output.

Where this differs from the official code (PFPT ``NonparametricAgg``, also FedPrime's, as methods.md
§3c describes it): it sums the
Bernoulli term only over assigned entries (only c = 1 terms, so b is always pushed towards 1) and
puts log Bern(c_i^old; pi_i) in the cost, which rewards re-using last pass's columns. fedbench uses
the joint likelihood above for both the gradient step and the cost. The rest is kept: all local
prompts as initial centres, a seeded random one-to-one initial assignment, fresh MLPs and a fresh
Adam per call, one Adam step per client per outer loop, the std (not variance) from a sigmoid, the
cost from the pre-step values, a rectangular Hungarian solve, only non-empty centres returned.

``new_cluster_cost`` (fedbench's improved matcher, not the paper's). Starting every centre at a
local prompt, each prompt is most likely under its own copy, so the faithful matcher rarely merges
and the pool grows with clients x prompts (risk 17). With lambda = new_cluster_cost the objective
becomes sum_t L_t - lambda * (number of non-empty centres), a price for every centre kept, as in
Beta-Bernoulli-process matching (PFNM, FedMA). For client t the change in that count is exactly
the number of its prompts put in columns no other client uses, so the cost gets -lambda on those
columns and the Hungarian step stays an exact maximisation. A client's random initial assignment
carries no information, so it does not count as "use" until that client has been matched once:
the first pass then builds clusters greedily, client by client, and later passes refine them.
lambda is in nats: a prompt joins another client's centre when that costs it less than lambda in
Gaussian log-density, about ||q - q'||^2 / (2 s^2) summed over d dimensions, so it grows with d.

Scale caveat (both variants). s is a sigmoid, so it starts near 0.5 and barely moves in a few Adam
steps, and Adam moves every coordinate of phi by about lr per step whatever the prompts' scale. For
prompts with entries far below 0.5 (FedPrime's U(-0.04, 0.04) init) the Gaussian cannot tell
prompts apart and the centres drift by more than the prompts' own norm; the matcher behaves as
intended for prompts of roughly unit scale per entry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "MatchResult",
    "PopularityNet",
    "ScaleNet",
    "assign_client",
    "client_cost",
    "client_log_likelihood",
    "match_prompts",
    "matching_objective",
]

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class MatchResult:
    """The outcome of one matching call.

    centres: [m', d] non-empty cluster centres (the new global prompts), in the input's dtype.
    assignments: per client t, an int array of length n_t: the row of ``centres`` of each prompt.
    objective_trace: the total objective after each outer iteration (higher is better).
    """

    centres: Tensor
    assignments: list[np.ndarray]
    objective_trace: list[float]


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
    q: Tensor, centres: Tensor, z: np.ndarray, log_std: Tensor, logit: Tensor
) -> Tensor:
    """L_t for prompts q [n, d] matched to columns z, given log s(phi) [m, d] and logit(b(phi)) [m]."""
    idx = torch.as_tensor(z, dtype=torch.long)
    ls = log_std[idx]
    resid = (q - centres[idx]) * torch.exp(-ls)
    l1 = -0.5 * (resid**2).sum() - ls.sum() - 0.5 * q.numel() * _LOG_2PI
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
) -> np.ndarray:
    """M [n, m]: M_ji = log N(q_j; phi_i, s_i^2) + logit(pi_i), minus lambda where no other client is.

    The Gaussian term is expanded as q^2 w - 2 q phi w + phi^2 w with w = 1/s^2 so it costs three
    matrix products instead of an [n, m, d] tensor; float64 keeps the cancellation harmless.
    """
    with torch.no_grad():
        q64, c64, ls64 = q.double(), centres.double(), log_std.double()
        w = torch.exp(-2 * ls64)
        quad = (q64**2) @ w.T - 2 * q64 @ (c64 * w).T + ((c64**2) * w).sum(1)
        log_n = -0.5 * quad.clamp_min(0) - ls64.sum(1) - 0.5 * q.shape[1] * _LOG_2PI
        cost = (log_n + logit.double()).numpy()
    if new_cluster_cost is not None:
        if used_by_others is None:
            raise ValueError("client_cost: new_cluster_cost needs used_by_others")
        cost = cost - new_cluster_cost * (np.asarray(used_by_others) == 0)
    return cost


def assign_client(cost: np.ndarray) -> np.ndarray:
    """Distinct columns for the n rows of ``cost`` [n, m] (n <= m) with maximal total cost.

    Returns an int array of length n: the column of each row.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[0] > cost.shape[1]:
        raise ValueError(f"assign_client: need an [n, m] cost with n <= m, got shape {cost.shape}")
    rows, cols = linear_sum_assignment(cost, maximize=True)
    out = np.empty(cost.shape[0], dtype=np.int64)
    out[rows] = cols
    return out


def matching_objective(
    local: Sequence[Tensor] | Tensor,
    centres: Tensor,
    assignments: Sequence[np.ndarray],
    scale_net: ScaleNet,
    pop_net: PopularityNet,
    new_cluster_cost: float | None = None,
) -> float:
    """sum_t L_t - lambda * (number of columns used by any client); lambda = 0 when None."""
    clients = _as_clients(local)
    with torch.no_grad():
        log_std, logit = scale_net.log_std(centres), pop_net.logit(centres)
        total = sum(
            float(client_log_likelihood(q.to(centres.dtype), centres, z, log_std, logit))
            for q, z in zip(clients, assignments, strict=True)
        )
    if new_cluster_cost is not None:
        total -= new_cluster_cost * len(np.unique(np.concatenate([np.asarray(z) for z in assignments])))
    return total


def _as_clients(local: Sequence[Tensor] | Tensor) -> list[Tensor]:
    """The clients' prompt matrices [n_t, d], checked for a common width, non-emptiness, finiteness."""
    clients = list(local.unbind(0)) if isinstance(local, Tensor) else list(local)
    if not clients:
        raise ValueError("match_prompts: no clients")
    d = clients[0].shape[-1]
    for t, q in enumerate(clients):
        if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] != d:
            raise ValueError(
                f"match_prompts: client {t} has prompts of shape {tuple(q.shape)}; need [n_t >= 1, {d}]"
            )
        if not torch.isfinite(q).all():
            raise ValueError(f"match_prompts: client {t} has non-finite prompt values")
    return [q.detach() for q in clients]


def match_prompts(
    local: Sequence[Tensor] | Tensor,
    *,
    outer_loops: int = 5,
    hidden: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    new_cluster_cost: float | None = None,
) -> MatchResult:
    """Match the clients' local prompts to shared centres by alternating Adam and Hungarian steps.

    ``local`` is [T, n, d] or a list of T tensors [n_t, d]. Deterministic for a given seed; the
    global torch RNG state is left as it was. See the module docstring for the model and objective.
    """
    if outer_loops < 1:
        raise ValueError(f"match_prompts: outer_loops must be >= 1, got {outer_loops}")
    if new_cluster_cost is not None and not (new_cluster_cost >= 0 and math.isfinite(new_cluster_cost)):
        raise ValueError(
            f"match_prompts: new_cluster_cost must be a finite number >= 0, got {new_cluster_cost}"
        )
    clients = _as_clients(local)
    out_dtype = clients[0].dtype if clients[0].is_floating_point() else torch.float32
    out_device = clients[0].device
    # Small server-side math: CPU, float32 like the prompts (float64 if they are); costs in float64.
    work = torch.promote_types(out_dtype, torch.float32)
    qs = [q.to(device="cpu", dtype=work) for q in clients]
    sizes = [q.shape[0] for q in qs]
    m, d = sum(sizes), qs[0].shape[1]
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        scale_net, pop_net = ScaleNet(d, hidden).to(work), PopularityNet(d, hidden).to(work)
    phi = nn.Parameter(torch.cat(qs, 0).clone())
    opt = torch.optim.Adam([phi, *scale_net.parameters(), *pop_net.parameters()], lr=lr)
    z = [rng.permutation(m)[:n] for n in sizes]
    use = np.zeros(m, dtype=np.int64)  # per column: how many already-matched clients use it
    matched = [False] * len(qs)
    trace: list[float] = []
    for _ in range(outer_loops):
        for t, q in enumerate(qs):
            # The cost needs s(phi) of every column, the gradient only of the assigned ones: run the
            # scale net's backward on n_t rows instead of m (most of the time at m = T * n).
            with torch.no_grad():
                log_std = scale_net.log_std(phi)
            idx = torch.as_tensor(z[t])
            log_std = log_std.index_put((idx,), scale_net.log_std(phi[idx]))
            logit = pop_net.logit(phi)
            loss = -client_log_likelihood(q, phi, z[t], log_std, logit)
            phi_pre = phi.detach().clone()
            opt.zero_grad()
            loss.backward()
            opt.step()
            others = use.copy()
            if matched[t]:
                others[z[t]] -= 1
            cost = client_cost(q, phi_pre, log_std.detach(), logit.detach(), others, new_cluster_cost)
            new_z = assign_client(cost)
            use[new_z] += 1
            if matched[t]:
                use[z[t]] -= 1
            z[t], matched[t] = new_z, True
        trace.append(matching_objective(qs, phi.detach(), z, scale_net, pop_net, new_cluster_cost))
    kept = np.unique(np.concatenate(z))
    remap = np.full(m, -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    centres = phi.detach()[torch.as_tensor(kept)].to(device=out_device, dtype=out_dtype)
    return MatchResult(centres=centres, assignments=[remap[zt] for zt in z], objective_trace=trace)
