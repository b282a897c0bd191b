"""Datasets by name. A builder turns a :class:`DataConfig` into ``(DataBundle, Backbone)``.

Built-in: ``emoji`` (the embedded offline benchmark). Tests and plugins register more with
:func:`register_dataset`. One bundle and backbone per process and data config: sweeps reuse them.
"""

from __future__ import annotations

from collections.abc import Callable

from fedbench.errors import ConfigError

Builder = Callable[..., tuple]
_BUILDERS: dict[str, Builder] = {}
_CACHE: dict[tuple, tuple] = {}


def _emoji(cfg):
    from fedbench.data.emoji import build_emoji

    return build_emoji(label=cfg.label, text=cfg.text, image_size=cfg.image_size, split_seed=cfg.split_seed)


def register_dataset(name: str, builder: Builder) -> None:
    _BUILDERS[name] = builder
    for key in [k for k in _CACHE if k[0] == name]:
        del _CACHE[key]


def dataset_names() -> list[str]:
    return sorted(_BUILDERS)


def build_dataset(cfg) -> tuple:
    if cfg.dataset not in _BUILDERS:
        raise ConfigError(f"data.dataset: unknown dataset {cfg.dataset!r}; choose one of {', '.join(dataset_names())}")
    key = (cfg.dataset, cfg.label, cfg.text, cfg.image_size, cfg.split_seed)
    if key not in _CACHE:
        _CACHE[key] = _BUILDERS[cfg.dataset](cfg)
    return _CACHE[key]


register_dataset("emoji", _emoji)
