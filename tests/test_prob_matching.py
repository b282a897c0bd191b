"""Probabilistic prompt matching, checked against brute force and torch.distributions."""

import itertools

import numpy as np
import pytest
import torch
from matcher_replay import best_columns, replay
from torch.distributions import Bernoulli, Normal

from fedbench.aggregation import (
    PopularityNet,
    ScaleNet,
    assign_client,
    client_cost,
    match_prompts,
    matching_objective,
)

# the matcher's small matrix products are fastest on one thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _reference_objective(clients, centres, assignments, scale_net, pop_net, lam=None) -> float:
    """sum_t [sum_j log N(q_tj; phi_z, s(phi_z)^2) + sum_i log Bern(c_ti; b(phi_i))] - lam * #used."""
    with torch.no_grad():
        std, prob = scale_net(centres), pop_net(centres)
        total = 0.0
        for q, z in zip(clients, assignments, strict=True):
            idx = torch.as_tensor(np.asarray(z))
            total += float(Normal(centres[idx], std[idx]).log_prob(q).sum())
            selected = torch.zeros(centres.shape[0], dtype=centres.dtype)
            selected[idx] = 1.0
            total += float(Bernoulli(probs=prob).log_prob(selected).sum())
    if lam is not None:
        total -= lam * len(set(np.concatenate([np.asarray(z) for z in assignments]).tolist()))
    return total


def _planted(k=4, d=32, t=6, rel_noise=0.05, seed=0):
    """k true centres ~ N(0, I_d); each client holds a shuffled noisy copy of all of them.

    The noise vector of every copy has norm rel_noise * (its centre's norm).
    """
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=gen)
    clients, labels = [], []
    for _ in range(t):
        perm = torch.randperm(k, generator=gen)
        noise = torch.randn(k, d, generator=gen)
        noise = noise / noise.norm(dim=1, keepdim=True) * rel_noise * centres[perm].norm(dim=1, keepdim=True)
        clients.append(centres[perm] + noise)
        labels.append(perm.numpy())
    return centres, clients, labels


def _check_one_to_one(result, sizes):
    used = set()
    for z, n in zip(result.assignments, sizes, strict=True):
        assert len(z) == n and len(set(z.tolist())) == n  # covers every prompt, distinct columns
        assert z.min() >= 0 and z.max() < len(result.centres)
        used |= set(z.tolist())
    assert used == set(range(len(result.centres)))  # every returned centre is non-empty


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (2, 5), (3, 3), (3, 6), (4, 6)])
def test_hungarian_step_agrees_with_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        cost = rng.normal(size=shape)
        np.testing.assert_array_equal(assign_client(cost), best_columns(cost))


def test_assign_client_rejects_more_rows_than_columns():
    with pytest.raises(ValueError, match="n <= m"):
        assign_client(np.zeros((3, 2)))


@pytest.mark.parametrize("lam", [None, 2.0])
def test_assignment_step_is_the_exact_maximiser_of_the_objective(lam):
    # Small enough to enumerate every one-to-one assignment of client 0 and score it with the
    # reference objective. Centres are close together and the popularity net's output is scaled
    # up, so the Gaussian, the Bernoulli column term and the new-cluster price all compete: the
    # Hungarian step picks the best assignment only if the cost has every term right.
    d, m = 3, 5
    for trial in range(12):
        gen = torch.Generator().manual_seed(trial)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(100 + trial)
            scale_net, pop_net = ScaleNet(d, 8).double(), PopularityNet(d, 8).double()
            with torch.no_grad():
                pop_net.body[-1].weight.mul_(20.0)
        centres = 0.3 * torch.randn(m, d, generator=gen, dtype=torch.float64)
        clients = [0.3 * torch.randn(2, d, generator=gen, dtype=torch.float64) for _ in range(3)]
        assignments = [np.array([0, 1]), np.array([1, 2]), np.array([2, 4])]
        with torch.no_grad():
            log_std, logit = scale_net.log_std(centres), pop_net.logit(centres)
        others = np.bincount(np.concatenate(assignments[1:]), minlength=m)
        new_z = assign_client(client_cost(clients[0], centres, log_std, logit, others, lam))

        def score(z0, scale_net=scale_net, pop_net=pop_net, centres=centres, clients=clients):
            rest = [np.array([1, 2]), np.array([2, 4])]
            return _reference_objective(clients, centres, [np.asarray(z0), *rest], scale_net, pop_net, lam)

        after = score(new_z)
        best = max(score(cols) for cols in itertools.permutations(range(m), 2))
        assert after >= score(assignments[0]) - 1e-9
        assert after == pytest.approx(best, abs=1e-9)
        # The library's objective is a second formula for the same number.
        lib = matching_objective(clients, centres, [new_z, *assignments[1:]], scale_net, pop_net, lam)
        assert lib == pytest.approx(after, rel=1e-12)


