"""Methods registered by name; third-party packages register through the ``fedbench.methods``
entry-point group (the entry point's object is a :class:`MethodSpec` or a callable returning one)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from fedbench.errors import ConfigError
from fedbench.methods.base import Aggregator, ClientModule


@dataclass(frozen=True)
class MethodSpec:
    name: str
    client: type[ClientModule]
    aggregator: Callable[[Any], Aggregator]
    options: type  # a dataclass of the method's own settings
    description: str
    personalized: bool = False  # clients keep state: report per-client (personalized) metrics
    centralized: bool = False  # pool every client's data into one
    local_only: bool = False  # no aggregation at all
    notes: str = ""  # shown on the leaderboard


_REGISTRY: dict[str, MethodSpec] = {}
_loaded_entry_points = False


def register(spec: MethodSpec) -> MethodSpec:
    _REGISTRY[spec.name] = spec
    return spec


def _load_builtin() -> None:
    import fedbench.methods.builtin  # noqa: F401  (registers on import)


def _load_entry_points() -> None:
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    _loaded_entry_points = True
    for ep in entry_points(group="fedbench.methods"):
        obj = ep.load()
        spec = obj() if callable(obj) and not isinstance(obj, MethodSpec) else obj
        register(spec)


def available() -> list[str]:
    _load_builtin()
    _load_entry_points()
    return sorted(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    names = available()
    if name not in _REGISTRY:
        raise ConfigError(f"method.name: unknown method {name!r}; choose one of {', '.join(names)}")
    return _REGISTRY[name]


def build_options(spec: MethodSpec, options: dict[str, Any] | None) -> Any:
    """The method's options dataclass from a dict, refusing unknown keys with a clear line."""
    options = dict(options or {})
    fields = {f.name: f for f in dataclasses.fields(spec.options)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(f"method.options: {spec.name} has no option {unknown[0]!r}; known options: {', '.join(fields) or 'none'}")
    try:
        obj = spec.options(**options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"method.options: {err}") from err
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    return obj
