"""The one family of value checks: each refuses a bad value with one line (a
:class:`~fedbench.errors.ConfigError`) that names the field as the user writes it
(``missing.rate``, ``method.options.kappa``, ``data.options.val_fraction``), what was wrong and
what to write instead. Configs, dataset options, method options and the matcher all use these, so
every message reads the same way."""

from __future__ import annotations

import math
from typing import Any

from fedbench.errors import ConfigError

__all__ = ["at_least", "choice", "number", "positive", "within"]


def _hint(hint: str | None) -> str:
    return f"; try {hint}" if hint else ""


def number(field: str, value: Any) -> float:
    """``value`` as a float, or one line naming ``field`` when it is not a finite number (a quoted
    number such as ``"64"`` or a boolean is not one)."""
    if isinstance(value, (str, bool)):
        raise ConfigError(f"{field}: must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{field}: must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{field}: must be a finite number, got {value!r}")
    return out


def choice(field: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{field}: {value!r} is not valid; choose one of {', '.join(map(str, allowed))}")


def within(
    field: str,
    value: Any,
    lo: float,
    hi: float,
    *,
    open_lo: bool = False,
    open_hi: bool = False,
    hint: str | None = None,
) -> float:
    """``value`` checked to lie in the interval from ``lo`` to ``hi`` (closed unless ``open_*``)."""
    x = number(field, value)
    if (x < lo or (open_lo and x == lo)) or (x > hi or (open_hi and x == hi)):
        interval = f"{'(' if open_lo else '['}{lo}, {hi}{')' if open_hi else ']'}"
        raise ConfigError(
            f"{field}: {value} is outside {interval}{_hint(hint) or '; set a value in that range'}"
        )
    return x


def positive(field: str, value: Any, hint: str | None = None) -> None:
    if not number(field, value) > 0:
        raise ConfigError(f"{field}: must be > 0, got {value}{_hint(hint)}")


def at_least(
    field: str, value: Any, minimum: float, hint: str | None = None, *, null: str | None = None
) -> None:
    """``value >= minimum``; ``null`` (its meaning, e.g. "no cap") allows None as well."""
    if value is None and null is not None:
        return
    if null is not None and isinstance(value, (str, bool)):  # e.g. "64" for a field that defaults to null
        raise ConfigError(f"{field}: must be a number or null, got {value!r}{_hint(hint)}")
    if value is None or not number(field, value) >= minimum:
        also = f" or null ({null})" if null is not None else ""
        raise ConfigError(f"{field}: must be >= {minimum}{also}, got {value}{_hint(hint)}")
