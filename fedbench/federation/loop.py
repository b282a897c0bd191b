"""The federation loop: rounds of client fits, aggregation, validation; side concerns as callbacks.

Per round: sample clients (seeded by round); the aggregator configures each client's fit; the
executor runs one task per client (a pure function of global state, client state, data, seed);
the aggregator turns the results into the next global state; the global model is scored on the
validation split. Progress, checkpoints, W&B and the record are callbacks
(:mod:`fedbench.federation.callbacks`). At the end the last and the validation-selected states
are scored on every test condition (never selecting on test) and one JSON record is written.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedbench.aggregation.weighted import state_bytes
from fedbench.cache.preflight import check_run_memory
from fedbench.config import ExperimentConfig, validate
from fedbench.data.loader import PREFETCH, WORKERS
from fedbench.errors import ConfigError
from fedbench.federation import checkpoint as ckpts
from fedbench.federation.callbacks import Callback, default_callbacks
from fedbench.federation.client import ClientRunner, ClientTask
from fedbench.federation.executors import EXECUTORS
from fedbench.federation.failures import draw_failures
from fedbench.federation.heap import release_freed_memory
from fedbench.federation.personal_store import PersonalStore
from fedbench.federation.record import already_recorded, make_record
from fedbench.federation.scoring import Scorer
from fedbench.federation.setup import Experiment, prepare
from fedbench.federation.validity import all_finite, check_writable, first_non_finite
from fedbench.interrupt import RunInterrupted
from fedbench.methods.base import ClientModule, ServerContext, State, TrainSettings
from fedbench.methods.registry import MethodSpec, get_method, method_options
from fedbench.registry import build_options
from fedbench.seeds import derive_seed, rng
from fedbench.tracking.records import config_hash


def run_id_of(cfg: ExperimentConfig) -> str:
    return config_hash(cfg.identity())


def round_lr(cfg: ExperimentConfig, r: int) -> float:
    lr, total = cfg.train.lr, cfg.federation.rounds
    if cfg.train.lr_schedule == "linear":
        return lr * (1 - r / total)
    if cfg.train.lr_schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * r / total))
    return lr


def sample_clients(cfg: ExperimentConfig, n_clients: int, r: int) -> list[int]:
    k = cfg.federation.clients_per_round or max(1, round(cfg.federation.client_fraction * n_clients))
    k = min(k, n_clients)
    return sorted(rng(cfg.seed, "sampling", r).choice(n_clients, size=k, replace=False).tolist())


def _device(cfg: ExperimentConfig) -> torch.device:
    if cfg.train.accelerator in ("gpu", "cuda") or (cfg.train.accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def initial_module(cfg: ExperimentConfig, spec, backbone, num_classes: int, device: torch.device):
    """(the run's client module with its seeded initialisation, on ``device``; the method's options).
    The loop and every executor worker (Ray actors, Flower nodes) make theirs here, so all start alike."""
    options = method_options(spec, cfg.method.options)
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        module = spec.client(backbone, num_classes, TrainSettings(cfg.train.lr, cfg.train.weight_decay), options)
    module.to(device)
    return module, options


class Federation:
    """One experiment's state (global, per-client and server state, history, best round) and steps."""

    def __init__(self, exp: Experiment, spec: MethodSpec, results_dir: Path):
        self.exp, self.spec, self.cfg = exp, spec, exp.cfg
        self.run_id = run_id_of(self.cfg)
        self.results_dir = results_dir
        self.device = _device(self.cfg)
        exp.backbone.to(self.device)
        check_run_memory(exp.bundle, self.cfg.train.batch_size, self.cfg.train.eval_batch_size, PREFETCH + WORKERS + 2)
        self.module: ClientModule
        self.module, options = initial_module(self.cfg, spec, exp.backbone, exp.bundle.num_classes, self.device)
        if self.cfg.train.accumulate > 1 and not self.module.automatic_optimization:
            raise ConfigError(f"train.accumulate: {self.cfg.method.name} with these options steps its optimiser itself, "
                              "so Lightning cannot accumulate its gradients; set train.accumulate to 1")
        context = self.server_context() if spec.needs_server_context else None
        self.aggregator = spec.aggregator(options, context)
        self.scorer = Scorer(exp, spec, self.module)
        runner = ClientRunner(self.module, exp.bundle, self.cfg.train, self.cfg.federation.local_epochs)
        executor_spec = EXECUTORS.get(self.cfg.executor.name)
        self.executor = executor_spec.build(build_options(executor_spec.options, self.cfg.executor.options, "executor.options"), self.cfg, runner)
        shared, personal = self.module.split_state(self.module.trainable_state())
        self.global_state: State = shared
        store_folder = results_dir / self.cfg.data.dataset / "personal-store"
        # lazily per client: the initial state once, a client's own from its first fit on
        self.personal = PersonalStore(personal, len(exp.clients), self.cfg.federation.personal_store, store_folder)
        self.shards: dict[int, str] = {}  # client -> checkpoint shard holding its latest state
        self.best_shards: dict[int, str] = {}  # the same for the validation-selected round
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.start_round = 0
        self.elapsed_before = 0.0  # wall time of earlier processes of this run (resumed runs)
        self.started = time.time()
        self.diverged: dict[str, Any] | None = None

    def server_context(self) -> ServerContext:
        splits = self.exp.bundle.splits
        public = next((np.sort(splits[s]) for s in ("public", "pretrain") if s in splits), None)
        return ServerContext(self.exp.backbone, self.exp.bundle, public, self.device, self.cfg.seed, n_clients=len(self.exp.clients))

    # ----- persistence ---------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.results_dir / self.cfg.data.dataset / "checkpoints" / f"{self.run_id}.pt"

    def resume(self) -> None:
        path = self.checkpoint_path
        ckpt = ckpts.load_checkpoint(path, self.run_id)
        if ckpt is None:
            return
        self.global_state = ckpt["global_state"]
        self.history, self.best, self.start_round = ckpt["history"], ckpt["best"], ckpt["next_round"]
        if "personal" in ckpt:  # version 2: every client's state in the main file
            self.personal.restore(ckpt["personal"])
            best = self.personal.spawn()
            best.restore(self.best["personal"])
        else:
            self.shards, self.best_shards = ckpt["personal_shards"], self.best["personal"]
            shards = ckpts.load_personal(path, self.run_id, self.shards, self.best_shards)
            self.personal.restore(ckpts.states_of(self.shards, shards, path))
            best = self.personal.spawn()
            best.restore(ckpts.states_of(self.best_shards, shards, path))
        self.best = {**self.best, "personal": best}
        self.aggregator.load_server_state(ckpt.get("server_state") or {})
        self.elapsed_before = float(ckpt.get("elapsed_s", 0.0))

    def checkpoint(self, next_round: int) -> None:
        """Write the clients changed since the last checkpoint as one shard, then the main file
        (see :mod:`fedbench.federation.checkpoint`)."""
        path = self.checkpoint_path
        changed = {c: self.personal.get(c) for c in sorted(self.personal.dirty)}
        self.shards = {**self.shards, **ckpts.write_personal_shard(path, self.run_id, next_round, changed)}
        self.personal.dirty.clear()
        if self.best["round"] == next_round:  # selected this round: its states are the current ones
            self.best_shards = dict(self.shards)
        payload = {
            "global_state": self.global_state, "personal_shards": self.shards, "server_state": self.aggregator.server_state(),
            "history": self.history, "best": {**self.best, "personal": self.best_shards}, "next_round": next_round,
            "elapsed_s": self.elapsed_before + time.time() - self.started,
        }
        ckpts.save_checkpoint(path, self.run_id, payload)
        ckpts.remove_unreferenced_shards(path, self.shards, self.best_shards)

    # ----- one round -----------------------------------------------------------------------------
    def tasks(self, r: int, clients: list[int], work: dict[int, float] | None = None) -> list[ClientTask]:
        cfg, exp = self.cfg, self.exp
        work = work or {}
        payloads = self.aggregator.configure_fit(r, clients, self.global_state)
        return [
            ClientTask(
                round_index=r, client_id=c, global_state=self.global_state, personal=self.personal.get(c),
                index=exp.clients[c], codes=exp.client_codes[c], seed=derive_seed(cfg.seed, "fit", r, c),
                lr=round_lr(cfg, r), payload=payloads.get(c, {}), work=work.get(c, 1.0),
            )
            for c in clients
        ]

    def fit_clients(self, tasks: list[ClientTask], on_result) -> list:
        """Run the round's tasks on the executor: all from the global state (parallel schedule), or
        one after another, each starting from the previous client's shared result (cyclic)."""
        if self.spec.schedule != "cyclic":
            return self.executor.run(tasks, on_result=on_result)
        results, state = [], self.global_state
        for task in tasks:
            task.global_state = state
            results += self.executor.run([task], on_result=on_result)
            state = results[-1].state
        return results

    def run_round(self, r: int, callbacks: list[Callback]) -> dict[str, Any]:
        cfg = self.cfg
        sampled = sample_clients(cfg, len(self.exp.clients), r)
        for cb in callbacks:
            cb.on_round_start(self, r, sampled)
        failures = draw_failures(cfg.failures, cfg.seed, r, sampled)
        active = [c for c in sampled if c not in failures.dropped]
        results = self.fit_clients(self.tasks(r, active, failures.work), lambda res: [cb.on_client_end(self, res) for cb in callbacks])
        self.diverged = first_non_finite(r, results)
        if self.diverged is not None:
            return {}
        for res in results:
            self.personal.set(res.client_id, res.personal)
        down = state_bytes(self.global_state) * len(sampled)
        if results:  # a round in which every sampled client dropped keeps the global state
            self.global_state = self.aggregator.aggregate(self.global_state, results, r, derive_seed(cfg.seed, "aggregation", r))
        if not all_finite(self.global_state):
            self.diverged = {"round": r + 1, "client": None, "what": "the aggregated global state has non-finite values"}
            return {}
        for cb in callbacks:
            cb.on_validation_start(self, r)
        val, _ = self.scorer.scored(self.global_state, self.personal, *self.exp.val)
        entry = {
            "round": r + 1, "val": val, "train_loss": float(np.mean([res.loss for res in results])) if results else None, "bytes_down": down,
            "bytes_up": sum(state_bytes(res.state) for res in results), "clients": sampled, "lr": round_lr(cfg, r),
            **(self.aggregator.metadata() if results else {"all_dropped": True}),
        }
        if failures.dropped or failures.work:
            entry["failures"] = failures.as_record()
        self.history.append(entry)
        metric = self.exp.bundle.metric
        if self.best is None or val[metric] > self.best["val"]:
            self.best = {"round": r + 1, "val": val[metric], "state": {k: v.clone() for k, v in self.global_state.items()},
                         "personal": self.personal.snapshot()}
        self.personal.prune(self.best["personal"])  # a disk store frees the files no one reads any more
        return entry

    # ----- the end of a run ------------------------------------------------------------------------
    def final_scores(self) -> tuple[dict, dict, dict]:
        """(final metrics per condition, validation-selected round and its metrics, personalized)."""
        final, as_train_preds = self.scorer.test_metrics(self.global_state, self.personal)
        personalized = self.scorer.personalized(self.global_state, self.personal, as_train_preds)
        if self.best["round"] == len(self.history):  # the validation-selected round is the last one
            selected = {"round": self.best["round"], "metrics": final}
        else:
            selected = {"round": self.best["round"], "metrics": self.scorer.test_metrics(self.best["state"], self.best["personal"])[0]}
        return final, selected, personalized


