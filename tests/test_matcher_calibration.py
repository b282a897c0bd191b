"""new_cluster_cost="auto": the merge radius by hand, the assignment step by brute force, and
cluster recovery on planted scenarios (fedbench.aggregation.matching_scenarios)."""

import itertools

import numpy as np
import pytest
import torch

from fedbench.aggregation.matching_calibration import merge_bonus, merge_radius, neighbour_distances
from fedbench.aggregation.matching_scenarios import make_scenario, score_assignments
from fedbench.aggregation.prob_matching import (
    PopularityNet,
    ScaleNet,
    assign_client,
    client_cost,
    match_prompts,
    matching_objective,
)

# the matcher's small matrix products are fastest on one thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pts(*rows):
    return torch.tensor([[r] for r in rows], dtype=torch.float64)


def test_merge_radius_by_hand():
    # 1-d. Same-client nearest distances^2: A 100, 100; B 9.9^2 = 98.01, 98.01 -> 10% quantile
    # 98.01 = S. Other-client nearest: 0.04, 0.01, 0.04, 0.01 -> lower quartile 0.01 = N.
    # theta^2 = (min(N, S/2) + S) / 2 = (0.01 + 98.01) / 2 = 49.01.
    assert merge_radius([_pts(0.0, 10.0), _pts(0.2, 10.1)]) == pytest.approx(49.01)
    # One prompt per client: no S, so 4 N with N = the quartile of 0.09, 0.09, 22.09 = 0.09.
    assert merge_radius([_pts(0.0), _pts(0.3), _pts(5.0)]) == pytest.approx(0.36)
    # One client: N falls back to S/2: (9/2 + 9) / 2. A single prompt: nothing to measure.
    assert merge_radius([_pts(0.0, 3.0)]) == pytest.approx(6.75)
    assert merge_radius([_pts(1.0)]) == 0.0


def test_neighbour_distances_by_hand_per_prompt():
    # 1-d, clients A = {0, 3}, B = {1}. Nearest same-client prompt^2: 0 -> 3: 9, 3 -> 0: 9, B's only
    # prompt has none (inf). Nearest other-client prompt^2: 0 -> 1: 1, 3 -> 1: 4, 1 -> 0: 1.
    within, across = neighbour_distances([_pts(0.0, 3.0), _pts(1.0)])
    np.testing.assert_array_equal(within, np.array([9.0, 9.0, np.inf]))
    np.testing.assert_array_equal(across, np.array([1.0, 4.0, 1.0]))


def test_merge_radius_is_capped_at_three_quarters_of_s_when_copies_are_far():
    # 1-d, A = {0, 1}, B = {10, 11}: same-client distances^2 all 1, so S = 1; other-client nearest
    # 100, 81, 81, 100 -> lower quartile N = 81 > S/2. theta^2 = (min(81, 1/2) + 1) / 2 = 3/4.
    assert merge_radius([_pts(0.0, 1.0), _pts(10.0, 11.0)]) == pytest.approx(0.75)


def test_merge_radius_is_in_the_prompts_units():
    scenario = make_scenario("subsets", 12, 5, 0.2, d=64, seed=0)
    base = merge_radius(scenario.clients)
    assert merge_radius([7.0 * q + 0.3 for q in scenario.clients]) == pytest.approx(49.0 * base, rel=1e-5)