def test_matcher_output_is_one_to_one_bounded_and_objective_rises():
    _, clients, _ = _planted(seed=3)
    result = match_prompts(clients, outer_loops=5, seed=0)
    _check_one_to_one(result, [4] * 6)
    assert len(result.centres) <= 24
    assert len(result.objective_trace) == 5
    assert result.objective_trace[-1] > result.objective_trace[0]


def test_new_cluster_cost_recovers_planted_clusters():
    # With 5% drift, merging a prompt into another client's copy costs well under a nat of
    # Gaussian log-density while distinct centres are ~100 nats apart, so any lambda in between
    # must give exactly the K clusters. Every centre starts at one member copy and moves by at
    # most lr per coordinate per Adam step (30 steps), so it stays within ~noise of its truth.
    for seed in range(2):
        true, clients, labels = _planted(seed=seed)
        result = match_prompts(clients, new_cluster_cost=5.0, seed=seed)
        _check_one_to_one(result, [4] * 6)
        assert len(result.centres) == 4
        rel_err = torch.cdist(true, result.centres).min(dim=1).values / true.norm(dim=1)
        assert rel_err.max() < 0.1
        # Clusters are pure: each returned centre collects the copies of one true centre.
        cluster_of = {}
        for z, lab in zip(result.assignments, labels, strict=True):
            for col, true_id in zip(z.tolist(), lab.tolist(), strict=True):
                assert cluster_of.setdefault(col, true_id) == true_id


def test_matcher_without_a_price_keeps_more_centres_than_planted():
    # Risk 17: each prompt starts as its own centre and is likelier under it than under another
    # client's drifted copy, so the matcher without a price does not summarise (observed: 24 = T*K).
    # Each prompt still sits near its own truth.
    true, clients, _ = _planted(seed=0)
    result = match_prompts(clients, seed=0)
    assert 4 < len(result.centres) <= 24
    rel_err = torch.cdist(true, result.centres).min(dim=1).values / true.norm(dim=1)
    assert rel_err.max() < 0.1


def test_zero_new_cluster_cost_equals_no_price():
    _, clients, _ = _planted(seed=4, rel_noise=0.02)
    a = match_prompts(clients, seed=1)
    b = match_prompts(clients, seed=1, new_cluster_cost=0.0)
    assert torch.equal(a.centres, b.centres)
    assert all(np.array_equal(x, y) for x, y in zip(a.assignments, b.assignments, strict=True))


def test_deterministic_and_leaves_global_rng_alone():
    _, clients, _ = _planted(seed=5)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = match_prompts(torch.stack(clients), seed=7, new_cluster_cost=1.0)
    assert torch.equal(torch.get_rng_state(), state)
    b = match_prompts(clients, seed=7, new_cluster_cost=1.0)  # list input: same as stacked
    assert torch.equal(a.centres, b.centres)
    assert a.objective_trace == b.objective_trace
    assert all(np.array_equal(x, y) for x, y in zip(a.assignments, b.assignments, strict=True))


