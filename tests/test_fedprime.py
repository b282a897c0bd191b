"""FedPrime's client: retrieval, selection, used-prompt tracking, regulariser, prompt insertion.

Expected values are worked out by hand from prompts along known axes, or recomputed in numpy;
the model runs on a stub backbone whose ``embed`` returns hand-built tokens, so the query is known.
"""

import numpy as np
import pytest
import torch
from torch import nn

from fedbench.errors import ConfigError
from fedbench.methods.base import TrainSettings
from fedbench.methods.fedprime import FedInterModule, FedPrimeModule, FedPrimeOptions
from fedbench.methods.fedprime.retrieval import (
    batch_majority,
    masked_token_max,
    padded_token_max,
    select,
    similarity,
)

H = 16


class StubBackbone(nn.Module):
    """embed returns the batch's own tokens; run_layers only applies the prompter (2 layers)."""

    hidden_size, num_layers = H, 2

    def embed(self, batch):
        return batch["tokens"], batch["keep"]

    def run_layers(self, tokens, keep, prompter=None):
        for i in range(self.num_layers):
            tokens, keep = prompter(i, tokens, keep)
        return tokens

    def readout(self, hidden, n_prefix):
        return hidden[:, n_prefix]

    def pooler_state(self):
        return None


def axis(*pairs):
    """A vector of width H with value w on axis a for each (a, w)."""
    v = torch.zeros(H)
    for a, w in pairs:
        v[a] = w
    return v


def batch_of(queries):
    """Tokens [B, 2, H]: the query as the real token, a huge masked-out padding token after it."""
    q = torch.stack(queries)
    tokens = torch.stack([q, torch.full_like(q, 100.0)], 1)
    keep = torch.tensor([[True, False]] * len(queries))
    return {"tokens": tokens, "keep": keep, "code": torch.zeros(len(queries), dtype=torch.long)}


def axis_module(cls=FedPrimeModule, **opts):
    """Identity query projections; pool rows along axes with different norms (keys are normalised)."""
    torch.manual_seed(0)
    module = cls(StubBackbone(), 3, TrainSettings(), FedPrimeOptions(pool_size=8, **opts))
    with torch.no_grad():
        for name in module.pools:  # intra keys point the other way from inter keys
            sign = -1.0 if name == "intra" else 1.0
            getattr(module, f"{name}_query").weight.copy_(torch.eye(H))
            getattr(module, f"{name}_query_init").copy_(torch.eye(H))  # W_q(0) = I as well
            getattr(module, f"{name}_pool").copy_(
                torch.stack([axis((j, sign * (0.5 + j))) for j in range(8)])
            )
    return module


def test_masked_max_ignores_padding():
    tokens = torch.tensor([[[1.0, -2.0], [0.5, 3.0], [9.0, 9.0]]])
    keep = torch.tensor([[True, True, False]])
    assert masked_token_max(tokens, keep).tolist() == [[1.0, 3.0]]


def test_padded_max_pools_pad_rows_after_each_samples_real_text():
    # text width 3 (then 1 image token); fixed text length L = 5, so [PAD] rows at positions 0..4
    pad = torch.tensor([[9.0, 9.0], [0.0, 1.0], [2.0, -1.0], [-1.0, 3.0], [0.5, 0.5]])
    tokens = torch.tensor(
        [
            [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],  # 3 real text tokens: PAD at 3, 4
            [[1.0, 0.0], [7.0, 7.0], [7.0, 7.0], [0.0, -2.0]],  # text missing: [CLS][SEP] kept, PAD at 2..4;
        ]
    )  # ... its masked positions 2 hold stale word embeddings (7, 7) that must not leak
    keep = torch.tensor([[True, True, True, True], [True, True, False, True]])
    tokens[1, 1] = torch.tensor([0.0, 0.0])  # the [SEP]
    out = padded_token_max(tokens, keep, 3, pad)
    # sample 0: real max (1, 0) vs PAD rows 3, 4: (-1, 3), (0.5, 0.5) -> (1, 3)
    # sample 1: real max (1, 0) vs PAD rows 2, 3, 4: max (2, 3) -> (2, 3)
    assert out.tolist() == [[1.0, 3.0], [2.0, 3.0]]
    full = torch.tensor([[[0.0, 0.0]] * 5 + [[1.0, 1.0]]])  # 5 real text tokens: no padding left
    assert padded_token_max(full, torch.ones(1, 6, dtype=torch.bool), 5, pad).tolist() == [[1.0, 1.0]]


def test_similarity_and_per_sample_top_kappa_by_hand():
    pool = torch.stack([axis((j, 0.5 + j)) for j in range(6)])  # norms differ, keys are normalised
    q = torch.stack([axis((0, 5), (1, 1), (2, 4), (4, 3), (5, 2)), axis((2, 1), (3, 2), (5, 9))])
    sim = similarity(q, pool)
    assert torch.allclose(sim[0], torch.tensor([5, 1, 4, 0, 3, 2]) / np.sqrt(55), atol=1e-6)
    assert select(sim, 3, "sample").tolist() == [[0, 2, 4], [5, 3, 2]]  # most similar first


def test_batch_majority_by_hand():
    per_sample = torch.tensor([[0, 1, 2], [1, 2, 3], [2, 1, 4], [5, 2, 0]])
    # counts: 0:2, 1:3, 2:4, 3:1, 4:1, 5:1 -> 2, 1, 0; a fourth slot ties 3/4/5 -> lowest index 3
    assert batch_majority(per_sample, 6, 3).tolist() == [[2, 1, 0]] * 4
    assert batch_majority(per_sample, 6, 4)[0].tolist() == [2, 1, 0, 3]
    # through select, kappa 2: top lists [4, 3], [3, 5], [5, 3] -> counts 3:3, 5:2, 4:1 -> [3, 5]
    sim = torch.tensor([[0.0, 0, 0, 0.8, 0.9, 0], [0, 0, 0, 0.9, 0, 0.8], [0, 0, 0, 0.7, 0.1, 0.9]])
    assert select(sim, 2, "batch").tolist() == [[3, 5]] * 3


