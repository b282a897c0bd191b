"""Probabilistic prompt matching: PFPT's server aggregator, reused by FedPrime for inter-client prompts.

Model (methods.md §3c). There are m global prompts phi_1..phi_m. Client t selects each global
prompt i independently with probability pi_i = b(phi_i) (c^t_i in {0, 1}); each selected phi_i
emits one local prompt q ~ N(phi_i, diag s(phi_i)^2). z^t matches every local prompt of client t
to a distinct global prompt, so c^t_i = sum_j z^t_ji. Inference alternates, client by client, one
Adam step on (phi, scale net s, popularity net b) and an exact rectangular Hungarian solve for z^t;
all local prompts are the initial centres, the initial assignment is a seeded random one-to-one
map, the nets and Adam are fresh per call, and only non-empty centres are returned.

``cost=`` chooses the Bernoulli part (the Gaussian part log N(q_j; phi_i, s_i^2) is shared; n_t is
the number of client t's prompts):

- ``"official"``, PFPT's ``NonparametricAgg`` (FedPrime's copy is the same code), as the code
  computes it. Adam step on -(l1 + l2), l1 = sum_ji z_ji log N(q_j; phi_i, s_i^2),
  l2 = n_t * sum_{i: c_i = 1} log pi_i: the code evaluates ``Independent(Bernoulli(pi_i), 1)`` at a
  vector of n_t copies of c_i, which sums n_t equal terms, then weights it by z_ji, so only
  assigned columns count and pi is only ever pushed up. Assignment: maximise
  M_ji = log N(q_j; phi_i, s_i^2) + n_t * log Bern(c_i^old; pi_i), c^old being client t's
  assignment before this solve (the random one on the first pass): n_t log pi_i on the columns it
  used last time, n_t log(1 - pi_i) on every other, a reward for staying put. Both terms use the
  pre-step values. (torch's Bernoulli clamps pi to [eps, 1 - eps] of float32; logsigmoid here
  does not clamp.)
- ``"joint"`` (default, fedbench's): the joint log-likelihood of z and c,
  L_t = sum_ji z_ji log N(q_j; phi_i, s_i^2) + sum_i [c_i log pi_i + (1 - c_i) log(1 - pi_i)]
      = sum_i log(1 - pi_i) + sum_ji z_ji [log N(q_j; phi_i, s_i^2) + logit(pi_i)],
  for the Adam step and, by the second line, M_ji = log N + logit(pi_i), whose Hungarian solve is
  the exact maximiser of L_t over z^t (tested by brute force).

``new_cluster_cost`` (not in the paper). A number lambda: the objective becomes sum_t L_t - lambda
* (number of non-empty centres), as in Beta-Bernoulli-process matching (PFNM, FedMA); for client t
that is -lambda on columns no other client uses, so the Hungarian step stays exact. A client's
random initial assignment does not count as "use" until that client has been matched once.
``"auto"``: standardise the prompts, take a merge radius theta^2 from their own nearest-neighbour
distances and reward joining centre i (used by another client) with lambda_i = theta^2 / (2 g_i^2),
g_i the geometric mean of its current stds (the radius in nats of that centre); the objective is
then sum_t L_t + sum_i lambda_i (clients in i - 1)_+ (matching_calibration.py: the derivation).
None (or 0): no price; with ``cost="official"`` that is PFPT's matcher, with "joint" it is not.

Scale caveat. s is a sigmoid that starts near 0.5, and Adam moves every coordinate of phi by about
lr per step whatever the prompts' scale: at FedPrime's U(-0.04, 0.04) init the Gaussian cannot tell
prompts apart and centres drift by more than the prompts' norm. Pass unit-scale prompts or
``standardise=True`` (implied by "auto"). Measurements: docs/matcher.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from fedbench.aggregation.matching_calibration import merge_bonus, merge_radius
from fedbench.aggregation.matching_terms import PopularityNet, ScaleNet, client_cost, client_log_likelihood

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

_COSTS = ("joint", "official")


@dataclass
class MatchResult:
    """The outcome of one matching call.

    centres: [m', d] non-empty cluster centres (the new global prompts), in the input's dtype.
    assignments: per client t, an int array of length n_t: the row of ``centres`` of each prompt.
    objective_trace: the total objective after each outer iteration (higher is better).
    merge_radius: with ``new_cluster_cost="auto"``, theta^2 in the input's units, else None.
    """

    centres: Tensor
    assignments: list[np.ndarray]
    objective_trace: list[float]
    merge_radius: float | None = None


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
    cost: str = "joint",
    merge_radius: float | None = None,
) -> float:
    """sum_t (client t's term, ``client_log_likelihood``) - lambda * (number of columns any client
    uses), lambda = 0 when None; with ``merge_radius`` theta^2 (``"auto"``), + sum_i lambda_i *
    (number of clients in column i - 1)_+ with lambda_i = theta^2 / (2 exp(mean_d log s_id)^2)."""
    clients = _as_clients(local)
    with torch.no_grad():
        log_std, logit = scale_net.log_std(centres), pop_net.logit(centres)
        total = sum(
            float(client_log_likelihood(q.to(centres.dtype), centres, z, log_std, logit, cost))
            for q, z in zip(clients, assignments, strict=True)
        )
    used = np.concatenate([np.asarray(z) for z in assignments])
    if new_cluster_cost is not None:
        total -= new_cluster_cost * len(np.unique(used))
    if merge_radius is not None:
        extra = np.maximum(np.bincount(used, minlength=centres.shape[0]) - 1, 0)
        total += float((merge_bonus(merge_radius, log_std) * extra).sum())
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


def _check_options(outer_loops: int, new_cluster_cost: float | str | None, cost: str) -> None:
    if outer_loops < 1:
        raise ValueError(f"match_prompts: outer_loops must be >= 1, got {outer_loops}")
    if cost not in _COSTS:
        raise ValueError(f"match_prompts: cost must be one of {_COSTS}, got {cost!r}")
    if new_cluster_cost is None or new_cluster_cost == "auto":
        return
    if isinstance(new_cluster_cost, str) or not (new_cluster_cost >= 0 and math.isfinite(new_cluster_cost)):
        raise ValueError(
            "match_prompts: new_cluster_cost must be a finite number >= 0, 'auto' or None, got "
            f"{new_cluster_cost!r}"
        )


def match_prompts(
    local: Sequence[Tensor] | Tensor,
    *,
    outer_loops: int = 5,
    hidden: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    new_cluster_cost: float | str | None = None,
    cost: str = "joint",
    standardise: bool | None = None,
    radius: float | None = None,
) -> MatchResult:
    """Match the clients' local prompts to shared centres by alternating Adam and Hungarian steps.

    ``local`` is [T, n, d] or a list of T tensors [n_t, d]. ``cost``: "joint" (default) or
    "official" (PFPT's Bernoulli term). ``new_cluster_cost``: None, a price in nats, or "auto"
    (calibrated from the prompts). ``standardise`` (default: only with "auto") runs the matcher on
    (x - mean) / rms, one mean vector and one scalar for all clients, and maps the centres back (a
    numeric price then applies to the standardised prompts). ``radius``: with "auto", the merge
    radius theta^2 in the prompts' own units (e.g. from the clients' updates:
    ``matching_calibration.update_radius``) instead of the one from their neighbour distances.
    Deterministic for a given seed; the global torch RNG state is left as it was.
    """
    _check_options(outer_loops, new_cluster_cost, cost)
    auto = new_cluster_cost == "auto"
    if radius is not None and not (auto and radius >= 0 and math.isfinite(radius)):
        raise ValueError(
            f"match_prompts: radius needs new_cluster_cost='auto' and a finite value >= 0, got {radius!r}"
        )
    clients = _as_clients(local)
    out_dtype = clients[0].dtype if clients[0].is_floating_point() else torch.float32
    out_device = clients[0].device
    # Small server-side math: CPU, float32 like the prompts (float64 if they are); costs in float64.
    work = torch.promote_types(out_dtype, torch.float32)
    qs = [q.to(device="cpu", dtype=work) for q in clients]
    shift, unit = None, None
    if auto if standardise is None else standardise:
        all_rows = torch.cat(qs).double()
        shift = all_rows.mean(0)
        unit = (all_rows - shift).pow(2).mean().sqrt().clamp_min(1e-12)
        qs = [((q.double() - shift) / unit).to(work) for q in qs]
    area = 1.0 if unit is None else float(unit) ** 2  # a squared distance's unit (theta^2 in and out)
    if not auto:
        theta2 = None
    elif radius is not None:  # given in the prompts' units; the matcher works in standardised ones
        theta2 = radius / area
    else:
        theta2 = merge_radius(qs)
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
    price = None if auto else new_cluster_cost  # "auto" prices by merge_bonus instead
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
            loss = -client_log_likelihood(q, phi, z[t], log_std, logit, cost)
            phi_pre = phi.detach().clone()
            opt.zero_grad()
            loss.backward()
            opt.step()
            others = use.copy()
            if matched[t]:
                others[z[t]] -= 1
            cost_m = client_cost(
                q, phi_pre, log_std.detach(), logit.detach(), others, price, cost=cost, previous=z[t]
            )
            if auto:  # a bonus for joining a centre others use: the merge radius in its units
                cost_m = cost_m + merge_bonus(theta2, log_std) * (others > 0)
            new_z = assign_client(cost_m)
            use[new_z] += 1
            if matched[t]:
                use[z[t]] -= 1
            z[t], matched[t] = new_z, True
        trace.append(matching_objective(qs, phi.detach(), z, scale_net, pop_net, price, cost, theta2))
    kept = np.unique(np.concatenate(z))
    remap = np.full(m, -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    centres = phi.detach()[torch.as_tensor(kept)]
    if unit is not None:
        centres = (centres.double() * unit + shift).to(work)
    centres = centres.to(device=out_device, dtype=out_dtype)
    return MatchResult(centres, [remap[zt] for zt in z], trace, None if theta2 is None else theta2 * area)