def run_experiment(
    cfg: ExperimentConfig, *, stop_after_rounds: int | None = None, force: bool = False, callbacks: list[Callback] | None = None,
    smoke: bool = False,
) -> dict[str, Any] | None:
    """Run (or resume) one experiment and return its record; ``None`` if stopped early on purpose.

    A record of the same configuration already produced here is returned as is unless ``force``
    (see :func:`~fedbench.federation.record.already_recorded`).
    ``smoke``: the real data path with one short round (:mod:`fedbench.federation.smoke`); nothing
    is recorded.
    """
    if smoke:
        from fedbench.cache.frozen import small_blocks

        with small_blocks():
            return _smoke(cfg)
    validate(cfg)
    results_dir = Path(cfg.tracking.results_dir)
    run_id = run_id_of(cfg)
    if not force and (done := already_recorded(results_dir, cfg.data.dataset, run_id)) is not None:
        return done
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    check_writable(results_dir / cfg.data.dataset)  # before any training, not after the first round
    t0 = time.time()
    fed = Federation(prepare(cfg), get_method(cfg.method.name), results_dir)
    fed.started = t0
    try:
        fed.resume()
    except BaseException:  # a refused checkpoint: leave no Ray actors nor store folder behind
        fed.executor.close()
        fed.personal.close()
        raise
    callbacks = default_callbacks() if callbacks is None else callbacks
    return _run(fed, cfg, callbacks, t0, stop_after_rounds)


