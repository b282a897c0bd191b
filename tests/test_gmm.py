"""GMM-PT aggregation on planted prompt clusters, checked against the true centres and the conjugate
posterior."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from fedbench.aggregation.gmm import gmm_prompts


def planted(n_clients=8, n_tokens=10, d=16, n_clusters=4, noise=0.05, seed=0, probs=None):
    """Client prompts whose tokens are noisy copies of well-separated centres; also their cluster ids."""
    gen = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn(n_clusters, d, generator=gen, dtype=torch.float64)
    probs = torch.full((n_clusters,), 1.0 / n_clusters) if probs is None else torch.tensor(probs)
    clients, labels = [], []
    for _ in range(n_clients):
        ids = torch.multinomial(probs, n_tokens, replacement=True, generator=gen)
        clients.append(centres[ids] + noise * torch.randn(n_tokens, d, generator=gen, dtype=torch.float64))
        labels.append(ids)
    return clients, torch.cat(labels), centres


def match(found, centres):
    """One-to-one pairing of returned prompts with true centres, minimising total distance."""
    dist = torch.cdist(found.double(), centres)
    rows, cols = linear_sum_assignment(dist.numpy())
    return rows, cols, dist[rows, cols]


def test_recovers_planted_centres():
    clients, labels, centres = planted()
    out = gmm_prompts(clients, 4, seed=0)
    assert out.prompts.shape == (4, 16) and out.n_kept == 4 and out.converged
    rows, cols, dist = match(out.prompts, centres)
    separation = torch.pdist(centres).min()
    assert dist.max() < 0.1 * separation  # every centre found once, close by

    # The residual is the Bayesian shrinkage, and it is exactly the conjugate posterior mean
    # (prior mean = pooled mean, prior precision scale 1: scikit-learn's defaults):
    # mean_k = (m0 + N_k * xbar_k) / (1 + N_k), with hard assignments for separated clusters.
    tokens = torch.cat(clients)
    m0 = tokens.mean(0)
    for r, c in zip(rows, cols, strict=True):
        members = tokens[labels == c]
        posterior = (m0 + len(members) * members.mean(0)) / (1 + len(members))
        torch.testing.assert_close(out.prompts[r], posterior, rtol=0, atol=1e-8)
    # rows are ordered by mixture weight, and the weights are the cluster shares
    assert torch.all(out.weights[:-1] >= out.weights[1:])
    shares = np.sort(np.bincount(labels.numpy(), minlength=4) / len(labels))[::-1]
    np.testing.assert_allclose(out.weights.numpy(), shares, atol=0.02)


def test_more_tokens_per_cluster_shrink_less():
    clients, _, centres = planted(n_clients=30, n_clusters=3, d=8, seed=3)
    out = gmm_prompts(clients, 3, seed=1, covariance_type="diag")
    _, _, dist = match(out.prompts, centres)
    assert dist.max() < 0.15  # ~100 tokens per cluster: shrinkage ~ |c - m0| / 101


def test_small_components_are_dropped_and_filled_with_the_pooled_mean():
    # Cluster 2 holds about 2% of the tokens.
    clients, labels, centres = planted(n_clients=10, n_clusters=3, d=8, probs=[0.49, 0.49, 0.02], seed=5)
    assert 0 < int((labels == 2).sum()) < 5
    keep_all = gmm_prompts(clients, 3, seed=0)  # PFPT: every component's mean, whatever its weight
    assert keep_all.n_kept == 3
    out = gmm_prompts(clients, 3, seed=0, weight_threshold=0.05)
    assert out.n_kept == 2 and out.weights[2] == 0 and torch.all(out.weights[:2] > 0.4)
    torch.testing.assert_close(out.prompts[2], torch.cat(clients).mean(0))
    _, cols, dist = match(out.prompts[:2], centres)
    assert sorted(cols.tolist()) == [0, 1] and dist.max() < 0.5


def test_more_prompts_than_tokens_and_official_shapes():
    # One client, [1, 3, d] as PFPT stores a shallow prompt, but 5 global prompts asked for.
    gen = torch.Generator().manual_seed(0)
    client = torch.randn(1, 3, 6, generator=gen)
    out = gmm_prompts([client], 5, seed=0)
    assert out.prompts.shape == (5, 6) and out.prompts.dtype == torch.float32
    assert out.n_kept <= 3 and torch.all(out.weights[out.n_kept :] == 0)
    torch.testing.assert_close(out.prompts[-1], client[0].mean(0))


def test_seeded():
    clients, _, _ = planted(n_clients=4, n_clusters=3, d=8, noise=1.0, seed=2)
    a = gmm_prompts(clients, 3, seed=7, n_init=2)
    b = gmm_prompts(clients, 3, seed=7, n_init=2)
    assert torch.equal(a.prompts, b.prompts) and torch.equal(a.weights, b.weights)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"client_prompts": []}, "no client prompts"),
        ({"n_prompts": 0}, "n_prompts"),
        ({"weight_threshold": 1.0}, "weight_threshold"),
        ({"covariance_type": "block"}, "covariance_type"),
        ({"n_init": 0}, "n_init"),
        ({"client_prompts": [torch.zeros(3, 4), torch.zeros(3, 5)]}, "expected"),
        ({"client_prompts": [torch.full((3, 4), float("nan"))]}, "NaN"),
    ],
)
def test_invalid_input_raises_clear_error(kwargs, message):
    args = {"client_prompts": [torch.randn(4, 4)], "n_prompts": 2, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        gmm_prompts(**args)
