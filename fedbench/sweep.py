"""Grids of experiments, the per-method benchmark plans behind ``make bench``, and leaderboards.

A grid crosses methods x missing rates x missing types x Dirichlet alphas x seeds over one base
config. Every cell is an ordinary run: a cell whose record already exists (same config hash) is
skipped, and a cell interrupted mid-way resumes from its round checkpoint, so re-running a sweep
only does the missing work. The leaderboard is regenerated from all records afterwards.
"""

from __future__ import annotations

import copy
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from fedbench.config import ExperimentConfig, from_dict
from fedbench.errors import ConfigError

PROFILES = {
    "quick": {"config": "experiments/emoji_quick.yaml", "rates": [0.1, 0.5, 0.9], "seeds": [0, 1], "workers": 2},
    "full": {"config": "experiments/emoji_full.yaml", "rates": [0.0, 0.3, 0.5, 0.7, 0.9], "seeds": [0, 1, 2]},
}

@dataclass
class Grid:
    methods: list[str]
    rates: list[float]
    types: list[str]
    alphas: list[float]
    seeds: list[int]

    def cells(self):
        return itertools.product(self.types, self.rates, self.alphas, self.seeds, self.methods)


def load_config(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; run from the repository root or pass --config")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML ({str(err).splitlines()[0]}); fix the file") from err
    return from_dict(data)


def run_grid(
    base: ExperimentConfig, grid: Grid, *, name: str, results: str, leaderboards: str | None, wandb: bool, command: str, workers: int = 1
) -> list[dict]:
    from fedbench.config import validate

    cells = list(grid.cells())
    configs = []
    for mtype, rate, alpha, seed, method in cells:
        cfg = copy.deepcopy(base)
        cfg.method.name = method
        cfg.method.options = dict(base.method.options) if method == base.method.name else {}
        cfg.missing.rate, cfg.missing.type, cfg.partition.alpha, cfg.seed = rate, mtype, alpha, seed
        cfg.tracking.results_dir, cfg.tracking.sweep, cfg.tracking.wandb, cfg.tracking.command = results, name, wandb, command
        configs.append(validate(cfg))  # refuse a bad grid before spending an hour on its first cells
    records, t0 = [], time.time()
    for i, (cfg, rec, seconds) in enumerate(_execute(configs, workers), 1):
        print(f"[{i}/{len(configs)}] {cfg.method.name} {cfg.missing.type}@{cfg.missing.rate} alpha {cfg.partition.alpha} "
              f"seed {cfg.seed}: as_train {rec['final']['as_train'][rec['metric']]:.4f} ({seconds:.0f}s)",
              file=sys.stderr, flush=True)
        records.append(rec)
    print(f"sweep {name}: {len(configs)} runs in {time.time() - t0:.0f}s", file=sys.stderr)
    if leaderboards:
        path = regenerate_leaderboard(results, leaderboards, base.data.dataset, None)
        print(f"wrote {path}", file=sys.stderr)
    return records


def _timed_run(cfg: ExperimentConfig) -> tuple[ExperimentConfig, dict, float]:
    from fedbench.federation.loop import run_experiment

    t = time.time()
    return cfg, run_experiment(cfg), time.time() - t


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _execute(configs: list[ExperimentConfig], workers: int):
    """Yield (config, record, seconds) per cell. With several workers each process keeps its own
    data and frozen backbone and gets an equal share of the CPU threads; every run is seeded by
    its own seed tree, so the order in which cells finish does not matter."""
    if workers <= 1 or len(configs) <= 1:
        yield from map(_timed_run, configs)
        return
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from fedbench.backbones.registry import featurized

    for cfg in {(c.data.dataset, c.backbone.name): c for c in configs}.values():
        featurized(cfg.data, cfg.backbone)  # build any missing cache once, here, rather than in every worker at once
    for cfg in configs:
        cfg.tracking.progress = False  # several live bars would garble the terminal
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
        futures = [pool.submit(_timed_run, cfg) for cfg in configs]
        for future in as_completed(futures):
            yield future.result()


def bench(
    method: str, profile: str, *, rates=None, seeds=None, types=None, ablations=False, results="results",
    leaderboards="leaderboards", wandb=True, workers: int | None = None,
) -> list[dict]:
    from fedbench.methods.registry import get_method

    plan = get_method(method).plan
    if profile not in PROFILES:
        raise ConfigError(f"PROFILE={profile!r} is not a profile; use quick or full")
    prof = PROFILES[profile]
    base = load_config(prof["config"])
    base.missing.protocol = plan.protocol
    base.method.name = method
    methods = list(dict.fromkeys([method, *plan.baselines, *(plan.ablations if ablations else [])]))
    plan_profile = plan.profiles.get(profile, {})
    for section, values in plan_profile.get("overrides", {}).items():
        for key, value in values.items():
            setattr(getattr(base, section), key, value)
    grid = Grid(
        methods=methods,
        rates=rates or plan_profile.get("rates", prof["rates"]),
        types=types or list(plan.types),
        alphas=[base.partition.alpha],
        seeds=seeds if seeds is not None else plan_profile.get("seeds", prof["seeds"]),
    )
    command = f"make bench METHOD={method} PROFILE={profile}"
    if rates:
        command += f' RATES="{" ".join(map(str, rates))}"'
    if seeds is not None:
        command += f' SEEDS="{" ".join(map(str, seeds))}"'
    if ablations:
        command += " ABLATIONS=1"
    workers = prof.get("workers", 1) if workers is None else workers
    return run_grid(base, grid, name=f"bench-{method}-{profile}", results=results, leaderboards=leaderboards, wandb=wandb, command=command, workers=workers)


def regenerate_leaderboard(results: str, leaderboards: str, dataset: str, command: str | None) -> Path:
    from fedbench.methods.registry import available, get_method
    from fedbench.tracking.leaderboard import write_leaderboard
    from fedbench.tracking.records import load_records

    records = load_records(Path(results), dataset)
    if command is None:
        commands = sorted({r.get("config", {}).get("tracking", {}).get("command") or "" for r in records} - {""})
        command = "\n".join(commands) or "fedbench leaderboard"
    notes = {m: get_method(m).notes or get_method(m).description for m in available()}
    return write_leaderboard(Path(results), Path(leaderboards), dataset, command, method_notes=notes)
