"""Grids of experiments and leaderboard regeneration.

A grid crosses methods x seeds x any config axes (``missing.rate``, ``missing.type``,
``partition.alpha``, or a whole section such as ``partition`` given as dicts of fields) over one
base config. Every cell is an ordinary run: a cell whose record already exists (same config
identity) is skipped, and a cell interrupted mid-way resumes from its round checkpoint, so
re-running a sweep only does the missing work. Cells run one after another, on a local process
pool (``workers``), or as Ray tasks across a cluster (``--cells ray``, see
:mod:`fedbench.federation.ray_cells`). The leaderboard is regenerated from all records
afterwards.
"""

from __future__ import annotations

import copy
import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedbench.config import ExperimentConfig, from_dict
from fedbench.errors import ConfigError
from fedbench.federation.resolve import ResolvedRun, resolve


@dataclass
class Grid:
    methods: list[str]
    seeds: list[int]
    axes: dict[str, list[Any]] = field(default_factory=dict)  # dotted field (or section) -> values
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> its own options

    def cells(self) -> list[dict[str, Any]]:
        names = list(self.axes)
        return [
            {"method": method, "seed": seed, **dict(zip(names, values, strict=True))}
            for values in itertools.product(*(self.axes[n] for n in names))
            for seed in self.seeds
            for method in self.methods
        ]


def load_config(path: str | Path) -> ExperimentConfig:
    """The experiment YAML at ``path``; a missing, empty or broken file is one line naming it."""
    from fedbench.yaml_files import read_mapping

    return from_dict(read_mapping(path, "config file"))


SETTING_AXIS = "setting"  # an axis whose values are dicts of config paths set together


def set_field(cfg: ExperimentConfig, dotted: str, value: Any) -> None:
    """Set ``section.field`` (or every field of ``section`` from a dict) on ``cfg``; the axis
    ``setting`` takes a dict of such paths, set together (one column of a paper's table)."""
    if dotted == SETTING_AXIS:
        if not isinstance(value, dict):
            raise ConfigError(
                f"sweep axis {SETTING_AXIS!r}: values must be dicts of config paths, got {value!r}"
            )
        for path, v in value.items():
            set_field(cfg, path, v)
        return
    section, _, name = dotted.partition(".")
    if not hasattr(cfg, section):
        raise ConfigError(f"sweep axis {dotted!r}: no config section {section!r}")
    if not name:
        if not isinstance(value, dict):
            raise ConfigError(f"sweep axis {dotted!r}: values must be dicts of {section} fields")
        for key, v in value.items():
            set_field(cfg, f"{section}.{key}", v)
        return
    target = getattr(cfg, section)
    if not hasattr(target, name):
        raise ConfigError(f"sweep axis {dotted!r}: {section} has no field {name!r}")
    setattr(target, name, value)


def cell_runs(base: ExperimentConfig, grid: Grid) -> list[ResolvedRun]:
    """One resolved run per cell; a bad grid is refused before its first cell runs. Options given
    on the base config apply to every method (a method that lacks one is refused); a method's own
    options come from ``grid.per_method``."""
    from fedbench.methods.registry import get_method

    runs = []
    for cell in grid.cells():
        cfg = copy.deepcopy(base)
        cfg.method.name, cfg.seed = cell.pop("method"), cell.pop("seed")
        options = {**base.method.options, **grid.per_method.get(cfg.method.name, {})}
        own = {f.name for f in __import__("dataclasses").fields(get_method(cfg.method.name).options)}
        if unknown := sorted(set(base.method.options) - own - set(grid.per_method.get(cfg.method.name, {}))):
            raise ConfigError(
                f"method.options: {cfg.method.name} has no option {unknown[0]!r}; "
                "give options of one method with "
                f"--per_method '{{\"METHOD\": {{...}}}}'"
            )
        cfg.method.options = options
        for dotted, value in cell.items():
            set_field(cfg, dotted, value)
        runs.append(resolve(cfg))
    return runs


def cell_configs(base: ExperimentConfig, grid: Grid) -> list[ExperimentConfig]:
    """The resolved configs of :func:`cell_runs` (what a process that resolves them again receives)."""
    return [run.cfg for run in cell_runs(base, grid)]


CELLS = ("local", "ray")  # where a sweep's cells run: this machine's processes, or Ray tasks


