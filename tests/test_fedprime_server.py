"""FedPrime's server and a federation round whose inter pool changes size.

FedAvg parts are checked against sums worked out by hand; the inter pool against planted
prompts: clients hold noisy copies of known prompts at the real init scale, and the expected
pool is the sample-weighted mean of each prompt's copies, computed here directly. The calibrated
new-centre price is checked through FedPrime's own matching path on planted scenarios (the
matcher itself is tested in test_prob_matching.py / test_matcher_calibration.py).
"""

import math

import numpy as np
import pytest
import torch
from fixtures import tiny_backbone, tiny_bundle

from fedbench.aggregation.matching_scenarios import make_scenario
from fedbench.data.loader import make_loader
from fedbench.federation.loop import run_experiment
from fedbench.methods.base import ClientUpdate, TrainSettings
from fedbench.methods.fedprime import (
    FedPrimeAggregator,
    FedPrimeModule,
    FedPrimeOfficialOptions,
    FedPrimeOptions,
)
from fedbench.methods.fedprime.aggregator import inter_centres, used_union


def update(c, n, used, **state):
    return ClientUpdate(c, state, n, {"used_inter": used})


def test_fedavg_parts_are_the_sample_weighted_mean():
    a = {
        "intra_pool": torch.full((3, 2), 1.0),
        "pooler.dense.bias": torch.tensor([0.0, 4.0]),
        "head.net.3.bias": torch.tensor([8.0]),
    }
    b = {
        "intra_pool": torch.full((3, 2), 5.0),
        "pooler.dense.bias": torch.tensor([4.0, 0.0]),
        "head.net.3.bias": torch.tensor([0.0]),
    }
    pool = torch.eye(6)[:, :4] * 0.03  # identical inter pools: the merged pool is that pool at the used rows
    agg = FedPrimeAggregator(FedPrimeOptions(kappa=2))
    out = agg.aggregate(
        {},
        [update(0, 1, [0, 2], **a, inter_pool=pool), update(1, 3, [2, 3], **b, inter_pool=pool)],
        0,
        seed=0,
    )
    assert torch.allclose(out["intra_pool"], torch.full((3, 2), 4.0))  # (1 * 1 + 3 * 5) / 4
    assert torch.allclose(out["pooler.dense.bias"], torch.tensor([3.0, 1.0]))
    assert torch.allclose(out["head.net.3.bias"], torch.tensor([2.0]))
    assert agg.metadata()["inter_pool_size"] == 3 and agg.metadata()["inter_used_union"] == 3
    assert sorted(out["inter_pool"].argmax(1).tolist()) == [0, 2, 3]  # rows 0, 2, 3 of the union
    only_intra = agg.aggregate(
        {},
        [
            ClientUpdate(0, {"intra_pool": a["intra_pool"]}, 1),
            ClientUpdate(1, {"intra_pool": b["intra_pool"]}, 3),
        ],
        0,
        0,
    )
    assert set(only_intra) == {"intra_pool"} and agg.metadata() == {}


def planted(d=384, size=10, union=(1, 3, 6, 8), rho=0.3, n_clients=4, seed=0):
    """Pools [size, d] at the real init scale: rows in ``union`` are noisy copies of shared truth
    prompts (noise RMS rho times the prompt RMS), other rows unrelated per client."""
    g = torch.Generator().manual_seed(seed)
    v = math.sqrt(6 / (3 * 32 * 32 + d))
    truth = (torch.rand(size, d, generator=g) * 2 - 1) * v
    pools = []
    for _ in range(n_clients):
        pool = (torch.rand(size, d, generator=g) * 2 - 1) * v  # rows outside the union: must be dropped
        pool[list(union)] = truth[list(union)] + torch.randn(
            len(union), d, generator=g
        ) * rho * v / math.sqrt(3)
        pools.append(pool)
    return truth, pools


def test_inter_pool_recovers_planted_prompts():
    truth, pools = planted()
    n = [10, 20, 30, 40]
    used = [[1, 3], [3, 6], [1, 6], [8]]  # union {1, 3, 6, 8}
    updates = [update(c, n[c], used[c], inter_pool=p) for c, p in enumerate(pools)]
    agg = FedPrimeAggregator(FedPrimeOptions(kappa=2))
    out = agg.aggregate({}, updates, 0, seed=3)["inter_pool"]
    assert out.shape == (4, 384) and agg.metadata()["inter_pool_size"] == 4
    for j in (1, 3, 6, 8):
        expected = sum(n[c] * pools[c][j] for c in range(4)) / sum(n)
        err = (out - expected).norm(dim=1)
        assert err.min() < 1e-5 * expected.norm()  # one centre is exactly this prompt's weighted mean
        truth_err = (out[err.argmin()] - truth[j]).norm() / truth[j].norm()
        n_eff = sum(n) ** 2 / sum(x * x for x in n)  # 3.33 copies' worth of averaging
        assert truth_err < 1.4 * 0.3 / math.sqrt(n_eff)


