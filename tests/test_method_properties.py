"""Properties a broken server or client fails, for every registered method (plugins included), on the
tiny fixture (IID, nothing missing, so every method can learn the label the text and image carry):

- after the first round, in which clients changed their shared tensors, the global state moved,
  and toward the clients: where the method averages (FedAvg's aggregator) it is exactly the
  sample-weighted mean of the client states, computed here independently; the cyclic baseline ends
  at its last client's state; for the others the move has a positive cosine with the mean client update;
- over the rounds the training loss falls and the final accuracy beats the majority class.

What each aggregator computes is checked against independent computations in the aggregation tests
(weighted mean, SCAFFOLD, FedOpt against torch.optim.Adam, CKA, the matchers)."""

from __future__ import annotations

import fnmatch

import pytest
import torch
from fixtures import register_tiny

from fedbench.federation.callbacks import Callback
from fedbench.federation.loop import run_experiment
from fedbench.methods.cyclic import ChainEndAggregator
from fedbench.methods.fedavg import FedAvgAggregator
from fedbench.methods.registry import METHODS

register_tiny()
# settings under which a correct method learns the tiny task; a method with its own optimiser gets
# a step size suited to a 5-round fit (FedMVP's default 2e-4 is sized for hundreds of steps), and
# SCAFFOLD's plain SGD gets more rounds (at the Adam methods' 5 it is still at the majority class)
LEARNING = {"fedmvp*": {"options": {"lr": 3e-3}}, "scaffold-pt": {"rounds": 8}}
ROUNDS, MARGIN = 5, 0.05


def _settings(method: str) -> dict:
    return next((v for pattern, v in LEARNING.items() if fnmatch.fnmatch(method, pattern)), {})


class FirstRound(Callback):
    """The global state before and after round 1 and the states the clients sent."""

    def __init__(self):
        self.before = self.after = None
        self.updates = []

    def on_round_start(self, fed, round_index, clients):
        if round_index == 0:
            self.before = {k: v.clone() for k, v in fed.global_state.items()}

    def on_client_end(self, fed, result):
        if self.after is None:
            self.updates.append(result)

    def on_validation_start(self, fed, round_index):
        if round_index == 0:
            self.after = {k: v.clone() for k, v in fed.global_state.items()}


def _run(method: str, tiny_cfg):
    settings = _settings(method)
    cfg = tiny_cfg(method, rounds=settings.get("rounds", ROUNDS))
    cfg.method.options = {**cfg.method.options, **settings.get("options", {})}
    cfg.partition.name, cfg.missing.rate = "iid", 0.0
    cfg.federation.local_epochs, cfg.train.lr, cfg.train.lr_schedule = 2, 1e-2, "constant"
    cfg.tracking.wandb = False
    first = FirstRound()
    record = run_experiment(cfg, callbacks=[first])
    return cfg, record, first


def _flat(state: dict, keys: list[str]) -> torch.Tensor:
    return (
        torch.cat([state[k].double().flatten() for k in keys])
        if keys
        else torch.zeros(0, dtype=torch.float64)
    )


@pytest.mark.parametrize("method", METHODS.names())
def test_the_server_follows_its_clients_and_the_model_learns(method, tiny_cfg):
    spec = METHODS.get(method)
    cfg, record, first = _run(method, tiny_cfg)
    assert record["status"] == "ok", record.get("diverged")
    before, after, updates = first.before, first.after, first.updates
    assert updates, "no client trained in round 1"
    if not spec.local_only and before:
        same = [k for k in before if k in after and after[k].shape == before[k].shape]
        trained = [
            k for k in same if any(not torch.equal(u.state[k], before[k]) for u in updates if k in u.state)
        ]
        assert trained, "no client changed a shared tensor"
        assert not all(torch.equal(after[k], before[k]) for k in trained), (
            "the global state ignored its clients"
        )
        if spec.aggregator is FedAvgAggregator:
            n = torch.tensor([float(u.n_samples) for u in updates], dtype=torch.float64)
            for k in trained:  # the sample-weighted mean, by hand
                mean = sum(w * u.state[k].double() for w, u in zip(n / n.sum(), updates, strict=True))
                torch.testing.assert_close(after[k].double(), mean, atol=1e-6, rtol=1e-5)
        elif spec.aggregator is ChainEndAggregator:  # cyclic training: the chain's last state is the model
            assert all(torch.equal(after[k], updates[-1].state[k]) for k in trained)
        else:
            move = _flat(after, trained) - _flat(before, trained)
            towards = torch.stack([_flat(u.state, trained) for u in updates]).mean(0) - _flat(before, trained)
            assert float(torch.nn.functional.cosine_similarity(move, towards, dim=0)) > 0
    losses = [r["train_loss"] for r in record["rounds"]]
    assert losses[-1] < losses[0], f"the training loss did not fall: {losses}"
    accuracy = record["final"]["as_train"]["accuracy"]
    assert accuracy > record["majority_rate"] + MARGIN, (
        f"accuracy {accuracy:.3f}, majority {record['majority_rate']:.3f}"
    )
