"""The ray executor (2 CPU actors) against the sequential one: the same seeds give the same
records, bit for bit, on CPU with one torch thread each."""

import copy
import os
import sys
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")

from fixtures import tiny_config  # noqa: E402

from fedbench.errors import ConfigError  # noqa: E402
from fedbench.federation.loop import run_experiment  # noqa: E402
from fedbench.federation.resolve import resolve  # noqa: E402

TESTS = Path(__file__).parent


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One short-lived 2-CPU cluster for the module; workers import the tiny fixtures from tests/."""
    path = os.pathsep.join([str(TESTS), *[p for p in sys.path if p]])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
        logging_level="WARNING",
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def _run(cfg, executor: str, options: dict | None = None) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg.executor.name, cfg.executor.options = executor, options or {}
    cfg.tracking.results_dir = f"{cfg.tracking.results_dir}-{executor}"
    return run_experiment(cfg)


@pytest.mark.parametrize("method", ["fedavg", "fedprime"])
def test_ray_matches_sequential_bit_for_bit(tmp_path, method):
    threads = torch.get_num_threads()
    cfg = tiny_config(tmp_path, method, rounds=3)
    cfg.partition.n_clients = 4
    cfg.train.threads = 1
    cfg.tracking.wandb = False
    try:
        seq = _run(cfg, "sequential")
        par = _run(cfg, "ray", {"actors": 2})
    finally:
        torch.set_num_threads(threads)
    assert len(seq["rounds"]) == len(par["rounds"]) == 3
    for a, b in zip(seq["rounds"], par["rounds"], strict=True):
        assert (a["val"], a["train_loss"], a["bytes_up"], a["clients"]) == (
            b["val"],
            b["train_loss"],
            b["bytes_up"],
            b["clients"],
        )
    assert seq["final"] == par["final"]
    assert seq["selected"] == par["selected"]
    assert seq.get("personalized") == par.get("personalized")
    assert par["config"]["executor"]["name"] == "ray"
    assert seq["run_id"] == par["run_id"]  # the executor is not part of a run's identity


def test_results_in_task_order_and_on_result_sees_each(tmp_path):
    """Clients of very different sizes on 2 actors: the largest goes first, results still come
    back in task order, each equal to the in-process runner's result for the same task."""
    from fedbench.federation.executors.ray_executor import RayExecutor
    from fedbench.federation.executors.ray_support import RayOptions
    from fedbench.federation.parts import runner_for_config as build_runner
    from fedbench.federation.setup import prepare

    cfg = tiny_config(tmp_path, "fedavg")
    cfg.partition.name, cfg.partition.alpha = "quantity", 0.3
    exp = prepare(resolve(cfg))
    runner = build_runner(cfg)
    state = runner.module.split_state(runner.module.trainable_state())[0]
    from fedbench.federation.client import ClientTask

    tasks = [
        ClientTask(0, c, state, {}, exp.clients[c], exp.client_codes[c], seed=10 + c, lr=0.01)
        for c in range(3)
    ]
    executor = RayExecutor(RayOptions(actors=2, threads=1), cfg, runner.rebuild)
    seen = []
    try:
        results = executor.run(tasks, on_result=lambda r: seen.append(r.client_id))
    finally:
        executor.close()
    assert [r.client_id for r in results] == [0, 1, 2]
    assert sorted(seen) == [0, 1, 2]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for task, res in zip(tasks, results, strict=True):
            local = runner.run(task)
            assert res.n_samples == len(task.index)
            assert all(torch.equal(res.state[k], local.state[k]) for k in local.state)
    finally:
        torch.set_num_threads(threads)


def test_bad_options_say_what_and_how(tmp_path):
    cfg = tiny_config(tmp_path, "fedavg")
    with pytest.raises(ConfigError, match=r"executor.options: no option 'actor'"):
        _run(cfg, "ray", {"actor": 2})
    with pytest.raises(ConfigError, match=r"executor.options.actors: 9 actors .* do not fit"):
        _run(cfg, "ray", {"actors": 9, "cpus_per_actor": 1})
    with pytest.raises(ConfigError, match=r"cpus_per_actor: must be > 0"):
        _run(cfg, "ray", {"cpus_per_actor": 0})


def test_missing_ray_gives_one_line(monkeypatch):
    from fedbench.federation.executors import ray_support

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ConfigError, match=r"^the ray executor needs Ray: pip install -e \.\[ray\]$"):
        ray_support.import_ray()


def test_unreachable_address_gives_one_line(monkeypatch):
    from fedbench.federation.executors import ray_support

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process
    with pytest.raises(
        ConfigError, match=r"cannot attach to a Ray cluster at '127.0.0.1:9' .*`ray start --head`"
    ):
        ray_support.connect("127.0.0.1:9")