def run_grid(
    base: ExperimentConfig,
    grid: Grid,
    *,
    leaderboards: str | None,
    workers: int = 1,
    cells: str = "local",
    cells_options: dict | None = None,
) -> list[dict]:
    """Run every cell (records, sweep name, W&B and command come from ``base.tracking``): on
    ``workers`` local processes, or with ``cells="ray"`` as Ray tasks (``cells_options``: where and
    how large). Where a run's clients run is each cell's own ``executor`` section."""
    if workers < 1:
        raise ConfigError(f"--workers: must be >= 1, got {workers}")
    if cells not in CELLS:
        raise ConfigError(f"--cells: {cells!r} is not one of {', '.join(CELLS)}")
    runs = cell_runs(base, grid)
    configs = [run.cfg for run in runs]
    records, t0 = [], time.time()
    for i, (cfg, rec, seconds) in enumerate(_execute(runs, workers, cells, cells_options), 1):
        outcome = (
            "diverged"
            if rec.get("status") == "diverged"
            else f"as_train {rec['final']['as_train'][rec['metric']]:.4f}"
        )
        print(
            f"[{i}/{len(configs)}] {cfg.method.name} {cfg.missing.type}@{cfg.missing.rate} "
            f"{cfg.partition.name} alpha {cfg.partition.alpha} seed {cfg.seed}: {outcome} ({seconds:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
        records.append(rec)
    print(f"sweep {base.tracking.sweep}: {len(configs)} runs in {time.time() - t0:.0f}s", file=sys.stderr)
    if leaderboards:
        path = regenerate_leaderboard(base.tracking.results_dir, leaderboards, base.data.dataset, None)
        print(f"wrote {path}", file=sys.stderr)
    return records


def _worker_run(cfg: ExperimentConfig) -> tuple[ExperimentConfig, dict, float]:
    """One cell in a worker process (resolved once there):
    a SIGTERM stops it (and the worker) like a Ctrl-C."""
    from fedbench.federation.loop import timed_run
    from fedbench.interrupt import worker_task

    with worker_task():
        return timed_run(cfg)


def _worker_init(threads: int, parent_pid: int) -> None:
    import torch

    from fedbench.interrupt import worker_signals

    worker_signals(parent_pid)  # Ctrl-C is the parent's; SIGTERM (also when the parent dies) stops the worker
    torch.set_num_threads(threads)


STOP_GRACE_S = 30.0  # how long stopped workers get to unwind their cell before they are killed


def _stop_workers(processes: list) -> None:
    """SIGTERM each worker, wait for it (a cell unwinds in seconds, closing its W&B run and store),
    and SIGKILL only one that is still there after :data:`STOP_GRACE_S`: the parent returns only
    when no worker of it is left."""
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in processes:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()


def _execute(runs: list[ResolvedRun], workers: int, cells: str = "local", cells_options: dict | None = None):
    """Yield (config, record, seconds) per cell. With several workers each process keeps its own
    data and frozen backbone and gets an equal share of the CPU threads; every run is seeded by
    its own seed tree, so the order in which cells finish does not matter. ``cells="ray"`` runs
    the cells as Ray tasks instead (``workers`` is then unused)."""
    from fedbench.federation.loop import timed_run

    configs = [run.cfg for run in runs]
    if cells == "ray":
        from fedbench.federation.ray_cells import run_cells

        yield from run_cells(configs, cells_options)
        return
    if workers <= 1 or len(runs) <= 1:
        yield from map(timed_run, runs)  # in this process: the runs as resolved
        return
    import multiprocessing
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from fedbench.federation.parts import featurized

    for run in {(r.cfg.data.dataset, r.cfg.backbone.name): r for r in runs}.values():
        featurized(run)  # build any missing cache once, here, rather than in every worker at once
    for cfg in configs:
        cfg.tracking.progress = False  # several live bars would garble the terminal
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(threads, os.getpid())
    )
    try:
        from fedbench.interrupt import raise_if_interrupted

        left = {pool.submit(_worker_run, cfg) for cfg in configs}
        while left:
            raise_if_interrupted()  # a signal whose exception a finaliser dropped
            done, left = wait(left, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    yield future.result()
                except BrokenProcessPool:
                    raise ConfigError(
                        "a sweep worker was stopped (a signal, or out of memory) and the sweep with it; "
                        "finished runs are kept, run the same command to resume"
                    ) from None
    except BaseException:  # Ctrl-C, SIGTERM or a failed cell: stop the queued cells and the workers now
        processes = list((pool._processes or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_workers(
            processes
        )  # checkpoints are atomic: a cell stopped mid-round resumes from its last round
        raise
    pool.shutdown()


def regenerate_leaderboard(results: str, leaderboards: str, dataset: str, command: str | None) -> Path:
    from fedbench.methods.registry import (
        available,
        get_method,
        plan_headlines,
        plan_references,
        plan_roles,
        record_progress,
    )
    from fedbench.tracking.leaderboard import write_leaderboard
    from fedbench.tracking.record_file import read_records

    records = read_records(Path(results), dataset, warn=False).own  # write_leaderboard warns, once
    if command is None:
        commands = sorted(
            {r.get("config", {}).get("tracking", {}).get("command") or "" for r in records} - {""}
        )
        command = "\n".join(commands) or "fedbench leaderboard"
    notes = {m: get_method(m).notes or get_method(m).description for m in available()}
    progress = record_progress(records, dataset)  # unfinished board-of-record sections
    return write_leaderboard(
        Path(results),
        Path(leaderboards),
        dataset,
        command,
        method_notes=notes,
        headlines=plan_headlines(),
        references=plan_references(),
        roles={**plan_roles(), **progress},
        in_progress=set(progress),
    )
