"""One registry mechanism for every kind of extension: methods, datasets, backbones, executors.

Built-ins and third-party plugins register the same way: a package declares an entry point in the
kind's group (``fedbench.methods``, ``fedbench.datasets``, ``fedbench.backbones``,
``fedbench.executors``) whose object is a spec, a list of specs, a callable returning either, or a
module that registers its specs when imported (fedbench's own entry points name
``fedbench.<kind>.builtin``; when fedbench runs from a source tree without its metadata, that module
is imported directly). A name that two distributions both register is refused with one line naming
both; registering in the running process (a test, a notebook) replaces a name.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import math
import sys
import types
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from fedbench.errors import ConfigError

S = TypeVar("S")


class Registry(Generic[S]):
    """Specs of one kind by name. ``field`` is the config field that names one (for messages)."""

    def __init__(self, kind: str, group: str, builtin_module: str, field: str):
        self.kind, self.group, self.builtin_module, self.field = kind, group, builtin_module, field
        self._specs: dict[str, S] = {}
        self._origin: dict[
            str, str | None
        ] = {}  # name -> the distribution that registered it (None: this process)
        self._loaded = False

    def register(self, spec: S, replace: bool = False) -> S:
        """Register ``spec`` under its name; the distribution of the calling module is its origin.
        ``replace``: take the place of a spec of the same name whatever registered it (a worker
        process receiving its driver's specs)."""
        origin = distribution_of(sys._getframe(1).f_globals.get("__name__", ""))
        if replace:
            origin = self._origin.get(spec.name)  # type: ignore[attr-defined]
            self._specs.pop(spec.name, None)  # type: ignore[attr-defined]
        return self._add(spec, origin)

    def _add(self, spec: S, origin: str | None) -> S:
        name = spec.name  # type: ignore[attr-defined]
        known, before = self._specs.get(name), self._origin.get(name)
        if known is not None and known is not spec and origin and before and origin != before:
            raise ConfigError(
                f"{self.field}: {self.kind} {name!r} is registered by both {before} and {origin}; "
                f"uninstall one of them or rename the {self.kind} in one"
            )
        self._specs[name], self._origin[name] = spec, origin
        return spec

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in entry_points(group=self.group):
            self._load_entry_point(ep)
        if self.builtin_module not in sys.modules:  # a source tree without fedbench's installed metadata
            importlib.import_module(self.builtin_module)

    def _load_entry_point(self, ep) -> None:
        try:
            obj = ep.load()
        except Exception as err:  # a broken plugin names itself instead of breaking every command
            raise ConfigError(
                f"plugin {ep.name!r} ({ep.value}) in {self.group} failed to load: {err}; fix or uninstall it"
            ) from err
        if isinstance(obj, types.ModuleType):  # registered its specs when imported
            return
        if callable(obj) and not hasattr(obj, "name"):
            obj = obj()
        specs = list(obj) if isinstance(obj, (list, tuple)) else [obj]
        bad = [s for s in specs if s is not None and not hasattr(s, "name")]
        if bad or not specs:
            raise ConfigError(
                f"plugin {ep.name!r} ({ep.value}) in {self.group} is not a {self.kind} spec "
                f"(got {type(bad[0]).__name__ if bad else 'nothing'}); point the entry point at a spec, "
                "a list of specs or a function returning them"
            )
        origin = getattr(getattr(ep, "dist", None), "name", None) or distribution_of(ep.value.split(":")[0])
        for spec in specs:
            if spec is not None:
                self._add(spec, origin)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._specs)

    def get(self, name: str) -> S:
        names = self.names()
        if name not in self._specs:
            raise ConfigError(f"{self.field}: unknown {self.kind} {name!r}; choose one of {', '.join(names)}")
        return self._specs[name]

    def origin(self, name: str) -> str | None:
        """The distribution that registered ``name`` (fedbench for the built-ins; None: this process)."""
        self.get(name)
        return self._origin.get(name)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._specs


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution_of(module: str) -> str | None:
    """The installed distribution that provides ``module`` (fedbench for its own), None for code
    that is not installed (a test, a notebook, a script)."""
    top = module.split(".")[0]
    found = _distributions().get(top)
    return found[0] if found else ("fedbench" if top == "fedbench" else None)


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
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name}: {value!r} is not a finite number; give e.g. {default!r}")
