"""Local-only training: every client keeps its own prompts, pooler and head; nothing is averaged.

Reported metrics average the clients' own models (on the global test set, and personalized:
weighted by each client's label distribution)."""

from __future__ import annotations

from fedbench.methods.base import Aggregator, ClientUpdate, State
from fedbench.methods.map_prompts import MAPOptions, MissingAwarePromptModule
from fedbench.methods.registry import MethodSpec, register


class LocalModule(MissingAwarePromptModule):
    def personal_names(self) -> set[str]:  # every tensor stays on its client
        return {n for n, p in self.named_parameters() if p.requires_grad}


class NoAggregation(Aggregator):
    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        return global_state


SPEC = register(
    MethodSpec(
        name="local",
        client=LocalModule,
        aggregator=NoAggregation,
        options=MAPOptions,
        description="each client trains missing-aware prompts on its own data only",
        personalized=True,
        local_only=True,
    )
)
