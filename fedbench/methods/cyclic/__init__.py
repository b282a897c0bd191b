"""Cyclic training of missing-aware prompts: the sampled clients of a round train the shared
tensors one after another (client t+1 starts from client t's result), and the round's result is
the last client's state.

Why it is on the FedPrime board. The official FedPrime code hands every client the same tensor
objects from round 2 on, so its clients train pooler, head and prompt pools in place, in
sequence, and its server's FedAvg averages N references to one tensor (methods.md §2x). That is
sequential (cyclic, "cyclic weight transfer") training, not FedAvg, and it takes N times as many
sequential steps per round as a parallel method's global model sees. ``cyclic`` is FedAvg-P's
model (MAP prompts, pooler, head, AdamW) under that schedule with no FedPrime parts, so that the
board separates the effect of the schedule from the effect of FedPrime's pools.
"""

from __future__ import annotations

from fedbench.methods.base import Aggregator, ClientUpdate, State
from fedbench.methods.map_prompts import MAPOptions, MissingAwarePromptModule
from fedbench.methods.registry import MethodSpec, register


class ChainEndAggregator(Aggregator):
    """The round's result is the last client's shared state: the end of the chain, and exactly
    what a FedAvg over aliased tensors returns."""

    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        return {k: v.detach().clone() for k, v in updates[-1].state.items()}


SPEC = register(
    MethodSpec(
        name="cyclic",
        client=MissingAwarePromptModule,
        aggregator=ChainEndAggregator,
        options=MAPOptions,
        description="missing-aware prompts, pooler and head trained by the sampled clients one after another",
        notes=(
            "FedAvg-P's model (missing-aware prompts, pooler, head; AdamW) trained cyclically: within a "
            "round client t+1 starts from client t's result, and the round's result is the last client's "
            "(what the official FedPrime code's aliased tensors amount to; docs/fedprime.md)."
        ),
        schedule="cyclic",
    )
)
