"""The client model of PPT's baselines: shallow VPT on the frozen backbone (PFPT's
``Prompted_ViT_B32``, methods.md §3a), and the small client-side variants of FedProx and FedOpt.

Ten prompt tokens [n_tokens, H], U(-v, v) as PFPT, are prepended before layer 0 for every sample;
the adaptor head reads the [CLS] behind them. Trainable and shared: prompts and head. Local
optimiser: PFPT's Adam (betas 0.9/0.98, eps 1e-6, no weight decay).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fedbench import checks
from fedbench.methods.base import ClientModule, State
from fedbench.methods.fedprox import ProximalAnchor
from fedbench.methods.ppt.prompted import (
    AdaptorHead,
    adaptor_input,
    adaptor_width,
    pfpt_adam,
    prompt_init_bound,
    prompted_readout,
    visible_tokens,
)

PROMPTS_KEY = "prompts"


@dataclass
class VPTOptions:
    """n_tokens: shallow prompt tokens (PFPT 10; 0: no prompts, the adaptor head alone on the frozen
    read-out, the probe of what the prompts add); adaptor_width, adaptor_dropout: the head (512, 0.5)."""

    n_tokens: int = 10
    adaptor_width: int = 512
    adaptor_dropout: float = 0.5

    TEST_OPTIONS = {"n_tokens": 2, "adaptor_width": 16}

    def validate(self) -> None:
        checks.at_least("method.options.n_tokens", self.n_tokens, 0, "10")
        checks.at_least("method.options.adaptor_width", self.adaptor_width, 1, "512")
        checks.within(
            "method.options.adaptor_dropout", self.adaptor_dropout, 0.0, 1.0, open_hi=True, hint="0.5"
        )


class VPTModule(ClientModule):
    """Shallow VPT + adaptor head (FedAvg-PT's client)."""

    def __init__(self, backbone, num_classes, train, options: VPTOptions):
        super().__init__(backbone, num_classes, train, options)
        h = backbone.hidden_size
        v = prompt_init_bound(h)
        self.prompts = nn.Parameter(torch.empty(options.n_tokens, h).uniform_(-v, v))
        self.head = AdaptorHead(
            adaptor_width(backbone), num_classes, options.adaptor_width, options.adaptor_dropout
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens, keep = visible_tokens(self.backbone, batch)
        return self.head(
            adaptor_input(self.backbone, prompted_readout(self.backbone, tokens, keep, self.prompts))
        )

    def configure_optimizers(self):
        return pfpt_adam(self, self.lr)


@dataclass
class FedProxPTOptions(VPTOptions):
    """mu: proximal weight (PFPT 1e-3); prox_from_round: first round (1-based) with the term
    (PFPT: from round 2, ``comm_round > 0``, since round 1 starts from the same init everywhere)."""

    mu: float = 1e-3
    prox_from_round: int = 2

    def validate(self) -> None:
        super().validate()
        checks.at_least("method.options.mu", self.mu, 0, "1e-3")
        checks.at_least("method.options.prox_from_round", self.prox_from_round, 1, "2")


class FedProxVPTModule(VPTModule):
    """FedProx-PT: + (mu / 2) ||w - w_global||^2 over prompts and head, from ``prox_from_round``."""

    def __init__(self, backbone, num_classes, train, options: FedProxPTOptions):
        super().__init__(backbone, num_classes, train, options)
        self.anchor = ProximalAnchor()

    def on_round_start(self, global_state: State, round_index: int, payload=None) -> None:
        self.anchor.set(global_state if round_index + 1 >= self.options.prox_from_round else None)

    def extra_loss(self, batch, logits):
        return self.anchor.loss(self, self.options.mu)


class FedOptVPTModule(VPTModule):
    """FedOpt-PT's client: plain local training, starting from the payload's ``start`` state when
    the server sends one (``client_start="mean"``, the code's behaviour: clients continue from the
    plain weighted mean while only the server model takes Adam steps)."""

    def on_round_start(self, global_state: State, round_index: int, payload=None) -> None:
        start = (payload or {}).get("start")
        if start:
            self.load_trainable_state(start)
