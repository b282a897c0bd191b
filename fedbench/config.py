"""Typed experiment configuration, validated with one-line messages that name the field and the fix.

The same dataclasses back the YAML files under ``experiments/`` and the CLI flags
(``--missing.rate 0.5``), through jsonargparse.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from fedbench.data.missing import MISSING_TYPES, TEST_CONDITIONS  # noqa: F401  (re-exported)
from fedbench.errors import ConfigError

MISSING_PROTOCOLS = ("per_sample", "per_client", "heterogeneous")
PARTITIONS = ("iid", "dirichlet", "shards", "dominant", "quantity")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
LR_SCHEDULES = ("constant", "linear", "cosine")


@dataclass
class DataConfig:
    dataset: str = "emoji"
    label: str = "category"  # emoji: category (9 classes) or subcategory
    text: str = "name"  # emoji: name, name+short, name+keywords
    image_size: int = 96
    split_seed: int = 0  # fixed across runs so every method sees the same split and test masks


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


@dataclass
class FederationConfig:
    rounds: int = 10
    client_fraction: float = 1.0
    clients_per_round: int | None = None  # overrides client_fraction when set
    local_epochs: int = 1


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


@dataclass
class MethodConfig:
    name: str = "fedavg"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrackingConfig:
    results_dir: str = "results"
    sweep: str | None = None
    wandb: bool = True  # offline unless WANDB_API_KEY is set; FEDBENCH_WANDB=0 turns it off
    wandb_project: str = "fedbench"
    progress: bool = True
    command: str | None = None  # the command that produced the run, shown on the leaderboard


@dataclass
class ExperimentConfig:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    missing: MissingConfig = field(default_factory=MissingConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The part of the config that defines the result (tracking settings excluded)."""
        d = self.to_dict()
        d.pop("tracking")
        return d


def _choice(field_name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{field_name}: {value!r} is not valid; choose one of {', '.join(map(str, allowed))}")


def _range(field_name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):
        raise ConfigError(f"{field_name}: {value} is outside [{lo}, {hi}]; set a value in that range")


def _positive(field_name: str, value: float, hint: str) -> None:
    if not value > 0:
        raise ConfigError(f"{field_name}: must be > 0, got {value}; {hint}")


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Refuse invalid values with one line naming the field; returns cfg for chaining."""
    from fedbench.data.registry import dataset_names
    from fedbench.methods.registry import build_options, get_method

    _choice("data.dataset", cfg.data.dataset, tuple(dataset_names()))
    if cfg.data.dataset == "emoji":
        _choice("data.label", cfg.data.label, ("category", "subcategory"))
        _choice("data.text", cfg.data.text, ("name", "name+short", "name+keywords"))
    if cfg.data.image_size % 32 or cfg.data.image_size < 32:
        raise ConfigError(f"data.image_size: {cfg.data.image_size} must be a positive multiple of 32 (try 96)")
    _choice("missing.protocol", cfg.missing.protocol, MISSING_PROTOCOLS)
    _range("missing.rate", cfg.missing.rate, 0.0, 1.0)
    _choice("missing.type", cfg.missing.type, MISSING_TYPES)
    _range("missing.both_ratio", cfg.missing.both_ratio, 0.0, 1.0)
    _range("missing.client_spread", cfg.missing.client_spread, 0.0, 1.0)
    _choice("partition.name", cfg.partition.name, PARTITIONS)
    if cfg.partition.n_clients < 1:
        raise ConfigError(f"partition.n_clients: must be >= 1, got {cfg.partition.n_clients}")
    _positive("partition.alpha", cfg.partition.alpha, "use e.g. 0.5 (non-IID) or 100 (near IID)")
    if cfg.partition.min_size < 1:
        raise ConfigError(f"partition.min_size: must be >= 1, got {cfg.partition.min_size}")
    if cfg.federation.rounds < 1:
        raise ConfigError(f"federation.rounds: must be >= 1, got {cfg.federation.rounds}")
    if not 0 < cfg.federation.client_fraction <= 1:
        raise ConfigError(f"federation.client_fraction: {cfg.federation.client_fraction} is outside (0, 1]")
    n = cfg.federation.clients_per_round
    if n is not None and not 1 <= n <= cfg.partition.n_clients:
        raise ConfigError(f"federation.clients_per_round: {n} must be between 1 and partition.n_clients={cfg.partition.n_clients}")
    if cfg.federation.local_epochs < 1:
        raise ConfigError(f"federation.local_epochs: must be >= 1, got {cfg.federation.local_epochs}")
    if cfg.train.batch_size < 1:
        raise ConfigError(f"train.batch_size: must be >= 1, got {cfg.train.batch_size}")
    _positive("train.lr", cfg.train.lr, "try 5e-3")
    _choice("train.precision", cfg.train.precision, PRECISIONS)
    _choice("train.lr_schedule", cfg.train.lr_schedule, LR_SCHEDULES)
    _choice("train.accelerator", cfg.train.accelerator, ("cpu", "gpu", "cuda", "auto"))
    build_options(get_method(cfg.method.name), cfg.method.options)
    return cfg


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
        cls = sections[key].default_factory  # type: ignore[misc]
        names = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(value or {}) - names)
        if bad:
            raise ConfigError(f"{key}.{bad[0]}: unknown field; known: {', '.join(sorted(names))}")
        kwargs[key] = cls(**(value or {}))
    return ExperimentConfig(**kwargs)
