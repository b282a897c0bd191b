"""pFedPG against its official code's formulas, written out here (PeiYauWeng/PFPT 9518dce
``Models/pFedPG_model.py:98-130`` for the generator, ``util/train_eval.py:358-369`` for the
update: ``autograd.grad(generated, params, grad_outputs=start - end)`` then torch's Adam)."""

import math

import pytest
import torch
from fixtures import tiny_config
from torch import nn

from fedbench.federation.loop import run_experiment
from fedbench.methods.base import ClientUpdate, ServerContext
from fedbench.methods.pfedpg.config import PFedPGOptions
from fedbench.methods.pfedpg.generator import CORE, PromptGenerator, generate
from fedbench.methods.pfedpg.server import PFedPGAggregator
from fedbench.methods.registry import get_method


class OfficialGenerator(nn.Module):
    """The code's ``prompt_generator``, with its descriptor table as an nn.Embedding."""

    def __init__(self, core: dict, table: torch.Tensor):
        super().__init__()
        hidden, kd = core["to_k.weight"].shape[1], core["to_k.weight"].shape[0]
        self.to_k, self.to_v, self.to_q = (nn.Linear(hidden, kd, bias=False) for _ in range(3))
        self.to_out = nn.Sequential(nn.Linear(kd, hidden), nn.Dropout(0.0))
        self.base_prompts = nn.Parameter(core["base_prompts"].clone())
        self.descriptor = nn.Embedding(len(table), hidden)
        with torch.no_grad():
            for name in ("to_k", "to_v", "to_q"):
                getattr(self, name).weight.copy_(core[f"{name}.weight"])
            self.to_out[0].weight.copy_(core["to_out.weight"])
            self.to_out[0].bias.copy_(core["to_out.bias"])
            self.descriptor.weight.copy_(table)
        self.scale = kd**-0.5

    def forward(self, x_id):
        k, v, q = self.to_k(self.base_prompts), self.to_v(self.base_prompts), self.to_q(self.descriptor(x_id))
        return self.base_prompts + self.to_out((q @ k.T * self.scale).softmax(dim=-1) @ v)


def test_generator_by_hand():
    torch.manual_seed(0)
    gen = PromptGenerator(n_tokens=3, hidden=5, key_dim=4)
    d = torch.randn(5)
    core = {k: v.detach() for k, v in gen.named_parameters()}
    base = core["base_prompts"]
    q = d @ core["to_q.weight"].T
    scores = torch.tensor([float(q @ (core["to_k.weight"] @ base[t])) / math.sqrt(4) for t in range(3)])
    a = scores.exp() / scores.exp().sum()
    readout = sum(a[t] * (core["to_v.weight"] @ base[t]) for t in range(3))
    shift = core["to_out.weight"] @ readout + core["to_out.bias"]
    expected = base + shift[None]  # one shift for every token
    assert torch.allclose(gen(d), expected, atol=1e-6) and torch.allclose(
        generate(core, d), expected, atol=1e-6
    )


def test_server_steps_equal_the_codes_update():
    torch.manual_seed(1)
    opts = PFedPGOptions(n_tokens=3, key_dim=4, prompt_lr=1e-2)
    agg = PFedPGAggregator(opts, ServerContext(None, None, None, torch.device("cpu"), seed=0, n_clients=4))
    gen = PromptGenerator(3, 6, 4)
    state = {f"generator.{k}": v.detach().clone() for k, v in gen.named_parameters()}
    table0 = agg.configure_fit(0, [0, 1, 2, 3], state)
    table = torch.stack([table0[c]["descriptor"] for c in range(4)])
    deltas = {2: torch.randn(3, 6), 0: torch.randn(3, 6)}  # start - end of two clients, in the round's order
    new = agg.aggregate(
        state, [ClientUpdate(c, {}, 10, meta={"delta": d}) for c, d in deltas.items()], 0, seed=0
    )

    official = OfficialGenerator({k: state[f"generator.{k}"] for k in CORE}, table)
    adam = torch.optim.Adam(
        official.parameters(), lr=1e-2
    )  # train_eval.py:296, torch's default betas and eps
    snapshot = {n: p.detach().clone() for n, p in official.named_parameters()}
    grads = []
    for c, delta in deltas.items():  # each gradient at the round's starting generator
        with torch.no_grad():
            for n, p in official.named_parameters():
                p.copy_(snapshot[n])
        out = official(torch.tensor([c]))
        grads.append(torch.autograd.grad(list(out), list(official.parameters()), grad_outputs=list(delta)))
    for n, p in official.named_parameters():
        p.data.copy_(snapshot[n])
    for g in grads:
        adam.zero_grad()
        for p, gi in zip(official.parameters(), g, strict=True):
            p.grad = gi.clone()
        adam.step()
    assert torch.allclose(new["generator.base_prompts"], official.base_prompts, atol=1e-6)
    assert torch.allclose(new["generator.to_q.weight"], official.to_q.weight, atol=1e-6)
    assert torch.allclose(new["generator.to_out.bias"], official.to_out[0].bias, atol=1e-6)
    assert torch.allclose(agg.table, official.descriptor.weight, atol=1e-6)
    assert torch.equal(agg.table[1], table[1])  # a row that never had a gradient stays
    row0 = agg.table[0].clone()
    agg.aggregate(new, [ClientUpdate(2, {}, 10, meta={"delta": torch.randn(3, 6)})], 1, seed=0)
    assert not torch.allclose(
        agg.table[0], row0
    )  # ... one that had moves on its decaying moments, as torch's Adam


def test_pfedpg_runs_and_is_scored_per_client(tmp_path):
    cfg = tiny_config(tmp_path, "pfedpg", rounds=2)
    record = run_experiment(cfg)
    steps = [r["generator_steps"] for r in record["rounds"]]
    assert steps == [len(r["clients"]) for r in record["rounds"]]
    assert all(r["generator_step_norm"] > 0 for r in record["rounds"])
    spec = get_method("pfedpg")
    assert spec.local_only and spec.personalized and "pfedpg" in get_method("ppt").plan.baselines


def test_options_refuse_bad_values():
    with pytest.raises(Exception, match="generator_update"):
        PFedPGOptions(generator_update="sum").validate()
