"""What the Ray executor and Ray sweeps share: importing Ray lazily, starting or attaching to a
cluster, the options, and rebuilding a run's parts inside a Ray worker.

Nothing here imports Ray at module import time, so ``fedbench`` works (and lists the ``ray``
executor) without Ray installed; asking for it then says how to install it in one line.

A Ray worker is a fresh process: it only knows the datasets, backbones and methods that its own
imports and entry points register. The driver therefore ships the specs a run names (a plugin
registered in the driver's process, as the tests register their tiny fixtures, works too), and a
local cluster started here gets the driver's ``sys.path`` so those specs' modules import there.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

from fedbench.errors import ConfigError
from fedbench.interrupt import reclaim_signals

INSTALL_HINT = "the ray executor needs Ray: pip install -e .[ray]"


@dataclass
class RayOptions:
    """``executor.options`` of the ``ray`` executor (also read by ``fedbench sweep --executor.name ray``)."""

    # None: a local Ray started here (or the one this process already has); "auto" or "HOST:6379": attach
    address: str | None = None
    actors: int = (
        0  # 0: one per GPU, or one per ``cpus_per_actor`` CPUs (never more than the clients of a round)
    )
    cpus_per_actor: float = 1.0
    gpus_per_actor: float | None = (
        None  # None: 1 where the cluster has GPUs and train.accelerator is not "cpu", else 0
    )
    threads: int = 0  # torch threads per actor; 0: train.threads if set, else cpus_per_actor (at least 1)

    def validate(self) -> None:
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise ConfigError(
                f'executor.options.address: {self.address!r} is not an address; give "auto" or "HOST:6379", '
                "or leave it out"
            )
        if not isinstance(self.actors, int) or self.actors < 0:
            raise ConfigError(
                "executor.options.actors: must be an integer >= 0 (0 = one per GPU or per cpus_per_actor "
                f"CPUs), got {self.actors!r}"
            )
        if not self.cpus_per_actor > 0:
            raise ConfigError(f"executor.options.cpus_per_actor: must be > 0, got {self.cpus_per_actor!r}")
        if self.gpus_per_actor is not None and (
            isinstance(self.gpus_per_actor, bool)
            or not isinstance(self.gpus_per_actor, (int, float))
            or self.gpus_per_actor < 0
        ):
            raise ConfigError(
                "executor.options.gpus_per_actor: must be a number >= 0 (e.g. 1, or 0.5 for two actors per "
                f"GPU), got {self.gpus_per_actor!r}"
            )
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ConfigError(
                "executor.options.threads: must be an integer >= 0 (0 = one per CPU of an actor), got "
                f"{self.threads!r}"
            )


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def connect(address: str | None) -> bool:
    """Make sure this process is connected to Ray; True if this call started it (the caller then
    shuts it down when done)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "configure_logging": True, "logging_level": logging.WARNING}
    if address:
        try:
            _probe(address)  # Ray itself retries an unreachable address for minutes
            _send_token_if_required(address)
            ray.init(address=address, **quiet)
            # ray.init replaced the SIGTERM handler with sys.exit: SIGTERM stops a run like Ctrl-C
            reclaim_signals()
        except Exception as err:  # ConnectionError, ValueError, RuntimeError, depending on what is wrong
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ConfigError(
                f"executor.options.address: cannot attach to a Ray cluster at {address!r} ({first}); start "
                'one with `ray start --head` and give its HOST:6379 (or "auto" on a node of it), or leave '
                "address out for a local Ray"
            ) from None
        return True
    path = os.pathsep.join(p for p in sys.path if p)
    ray.init(runtime_env={"env_vars": {"PYTHONPATH": path}}, **quiet)
    reclaim_signals()
    return True