@pytest.mark.parametrize("trial", range(8))
def test_auto_assignment_step_is_the_exact_maximiser(trial):
    # The auto step adds lambda_i = theta^2 / (2 g_i^2), g_i the geometric mean of centre i's stds,
    # on columns another client uses; it must pick the best assignment of client 0 under
    # sum_t L_t + sum_i lambda_i (clients in i - 1)_+, scored here independently
    # (torch.distributions and the nets' sigmoid outputs).
    from torch.distributions import Bernoulli, Normal

    d, m, theta2 = 3, 5, 0.5
    gen = torch.Generator().manual_seed(trial)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(50 + trial)
        scale_net, pop_net = ScaleNet(d, 8).double(), PopularityNet(d, 8).double()
        with torch.no_grad():
            scale_net.body[-1].bias.add_(torch.randn(d, generator=gen, dtype=torch.float64))
    centres = 0.3 * torch.randn(m, d, generator=gen, dtype=torch.float64)
    clients = [0.3 * torch.randn(2, d, generator=gen, dtype=torch.float64) for _ in range(3)]
    rest = [np.array([1, 2]), np.array([2, 4])]

    def score(z0):
        assignments = [np.asarray(z0), *rest]
        with torch.no_grad():
            std, prob = scale_net(centres), pop_net(centres)
            total = 0.0
            for q, z in zip(clients, assignments, strict=True):
                idx = torch.as_tensor(z)
                total += float(Normal(centres[idx], std[idx]).log_prob(q).sum())
                chosen = torch.zeros(m, dtype=torch.float64)
                chosen[idx] = 1.0
                total += float(Bernoulli(probs=prob).log_prob(chosen).sum())
            bonus = 0.5 * theta2 / torch.exp(torch.log(std).mean(1)) ** 2
        counts = np.bincount(np.concatenate(assignments), minlength=m)
        return total + float((bonus.numpy() * np.maximum(counts - 1, 0)).sum())

    with torch.no_grad():
        log_std, logit = scale_net.log_std(centres), pop_net.logit(centres)
    others = np.bincount(np.concatenate(rest), minlength=m)
    cost = client_cost(clients[0], centres, log_std, logit) + merge_bonus(theta2, log_std) * (others > 0)
    new_z = assign_client(cost)
    best = max(score(cols) for cols in itertools.permutations(range(m), 2))
    assert score(new_z) == pytest.approx(best, abs=1e-9)
    lib = matching_objective(clients, centres, [new_z, *rest], scale_net, pop_net, merge_radius=theta2)
    assert lib == pytest.approx(best, rel=1e-12)


def _check_recovered(scenario, result, min_ari=0.9):
    assert abs(len(result.centres) - scenario.k_held) <= 0.2 * scenario.k_held, (
        f"{scenario.name}: {len(result.centres)} centres for {scenario.k_held} held prompts"
    )
    assert score_assignments(scenario, result.assignments) >= min_ari


@pytest.mark.parametrize("noise", [0.05, 0.4])
def test_auto_recovers_a_shared_drifting_pool(noise):
    # Every client holds the same 12 prompts at FedPrime's init scale, each client's copy shifted
    # together plus per-prompt noise: the inter pool after a round of local training.
    scenario = make_scenario("shared", 12, 6, noise, scale="init", seed=1)
    _check_recovered(scenario, match_prompts(scenario.clients, new_cluster_cost="auto", seed=0))


@pytest.mark.parametrize("noise", [0.05, 0.4])
def test_auto_recovers_overlapping_subsets(noise):
    scenario = make_scenario("subsets", 25, 8, noise, scale="init", per_client=(5, 12), seed=2)
    _check_recovered(scenario, match_prompts(scenario.clients, new_cluster_cost="auto", seed=0))


def test_auto_fixes_the_collapse_of_the_fixed_price():
    # The review's case: each client holds 5 of 12 prompts that share most of their direction.
    # 2 nats/dim after RMS normalisation merges down to the per-client count; auto does not.
    scenario = make_scenario("subsets", 12, 5, 0.1, per_client=(5, 5), common=0.95, seed=0)
    rms = torch.cat(scenario.clients).pow(2).mean().sqrt()
    fixed = match_prompts([q / rms for q in scenario.clients], new_cluster_cost=2.0 * 384, seed=0)
    assert len(fixed.centres) == 5
    _check_recovered(scenario, match_prompts(scenario.clients, new_cluster_cost="auto", seed=0))


def test_auto_is_invariant_to_scale_and_shift():
    scenario = make_scenario("subsets", 12, 5, 0.3, d=64, seed=3)
    local = [q.double() for q in scenario.clients]
    a = match_prompts(local, new_cluster_cost="auto", seed=0)
    b = match_prompts([64.0 * q + 0.5 for q in local], new_cluster_cost="auto", seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(a.assignments, b.assignments, strict=True))
    torch.testing.assert_close(64.0 * a.centres + 0.5, b.centres, rtol=1e-5, atol=1e-5)
    assert b.merge_radius == pytest.approx(64.0**2 * a.merge_radius, rel=1e-9)


def test_auto_with_official_cost_and_standardise_flag():
    scenario = make_scenario("shared", 6, 4, 0.2, d=64, seed=4)
    result = match_prompts(scenario.clients, new_cluster_cost="auto", cost="official", seed=0)
    _check_recovered(scenario, result)
    # standardise=True alone changes units only; the centres come back in the input's units.
    plain = match_prompts(scenario.clients, standardise=True, outer_loops=2, seed=0)
    assert plain.merge_radius is None
    assert plain.centres.abs().max() < 1.0  # the init-scale prompts are within 0.04 + noise


def test_bad_new_cluster_cost_is_rejected():
    with pytest.raises(ValueError, match="'auto' or None"):
        match_prompts([torch.zeros(2, 4)], new_cluster_cost="calibrated")
