"""cost="official": PFPT's Bernoulli term, checked against the formula computed by hand in numpy.

The official NonparametricAgg (PeiYauWeng/PFPT, Algo/nonparametric_aggregation.py; FedPrime's copy
is the same) scores client t, with n_t prompts and assignment z (c_i = 1 on its columns), as
    loss  = -(sum_j log N(q_j; phi_z(j), s^2) + n_t * sum_{i in z} log pi_i)
    M_ji  = log N(q_j; phi_i, s_i^2) + n_t * (c_i log pi_i + (1 - c_i) log(1 - pi_i)).
Here every number is recomputed from the nets' weights with numpy, not through fedbench's code.
"""

import numpy as np
import pytest
import torch

from fedbench.aggregation.matching_scenarios import make_scenario
from fedbench.aggregation.prob_matching import (
    PopularityNet,
    ScaleNet,
    assign_client,
    client_cost,
    client_log_likelihood,
    match_prompts,
    matching_objective,
)

# the matcher's small matrix products are fastest on one thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mlp(net, x):
    """The net's pre-sigmoid output for rows x, in numpy."""
    w1, b1 = net.body[0].weight.detach().numpy(), net.body[0].bias.detach().numpy()
    w2, b2 = net.body[2].weight.detach().numpy(), net.body[2].bias.detach().numpy()
    return np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2


def _tiny_case(seed=0):
    """2 clients (3 and 2 prompts), 5 centres, d = 4, float64 nets with fixed weights."""
    rng = np.random.default_rng(seed)
    d = 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        scale_net, pop_net = ScaleNet(d, 6).double(), PopularityNet(d, 6).double()
        with torch.no_grad():
            pop_net.body[2].weight.mul_(10.0)  # popularities far from 1/2, so the term matters
    centres = rng.normal(scale=0.5, size=(5, d))
    clients = [rng.normal(scale=0.5, size=(3, d)), rng.normal(scale=0.5, size=(2, d))]
    z = [np.array([4, 0, 2]), np.array([1, 3])]
    return scale_net, pop_net, centres, clients, z


def _hand(scale_net, pop_net, centres, q, z):
    """(official loss, official cost matrix) for one client, from the formulas in the docstring."""
    s = 1.0 / (1.0 + np.exp(-_mlp(scale_net, centres)))  # [m, d] std
    pi = 1.0 / (1.0 + np.exp(-_mlp(pop_net, centres)[:, 0]))  # [m]
    n, m = q.shape[0], centres.shape[0]
    log_n = np.empty((n, m))
    for j in range(n):
        for i in range(m):
            r = (q[j] - centres[i]) / s[i]
            log_n[j, i] = np.sum(-0.5 * r**2 - np.log(s[i]) - 0.5 * np.log(2 * np.pi))
    c = np.zeros(m)
    c[z] = 1.0
    log_bern = c * np.log(pi) + (1 - c) * np.log(1 - pi)
    cost = log_n + n * log_bern[None, :]
    l1 = sum(log_n[j, z[j]] for j in range(n))
    l2 = n * np.sum(np.log(pi[z]))
    return -(l1 + l2), cost


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_official_cost_and_loss_match_the_hand_formula(seed):
    scale_net, pop_net, centres, clients, z = _tiny_case(seed)
    phi = torch.as_tensor(centres)
    with torch.no_grad():
        log_std, logit = scale_net.log_std(phi), pop_net.logit(phi)
    total = 0.0
    for q_np, zt in zip(clients, z, strict=True):
        loss, cost = _hand(scale_net, pop_net, centres, q_np, zt)
        q = torch.as_tensor(q_np)
        got_cost = client_cost(q, phi, log_std, logit, cost="official", previous=zt)
        np.testing.assert_allclose(got_cost, cost, rtol=1e-10, atol=1e-9)
        got_loss = -float(client_log_likelihood(q, phi, zt, log_std, logit, cost="official"))
        assert got_loss == pytest.approx(loss, rel=1e-10)
        total -= loss
    objective = matching_objective(
        [torch.as_tensor(c) for c in clients], phi, z, scale_net, pop_net, cost="official"
    )
    assert objective == pytest.approx(total, rel=1e-10)


