"""The federation loop: rounds of client fits, aggregation, validation; side concerns as callbacks.

Per round: sample clients (seeded by round); the aggregator configures each client's fit; the
executor runs one task per client (a pure function of global state, client state, data, seed);
the aggregator turns the results into the next global state; the global model is scored on the
validation split. Progress, checkpoints, W&B and the record are callbacks
(:mod:`fedbench.federation.callbacks`). At the end the last and the validation-selected states
are scored on every test condition (never selecting on test) and one JSON record is written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from fedbench.config import ExperimentConfig
from fedbench.federation.callbacks import Callback, default_callbacks
from fedbench.federation.checkpoint import remove_shards
from fedbench.federation.heap import release_freed_memory
from fedbench.federation.record import already_recorded, make_record
from fedbench.federation.resolve import ResolvedRun, resolve
from fedbench.federation.rounds import Federation
from fedbench.federation.setup import prepare
from fedbench.federation.validity import check_writable
from fedbench.interrupt import RunInterrupted, raise_if_interrupted


def run_experiment(
    cfg: ExperimentConfig | ResolvedRun,
    *,
    stop_after_rounds: int | None = None,
    force: bool = False,
    callbacks: list[Callback] | None = None,
    smoke: bool = False,
) -> dict[str, Any] | None:
    """Run (or resume) one experiment and return its record; ``None`` if stopped early on purpose.
    ``cfg`` is resolved here once (:func:`~fedbench.federation.resolve.resolve`) unless it already is.

    A record of the same configuration already produced here is returned as is unless ``force``
    (see :func:`~fedbench.federation.record.already_recorded`).
    ``smoke``: the real data path with one short round (:mod:`fedbench.federation.smoke`); nothing
    is recorded.
    """
    if smoke:
        from fedbench.cache.frozen import small_blocks

        with small_blocks():
            return _smoke(cfg.cfg if isinstance(cfg, ResolvedRun) else cfg)
    run = cfg if isinstance(cfg, ResolvedRun) else resolve(cfg)
    cfg = run.cfg
    results_dir = Path(cfg.tracking.results_dir)
    if not force and (done := already_recorded(results_dir, cfg.data.dataset, run.run_id)) is not None:
        return done
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    check_writable(results_dir / cfg.data.dataset)  # before any training, not after the first round
    t0 = time.time()
    fed = Federation(prepare(run), results_dir)
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
    run = resolve(cfg)
    cfg = run.cfg
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    results_dir = Path(cfg.tracking.results_dir)
    check_writable(results_dir / cfg.data.dataset)
    t0 = time.time()
    exp = smoke_view(prepare(run))
    setup_s = time.time() - t0
    fed = Federation(exp, results_dir)
    report = SmokeReport(cfg, notes, setup_s, file_batch)
    record = _run(fed, cfg, [ProgressCallback(), report], t0, None)
    return {**(record or {}), "smoke": report.report}


def _run(
    fed: Federation,
    cfg: ExperimentConfig,
    callbacks: list[Callback],
    t0: float,
    stop_after_rounds: int | None,
):
    r = fed.start_round
    try:
        for cb in callbacks:
            cb.on_run_start(fed)
        for r in range(fed.start_round, cfg.federation.rounds):
            raise_if_interrupted()  # a signal whose exception a finaliser dropped
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
        remove_shards(fed.checkpoint_path)  # once the checkpoint callback removed the main file
        return record
    except RunInterrupted as err:
        err.round = r + 1
        raise
    finally:
        for cb in callbacks:
            cb.close()
        fed.executor.close()
        fed.personal.close()


def timed_run(run: ExperimentConfig | ResolvedRun) -> tuple[ExperimentConfig, dict, float]:
    """(the run's config, its record, seconds): one cell of a sweep, wherever it runs."""
    t = time.time()
    record = run_experiment(run)
    return (run.cfg if isinstance(run, ResolvedRun) else run), record, time.time() - t
