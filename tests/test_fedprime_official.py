"""FedPrime's official-code behaviour and the W_q update rule, checked against hand computations.

The model runs on a stub backbone with a text part (a fixed embedding table with position rows,
so [PAD] embeddings are known), whose ``embed`` concatenates text and image tokens and whose
layers only apply the prompter. One local epoch goes through the real Lightning Trainer; the
expected W_q after it is computed here in numpy (float64) from the retrieval formulas.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from fedbench.config import TrainConfig
from fedbench.federation.trainer import make_trainer
from fedbench.methods.base import ClientUpdate, TrainSettings
from fedbench.methods.fedprime import (
    FedPrimeAggregator,
    FedPrimeModule,
    FedPrimeOfficialOptions,
    FedPrimeOptions,
)
from fedbench.methods.fedprime.training import local_batch_size, split_batches

H, L, POOL, KAPPA = 8, 5, 6, 2


class TextStub(nn.Module):
    """Text = table[id] + pos[position] (PAD id 0), image = the batch's own tokens."""

    hidden_size, num_layers = H, 1

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.table, self.pos = torch.randn(10, H, generator=g), torch.randn(L, H, generator=g)
        self.options = SimpleNamespace(max_text_tokens=L)

    def text_embeddings(self, ids):
        return self.table[ids] + self.pos[: ids.shape[1]]

    def embed(self, batch):
        text = self.text_embeddings(batch["text_ids"])
        keep = torch.cat([batch["text_keep"], torch.ones(batch["image"].shape[:2], dtype=torch.bool)], 1)
        return torch.cat([text, batch["image"]], 1), keep

    def run_layers(self, tokens, keep, prompter=None):
        for i in range(self.num_layers):
            tokens, keep = prompter(i, tokens, keep)
        return tokens

    def readout(self, hidden, n_prefix):
        return hidden[:, n_prefix]

    def pooler_state(self):
        return None