def test_official_matcher_mixes_raw_prompts_and_keeps_unit_scale_copies_apart():
    """At the prompts' raw scale (U(-0.04, 0.04)) the code's matcher, whose std starts near 0.5,
    cannot tell different prompts apart and puts copies of different prompts in one centre; on
    standardised prompts it keeps every copy apart (risk 17). Centres are checked through the
    assignments: a centre is "mixed" when it holds rows of more than one planted prompt."""
    truth, pools = planted()
    local = [p[[1, 3, 6, 8]] for p in pools]
    centres, result = inter_centres(local, [10.0] * 4, FedPrimeOfficialOptions(kappa=2), 0)
    z = np.stack(result.assignments)  # [client, planted prompt] -> centre
    assert any(len(set(np.where(z == k)[1])) > 1 for k in range(centres.shape[0]))
    apart, _ = inter_centres(local, [10.0] * 4, FedPrimeOfficialOptions(kappa=2, standardise=True), 0)
    assert apart.shape[0] > 8
    updates = [update(c, 10, [1, 3, 6, 8], inter_pool=p) for c, p in enumerate(pools)]
    out = FedPrimeAggregator(FedPrimeOptions(kappa=2, centre_update="matcher")).aggregate(
        {}, updates, 0, seed=3
    )["inter_pool"]
    copies = torch.stack([p[[1, 3, 6, 8]] for p in pools]).reshape(-1, 384)
    nearest = torch.cdist(out, copies).min(1).values  # a few Adam steps at lr 1e-3 in RMS units
    assert out.shape[0] == 4 and (nearest < 0.05 * copies.norm(dim=1).mean()).all()


def test_pool_is_padded_to_kappa_with_the_fedavg_of_dropped_rows():
    # row j of client c is j + 1 + 0.01 c everywhere; both clients report using only row 2
    pools = [torch.arange(1.0, 6.0)[:, None].expand(5, 3) + c * 0.01 for c in range(2)]
    out = FedPrimeAggregator(FedPrimeOptions(kappa=3)).aggregate(
        {}, [update(0, 1, [2], inter_pool=pools[0]), update(1, 3, [2], inter_pool=pools[1])], 0, 0
    )
    # weights 1/4, 3/4: row j -> j + 1.0075; the two copies of row 2 merge, then dropped rows 0 and 1 follow
    assert torch.allclose(out["inter_pool"], torch.tensor([3.0075, 1.0075, 2.0075])[:, None].expand(3, 3))


def test_a_resized_inter_pool_trains_and_evaluates():
    bundle = tiny_bundle()
    module = FedPrimeModule(
        tiny_backbone(), bundle.num_classes, TrainSettings(lr=1e-2), FedPrimeOptions(pool_size=6, kappa=2)
    )
    module.load_trainable_state({"inter_pool": torch.randn(9, 32) * 0.04})
    assert module.inter_pool.shape == (9, 32)
    batch = next(
        iter(
            make_loader(
                bundle,
                bundle.splits["train"][:7],
                torch.zeros(7, dtype=torch.long).numpy(),
                batch_size=7,
                shuffle=False,
            )
        )
    )
    module.train()
    module.on_train_epoch_start()
    module.training_step(batch, 0).backward()
    assert module.inter_pool.grad.abs().sum(1).gt(0).sum() >= 2  # the retrieved rows learn
    module.eval()
    with torch.no_grad():
        assert module({k: v[:1] for k, v in batch.items()}).shape == (1, bundle.num_classes)


def test_federation_rounds_record_the_inter_pool_size(tiny_cfg):
    cfg = tiny_cfg("fedprime", rounds=2)
    record = run_experiment(cfg)
    sizes = [r["inter_pool_size"] for r in record["rounds"]]
    assert len(sizes) == 2 and all(5 <= s for s in sizes)  # never below kappa = 5
    assert set(record["final"]) and 0 <= record["personalized"]["accuracy"] <= 1