def test_list_input_with_different_client_sizes():
    gen = torch.Generator().manual_seed(0)
    sizes = [3, 5, 1, 2]
    clients = [torch.randn(n, 8, generator=gen) for n in sizes]
    result = match_prompts(clients, outer_loops=3, seed=0)
    _check_one_to_one(result, sizes)
    assert result.centres.shape[1] == 8 and len(result.centres) <= sum(sizes)
    assert result.centres.dtype == torch.float32


def test_invalid_input():
    with pytest.raises(ValueError, match="no clients"):
        match_prompts([])
    with pytest.raises(ValueError, match="client 1"):
        match_prompts([torch.zeros(2, 4), torch.zeros(2, 5)])
    with pytest.raises(ValueError, match="client 0"):
        match_prompts([torch.zeros(0, 4)])
    with pytest.raises(ValueError, match="new_cluster_cost"):
        match_prompts([torch.zeros(2, 4)], new_cluster_cost=-1.0)
    with pytest.raises(ValueError, match="outer_loops"):
        match_prompts([torch.zeros(2, 4)], outer_loops=0)


def test_realistic_size_is_one_to_one():
    # speed at this size is measured by benchmarks/matcher_speed.py, not asserted here
    gen = torch.Generator().manual_seed(0)
    local = torch.randn(5, 20, 384, generator=gen)
    result = match_prompts(local, outer_loops=5)
    _check_one_to_one(result, [20] * 5)


# ----- the whole loop replayed from the module docstring ------------------------------------------
def _copies(sizes=(2, 3, 2), d=3, k=3, noise=0.15, seed=0, offset=None):
    """Clients holding noisy float64 copies of some of k points; offset is added to every row."""
    gen = torch.Generator().manual_seed(seed)
    truth = torch.randn(k, d, generator=gen, dtype=torch.float64)
    clients = []
    for n in sizes:
        held = torch.randperm(k, generator=gen)[:n]
        clients.append(truth[held] + noise * torch.randn(n, d, generator=gen, dtype=torch.float64))
    return clients if offset is None else [q + torch.as_tensor(offset, dtype=torch.float64) for q in clients]


# Cases: the joint and the official costs, with and without a numeric price (the price makes the
# count of other clients per column matter), standardised prompts whose columns have far apart means,
# and "auto" standardised (the default) or not (the merge radius is then theta^2 in raw units).
_REPLAYED = {
    "joint-price": ({}, {"lr": 0.02, "lam": 1.0}),
    "joint-no-price": ({}, {"lr": 0.02}),
    "official": ({}, {"lr": 0.02, "cost": "official"}),
    "official-price": ({"seed": 1}, {"lr": 0.02, "lam": 0.5, "cost": "official"}),
    "standardised-price": ({"offset": [40.0, -25.0, 3.0]}, {"lr": 0.05, "lam": 1.0, "standardise": True}),
    "auto": ({"offset": [5.0, 0.0, -2.0], "seed": 2}, {"lr": 0.05, "auto": True, "standardise": True}),
    "auto-raw": ({"seed": 3}, {"lr": 0.05, "auto": True}),
}


