"""Linear CKA's input checks, precision and tolerance edge, CKA-graph weights, and FedMVP's server
aggregator (construction, CKA-graph and sample-count rounds, recorded metadata), each checked
against a hand-worked value or the formula written out here in float64 numpy:
CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) on row-normalised, column-centred
features; w_i = g_i / sum_k g_k with g_i = sum_j S_ij (module docstrings of cka.py / aggregator.py)."""

import numpy as np
import pytest
import torch
from fixtures import tiny_pair

from fedbench.aggregation.cka import cka_matrix, cka_weights, graph_weights, linear_cka
from fedbench.errors import ConfigError
from fedbench.methods.base import ClientUpdate, ServerContext, TrainSettings
from fedbench.methods.fedmvp import TEST_OPTIONS, FedMVPOptions
from fedbench.methods.fedmvp import aggregator as aggregator_mod
from fedbench.methods.fedmvp import features as features_mod
from fedbench.methods.fedmvp.aggregator import FedMVPAggregator, _strip
from fedbench.methods.fedmvp.client import FedMVPModule


def _cka_np(x, y) -> float:
    """The feature-space formula in float64 numpy."""

    def prep(z):
        z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        return z - z.mean(0)

    xc, yc = prep(x), prep(y)
    return float(np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)))


def _randn(seed, *shape, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def _message(fn, *args):
    with pytest.raises(ValueError) as e:
        fn(*args)
    return str(e.value)


def test_linear_cka_errors_name_the_argument_and_its_shape_exactly():
    ok = _randn(0, 5, 2)
    assert _message(linear_cka, torch.ones(1, 3), torch.ones(1, 3)) == (
        "linear_cka: x must be [N >= 2, features...], got shape (1, 3)"
    )
    assert _message(linear_cka, ok, torch.tensor([1.0, -2.0, 3.0, -4.0, 5.0])) == (
        "linear_cka: y must be [N >= 2, features...], got shape (5,)"
    )
    assert (
        _message(linear_cka, _randn(1, 10, 3), _randn(2, 11, 4))
        == "linear_cka: x has 10 samples but y has 11"
    )
    assert (
        _message(linear_cka, torch.ones(5, 3), ok)
        == "linear_cka: x is constant across samples; CKA is undefined"
    )
    assert _message(linear_cka, ok, torch.zeros(5, 2)) == (
        "linear_cka: y has an all-zero row, which cannot be L2-normalised"
    )
    assert _message(cka_matrix, []) == "cka_matrix: no client features"
    assert _message(cka_weights, []) == "cka_weights: no client features"
    assert _message(graph_weights, np.array([[1.0, -0.1], [-0.1, 1.0]])) == (
        "graph_weights: similarities must be finite and >= 0"
    )
    assert _message(graph_weights, np.zeros((2, 2))) == (
        "graph_weights: the similarities sum to 0; the weights are undefined"
    )


def test_two_samples_always_have_cka_one():
    # N = 2: Xc = [d, -d] / 2 with d = x1 - x2, so ||Yc^T Xc||^2 = |e|^2 |d|^2 / 4 and the two Gram
    # norms are |d|^2 / 2 and |e|^2 / 2: CKA = 1 for any two rows that differ.
    assert linear_cka(
        torch.tensor([[1.0, 2.0], [3.0, -1.0]]), torch.tensor([[0.5], [-2.0]])
    ) == pytest.approx(1.0, abs=1e-12)


def test_a_single_feature_column_is_a_valid_representation():
    x = torch.tensor([[1.0], [-2.0], [3.0], [4.0]])  # rows normalise to the signs (1, -1, 1, 1)
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.5]])
    assert linear_cka(x, y) == pytest.approx(_cka_np(x.numpy(), y.numpy()), rel=1e-12)


def test_half_and_single_precision_inputs_are_compared_in_float64():
    x, y = _randn(3, 12, 5, dtype=torch.float32), _randn(4, 12, 3, dtype=torch.float16)
    expected = _cka_np(x.double().numpy(), y.double().numpy())  # the same values, exactly, in float64
    assert linear_cka(x, y) == pytest.approx(expected, rel=1e-12)


