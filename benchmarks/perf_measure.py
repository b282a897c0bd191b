"""The measurements behind `make perf` (figures as plain dicts; benchmarks/perf.py renders them).

Each function runs in the calling process with the torch threads the caller set (one, for
`make perf`); none asserts a speed: the targets are judged on the page.
"""

from __future__ import annotations

import copy
import tempfile
import time

import numpy as np
import torch

from fedbench.config import ExperimentConfig
from fedbench.federation.callbacks import Callback, CheckpointCallback
from fedbench.federation.loop import run_experiment
from fedbench.federation.resolve import resolve
from fedbench.federation.timing import PhaseTimer


def client_fit_vs_bare(cfg: ExperimentConfig, n_batches: int = 6, reps: int = 3) -> dict:
    """One client fit (fedbench's lean Trainer, built per fit as the loop does) against a bare
    PyTorch loop (the module's own training_step and optimizer) over the same module and batches,
    interleaved; the module restarts from the same trainable state before every pass."""
    from fedbench.data.loader import make_loader
    from fedbench.federation.parts import client_module
    from fedbench.federation.setup import prepare
    from fedbench.federation.trainer import make_trainer

    run = resolve(cfg)
    exp = prepare(run)
    module = client_module(run, exp.backbone, exp.bundle.num_classes, torch.device("cpu"))
    module.lr = cfg.train.lr
    start = module.trainable_state()
    idx = exp.bundle.splits["train"]
    codes = np.random.default_rng(0).integers(0, 3, len(idx)).astype(np.int8)
    batches = list(make_loader(exp.bundle, idx, codes, batch_size=cfg.train.batch_size, shuffle=True))[
        :n_batches
    ]
    samples = sum(len(b["label"]) for b in batches)

    def reset():
        module.load_trainable_state(start)
        module.epoch_losses = []
        module.on_round_start(start, 0, {})

    def lightning() -> float:
        reset()
        t = time.perf_counter()
        make_trainer(cfg.train, 1).fit(module, _Batches(batches))
        return time.perf_counter() - t

    def bare() -> float:
        reset()
        t = time.perf_counter()
        module.train()
        opt = module.configure_optimizers()
        module.on_train_epoch_start()  # the module's own epoch bookkeeping, as Lightning calls it
        for i, batch in enumerate(batches):
            loss = module.training_step(batch, i)
            opt.zero_grad()
            loss.backward()
            opt.step()
        module.on_train_epoch_end()
        return time.perf_counter() - t

    bare(), lightning()  # warm-up of both paths (first-call allocations, Lightning's imports)
    fit_s, bare_s = [], []
    for rep in range(reps):  # interleaved, alternating which goes first
        for fn in (lightning, bare) if rep % 2 == 0 else (bare, lightning):
            (fit_s if fn is lightning else bare_s).append(fn())
    return {
        "samples": samples,
        "batches": len(batches),
        "fit_s": fit_s,
        "bare_s": bare_s,
        "ratio": [b / f for b, f in zip(bare_s, fit_s, strict=True)],
    }


class _Batches:
    """The same prepared batches as one iterable (a bare list would be read by Lightning as a
    collection of loaders)."""

    def __init__(self, batches: list):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def timed_run(cfg: ExperimentConfig) -> dict:
    """One run with the phase timer (wrapping the checkpoint callback) in a scratch results folder."""
    cfg = copy.deepcopy(cfg)
    timer = PhaseTimer({"checkpoint": CheckpointCallback()})
    with tempfile.TemporaryDirectory() as tmp:
        cfg.tracking.results_dir = tmp
        t = time.perf_counter()
        record = run_experiment(cfg, force=True, callbacks=[timer])
        wall = time.perf_counter() - t
    return {
        "wall_s": wall,
        "rounds": timer.rounds,
        "totals": timer.totals(),
        "overhead": timer.overhead_share(),
        "final": record["final"]["as_train"],
    }


class _LastRound(Callback):
    """Each round's mean training loss; at the last round's end, the time and a copy of the global
    state, then stops the run (the final test scoring is skipped: the Flower run does none)."""

    def __init__(self, rounds: int):
        self.rounds, self.losses = rounds, []

    def on_round_end(self, fed, entry):
        self.losses.append(entry["train_loss"])
        if len(self.losses) == self.rounds:
            self.end = time.perf_counter()
            self.state = {k: v.detach().cpu().clone() for k, v in fed.global_state.items()}
            raise _Stop


