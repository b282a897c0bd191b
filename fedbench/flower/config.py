"""Which fedbench runs the Flower adapter takes, and where its config comes from under ``flwr run``."""

from __future__ import annotations

from typing import Any

from fedbench.config import ExperimentConfig, FailuresConfig, from_dict
from fedbench.errors import ConfigError


def checked(cfg):
    """``cfg`` resolved once (:func:`fedbench.federation.resolve.resolve`; a resolved run is taken as
    is), and refused (one line) where the adapter would not compute what fedbench's loop computes."""
    from fedbench.federation.resolve import ResolvedRun, resolve

    run = cfg if isinstance(cfg, ResolvedRun) else resolve(cfg)
    cfg, spec = run.cfg, run.method
    if spec.schedule != "parallel":
        raise ConfigError(
            f"method.name: {cfg.method.name!r} trains the round's clients one after another "
            f"({spec.schedule}); the Flower adapter runs methods whose clients start from the round's global "
            "state; use fedbench run"
        )
    if cfg.failures != FailuresConfig():
        raise ConfigError(
            "failures: simulated client failures are fedbench-loop only; under Flower a node that fails is "
            "left out of the round"
        )
    return run


def config_of(run_config: Any) -> ExperimentConfig:
    """The fedbench config named by a Flower run config's ``config`` key (a YAML file, relative
    to the current directory), with ``seed`` / ``rounds`` overrides when the run config has them,
    checked (:func:`checked`) and returned as the resolved config."""
    key = run_config.get("config") if run_config else None
    if not key:
        raise ConfigError(
            'the Flower run config has no "config" key; set config = "experiments/emoji_quick.yaml" under '
            "[tool.flwr.app.config] or pass --run-config \"config='FILE'\""
        )
    from fedbench.yaml_files import read_mapping

    cfg = from_dict(read_mapping(str(key), "config: file (from the Flower run config)"))
    if "seed" in run_config:
        cfg.seed = int(run_config["seed"])
    if "rounds" in run_config:
        cfg.federation.rounds = int(run_config["rounds"])
    return checked(cfg).cfg


def specs_for(cfg: ExperimentConfig) -> tuple:
    """The dataset, backbone and method specs ``cfg`` names, from this process's registries."""
    from fedbench.federation.executors.ray_support import specs_of

    return specs_of(cfg)
