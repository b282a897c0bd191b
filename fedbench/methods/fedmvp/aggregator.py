"""FedMVP's server: prepares features and completion before federation, then aggregates each
round with CKA-graph weights (methods.md §4c), or with FedAvg's sample counts for
``fedmvp-fedavg`` (``use_cka=False``), which isolates what the CKA weighting changes.

The server compares the uploaded networks on the held-out rows (the retrieval pool: rows no
client, validation or test split holds; the paper uses generated image-text pairs), complete,
in eval mode. The weights w_i = g_i / sum_k g_k with g_i = sum_j CKA_ij ignore sample counts, as
the official code; a client whose representation is constant (collapsed) gets CKA 0 with every
other client. The similarity matrix and the weights are recorded every round, with the
completion's quality.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fedbench.aggregation.weighted import weighted_mean
from fedbench.errors import ConfigError
from fedbench.methods.base import Aggregator, ClientUpdate, ServerContext, State
from fedbench.methods.fedmvp.client import PREFIX, network_for
from fedbench.methods.fedmvp.config import FedMVPOptions
from fedbench.methods.fedmvp.prepare import prepare
from fedbench.methods.fedmvp.server import cka_aggregate

__all__ = ["FedMVPAggregator"]


def _strip(state: State) -> State:
    return {k[len(PREFIX) :] if k.startswith(PREFIX) else k: v for k, v in state.items()}


def _prefix(state: State) -> State:
    return {PREFIX + k: v for k, v in state.items()}


class FedMVPAggregator(Aggregator):
    """CKA-graph aggregation of every trainable tensor (or sample-count FedAvg)."""

    def __init__(self, options: FedMVPOptions, context: ServerContext | None = None):
        super().__init__(options, context)
        if context is None:
            raise ConfigError(
                "method.name: fedmvp's server needs the server context (backbone and held-out data)"
            )
        self.prepared = prepare(context.backbone, context.bundle, context.public, options, context.seed)
        self.device = torch.device(context.device)
        self.network = network_for(context.backbone, context.bundle.num_classes, options).to(self.device)
        rows = torch.as_tensor(self.prepared.server_rows, dtype=torch.long)
        self.server_inputs = self.prepared.inputs(rows, torch.zeros_like(rows), self.device)  # complete pairs
        self.last: dict[str, Any] = {}

    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        states = [_strip(u.state) for u in updates]
        if self.options.use_cka:
            state, weights, sim = cka_aggregate(
                self.network, states, self.server_inputs, self.options.cka_representation, undefined=0.0
            )
            self.last = {"cka": np.round(sim, 4).tolist()}
        else:
            counts = [float(u.meta.get("n_trained", u.n_samples)) for u in updates]
            if sum(counts) <= 0:  # no client trained on anything (only possible under completer=none)
                counts = [1.0] * len(updates)
            state, weights = weighted_mean(states, counts), np.asarray(counts) / sum(counts)
            self.last = {}
        self.last["aggregation_weights"] = [round(float(w), 4) for w in weights]
        for part in ("mcm", "ram"):  # the clients' mean auxiliary losses, to see them act
            values = [u.meta[f"mean_{part}"] for u in updates if f"mean_{part}" in u.meta]
            if values:
                self.last[f"mean_{part}"] = round(float(np.mean(values)), 5)
        return _prefix(state)

    def metadata(self) -> dict[str, Any]:
        """Per round: the completion's quality (the same every round), the weights, with CKA the
        similarity matrix of the round's clients (in the order of the round's client list), and
        the clients' mean MCM and RAM losses."""
        return {"completion": dict(self.prepared.quality), **self.last}