class _Stop(Exception):
    pass


def _loop_run(cfg: ExperimentConfig, cores: int) -> dict:
    """fedbench's loop up to the last round's end and its return (the executor closed), less the
    rounds' validation; ``cores`` > 1: the ray executor with that many one-CPU actors."""
    if cores > 1:
        cfg.executor.name, cfg.executor.options = "ray", {"actors": cores, "cpus_per_actor": 1.0}
    timer, last = PhaseTimer({"checkpoint": CheckpointCallback()}), _LastRound(cfg.federation.rounds)
    t0 = time.perf_counter()
    try:
        run_experiment(cfg, force=True, callbacks=[timer, last])
    except _Stop:
        pass
    t1 = time.perf_counter()
    val = [r["validation"] for r in timer.rounds]
    return {
        "startup": timer.run_start - t0,
        "rounds": [r["wall"] - r["validation"] for r in timer.rounds],
        "after": t1 - last.end,
        "validation": sum(val),
        "timed": t1 - t0 - sum(val),
        "losses": last.losses,
        "state": last.state,
    }


def _flower_run(cfg: ExperimentConfig, cores: int) -> dict:
    """simulate(cfg) with client actors of one CPU each when ``cores`` > 1 (that many fits at once),
    else one actor holding every core, from the call to its return; rounds from the server
    strategy's configure_train / aggregate_train."""
    import logging
    import os

    from fedbench.flower import default_backend_config, server, simulate

    marks: list[tuple[str, float]] = []
    cls = server.FedbenchStrategy
    configure, aggregate = cls.configure_train, cls.aggregate_train

    def timed_configure(self, *a, **k):
        marks.append(("start", time.perf_counter()))
        return configure(self, *a, **k)

    def timed_aggregate(self, *a, **k):
        out = aggregate(self, *a, **k)
        marks.append(("end", time.perf_counter()))
        return out

    flwr_log = logging.getLogger("flwr")
    level = flwr_log.level
    cls.configure_train, cls.aggregate_train = timed_configure, timed_aggregate
    flwr_log.setLevel(logging.WARNING)
    try:
        t0 = time.perf_counter()
        strategy = simulate(
            cfg, backend_config=default_backend_config(1.0 if cores > 1 else float(os.cpu_count() or 1))
        )
        t1 = time.perf_counter()
    finally:
        cls.configure_train, cls.aggregate_train = configure, aggregate
        flwr_log.setLevel(level)
    first = next(t for k, t in marks if k == "start")
    ends = [t for k, t in marks if k == "end"]
    return {
        "startup": first - t0,
        "rounds": [b - a for a, b in zip([first, *ends], ends, strict=False)],
        "after": t1 - ends[-1],
        "validation": 0.0,
        "timed": t1 - t0,
        "losses": [h["train_loss"] for h in strategy.history],
        "state": {k: v.cpu() for k, v in strategy.global_state.items()},
    }


def loop_vs_flower(cfg: ExperimentConfig, cores: int, reps: int = 2) -> dict:
    """fedbench's loop against Flower's simulation engine on the same config with the same client
    parallelism (``cores`` fits at once; 1: one at a time), interleaved (alternating which goes
    first), each run in a fresh scratch results folder; whether every run's round losses and final
    global state equal the first loop run's bit for bit."""
    import torch

    runs: dict[str, list[dict]] = {"fedbench": [], "flower": []}
    for rep in range(reps):
        for side in ("fedbench", "flower") if rep % 2 == 0 else ("flower", "fedbench"):
            c = copy.deepcopy(cfg)
            with tempfile.TemporaryDirectory() as tmp:
                c.tracking.results_dir = tmp
                runs[side].append((_loop_run if side == "fedbench" else _flower_run)(c, cores))
            torch.set_num_threads(1)
    ref = runs["fedbench"][0]
    same = all(
        r["losses"] == ref["losses"]
        and list(r["state"]) == list(ref["state"])
        and all(torch.equal(v, ref["state"][k]) for k, v in r["state"].items())
        for rs in runs.values()
        for r in rs
    )
    for rs in runs.values():
        for r in rs:
            del r["state"]
    return {
        "rounds": cfg.federation.rounds,
        "clients": cfg.partition.n_clients,
        "cores": cores,
        "runs": runs,
        "same": same,
        "ratio": [f["timed"] / b["timed"] for b, f in zip(runs["fedbench"], runs["flower"], strict=True)],
    }
