"""Backbones by name. A :class:`BackboneSpec` builds a frozen :class:`Backbone` from its own
validated options; the backbone then featurises a dataset (``Backbone.featurize``).

Built-in: ``embedded`` (MiniLM-L6 + EfficientNet-Lite0, offline). Plugins register more through the
``fedbench.backbones`` entry-point group, or in process with ``BACKBONES.register``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedbench.backbones.base import Backbone
from fedbench.data.bundle import DataBundle
from fedbench.registry import Registry, build_options


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    build: Callable[[Any], Backbone]  # options -> an unfeaturised frozen backbone
    options: type | None = None
    description: str = ""
    capabilities: frozenset[str] = frozenset({"prompts", "multimodal"})


BACKBONES: Registry[BackboneSpec] = Registry("backbone", "fedbench.backbones", "fedbench.backbones.builtin", "backbone.name")
register_backbone = BACKBONES.register

_CACHE: dict[str, tuple[DataBundle, Backbone]] = {}


def featurized(data_cfg, backbone_cfg) -> tuple[DataBundle, Backbone]:
    """(bundle, backbone) for a data and a backbone config: one frozen backbone per process and
    pair, shared by every run of a sweep."""
    from fedbench.data.registry import load_modal_data

    key = json.dumps([data_cfg.dataset, data_cfg.options, data_cfg.split_seed, backbone_cfg.name, backbone_cfg.options], sort_keys=True, default=str)
    if key not in _CACHE:
        data = load_modal_data(data_cfg.dataset, data_cfg.options, data_cfg.split_seed)
        spec = BACKBONES.get(backbone_cfg.name)
        backbone = spec.build(build_options(spec.options, backbone_cfg.options, "backbone.options"))
        bundle = backbone.featurize(data)
        backbone.bundle, backbone.source_data = bundle, data
        backbone.__dict__.pop("_frozen_fingerprint", None)  # featurize may set buffers (the embedded image bank)
        _CACHE[key] = (bundle, backbone)
    return _CACHE[key]
