"""FedMVP's server step (methods.md §4c): run every uploaded client network on the server's own
split, compare the clients pairwise with linear CKA, and average their states with the graph
weights w_i = g_i / sum_k g_k, g_i = sum_j S_ij.

The server needs a network of the clients' layout (to load each state into) and the frozen
features of a server-held split that no client holds (the paper uses generated image-text pairs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from fedbench.aggregation.cka import cka_matrix, graph_weights
from fedbench.aggregation.weighted import weighted_mean
from fedbench.methods.fedmvp.network import FedMVPNetwork

__all__ = ["cka_aggregate", "client_representations"]


@torch.no_grad()
def client_representations(
    network: FedMVPNetwork,
    states: Sequence[Mapping[str, Tensor]],
    inputs: Mapping[str, Tensor],
    kind: str | None = None,
    batch_size: int = 256,
) -> list[Tensor]:
    """Each state's representation [N, r] of the server split, in eval mode (no dropout).

    ``inputs`` holds the keyword arguments of :meth:`FedMVPNetwork.forward` for all N server
    samples (``text``, ``image`` and optionally token sequences and padding masks). ``states``
    may hold the trainable tensors only; the network's own values are restored afterwards.
    """
    saved = {k: v.detach().clone() for k, v in network.state_dict().items()}
    was_training = network.training
    network.eval()
    n = inputs["text"].shape[0]
    out: list[Tensor] = []
    try:
        for state in states:
            unexpected = network.load_state_dict(state, strict=False).unexpected_keys
            if unexpected:
                raise ValueError(
                    f"client_representations: state has keys the network lacks: {unexpected[:3]}"
                )
            reps = []
            for start in range(0, n, batch_size):
                chunk = {k: v[start : start + batch_size] for k, v in inputs.items()}
                reps.append(network.representation(network(**chunk), kind).float().cpu())
            out.append(torch.cat(reps))
    finally:
        network.load_state_dict(saved)
        network.train(was_training)
    return out


def cka_aggregate(
    network: FedMVPNetwork,
    states: Sequence[Mapping[str, Tensor]],
    inputs: Mapping[str, Tensor],
    kind: str | None = None,
    undefined: float | None = 0.0,
) -> tuple[dict[str, Tensor], np.ndarray, np.ndarray]:
    """(global state, weights [K], similarity S [K, K]): sum_i w_i * state_i with CKA-graph weights.

    ``undefined`` is S_ij for a client whose representation is constant on the server split
    (CKA undefined); 0.0 leaves it only its own S_ii = 1 of weight. None raises instead.
    """
    if len(states) == 0:
        raise ValueError("cka_aggregate: no client states")
    sim = cka_matrix(client_representations(network, states, inputs, kind), undefined=undefined)
    weights = graph_weights(sim)
    return weighted_mean(states, weights.tolist()), weights, sim