def make_batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 10, (n, 3), generator=g)
    keep = torch.tensor([[True, True, True], [True, True, False], [True, True, False]] * (n // 3))
    ids[~keep] = 0
    code = torch.tensor([0, 1, 2] * (n // 3))
    return {
        "text_ids": ids,
        "text_keep": keep,
        "image": torch.randn(n, 2, H, generator=g),
        "code": code,
        "label": torch.arange(n) % 3,
    }


def expected_query_step(module, batch, official: bool) -> dict[str, np.ndarray]:
    """W_q after one step by hand: the regulariser is the only W_q term (indices are discrete).

    S = (1/B) sum_b sum_{j in sel_b} cos(W x_b, p_j);  dcos/dW = ((k_j - c q_b) / |W x_b|) x_b^T
    (k, q unit vectors).  push: loss += 0.01 S; pull: loss += 0.01 (kappa - S);  W <- W - 0.05 * grad.
    """
    text = (module.backbone.table[batch["text_ids"]] + module.backbone.pos[:3]).double().numpy()
    image = batch["image"].double().numpy()
    pad = (module.backbone.table[0] + module.backbone.pos).double().numpy()  # [L, H]
    n_text = batch["text_keep"].sum(1).numpy()
    x = []
    for b in range(len(n_text)):
        real = np.concatenate([text[b, : n_text[b]], image[b]])
        rows = np.concatenate([real, pad[n_text[b] :]]) if official else real  # official: [PAD] too
        x.append(rows.max(0))
    x = np.stack(x)
    out = {}
    for name in module.pools:
        w = getattr(module, f"{name}_query").weight.detach().double().numpy()
        p = getattr(module, f"{name}_pool").detach().double().numpy()
        k = p / np.linalg.norm(p, axis=1, keepdims=True)
        q_raw = x @ w.T
        q = q_raw / np.linalg.norm(q_raw, axis=1, keepdims=True)
        cos = q @ k.T
        top = np.argsort(-cos, axis=1, kind="stable")[:, :KAPPA]
        if official:  # one vote for the whole batch: most frequent, ties to the lower index
            counts = np.bincount(top.ravel(), minlength=POOL)
            vote = sorted(range(POOL), key=lambda j: (-counts[j], j))[:KAPPA]
            top = np.tile(vote, (len(x), 1))
        grad = np.zeros_like(w)
        for b in range(len(x)):
            for j in top[b]:
                grad += np.outer((k[j] - cos[b, j] * q[b]) / np.linalg.norm(q_raw[b]), x[b])
        grad *= 0.01 / len(x) * (1.0 if official else -1.0)  # push adds +S, pull adds -S
        out[name] = w - 0.05 * grad
    return out


@pytest.mark.parametrize("official", [True, False])
def test_query_projection_takes_the_plain_sgd_step_computed_by_hand(official):
    torch.manual_seed(3)
    options = FedPrimeOfficialOptions if official else FedPrimeOptions  # paper: AdamW + W_q's own SGD
    module = FedPrimeModule(TextStub(), 3, TrainSettings(), options(pool_size=POOL, kappa=KAPPA))
    batch = make_batch()
    expected = expected_query_step(module, batch, official)
    head_before = module.head.net[3].bias.detach().clone()
    make_trainer(TrainConfig(), 1).fit(module, torch.utils.data.DataLoader([batch], batch_size=None))
    for name, w in expected.items():
        got = getattr(module, f"{name}_query").weight.detach().double().numpy()
        assert np.allclose(got, w, rtol=0, atol=1e-6), name
        assert np.abs(got - getattr(module, f"{name}_query_init").double().numpy()).max() > 1e-6  # it moved
    assert not torch.equal(module.head.net[3].bias, head_before)  # the rest trained too


def test_global_model_scores_with_the_initial_projection():
    module = FedPrimeModule(
        TextStub(), 3, TrainSettings(), FedPrimeOfficialOptions(pool_size=POOL, kappa=KAPPA)
    )
    with torch.no_grad():
        module.inter_query.weight.mul_(-1.0)  # a client's trained W_q
    assert torch.equal(module.query_weight("inter"), module.inter_query.weight)  # training: its own
    module.eval()
    assert torch.equal(module.query_weight("inter"), module.inter_query_init)  # scoring: W_q(0)


def test_local_batches_cut_loader_batches_and_follow_the_setting():
    chunks = [{"code": torch.arange(4), "x": torch.arange(4) + 10 * i} for i in range(3)]  # 12 rows
    groups = split_batches(chunks, 5)
    assert [[c["x"].tolist() for c in g] for g in groups] == [
        [[0, 1, 2, 3], [10]],
        [[11, 12, 13], [20, 21]],
        [[22, 23]],
    ]
    opts = FedPrimeOfficialOptions()
    assert local_batch_size(opts, torch.tensor([0, 1, 1, 0]), 32) == 512  # one kind missing
    assert local_batch_size(opts, torch.tensor([0, 1, 2]), 32) == 64  # both kinds: the "both" scripts
    assert local_batch_size(FedPrimeOptions(), torch.tensor([1, 2]), 32) == 32  # unset: the loader's


def test_one_optimiser_step_and_one_vote_per_local_batch():
    module = FedPrimeModule(
        TextStub(), 3, TrainSettings(), FedPrimeOfficialOptions(pool_size=POOL, kappa=KAPPA, batch_size=4)
    )
    steps = []
    original = module.local_step
    module.local_step = lambda group: (steps.append(sum(len(c["code"]) for c in group)), original(group))
    loader = torch.utils.data.DataLoader([make_batch(3, 0), make_batch(3, 1)], batch_size=None)
    make_trainer(TrainConfig(), 1).fit(module, loader)
    assert steps == [6]  # 6 rows holding both kinds of missing samples -> batch_size_both 64: one step
    module.options.batch_size_both = None
    steps.clear()
    module.on_round_start({}, 1)
    make_trainer(TrainConfig(), 1).fit(module, loader)
    assert steps == [4, 2]
    assert module.round_metadata()["used_inter"] == sorted(module.round_metadata()["used_inter"])
    assert len(module.round_metadata()["used_inter"]) == KAPPA  # last batch only, one vote


def official_updates():
    def state(v):
        return {
            "intra_pool": torch.full((POOL, 2), v),
            "pooler.dense.bias": torch.tensor([v]),
            "inter_pool": torch.eye(POOL, 2) * (1 + v),
        }

    metas = [{"used_inter": [0]}, {"used_inter": [1], "server_used_inter": [3]}, {"used_inter": [1]}]
    return [ClientUpdate(c, state(float(c)), 10 * (c + 1), metas[c]) for c in range(3)]


def test_official_server_aliases_shared_tensors_from_round_two(monkeypatch):
    seen = {}

    def fake_match(local, **kw):
        seen.update(local=[q.clone() for q in local], **kw)
        from fedbench.aggregation.prob_matching import MatchResult

        return MatchResult(local[0], [np.arange(len(q)) for q in local], [])

    monkeypatch.setattr("fedbench.aggregation.matched_centres.match_prompts", fake_match)
    agg = FedPrimeAggregator(FedPrimeOfficialOptions(kappa=1))
    assert agg.configure_fit(0, [4, 7], {"x": torch.ones(1)}) == {
        4: {"start": {"x": torch.ones(1)}},
        7: {"start": {"x": torch.ones(1)}},
    }
    assert agg.configure_fit(1, [4, 7], {}) == {}
    updates = official_updates()
    out = agg.aggregate({}, updates, 0, seed=0)  # round 1: separate copies, real FedAvg
    assert torch.allclose(out["pooler.dense.bias"], torch.tensor([(0 * 10 + 1 * 20 + 2 * 30) / 60]))
    assert not torch.equal(seen["local"][0], seen["local"][2])
    assert seen["cost"] == "official" and seen["new_cluster_cost"] is None and seen["standardise"] is False
    out = agg.aggregate({}, updates, 1, seed=0)  # round 2 on: everyone holds the last client's tensors
    assert torch.equal(out["intra_pool"], updates[-1].state["intra_pool"])
    assert torch.equal(out["pooler.dense.bias"], torch.tensor([2.0]))
    assert all(torch.equal(q, seen["local"][-1]) for q in seen["local"])  # identical copies matched
    assert seen["local"][0].shape[0] == 3  # union of used rows {0, 1} and the server's {3}


def test_official_matcher_cost_against_the_hand_computation():
    """M_ji = log N(q_j; phi_i, s_i^2) + n * log Bern(c_i^old; pi_i), c^old the previous assignment."""
    from fedbench.aggregation.prob_matching import client_cost

    g = torch.Generator().manual_seed(0)
    q, phi = torch.randn(2, 3, generator=g), torch.randn(4, 3, generator=g)
    log_std, logit = torch.randn(4, 3, generator=g) * 0.3 - 0.5, torch.randn(4, generator=g)
    previous = np.array([3, 1])
    got = client_cost(q, phi, log_std, logit, cost="official", previous=previous)
    s, pi = np.exp(log_std.double().numpy()), 1 / (1 + np.exp(-logit.double().numpy()))
    want = np.zeros((2, 4))
    for j in range(2):
        for i in range(4):
            diff = q[j].double().numpy() - phi[i].double().numpy()
            log_n = np.sum(-0.5 * (diff / s[i]) ** 2 - np.log(s[i]) - 0.5 * np.log(2 * np.pi))
            bern = np.log(pi[i]) if i in previous else np.log(1 - pi[i])
            want[j, i] = log_n + 2 * bern
    assert np.allclose(got, want, atol=1e-9)
