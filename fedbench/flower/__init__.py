"""Run any registered fedbench method inside a real Flower federation.

:func:`client_app` wraps the method's local training (fedbench's ``ClientRunner``: one lean
Lightning fit of its ``ClientModule``) as a Flower ``ClientApp``; :func:`server_app` wraps its
``Aggregator`` as a Flower ``Strategy`` (:class:`FedbenchStrategy`) inside a ``ServerApp``. Under
``flwr run`` the module-level apps in :mod:`fedbench.flower.apps` read the fedbench config from the
run config; :func:`simulate` runs one config through Flower's simulation engine in this process.
See ``docs/flower.md``.

Flower is an optional extra: without it, importing this package says how to install it in one line.
"""

from __future__ import annotations

from typing import Any

from fedbench.errors import ConfigError

INSTALL_HINT = "the Flower adapter needs Flower: pip install -e .[flower]"

try:
    import flwr  # noqa: F401
except ImportError:
    raise ConfigError(INSTALL_HINT) from None

from fedbench.config import ExperimentConfig  # noqa: E402
from fedbench.flower.client import PERSONAL_KEY, client_app  # noqa: E402
from fedbench.flower.server import NODE_WAIT_S, FedbenchStrategy, server_app  # noqa: E402


def default_backend_config(cpus_per_client: float = 1.0, verbose: bool = False) -> dict[str, Any]:
    """Flower's simulation backend config as :func:`simulate` uses it: ``cpus_per_client`` CPUs per
    client actor (so cores / cpus_per_client fits at once), no GPU, Ray's dashboard off."""
    return {
        "client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0},
        "init_args": {"include_dashboard": False, "logging_level": 30, "log_to_driver": verbose},
    }


def simulate(
    cfg: ExperimentConfig,
    *,
    backend_config: dict[str, Any] | None = None,
    verbose: bool = False,
    node_wait_s: float = NODE_WAIT_S,
) -> FedbenchStrategy:
    """Run ``cfg`` through Flower's simulation engine (one virtual node per fedbench client, Ray
    actors running the ClientApp) and return the server's strategy: ``global_state``,
    ``history``, ``aggregator``. ``backend_config`` is Flower's (default:
    :func:`default_backend_config`, one CPU per client actor). ``node_wait_s``: how long the
    server waits for the client actors to start and answer (:class:`FedbenchStrategy`); a fedbench
    error inside the server (e.g. that wait running out) is raised here, as one line."""
    from flwr.simulation import run_simulation

    from fedbench.flower.config import checked

    run = checked(cfg)
    n_nodes = 1 if run.method.centralized else cfg.partition.n_clients
    backend_config = backend_config or default_backend_config(verbose=verbose)
    done: list[FedbenchStrategy] = []
    failed: list[Exception] = []
    run_simulation(
        server_app(cfg, on_end=done.append, on_error=failed.append, node_wait_s=node_wait_s),
        client_app(cfg),
        num_supernodes=n_nodes,
        backend_config=backend_config,
        verbose_logging=verbose,
    )
    if failed:
        raise failed[0]
    if not done:
        raise ConfigError(
            "the Flower simulation ended without a result; run it again with verbose=True to see Flower's log"
        )
    return done[0]


__all__ = [
    "INSTALL_HINT",
    "PERSONAL_KEY",
    "FedbenchStrategy",
    "client_app",
    "default_backend_config",
    "server_app",
    "simulate",
]
