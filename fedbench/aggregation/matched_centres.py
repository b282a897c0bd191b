"""The matcher's settings, shared by every method that aggregates prompts by probabilistic matching
(PPT/PFPT's pool, FedPrime's inter pool), and the one function that turns the clients' local
prompts into global centres with them: :func:`match_prompts` (prob_matching.py) priced by the
method's new-centre setting, then each centre either the sample-weighted mean of the local prompts
matched to it (``centre_update="mean"``) or the matcher's own centre (``"matcher"``, the codes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedbench import checks
from fedbench.aggregation.prob_matching import MatchResult, match_prompts

MATCHER_COSTS = ("joint", "official")
CENTRE_UPDATES = ("mean", "matcher")


@dataclass
class MatcherOptions:
    """matcher_cost: "joint" (fedbench's exact joint likelihood) or "official" (the PFPT code's
    Bernoulli term); standardise: match on (x - mean) / rms; centre_update: "mean" or "matcher";
    outer_loops, matcher_hidden, matcher_lr: the matcher's passes, net width and Adam step. A
    method's options class derives from this one and says its new-centre price
    (:meth:`new_centre_price`) in its own fields."""

    matcher_cost: str = "joint"
    standardise: bool = True
    centre_update: str = "mean"
    outer_loops: int = 50
    matcher_hidden: int = 128
    matcher_lr: float = 1e-3

    def new_centre_price(self) -> float | str | None:
        """The price of opening a global prompt in nats per prompt dimension, "auto" (calibrated
        from the prompts' spread, matching_calibration.py) or None (no price)."""
        raise NotImplementedError

    def check_matcher(self) -> None:
        default = type(self)()
        checks.choice("method.options.matcher_cost", self.matcher_cost, MATCHER_COSTS)
        checks.choice("method.options.centre_update", self.centre_update, CENTRE_UPDATES)
        checks.at_least("method.options.outer_loops", self.outer_loops, 1, str(default.outer_loops))
        checks.at_least("method.options.matcher_hidden", self.matcher_hidden, 1, str(default.matcher_hidden))
        checks.positive("method.options.matcher_lr", self.matcher_lr, str(default.matcher_lr))

    def matched_centres(
        self, local: list[torch.Tensor], weights: list[float], seed: int, radius: float | None = None
    ) -> tuple[torch.Tensor, MatchResult]:
        """(global centres [m, d] in float64, the matcher's result) for the clients' local prompts
        (T tensors [n_t, d]) with per-client ``weights``; ``radius``: the merge radius of an "auto"
        price in the prompts' units (None: from their neighbour distances)."""
        d = local[0].shape[-1]
        price = self.new_centre_price()
        result = match_prompts(
            local,
            outer_loops=self.outer_loops,
            hidden=self.matcher_hidden,
            lr=self.matcher_lr,
            seed=seed,
            new_cluster_cost=price if price is None or isinstance(price, str) else float(price) * d,
            cost=self.matcher_cost,
            standardise=self.standardise,
            radius=radius,
        )
        m = result.centres.shape[0]
        if self.centre_update == "mean":
            return centre_means(local, result.assignments, weights, m), result
        return result.centres.double(), result


def centre_means(
    local: list[torch.Tensor], assignments: list[np.ndarray], weights: list[float], m: int
) -> torch.Tensor:
    """[m, d] float64: per centre, the ``weights``-weighted mean of the local rows assigned to it
    (the plain mean where all of a centre's clients weigh 0). local[t]: [n_t, d]; assignments[t][j]:
    the centre of client t's row j."""
    d = local[0].shape[-1]
    sums, totals = torch.zeros(m, d, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
    plain, counts = torch.zeros(m, d, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
    for rows, z, w in zip(local, assignments, weights, strict=True):
        idx = torch.as_tensor(np.asarray(z), dtype=torch.long)
        sums.index_add_(0, idx, float(w) * rows.double())
        totals.index_add_(0, idx, torch.full((len(idx),), float(w), dtype=torch.float64))
        plain.index_add_(0, idx, rows.double())
        counts.index_add_(0, idx, torch.ones(len(idx), dtype=torch.float64))
    weighted = sums / totals.clamp_min(1e-300)[:, None]
    return torch.where((totals > 0)[:, None], weighted, plain / counts.clamp_min(1.0)[:, None])
