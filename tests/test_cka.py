"""Linear CKA and CKA-graph weights, checked against the kernel formula computed here with numpy."""

import numpy as np
import pytest
import torch

from fedbench.aggregation import cka_weights, linear_cka


def _kernel_cka(x: np.ndarray, y: np.ndarray) -> float:
    """tr(Kx Ky) / sqrt(tr(Kx Kx) tr(Ky Ky)) with K = H Xn Xn^T H: the N x N (kernel) form."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    kx = (
        h
        @ (x / np.linalg.norm(x, axis=1, keepdims=True))
        @ (x / np.linalg.norm(x, axis=1, keepdims=True)).T
        @ h
    )
    ky = (
        h
        @ (y / np.linalg.norm(y, axis=1, keepdims=True))
        @ (y / np.linalg.norm(y, axis=1, keepdims=True)).T
        @ h
    )
    return float(np.trace(kx @ ky) / np.sqrt(np.trace(kx @ kx) * np.trace(ky @ ky)))


def _features(seed: int, n: int = 30, p: int = 8) -> torch.Tensor:
    return torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_self_similarity_is_one():
    x = _features(0)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_agrees_with_kernel_formula():
    x = _features(1, p=8)
    y = _features(2, p=5) + 0.5 * x[:, :5]  # related but different widths
    expected = _kernel_cka(x.numpy(), y.numpy())
    assert linear_cka(x, y) == pytest.approx(expected, rel=1e-10)
    assert linear_cka(y, x) == pytest.approx(expected, rel=1e-10)
    assert 0.0 < expected < 1.0


def test_invariant_to_orthogonal_transform_and_isotropic_scaling():
    x, y = _features(3), _features(4, p=6)
    q, _ = torch.linalg.qr(_features(5, n=8, p=8))
    base = linear_cka(x, y)
    assert linear_cka(x @ q, y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(7.5 * x, 0.1 * y) == pytest.approx(base, rel=1e-10)


def test_rows_are_normalised_before_centring():
    # Rescaling each sample separately changes nothing, because rows are L2-normalised first.
    x, y = _features(6), _features(7)
    row_scale = torch.rand(30, 1, generator=torch.Generator().manual_seed(8), dtype=torch.float64) + 0.1
    assert linear_cka(row_scale * x, y) == pytest.approx(linear_cka(x, y), rel=1e-10)


def test_cka_weights_match_graph_degree_by_numpy():
    feats = [_features(10 + k, p=4 + k) for k in range(4)]
    feats[3] = feats[0] + 0.05 * feats[3][:, :4]  # client 3 close to client 0
    sim = np.array([[_kernel_cka(a.numpy(), b.numpy()) for b in feats] for a in feats])
    expected = sim.sum(1) / sim.sum()
    w = cka_weights(feats)
    np.testing.assert_allclose(w, expected, rtol=1e-10)
    assert w.sum() == pytest.approx(1.0)


def test_single_client_gets_all_weight():
    np.testing.assert_allclose(cka_weights([_features(0)]), [1.0])


def test_invalid_input():
    with pytest.raises(ValueError, match="samples"):
        linear_cka(_features(0, n=10), _features(1, n=11))
    with pytest.raises(ValueError, match="constant"):
        linear_cka(torch.ones(5, 3), _features(1, n=5))
    with pytest.raises(ValueError, match="all-zero row"):
        linear_cka(torch.zeros(5, 3), _features(1, n=5))
    with pytest.raises(ValueError, match="no client"):
        cka_weights([])