@pytest.mark.parametrize(
    "kind, extra",
    [
        ("shared", {"common": 0.9}),  # every client returns all 12 (trained prompts that moved together)
        ("subsets", {}),  # each client holds its own 5-12 of the 12 (the collapse case)
    ],
)
def test_calibrated_price_recovers_the_planted_prompt_count(kind, extra):
    """FedPrime's default matching (joint cost, new_cluster_cost="auto") returns K centres within
    20% on planted clusters at noise well below the separation; the code's matcher does not
    (it keeps most copies apart), and without a price fedbench's joint cost hardly merges."""
    for seed in range(2):
        scenario = make_scenario(kind, 12, 5, 0.2, seed=seed, **extra)
        weights = [float(len(c)) for c in scenario.clients]
        centres, _ = inter_centres(scenario.clients, weights, FedPrimeOptions(), seed)
        assert abs(centres.shape[0] - scenario.k_held) <= 0.2 * scenario.k_held
        no_price, _ = inter_centres(scenario.clients, weights, FedPrimeOptions(new_cluster_cost=None), seed)
        assert no_price.shape[0] > 2 * scenario.k_held
    if kind == "shared":  # through the aggregator: pools of one size, every row reported used
        agg = FedPrimeAggregator(FedPrimeOptions())
        updates = [update(c, 10, list(range(12)), inter_pool=p) for c, p in enumerate(scenario.clients)]
        assert abs(agg.aggregate({}, updates, 0, seed=0)["inter_pool"].shape[0] - 12) <= 2


def test_used_union_counts_a_client_without_a_report_as_using_its_whole_pool():
    assert used_union([{"used_inter": [3, 1]}, {"used_inter": None}], 4) == [0, 1, 2, 3]
    assert used_union([{"used_inter": [1]}, {}], 3) == [0, 1, 2]  # no key at all: also the whole pool
    assert used_union([{"used_inter": [np.int64(2), 0]}, {"used_inter": []}], 5) == [0, 2]


def test_used_union_adds_the_server_used_rows_inside_the_pool_only():
    # pool of 4 rows 0..3: server rows 0 and 3 are kept, -1 and 4 lie outside the pool and are dropped
    metas = [
        {"used_inter": [1], "server_used_inter": [0, 4]},
        {"used_inter": [], "server_used_inter": [3, -1]},
    ]
    assert used_union(metas, 4) == [0, 1, 3]
    assert used_union([{"used_inter": [2], "server_used_inter": [0]}], 3) == [0, 2]


def _three_clients_pooler(values=(1.0, 2.0, 3.0)):
    """Clients 0..2 with n_samples 1, 2, 3 whose only shared tensor is a pooler bias [v, -v]."""
    return [
        ClientUpdate(c, {"pooler.dense.bias": torch.tensor([v, -v])}, c + 1) for c, v in enumerate(values)
    ]


@pytest.mark.parametrize(
    ("options", "round_index", "expected"),
    [
        # weights 1, 2, 3: (1 * 1 + 2 * 2 + 3 * 3) / 6 = 14 / 6 when every client's own state counts
        (FedPrimeOptions(), 1, 14 / 6),
        (FedPrimeOfficialOptions(), 0, 14 / 6),  # round 1 of the code trains separate copies
        (FedPrimeOfficialOptions(), 1, 3.0),  # later rounds: N references to the last client's result
        (FedPrimeOfficialOptions(parallel_first_round=False), 0, 3.0),
    ],
)
def test_official_aliasing_averages_the_last_clients_state_from_round_two(options, round_index, expected):
    out = FedPrimeAggregator(options).aggregate({}, _three_clients_pooler(), round_index, 0)
    assert torch.allclose(out["pooler.dense.bias"], torch.tensor([expected, -expected]))


def test_a_single_client_round_returns_its_own_state():
    state = {"pooler.dense.bias": torch.tensor([0.5, 2.0])}
    out = FedPrimeAggregator(FedPrimeOptions()).aggregate({}, [ClientUpdate(0, state, 4)], 1, 0)
    assert torch.equal(out["pooler.dense.bias"], state["pooler.dense.bias"])


def test_metadata_before_any_round_is_empty():
    # the loop may record metadata for a round in which the server aggregated nothing
    assert FedPrimeAggregator(FedPrimeOptions()).metadata() == {}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_inter_centres_of_a_single_client_are_its_own_rows_in_its_dtype(dtype):
    # One client: the matcher maps its rows to distinct centres, each the mean of one row (exact
    # in float64), cast back to the prompts' dtype.
    local = [torch.tensor([[1.0, 0.5], [-2.0, 0.25], [0.75, 3.0]], dtype=dtype)]
    opts = FedPrimeOptions(new_cluster_cost=1.0, outer_loops=2, matcher_hidden=4)
    centres, result = inter_centres(local, [7.0], opts, 0)
    assert centres.dtype == dtype and centres.shape == (3, 2)
    assert torch.equal(centres[torch.as_tensor(result.assignments[0])], local[0])


