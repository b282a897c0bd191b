"""PPT's client and server: usage counts over all local batches on a hand-built example, the
retrieval rules, the exactness of dropping all-masked tokens, and the pool aggregation."""

import numpy as np
import pytest
import torch
from fixtures import tiny_pair

import fedbench.methods.ppt.model as ppt_model
from fedbench.aggregation.matched_centres import centre_means
from fedbench.batch import TEXT_MISSING
from fedbench.data.loader import make_loader
from fedbench.methods.base import ClientUpdate, TrainSettings
from fedbench.methods.ppt import PPTAggregator, PPTModule, PPTOptions
from fedbench.methods.ppt.aggregator import used_rows
from fedbench.methods.ppt.model import select, usage_counts
from fedbench.methods.ppt.prompted import prompted_readout, visible_tokens


@pytest.fixture(scope="module")
def tiny():
    return tiny_pair()


def batches(bundle, sizes, code=TEXT_MISSING):
    """Batches of the given sizes from the tiny training split (every text missing)."""
    rows = np.sort(bundle.splits["train"])[: sum(sizes)]
    out, at = [], 0
    for n in sizes:
        idx = rows[at : at + n]
        out.append(
            next(iter(make_loader(bundle, idx, np.full(n, code, np.int8), batch_size=n, shuffle=False)))
        )
        at += n
    return out


def hand_module(tiny, selection, monkeypatch, features):
    """A PPT client whose pool is e_0..e_3, W_q = identity, and whose frozen query feature for the
    k-th forward is ``features[k]``: the retrieval of every sample is then known by construction."""
    bundle, backbone = tiny
    h = backbone.hidden_size
    opts = PPTOptions(pool_size=4, kappa=2, adaptor_width=8, selection=selection)
    module = PPTModule(backbone, bundle.num_classes, TrainSettings(), opts)
    with torch.no_grad():
        module.pool.copy_(torch.eye(4, h))
        module.query.weight.copy_(torch.eye(h))
    calls = iter(features)
    monkeypatch.setattr(ppt_model, "query_features", lambda backbone, batch: next(calls))
    return module


def feature(*weights, h=32):
    """A query feature sum_j w_j e_j (its cosine with prompt e_j is proportional to w_j)."""
    f = torch.zeros(h)
    for j, w in enumerate(weights):
        f[j] = w
    return f


# Hand-built rounds: batch 1 = two samples, batch 2 = one sample.
#   sample a: 3 e0 + 2 e1 -> top-2 {0, 1};  sample b: 3 e0 + 2 e2 -> {0, 2};  sample c: 2 e0 + 3 e3 -> {3, 0}
FEATURES = [torch.stack([feature(3, 2, 0, 0), feature(3, 0, 2, 0)]), feature(2, 0, 0, 3)[None]]


def run_round(module, tiny):
    module.on_round_start({}, 0)
    module.train()
    for batch in batches(tiny[0], [2, 1]):
        module(batch)
    return module.round_metadata()["usage"]


def test_usage_counts_per_sample_over_all_local_batches(tiny, monkeypatch):
    # per sample: prompt 0 thrice (a, b, c), 1 once (a), 2 once (b), 3 once (c) -> / 3
    module = hand_module(tiny, "sample", monkeypatch, FEATURES * 2)
    assert run_round(module, tiny) == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])
    # the next round starts a fresh count (the code resets its checklist after aggregation)
    assert run_round(module, tiny) == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])


def test_usage_counts_batchwise_majority(tiny, monkeypatch):
    # batch 1: top lists {0,1}, {0,2}: counts 0:2, 1:1, 2:1 -> majority [0, 1] (tie to the lower
    # index) for both samples: +2 on 0 and 1. batch 2: {3, 0} -> [0, 3] for its one sample: +1 each.
    # totals 0:3, 1:2, 2:0, 3:1 -> / 3
    module = hand_module(tiny, "batch", monkeypatch, FEATURES)
    assert run_round(module, tiny) == pytest.approx([1.0, 2 / 3, 0.0, 1 / 3])


