"""`make perf`'s memory figures: resident bytes kept per stored client (section c) and the
10,000-client runs of benchmarks/many_clients.py (section f). Figures as plain dicts."""

from __future__ import annotations

import contextlib
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fedbench.config import ExperimentConfig
from fedbench.federation import loop
from fedbench.federation.callbacks import Callback, default_callbacks
from fedbench.federation.heap import release_freed_memory

HERE = Path(__file__).resolve().parent


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


class _KeptBytes(Callback):
    """Resident memory and stored personal states at the end of every round, after the round's
    checkpoint and (when ``release``) after handing freed heap memory back, as the loop does next."""

    def __init__(self, release: bool, results: Path):
        self.release, self.results, self.points = release, results, []

    def on_round_end(self, fed, entry):
        gc.collect()
        if self.release:
            release_freed_memory()
        self.points.append((len(fed.personal.sampled()), _rss_bytes()))
        files = list(self.results.rglob("*.safetensors"))  # a disk store's states, one file each
        self.disk = sum(f.stat().st_size for f in files) / len(files) if files else None
        self.trainable = sum(t.numel() * t.element_size() for t in fed.personal.initial.values())


@contextlib.contextmanager
def _loop_release(enabled: bool):
    """The loop's end-of-round release as is, or turned off (to show what it is for)."""
    kept = loop.release_freed_memory
    loop.release_freed_memory = kept if enabled else (lambda: False)
    try:
        yield
    finally:
        loop.release_freed_memory = kept


def synthetic_config(
    method: str,
    clients: int,
    per_round: int,
    rounds: int,
    *,
    store: str = "memory",
    personalized_clients: int = 100,
    samples_per_client: int = 2,
    n_eval: int = 200,
    threads: int = 1,
) -> ExperimentConfig:
    """A scale run on the synthetic dataset and backbone (iid clients of ``samples_per_client``
    training samples each, ``n_eval`` validation and test samples), without progress bar or W&B."""
    cfg = ExperimentConfig()
    cfg.data.dataset, cfg.backbone.name, cfg.method.name = "synthetic", "synthetic", method
    cfg.data.options = {"n_train": samples_per_client * clients, "n_val": n_eval, "n_test": n_eval}
    cfg.partition.name, cfg.partition.n_clients = "iid", clients
    cfg.federation.rounds, cfg.federation.clients_per_round = rounds, per_round
    cfg.federation.personalized_clients, cfg.federation.personal_store = personalized_clients, store
    cfg.train.threads = threads
    cfg.tracking.progress, cfg.tracking.wandb = False, False
    return cfg


def memory_per_client(
    store: str = "memory",
    release: bool = True,
    method: str = "fedprime",
    clients: int = 2000,
    per_round: int = 100,
    rounds: int = 4,
) -> dict:
    """Resident bytes each newly stored client adds (per round after the first: RSS growth over the
    clients newly stored; the median of those) against that client's trainable personal bytes,
    on the synthetic dataset and backbone, with the default callbacks (checkpoints included)."""
    cfg = synthetic_config(
        method, clients, per_round, rounds, store=store, personalized_clients=20, n_eval=100
    )
    with tempfile.TemporaryDirectory() as tmp, _loop_release(release):
        cfg.tracking.results_dir, kept = tmp, _KeptBytes(release, Path(tmp))
        t = time.perf_counter()
        loop.run_experiment(cfg, force=True, callbacks=[*default_callbacks(), kept])
        wall = time.perf_counter() - t
    steps = [
        (r1 - r0) / max(n1 - n0, 1) for (n0, r0), (n1, r1) in zip(kept.points, kept.points[1:], strict=False)
    ]
    per_client = float(np.median(steps))
    return {
        "method": method,
        "store": store,
        "release": release,
        "clients": clients,
        "per_round": per_round,
        "rounds": rounds,
        "wall_s": wall,
        "stored": [n for n, _ in kept.points],
        "rss_mb": [r / 2**20 for _, r in kept.points],
        "step_per_client": steps,
        "kept_per_client": per_client,
        "trainable_per_client": kept.trainable,
        "ratio": per_client / kept.trainable if kept.trainable else None,
        "disk_per_state": kept.disk,
    }


def many_clients(
    method: str,
    clients: int = 10_000,
    per_round: int = 100,
    rounds: int = 3,
    store: str = "memory",
    personalized_clients: int = 100,
    samples_per_client: int = 2,
    threads: int = 1,
) -> dict:
    """One benchmarks/many_clients.py run in its own process (so its peak RSS is its own)."""
    cmd = [
        sys.executable,
        str(HERE / "many_clients.py"),
        "--one",
        method,
        "--clients",
        str(clients),
        "--per-round",
        str(per_round),
        "--rounds",
        str(rounds),
        "--store",
        store,
        "--personalized-clients",
        str(personalized_clients),
        "--samples-per-client",
        str(samples_per_client),
        "--threads",
        str(threads),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    if out.returncode != 0:
        raise RuntimeError(
            f"{method} at {clients} clients failed: "
            f"{out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
        )
    return json.loads(out.stdout.strip().splitlines()[-1])
