"""Sweep cells as Ray tasks: ``fedbench sweep ... --executor.name ray`` (and any ``run_grid`` whose
base config names the ray executor).

Each cell is one ordinary run in a Ray task that asks for ``cpus_per_actor`` CPUs and
``gpus_per_actor`` GPUs (the ray executor's options, read the same way), so a sweep fills every
CPU or GPU of a cluster; inside a cell the clients run one after another (the cell, not the
client, is the unit spread out; the executor never changes a record). Resuming is the sweep's
own: a cell whose record exists is skipped, and a cell whose driver was killed resumes from its
round checkpoint the next time. On a cluster of several nodes ``tracking.results_dir`` should be
a shared folder so that checkpoints are found wherever a cell lands; the driver also writes each
finished record it receives into its own results folder.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

from fedbench.federation.executors import ray_support as rs
from fedbench.registry import build_options


def _cell(cfg, specs, threads: int):
    """One sweep cell inside a Ray worker (it resolves the config once, in its own process)."""
    rs.worker_setup(specs, threads)
    from fedbench.federation.loop import timed_run

    return timed_run(cfg)


def run_cells(configs: list, cells_options: dict | None = None) -> Iterator[tuple]:
    """Yield (config, record, seconds) per cell as each finishes; ``cells_options`` are the Ray
    options of the placement of cells (``--cells_options``: address, actors, CPUs and GPUs per cell)."""
    base = configs[0]
    options = build_options(rs.RayOptions, cells_options, "--cells_options")
    ray = rs.import_ray()
    started = rs.connect(options.address)
    in_flight: dict = {}
    try:
        cpus, gpus, threads = rs.resources(ray, options, base)
        if options.address is None:
            _featurize_once(configs)
        limit = options.actors or len(
            configs
        )  # actors: at most this many cells at once; else as the cluster fits
        cell = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_cell)
        queue = []
        for cfg in configs:
            cfg = copy.deepcopy(cfg)  # each cell keeps its own executor (where its clients run)
            cfg.tracking.progress = False  # several live bars would garble the terminal
            queue.append(cfg)
        queue.reverse()
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                cfg = queue.pop()
                in_flight[cell.remote(cfg, rs.specs_of(cfg), threads)] = cfg
            (done,), _ = ray.wait(list(in_flight), num_returns=1)
            in_flight.pop(done)
            try:
                cfg, record, seconds = ray.get(done)
            except ray.exceptions.RayTaskError as err:
                raise rs.unwrap(ray, err) from None
            _keep(cfg, record)
            yield cfg, record, seconds
    finally:  # Ctrl-C, a failed cell, or the caller stopping early: no cell keeps running unseen
        for ref in in_flight:
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        if started and ray.is_initialized():
            ray.shutdown()


def _featurize_once(configs: list) -> None:
    """Build any missing feature cache here once, rather than in every worker at once."""
    from fedbench.federation.parts import featurized
    from fedbench.federation.resolve import resolve

    for cfg in {(c.data.dataset, c.backbone.name): c for c in configs}.values():
        featurized(resolve(cfg))


def _keep(cfg, record: dict) -> None:
    """The record in the driver's results folder too (a cell on another node wrote it there)."""
    from fedbench.tracking.records import find_record, write_record

    results = Path(cfg.tracking.results_dir)
    if record and find_record(results, cfg.data.dataset, record.get("run_id", "")) is None:
        write_record(results, record)