def _smoke(cfg: ExperimentConfig) -> dict[str, Any]:
    from fedbench.federation.callbacks import ProgressCallback
    from fedbench.federation.smoke import SmokeReport, smoke_config, smoke_view

    file_batch = cfg.train.batch_size
    cfg, notes = smoke_config(cfg)
    validate(cfg)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    results_dir = Path(cfg.tracking.results_dir)
    check_writable(results_dir / cfg.data.dataset)
    t0 = time.time()
    exp = smoke_view(prepare(cfg))
    setup_s = time.time() - t0
    fed = Federation(exp, get_method(cfg.method.name), results_dir)
    report = SmokeReport(cfg, notes, setup_s, file_batch)
    record = _run(fed, cfg, [ProgressCallback(), report], t0, None)
    return {**(record or {}), "smoke": report.report}


def _run(fed: Federation, cfg: ExperimentConfig, callbacks: list[Callback], t0: float, stop_after_rounds: int | None):
    r = fed.start_round
    try:
        for cb in callbacks:
            cb.on_run_start(fed)
        for r in range(fed.start_round, cfg.federation.rounds):
            entry = fed.run_round(r, callbacks)
            if fed.diverged is not None:
                break
            for cb in callbacks:
                cb.on_round_end(fed, entry)
            release_freed_memory()  # after the checkpoint: its buffers are freed too
            if stop_after_rounds is not None and r + 1 >= stop_after_rounds and r + 1 < cfg.federation.rounds:
                return None
        scores = (None, None, None) if fed.diverged is not None else fed.final_scores()
        record = make_record(fed, *scores, wall_time_s=fed.elapsed_before + time.time() - t0)
        for cb in callbacks:
            cb.on_run_end(fed, record)
        ckpts.remove_shards(fed.checkpoint_path)  # once the checkpoint callback removed the main file
        return record
    except RunInterrupted as err:
        err.round = r + 1
        raise
    finally:
        for cb in callbacks:
            cb.close()
        fed.executor.close()
        fed.personal.close()
