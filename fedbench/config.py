"""Typed experiment configuration, validated with one-line messages that name the field and the fix.

The same dataclasses back the YAML files under ``experiments/`` and the CLI flags
(``--missing.rate 0.5``), through jsonargparse.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from fedbench.batch import MISSING_TYPES, TEST_CONDITIONS  # noqa: F401  (re-exported)
from fedbench.data.partition import PARTITIONS
from fedbench.errors import ConfigError
from fedbench.hardware import concrete_precision

MISSING_PROTOCOLS = ("per_sample", "per_client", "heterogeneous")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "auto")  # auto: fedbench.hardware.concrete_precision
LR_SCHEDULES = ("constant", "linear", "cosine")
ACCELERATORS = ("cpu", "gpu", "cuda", "auto")
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

    def identity(self) -> dict[str, Any]:
        """Every field that can change a result: all but tracking and the executor, with each
        part's options completed with their defaults (so `{}` and the spelled-out defaults are one
        identity)."""
        from fedbench.backbones.registry import BACKBONES
        from fedbench.data.registry import DATASETS
        from fedbench.methods.registry import METHODS
        from fedbench.registry import resolved_options

        d = self.to_dict()
        for section in NOT_IDENTITY:
            d.pop(section)
        # fields added after records existed: while they hold their neutral default they are left out,
        # so earlier records keep their identity
        if self.failures == FailuresConfig():
            d.pop("failures")
        if self.partition.n_dominant == 1:
            d["partition"].pop("n_dominant")
        if self.federation.personalized_clients is None:
            d["federation"].pop("personalized_clients")
        for name, neutral in TRAIN_ADDED.items():
            if getattr(self.train, name) == neutral:
                d["train"].pop(name)
        d["federation"].pop("personal_store")  # where states live changes no result
        d["train"]["precision"] = concrete_precision(self.train.precision, self.train.accelerator)
        for part, registry, name in (("data", DATASETS, self.data.dataset), ("backbone", BACKBONES, self.backbone.name),
                                     ("method", METHODS, self.method.name)):
            cls = registry.get(name).options
            d[part]["options"] = neutral_dropped(cls, resolved_options(cls, getattr(self, part).options, f"{part}.options"))
        return d


def neutral_dropped(options_cls, resolved: dict[str, Any]) -> dict[str, Any]:
    """``resolved`` without the options added after records existed (the options class's
    ``IDENTITY_NEUTRAL``: name -> the value that keeps the old behaviour) while they hold that
    value, so earlier records keep their identity; a non-neutral value is part of it."""
    neutral = getattr(options_cls, "IDENTITY_NEUTRAL", {}) or {}
    return {k: v for k, v in resolved.items() if not (k in neutral and v == neutral[k])}


NOT_IDENTITY = ("tracking", "executor")
TRAIN_ADDED = {"accumulate": 1, "max_steps": None, "eval_samples": None}  # left out of the identity at these values


def _choice(field_name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{field_name}: {value!r} is not valid; choose one of {', '.join(map(str, allowed))}")


def _range(field_name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):
        raise ConfigError(f"{field_name}: {value} is outside [{lo}, {hi}]; set a value in that range")


def _positive(field_name: str, value: float, hint: str) -> None:
    if not value > 0:
        raise ConfigError(f"{field_name}: must be > 0, got {value}; {hint}")


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
                raise ConfigError(f"{section.name}.{f.name}: {value} is not a finite number; give a finite value "
                                  f"(default {f.default!r})")


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Refuse invalid values with one line naming the field; returns cfg for chaining."""
    from fedbench.backbones.registry import BACKBONES
    from fedbench.data.registry import DATASETS
    from fedbench.federation.executors import EXECUTORS
    from fedbench.methods.registry import METHODS
    from fedbench.registry import build_options

    _finite(cfg)
    if not str(cfg.tracking.results_dir).strip():
        raise ConfigError("tracking.results_dir: empty; give the folder for run records (default results), "
                          "or leave the option out")
    dataset, backbone = DATASETS.get(cfg.data.dataset), BACKBONES.get(cfg.backbone.name)
    build_options(dataset.options, cfg.data.options, "data.options")
    build_options(backbone.options, cfg.backbone.options, "backbone.options")
    build_options(EXECUTORS.get(cfg.executor.name).options, cfg.executor.options, "executor.options")
    method = METHODS.get(cfg.method.name)
    build_options(method.options, cfg.method.options, "method.options")
    if not method.supports(backbone):
        raise ConfigError(f"backbone.name: {cfg.method.name} cannot run on {backbone.name} ({method.requirement}); choose another backbone")
    _choice("missing.protocol", cfg.missing.protocol, MISSING_PROTOCOLS)
    _range("missing.rate", cfg.missing.rate, 0.0, 1.0)
    _choice("missing.type", cfg.missing.type, MISSING_TYPES)
    _range("missing.both_ratio", cfg.missing.both_ratio, 0.0, 1.0)
    _range("missing.client_spread", cfg.missing.client_spread, 0.0, 1.0)
    _choice("partition.name", cfg.partition.name, PARTITIONS)
    if cfg.partition.n_clients < 1:
        raise ConfigError(f"partition.n_clients: must be >= 1, got {cfg.partition.n_clients}")
    _positive("partition.alpha", cfg.partition.alpha, "use e.g. 0.5 (non-IID) or 100 (near IID)")
    if cfg.partition.n_dominant < 1:
        raise ConfigError(f"partition.n_dominant: must be >= 1, got {cfg.partition.n_dominant}")
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
    if cfg.federation.personalized_clients is not None and cfg.federation.personalized_clients < 1:
        raise ConfigError(f"federation.personalized_clients: must be >= 1 or null (every client), got {cfg.federation.personalized_clients}")
    if cfg.federation.personal_store not in STORE_KINDS:
        raise ConfigError(f"federation.personal_store: must be one of {', '.join(STORE_KINDS)}, got {cfg.federation.personal_store!r}")
    _validate_train(cfg.train)
    for name in ("drop_rate", "straggler_rate", "partial_rate"):
        _range(f"failures.{name}", getattr(cfg.failures, name), 0.0, 1.0)
    if not cfg.failures.slowdown >= 1:
        raise ConfigError(f"failures.slowdown: must be >= 1 (times slower than a normal client), got {cfg.failures.slowdown}")
    if not cfg.failures.deadline >= 0:
        raise ConfigError(f"failures.deadline: must be >= 0 (in units of a normal client's local work), got {cfg.failures.deadline}")
    return cfg


