"""Planted-cluster scenarios for the probabilistic prompt matcher, and scores for its output.

A scenario plants K true prompts, hands each of T clients noisy copies of some of them (every
client at most one copy of each, as the matcher's one-to-one model assumes) and remembers which
true prompt every local row came from. A matcher is then scored by the number of centres it
returns against the number of true prompts the clients actually hold, and by the adjusted Rand
index of its assignments against the planted labels (1 = the planted partition exactly).

Units. ``noise`` is the noise-to-separation ratio rho: a copy is its true prompt plus a Gaussian
whose expected norm is rho * sep, sep being the smallest distance between two true prompts. Two
copies of one prompt are then about sqrt(2) rho sep apart, so rho = 0.5 puts them at 0.71 sep,
while copies of different prompts are at least sqrt(1 + 2 rho^2) sep = 1.22 sep apart.

Kinds:
- "shared": every client holds all K prompts of one pool (FedPrime's inter pool: each client
  returns its rows of the used union). Half of each copy's noise variance is a per-client shift
  common to all that client's prompts (local training moves a client's pool together), half is
  per prompt: the "drifting pool".
- "subsets": each client holds a random subset (5-20 prompts, at most K) of the K true prompts,
  overlapping between clients; the noise is per prompt.

Scales: "init" draws true prompts with entries ~ U(-0.04, 0.04) (FedPrime's pool init at d = 384),
"unit" with entries ~ N(0, 1). ``common`` (0 by default) is the share of each true prompt's
variance that is one vector common to all of them: at 0.9 the true prompts have cosine similarity
about 0.9, as trained prompts that moved together from one init would, and their distances are
small next to their norm. With ``groups`` = g > 1 the common vector is one per group (prompt i is
in group i mod g): tight groups far apart, a two-scale structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["Scenario", "adjusted_rand_index", "make_scenario", "score_assignments"]


@dataclass
class Scenario:
    """clients: T tensors [n_t, d]; labels: per client, the true prompt of each row;
    truth: [K, d] the true prompts; k_held: how many true prompts at least one client holds."""

    name: str
    clients: list[Tensor]
    labels: list[np.ndarray]
    truth: Tensor
    k_held: int


def make_scenario(
    kind: str,
    k: int,
    n_clients: int,
    noise: float,
    *,
    scale: str = "init",
    d: int = 384,
    per_client: tuple[int, int] = (5, 20),
    common: float = 0.0,
    groups: int = 1,
    seed: int = 0,
) -> Scenario:
    """A seeded planted-cluster scenario (see the module docstring for kinds, units and scales)."""
    if kind not in ("shared", "subsets"):
        raise ValueError(f"make_scenario: kind must be 'shared' or 'subsets', got {kind!r}")
    if scale not in ("init", "unit"):
        raise ValueError(f"make_scenario: scale must be 'init' or 'unit', got {scale!r}")
    rng = np.random.default_rng(seed)
    if not 0.0 <= common < 1.0:
        raise ValueError(f"make_scenario: common must be in [0, 1), got {common}")
    draw = (
        (lambda n: rng.uniform(-0.04, 0.04, size=(n, d)))
        if scale == "init"
        else (lambda n: rng.normal(size=(n, d)))
    )
    truth = np.sqrt(1 - common) * draw(k) + np.sqrt(common) * draw(groups)[np.arange(k) % groups]
    sep = _min_distance(truth)
    sigma = noise * sep / np.sqrt(d)  # per-dimension std, so E||noise|| ~ rho * sep
    clients, labels = [], []
    for _ in range(n_clients):
        if kind == "shared":
            held = rng.permutation(k)
            eps = np.sqrt(0.5) * sigma * (rng.normal(size=(k, d)) + rng.normal(size=(1, d)))
        else:
            lo, hi = per_client
            n = int(rng.integers(min(lo, k), min(hi, k) + 1))
            held = rng.choice(k, size=n, replace=False)
            eps = sigma * rng.normal(size=(n, d))
        clients.append(torch.as_tensor(truth[held] + eps, dtype=torch.float32))
        labels.append(held.astype(np.int64))
    k_held = len(np.unique(np.concatenate(labels)))
    name = (
        f"{kind} K={k} T={n_clients} rho={noise:g} {scale}"
        + (f" common={common:g}" if common else "")
        + (f" groups={groups}" if groups > 1 else "")
    )
    return Scenario(name, clients, labels, torch.as_tensor(truth, dtype=torch.float32), k_held)


def _min_distance(x: np.ndarray) -> float:
    sq = (x**2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2 * x @ x.T
    np.fill_diagonal(d2, np.inf)
    return float(np.sqrt(max(d2.min(), 0.0))) if len(x) > 1 else float(np.linalg.norm(x))


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Hubert-Arabie adjusted Rand index of two labellings of the same items (1 = identical
    partitions, about 0 = chance). Returns 1.0 when both put everything in one cluster or every
    item apart (the index is 0/0 there and the partitions agree)."""
    a, b = np.asarray(a), np.asarray(b)
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1), dtype=np.float64)
    np.add.at(table, (ai, bi), 1.0)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    index, rows, cols, total = (
        pairs(table),
        pairs(table.sum(1)),
        pairs(table.sum(0)),
        pairs(np.array([len(a)])),
    )
    expected = rows * cols / total if total else 0.0
    top = (rows + cols) / 2 - expected
    return 1.0 if top == 0 else (index - expected) / top


def score_assignments(scenario: Scenario, assignments: list[np.ndarray]) -> float:
    """ARI between the matcher's centre of every local row and the row's planted true prompt."""
    found = np.concatenate([np.asarray(z) for z in assignments])
    return adjusted_rand_index(np.concatenate(scenario.labels), found)
