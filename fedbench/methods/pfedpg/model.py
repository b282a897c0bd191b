"""pFedPG's client (``Models/pFedPG_model.py:14-95``, ``util/train_eval.py:314-356`` of PFPT):
shallow prompts generated for it by the server, a personal adaptor head, local Adam on both.

Tensors:
- shared: the generator's core (``generator.CORE``), never trained here: the client needs it to
  turn its descriptor into prompts, the server updates it;
- personal: the adaptor head, the client's descriptor row as the server last sent it, and
  ``prompts``, the adapted prompts of its last fit (kept for inspection; scoring uses the
  generated ones).

A fit: the payload's descriptor d_n, P_n = G(d_n) as the starting prompts, local epochs of Adam on
(prompts, head), and the update P_n - P~_n sent as ``meta["delta"]``. Prediction outside training
uses G(d_n) with the current generator and the head, as the code's ``evaluate_pFedPG``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fedbench.methods.base import ClientModule, State
from fedbench.methods.pfedpg.config import PFedPGOptions
from fedbench.methods.pfedpg.generator import CORE, PromptGenerator, generate
from fedbench.methods.ppt.prompted import (
    AdaptorHead,
    adaptor_input,
    adaptor_width,
    pfpt_adam,
    prompted_readout,
    visible_tokens,
)

PERSONAL = ("head.", "descriptor", "prompts")


class PFedPGModule(ClientModule):
    """Generated shallow prompts + personal adaptor head; see the module docstring."""

    def __init__(self, backbone, num_classes, train, options: PFedPGOptions):
        super().__init__(backbone, num_classes, train, options)
        h = backbone.hidden_size
        self.generator = PromptGenerator(options.n_tokens, h, options.key_dim)
        self.descriptor = nn.Parameter(torch.empty(h).uniform_(-1.0, 1.0))
        with torch.no_grad():
            self.prompts = nn.Parameter(self.generator(self.descriptor))
        self.head = AdaptorHead(
            adaptor_width(backbone), num_classes, options.adaptor_width, options.adaptor_dropout
        )
        self._start: torch.Tensor | None = None

    def personal_names(self) -> set[str]:
        return {n for n, p in self.named_parameters() if p.requires_grad and n.startswith(PERSONAL)}

    def core(self) -> dict[str, torch.Tensor]:
        params = dict(self.generator.named_parameters())
        return {k: params[k] for k in CORE}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens, keep = visible_tokens(self.backbone, batch)
        if self.training:
            prompts = self.prompts
        else:
            with torch.no_grad():
                prompts = generate(self.core(), self.descriptor)
        return self.head(adaptor_input(self.backbone, prompted_readout(self.backbone, tokens, keep, prompts)))

    # ----- federation hooks -----------------------------------------------------------------------
    def on_round_start(
        self, global_state: State, round_index: int, payload: dict[str, Any] | None = None
    ) -> None:
        """Take the descriptor the server sent and start from the prompts it generates."""
        with torch.no_grad():
            if payload and "descriptor" in payload:
                self.descriptor.copy_(payload["descriptor"].to(self.descriptor.device))
            start = generate(self.core(), self.descriptor)
            self.prompts.copy_(start)
        self._start = start.detach().clone()

    def round_metadata(self) -> dict[str, Any]:
        delta = (self._start - self.prompts.detach()).cpu() if self._start is not None else None
        return {} if delta is None else {"delta": delta}

    def configure_optimizers(self):
        """PFPT's Adam (0.9, 0.98, 1e-6) at train.lr on the prompts and the head (the generator and
        the descriptor are the server's to update)."""
        trained = nn.ParameterList([self.prompts, *self.head.parameters()])
        return pfpt_adam(trained, self.lr)
