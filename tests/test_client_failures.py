"""Simulated client failures: seeded, recorded, and handled by every aggregator."""

from pathlib import Path

import pytest
import torch

from fedbench.config import FailuresConfig
from fedbench.federation.failures import draw_failures
from fedbench.federation.loop import run_experiment
from fedbench.federation.trainer import make_trainer


def test_every_client_dropped_keeps_the_global_state(tiny_cfg):
    cfg = tiny_cfg("fedavg", rounds=2)
    cfg.failures.drop_rate = 1.0
    record = run_experiment(cfg)
    assert all(r["all_dropped"] and r["failures"]["dropped"] == r["clients"] for r in record["rounds"])
    assert record["rounds"][0]["bytes_up"] == 0
    # nothing changed, so both rounds score the untrained initial model identically
    assert record["rounds"][0]["val"] == record["rounds"][1]["val"]


@pytest.mark.parametrize("method", ["fedavg", "fedprime", "local"])
def test_every_aggregator_runs_with_some_clients_dropped(method, tiny_cfg):
    cfg = tiny_cfg(method, rounds=3)
    cfg.failures.drop_rate, cfg.failures.partial_rate = 0.4, 0.5
    record = run_experiment(cfg)
    assert record["status"] == "ok" and len(record["rounds"]) == 3
    assert any("failures" in r for r in record["rounds"])


def test_draws_are_seeded_per_round_and_client():
    cfg = FailuresConfig(drop_rate=0.3, straggler_rate=0.5, slowdown=4.0, deadline=1.0, partial_rate=0.3)
    a = draw_failures(cfg, 7, 2, list(range(50)))
    b = draw_failures(cfg, 7, 2, list(range(50)))
    assert a == b
    # a client's fate does not depend on who else was sampled
    c = draw_failures(cfg, 7, 2, list(range(0, 50, 2)))
    assert [x for x in a.dropped if x % 2 == 0] == c.dropped
    # stragglers that are not also partial do a quarter of their work (deadline 1 / slowdown 4)
    assert 0.25 in set(a.work.values())
    assert all(0 < w < 1 for w in a.work.values())


def test_partial_work_runs_fewer_steps(tiny_cfg):
    from fedbench.federation.client import ClientRunner, ClientTask
    from fedbench.federation.resolve import resolve
    from fedbench.federation.rounds import Federation
    from fedbench.federation.setup import prepare

    cfg = tiny_cfg("fedavg", rounds=1)
    cfg.train.batch_size = 4
    exp = prepare(resolve(cfg))
    fed = Federation(exp, Path(cfg.tracking.results_dir))
    runner = ClientRunner(fed.module, exp.bundle, cfg.train, local_epochs=2)
    steps = []
    original = fed.module.training_step

    def counting(batch, batch_idx):
        steps.append(batch_idx)
        return original(batch, batch_idx)

    fed.module.training_step = counting
    index, codes = exp.clients[0], exp.client_codes[0]
    batches = -(-len(index) // 4)
    for work, expected in ((1.0, 2 * batches), (0.5, -(-2 * batches // 2))):
        steps.clear()
        runner.run(
            ClientTask(0, 0, fed.global_state, fed.personal[0], index, codes, seed=1, lr=0.01, work=work)
        )
        assert len(steps) == expected
    assert make_trainer(cfg.train, 1).max_steps == -1
    assert torch.is_tensor(next(iter(fed.global_state.values())))
