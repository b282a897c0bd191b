"""Edge cases of three servers and the proximal pull, each against an independent computation.

GMM-PT (``gmm_prompts``) is compared with scikit-learn's BayesianGaussianMixture fitted directly and
the ranking/filling rule of the module docstring written out; FedMVP's ``cka_aggregate`` with
linear CKA on row-normalised, centred features, ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), and
w_i = g_i / sum_k g_k; FedMSplit with its docstring's attention and weighted sums; FedProx with
(mu / 2) ||w - w_global||^2 by hand. Error messages are checked word for word."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture

from fedbench.aggregation.gmm import gmm_prompts
from fedbench.methods.fedmsplit.server import attention, personalise
from fedbench.methods.fedmvp.config import FedMVPOptions
from fedbench.methods.fedmvp.network import FedMVPNetwork
from fedbench.methods.fedmvp.server import cka_aggregate
from fedbench.methods.fedprox import ProximalAnchor, proximal_term

# 60 unclustered 2-d tokens: restarts, covariance type and iteration cap all change the means
TOKENS = torch.from_numpy(np.random.default_rng(0).standard_normal((60, 2)))
CLIENTS = [TOKENS[:30].reshape(3, 10, 2), TOKENS[30:]]  # leading dimensions are flattened into tokens


def sklearn_reference(
    x, n_prompts, seed, n_components=None, n_init=None, covariance_type="full", max_iter=100
):
    """Means of a direct fit ranked by decreasing weight, then the pooled mean token as filler."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = BayesianGaussianMixture(
            n_components=n_components or n_prompts,
            n_init=n_init or n_prompts,
            covariance_type=covariance_type,
            max_iter=max_iter,
            random_state=seed,
        ).fit(x)
    order = np.argsort(-ref.weights_, kind="stable")[:n_prompts]
    fill = n_prompts - len(order)
    means = np.concatenate([ref.means_[order], np.repeat(x.mean(0, keepdims=True), fill, axis=0)])
    return means, np.concatenate([ref.weights_[order], np.zeros(fill)]), len(order), bool(ref.converged_)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_prompts": 3, "seed": 1},  # n_init = 3 restarts find a better fit than the first alone
        {"n_prompts": 6, "seed": 0, "n_init": 1},  # needs 155 iterations: cut at the default 100
        {"n_prompts": 1, "seed": 0},
        {"n_prompts": 2, "seed": 0, "n_components": 1},  # one mean, one filler row
        {"n_prompts": 2, "seed": 0, "n_components": 4},
        {"n_prompts": 3, "seed": 1, "covariance_type": "spherical"},
        {"n_prompts": 3, "seed": 1, "max_iter": 1},  # a ConvergenceWarning is swallowed, not raised
    ],
)
def test_gmm_prompts_match_a_direct_sklearn_fit_ranked_by_weight(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the server must not let its ConvergenceWarning escape
        out = gmm_prompts(CLIENTS, **kwargs)
    means, weights, n_kept, converged = sklearn_reference(TOKENS.numpy(), **kwargs)
    np.testing.assert_allclose(out.prompts.numpy(), means, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.weights.numpy(), weights, rtol=0, atol=1e-12)
    assert (out.n_kept, out.converged) == (n_kept, converged)
    assert out.prompts.dtype == torch.float64 and out.weights.dtype == torch.float64


def test_gmm_prompts_of_bfloat16_clients_are_fitted_in_float64_and_returned_in_bfloat16():
    clients = [c.to(torch.bfloat16) for c in CLIENTS]
    out = gmm_prompts(clients, 3, seed=1)
    means, weights, _, _ = sklearn_reference(
        torch.cat([c.reshape(-1, 2) for c in clients]).double().numpy(), 3, 1
    )
    assert out.prompts.dtype == torch.bfloat16
    assert torch.equal(out.prompts, torch.from_numpy(means).to(torch.bfloat16))
    np.testing.assert_allclose(out.weights.numpy(), weights, rtol=0, atol=1e-12)


def test_a_component_whose_weight_equals_the_threshold_is_dropped_and_filled():
    """weight <= threshold is dropped: a threshold equal to sklearn's smallest weight drops that one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = BayesianGaussianMixture(n_components=3, n_init=3, random_state=1).fit(TOKENS.numpy())
    order = np.argsort(-ref.weights_, kind="stable")
    out = gmm_prompts(CLIENTS, 3, seed=1, weight_threshold=float(ref.weights_[order[-1]]))
    assert out.n_kept == 2 and out.weights[2] == 0
    np.testing.assert_allclose(out.prompts[:2].numpy(), ref.means_[order[:2]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.prompts[2].numpy(), TOKENS.numpy().mean(0), rtol=0, atol=1e-12)


def test_warnings_other_than_convergence_reach_the_caller(monkeypatch):
    """Only ConvergenceWarning is hidden. One component's posterior mean is the pooled mean (m0 = xbar)."""
    fit = BayesianGaussianMixture.fit

    def fit_that_warns(self, x, y=None):
        warnings.warn("numerical trouble", RuntimeWarning, stacklevel=1)
        return fit(self, x, y)

    monkeypatch.setattr(BayesianGaussianMixture, "fit", fit_that_warns)
    with pytest.warns(RuntimeWarning, match="numerical trouble"):
        out = gmm_prompts(CLIENTS, 1, seed=0)
    np.testing.assert_allclose(out.prompts[0].numpy(), TOKENS.numpy().mean(0), rtol=0, atol=1e-9)


@pytest.mark.gpu  # make gpu-check runs it
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gmm_prompts_of_cuda_clients_come_back_on_the_clients_device():
    out = gmm_prompts([c.cuda() for c in CLIENTS], 3, seed=1)
    assert out.prompts.device.type == "cuda"
    np.testing.assert_allclose(
        out.prompts.cpu().numpy(), sklearn_reference(TOKENS.numpy(), 3, 1)[0], atol=1e-12
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"client_prompts": []}, "gmm_prompts: no client prompts to aggregate"),
        (
            {"client_prompts": [torch.tensor([[0.0, float("inf")]])]},
            "gmm_prompts: client prompts contain NaN or inf",
        ),
        ({"n_prompts": True}, "gmm_prompts: n_prompts must be a positive integer, got True"),
        ({"n_prompts": 2.5}, "gmm_prompts: n_prompts must be a positive integer, got 2.5"),
        ({"n_components": 0}, "gmm_prompts: n_components, n_init and max_iter must be >= 1, got 0, 2, 100"),
        ({"n_init": 0}, "gmm_prompts: n_components, n_init and max_iter must be >= 1, got 2, 0, 100"),
        ({"max_iter": 0}, "gmm_prompts: n_components, n_init and max_iter must be >= 1, got 2, 2, 0"),
        (
            {"covariance_type": "block"},
            "gmm_prompts: covariance_type must be one of full, tied, diag, spherical, got 'block'",
        ),
    ],
)
def test_gmm_prompts_refuse_bad_input_with_the_exact_message(kwargs, message):
    args = {"client_prompts": CLIENTS, "n_prompts": 2, "seed": 0} | kwargs
    with pytest.raises(ValueError) as e:
        gmm_prompts(**args)
    assert str(e.value) == message


