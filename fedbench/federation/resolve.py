"""A run resolved once: its config checked, every name looked up, every options dict built, its
precision made concrete, its identity and run id computed, into one frozen :class:`ResolvedRun`.

Everything downstream (the loop, setup, scoring, the record, sweep cells, Ray workers, Flower apps)
takes the resolved run and never looks a name up again; a process that receives only a config
(a sweep worker, a Ray actor, a Flower node) resolves it once, here. The config the run holds is a
copy: resolving never changes the config it was given.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from fedbench.backbones.registry import BACKBONES, BackboneSpec
from fedbench.config import NOT_IDENTITY, TRAIN_ADDED, ExperimentConfig, FailuresConfig, check
from fedbench.data.registry import DATASETS, DatasetSpec
from fedbench.errors import ConfigError
from fedbench.federation.executors import EXECUTORS, ExecutorSpec
from fedbench.hardware import concrete_precision
from fedbench.methods.registry import METHODS, MethodSpec
from fedbench.registry import build_options
from fedbench.tracking.records import config_hash

__all__ = ["ResolvedRun", "identity_of", "resolve", "run_id_of", "validate"]


@dataclass(frozen=True)
class ResolvedRun:
    """One run, resolved: see the module docstring. ``cfg.train.precision`` is concrete."""

    cfg: ExperimentConfig
    dataset: DatasetSpec
    data_options: Any
    backbone: BackboneSpec
    backbone_options: Any
    method: MethodSpec
    method_options: Any
    executor: ExecutorSpec
    executor_options: Any
    identity: dict[str, Any]
    run_id: str

    @property
    def device(self) -> torch.device:
        """Where the run's modules train: the GPU when asked (or ``auto`` with one visible)."""
        t = self.cfg.train
        if t.accelerator in ("gpu", "cuda") or (t.accelerator == "auto" and torch.cuda.is_available()):
            return torch.device("cuda")
        return torch.device("cpu")

    def specs(self) -> dict[str, dict[str, Any]]:
        """What the record keeps of the dataset, backbone and method that ran: name, behaviour
        version, and the distribution that registered it with its installed version (a plugin's
        package, or fedbench)."""
        from fedbench.tracking.provenance import dist_version

        out = {}
        for part, spec, registry in (
            ("data", self.dataset, DATASETS),
            ("backbone", self.backbone, BACKBONES),
            ("method", self.method, METHODS),
        ):
            origin = registry.origin(spec.name)
            out[part] = {
                "name": spec.name,
                "version": spec.version,
                "distribution": origin,
                "distribution_version": dist_version(origin) if origin else None,
            }
        return out


def resolve(cfg: ExperimentConfig) -> ResolvedRun:
    """Check ``cfg``, look up its specs, build its options (one line naming the field for anything
    wrong) and compute its identity; ``cfg`` itself is left as it was."""
    check(cfg)
    cfg = copy.deepcopy(cfg)
    cfg.train.precision = concrete_precision(
        cfg.train.precision, cfg.train.accelerator
    )  # what runs, and what is recorded
    dataset, backbone = DATASETS.get(cfg.data.dataset), BACKBONES.get(cfg.backbone.name)
    method, executor = METHODS.get(cfg.method.name), EXECUTORS.get(cfg.executor.name)
    options = {
        "data": build_options(dataset.options, cfg.data.options, "data.options"),
        "backbone": build_options(backbone.options, cfg.backbone.options, "backbone.options"),
        "executor": build_options(executor.options, cfg.executor.options, "executor.options"),
        "method": build_options(method.options, cfg.method.options, "method.options"),
    }
    if not method.supports(backbone):
        raise ConfigError(
            f"backbone.name: {cfg.method.name} cannot run on {backbone.name} ({method.requirement}); "
            "choose another backbone"
        )
    identity = _identity(
        cfg,
        {k: options[k] for k in ("data", "backbone", "method")},
        {"data": dataset, "backbone": backbone, "method": method},
    )
    return ResolvedRun(
        cfg,
        dataset,
        options["data"],
        backbone,
        options["backbone"],
        method,
        options["method"],
        executor,
        options["executor"],
        identity,
        config_hash(identity),
    )


INITIAL_VERSION = 1


def _identity(cfg: ExperimentConfig, options: dict[str, Any], specs: dict[str, Any]) -> dict[str, Any]:
    """Every field that can change a result: all but tracking and the executor, with each part's
    options completed with their defaults (so ``{}`` and the spelled-out defaults are one identity)."""
    import dataclasses

    d = cfg.to_dict()
    for section in NOT_IDENTITY:
        d.pop(section)
    # fields added after records existed: while they hold their neutral default they are left out,
    # so earlier records keep their identity
    if cfg.failures == FailuresConfig():
        d.pop("failures")
    if cfg.partition.n_dominant == 1:
        d["partition"].pop("n_dominant")
    if cfg.federation.personalized_clients is None:
        d["federation"].pop("personalized_clients")
    for name, neutral in TRAIN_ADDED.items():
        if getattr(cfg.train, name) == neutral:
            d["train"].pop(name)
    d["federation"].pop("personal_store")  # where states live changes no result
    for section, obj in options.items():
        d[section]["options"] = {} if obj is None else neutral_dropped(type(obj), dataclasses.asdict(obj))
    for section, spec in specs.items():
        if spec.version != INITIAL_VERSION:  # records made at the initial version keep their ids
            d[section]["version"] = spec.version
    return d


def neutral_dropped(options_cls, resolved: dict[str, Any]) -> dict[str, Any]:
    """``resolved`` without the options added after records existed (the options class's
    ``IDENTITY_NEUTRAL``: name -> the value that keeps the old behaviour) while they hold that
    value, so earlier records keep their identity; a non-neutral value is part of it."""
    neutral = getattr(options_cls, "IDENTITY_NEUTRAL", {}) or {}
    return {k: v for k, v in resolved.items() if not (k in neutral and v == neutral[k])}


def identity_of(cfg: ExperimentConfig) -> dict[str, Any]:
    return resolve(cfg).identity


def run_id_of(cfg: ExperimentConfig) -> str:
    return resolve(cfg).run_id


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """The resolved copy of ``cfg`` (precision concrete), or one line naming what is wrong."""
    return resolve(cfg).cfg
