"""Linear CKA and FedMVP's CKA-graph aggregation weights (methods.md §4c).

FedMVP's server runs every uploaded client model on a small shared server set, compares the
representations of every pair of clients with linear CKA, and weights each client by how similar
it is to all the others (its degree in the similarity graph), so representationally central
clients count more than outliers. Rows are L2-normalised before centring, as in the FedMVP code,
which makes the score independent of each sample's feature norm.

The official server (``utils/Fed.py``) is followed formula for formula: representations flattened
to [N, -1], rows normalised, columns centred, S_ii = 1, g_i = sum_j S_ij, w_i = g_i / sum_k g_k.
Its call sites do not run (mismatched signatures), so which representation the server compares
is the method's choice, not this module's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["cka_matrix", "cka_weights", "graph_weights", "linear_cka"]


def _normalise_and_centre(x: Tensor, name: str) -> Tensor:
    """Flattened to [N, -1], rows scaled to unit L2 norm (float64), then each column minus its mean."""
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"linear_cka: {name} must be [N >= 2, features...], got shape {tuple(x.shape)}")
    x = x.detach().to(torch.float64).reshape(x.shape[0], -1)
    norms = x.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        raise ValueError(f"linear_cka: {name} has an all-zero row, which cannot be L2-normalised")
    x = x / norms
    centred = x - x.mean(dim=0, keepdim=True)
    # Rows have unit norm, so a centred norm at rounding level means every row is the same.
    if centred.norm() <= 1e-10 * x.shape[0] ** 0.5:
        raise ValueError(f"linear_cka: {name} is constant across samples; CKA is undefined")
    return centred


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA between two representations of the same N samples, x [N, p] and y [N, q].

    CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), which equals
    tr(Kx Ky) / sqrt(tr(Kx Kx) tr(Ky Ky)) with K = Xc Xc^T but costs p x q instead of N x N
    products, so a large server set stays cheap. Raises ValueError when either representation is
    the same for every sample (its centred matrix is zero and CKA is undefined).
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka: x has {x.shape[0]} samples but y has {y.shape[0]}")
    xc, yc = _normalise_and_centre(x, "x"), _normalise_and_centre(y, "y")
    denom = torch.linalg.matrix_norm(xc.T @ xc) * torch.linalg.matrix_norm(yc.T @ yc)
    return float(torch.linalg.matrix_norm(yc.T @ xc) ** 2 / denom)


def cka_matrix(features: Sequence[Tensor], undefined: float | None = None) -> np.ndarray:
    """S [K, K] with S_ij = CKA(f_i, f_j) and S_ii = 1, for client representations
    ``features[k]`` [N, ...] of the same N server samples (symmetric, computed once per pair).

    A client whose representation is constant over the server set (a collapsed model) makes CKA
    undefined: ValueError by default, or S_ij = ``undefined`` (e.g. 0.0, so it earns no weight
    from the others) when given.
    """
    if len(features) == 0:
        raise ValueError("cka_matrix: no client features")
    k = len(features)
    sim = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            try:
                sim[i, j] = sim[j, i] = linear_cka(features[i], features[j])
            except ValueError:
                if undefined is None or features[i].shape[0] != features[j].shape[0]:
                    raise
                sim[i, j] = sim[j, i] = undefined
    return sim


def graph_weights(similarity: np.ndarray | Tensor) -> np.ndarray:
    """Graph importance g_i = sum_j S_ij (row sums), normalised: w_i = g_i / sum_k g_k.

    S must be square with finite, non-negative entries (linear CKA of real matrices is in
    [0, 1]) and a positive total.
    """
    sim = np.asarray(
        similarity.detach().cpu() if isinstance(similarity, Tensor) else similarity, dtype=np.float64
    )
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] == 0:
        raise ValueError(f"graph_weights: need a non-empty square similarity matrix, got shape {sim.shape}")
    if not np.isfinite(sim).all() or (sim < 0).any():
        raise ValueError("graph_weights: similarities must be finite and >= 0")
    degree = sim.sum(axis=1)
    if degree.sum() <= 0:
        raise ValueError("graph_weights: the similarities sum to 0; the weights are undefined")
    return degree / degree.sum()


def cka_weights(features: Sequence[Tensor]) -> np.ndarray:
    """Aggregation weights from the CKA graph: S_ij = CKA(f_i, f_j), g_i = sum_j S_ij, w = g / sum g.

    ``features[k]`` is client k's representation [N, p_k] of the same N server samples. S_ii = 1 by
    definition. CKA is non-negative, so the weights are non-negative and sum to 1.
    """
    if len(features) == 0:
        raise ValueError("cka_weights: no client features")
    return graph_weights(cka_matrix(features))
