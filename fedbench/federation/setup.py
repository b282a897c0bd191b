"""Materialise an experiment: data, frozen backbone, missing tables, client partition, test sets.

Seeds: the data split and every *evaluation* mask (validation and test conditions) depend only on
``data.split_seed`` and the missing settings, so all methods and seeds are scored on identical
inputs; the training missing table and the partition come from the run's seed tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedbench.backbones.base import Backbone
from fedbench.batch import TEST_CONDITIONS
from fedbench.config import ExperimentConfig
from fedbench.data.bundle import DataBundle
from fedbench.data.missing import (
    heterogeneous_missing,
    per_client_missing,
    per_sample_missing,
    test_condition_codes,
)
from fedbench.data.partition import PARTITION_OPTIONS, make_partition, partition_report
from fedbench.errors import ConfigError
from fedbench.federation.parts import featurized
from fedbench.federation.resolve import ResolvedRun
from fedbench.seeds import rng


@dataclass
class Experiment:
    run: ResolvedRun
    bundle: DataBundle
    backbone: Backbone
    clients: list[np.ndarray]  # bundle row indices per client
    client_codes: list[np.ndarray]  # missing code per row, aligned with ``clients``
    val: tuple[np.ndarray, np.ndarray]
    test: dict[str, tuple[np.ndarray, np.ndarray]]
    report: dict
    majority_rate: float

    @property
    def cfg(self) -> ExperimentConfig:
        return self.run.cfg


def _client_missing(cfg: ExperimentConfig, train: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
    """Codes for the train split (aligned with ``train``) under the configured protocol."""
    m, n = cfg.missing, len(train)
    gen = rng(cfg.seed, "missing")
    local = [np.searchsorted(train, p) for p in parts]  # positions inside the train split
    if m.protocol == "per_sample":  # MAP / FedPrime: one table over the split, before partitioning
        return per_sample_missing(n, m.rate, m.type, m.both_ratio, gen)
    if m.protocol == "per_client":
        return per_client_missing(local, n, m.rate, m.type, gen)
    k = len(parts)  # heterogeneous: each client its own rate (and, for "both", its own image share)
    rates = np.clip(np.linspace(m.rate - m.client_spread, m.rate + m.client_spread, k), 0.0, 1.0)
    ratios = np.linspace(0.1, 0.9, k) if m.type == "both" else np.full(k, m.both_ratio)
    order = gen.permutation(k)
    return heterogeneous_missing(
        local, n, list(rates[order]), [m.type] * k, list(ratios[gen.permutation(k)]), gen
    )


def prepare(run: ResolvedRun) -> Experiment:
    cfg = run.cfg
    bundle, backbone = featurized(run)
    labels = bundle.labels.numpy()
    if labels.ndim == 2:  # multi-label: partition and report by each sample's first label
        labels = labels.argmax(1)
    train = np.sort(bundle.splits["train"])
    if cfg.partition.n_clients > len(train):
        raise ConfigError(
            f"partition.n_clients: {cfg.partition.n_clients} clients but only {len(train)} training samples; "
            "use fewer clients"
        )
    p = cfg.partition
    opts = {k: getattr(p, k) for k in PARTITION_OPTIONS[p.name]}
    local_parts = make_partition(p.name, labels[train], p.n_clients, rng(cfg.seed, "partition"), **opts)
    parts = [train[np.sort(ix)] for ix in local_parts]
    codes = _client_missing(cfg, train, parts)
    report = partition_report(parts, labels, bundle.num_classes, codes_full(len(labels), train, codes))
    if run.method.centralized:  # the same clients' data (and missing patterns), pooled into one
        parts = [train]
    client_codes = [codes[np.searchsorted(train, c)] for c in parts]

    m, split_seed = cfg.missing, cfg.data.split_seed
    val = eval_rows(bundle.splits["val"], cfg.train.eval_samples, split_seed, "val")
    val_codes = test_condition_codes(
        len(val), "as_train", m.rate, m.type, m.both_ratio, rng(split_seed, "val-missing", m.rate, m.type)
    )
    test_idx = eval_rows(bundle.splits["test"], cfg.train.eval_samples, split_seed, "test")
    test = {
        cond: (
            test_idx,
            test_condition_codes(
                len(test_idx),
                cond,
                m.rate,
                m.type,
                m.both_ratio,
                rng(split_seed, "test-missing", cond, m.rate, m.type),
            ),
        )
        for cond in TEST_CONDITIONS
    }
    test_labels = labels[test_idx]
    majority = float(np.bincount(test_labels).max() / len(test_labels))
    return Experiment(run, bundle, backbone, parts, client_codes, (val, val_codes), test, report, majority)


def eval_rows(rows: np.ndarray, cap: int | None, split_seed: int, split: str) -> np.ndarray:
    """The sorted rows of an evaluation split, or a sample of ``cap`` of them seeded by the split
    seed alone (every method and seed scores the same rows)."""
    rows = np.sort(np.asarray(rows))
    if cap is None or cap >= len(rows):
        return rows
    return np.sort(rng(split_seed, "eval-sample", split).choice(rows, size=cap, replace=False))


def codes_full(n: int, rows: np.ndarray, codes: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=np.int8)
    out[rows] = codes
    return out