def _send_token_if_required(address: str) -> None:
    """Ray clusters started with ``RAY_AUTH_MODE=token`` (the default of some Ray versions) refuse a
    driver that does not send the token, while a cluster without authentication accepts the
    connection of one that does but never runs its actors. So ask the cluster first (one GCS call
    without a token; Ray answers an AuthenticationError at once where a token is required) and turn
    token mode on only then. "auto" is left to Ray, which sends a saved token itself."""
    if "RAY_AUTH_MODE" in os.environ or address == "auto" or "://" in address:
        return
    try:
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError:  # another Ray version: leave authentication to Ray
        return
    try:
        GcsClient(address=address).internal_kv_get(b"fedbench-probe", namespace=None, timeout=5)
        return
    except AuthenticationError:
        pass
    except Exception:  # not an authentication problem: ray.init reports it
        return
    from pathlib import Path

    if not (
        os.environ.get("RAY_AUTH_TOKEN")
        or os.environ.get("RAY_AUTH_TOKEN_PATH")
        or (Path.home() / ".ray" / "auth_token").is_file()
    ):
        raise ConnectionError(
            "the cluster requires an authentication token and none is here; copy the head's "
            "~/.ray/auth_token to this machine or set RAY_AUTH_TOKEN"
        )
    os.environ["RAY_AUTH_MODE"] = "token"
    try:  # Ray caches its config at import: refresh it (as Ray does for its own default)
        from ray._raylet import Config

        Config.initialize("")
    except Exception:  # another Ray version: the environment variable still reaches its workers
        pass


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast where nothing listens at HOST:PORT ("auto" and ray:// addresses are left to Ray)."""
    import socket

    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("not HOST:PORT")
    with socket.create_connection((host, int(port)), timeout=timeout):
        pass


def resources(ray, options: RayOptions, cfg) -> tuple[float, float, int]:
    """(cpus, gpus) each worker asks for and the torch threads it uses."""
    cluster = ray.cluster_resources()
    gpus = options.gpus_per_actor
    if gpus is None:
        gpus = 1.0 if cluster.get("GPU", 0) >= 1 and cfg.train.accelerator != "cpu" else 0.0
    if gpus > cluster.get("GPU", 0):
        raise ConfigError(
            f"executor.options.gpus_per_actor: {gpus} GPUs per actor but the Ray cluster has "
            f"{cluster.get('GPU', 0):g}; use 0 (CPU actors) or add GPU nodes"
        )
    if options.cpus_per_actor > cluster.get("CPU", 0):
        raise ConfigError(
            f"executor.options.cpus_per_actor: {options.cpus_per_actor:g} CPUs per actor but the Ray cluster "
            f"has {cluster.get('CPU', 0):g}; ask for fewer"
        )
    threads = options.threads or cfg.train.threads or max(1, int(options.cpus_per_actor))
    return float(options.cpus_per_actor), float(gpus), int(threads)


def capacity(ray, cpus: float, gpus: float) -> int:
    """How many workers of this size the cluster holds at once."""
    cluster = ray.cluster_resources()
    fits = int(cluster.get("CPU", 0) // cpus) if cpus else 10**6
    if gpus:
        fits = min(fits, int(cluster.get("GPU", 0) // gpus))
    return max(1, fits)


# ----- inside a Ray worker ------------------------------------------------------------------------
def specs_of(cfg) -> tuple[Any, Any, Any]:
    """The dataset, backbone and method specs a run names, from the driver's registries."""
    from fedbench.backbones.registry import BACKBONES
    from fedbench.data.registry import DATASETS
    from fedbench.methods.registry import METHODS

    return DATASETS.get(cfg.data.dataset), BACKBONES.get(cfg.backbone.name), METHODS.get(cfg.method.name)


def register_specs(specs: tuple[Any, Any, Any]) -> None:
    from fedbench.backbones.registry import BACKBONES
    from fedbench.data.registry import DATASETS
    from fedbench.methods.registry import METHODS

    for registry, spec in zip((DATASETS, BACKBONES, METHODS), specs, strict=True):
        registry.names()  # load built-ins and entry points first, so the driver's spec is the one kept
        registry.register(spec, replace=True)


def worker_setup(specs: tuple[Any, Any, Any], threads: int) -> None:
    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(threads)
    register_specs(specs)


def unwrap(ray, err: Exception) -> Exception:
    """A user error raised inside a worker comes back as itself (one line); anything else keeps
    Ray's remote traceback."""
    from fedbench.errors import FedbenchError

    if isinstance(err, ray.exceptions.RayTaskError):
        cause = getattr(err, "cause", None)
        if isinstance(cause, FedbenchError):
            return cause
        return err.as_instanceof_cause()
    return err