def test_official_bernoulli_gradient_reaches_only_assigned_columns():
    # d loss / d logit_i = -n (1 - pi_i) on assigned columns and 0 elsewhere: pi is only pushed up.
    scale_net, pop_net, centres, clients, z = _tiny_case(3)
    phi = torch.as_tensor(centres)
    log_std = scale_net.log_std(phi).detach()
    logit = pop_net.logit(phi).detach().requires_grad_(True)
    q = torch.as_tensor(clients[0])
    (-client_log_likelihood(q, phi, z[0], log_std, logit, cost="official")).backward()
    pi = 1.0 / (1.0 + np.exp(-logit.detach().numpy()))
    want = np.zeros(5)
    want[z[0]] = -3 * (1 - pi[z[0]])
    np.testing.assert_allclose(logit.grad.numpy(), want, rtol=1e-10, atol=1e-12)


def test_official_cost_needs_the_previous_assignment():
    scale_net, pop_net, centres, clients, _ = _tiny_case(0)
    phi = torch.as_tensor(centres)
    with torch.no_grad(), pytest.raises(ValueError, match="previous"):
        client_cost(
            torch.as_tensor(clients[0]), phi, scale_net.log_std(phi), pop_net.logit(phi), cost="official"
        )


def test_official_cost_rewards_staying_put():
    # With every centre equally far, the Hungarian step keeps the previous columns: n log pi on
    # them beats n log(1 - pi) elsewhere whenever pi > 1/2.
    m, d = 6, 3
    phi = torch.zeros(m, d, dtype=torch.float64)
    log_std = torch.full((m, d), np.log(0.5), dtype=torch.float64)
    logit = torch.full((m,), 2.0, dtype=torch.float64)
    q = torch.zeros(2, d, dtype=torch.float64)
    previous = np.array([4, 1])
    cost = client_cost(q, phi, log_std, logit, cost="official", previous=previous)
    assert sorted(assign_client(cost).tolist()) == [1, 4]


def test_official_matcher_rarely_merges_and_differs_from_joint():
    # methods.md risk 17, reproduced with the official term: every copy keeps its own centre.
    scenario = make_scenario("shared", 4, 5, 0.1, scale="unit", d=32, seed=0)
    official = match_prompts(scenario.clients, cost="official", seed=0)
    assert len(official.centres) > 2 * 4
    joint = match_prompts(scenario.clients, seed=0)  # same start, different Adam steps
    assert official.centres.shape != joint.centres.shape or not torch.equal(official.centres, joint.centres)


def test_unknown_cost_is_rejected():
    with pytest.raises(ValueError, match="cost must be one of"):
        match_prompts([torch.zeros(2, 4)], cost="paper")


def test_official_cost_without_a_previous_assignment_is_refused_word_for_word():
    scale_net, pop_net, centres, clients, _ = _tiny_case(0)
    phi = torch.as_tensor(centres)
    with torch.no_grad(), pytest.raises(ValueError) as err:
        client_cost(
            torch.as_tensor(clients[0]), phi, scale_net.log_std(phi), pop_net.logit(phi), cost="official"
        )
    assert str(err.value) == "client_cost: cost='official' needs the previous assignment"


@pytest.mark.parametrize("cost", ["joint", "official"])
def test_a_price_without_the_other_clients_usage_is_refused_word_for_word(cost):
    scale_net, pop_net, centres, clients, z = _tiny_case(0)
    phi = torch.as_tensor(centres)
    with torch.no_grad(), pytest.raises(ValueError) as err:
        client_cost(
            torch.as_tensor(clients[0]),
            phi,
            scale_net.log_std(phi),
            pop_net.logit(phi),
            new_cluster_cost=1.0,
            cost=cost,
            previous=z[0],
        )
    assert str(err.value) == "client_cost: new_cluster_cost needs used_by_others"


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_official_terms_take_assignments_of_any_integer_dtype(dtype):
    # uint8 columns are positions, not a mask: [4, 0, 2] is assigned columns 4, 0 and 2 of 5
    scale_net, pop_net, centres, clients, z = _tiny_case(1)
    phi = torch.as_tensor(centres)
    with torch.no_grad():
        log_std, logit = scale_net.log_std(phi), pop_net.logit(phi)
    loss, cost = _hand(scale_net, pop_net, centres, clients[0], z[0])
    q, zt = torch.as_tensor(clients[0]), z[0].astype(dtype)
    got_cost = client_cost(q, phi, log_std, logit, cost="official", previous=zt)
    np.testing.assert_allclose(got_cost, cost, rtol=1e-10, atol=1e-9)
    got_loss = -float(client_log_likelihood(q, phi, zt, log_std, logit, cost="official"))
    assert got_loss == pytest.approx(loss, rel=1e-10)
