"""Cyclic training: within a round, client t+1 starts from client t's shared result (the official
FedPrime code's aliasing), and the round's result is the last client's state; under FedAvg every
client starts from the round's global state. Checked on the tiny fixture through the real loop, by
recording what each client fit starts from and what it returns."""

from itertools import pairwise

import torch

from fedbench.federation import client as client_module
from fedbench.federation.loop import run_experiment
from fedbench.methods.base import ClientUpdate
from fedbench.methods.cyclic import ChainEndAggregator


def record_fits(monkeypatch):
    fits = []
    original = client_module.ClientRunner.run

    def run(self, task):
        start = {k: v.clone() for k, v in task.global_state.items()}
        result = original(self, task)
        fits.append(
            (
                task.round_index,
                task.client_id,
                start,
                {k: v.clone() for k, v in result.state.items()},
                task.payload,
            )
        )
        return result

    monkeypatch.setattr(client_module.ClientRunner, "run", run)
    return fits


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cyclic_clients_start_from_the_previous_clients_result(monkeypatch, tiny_cfg):
    fits = record_fits(monkeypatch)
    cfg = tiny_cfg("cyclic", rounds=2)
    run_experiment(cfg)
    assert len(fits) == 6  # 3 clients x 2 rounds
    for r in (0, 1):
        chain = [f for f in fits if f[0] == r]
        for prev, nxt in pairwise(chain):
            assert same(nxt[2], prev[3])  # client t+1 starts where client t stopped
            assert not same(nxt[2], chain[0][2])  # ... not from the round's global state
    first_of_round_2 = next(f for f in fits if f[0] == 1)
    last_of_round_1 = [f for f in fits if f[0] == 0][-1]
    assert same(first_of_round_2[2], last_of_round_1[3])  # the round's result: the chain's end


def test_fedavg_clients_all_start_from_the_global_state(monkeypatch, tiny_cfg):
    fits = record_fits(monkeypatch)
    run_experiment(tiny_cfg("fedavg", rounds=1))
    assert len(fits) == 3
    for prev, nxt in pairwise(fits):
        assert same(nxt[2], fits[0][2]) and not same(nxt[2], prev[3])


def test_official_fedprime_chains_from_round_two_only(monkeypatch, tiny_cfg):
    """The code's first round trains separate copies; its aliasing (the chain) starts after the
    first aggregation."""
    fits = record_fits(monkeypatch)
    run_experiment(tiny_cfg("fedprime-official", rounds=2))
    round1 = [f for f in fits if f[0] == 0]
    round2 = [f for f in fits if f[0] == 1]
    # round 1: the loop hands in the chain, the payload restarts every client from the global state
    assert all(same(f[4]["start"], round1[0][2]) for f in round1)
    assert same(round1[1][2], round1[0][3])  # (what the loop handed in: the chain)
    assert all(f[4] == {} for f in round2)  # round 2: no restart, the chain stands
    assert same(round2[1][2], round2[0][3]) and same(round2[2][2], round2[1][3])


def test_chain_end_aggregator_returns_the_last_clients_state():
    updates = [ClientUpdate(c, {"w": torch.full((2,), float(c))}, n) for c, n in ((4, 100), (1, 1), (7, 5))]
    out = ChainEndAggregator().aggregate({"w": torch.zeros(2)}, updates, 0, 0)
    assert torch.equal(out["w"], torch.full((2,), 7.0))
