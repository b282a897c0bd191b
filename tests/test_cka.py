"""Linear CKA and CKA-graph weights, checked against the kernel formula computed here with numpy."""

import numpy as np
import pytest
import torch

from fedbench.aggregation import cka_weights, linear_cka
from fedbench.aggregation.cka import cka_matrix, graph_weights


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


def _hsic_cka_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    """CKA as normalised HSIC (Kornblith et al. 2019), HSIC(K, L) = tr(K H L H) / (n - 1)^2, with
    the Gram matrices of the row-normalised inputs built entry by entry."""
    n = x.shape[0]
    xn = [row / np.sqrt(sum(v * v for v in row)) for row in x]
    yn = [row / np.sqrt(sum(v * v for v in row)) for row in y]
    k = np.array([[float(np.dot(xn[i], xn[j])) for j in range(n)] for i in range(n)])
    lg = np.array([[float(np.dot(yn[i], yn[j])) for j in range(n)] for i in range(n)])
    h = np.eye(n) - 1.0 / n

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return float(hsic(k, lg) / np.sqrt(hsic(k, k) * hsic(lg, lg)))


def test_agrees_with_hsic_formula_on_random_matrices():
    for seed in range(3):
        x = _features(20 + seed, n=12, p=5)
        y = torch.tanh(x[:, :3] @ _features(30 + seed, n=3, p=4)) + 0.3 * _features(40 + seed, n=12, p=4)
        assert linear_cka(x, y) == pytest.approx(_hsic_cka_by_loops(x.numpy(), y.numpy()), rel=1e-10)


def test_orthogonal_and_scaling_invariance_against_hsic():
    x, y = _features(50, n=15, p=6), _features(51, n=15, p=6)
    q, _ = torch.linalg.qr(_features(52, n=6, p=6))
    expected = _hsic_cka_by_loops(x.numpy(), y.numpy())
    assert linear_cka(3.0 * x @ q, y @ q.T) == pytest.approx(expected, rel=1e-10)


def test_graph_weights_on_a_hand_built_similarity_matrix():
    sim = np.array([[1.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 1.0]])
    # g = (1.6, 1.7, 1.3), total 4.6
    np.testing.assert_allclose(graph_weights(sim), [1.6 / 4.6, 1.7 / 4.6, 1.3 / 4.6], rtol=1e-12)
    np.testing.assert_allclose(graph_weights(torch.tensor(sim)), graph_weights(sim))
    np.testing.assert_allclose(graph_weights(np.eye(4)), [0.25] * 4)
    for bad in (
        np.ones((2, 3)),
        np.array([[1.0, -0.1], [-0.1, 1.0]]),
        np.array([[np.nan]]),
        np.zeros((2, 2)),
    ):
        with pytest.raises(ValueError, match="graph_weights"):
            graph_weights(bad)


def test_cka_matrix_is_symmetric_with_unit_diagonal_and_flattens():
    feats = [_features(60 + k, n=10, p=6).reshape(10, 2, 3) for k in range(3)]
    sim = cka_matrix(feats)
    np.testing.assert_allclose(sim, sim.T)
    np.testing.assert_allclose(np.diag(sim), 1.0)
    assert sim[0, 1] == pytest.approx(
        _kernel_cka(feats[0].reshape(10, 6).numpy(), feats[1].reshape(10, 6).numpy())
    )
    np.testing.assert_allclose(cka_weights(feats), graph_weights(sim))


def test_collapsed_client_raises_or_gets_the_undefined_similarity():
    feats = [_features(70, n=8), _features(71, n=8), torch.ones(8, 8, dtype=torch.float64)]
    with pytest.raises(ValueError, match="constant"):
        cka_matrix(feats)
    sim = cka_matrix(feats, undefined=0.0)
    assert sim[2, 0] == sim[0, 2] == sim[1, 2] == 0.0 and sim[2, 2] == 1.0