def test_rows_2e10_apart_sit_exactly_on_the_constant_tolerance_and_count_as_constant():
    # N = 4 rows (1, 0), (1, 0), (1, e), (1, e) with e = 2e-10 (unit norm in float64): the centred
    # norm is sqrt(4 (e / 2)^2) = 2e-10 = 1e-10 * sqrt(N), the tolerance itself, which counts as constant.
    e = 2e-10
    x = torch.tensor([[1.0, 0.0]] * 2 + [[1.0, e]] * 2, dtype=torch.float64)
    y = torch.tensor([[1.0], [-1.0], [2.0], [-3.0]], dtype=torch.float64)
    assert _message(linear_cka, x, y) == "linear_cka: x is constant across samples; CKA is undefined"


def test_rows_just_above_the_tolerance_are_a_defined_representation():
    # N = 16, eight rows (1, 0) and eight (1, 3e-10): centred norm sqrt(16 (1.5e-10)^2) = 6e-10, above
    # 1e-10 * sqrt(16) = 4e-10. Xc is rank one along the sign pattern, so CKA with the signs is 1.
    x = torch.tensor([[1.0, 0.0]] * 8 + [[1.0, 3e-10]] * 8, dtype=torch.float64)
    signs = torch.tensor([[-1.0]] * 8 + [[1.0]] * 8, dtype=torch.float64)
    assert linear_cka(x, signs) == pytest.approx(1.0, abs=1e-9)


def test_cka_matrix_gives_a_collapsed_non_square_client_the_undefined_similarity():
    a, b = _randn(5, 8, 4), _randn(6, 8, 4)
    sim = cka_matrix([a, b, torch.full((8, 4), 0.5, dtype=torch.float64)], undefined=0.0)
    c = _cka_np(a.numpy(), b.numpy())
    np.testing.assert_allclose(sim, [[1.0, c, 0.0], [c, 1.0, 0.0], [0.0, 0.0, 1.0]], rtol=1e-12, atol=0)


def test_graph_weights_are_float64_from_half_precision_or_a_tensor_that_requires_grad():
    sim16 = np.array([[1.0, 0.3, 0.7], [0.3, 1.0, 0.1], [0.7, 0.1, 1.0]], dtype=np.float16)
    s = sim16.astype(np.float64)  # the float16 values, exactly
    expected = s.sum(1) / s.sum()
    got = graph_weights(sim16)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    tracked = torch.tensor(s, dtype=torch.float32, requires_grad=True)
    np.testing.assert_allclose(graph_weights(tracked), expected, rtol=1e-6)


def test_strip_removes_the_network_prefix_only_where_present():
    t = torch.zeros(1)
    assert list(_strip({"net.joint.w": t, "head.w": t, "net": t})) == ["joint.w", "head.w", "net"]


# ----- FedMVPAggregator on the tiny fixture -----------------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEDBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        features_mod._MEMO.clear()
        yield tiny_pair()
        features_mod._MEMO.clear()


def _options(**kw):
    return FedMVPOptions(**{**TEST_OPTIONS, **kw}).validate()


def test_the_aggregator_needs_the_server_context():
    with pytest.raises(ConfigError) as e:
        FedMVPAggregator(_options(), None)
    assert (
        str(e.value) == "method.name: fedmvp's server needs the server context (backbone and held-out data)"
    )


def test_construction_prepares_the_context_pool_and_seed_and_puts_the_network_on_the_device(
    pair, monkeypatch
):
    bundle, backbone = pair
    pool = np.sort(bundle.splits["test"][:20])  # not the validation split prepare falls back to
    calls = []
    real = aggregator_mod.prepare
    monkeypatch.setattr(aggregator_mod, "prepare", lambda *a: calls.append(a) or real(*a))
    options = _options()
    context = ServerContext(backbone, bundle, pool, "meta", 7)
    agg = FedMVPAggregator(options, context)
    assert agg.context is context and agg.options is options
    assert len(calls) == 1 and calls[0][:2] == (backbone, bundle) and calls[0][3:] == (options, 7)
    assert calls[0][2] is pool and agg.prepared.server_rows.tolist() == pool.tolist()
    assert agg.device == torch.device("meta")
    assert {p.device.type for p in agg.network.parameters()} == {"meta"}
    assert {v.device.type for v in agg.server_inputs.values()} == {"meta"}
    assert agg.server_inputs["text"].shape[0] == 20
    meta = agg.metadata()  # before any round: the completion's quality only
    assert list(meta) == ["completion"] and meta["completion"]["pool"] == 20
    assert meta["completion"]["pool_split"] == "public"


