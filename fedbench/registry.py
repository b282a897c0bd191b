"""One registry mechanism for every kind of extension: methods, datasets, backbones, executors.

Built-ins and third-party plugins register the same way: a package declares an entry point in the
kind's group (``fedbench.methods``, ``fedbench.datasets``, ``fedbench.backbones``,
``fedbench.executors``) whose object is a spec, a list of specs, or a callable returning either
(or registering them itself). Built-ins are plain imports of ``fedbench.<kind>.builtin``.
"""

from __future__ import annotations

import dataclasses
import importlib
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from fedbench.errors import ConfigError

S = TypeVar("S")


class Registry(Generic[S]):
    """Specs of one kind by name. ``field`` is the config field that names one (for messages)."""

    def __init__(self, kind: str, group: str, builtin_module: str, field: str):
        self.kind, self.group, self.builtin_module, self.field = kind, group, builtin_module, field
        self._specs: dict[str, S] = {}
        self._loaded = False

    def register(self, spec: S) -> S:
        self._specs[spec.name] = spec  # type: ignore[attr-defined]
        return spec

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        importlib.import_module(self.builtin_module)
        for ep in entry_points(group=self.group):
            try:
                obj = ep.load()
            except Exception as err:  # a broken plugin names itself instead of breaking every command
                raise ConfigError(f"plugin {ep.name!r} ({ep.value}) in {self.group} failed to load: {err}; fix or uninstall it") from err
            if callable(obj) and not hasattr(obj, "name"):
                obj = obj()
            for spec in obj if isinstance(obj, (list, tuple)) else [obj]:
                if spec is not None and hasattr(spec, "name"):
                    self.register(spec)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._specs)

    def get(self, name: str) -> S:
        names = self.names()
        if name not in self._specs:
            raise ConfigError(f"{self.field}: unknown {self.kind} {name!r}; choose one of {', '.join(names)}")
        return self._specs[name]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._specs


def build_options(cls: type | None, values: dict[str, Any] | None, field: str) -> Any:
    """An options dataclass from a dict: unknown keys, wrong types and values its ``validate()``
    refuses each give one line naming ``field.<key>``."""
    values = dict(values or {})
    if cls is None:
        if values:
            raise ConfigError(f"{field}: takes no options, got {', '.join(sorted(values))}")
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{field}: no option {unknown[0]!r}; known options: {', '.join(fields) or 'none'}")
    for key, value in values.items():
        _check_type(f"{field}.{key}", value, fields[key])
    try:
        obj = cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{field}: {err}") from err
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    return obj


def resolved_options(cls: type | None, values: dict[str, Any] | None, field: str) -> dict[str, Any]:
    """Every option's value (defaults filled in) as a plain dict."""
    obj = build_options(cls, values, field)
    return {} if obj is None else dataclasses.asdict(obj)


def _check_type(name: str, value: Any, f: dataclasses.Field) -> None:
    """Refuse a value whose type cannot be the field's (e.g. "four" for an int)."""
    default = f.default if f.default is not dataclasses.MISSING else None
    if default is None or value is None:
        return
    expected: tuple[type, ...]
    if isinstance(default, bool):
        expected = (bool,)
    elif isinstance(default, int):
        expected = (int,)
    elif isinstance(default, float):
        expected = (int, float)
    elif isinstance(default, str):
        expected = (str,)
    else:
        return
    if isinstance(value, bool) and expected != (bool,):
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(f"{name}: {value!r} is not a {expected[-1].__name__}; give e.g. {default!r}")