@pytest.mark.parametrize("case", list(_REPLAYED))
def test_matcher_loop_agrees_with_a_replay_of_the_documented_algorithm(case):
    data, opts = _REPLAYED[case]
    clients = _copies(**data)
    centres, assignments, trace, radius = replay(
        clients, outer_loops=3, hidden=5, seed=data.get("seed", 0), **opts
    )
    kwargs = {"outer_loops": 3, "hidden": 5, "lr": opts["lr"], "seed": data.get("seed", 0)}
    kwargs["cost"] = opts.get("cost", "joint")
    if opts.get("auto"):
        kwargs["new_cluster_cost"] = "auto"
    else:
        kwargs["new_cluster_cost"] = opts.get("lam")
    kwargs["standardise"] = opts.get("standardise", False)
    result = match_prompts(clients, **kwargs)
    for got, want in zip(result.assignments, assignments, strict=True):
        np.testing.assert_array_equal(got, want)
    assert result.centres.dtype == torch.float64
    np.testing.assert_allclose(result.centres.numpy(), centres.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(result.objective_trace, trace, rtol=1e-9)
    if radius is None:
        assert result.merge_radius is None
    else:
        assert result.merge_radius == pytest.approx(radius, rel=1e-9)


def test_defaults_are_fedprimes_five_loops_hidden_128_lr_1e3_seed_0():
    # methods.md: FedPrime runs PFPT's aggregator with 5 outer loops, hidden size 128, Adam lr 1e-3;
    # the replay with those settings and seed 0 must give what a call with no options gives.
    clients = _copies(sizes=(2, 2), d=3, seed=4)
    centres, assignments, trace, _ = replay(clients, outer_loops=5, hidden=128, lr=1e-3, seed=0)
    result = match_prompts(clients)
    assert len(result.objective_trace) == 5
    np.testing.assert_allclose(result.objective_trace, trace, rtol=1e-9)
    np.testing.assert_allclose(result.centres.numpy(), centres.numpy(), rtol=1e-9, atol=1e-9)
    for got, want in zip(result.assignments, assignments, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_single_client_keeps_its_own_prompts_with_int64_assignments():
    # One client cannot merge with anyone: each prompt gets its own centre. With lr = 0 Adam never
    # moves phi, so the centres are exactly the client's prompts, in the rows the assignment names.
    q = torch.tensor([[0.5, -1.0, 2.0], [3.0, 0.25, -0.5], [-2.0, 1.5, 1.0]], dtype=torch.float64)
    result = match_prompts([q], outer_loops=2, hidden=4, lr=0.0)
    assert len(result.centres) == 3
    (z,) = result.assignments
    assert z.dtype == np.int64  # "an int array" (MatchResult), usable as an index
    assert torch.equal(result.centres[torch.as_tensor(z)], q)
    assert torch.equal(result.centres[z], q)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_prompts_give_centres_in_their_dtype(dtype):
    # The work is done in float32 (half-precision rows are exact there). With lr = 0 phi never moves
    # and these rows are >= 1.4 apart against stds near 0.5 (a gap of > 4 nats), so each prompt stays on
    # its own initial centre: the centres are the input rows, returned in the input's dtype.
    gen = torch.Generator().manual_seed(0)
    clients = [torch.randn(2, 3, generator=gen).to(dtype) for _ in range(2)]
    result = match_prompts(clients, outer_loops=2, hidden=4, lr=0.0)
    assert result.centres.dtype == dtype
    for q, z in zip(clients, result.assignments, strict=True):
        assert torch.equal(result.centres[torch.as_tensor(z)], q)


def test_integer_prompts_give_float32_centres():
    # Integer prompts have no float dtype of their own: float32, as the work. lr = 0 and rows >= 3.6
    # apart keep each prompt on its own initial centre, so the centres are the rows as float32.
    clients = [torch.tensor([[1, 2], [3, 5]]), torch.tensor([[-4, 2]])]
    result = match_prompts(clients, outer_loops=2, hidden=4, lr=0.0)
    assert result.centres.dtype == torch.float32
    for q, z in zip(clients, result.assignments, strict=True):
        assert torch.equal(result.centres[torch.as_tensor(z)], q.to(torch.float32))


class _SaysMeta(torch.Tensor):
    """CPU data whose ``.device`` says meta, standing in for an accelerator tensor's cuda."""

    @property
    def device(self):
        return torch.device("meta")


def test_centres_go_to_the_first_clients_device():
    # The matcher works on CPU and sends the centres to the device of the first client's prompts:
    # here meta, so the returned tensor really is a meta tensor (is_meta reads the storage's device).
    first = torch.randn(2, 3, dtype=torch.float64).as_subclass(_SaysMeta)
    assert first.device.type == "meta" and not first.is_meta
    result = match_prompts([first, torch.randn(2, 3, dtype=torch.float64)], outer_loops=1, hidden=4)
    assert result.centres.is_meta
    assert result.centres.dtype == torch.float64 and tuple(result.centres.shape[1:]) == (3,)
