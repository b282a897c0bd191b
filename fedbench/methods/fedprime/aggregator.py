"""FedPrime's server (methods.md §2c): FedAvg for everything but the inter pool, which is
aligned across clients by probabilistic matching and replaced by the matched centres.

Inter pool, per round:
1. U = the union over clients of the inter prompts they used (any local batch, or only the last
   one with ``used_record="last_batch"``; plus the server's last evaluation batch with
   ``server_used``, as the code). Each client contributes its rows at U; rows outside U are
   dropped, as in the code.
2. ``match_prompts`` with ``cost=matcher_cost`` ("joint" or the code's "official") and
   ``new_cluster_cost``: "auto" prices a new centre from the prompts' own distances
   (matching_calibration.py: a merge radius halfway between the typical distance of two copies
   of one prompt and that of two different prompts of one client), a number is nats per prompt
   dimension, None is no price. Why a price: every centre starts at one local prompt, so each
   prompt is likeliest under its own copy and the matcher without one hardly merges (risk 17);
   a fixed 2 nats per dimension, fedbench's earlier default, sits above the distance between
   different prompts once they share a common component, and collapses the pool to one
   client's count (the collapse to kappa the bench showed).
3. ``centre_update="mean"``: each centre becomes the sample-weighted mean of the local prompts
   matched to it (the matcher's own M-step for a shared variance; FedAvg when every client's
   copy of a prompt lands in one centre); "matcher" keeps the matcher's centres (the code).
4. Floor: the pool keeps >= kappa prompts for top-kappa retrieval. Every client's used rows land
   in distinct centres, so m' >= |U| >= kappa whenever a client reported its used prompts; if
   not, the pool is padded with the FedAvg of the dropped rows in index order.

``alias_shared`` (fedprime-official, cyclic schedule): the code's clients train the very same
tensors one after another, so what reaches its server is N references to the last client's
result; the aggregator reproduces that by giving every update the last update's shared state
(from round 2; round 1 trains separate copies).
"""

from __future__ import annotations

from typing import Any

import torch

from fedbench.aggregation.prob_matching import MatchResult
from fedbench.aggregation.weighted import weighted_mean
from fedbench.methods.base import Aggregator, ClientUpdate, State
from fedbench.methods.fedprime.config import FedPrimeOptions
from fedbench.methods.fedprime.diagnostics import usage_summary

INTER_KEY = "inter_pool"
POOLS = ("intra", "inter")


def used_union(metas: list[dict[str, Any]], pool_size: int) -> list[int]:
    """Sorted union of the clients' ``used_inter`` (and ``server_used_inter``) lists. A client
    that reports none is counted as using its whole pool, so a missing report can only keep rows."""
    union: set[int] = set()
    for meta in metas:
        used = meta.get("used_inter")
        union.update(range(pool_size) if used is None else (int(i) for i in used))
        union.update(int(i) for i in meta.get("server_used_inter", ()) if 0 <= int(i) < pool_size)
    return sorted(union)


def inter_centres(
    local: list[torch.Tensor], weights: list[float], opts: FedPrimeOptions, seed: int
) -> tuple[torch.Tensor, MatchResult]:
    """The matched inter centres [m', d] of the clients' local prompts (T tensors [n_t, d])."""
    centres, result = opts.matched_centres(local, weights, seed)
    return centres.to(local[0].dtype), result


class FedPrimeAggregator(Aggregator):
    """FedAvg (by n_samples) of intra pool, pooler and head; matching for the inter pool."""

    def __init__(self, options: FedPrimeOptions, context=None):
        super().__init__(options, context)
        self._meta: dict[str, Any] = {}

    def configure_fit(
        self, round_index: int, clients: list[int], global_state: State
    ) -> dict[int, dict[str, Any]]:
        """Round 1 of the code: every client starts from the global state, also when chained."""
        if round_index == 0 and getattr(self.options, "parallel_first_round", False):
            return {c: {"start": global_state} for c in clients}
        return {}

    def aliased(self, updates: list[ClientUpdate], round_index: int) -> list[ClientUpdate]:
        """Every update carrying the last one's shared state, when the code's aliasing applies."""
        opts = self.options
        if not getattr(opts, "alias_shared", False) or (
            round_index == 0 and getattr(opts, "parallel_first_round", False)
        ):
            return updates
        last = updates[-1].state
        return [ClientUpdate(u.client_id, last, u.n_samples, u.meta, u.personal, u.loss) for u in updates]

    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        updates = self.aliased(updates, round_index)
        weights = [float(u.n_samples) for u in updates]
        rest = [{k: v for k, v in u.state.items() if k != INTER_KEY} for u in updates]
        out = weighted_mean(rest, weights) if rest[0] else {}
        metas = [u.meta for u in updates]
        self._meta = usage_summary(metas, POOLS)
        if INTER_KEY in updates[0].state:
            pools = [u.state[INTER_KEY] for u in updates]
            out[INTER_KEY] = self.aggregate_inter(pools, metas, weights, seed)
            self._meta["inter_pool_size"] = int(out[INTER_KEY].shape[0])
        return out

    def aggregate_inter(
        self, pools: list[torch.Tensor], metas: list[dict[str, Any]], weights: list[float], seed: int
    ) -> torch.Tensor:
        """The new inter pool [m', d] from the clients' pools [M, d] (all of one size), on the CPU in
        the pools' dtype: the matched centres (``inter_centres``), then, below kappa rows, the
        sample-weighted mean of the unused rows and then of the used ones, in pool order."""
        opts = self.options
        size = pools[0].shape[0]
        if any(p.shape != pools[0].shape for p in pools):
            raise ValueError(
                f"FedPrime: clients returned inter pools of shapes {sorted({tuple(p.shape) for p in pools})}"
            )
        union = used_union(metas, size)
        local = [p.detach().cpu()[union] for p in pools]  # T x [|U|, d]
        centres, result = inter_centres(local, weights, opts, seed)
        self._meta["inter_used_union"] = len(union)
        if result.merge_radius is not None:  # the calibrated price's radius (new_cluster_cost="auto")
            self._meta["matcher_merge_radius"] = float(result.merge_radius)
        if centres.shape[0] < opts.kappa:
            kept = set(union)
            dropped = [i for i in range(size) if i not in kept]
            filler = weighted_mean([{"p": p.detach().cpu()[dropped + union]} for p in pools], weights)["p"]
            centres = torch.cat([centres, filler[: opts.kappa - centres.shape[0]]], 0)
        return centres  # inter_centres and weighted_mean both return pools[0]'s dtype

    def metadata(self) -> dict[str, Any]:
        return dict(self._meta)
