"""PPT's server (methods.md §3c): probabilistic matching for the prompt pool, FedAvg for the rest.

Per round:
1. U = the rows of the pool some client used in a local batch (non-zero usage); a client that
   reports no usage counts as using its whole pool, so a missing report keeps rows, never drops
   them. Rows outside U are dropped, as in the code (the pool can shrink).
2. Every client's rows at U go to :func:`~fedbench.aggregation.prob_matching.match_prompts`
   (50 outer loops, the options' cost and new-centre price, standardised by default; with
   ``new_centre="drift"`` the price's merge radius comes from the clients' updates to the rows
   they used, each row against the round's global row it started from); the
   centres that received a prompt are the new pool, whose size m' (<= clients x |U|) is logged as
   ``pool_size`` every round, beside ``pool_used`` = |U|.
3. With ``centre_update="mean"`` a centre becomes the sample-weighted mean of the local prompts
   matched to it (exact M-step of the centre under a shared variance; FedAvg when each prompt's
   copies land in one centre); "matcher" keeps the matcher's centres.
4. Floor: top-kappa needs >= kappa prompts. Every client's used rows land in distinct centres, so
   m' >= |U| >= kappa whenever one client reported its usage; otherwise the pool is padded with
   the FedAvg of the dropped rows, in index order.
5. Query projection and adaptor head: FedAvg weighted by client sample counts (as the code).

``alias_shared`` (ppt-official, cyclic schedule; config.py): from round 2 each client starts from
the global query projection and head (the ``start`` payload) and from the pool the previous client
of the round left (the schedule's chain), and every update reaches the matcher with the last
client's pool, as the code's aliased Parameters do; usage stays each client's own.

Not done (the code does it): the server model's own test-set evaluation also ticks its usage
checklist, and those rows join U. fedbench's server never evaluates on test before aggregating.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fedbench.aggregation.matching_calibration import update_radius
from fedbench.aggregation.weighted import weighted_mean
from fedbench.errors import ConfigError
from fedbench.methods.base import Aggregator, ClientUpdate, State
from fedbench.methods.ppt.config import PPTOptions
from fedbench.methods.ppt.model import POOL_KEY


def used_rows(usages: list[list[float] | None], pool_size: int) -> list[int]:
    """Sorted union over clients of the rows with non-zero usage (None: every row)."""
    union: set[int] = set()
    for usage in usages:
        if usage is None:
            union.update(range(pool_size))
        else:
            union.update(int(i) for i in np.flatnonzero(np.asarray(usage) > 0))
    return sorted(union)


class PPTAggregator(Aggregator):
    """Matching for ``pool``, FedAvg (by n_samples) for every other shared tensor."""

    cyclic = False  # whether the method's schedule hands each client the previous client's state

    def __init__(self, options: PPTOptions, context=None):
        super().__init__(options, context)
        if options.alias_shared and not self.cyclic:
            raise ConfigError(
                "method.options.alias_shared needs the cyclic schedule of ppt-official; use "
                "method.name=ppt-official"
            )
        self._meta: dict[str, Any] = {}

    def aliased(self, round_index: int) -> bool:
        """Whether this round trains one aliased pool (from the second round, with alias_shared)."""
        return bool(self.options.alias_shared) and round_index > 0

    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        weights = [float(u.n_samples) for u in updates]
        rest = [{k: v for k, v in u.state.items() if k != POOL_KEY} for u in updates]
        out = weighted_mean(rest, weights) if rest[0] else {}
        pools = [u.state[POOL_KEY] for u in updates]
        if self.aliased(round_index):  # one pool trained in turn: the matcher sees copies of the last
            pools = [pools[-1]] * len(pools)
        usages = [u.meta.get("usage") for u in updates]
        out[POOL_KEY] = self.aggregate_pool(pools, usages, weights, seed, start=global_state.get(POOL_KEY))
        return out

    def aggregate_pool(
        self,
        pools: list[torch.Tensor],
        usages: list,
        weights: list[float],
        seed: int,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The new pool [m', d] from the clients' pools (all [M, d], the round's global size);
        ``start``: the round's global pool they began from (needed by ``new_centre="drift"``)."""
        opts = self.options
        size = pools[0].shape[0]
        if any(p.shape != pools[0].shape for p in pools):
            raise ValueError(
                f"PPT: clients returned pools of shapes {sorted({tuple(p.shape) for p in pools})}"
            )
        union = used_rows(usages, size)
        if not union:  # no client retrieved anything (cannot happen with kappa >= 1): keep the pool
            union = list(range(size))
        local = [p.detach().cpu()[union] for p in pools]
        measured = self.drift_radius(pools, usages, start) if opts.new_centre == "drift" else None
        centres, result = opts.matched_centres(local, weights, seed, radius=measured)
        m = centres.shape[0]
        if m < opts.kappa:
            dropped = [i for i in range(size) if i not in set(union)]
            filler = weighted_mean([{"p": p.detach().cpu()[dropped + union]} for p in pools], weights)["p"]
            centres = torch.cat([centres, filler[: opts.kappa - m].double()], 0)
        self._meta = {"pool_size": int(centres.shape[0]), "pool_used": len(union)}
        radius = getattr(result, "merge_radius", None)  # the calibrated price's scale, with "auto"
        if radius is not None:
            self._meta["merge_radius"] = float(radius)
        return centres.to(pools[0].dtype)

    @staticmethod
    def drift_radius(pools: list[torch.Tensor], usages: list, start: torch.Tensor | None) -> float | None:
        """The merge radius from each client's updates to the rows it used (every row where it
        reported no usage); None without a start pool or when nothing moved."""
        if start is None:
            return None
        base = start.detach().cpu().double()
        rows = [used_rows([usage], base.shape[0]) for usage in usages]
        return update_radius(
            [p.detach().cpu().double()[r] - base[r] for p, r in zip(pools, rows, strict=True)]
        )

    def metadata(self) -> dict[str, Any]:
        return dict(self._meta)


class PPTOfficialAggregator(PPTAggregator):
    """``ppt-official``'s server: the same rules, under the cyclic schedule, where the loop hands
    each client the previous client's result. Each client restarts from the global state: all of
    it (round 1, or alias_shared off: independent copies) or all but the aliased pool."""

    cyclic = True

    def configure_fit(
        self, round_index: int, clients: list[int], global_state: State
    ) -> dict[int, dict[str, Any]]:
        start = (
            {k: v for k, v in global_state.items() if k != POOL_KEY}
            if self.aliased(round_index)
            else global_state
        )
        return {c: {"start": start} for c in clients}
