"""FedPrime's client model (methods.md §2a-b) and its one-pool ablations FED-INTER and FED-INTRA.

Each pool is a prompt matrix [M, H] (the keys are the prompts themselves, as in the code) plus
its own query projection Linear(H, H, no bias). The projections are personal: the federation
keeps them on the client and never sends them (risk 2), and the global model is scored with the
clients' sample-weighted mean projection (the loop's rule for personal tensors).

Retrieved prompts of every pool ([intra kappa ; inter kappa] tokens) are prepended once, before
layer 0, with keep mask 1. The pooler reads position 0 (the first, most similar intra prompt,
as the official code) or, with ``pool_token="cls"``, the text [CLS] behind the prompts.

Initialisation as the official ``Pool``: prompts U(-v, v) with v = sqrt(6 / (3*32*32 + H)), the
Xavier bound of ViLT's 32x32 RGB patch projection with the width H of this backbone (0.0395 at
H = 768, 0.0417 at H = 384); query projections U(-1, 1). The queries are normalised, so the
projection's scale only sets how fast an optimiser turns it.

Retrieval indices are discrete, so the cross-entropy trains the retrieved prompts (through the
backbone), the pooler and the head; the query projections learn only from the regulariser.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fedbench.errors import ConfigError
from fedbench.methods.base import ClientModule
from fedbench.methods.fedprime.config import FedPrimeOptions
from fedbench.methods.fedprime.retrieval import masked_token_max, retrieval_regulariser, select, similarity
from fedbench.methods.heads import ClassifierHead, Pooler

INTRA, INTER = "intra", "inter"


def prompt_init_bound(hidden: int) -> float:
    """v of the U(-v, v) prompt init; see the module docstring."""
    return math.sqrt(6.0 / (3 * 32 * 32 + hidden))


class FedPrimeModule(ClientModule):
    """Intra- and inter-client prompt pools with input-adaptive retrieval."""

    pools: tuple[str, ...] = (INTRA, INTER)

    def __init__(self, backbone, num_classes, train, options: FedPrimeOptions):
        super().__init__(backbone, num_classes, train, options)
        h, v = backbone.hidden_size, prompt_init_bound(backbone.hidden_size)
        for name in self.pools:
            self.register_parameter(
                f"{name}_pool", nn.Parameter(torch.empty(options.pool_size, h).uniform_(-v, v))
            )
            query = nn.Linear(h, h, bias=False)
            nn.init.uniform_(query.weight, -1.0, 1.0)
            self.add_module(f"{name}_query", query)
        self.pooler = Pooler(h, backbone.pooler_state())
        self.head = ClassifierHead(h, num_classes)
        self._used: dict[str, set[int]] = {name: set() for name in self.pools}
        self._reg: torch.Tensor | None = None

    def personal_names(self) -> set[str]:
        """The query projections stay on their client (risk 2); pools, pooler and head are shared."""
        return {f"{name}_query.{p}" for name in self.pools for p, _ in getattr(self, f"{name}_query").named_parameters()}

    @property
    def batch_independent(self) -> bool:  # batch-wise majority selection couples a batch's samples
        return self.options.selection != "batch"

    # ----- retrieval --------------------------------------------------------------------------
    def retrieve(
        self, tokens: torch.Tensor, keep: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(prompts [B, n_pools * kappa, H], regulariser, retrieved indices per pool)."""
        opts = self.options
        pooled = masked_token_max(tokens.detach(), keep)
        chosen, indices, reg = [], {}, tokens.new_zeros(())
        for name in self.pools:
            pool: torch.Tensor = getattr(self, f"{name}_pool")
            if pool.shape[0] < opts.kappa:
                raise ConfigError(
                    f"the {name} pool holds {pool.shape[0]} prompts, fewer than kappa={opts.kappa}"
                )
            query = getattr(self, f"{name}_query")(pooled.to(pool.dtype))
            sim = similarity(query, pool)
            idx = select(sim, opts.kappa, opts.selection)
            chosen.append(pool[idx])
            indices[name] = idx
            reg = reg + retrieval_regulariser(
                sim.float(), idx, opts.kappa, opts.lambda_r, opts.retrieval_sign
            )
        return torch.cat(chosen, dim=1), reg, indices

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens, keep = self.backbone.embed(batch)
        prompts, reg, indices = self.retrieve(tokens, keep)
        if self.training:  # used-prompt bookkeeping and the loss term belong to local training only
            self._reg = reg
            for name, idx in indices.items():
                self._used[name].update(idx.unique().tolist())

        def prompter(i: int, x: torch.Tensor, k: torch.Tensor):
            if i != 0:
                return x, k
            ones = torch.ones(prompts.shape[:2], dtype=torch.bool, device=k.device)
            return torch.cat([prompts.to(x.dtype), x], 1), torch.cat([ones, k], 1)

        hidden = self.backbone.run_layers(tokens, keep, prompter)
        if self.options.pool_token == "prompt":  # the first retrieved prompt, as the official code
            return self.head(self.pooler(hidden[:, 0]))
        return self.head(self.pooler(self.backbone.readout(hidden, prompts.shape[1])))

    # ----- federation hooks -------------------------------------------------------------------
    def extra_loss(self, batch, logits):
        reg, self._reg = self._reg, None
        return reg if self.options.lambda_r > 0 else None

    def on_round_start(self, global_state, round_index: int, payload=None) -> None:
        """The used-prompt record covers every local batch of one round (PFPT's rule; FedPrime's
        code kept only the last batch, risk 6)."""
        self._used = {name: set() for name in self.pools}
        self._reg = None

    def round_metadata(self) -> dict[str, list[int]]:
        return {f"used_{name}": sorted(self._used[name]) for name in self.pools}


class FedInterModule(FedPrimeModule):
    """FED-INTER: the inter-client pool alone (kappa prompts), aggregated by clustering."""

    pools = (INTER,)


class FedIntraModule(FedPrimeModule):
    """FED-INTRA: the intra-client pool alone (kappa prompts), aggregated by FedAvg."""

    pools = (INTRA,)
