"""Backbones by name. A :class:`BackboneSpec` builds a frozen :class:`Backbone` from its own
validated options; the backbone then featurises a dataset (``Backbone.featurize``; a run's pair is
made once per process by :func:`fedbench.federation.parts.featurized`).

Built-in: ``embedded`` (MiniLM-L6 + EfficientNet-Lite0, offline). Plugins register more through the
``fedbench.backbones`` entry-point group, or in process with ``BACKBONES.register``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedbench.backbones.base import Backbone
from fedbench.registry import Registry


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    build: Callable[[Any], Backbone]  # options -> an unfeaturised frozen backbone
    options: type | None = None
    description: str = ""
    capabilities: frozenset[str] = frozenset({"prompts", "multimodal"})
    version: int = 1  # bump with any change to what the frozen backbone computes


BACKBONES: Registry[BackboneSpec] = Registry(
    "backbone", "fedbench.backbones", "fedbench.backbones.builtin", "backbone.name"
)
register_backbone = BACKBONES.register
