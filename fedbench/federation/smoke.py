"""Smoke runs: the whole real path of an experiment in minutes on a CPU, before a GPU-day.

``fedbench run --config experiments/<table>.yaml --smoke`` (``make bench ... SMOKE=1``) loads the
full dataset, checks and prepares it, builds its caches (every image decoded, every text
tokenised), partitions it and draws the missing tables exactly as the real run does; then it runs
one round in which every sampled client takes :data:`SMOKE["max_steps"]` steps on a few of its own
rows, and scores a capped sample of validation and test. Frozen per-row work is computed in small
blocks (:func:`fedbench.cache.frozen.small_blocks`), so only the rows the smoke run touches cost
anything. A GPU the file asks for but this machine lacks becomes the CPU (``16-mixed`` becomes
``auto``), with a note.

A smoke run writes no record and no checkpoint: it prints what each phase took, the peak memory
and the caches it used, and writes that report to ``<results_dir>/smoke/<dataset>/<method>.json``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from fedbench.config import ExperimentConfig
from fedbench.federation.callbacks import Callback
from fedbench.hardware import peak_rss_bytes

SMOKE = {
    "rounds": 1,
    "max_steps": 2,
    "batch_size": 4,
    "eval_batch_size": 16,
    "eval_samples": 64,
    "personalized_clients": 4,
    "server_rows": 128,
}


def smoke_config(cfg: ExperimentConfig) -> tuple[ExperimentConfig, list[str]]:
    """(the smoke run's config, notes on what was changed for this machine); the file's batch size
    is kept as ``cfg.train.batch_size`` of the original (the report estimates memory at it)."""
    import torch

    cfg, notes = copy.deepcopy(cfg), []
    t = cfg.train
    cfg.federation.rounds = SMOKE["rounds"]
    t.max_steps, t.accumulate = SMOKE["max_steps"], 1
    t.batch_size, t.eval_batch_size = (
        min(t.batch_size, SMOKE["batch_size"]),
        min(t.eval_batch_size, SMOKE["eval_batch_size"]),
    )
    t.eval_samples = min(t.eval_samples or SMOKE["eval_samples"], SMOKE["eval_samples"])
    pc = cfg.federation.personalized_clients
    cfg.federation.personalized_clients = min(
        pc or SMOKE["personalized_clients"], SMOKE["personalized_clients"]
    )
    if t.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        notes.append(f"train.accelerator {t.accelerator} -> cpu (no GPU here)")
        t.accelerator = "cpu"
    if t.precision == "16-mixed" and t.accelerator == "cpu":
        notes.append("train.precision 16-mixed -> auto (float16 autocast is GPU-only)")
        t.precision = "auto"
    cfg.tracking.wandb = False
    cfg.tracking.results_dir = str(Path(cfg.tracking.results_dir) / "smoke")
    return cfg, notes


def smoke_view(exp):
    """The experiment with each client's rows, the evaluation splits and the server's rows capped
    (the data, caches, partition and missing tables stay those of the full run)."""
    cfg = exp.cfg
    per_client = cfg.train.batch_size * cfg.train.max_steps
    clients = [rows[:per_client] for rows in exp.clients]
    codes = [c[:per_client] for c in exp.client_codes]
    train = (
        np.unique(np.concatenate([c for c in clients if len(c)])) if clients else np.array([], dtype=np.int64)
    )
    splits = {"train": train, "val": exp.val[0], "test": exp.test["as_train"][0]}
    full = exp.bundle.splits
    for name in ("public", "pretrain"):
        if name in full:
            splits[name] = np.sort(np.asarray(full[name]))[: SMOKE["server_rows"]]
    if not any(name in splits for name in ("public", "pretrain")):
        # the rows a server would hold (those no split holds, else validation: what a method falls back
        # to on the full bundle), capped; without it the capped splits would leave every other row "held out"
        used = np.concatenate([np.asarray(full[k]) for k in ("train", "val", "test") if k in full])
        rest = np.setdiff1d(np.arange(len(exp.bundle.labels)), used)
        splits["public"] = (rest if len(rest) >= 2 else np.sort(np.asarray(full["val"])))[
            : SMOKE["server_rows"]
        ]
    bundle = dataclasses.replace(exp.bundle, splits=splits)
    return dataclasses.replace(exp, bundle=bundle, clients=clients, client_codes=codes)


class SavedBytes:
    """The bytes autograd keeps for backward during a training forward (each storage once): the
    activation memory of a step, which grows with the batch while the weights do not."""

    def __init__(self):
        self.current: dict[int, int] = {}
        self.peak = 0

    def pack(self, t):
        try:
            storage = t.untyped_storage()
            self.current[storage.data_ptr()] = storage.nbytes()
        except (RuntimeError, NotImplementedError):  # tensors without storage (e.g. nested)
            pass
        return t

    def step(self, *_) -> None:  # a forward pre-hook: the previous step's activations are complete
        self.peak = max(self.peak, sum(self.current.values()))
        self.current = {}


class SmokeReport(Callback):
    """Times each phase, reads the peak memory, the caches used and the activation bytes of a step,
    prints and writes the report."""

    def __init__(self, cfg: ExperimentConfig, notes: list[str], setup_s: float, file_batch: int):
        self.cfg, self.notes, self.setup_s, self.file_batch = cfg, notes, setup_s, file_batch
        self.t_round = self.t_fit = None
        self.report: dict[str, Any] = {}
        self.saved = SavedBytes()

    def on_run_start(self, fed) -> None:
        self.t_run = time.time()

    def on_round_start(self, fed, round_index, clients) -> None:
        import torch

        self.t_round = time.time()
        self.n_clients = len(clients)
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.saved.pack, lambda t: t)
        self.hooks.__enter__()
        self.handle = fed.module.register_forward_pre_hook(
            lambda m, a: self.saved.step() if m.training else None
        )

    def on_validation_start(self, fed, round_index) -> None:
        self.t_fit = time.time() - self.t_round
        self.hooks.__exit__(None, None, None)
        self.handle.remove()
        self.saved.step()

    def on_run_end(self, fed, record) -> None:
        cfg, bundle = self.cfg, fed.exp.bundle
        columns = {
            name: {
                "shape": list(col.shape),
                "dtype": str(col.dtype).replace("torch.", ""),
                "mapped": type(col).__name__ != "Tensor",
                "file_bytes": _file_bytes(col),
            }
            for name, col in bundle.columns.items()
        }
        self.report = {
            "dataset": cfg.data.dataset,
            "method": cfg.method.name,
            "backbone": cfg.backbone.name,
            "rows": int(len(bundle.labels)),
            "splits": {k: int(len(v)) for k, v in fed.exp.bundle.splits.items()},
            "clients": len(fed.exp.clients),
            "clients_in_round": self.n_clients,
            "steps_per_client": cfg.train.max_steps,
            "batch_size": cfg.train.batch_size,
            "precision": cfg.train.precision,
            "accelerator": cfg.train.accelerator,
            "setup_s": round(self.setup_s, 1),
            "round_fit_s": round(self.t_fit or 0.0, 1),
            "gpu_estimate_gib": round(
                gpu_estimate(fed, self.saved.peak / cfg.train.batch_size, self.file_batch) / 2**30, 1
            ),
            "file_batch": self.file_batch,
            "run_s": round(time.time() - self.t_run, 1),
            "peak_rss_gib": round(peak_rss_bytes() / 2**30, 2),
            "columns": columns,
            "final": record.get("final"),
            "status": record.get("status"),
            "notes": self.notes,
            "data_info": {k: v for k, v in bundle.info.items() if isinstance(v, int | float | str)},
        }
        path = Path(cfg.tracking.results_dir) / cfg.data.dataset / f"{cfg.method.name}.json"
        from fedbench.safe_io import atomic_write_text

        atomic_write_text(path, json.dumps(self.report, indent=1, default=str))
        self.report["path"] = str(path)
        print(render(self.report), file=sys.stderr, flush=True)


def _file_bytes(column) -> int:
    """The size of the cache file behind a memory-mapped column (0 for a column in memory)."""
    array = getattr(getattr(column, "lengths", column), "array", None)
    name = getattr(array, "filename", None)
    return int(Path(name).stat().st_size) if name else 0


def gpu_estimate(fed, activation_per_sample: float, batch: int) -> float:
    """Bytes a GPU needs to train at the experiment file's batch size: the frozen weights, the
    trainable tensors four times (weights, gradients, Adam's two moments), a batch of inputs, and the
    activations autograd kept per sample in the smoke step times the batch (on a CPU the attention
    runs unfused in float32, so this is an upper bound for a GPU's fused kernels)."""
    from fedbench.cache.preflight import row_bytes

    frozen = sum(
        t.numel() * t.element_size() for t in [*fed.exp.backbone.parameters(), *fed.exp.backbone.buffers()]
    )
    trainable = sum(p.numel() * p.element_size() for p in fed.module.parameters() if p.requires_grad)
    return frozen + 4 * trainable + batch * (row_bytes(fed.exp.bundle) + activation_per_sample)


def render(r: dict) -> str:
    lines = [
        f"smoke {r['method']} on {r['dataset']} ({r['backbone']}, {r['precision']}, {r['accelerator']}): "
        f"{r['status']}",
        f"  data: {r['rows']:,} rows, splits {r['splits']}, {r['clients']} clients",
        f"  times: setup (data, caches, partition) {r['setup_s']}s, round of {r['clients_in_round']} clients "
        f"x {r['steps_per_client']} steps {r['round_fit_s']}s, whole run {r['run_s']}s",
        f"  peak memory: {r['peak_rss_gib']} GiB; GPU memory to train at the file's batch {r['file_batch']}: "
        f"about {r['gpu_estimate_gib']} GiB (estimate)",
    ]
    for name, c in r["columns"].items():
        on_disk = f", {c['file_bytes'] / 2**30:.2f} GiB on disk" if c.get("file_bytes") else ""
        lines.append(
            f"  column {name}: {c['shape']} "
            f"{c['dtype']}{' (memory-mapped' + on_disk + ')' if c['mapped'] else ''}"
        )
    lines += [f"  note: {n}" for n in r["notes"]] + [f"  report: {r.get('path', '')}"]
    return "\n".join(lines)
