"""Typed experiment configuration: plain data at the bottom of fedbench's layers, checked with
one-line messages that name the field and the fix (:func:`check`).

The same dataclasses back the YAML files under ``experiments/`` and the CLI flags
(``--missing.rate 0.5``), through jsonargparse. What a config *means* (the specs and options its
names resolve to, its identity and run id) is :func:`fedbench.federation.resolve.resolve`'s.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from fedbench import checks
from fedbench.batch import MISSING_TYPES, TEST_CONDITIONS  # noqa: F401  (re-exported)
from fedbench.errors import ConfigError

MISSING_PROTOCOLS = ("per_sample", "per_client", "heterogeneous")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "auto")  # auto: fedbench.hardware.concrete_precision
LR_SCHEDULES = ("constant", "linear", "cosine")
ACCELERATORS = ("cpu", "gpu", "cuda", "auto")
PARTITION_NAMES = (
    "iid",
    "dirichlet",
    "shards",
    "dominant",
    "imbalanced",
    "quantity",
)  # fedbench.data.partition
STORE_KINDS = ("memory", "disk")  # federation.personal_store


@dataclass
class DataConfig:
    dataset: str = "emoji"
    split_seed: int = 0  # fixed across runs so every method sees the same split and test masks
    options: dict[str, Any] = field(default_factory=dict)  # the dataset's own options (`fedbench datasets`)


@dataclass
class BackboneConfig:
    name: str = "embedded"  # a registered backbone (`fedbench backbones`)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExecutorConfig:
    """Where client fits run; never changes a result, so it is not part of a run's identity."""

    name: str = "sequential"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class MissingConfig:
    protocol: str = "per_sample"  # per_sample (MAP/FedPrime), per_client (FedMultimodal), heterogeneous
    rate: float = 0.7
    type: str = "both"
    both_ratio: float = 0.5  # share of missing samples that lack the image under type "both"
    client_spread: float = 0.3  # heterogeneous: client rates spread evenly over rate +- spread


@dataclass
class PartitionConfig:
    name: str = "dirichlet"
    n_clients: int = 5
    alpha: float = 0.5
    min_size: int = 8
    shards_per_client: int = 2
    n_dominant: int = 1  # dominant / imbalanced: classes each client dominates (PPT's n_dominated_class)


@dataclass
class FederationConfig:
    rounds: int = 10
    client_fraction: float = 1.0
    clients_per_round: int | None = None  # overrides client_fraction when set
    local_epochs: int = 1
    # the personalized score covers every client, or a seeded sample of this many when there are more
    personalized_clients: int | None = None
    # where clients' personal states live: "memory", or "disk" (safetensors files) for very many
    # clients; results are the same either way, so it is not part of a run's identity
    personal_store: str = "memory"


@dataclass
class FailuresConfig:
    """Simulated client failures, drawn per (round, client) from the seed tree and recorded.

    drop_rate: probability that a sampled client returns nothing this round.
    straggler_rate, slowdown, deadline: a straggler runs ``slowdown`` times slower; the round waits
        ``deadline`` times a normal client's local work, so a straggler finishes min(1,
        deadline / slowdown) of its local steps (nothing at all when that is 0).
    partial_rate: probability that a client stops after a uniformly drawn part of its local steps.
    """

    drop_rate: float = 0.0
    straggler_rate: float = 0.0
    slowdown: float = 2.0
    deadline: float = 1.0
    partial_rate: float = 0.0


@dataclass
class TrainConfig:
    batch_size: int = 32
    lr: float = 5e-3
    weight_decay: float = 0.02
    lr_schedule: str = "linear"  # over rounds
    precision: str = "32-true"
    accelerator: str = "cpu"
    devices: int = 1
    eval_batch_size: int = 128
    threads: int | None = None
    # gradient accumulation: an optimiser step every ``accumulate`` batches (MAP: 256 from smaller batches)
    accumulate: int = 1
    # a cap on each client fit's optimiser steps (None: every epoch in full), for a first real run
    max_steps: int | None = None
    # validation and test score a seeded sample of this many rows of their split (None: all)
    eval_samples: int | None = None


@dataclass
class MethodConfig:
    name: str = "fedavg"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrackingConfig:
    results_dir: str = "runs"  # a user's own records; the committed reference lives in results/
    sweep: str | None = None
    wandb: bool = True  # offline unless WANDB_API_KEY is set; FEDBENCH_WANDB=0 turns it off
    wandb_project: str = "fedbench"
    progress: bool = True
    command: str | None = None  # the command that produced the run, shown on the leaderboard