def test_cka_round_gives_a_collapsed_client_similarity_zero_and_averages_by_graph_degree(pair):
    bundle, backbone = pair
    pool = np.sort(bundle.splits["val"])
    options = _options(cka_representation="logits")
    agg = FedMVPAggregator(options, ServerContext(backbone, bundle, pool, torch.device("cpu"), 0))
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append(FedMVPModule(backbone, bundle.num_classes, TrainSettings(), options).trainable_state())
    collapsed = {k: v.clone() for k, v in states[0].items()}
    collapsed["net.classifier.fc.weight"].zero_()  # logits = the bias on every sample
    states.append(collapsed)
    updates = [ClientUpdate(i, s, n_samples=10 * (i + 1)) for i, s in enumerate(states)]
    result = agg.aggregate({}, updates, 0, 0)

    logits = []  # independent: each state in a fresh module, logits of the pool's complete pairs
    for state in states[:2]:
        module = FedMVPModule(backbone, bundle.num_classes, TrainSettings(), options)
        module.load_trainable_state(state)
        module.eval()
        with torch.no_grad():
            rows = torch.as_tensor(pool)
            logits.append(module(bundle.batch(rows, torch.zeros(len(rows), dtype=torch.long))).numpy())
    c = _cka_np(logits[0], logits[1])
    sim = np.array([[1.0, c, 0.0], [c, 1.0, 0.0], [0.0, 0.0, 1.0]])
    weights = sim.sum(1) / sim.sum()  # (1 + c, 1 + c, 1) / (3 + 2c)
    assert 0.0 < c < 0.9999
    assert agg.metadata()["cka"] == np.round(sim, 4).tolist()
    assert agg.metadata()["aggregation_weights"] == [round(float(w), 4) for w in weights]
    assert set(result) == set(states[0])
    for name in states[0]:
        expected = sum(w * s[name].double() for w, s in zip(weights, states, strict=True)).float()
        torch.testing.assert_close(result[name], expected, atol=1e-6, rtol=1e-5)


@pytest.fixture(scope="module")
def fedavg(pair):
    bundle, backbone = pair
    ctx = ServerContext(backbone, bundle, np.sort(bundle.splits["val"]), torch.device("cpu"), 0)
    return FedMVPAggregator(_options(use_cka=False), ctx)


def _two(meta0, meta1, n=(1, 2)):
    a, b = {"net.w": torch.tensor([0.0, 3.0])}, {"net.w": torch.tensor([3.0, 6.0])}
    return [ClientUpdate(0, a, n_samples=n[0], meta=meta0), ClientUpdate(1, b, n_samples=n[1], meta=meta1)]


def test_fedavg_round_falls_back_to_sample_counts_and_records_mean_auxiliary_losses(fedavg):
    updates = _two({"mean_mcm": 0.1234561, "mean_ram": 0.5}, {"mean_mcm": 0.2})
    out = fedavg.aggregate({}, updates, 0, 0)
    assert out["net.w"].tolist() == [2.0, 5.0]  # (1 * [0, 3] + 2 * [3, 6]) / 3
    meta = fedavg.metadata()
    assert meta["aggregation_weights"] == [0.3333, 0.6667]
    assert meta["mean_mcm"] == 0.16173  # (0.1234561 + 0.2) / 2 = 0.16172805, to 5 decimals
    assert meta["mean_ram"] == 0.5  # only the client that reported one
    assert "cka" not in meta


def test_fedavg_round_where_nobody_trained_weights_clients_equally(fedavg):
    out = fedavg.aggregate({}, _two({"n_trained": 0}, {"n_trained": 0}, n=(5, 9)), 0, 0)
    assert out["net.w"].tolist() == [1.5, 4.5]
    assert fedavg.metadata()["aggregation_weights"] == [0.5, 0.5]
    assert "mean_mcm" not in fedavg.metadata()


def test_fedavg_round_with_one_trained_sample_in_total_gives_it_all_the_weight(fedavg):
    out = fedavg.aggregate({}, _two({"n_trained": 1}, {"n_trained": 0}, n=(5, 9)), 0, 0)
    assert out["net.w"].tolist() == [0.0, 3.0]
    assert fedavg.metadata()["aggregation_weights"] == [1.0, 0.0]