# ----- FedMVP: CKA-graph aggregation -----------------------------------------------------------------
SMALL = FedMVPOptions(latent_dim=32, embed_dim=16, num_heads=2, joint_layers=1)
INPUTS = {
    "text": torch.randn(20, 10, generator=torch.Generator().manual_seed(6)),
    "image": torch.randn(20, 12, generator=torch.Generator().manual_seed(7)),
}


def network_state(seed):
    torch.manual_seed(seed)
    return FedMVPNetwork(10, 12, 3, SMALL).state_dict()


def linear_cka(x, y):
    """||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), rows L2-normalised, then columns centred."""
    xc, yc = (F.normalize(z.double(), dim=1) for z in (x, y))
    xc, yc = xc - xc.mean(0), yc - yc.mean(0)
    return float((yc.T @ xc).norm() ** 2 / ((xc.T @ xc).norm() * (yc.T @ yc).norm()))


def test_cka_aggregate_compares_the_representation_kind_it_is_given():
    states = [network_state(seed) for seed in (1, 2, 3)]
    net = FedMVPNetwork(10, 12, 3, SMALL)  # cka_representation defaults to "joint"
    _, weights, sim = cka_aggregate(net, states, INPUTS, kind="logits")
    reps = []
    for state in states:
        ref = FedMVPNetwork(10, 12, 3, SMALL)
        ref.load_state_dict(state)
        with torch.no_grad():
            reps.append(ref.eval()(**INPUTS).logits)
    expected = np.array(
        [[1.0 if i == j else linear_cka(reps[i], reps[j]) for j in range(3)] for i in range(3)]
    )
    np.testing.assert_allclose(sim, expected, atol=1e-6)
    np.testing.assert_allclose(weights, expected.sum(1) / expected.sum(), atol=1e-6)