def test_aliasing_keeps_each_clients_own_id_samples_meta_personal_and_loss():
    # only the shared state is the last client's; the rest of each update stays its own
    updates = [
        ClientUpdate(c, {"pooler.dense.bias": torch.tensor([float(c)])}, c + 1, {"m": c}, {"p": c}, 0.5 + c)
        for c in range(3)
    ]
    out = FedPrimeAggregator(FedPrimeOfficialOptions()).aliased(updates, 1)
    assert [(u.client_id, u.n_samples, u.meta, u.personal, u.loss) for u in out] == [
        (0, 1, {"m": 0}, {"p": 0}, 0.5),
        (1, 2, {"m": 1}, {"p": 1}, 1.5),
        (2, 3, {"m": 2}, {"p": 2}, 2.5),
    ]
    assert all(u.state is updates[2].state for u in out)


def test_inter_pools_of_different_shapes_are_refused_naming_them():
    pools = [torch.zeros(4, 2), torch.zeros(5, 2), torch.zeros(4, 2)]
    with pytest.raises(ValueError) as err:
        FedPrimeAggregator(FedPrimeOptions()).aggregate_inter(pools, [{}] * 3, [1.0] * 3, 0)
    assert str(err.value) == "FedPrime: clients returned inter pools of shapes [(4, 2), (5, 2)]"


def _rows(size, d, offset, dtype=torch.float32):
    """A pool whose row j is j + 1 + offset in every column."""
    return (torch.arange(1.0, size + 1.0)[:, None].expand(size, d) + offset).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_single_clients_inter_pool_is_its_used_rows_then_its_unused_ones(dtype):
    # one client using rows 1 and 3 of a 4-row pool, kappa 3: its two rows, then unused row 0
    out = FedPrimeAggregator(FedPrimeOptions(kappa=3)).aggregate(
        {}, [update(0, 5, [1, 3], inter_pool=_rows(4, 2, 0.0, dtype))], 0, 0
    )["inter_pool"]
    assert out.dtype == dtype and out.device.type == "cpu"
    assert sorted(out[:2, 0].tolist()) == [2.0, 4.0] and out[2].tolist() == [1.0, 1.0]


def test_the_padding_reads_every_row_of_a_pool_longer_than_wide():
    # 5 rows of width 2, both clients use rows 0 and 1, kappa 4: the two merged rows, then unused
    # rows 2 and 3 (weights 1/4, 3/4: row j -> j + 1.0075)
    pools = [_rows(5, 2, 0.01 * c) for c in range(2)]
    agg = FedPrimeAggregator(FedPrimeOptions(kappa=4))
    out = agg.aggregate(
        {}, [update(0, 1, [0, 1], inter_pool=pools[0]), update(1, 3, [0, 1], inter_pool=pools[1])], 0, 0
    )
    got = out["inter_pool"][:, 0].tolist()
    assert sorted(got[:2]) == pytest.approx([1.0075, 2.0075]) and got[2:] == pytest.approx([3.0075, 4.0075])


def test_metadata_reports_the_calibrated_merge_radius_only_when_the_price_is_auto():
    # "auto" (the default) prices by a merge radius the matcher reports; the aggregator passes it on
    from fedbench.aggregation.prob_matching import match_prompts

    pools = [_rows(3, 2, 0.01 * c) for c in range(2)]
    ups = [update(0, 1, [0, 1, 2], inter_pool=pools[0]), update(1, 1, [0, 1, 2], inter_pool=pools[1])]
    opts = FedPrimeOptions(outer_loops=2, matcher_hidden=4)
    agg = FedPrimeAggregator(opts)
    agg.aggregate({}, ups, 0, 7)
    direct = match_prompts(
        pools, outer_loops=2, hidden=4, lr=opts.matcher_lr, seed=7, new_cluster_cost="auto"
    )
    assert direct.merge_radius is not None and agg.metadata()["matcher_merge_radius"] == direct.merge_radius
    fixed = FedPrimeAggregator(FedPrimeOptions(outer_loops=2, matcher_hidden=4, new_cluster_cost=1.0))
    fixed.aggregate({}, ups, 0, 7)
    assert not any(k.startswith("matcher_") for k in fixed.metadata())
