"""The federation loop: rounds of client fits, aggregation, evaluation, checkpoints, one record.

Per round: sample clients (seeded by round), and for each load its state (global shared tensors
plus its own personal ones), run one lean ``Trainer.fit`` seeded by (round, client), and collect
the update; aggregate; score the global model on the validation split; checkpoint. At the end the
last and the validation-selected states are scored on every test condition (never selecting on
test) and one JSON record is written atomically.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedbench.aggregation.weighted import state_bytes, weighted_mean
from fedbench.config import TEST_CONDITIONS, ExperimentConfig, validate
from fedbench.data.bundle import make_loader
from fedbench.federation.checkpoint import load_checkpoint, save_checkpoint
from fedbench.federation.evaluate import classification_metrics, label_weighted_accuracy, predict
from fedbench.federation.progress import RoundProgress
from fedbench.federation.setup import Experiment, prepare
from fedbench.federation.trainer import make_trainer
from fedbench.methods.base import ClientModule, ClientUpdate, State, TrainSettings
from fedbench.methods.registry import MethodSpec, build_options, get_method
from fedbench.seeds import derive_seed, rng, seed_tree
from fedbench.tracking.provenance import git_commit, now_iso, package_versions
from fedbench.tracking.records import config_hash, find_record, write_record
from fedbench.tracking.wandb_log import WandbRun


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


class Federation:
    """One experiment's state and steps; ``run_experiment`` drives it."""

    def __init__(self, exp: Experiment, spec: MethodSpec, results_dir: Path):
        self.exp, self.spec, self.cfg = exp, spec, exp.cfg
        self.run_id = run_id_of(self.cfg)
        self.results_dir = results_dir
        self.device = _device(self.cfg)
        exp.backbone.to(self.device)
        options = build_options(spec, self.cfg.method.options)
        with torch.random.fork_rng():
            torch.manual_seed(derive_seed(self.cfg.seed, "init"))
            self.module: ClientModule = spec.client(
                exp.backbone, exp.bundle.num_classes, TrainSettings(self.cfg.train.lr, self.cfg.train.weight_decay), options
            )
        self.module.to(self.device)
        self.aggregator = spec.aggregator(options)
        shared, personal = self.module.split_state(self.module.trainable_state())
        self.global_state: State = shared
        self.personal: dict[int, State] = {c: {k: v.clone() for k, v in personal.items()} for c in range(len(exp.clients))}
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.start_round = 0

    # ----- persistence ---------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.results_dir / self.cfg.data.dataset / "checkpoints" / f"{self.run_id}.pt"

    def resume(self) -> None:
        ckpt = load_checkpoint(self.checkpoint_path, self.run_id)
        if ckpt is None:
            return
        self.global_state, self.personal = ckpt["global_state"], ckpt["personal"]
        self.history, self.best, self.start_round = ckpt["history"], ckpt["best"], ckpt["next_round"]

    def checkpoint(self, next_round: int) -> None:
        payload = {"global_state": self.global_state, "personal": self.personal, "history": self.history, "best": self.best, "next_round": next_round}
        save_checkpoint(self.checkpoint_path, self.run_id, payload)

    # ----- one round ---------------------------------------------------------------------------
    def load(self, shared: State, personal: State) -> ClientModule:
        self.module.load_trainable_state({**shared, **personal})
        return self.module

    def fit_client(self, c: int, r: int) -> tuple[ClientUpdate, float]:
        cfg, exp = self.cfg, self.exp
        module = self.load(self.global_state, self.personal[c])
        module.lr = round_lr(cfg, r)
        module.epoch_losses = []
        module.on_round_start(self.global_state, r)
        seed = derive_seed(cfg.seed, "fit", r, c)
        torch.manual_seed(seed)
        loader = make_loader(exp.bundle, exp.clients[c], exp.client_codes[c], batch_size=cfg.train.batch_size, shuffle=True, seed=seed)
        make_trainer(cfg.train, cfg.federation.local_epochs).fit(module, loader)
        shared, personal = module.split_state(module.trainable_state())
        self.personal[c] = {k: v.cpu() for k, v in personal.items()}
        update = ClientUpdate(c, {k: v.cpu() for k, v in shared.items()}, len(exp.clients[c]), module.round_metadata())
        return update, module.epoch_losses[-1] if module.epoch_losses else float("nan")

    def eval_personal(self) -> State:
        """Personal tensors used when scoring the *global* model: the sample-weighted client mean."""
        if not self.personal or not next(iter(self.personal.values())):
            return {}
        sizes = [len(ix) for ix in self.exp.clients]
        return weighted_mean(list(self.personal.values()), sizes)

    def scoring_personals(self) -> list[State]:
        """Local-only methods are scored as the mean over the clients' own models; others as one
        global model."""
        return list(self.personal.values()) if self.spec.local_only else [self.eval_personal()]

    def scored(self, shared: State, index: np.ndarray, codes: np.ndarray) -> tuple[dict[str, float], list]:
        """Metrics of the global model, or for local-only methods the mean over the clients' models."""
        exp, bs, prec = self.exp, self.cfg.train.eval_batch_size, self.cfg.train.precision
        results, preds = [], []
        for personal in self.scoring_personals():
            p, y = predict(self.load(shared, personal), exp.bundle, index, codes, batch_size=bs, precision=prec)
            results.append(classification_metrics(p, y, exp.bundle.num_classes))
            preds.append((p, y))
        return {k: float(np.mean([m[k] for m in results])) for k in results[0]}, preds

    def personalized(self, shared: State, global_preds: tuple | None = None) -> dict[str, float]:
        """Mean over clients of label-weighted test accuracy (as_train condition), each client with its
        own personal state; methods without personal state reuse the global model's predictions."""
        exp = self.exp
        idx, codes = exp.test["as_train"]
        labels = exp.bundle.labels.numpy()
        accs = []
        for c, rows in enumerate(exp.clients):
            counts = np.bincount(labels[rows], minlength=exp.bundle.num_classes)
            if self.spec.personalized or global_preds is None:
                personal = self.personal[c] if self.spec.personalized else self.eval_personal()
                p, y = predict(self.load(shared, personal), exp.bundle, idx, codes, batch_size=self.cfg.train.eval_batch_size, precision=self.cfg.train.precision)
            else:
                p, y = global_preds
            accs.append(label_weighted_accuracy(p, y, exp.bundle.num_classes, counts))
        return {"accuracy": float(np.mean(accs)), "per_client": [float(a) for a in accs]}

    def test_metrics(self, shared: State) -> tuple[dict[str, dict[str, float]], tuple | None]:
        """Metrics per test condition, plus the as_train predictions of a single global model.

        When a module's prediction for a sample depends only on that sample and its missing code
        (``batch_independent``), every condition is assembled from three passes over the test
        split (complete, text missing, image missing) instead of one pass per condition.
        """
        if not getattr(self.module, "batch_independent", True):
            return self.test_metrics_per_condition(shared)
        exp, bs, prec = self.exp, self.cfg.train.eval_batch_size, self.cfg.train.precision
        index = exp.test["as_train"][0]
        rows = torch.arange(len(index))
        by_code, labels = [], None
        for personal in self.scoring_personals():
            module = self.load(shared, personal)
            passes = [predict(module, exp.bundle, index, np.full(len(index), code, dtype=np.int8), batch_size=bs, precision=prec) for code in (0, 1, 2)]
            by_code.append(torch.stack([p for p, _ in passes]))  # [3, N]: prediction under each code
            labels = passes[0][1]
        out, as_train = {}, None
        for cond in TEST_CONDITIONS:
            cond_index, codes = exp.test[cond]
            assert np.array_equal(cond_index, index), "test conditions must share the test rows"
            codes = torch.as_tensor(codes, dtype=torch.long)
            results = [classification_metrics(bc[codes, rows], labels, exp.bundle.num_classes) for bc in by_code]
            out[cond] = {k: float(np.mean([m[k] for m in results])) for k in results[0]}
            if cond == "as_train" and len(by_code) == 1:
                as_train = (by_code[0][codes, rows], labels)
        return out, as_train

    def test_metrics_per_condition(self, shared: State) -> tuple[dict[str, dict[str, float]], tuple | None]:
        """One evaluation pass per condition: for modules whose predictions depend on the batch."""
        out, as_train = {}, None
        for cond in TEST_CONDITIONS:
            out[cond], preds = self.scored(shared, *self.exp.test[cond])
            if cond == "as_train" and len(preds) == 1:
                as_train = preds[0]
        return out, as_train