def test_a_collapsed_client_gets_similarity_zero_by_default_and_only_its_own_weight():
    """S = [[1, 1, 0], [1, 1, 0], [0, 0, 1]]: degrees 2, 2, 1, so w = (0.4, 0.4, 0.2)."""
    base = network_state(1)
    collapsed = {k: v.clone() for k, v in base.items()}
    collapsed["common.encode.weight"].zero_()  # h_joint = normalise(bias) for every sample
    net = FedMVPNetwork(10, 12, 3, SMALL)
    out, weights, sim = cka_aggregate(net, [base, base, collapsed], INPUTS)
    np.testing.assert_allclose(sim, [[1, 1, 0], [1, 1, 0], [0, 0, 1]], atol=1e-9)
    np.testing.assert_allclose(weights, [0.4, 0.4, 0.2], atol=1e-9)
    torch.testing.assert_close(out["common.encode.weight"], 0.8 * base["common.encode.weight"])


def test_cka_aggregate_of_one_client_returns_its_state_with_weight_one():
    state = network_state(4)
    out, weights, sim = cka_aggregate(FedMVPNetwork(10, 12, 3, SMALL), [state], INPUTS)
    assert weights.tolist() == [1.0] and sim.tolist() == [[1.0]]
    assert all(torch.allclose(out[k].float(), state[k].float()) for k in state)


def test_cka_aggregate_without_states_names_the_function():
    with pytest.raises(ValueError) as e:
        cka_aggregate(FedMVPNetwork(10, 12, 3, SMALL), [], INPUTS)
    assert str(e.value) == "cka_aggregate: no client states"


# ----- FedMSplit ---------------------------------------------------------------------------------------
def fedmsplit_state(prompt_rows, pooler, head, dtype):
    return {
        "prompts": torch.tensor(prompt_rows, dtype=dtype).reshape(3, 1, 1, 2),
        "pooler.dense.bias": torch.tensor(pooler, dtype=dtype),
        "head.net.3.bias": torch.tensor(head, dtype=dtype),
    }


def test_attention_of_a_single_client_is_one_for_every_module():
    att = attention([fedmsplit_state([[1, 0], [0, 2], [1, 1]], [2.0], [1.0, 0.0], torch.float32)])
    assert set(att) == {"complete", "missing_image", "missing_text", "pooler", "head"}
    assert all(a.tolist() == [[1.0]] for a in att.values())  # softmax over one score


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_personalised_state_is_the_weighted_sum_in_the_clients_dtype(dtype):
    a = fedmsplit_state([[1, 0], [0, 2], [1, 1]], [2.0], [1.0, 0.0], dtype)
    b = fedmsplit_state([[0, 1], [0, 0], [2, 0]], [1.0], [0.0, 3.0], dtype)
    weights = {
        "complete": torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=torch.float64),
        "missing_image": torch.tensor([[0.5, 0.5], [0.0, 1.0]], dtype=torch.float64),
        "missing_text": torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64),
        "pooler": torch.tensor([[0.75, 0.25], [0.5, 0.5]], dtype=torch.float64),
        "head": torch.tensor([[0.5, 0.5], [0.25, 0.75]], dtype=torch.float64),
    }
    out = personalise([a, b], weights, 0)
    # 0.25 (1, 0) + 0.75 (0, 1); 0.5 (0, 2) + 0.5 (0, 0); (1, 1); 0.75 * 2 + 0.25 * 1; 0.5 (1, 0) + 0.5 (0, 3)
    expected = fedmsplit_state([[0.25, 0.75], [0, 1], [1, 1]], [1.75], [0.5, 1.5], dtype)
    assert all(out[k].dtype == dtype for k in out)
    assert all(torch.equal(out[k], expected[k]) for k in expected)


# ----- FedProx ---------------------------------------------------------------------------------------
def test_proximal_term_moves_a_cpu_anchor_to_the_parameters_device():
    params = {"w": torch.zeros(2, 3, device="meta", requires_grad=True)}
    term = proximal_term(params, {"w": torch.ones(2, 3)}, 0.5)
    assert term.device.type == "meta" and term.shape == ()


def test_anchor_pulls_with_half_mu_times_squared_drift_and_not_when_mu_is_zero_or_unset():
    module = torch.nn.Linear(2, 1)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([[3.0, -1.0]]))
        module.bias.fill_(5.0)
    anchor = ProximalAnchor()
    assert len(anchor.state) == 0 and anchor.loss(module, 1.0) is None  # a fresh anchor pulls nothing
    anchor.set({"weight": torch.tensor([[1.0, 1.0]])})  # the bias is not anchored
    assert anchor.loss(module, 1.0).item() == 0.5 * (2.0**2 + 2.0**2)
    assert anchor.loss(module, 0.25).item() == 0.125 * 8.0
    assert anchor.loss(module, 0.0) is None
