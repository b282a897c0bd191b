"""The wiring of PPT's baselines (the server maths is tested in test_scaffold/test_fedopt/test_gmm):
SCAFFOLD's client applies the correction in a real Lightning fit and returns the control delta,
its server holds and routes the controls; FedOpt's server state survives a checkpoint round trip;
GMM-PT recovers planted prompts; FedProx-PT's term starts in round 2."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures import tiny_pair

from fedbench.batch import TEXT_MISSING
from fedbench.config import TrainConfig
from fedbench.data.loader import make_loader
from fedbench.federation.checkpoint import load_checkpoint, save_checkpoint
from fedbench.federation.client import ClientRunner, ClientTask
from fedbench.methods.base import ClientUpdate, TrainSettings
from fedbench.methods.prompt_baselines.fedopt import FedOptPTAggregator, FedOptPTOptions
from fedbench.methods.prompt_baselines.gmm import GMMPTAggregator, GMMPTOptions
from fedbench.methods.prompt_baselines.scaffold import (
    ScaffoldPTAggregator,
    ScaffoldPTOptions,
    ScaffoldVPTModule,
)
from fedbench.methods.prompt_baselines.vpt import FedOptVPTModule, FedProxPTOptions, FedProxVPTModule


@pytest.fixture(scope="module")
def tiny():
    return tiny_pair()


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


# ----- SCAFFOLD-PT ---------------------------------------------------------------------------------
def test_scaffold_client_applies_the_correction_and_returns_the_delta(tiny):
    """A real fit (ClientRunner, Lightning, 2 epochs of 3 batches) against plain SGD along
    g + c - c_i written out by hand, and c_i+ - c_i = -c + (x - y) / (K lr) from the hand result."""
    bundle, backbone = tiny
    opts = ScaffoldPTOptions(n_tokens=2, adaptor_width=8, adaptor_dropout=0.0, lr_scale=2.0)
    torch.manual_seed(0)
    module = ScaffoldVPTModule(backbone, bundle.num_classes, TrainSettings(), opts)
    x = {k: v.clone() for k, v in module.trainable_state().items()}
    gen = torch.Generator().manual_seed(1)
    c = {k: 0.1 * torch.randn(v.shape, generator=gen) for k, v in x.items()}
    ci = {k: 0.1 * torch.randn(v.shape, generator=gen) for k, v in x.items()}
    index = np.sort(bundle.splits["train"])[:40]
    codes = np.full(40, TEXT_MISSING, np.int8)
    train = TrainConfig(batch_size=16, threads=1)
    lr, epochs, seed = 0.05, 2, 7
    task = ClientTask(0, 3, x, {}, index, codes, seed, lr, payload={"c": c, "c_i": ci})
    result = ClientRunner(module, bundle, train, epochs).run(task)

    # by hand: the same batches (same loader seed), SGD at lr * lr_scale along g + c - c_i
    step = lr * opts.lr_scale
    module.load_trainable_state(x)
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    loader = make_loader(bundle, index, codes, batch_size=16, shuffle=True, seed=seed)
    k = 0
    for _ in range(epochs):
        for batch in loader:
            loss = F.cross_entropy(module(batch), batch["label"])
            grads = torch.autograd.grad(loss, list(params.values()))
            with torch.no_grad():
                for (name, p), g in zip(params.items(), grads, strict=True):
                    p -= step * (g + c[name] - ci[name])
            k += 1
    assert k == 6
    for name, p in params.items():
        torch.testing.assert_close(result.state[name], p.detach(), atol=1e-5, rtol=1e-4)
        hand_delta = -c[name] + (x[name] - p.detach()) / (k * step)
        torch.testing.assert_close(result.meta["control_delta"][name], hand_delta, atol=1e-3, rtol=1e-3)


def test_scaffold_server_routes_controls_for_any_client_count(tmp_path):
    """N = 5 from the server context; 3 clients with unequal sizes in round 1, by hand."""
    agg = ScaffoldPTAggregator(ScaffoldPTOptions(), SimpleNamespace(n_clients=5))
    x = {"w": t(1.0, 2.0)}
    payload = agg.configure_fit(0, [0, 2, 4], x)
    assert set(payload) == {0, 2, 4}
    assert all(
        torch.equal(p["c"]["w"], t(0, 0)) and torch.equal(p["c_i"]["w"], t(0, 0)) for p in payload.values()
    )
    ys = [t(0.0, 2.5), t(0.5, 1.0), t(2.0, 2.0)]
    deltas = [t(4.5, -2.0), t(0.5, 2.5), t(-3.0, 0.5)]
    updates = [
        ClientUpdate(k, {"w": y}, n, meta={"control_delta": {"w": d}})
        for k, y, n, d in zip([0, 2, 4], ys, [10, 30, 60], deltas, strict=True)
    ]
    new_x = agg.aggregate(x, updates, 0, seed=0)
    # uniform mean of y - x: ([-1, .5] + [-.5, -1] + [1, 0]) / 3; c = 0 + (3/5) * mean(deltas) = sum / 5
    torch.testing.assert_close(new_x["w"], t(1 - 1 / 6, 2 - 1 / 6))
    torch.testing.assert_close(agg.c["w"], t(2.0 / 5, 1.0 / 5), check_dtype=False)  # controls are float32
    # round 2: client 2 gets its stored c_i (= its delta), client 3 (never seen) gets zeros
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, "run", {"server_state": agg.server_state()})
    resumed = ScaffoldPTAggregator(ScaffoldPTOptions(), SimpleNamespace(n_clients=5))
    resumed.load_server_state(load_checkpoint(path, "run")["server_state"])
    for server in (agg, resumed):
        payload = server.configure_fit(1, [2, 3], new_x)
        torch.testing.assert_close(payload[2]["c_i"]["w"], t(0.5, 2.5), check_dtype=False)
        torch.testing.assert_close(payload[3]["c_i"]["w"], t(0.0, 0.0), check_dtype=False)
        torch.testing.assert_close(payload[3]["c"]["w"], t(0.4, 0.2), check_dtype=False)


def test_scaffold_refuses_without_a_client_count():
    with pytest.raises(Exception, match="client count"):
        ScaffoldPTAggregator(ScaffoldPTOptions(), None)


# ----- FedOpt-PT -----------------------------------------------------------------------------------
def client_rounds(n_rounds=3):
    gen = torch.Generator().manual_seed(0)
    return [
        [{"p": torch.randn(2, 3, generator=gen, dtype=torch.float64)} for _ in range(3)]
        for _ in range(n_rounds)
    ]


def test_fedopt_server_state_survives_a_checkpoint_round_trip(tmp_path):
    """Three rounds through the aggregator, resumed after round 2 from a saved checkpoint, against
    torch.optim.Adam stepping along x - weighted mean(y_i) by hand."""
    opts = FedOptPTOptions(server_lr=0.1, beta1=0.9, beta2=0.98, eps=1e-6, bias_correction=True)
    sizes = [5, 1, 14]
    rounds = client_rounds()
    x0 = {"p": torch.full((2, 3), 0.5, dtype=torch.float64)}

    hand = x0["p"].clone().requires_grad_(True)
    adam = torch.optim.Adam([hand], lr=0.1, betas=(0.9, 0.98), eps=1e-6)
    expected = []
    for states in rounds:
        mean = sum(n * s["p"] for n, s in zip(sizes, states, strict=True)) / sum(sizes)
        hand.grad = hand.detach() - mean
        adam.step()
        expected.append(hand.detach().clone())

    def updates(states):
        return [ClientUpdate(k, s, n) for k, (s, n) in enumerate(zip(states, sizes, strict=True))]

    agg, x = FedOptPTAggregator(opts), x0
    for r in range(2):
        x = agg.aggregate(x, updates(rounds[r]), r, seed=0)
        torch.testing.assert_close(x["p"], expected[r])
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, "run", {"server_state": agg.server_state()})
    resumed = FedOptPTAggregator(opts)
    resumed.load_server_state(load_checkpoint(path, "run")["server_state"])
    assert resumed.metadata() == {"server_steps": 2}
    torch.testing.assert_close(resumed.aggregate(x, updates(rounds[2]), 2, seed=0)["p"], expected[2])
    torch.testing.assert_close(agg.aggregate(x, updates(rounds[2]), 2, seed=0)["p"], expected[2])


def test_fedopt_client_start_mean_sends_the_plain_mean(tiny, tmp_path):
    bundle, backbone = tiny
    agg = FedOptPTAggregator(FedOptPTOptions(client_start="mean", server_lr=0.1))
    states = client_rounds(1)[0]
    assert agg.configure_fit(0, [0, 1], {"p": torch.zeros(2, 3, dtype=torch.float64)}) == {}
    agg.aggregate(
        {"p": torch.zeros(2, 3, dtype=torch.float64)},
        [ClientUpdate(k, s, n) for k, (s, n) in enumerate(zip(states, [1, 1, 2], strict=True))],
        0,
        0,
    )
    resumed = FedOptPTAggregator(FedOptPTOptions(client_start="mean", server_lr=0.1))
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, "run", {"server_state": agg.server_state()})
    resumed.load_server_state(load_checkpoint(path, "run")["server_state"])
    mean = (states[0]["p"] + states[1]["p"] + 2 * states[2]["p"]) / 4
    torch.testing.assert_close(resumed.configure_fit(1, [4], {})[4]["start"]["p"], mean)
    # the client starts from the payload's state, not the global one
    module = FedOptVPTModule(
        backbone, bundle.num_classes, TrainSettings(), FedOptPTOptions(n_tokens=2, adaptor_width=8)
    )
    start = {k: torch.full_like(v, 0.25) for k, v in module.trainable_state().items()}
    module.on_round_start({}, 1, {"start": start})
    assert all(torch.equal(v, start[k]) for k, v in module.trainable_state().items())


# ----- GMM-PT --------------------------------------------------------------------------------------
def test_gmm_pt_recovers_planted_prompts_and_averages_the_head():
    """Eight clients each hold one noisy copy of four planted prompts. With every token assigned to
    its cluster, a Bayesian GMM's mean is the cluster mean shrunk towards the data mean m0 by
    scikit-learn's default mean precision prior (1): (m0 + N_k mean_k) / (1 + N_k), N_k = 8."""
    gen = torch.Generator().manual_seed(0)
    centres = 4.0 * torch.randn(4, 6, generator=gen, dtype=torch.float64)
    perms = [torch.randperm(4, generator=gen) for _ in range(8)]
    clients = [centres[p] + 0.05 * torch.randn(4, 6, generator=gen, dtype=torch.float64) for p in perms]
    sizes = [10, 30, 60, 0, 0, 0, 0, 0]  # only the head's mean depends on the sizes
    updates = [
        ClientUpdate(k, {"prompts": p, "head": torch.full((2,), float(k))}, n)
        for k, (p, n) in enumerate(zip(clients, sizes, strict=True))
    ]
    agg = GMMPTAggregator(GMMPTOptions(n_tokens=4))
    out = agg.aggregate({}, updates, 0, seed=3)
    tokens = torch.cat(clients)
    cluster = torch.cat(perms)
    m0 = tokens.mean(0)
    expected = torch.stack([(m0 + tokens[cluster == k].sum(0)) / 9 for k in range(4)])
    order = torch.cdist(expected, out["prompts"]).argmin(1)
    assert sorted(order.tolist()) == [0, 1, 2, 3]
    torch.testing.assert_close(out["prompts"][order], expected, atol=1e-3, rtol=0)
    torch.testing.assert_close(out["head"], torch.full((2,), 1.5))
    assert agg.metadata()["gmm_components"] == 4


# ----- FedProx-PT ----------------------------------------------------------------------------------
def test_fedprox_pt_term_starts_in_round_two(tiny):
    bundle, backbone = tiny
    module = FedProxVPTModule(
        backbone, bundle.num_classes, TrainSettings(), FedProxPTOptions(n_tokens=2, adaptor_width=8)
    )
    anchor = {k: v - 0.1 for k, v in module.trainable_state().items()}
    module.on_round_start(anchor, 0)
    assert module.extra_loss({}, None) is None
    module.on_round_start(anchor, 1)
    n = sum(v.numel() for v in anchor.values())
    assert float(module.extra_loss({}, None)) == pytest.approx(0.5 * 1e-3 * 0.01 * n, rel=1e-4)
