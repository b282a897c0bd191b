"""Linear CKA and FedMVP's CKA-graph aggregation weights (methods.md §4c).

FedMVP's server runs every uploaded client model on a small shared server set, compares the
representations of every pair of clients with linear CKA, and weights each client by how similar
it is to all the others (its degree in the similarity graph), so representationally central
clients count more than outliers. Rows are L2-normalised before centring, as in the FedMVP code,
which makes the score independent of each sample's feature norm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["cka_weights", "linear_cka"]


def _normalise_and_centre(x: Tensor, name: str) -> Tensor:
    """Rows scaled to unit L2 norm (float64), then each column minus its mean."""
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"linear_cka: {name} must be [N >= 2, features], got shape {tuple(x.shape)}")
    x = x.detach().to(torch.float64)
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


def cka_weights(features: Sequence[Tensor]) -> np.ndarray:
    """Aggregation weights from the CKA graph: S_ij = CKA(f_i, f_j), g_i = sum_j S_ij, w = g / sum g.

    ``features[k]`` is client k's representation [N, p_k] of the same N server samples. S_ii = 1 by
    definition. CKA is non-negative, so the weights are non-negative and sum to 1.
    """
    if len(features) == 0:
        raise ValueError("cka_weights: no client features")
    k = len(features)
    sim = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            sim[i, j] = sim[j, i] = linear_cka(features[i], features[j])
    degree = sim.sum(axis=1)
    return degree / degree.sum()