@dataclass
class ExperimentConfig:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    missing: MissingConfig = field(default_factory=MissingConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    failures: FailuresConfig = field(default_factory=FailuresConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


NOT_IDENTITY = ("tracking", "executor")
TRAIN_ADDED = {
    "accumulate": 1,
    "max_steps": None,
    "eval_samples": None,
}  # left out of the identity at these values


def _finite(cfg: ExperimentConfig) -> None:
    """A NaN or infinity passes ``lo <= x`` tests one way or the other (``inf > 0``): refuse every
    non-finite float of the config by name first."""
    for section in dataclasses.fields(cfg):
        part = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(part):
            continue
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(
                    f"{section.name}.{f.name}: {value} is not a finite number; give a finite value "
                    f"(default {f.default!r})"
                )


def check(cfg: ExperimentConfig) -> None:
    """Refuse invalid values with one line naming the field and the fix. Plain data only: it looks
    nothing up and changes nothing (:func:`fedbench.federation.resolve.resolve` checks the names and
    options against the registries and makes the resolved copy)."""
    _finite(cfg)
    if not str(cfg.tracking.results_dir).strip():
        raise ConfigError(
            "tracking.results_dir: empty; give the folder for run records (default runs), "
            "or leave the option out"
        )
    checks.choice("missing.protocol", cfg.missing.protocol, MISSING_PROTOCOLS)
    checks.within("missing.rate", cfg.missing.rate, 0.0, 1.0)
    checks.choice("missing.type", cfg.missing.type, MISSING_TYPES)
    checks.within("missing.both_ratio", cfg.missing.both_ratio, 0.0, 1.0)
    checks.within("missing.client_spread", cfg.missing.client_spread, 0.0, 1.0)
    checks.choice("partition.name", cfg.partition.name, PARTITION_NAMES)
    checks.at_least("partition.n_clients", cfg.partition.n_clients, 1)
    checks.positive("partition.alpha", cfg.partition.alpha, "0.5 (non-IID) or 100 (near IID)")
    for name in ("n_dominant", "min_size"):
        checks.at_least(f"partition.{name}", getattr(cfg.partition, name), 1)
    checks.at_least("federation.rounds", cfg.federation.rounds, 1)
    checks.within("federation.client_fraction", cfg.federation.client_fraction, 0, 1, open_lo=True)
    n = cfg.federation.clients_per_round
    if n is not None and not 1 <= n <= cfg.partition.n_clients:
        raise ConfigError(
            f"federation.clients_per_round: {n} must be between 1 and "
            f"partition.n_clients={cfg.partition.n_clients}"
        )
    checks.at_least("federation.local_epochs", cfg.federation.local_epochs, 1)
    checks.at_least(
        "federation.personalized_clients", cfg.federation.personalized_clients, 1, null="every client"
    )
    checks.choice("federation.personal_store", cfg.federation.personal_store, STORE_KINDS)
    _validate_train(cfg.train)
    for name in ("drop_rate", "straggler_rate", "partial_rate"):
        checks.within(f"failures.{name}", getattr(cfg.failures, name), 0.0, 1.0)
    checks.at_least("failures.slowdown", cfg.failures.slowdown, 1, "2 (times slower than a normal client)")
    checks.at_least(
        "failures.deadline",
        cfg.failures.deadline,
        0,
        "0 (no deadline; in units of a normal client's local work)",
    )


def _validate_train(t: TrainConfig) -> None:
    for name in ("batch_size", "eval_batch_size", "devices"):
        checks.at_least(f"train.{name}", getattr(t, name), 1)
    checks.at_least("train.threads", t.threads, 1, null="torch's default")
    checks.at_least("train.accumulate", t.accumulate, 1, "1 (batches per optimiser step)")
    for name in ("max_steps", "eval_samples"):
        checks.at_least(f"train.{name}", getattr(t, name), 1, null="no cap")
    checks.positive("train.lr", t.lr, "5e-3")
    checks.at_least("train.weight_decay", t.weight_decay, 0, "0.02")
    checks.choice("train.precision", t.precision, PRECISIONS)
    checks.choice("train.lr_schedule", t.lr_schedule, LR_SCHEDULES)
    checks.choice("train.accelerator", t.accelerator, ACCELERATORS)
    if t.accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.accelerator: {t.accelerator!r} but no GPU is visible to torch; use cpu (or auto)"
            )
        if t.devices > torch.cuda.device_count():
            raise ConfigError(f"train.devices: {t.devices} GPUs asked, {torch.cuda.device_count()} visible")


def from_dict(d: dict[str, Any]) -> ExperimentConfig:
    """Build a config from a plain (possibly partial) dict, refusing unknown keys."""
    sections = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
    kwargs: dict[str, Any] = {}
    for key, value in (d or {}).items():
        if key not in sections:
            raise ConfigError(f"{key}: unknown config section; known: {', '.join(sections)}")
        if key == "seed":
            kwargs[key] = int(value)
            continue
        if not isinstance(value, dict | None):
            raise ConfigError(f"{key}: must be a section of fields (e.g. {key}: {{...}}), got {value!r}")
        cls = sections[key].default_factory  # type: ignore[misc]
        names = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(value or {}) - names)
        if bad:
            raise ConfigError(f"{key}.{bad[0]}: unknown field; known: {', '.join(sorted(names))}")
        kwargs[key] = cls(**(value or {}))
    return ExperimentConfig(**kwargs)
