"""FedProx (Li et al. 2020) over missing-aware prompts: FedAvg's server plus a proximal term.

The client minimises F_k(w) + (mu / 2) * ||w - w_global||^2 over its shared trainable tensors,
so its gradient gains mu * (w - w_global). This is the MAP + FedProx reading of the FED-PRIME
paper's FEDPROX-P (its released code's variant is FED-PRIME + prox with mu = 0; see
reference/methods.md risk 10).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fedbench import checks
from fedbench.methods.base import State
from fedbench.methods.fedavg import FedAvgAggregator
from fedbench.methods.map_prompts import MAP_NOTES, MAPOptions, MissingAwarePromptModule
from fedbench.methods.registry import MethodSpec, register


@dataclass
class FedProxOptions(MAPOptions):
    mu: float = 0.01

    def validate(self) -> None:
        super().validate()
        checks.at_least("method.options.mu", self.mu, 0, "0.01")


def proximal_term(params: dict[str, torch.Tensor], anchor: State, mu: float) -> torch.Tensor:
    """(mu / 2) * sum over shared tensors of ||w - w_global||^2."""
    total = sum(((params[k] - anchor[k].to(params[k].device)) ** 2).sum() for k in anchor)
    return 0.5 * mu * total


class ProximalAnchor:
    """The state a client's round is pulled towards (a detached copy) and the pull itself: every
    proximal method (FedProx, FedProx-PT, FedMSplit) keeps one of these."""

    def __init__(self) -> None:
        self.state: State = {}

    def set(self, state: State | None) -> None:
        """Anchor at ``state`` (None or empty: no pull this round)."""
        self.state = {k: v.detach().clone() for k, v in state.items()} if state else {}

    def loss(self, module: torch.nn.Module, mu: float) -> torch.Tensor | None:
        """(mu / 2) ||w - anchor||^2 over the anchored tensors of ``module``; None when there is none."""
        if not self.state or mu == 0:
            return None
        return proximal_term(dict(module.named_parameters()), self.state, mu)


class FedProxModule(MissingAwarePromptModule):
    def __init__(self, backbone, num_classes, train, options: FedProxOptions):
        super().__init__(backbone, num_classes, train, options)
        self.anchor = ProximalAnchor()

    def on_round_start(self, global_state: State, round_index: int, payload=None) -> None:
        self.anchor.set(global_state)

    def extra_loss(self, batch, logits):
        return self.anchor.loss(self, self.options.mu)


SPEC = register(
    MethodSpec(
        name="fedprox",
        client=FedProxModule,
        aggregator=FedAvgAggregator,
        options=FedProxOptions,
        description="FedAvg server; clients add (mu/2)||w - w_global||^2 over prompts, pooler and head",
        notes=MAP_NOTES.replace(
            "FedAvg of every shared tensor by sample count.",
            "FedAvg of every shared tensor by "
            "sample count; clients add (mu/2)||w - w_global||^2 over them, mu 0.01.",
        ),
    )
)
