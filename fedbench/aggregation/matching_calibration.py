"""The prompt matcher's new-centre price calibrated from the local prompts (``new_cluster_cost="auto"``).

Why a price. Every centre starts at one local prompt, so each prompt is likeliest under its own
copy and the matcher without a price hardly merges (methods.md risk 17). A price per centre is the
small-variance limit of a Dirichlet- or Beta-Bernoulli-process mixture (DP-means, Kulis & Jordan
2012; MAD-Bayes, Broderick et al. 2013; PFNM / FedMA's per-centre cost): with a Gaussian of std s,
a prompt q joins centre phi rather than keeping its own when

    ||q - phi||^2 / (2 s^2) < lambda,   i.e.   ||q - phi||^2 < theta^2 := 2 s^2 lambda.

So a price in nats is a merge radius theta in data units, and fedbench's fixed 2 nats/dim means
theta^2 / d = 4 s^2 (1 at s = 0.5): right for RMS-normalised prompts that share nothing, too
generous for prompts that share a common component or sit at their raw 0.04 scale (everything
merges down to the largest client's count), and different again once s has moved.

The radius from the data (``merge_radius``). Two kinds of distances are observable:
- within a client, prompts are copies of *different* true prompts (the one-to-one model), so the
  nearest same-client neighbour is at about sep^2 + 2 sigma^2 d (sep: distance between true
  prompts, sigma: per-dimension noise). S is their 10% quantile: the closest distinct prompts
  seen together, not the typical ones, so prompts in tight groups are kept apart when some client
  holds two of a group;
- across clients, a prompt that another client also holds has its nearest other-client neighbour
  at about 2 sigma^2 d. N is the lower quartile of these (prompts nobody else holds give
  distances near S, hence a quartile).
Then theta^2 = (min(N, S/2) + S) / 2, halfway between copies and distinct prompts, never below S/2
(tiny noise) nor above 3S/4 (N unreliable when few prompts are shared). With planted noise
rho * sep, copies are 2 rho^2 sep^2 apart (0.5 sep^2 at rho = 0.5) and distinct prompts at least
(1 + 2 rho^2) sep^2, so the radius separates them with margin for rho up to 0.5.

From radius to nats (``merge_bonus``). The matcher's scale net gives each centre its own
per-dimension std, and they drift apart as it fits: a centre holding one prompt fits it exactly
and its s falls, one that collected prompts keeps s near their spread, and the stds differ by
dimension. One global lambda fails: fixed at the start, it is too cheap once s has shrunk
(everything splits after tens of outer loops); tied to a typical s, a loose centre becomes a trap
that swallows unrelated prompts cheaply. So each centre i used by another client gets a bonus for
joining it,

    lambda_i = theta^2 / (2 g_i^2),   g_i = exp(mean_d log s_id),

the radius in nats of the isotropic Gaussian with centre i's volume (g_i is the geometric-mean
std; the log-determinant, sum_d log s_id, is the same): DP-means' rule "join if closer than
theta" in each centre's own metric. The arithmetic mean of 1/s_id^2 instead (exact for isotropic
residuals) is ruled by the few dimensions where s has collapsed, and after tens of outer loops it
let a centre whose std had grown along the differences between true prompts take in two of them
(measured: 7 centres for 10 prompts at 50 loops; the geometric mean keeps 10). The step is the
exact Hungarian step for the objective sum_t L_t + sum_i lambda_i (clients in i - 1)_+ (lambda_i
does not depend on z); with equal stds it is the fixed price lambda up to a constant per prompt.
The prompts are standardised first (one mean vector, one scalar) so that the scale net and Adam
see unit-scale inputs.

The radius from the clients' updates (``update_radius``, PPT's ``new_centre="drift"``). Where the
server knows where each local prompt started (PPT: client row i began the round as global row i),
the clients' steps are observable directly: client t's update to a prompt it trained,
u = q - start. Two copies of one prompt that clients a and b moved independently are about
||u_a||^2 + ||u_b||^2 apart, and a client's steps are much alike across its rows while they
differ between clients with how many steps each took (its data: on the emoji imbalanced split
the clients hold from a few to over a hundred samples). So theta^2 = 2 max_t median_j ||u_tj||^2:
copies that moved independently merge, even from the two clients that move most, and prompts
closer together than the clients' own steps merge too (they cannot be told from copies). The
neighbour radius, capped at 3S/4 of the closest distinct prompts, never does that: once the pool
has collapsed onto one direction and the clients' steps exceed the prompts' separation, it splits
trained copies off and the pool multiplies (docs/ppt.md section 4). A radius of twice the median
over all clients' updates together (tried first) split off the copies of the clients that had
stepped furthest, and opened far more centres than rows were used in a first round. Rows a
client did not train (update exactly 0) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["merge_bonus", "merge_radius", "neighbour_distances", "update_radius"]


def neighbour_distances(local: Sequence[Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Per local prompt (clients concatenated): the squared distance to its nearest other prompt of
    the same client, and to its nearest prompt of any other client (inf where there is none)."""
    x = torch.cat([q.detach().double().cpu() for q in local]).numpy()
    owner = np.repeat(np.arange(len(local)), [q.shape[0] for q in local])
    sq = (x**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    same = owner[:, None] == owner[None, :]
    np.fill_diagonal(same, False)
    within = np.where(same, d2, np.inf).min(1)
    other = owner[:, None] != owner[None, :]
    across = np.where(other, d2, np.inf).min(1)
    return within, across


def merge_radius(local: Sequence[Tensor]) -> float:
    """theta^2 (squared distance, in the prompts' units): the calibrated merge radius.

    theta^2 = (min(N, S/2) + S) / 2 with S the 10% quantile of the nearest same-client distances
    and N the lower quartile of the nearest other-client distances (module docstring). Fallbacks:
    clients of one prompt each (no S): 4 N, twice the typical distance between two copies; a
    single client (no N, and nothing can merge): 3S/4; a single prompt: 0.
    """
    within, across = neighbour_distances(local)
    within, across = within[np.isfinite(within)], across[np.isfinite(across)]
    if len(within) == 0:
        return 4.0 * float(np.quantile(across, 0.25)) if len(across) else 0.0
    s = float(np.quantile(within, 0.1))
    n = float(np.quantile(across, 0.25)) if len(across) else s / 2
    return (min(n, s / 2) + s) / 2


def merge_bonus(theta2: float, log_std: Tensor) -> np.ndarray:
    """lambda_i = theta^2 / (2 g_i^2) per centre [m], g_i = exp(mean_d log s_id) the geometric-mean
    std of centre i: the merge radius in nats of that centre (module docstring)."""
    with torch.no_grad():
        return (0.5 * theta2 * torch.exp(-2 * log_std.detach().double().mean(1))).numpy()


def update_radius(updates: Sequence[Tensor]) -> float | None:
    """theta^2 = 2 max_t median_j ||u_tj||^2 over each client's non-zero updates (``updates[t]``:
    [n_t, d], q - start per row), in the prompts' units; None when no row moved (module docstring)."""
    typical = []
    for u in updates:
        sq = u.detach().double().cpu().pow(2).sum(-1).reshape(-1).numpy()
        if (sq > 0).any():
            typical.append(float(np.median(sq[sq > 0])))
    return 2.0 * max(typical) if typical else None
