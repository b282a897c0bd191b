"""FedAvg (McMahan et al. 2017) over missing-aware prompts, pooler and head (FEDAVG-P)."""

from __future__ import annotations

from fedbench.aggregation.weighted import weighted_mean
from fedbench.methods.base import Aggregator, ClientUpdate, State
from fedbench.methods.map_prompts import MAP_NOTES, MAPOptions, MissingAwarePromptModule
from fedbench.methods.registry import MethodSpec, register


class FedAvgAggregator(Aggregator):
    """w <- sum_k n_k w_k / sum_k n_k over every shared tensor."""

    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        return weighted_mean([u.state for u in updates], [u.n_samples for u in updates])


SPEC = register(
    MethodSpec(
        name="fedavg",
        client=MissingAwarePromptModule,
        aggregator=FedAvgAggregator,
        options=MAPOptions,
        description="FedAvg of missing-aware prompts, pooler and head, weighted by sample count",
        notes=MAP_NOTES,
    )
)
