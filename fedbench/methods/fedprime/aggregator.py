"""FedPrime's server (methods.md §2c): FedAvg for everything but the inter pool, which is
aligned across clients by probabilistic matching and replaced by the matched centres.

Inter pool, per round:
1. U = the union over clients of the inter prompts used in any local batch; each client
   contributes its rows at U (rows outside U are dropped, as in the official code).
2. Those rows are divided by their overall RMS r before ``match_prompts`` and the centres
   multiplied by r after. Why: the matcher's std is a sigmoid starting near 0.5 and its Adam step
   is about lr per coordinate whatever the scale, so at the prompts' real scale (U(-0.04, 0.04))
   the Gaussian cannot tell prompts apart (prob_matching.py, "Scale caveat"). One scalar for all
   clients keeps every distance ratio, so it changes nothing but the units.
3. ``new_cluster_cost`` (in nats per dimension, passed as cost * H) is the price of a centre. At
   unit scale and s = 0.5 a prompt matched to a centre costs 2 (q - phi)^2 nats per dimension:
   4 rho^2 / (1 + rho^2) for two copies of a prompt with relative noise rho, about 4 for
   unrelated prompts. Measured (H = 384, 5 clients): planted noisy copies were recovered exactly
   by 2.0 up to rho = 0.7 (1.0 failed from rho = 0.7, the faithful None returned every copy);
   two client groups with disjoint prompts stayed apart. On the first real emoji round the
   clients' copies of one prompt had 0.48 (max 1.19) squared distance per dimension after
   normalisation and different prompts 1.93 (min 1.26): None returned 69 centres from 15 used
   prompts, 1.0 returned 25, 2.0 returned 15; without the RMS step the faithful matcher returned
   15 centres of which 6 mixed different prompts.
4. With ``centre_update="mean"`` each centre becomes the sample-weighted mean of the local
   prompts matched to it; "matcher" keeps the matcher's own centres.
5. Floor: the pool must keep >= kappa prompts for top-kappa retrieval. Every client's used rows
   land in distinct centres, so m' >= |U| >= kappa whenever a client reported its used prompts;
   if not, the pool is padded with the FedAvg of the dropped rows in index order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fedbench.aggregation.prob_matching import match_prompts
from fedbench.aggregation.weighted import weighted_mean
from fedbench.methods.base import Aggregator, ClientUpdate, State
from fedbench.methods.fedprime.config import FedPrimeOptions

INTER_KEY = "inter_pool"


def used_union(metas: list[dict[str, Any]], pool_size: int) -> list[int]:
    """Sorted union of the clients' ``used_inter`` lists. A client that reports none is counted as
    using its whole pool, so a missing report can only keep rows, never drop them."""
    union: set[int] = set()
    for meta in metas:
        used = meta.get("used_inter")
        union.update(range(pool_size) if used is None else (int(i) for i in used))
    return sorted(union)


def centre_means(
    local: torch.Tensor, assignments: list[np.ndarray], weights: list[float], m: int
) -> torch.Tensor:
    """[m, d]: for each centre, the weighted mean of the local rows assigned to it.

    local: [T, n, d]; assignments[t][j] = centre of client t's row j; weights[t] >= 0 per client.
    A centre held only by zero-weight clients gets the plain mean of its rows.
    """
    d = local.shape[-1]
    sums = {w: torch.zeros(m, d, dtype=torch.float64) for w in ("weighted", "plain")}
    totals = {w: torch.zeros(m, dtype=torch.float64) for w in ("weighted", "plain")}
    for t, z in enumerate(assignments):
        idx = torch.as_tensor(np.asarray(z), dtype=torch.long)
        for kind, w in (("weighted", float(weights[t])), ("plain", 1.0)):
            sums[kind].index_add_(0, idx, w * local[t].double())
            totals[kind].index_add_(0, idx, torch.full((len(idx),), w, dtype=torch.float64))
    weighted = sums["weighted"] / totals["weighted"].clamp_min(1e-300)[:, None]
    plain = sums["plain"] / totals["plain"].clamp_min(1.0)[:, None]
    return torch.where((totals["weighted"] > 0)[:, None], weighted, plain).to(local.dtype)


class FedPrimeAggregator(Aggregator):
    """FedAvg (by n_samples) of intra pool, pooler and head; matching for the inter pool."""

    def __init__(self, options: FedPrimeOptions, context=None):
        super().__init__(options, context)
        self._meta: dict[str, Any] = {}

    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        weights = [float(u.n_samples) for u in updates]
        rest = [{k: v for k, v in u.state.items() if k != INTER_KEY} for u in updates]
        out = weighted_mean(rest, weights) if rest[0] else {}
        self._meta = {}
        if INTER_KEY in updates[0].state:
            pools = [u.state[INTER_KEY] for u in updates]
            out[INTER_KEY] = self.aggregate_inter(pools, [u.meta for u in updates], weights, seed)
            self._meta = {"inter_pool_size": int(out[INTER_KEY].shape[0])}
        return out

    def aggregate_inter(
        self, pools: list[torch.Tensor], metas: list[dict[str, Any]], weights: list[float], seed: int
    ) -> torch.Tensor:
        """The new inter pool [m', d] from the clients' pools [M, d] (all of one size)."""
        opts = self.options
        size, d = pools[0].shape
        if any(p.shape != pools[0].shape for p in pools):
            raise ValueError(
                f"FedPrime: clients returned inter pools of shapes {sorted({tuple(p.shape) for p in pools})}"
            )
        union = used_union(metas, size)
        local = torch.stack([p.detach().cpu()[union] for p in pools])  # [T, |U|, d]
        scale = local.double().pow(2).mean().sqrt().clamp_min(1e-12).item() if opts.rms_normalise else 1.0
        cost = None if opts.new_cluster_cost is None else opts.new_cluster_cost * d
        result = match_prompts(
            local / scale,
            outer_loops=opts.outer_loops,
            hidden=opts.matcher_hidden,
            lr=opts.matcher_lr,
            seed=seed,
            new_cluster_cost=cost,
        )
        if opts.centre_update == "mean":
            centres = centre_means(local, result.assignments, weights, result.centres.shape[0])
        else:
            centres = result.centres.to(local.dtype) * scale
        if centres.shape[0] < opts.kappa:
            dropped = [i for i in range(size) if i not in set(union)]
            filler = weighted_mean([{"p": p.detach().cpu()[dropped + union]} for p in pools], weights)["p"]
            centres = torch.cat([centres, filler[: opts.kappa - centres.shape[0]]], 0)
        return centres.to(pools[0].dtype)

    def metadata(self) -> dict[str, Any]:
        return dict(self._meta)