def test_module_retrieves_inserts_and_regularises():
    module = axis_module(kappa=2, lambda_r=0.5)
    batch = batch_of([axis((1, 3), (6, 2), (0, -4), (4, -1)), axis((5, 1), (2, 2), (7, -3), (3, -1))])
    prompts, reg, idx = module.retrieve(batch, batch["tokens"], batch["keep"])
    # inter keys +e_j: largest coordinates first; intra keys -e_j: most negative coordinates first
    assert idx["inter"].tolist() == [[1, 6], [2, 5]]
    assert idx["intra"].tolist() == [[0, 4], [7, 3]]
    assert torch.equal(prompts[0, 0], module.intra_pool[0]) and torch.equal(
        prompts[0, 2], module.inter_pool[1]
    )
    n0, n1 = np.sqrt(9 + 4 + 16 + 1), np.sqrt(1 + 4 + 9 + 1)
    s_inter = ((3 + 2) / n0 + (2 + 1) / n1) / 2
    s_intra = ((4 + 1) / n0 + (3 + 1) / n1) / 2
    assert reg.item() == pytest.approx(0.5 * (2 - s_inter) + 0.5 * (2 - s_intra), abs=1e-5)
    module.eval()
    position0 = module.pooler(torch.stack([module.intra_pool[0], module.intra_pool[7]]))
    assert torch.allclose(module(batch), module.head(position0), atol=1e-6)  # pooler reads token 0
    module.options.pool_token = "cls"
    assert torch.allclose(module(batch), module.head(module.pooler(batch["tokens"][:, 0])), atol=1e-6)


def test_used_prompts_accumulate_over_a_rounds_batches():
    module = axis_module(FedInterModule, kappa=2)
    module.on_round_start({}, 0)
    module.train()
    module(batch_of([axis((0, 3), (1, 2)), axis((1, 3), (2, 2))]))
    assert module.round_metadata()["used_inter"] == [0, 1, 2]
    module(batch_of([axis((5, 3), (6, 2))]))
    module.eval()
    module(batch_of([axis((3, 3), (4, 2))]))  # evaluation does not count
    assert module.round_metadata()["used_inter"] == [0, 1, 2, 5, 6]
    module.on_round_start({}, 1)
    assert module.round_metadata()["used_inter"] == []
    module.options.used_record = "last_batch"  # the official checklist: only the last batch
    module.train()
    module(batch_of([axis((0, 3), (1, 2))]))
    module(batch_of([axis((5, 3), (6, 2))]))
    assert module.round_metadata()["used_inter"] == [5, 6]


@pytest.mark.parametrize("sign", ["pull", "push"])
def test_regulariser_sign_moves_similarity_the_stated_way(sign):
    torch.manual_seed(1)
    module = FedPrimeModule(
        StubBackbone(), 3, TrainSettings(), FedPrimeOptions(pool_size=8, kappa=3, retrieval_sign=sign)
    )
    batch = {"tokens": torch.randn(6, 4, H), "keep": torch.ones(6, 4, dtype=torch.bool)}

    def summed_cos():  # numpy: mean over samples of the summed cosine to the retrieved prompts
        total = 0.0
        for name in module.pools:
            w = getattr(module, f"{name}_query").weight.detach().numpy()
            pool = getattr(module, f"{name}_pool").detach().numpy()
            q = batch["tokens"].numpy().max(1) @ w.T
            cos = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (
                pool / np.linalg.norm(pool, axis=1, keepdims=True)
            ).T
            total += np.sort(cos, axis=1)[:, -3:].sum(1).mean()
        return total

    before = summed_cos()
    _, reg, _ = module.retrieve(batch, batch["tokens"], batch["keep"])
    assert reg.item() == pytest.approx(0.01 * (6 - before) if sign == "pull" else 0.01 * before, abs=1e-5)
    reg.backward()
    with torch.no_grad():
        for p in module.parameters():
            if p.grad is not None:
                p -= 0.02 * p.norm() * p.grad / p.grad.norm()  # a small step, relative to each tensor
    assert (summed_cos() > before + 1e-3) if sign == "pull" else (summed_cos() < before - 1e-3)


def test_query_projections_are_personal():
    module = axis_module()
    shared, personal = module.split_state(module.trainable_state())
    assert sorted(personal) == ["inter_query.weight", "intra_query.weight"]
    assert {"intra_pool", "inter_pool"} <= set(shared) and not any("query" in k for k in shared)
    frozen = FedPrimeModule(
        StubBackbone(), 3, TrainSettings(), FedPrimeOptions(pool_size=8, query_update="frozen")
    )
    shared, personal = frozen.split_state(frozen.trainable_state())
    assert personal == {} and not any("query" in k for k in shared)  # frozen: nothing to keep or send


@pytest.mark.parametrize(
    "opts",
    [
        {"pool_size": 4, "kappa": 5},
        {"kappa": 0},
        {"selection": "any"},
        {"retrieval_sign": "up"},
        {"new_cluster_cost": -1.0},
        {"new_cluster_cost": "big"},
        {"query_update": "fast"},
        {"query_padding": "none"},
        {"batch_size": 0},
        {"matcher_cost": "bayes"},
    ],
)
def test_invalid_options_are_refused(opts):
    with pytest.raises(ConfigError, match="method.options"):
        FedPrimeOptions(**opts).validate()
