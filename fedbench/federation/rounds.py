"""A federation's state and its round: sample clients, configure and run their fits on the
executor, aggregate, score on validation; checkpoints and resuming. The run around it (callbacks,
final scores, the record) is :func:`fedbench.federation.loop.run_experiment`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from fedbench.aggregation.weighted import state_bytes
from fedbench.cache.preflight import check_run_memory
from fedbench.config import ExperimentConfig
from fedbench.data.loader import PREFETCH, WORKERS
from fedbench.errors import ConfigError
from fedbench.federation import checkpoint as ckpts
from fedbench.federation import parts
from fedbench.federation.callbacks import Callback
from fedbench.federation.client import ClientRunner, ClientTask
from fedbench.federation.failures import draw_failures
from fedbench.federation.personal_store import PersonalStore
from fedbench.federation.scoring import Scorer
from fedbench.federation.setup import Experiment
from fedbench.federation.validity import all_finite, first_non_finite
from fedbench.methods.base import ClientModule, State
from fedbench.seeds import derive_seed, rng


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


class Federation:
    """One experiment's state (global, per-client and server state, history, best round) and steps."""

    def __init__(self, exp: Experiment, results_dir: Path):
        run = exp.run
        self.exp, self.run, self.spec, self.cfg = exp, run, run.method, run.cfg
        self.run_id = run.run_id
        self.results_dir = results_dir
        self.device = run.device
        exp.backbone.to(self.device)
        check_run_memory(
            exp.bundle, self.cfg.train.batch_size, self.cfg.train.eval_batch_size, PREFETCH + WORKERS + 2
        )
        self.module: ClientModule = parts.client_module(
            run, exp.backbone, exp.bundle.num_classes, self.device
        )
        if self.cfg.train.accumulate > 1 and not self.module.automatic_optimization:
            raise ConfigError(
                f"train.accumulate: {self.cfg.method.name} with these options steps its optimiser itself, "
                "so Lightning cannot accumulate its gradients; set train.accumulate to 1"
            )
        self.aggregator = parts.aggregator(run, exp.backbone, exp.bundle, len(exp.clients), self.device)
        self.scorer = Scorer(exp, run.method, self.module)
        runner = ClientRunner(self.module, exp.bundle, self.cfg.train, self.cfg.federation.local_epochs)
        runner.rebuild = parts.runner_for_config
        self.executor = run.executor.build(run.executor_options, self.cfg, runner)
        shared, personal = self.module.split_state(self.module.trainable_state())
        self.global_state: State = shared
        store_folder = results_dir / self.cfg.data.dataset / "personal-store"
        # lazily per client: the initial state once, a client's own from its first fit on
        self.personal = PersonalStore(
            personal, len(exp.clients), self.cfg.federation.personal_store, store_folder
        )
        self.shards: dict[int, str] = {}  # client -> checkpoint shard holding its latest state
        self.best_shards: dict[int, str] = {}  # the same for the validation-selected round
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.start_round = 0
        self.elapsed_before = 0.0  # wall time of earlier processes of this run (resumed runs)
        self.started = time.time()
        self.diverged: dict[str, Any] | None = None

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
            "global_state": self.global_state,
            "personal_shards": self.shards,
            "server_state": self.aggregator.server_state(),
            "history": self.history,
            "best": {**self.best, "personal": self.best_shards},
            "next_round": next_round,
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
                round_index=r,
                client_id=c,
                global_state=self.global_state,
                personal=self.personal.get(c),
                index=exp.clients[c],
                codes=exp.client_codes[c],
                seed=derive_seed(cfg.seed, "fit", r, c),
                lr=round_lr(cfg, r),
                payload=payloads.get(c, {}),
                work=work.get(c, 1.0),
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
        cfg, started = self.cfg, time.perf_counter()
        sampled = sample_clients(cfg, len(self.exp.clients), r)
        for cb in callbacks:
            cb.on_round_start(self, r, sampled)
        failures = draw_failures(cfg.failures, cfg.seed, r, sampled)
        active = [c for c in sampled if c not in failures.dropped]
        results = self.fit_clients(
            self.tasks(r, active, failures.work),
            lambda res: [cb.on_client_end(self, res) for cb in callbacks],
        )
        self.diverged = first_non_finite(r, results)
        if self.diverged is not None:
            return {}
        for res in results:
            self.personal.set(res.client_id, res.personal)
        down = state_bytes(self.global_state) * len(sampled)
        if results:  # a round in which every sampled client dropped keeps the global state
            self.global_state = self.aggregator.aggregate(
                self.global_state, results, r, derive_seed(cfg.seed, "aggregation", r)
            )
        if not all_finite(self.global_state):
            self.diverged = {
                "round": r + 1,
                "client": None,
                "what": "the aggregated global state has non-finite values",
            }
            return {}
        for cb in callbacks:
            cb.on_validation_start(self, r)
        val, _ = self.scorer.scored(self.global_state, self.personal, *self.exp.val)
        entry = {
            "round": r + 1,
            "val": val,
            "train_loss": float(np.mean([res.loss for res in results])) if results else None,
            "bytes_down": down,
            "bytes_up": sum(state_bytes(res.state) for res in results),
            "clients": sampled,
            "lr": round_lr(cfg, r),
            **(self.aggregator.metadata() if results else {"all_dropped": True}),
            "seconds": round(time.perf_counter() - started, 3),  # clients, server and validation
        }
        if failures.dropped or failures.work:
            entry["failures"] = failures.as_record()
        self.history.append(entry)
        metric = self.exp.bundle.metric
        if self.best is None or val[metric] > self.best["val"]:
            self.best = {
                "round": r + 1,
                "val": val[metric],
                "state": {k: v.clone() for k, v in self.global_state.items()},
                "personal": self.personal.snapshot(),
            }
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
            selected = {
                "round": self.best["round"],
                "metrics": self.scorer.test_metrics(self.best["state"], self.best["personal"])[0],
            }
        return final, selected, personalized
