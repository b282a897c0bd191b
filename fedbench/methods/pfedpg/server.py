"""pFedPG's server: the descriptor table, the generator's Adam, and its hypernetwork update.

The generator's core tensors travel as the global state (clients turn their descriptor into
prompts with them); the descriptor table and the Adam moments are the server's state,
checkpointed with the round. Each fit gets its client's descriptor row as its payload.
"""

from __future__ import annotations

from typing import Any

import torch

from fedbench.errors import ConfigError
from fedbench.methods.base import Aggregator, ClientUpdate, State
from fedbench.methods.pfedpg.config import PFedPGOptions
from fedbench.methods.pfedpg.generator import CORE, DESCRIPTORS, adam_step, generator_gradients
from fedbench.seeds import derive_seed

_ADAM = "adam/"


class PFedPGAggregator(Aggregator):
    """Keeps the descriptor table and the generator's Adam; see the module docstring."""

    def __init__(self, options: PFedPGOptions, context=None):
        super().__init__(options, context)
        self.n_clients = int(getattr(context, "n_clients", 0) or 0)
        if self.n_clients < 1:
            raise ConfigError(
                "pfedpg needs the federation's client count for its descriptor table (a server context with "
                "n_clients)"
            )
        self.table: torch.Tensor | None = None  # [n_clients, H], created from the global state's width
        self.adam: dict[str, torch.Tensor] = {}
        self.seed = int(getattr(context, "seed", 0))
        self._meta: dict[str, Any] = {}

    def _table(self, global_state: State) -> torch.Tensor:
        if self.table is None:  # U(-1, 1), as the code's nn.init.uniform_(descriptor.weight, -1, 1)
            width = global_state["generator.base_prompts"].shape[-1]
            gen = torch.Generator().manual_seed(derive_seed(self.seed, "pfedpg-descriptors"))
            self.table = torch.rand(self.n_clients, width, generator=gen, dtype=torch.float32) * 2 - 1
        return self.table

    def configure_fit(
        self, round_index: int, clients: list[int], global_state: State
    ) -> dict[int, dict[str, Any]]:
        table = self._table(global_state)
        return {c: {"descriptor": table[c].clone()} for c in clients}

    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        table = self._table(global_state)
        start = {k: global_state[f"generator.{k}"].detach().cpu().float() for k in CORE}
        grads = [
            generator_gradients(start, table, u.client_id, u.meta["delta"].float())
            for u in updates
            if "delta" in u.meta
        ]
        params = {**{k: v.clone() for k, v in start.items()}, DESCRIPTORS: table}
        adam = {k[len(_ADAM) :]: v for k, v in self.adam.items()}
        if self.options.generator_update == "mean" and grads:
            grads = [{k: torch.stack([g[k] for g in grads]).mean(0) for k in grads[0]}]
        for g in grads:
            adam_step(params, g, adam, self.options.prompt_lr)
        self.adam = {_ADAM + k: v for k, v in adam.items()}
        self.table = params[DESCRIPTORS]
        moved = sum(float((params[k] - start[k]).pow(2).sum()) for k in CORE) ** 0.5
        self._meta = {"generator_steps": len(grads), "generator_step_norm": moved}
        out = dict(global_state)
        out.update({f"generator.{k}": params[k].to(global_state[f"generator.{k}"].dtype) for k in CORE})
        return out

    def server_state(self) -> State:
        return {} if self.table is None else {DESCRIPTORS: self.table, **self.adam}

    def load_server_state(self, state: State) -> None:
        if state:
            self.table = state[DESCRIPTORS]
            self.adam = {k: v for k, v in state.items() if k.startswith(_ADAM)}

    def metadata(self) -> dict[str, Any]:
        return dict(self._meta)