def run_experiment(cfg: ExperimentConfig, *, stop_after_rounds: int | None = None, force: bool = False) -> dict[str, Any] | None:
    """Run (or resume) one experiment and return its record; ``None`` if stopped early on purpose.

    A record already on disk for the same configuration is returned as is unless ``force``.
    """
    validate(cfg)
    results_dir = Path(cfg.tracking.results_dir)
    run_id = run_id_of(cfg)
    if not force and (done := find_record(results_dir, cfg.data.dataset, run_id)) is not None:
        return done
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    t0 = time.time()
    spec = get_method(cfg.method.name)
    exp = prepare(cfg)
    fed = Federation(exp, spec, results_dir)
    fed.resume()
    metric = exp.bundle.metric
    title = f"{cfg.method.name} {cfg.missing.type}@{cfg.missing.rate} seed {cfg.seed}"
    progress = RoundProgress(cfg.tracking.progress, title, cfg.federation.rounds, fed.start_round)
    name = f"{cfg.method.name}-{cfg.missing.type}{cfg.missing.rate}-s{cfg.seed}"
    with WandbRun(cfg.tracking.wandb, cfg.tracking.wandb_project, cfg.tracking.sweep, name, cfg.to_dict(), results_dir) as wb:
        try:
            for r in range(fed.start_round, cfg.federation.rounds):
                sampled = sample_clients(cfg, len(exp.clients), r)
                progress.start_round(r, len(sampled))
                updates, losses, down, up = [], [], 0, 0
                for c in sampled:
                    down += state_bytes(fed.global_state)
                    update, loss = fed.fit_client(c, r)
                    up += state_bytes(update.state)
                    updates.append(update)
                    losses.append(loss)
                    progress.client_done(c, loss)
                fed.global_state = fed.aggregator.aggregate(fed.global_state, updates, r, derive_seed(cfg.seed, "aggregation", r))
                val, _ = fed.scored(fed.global_state, *exp.val)
                entry = {"round": r + 1, "val": val, "train_loss": float(np.mean(losses)), "bytes_down": down, "bytes_up": up, "clients": sampled, "lr": round_lr(cfg, r), **fed.aggregator.metadata()}
                fed.history.append(entry)
                if fed.best is None or val[metric] > fed.best["val"]:
                    fed.best = {"round": r + 1, "val": val[metric], "state": {k: v.clone() for k, v in fed.global_state.items()}, "personal": {c: dict(p) for c, p in fed.personal.items()}}
                fed.checkpoint(r + 1)
                wb.log({f"val/{k}": v for k, v in val.items()} | {"train/loss": entry["train_loss"], "bytes/up": up, "bytes/down": down}, step=r + 1)
                progress.end_round(r, metric, val[metric])
                if stop_after_rounds is not None and r + 1 >= stop_after_rounds and r + 1 < cfg.federation.rounds:
                    return None
        finally:
            progress.close()
        final, as_train_preds = fed.test_metrics(fed.global_state)
        personalized = fed.personalized(fed.global_state, as_train_preds)
        if fed.best["round"] == len(fed.history):  # the validation-selected round is the last one
            selected = {"round": fed.best["round"], "metrics": final}
        else:
            last_personal, fed.personal = fed.personal, fed.best["personal"]
            selected = {"round": fed.best["round"], "metrics": fed.test_metrics(fed.best["state"])[0]}
            fed.personal = last_personal
        record = {
            "schema": 1, "run_id": run_id, "sweep": cfg.tracking.sweep, "dataset": cfg.data.dataset,
            "method": cfg.method.name, "seed": cfg.seed,
            "missing": {"protocol": cfg.missing.protocol, "rate": cfg.missing.rate, "type": cfg.missing.type, "both_ratio": cfg.missing.both_ratio},
            "partition": {"name": cfg.partition.name, "alpha": cfg.partition.alpha, "n_clients": cfg.partition.n_clients},
            "metric": metric, "final": final, "selected": selected, "personalized": personalized,
            "rounds": fed.history,
            "bytes": {"down": sum(h["bytes_down"] for h in fed.history), "up": sum(h["bytes_up"] for h in fed.history)},
            "majority_rate": exp.majority_rate, "wall_time_s": time.time() - t0,
            "partition_report": exp.report, "data_info": exp.bundle.info,
            "config": cfg.to_dict(), "seed_tree": seed_tree(cfg.seed), "git_commit": git_commit(), "versions": package_versions(), "created": now_iso(),
        }
        wb.summary({f"final/{c}/{k}": v for c, m in final.items() for k, v in m.items()})
    write_record(results_dir, record)
    fed.checkpoint_path.unlink(missing_ok=True)
    return record
