"""PPT's ``new_centre="drift"``: the matcher's merge radius from the clients' own updates
(aggregation/matching_calibration.update_radius), worked by hand, and the failure it answers: on a
pool collapsed onto one direction, with clients stepping further than the prompts are apart, the
fixed price splits trained copies off (the pool multiplies, docs/ppt.md section 4), in the pool's
unit or in one taken from the clients' steps, while the drift radius merges nearly every copy."""

import numpy as np
import pytest
import torch
from test_pool_and_gmm_servers import stubbed

from fedbench.aggregation.matching_calibration import update_radius
from fedbench.aggregation.prob_matching import match_prompts
from fedbench.methods.base import ClientUpdate
from fedbench.methods.ppt import PPTAggregator, PPTOptions


def test_the_radius_is_twice_the_largest_clients_median_squared_step_without_untrained_rows():
    # client a: squared norms 1, 4, 9 (median 4) and an untouched row; client b: 16, 2.25, 0.25
    # (median 2.25) and two untouched rows; so theta^2 = 2 * max(4, 2.25) = 8
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 4.0], [0.0, 0.0], [1.5, 0.0], [0.0, 0.0], [0.3, 0.4]])
    assert update_radius([a, b]) == pytest.approx(8.0, rel=1e-12)
    # an even count of trained rows takes the mean of the two middle ones: 1, 4, 9, 16 -> 6.5
    c = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 4.0]])
    assert update_radius([c]) == pytest.approx(13.0, rel=1e-12)
    assert update_radius([torch.zeros(3, 2), torch.zeros(1, 2)]) is None


def test_the_server_measures_each_clients_steps_on_the_rows_it_used_against_the_rounds_pool(monkeypatch):
    start = torch.tensor([[1.0, 1.0], [2.0, -1.0], [0.0, 5.0]])
    # client a used rows 0 and 1 (steps (3, 4) and (0, 1): 25 and 1, median 13); its row 2 moved
    # by (10, 0) but it did not use it, so that step does not count
    a = start + torch.tensor([[3.0, 4.0], [0.0, 1.0], [10.0, 0.0]])
    # client b sent no usage, so all its rows count: steps 1, 0 (untouched), 4 -> median 2.5
    b = start + torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    agg, stub = stubbed(monkeypatch, [[0.0, 0.0], [1.0, 1.0]], kappa=2, new_centre="drift")
    updates = [
        ClientUpdate(0, {"pool": a}, 4, meta={"usage": [2.0, 1.0, 0.0]}),
        ClientUpdate(1, {"pool": b}, 4, meta={}),
    ]
    agg.aggregate({"pool": start}, updates, round_index=0, seed=0)
    assert stub.radius == pytest.approx(26.0, rel=1e-12)
    fixed, stub_fixed = stubbed(monkeypatch, [[0.0, 0.0], [1.0, 1.0]], kappa=2)
    fixed.aggregate({"pool": start}, updates, round_index=0, seed=0)
    assert stub_fixed.radius is None  # the fixed price never measures steps


def collapsed_round(seed=0, n=8, d=48, clients=4, spread=0.01, step=0.1):
    """A global pool of n prompts on one direction (norm ~1.4, spread 0.01 per dimension) and the
    clients' pools after a round: each trained half the rows, moving each by N(0, step^2) per
    dimension, ten times the prompts' spread; its other rows come back untouched."""
    rng = np.random.default_rng(seed)
    start = torch.tensor(rng.normal(size=d) * 0.2 + rng.normal(size=(n, d)) * spread)
    pools, usages = [], []
    for _ in range(clients):
        used = rng.random(n) < 0.5
        used[rng.integers(n)] = True
        pools.append(start + torch.tensor(rng.normal(size=(n, d)) * step) * torch.tensor(used)[:, None])
        usages.append(used.astype(float).tolist())
    return start, pools, usages


@pytest.mark.parametrize("seed", [0, 1])
def test_on_a_collapsed_pool_the_fixed_price_multiplies_it_and_the_drift_radius_keeps_it_near_the_used_rows(
    seed,
):
    start, pools, usages = collapsed_round(seed)
    used = sorted({i for u in usages for i in np.flatnonzero(u)})
    sizes = {}
    for new_centre in ("fixed", "drift"):
        agg = PPTAggregator(PPTOptions(pool_size=8, kappa=2, new_centre=new_centre))
        updates = [
            ClientUpdate(t, {"pool": p}, 10, meta={"usage": u})
            for t, (p, u) in enumerate(zip(pools, usages, strict=True))
        ]
        agg.aggregate({"pool": start}, updates, round_index=0, seed=seed)
        sizes[new_centre] = agg.metadata()["pool_size"]
    # measured at seeds 0 and 1: fixed 24 and 23 centres, drift 10 and 9, for 8 used rows (the
    # fixed price splits nearly every trained copy off: 18 and 19 were trained)
    assert sizes["fixed"] >= 2.5 * len(used)
    assert len(used) <= sizes["drift"] <= len(used) + 2
    # Not the unit: the same fixed price on rows standardised by the clients' rms step instead of
    # the rows' spread (by hand, then unstandardised matching) splits them just as well (23, 23)
    local = [p[used] for p in pools]
    trained = [(p - start)[torch.as_tensor(np.flatnonzero(u))] for p, u in zip(pools, usages, strict=True)]
    unit, shift = torch.cat(trained).pow(2).mean().sqrt(), torch.cat(local).mean(0)
    steps_unit = match_prompts(
        [(q - shift) / unit for q in local], outer_loops=50, seed=seed, new_cluster_cost=2.0 * 48
    )
    assert steps_unit.centres.shape[0] >= 2.5 * len(used)


def test_a_given_radius_needs_the_calibrated_price_and_reaches_the_matcher_in_the_prompts_units():
    q = [torch.eye(3), torch.eye(3) + 0.01]
    with pytest.raises(ValueError, match="radius needs new_cluster_cost='auto'"):
        match_prompts(q, new_cluster_cost=1.0, radius=0.5)
    with pytest.raises(ValueError, match="finite value >= 0"):
        match_prompts(q, new_cluster_cost="auto", radius=float("nan"))
    result = match_prompts(q, new_cluster_cost="auto", radius=0.5, outer_loops=2)
    assert result.merge_radius == pytest.approx(0.5, rel=1e-9)  # standardised and mapped back
