"""Planted-cluster scenarios and the adjusted Rand index used to score the matcher."""

import numpy as np
import pytest
import torch

from fedbench.aggregation.matching_scenarios import adjusted_rand_index, make_scenario, score_assignments


def test_adjusted_rand_index_by_hand():
    # a = {0,1}{2,3}, b = {0,1}{2}{3}: pairs together in both 1; in a 2; in b 1; of 6 pairs.
    # expected = 2 * 1 / 6, max = (2 + 1) / 2, ARI = (1 - 1/3) / (3/2 - 1/3) = 4/7.
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4 / 7)
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 3, 3]) == 1.0  # labels are names only
    assert adjusted_rand_index([0, 1, 2], [0, 1, 2]) == 1.0  # every item apart: 0/0, agree
    rng = np.random.default_rng(0)
    assert abs(adjusted_rand_index(rng.integers(0, 5, 2000), rng.integers(0, 5, 2000))) < 0.02


@pytest.mark.parametrize("kind", ["shared", "subsets"])
@pytest.mark.parametrize("scale", ["init", "unit"])
def test_scenarios_are_seeded_one_copy_per_client_and_at_the_stated_noise(kind, scale):
    a = make_scenario(kind, 20, 6, 0.3, scale=scale, seed=5)
    b = make_scenario(kind, 20, 6, 0.3, scale=scale, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.clients, b.clients, strict=True))
    assert a.k_held == len(np.unique(np.concatenate(a.labels)))
    sep = torch.pdist(a.truth.double()).min()
    for q, lab in zip(a.clients, a.labels, strict=True):
        assert q.shape == (len(lab), 384) and len(set(lab.tolist())) == len(lab)
        assert (5 <= len(lab) <= 20) if kind == "subsets" else len(lab) == 20
        ratio = (q.double() - a.truth[lab].double()).norm(dim=1) / sep
        assert 0.2 < float(ratio.mean()) < 0.4
    bound = 0.04 if scale == "init" else 10.0
    assert float(a.truth.abs().max()) <= bound


def test_common_component_and_groups():
    one = make_scenario("shared", 10, 2, 0.1, common=0.9, d=256, seed=0)
    cos = torch.nn.functional.cosine_similarity(one.truth[:, None], one.truth[None], dim=-1)
    assert float(cos[~torch.eye(10, dtype=torch.bool)].mean()) > 0.8
    grouped = make_scenario("shared", 10, 2, 0.1, common=0.9, groups=5, d=256, seed=0)
    cos = torch.nn.functional.cosine_similarity(grouped.truth[:, None], grouped.truth[None], dim=-1)
    assert float(cos[0, 5]) > 0.8 and abs(float(cos[0, 1])) < 0.3  # 0 and 5 share a group


def test_score_assignments_counts_every_row():
    scenario = make_scenario("subsets", 8, 3, 0.1, d=16, seed=0)
    assert score_assignments(scenario, scenario.labels) == 1.0
    lumped = [np.zeros_like(lab) for lab in scenario.labels]
    assert score_assignments(scenario, lumped) == pytest.approx(0.0)


def test_invalid_scenarios():
    with pytest.raises(ValueError, match="kind"):
        make_scenario("pool", 5, 2, 0.1)
    with pytest.raises(ValueError, match="scale"):
        make_scenario("shared", 5, 2, 0.1, scale="huge")
    with pytest.raises(ValueError, match="common"):
        make_scenario("shared", 5, 2, 0.1, common=1.0)


def _replayed(kind, k, n_clients, noise, d, common, groups, seed, per_client=(5, 20)):
    """make_scenario written out again in numpy, drawing from the same seeded stream in the
    documented order: K true prompts, then one common vector per group, then per client."""
    rng = np.random.default_rng(seed)
    own = rng.uniform(-0.04, 0.04, size=(k, d))
    shared = rng.uniform(-0.04, 0.04, size=(groups, d))
    truth = np.sqrt(1 - common) * own + np.sqrt(common) * shared[[i % groups for i in range(k)]]
    sep = min(np.linalg.norm(truth[i] - truth[j]) for i in range(k) for j in range(i + 1, k))
    sigma = noise * sep / np.sqrt(d)
    clients, labels = [], []
    for _ in range(n_clients):
        if kind == "shared":
            held = rng.permutation(k)
            per_prompt, shift = rng.normal(size=(k, d)), rng.normal(size=(1, d))
            eps = sigma * np.sqrt(0.5) * (per_prompt + shift)  # the shift is common to the client's rows
        else:
            n = int(rng.integers(min(per_client[0], k), min(per_client[1], k) + 1))
            held = rng.choice(k, size=n, replace=False)
            eps = sigma * rng.normal(size=(n, d))
        clients.append(truth[held] + eps)
        labels.append(held)
    return truth, clients, labels


@pytest.mark.parametrize("kind", ["shared", "subsets"])
def test_scenario_is_the_documented_formula_replayed_in_numpy(kind):
    # per_client=(2, 3) (subsets only) so that the subset sizes vary between clients
    k, n_clients, noise, d, common, groups, sizes = 4, 3, 0.5, 6, 0.6, 2, (2, 3)
    scenario = make_scenario(
        kind, k, n_clients, noise, d=d, per_client=sizes, common=common, groups=groups, seed=3
    )
    truth, clients, labels = _replayed(kind, k, n_clients, noise, d, common, groups, seed=3, per_client=sizes)
    np.testing.assert_allclose(scenario.truth.numpy(), truth, rtol=1e-5, atol=1e-7)
    assert len(scenario.clients) == n_clients
    for got, want, lab, want_lab in zip(scenario.clients, clients, scenario.labels, labels, strict=True):
        np.testing.assert_array_equal(lab, want_lab)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7)


def test_scenario_tensors_are_float32_and_labels_int64():
    for kind in ("shared", "subsets"):
        scenario = make_scenario(kind, 3, 2, 0.1, d=4, per_client=(1, 2), seed=0)
        assert scenario.truth.dtype == torch.float32
        assert all(q.dtype == torch.float32 for q in scenario.clients)
        assert all(lab.dtype == np.int64 for lab in scenario.labels)


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ({}, "shared K=3 T=2 rho=0.25 init"),
        ({"scale": "unit", "groups": 1}, "shared K=3 T=2 rho=0.25 unit"),
        ({"common": 0.5}, "shared K=3 T=2 rho=0.25 init common=0.5"),
        ({"groups": 2}, "shared K=3 T=2 rho=0.25 init groups=2"),
        ({"common": 0.25, "groups": 3}, "shared K=3 T=2 rho=0.25 init common=0.25 groups=3"),
    ],
)
def test_scenario_name_lists_only_the_settings_off_their_defaults(extra, name):
    assert make_scenario("shared", 3, 2, 0.25, d=4, **extra).name == name
