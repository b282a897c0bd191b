"""The parts of a run every process makes the same way, in one place: the featurised data and frozen
backbone (once per process and data/backbone pair), the client module with its seeded
initialisation, and the server side (context and aggregator). The round loop, the Ray executor's
actors and Flower's apps all build theirs here, so they start alike.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import torch

from fedbench.backbones.base import Backbone
from fedbench.data.bundle import DataBundle
from fedbench.federation.resolve import ResolvedRun
from fedbench.methods.base import Aggregator, ClientModule, ServerContext, TrainSettings
from fedbench.seeds import derive_seed

_FEATURIZED: dict[str, tuple[DataBundle, Backbone]] = {}


def _key(*parts: Any) -> str:
    return json.dumps(
        [dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts],
        sort_keys=True,
        default=str,
    )


def featurized(run: ResolvedRun) -> tuple[DataBundle, Backbone]:
    """(bundle, frozen backbone) of the run's data and backbone: one per process and pair, shared
    by every run of a sweep; the backbone knows its bundle (frozen per-row caches build from it)."""
    cfg = run.cfg
    key = _key(
        run.dataset.name, run.data_options, cfg.data.split_seed, run.backbone.name, run.backbone_options
    )
    if key not in _FEATURIZED:
        data = run.dataset.build(run.data_options, cfg.data.split_seed)
        backbone = run.backbone.build(run.backbone_options)
        bundle = backbone.featurize(data)
        backbone.bundle, backbone.source_data = bundle, data
        backbone.__dict__.pop(
            "_frozen_fingerprint", None
        )  # featurize may set buffers (the embedded image bank)
        _FEATURIZED[key] = (bundle, backbone)
    return _FEATURIZED[key]


def client_module(
    run: ResolvedRun, backbone: Backbone, num_classes: int, device: torch.device
) -> ClientModule:
    """The run's client module with its seeded initialisation, on ``device``."""
    cfg = run.cfg
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        module = run.method.client(
            backbone, num_classes, TrainSettings(cfg.train.lr, cfg.train.weight_decay), run.method_options
        )
    return module.to(device)


def server_context(
    run: ResolvedRun, backbone: Backbone, bundle: DataBundle, n_clients: int, device: torch.device
) -> ServerContext:
    """What an aggregator that asks for one may use: the backbone, the bundle and its server-held
    split (``public``, else ``pretrain``; no client holds either)."""
    public = next((np.sort(bundle.splits[s]) for s in ("public", "pretrain") if s in bundle.splits), None)
    return ServerContext(backbone, bundle, public, device, run.cfg.seed, n_clients=n_clients)


def aggregator(
    run: ResolvedRun, backbone: Backbone, bundle: DataBundle, n_clients: int, device: torch.device
) -> Aggregator:
    context = (
        server_context(run, backbone, bundle, n_clients, device) if run.method.needs_server_context else None
    )
    return run.method.aggregator(run.method_options, context)


def client_runner(run: ResolvedRun):
    """This process's :class:`~fedbench.federation.client.ClientRunner` for ``run``: its own frozen
    backbone and data, and a client module made exactly as the round loop makes its own."""
    from fedbench.federation.client import ClientRunner

    bundle, backbone = featurized(run)
    device = run.device
    backbone.to(device)
    module = client_module(run, backbone, bundle.num_classes, device)
    runner = ClientRunner(module, bundle, run.cfg.train, run.cfg.federation.local_epochs)
    runner.rebuild = runner_for_config
    return runner


def runner_for_config(cfg):
    """A worker process's runner for a run's config, resolved once there (a Ray actor calls it)."""
    from fedbench.federation.resolve import resolve

    return client_runner(resolve(cfg))