def test_evaluation_does_not_count(tiny, monkeypatch):
    module = hand_module(tiny, "sample", monkeypatch, FEATURES)
    module.on_round_start({}, 0)
    module.eval()
    with torch.no_grad():
        for batch in batches(tiny[0], [2, 1]):
            module(batch)
    assert module.round_metadata()["usage"] == [0.0] * 4


def test_select_and_usage_by_hand():
    sim = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.7, 0.1], [0.6, 0.0, 0.4, 0.9]])
    assert select(sim, 2, "sample").tolist() == [[0, 2], [1, 2], [3, 0]]
    # top-2 lists {0,2}, {1,2}, {3,0}: counts 0:2, 1:1, 2:2, 3:1 -> [0, 2] for every row
    assert select(sim, 2, "batch").tolist() == [[0, 2]] * 3
    assert usage_counts(select(sim, 2, "sample"), 5).tolist() == [2, 1, 2, 1, 0]


def test_dropping_masked_tokens_is_exact(tiny):
    """The image-only sequence without its all-masked text columns gives the same read-out."""
    bundle, backbone = tiny
    batch = batches(bundle, [5])[0]
    prompts = torch.randn(3, backbone.hidden_size) * 0.05
    full_tokens, full_keep = backbone.embed(batch)
    tokens, keep = visible_tokens(backbone, batch)
    assert tokens.shape[1] < full_tokens.shape[1]
    torch.testing.assert_close(
        prompted_readout(backbone, tokens, keep, prompts),
        prompted_readout(backbone, full_tokens, full_keep, prompts),
        atol=1e-5,
        rtol=1e-5,
    )


def test_used_rows_and_centre_means_by_hand():
    assert used_rows([[1.0, 0.0, 0.5], [0.0, 0.0, 1.0]], 3) == [0, 2]
    assert used_rows([[0.0, 0.0, 1.0], None], 3) == [0, 1, 2]  # no report: keep every row
    local = [torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[3.0, 0.0]])]
    # centre 0 <- client 0 row 0 (weight 1) and client 1 row 0 (weight 3): (1 + 9) / 4 = 2.5
    # centre 1 <- client 0 row 1 alone
    out = centre_means(local, [np.array([0, 1]), np.array([0])], [1.0, 3.0], 2)
    torch.testing.assert_close(out, torch.tensor([[2.5, 0.0], [0.0, 2.0]], dtype=torch.float64))


def test_pool_aggregation_drops_unused_rows_and_merges_copies():
    """Three clients hold near-copies of five well-separated prompts and used rows {0,1}, {1,2},
    {0}: rows 3 and 4 are dropped and each used row comes back once, as the sample-weighted mean of
    its copies; the query projection and head are averaged by sample count."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(5, 16, generator=gen)
    pools = [base + 1e-3 * torch.randn(5, 16, generator=gen) for _ in range(3)]
    sizes = [10, 30, 60]
    usage = [[1.0, 0.5, 0, 0, 0], [0, 1.0, 0.2, 0, 0], [1.0, 0, 0, 0, 0]]
    updates = [
        ClientUpdate(k, {"pool": p, "head": torch.full((2,), float(k))}, n, meta={"usage": u})
        for k, (p, n, u) in enumerate(zip(pools, sizes, usage, strict=True))
    ]
    opts = PPTOptions(kappa=2, outer_loops=10, new_centre="fixed", new_centre_cost=2.0)
    agg = PPTAggregator(opts)
    out = agg.aggregate({}, updates, 0, seed=1)
    assert agg.metadata()["pool_used"] == 3 and agg.metadata()["pool_size"] == 3
    expected = torch.stack([sum(n * p[r] for n, p in zip(sizes, pools, strict=True)) / 100 for r in range(3)])
    order = torch.cdist(out["pool"], base[:3]).argmin(0)  # centres come back in the matcher's order
    torch.testing.assert_close(out["pool"][order], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(out["head"], torch.full((2,), (0 * 10 + 1 * 30 + 2 * 60) / 100))
