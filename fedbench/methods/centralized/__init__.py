"""Centralized training on the pooled client data: the upper bound (CENTRALIZED-P).

Implemented as one client holding every training sample, as the FED-PRIME code does; a round is
then one pass over the pooled data."""

from __future__ import annotations

from fedbench.methods.fedavg import FedAvgAggregator
from fedbench.methods.map_prompts import MAPOptions, MissingAwarePromptModule
from fedbench.methods.registry import MethodSpec, register

SPEC = register(
    MethodSpec(
        name="centralized",
        client=MissingAwarePromptModule,
        aggregator=FedAvgAggregator,
        options=MAPOptions,
        description="missing-aware prompts trained on all clients' data pooled (upper bound)",
        centralized=True,
    )
)