def _validate_train(t: TrainConfig) -> None:
    for name in ("batch_size", "eval_batch_size", "devices"):
        if getattr(t, name) < 1:
            raise ConfigError(f"train.{name}: must be >= 1, got {getattr(t, name)}")
    if t.threads is not None and t.threads < 1:
        raise ConfigError(f"train.threads: must be >= 1 or null (torch's default), got {t.threads}")
    if t.accumulate < 1:
        raise ConfigError(f"train.accumulate: must be >= 1 (batches per optimiser step), got {t.accumulate}")
    for name in ("max_steps", "eval_samples"):
        value = getattr(t, name)
        if value is not None and value < 1:
            raise ConfigError(f"train.{name}: must be >= 1 or null (no cap), got {value}")
    _positive("train.lr", t.lr, "try 5e-3")
    if not t.weight_decay >= 0:
        raise ConfigError(f"train.weight_decay: must be >= 0, got {t.weight_decay}; try 0.02")
    _choice("train.precision", t.precision, PRECISIONS)
    t.precision = concrete_precision(t.precision, t.accelerator)  # auto becomes what runs (and what is recorded)
    _choice("train.lr_schedule", t.lr_schedule, LR_SCHEDULES)
    _choice("train.accelerator", t.accelerator, ACCELERATORS)
    if t.accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"train.accelerator: {t.accelerator!r} but no GPU is visible to torch; use cpu (or auto)")
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
