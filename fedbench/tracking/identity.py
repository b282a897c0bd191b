"""A run's identity: what defines its result (its config minus what cannot change one), its
canonical JSON and the run id hashed from it. Records, the board and the resolver agree on these."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from fedbench.config import NOT_IDENTITY as IDENTITY_EXCLUDED  # config sections that never change a result

__all__ = ["IDENTITY_EXCLUDED", "config_hash", "identity_key", "record_identity", "strict_json"]


def strict_json(value: Any) -> Any:
    """``value`` as plain JSON data: NaN/inf floats to None, numpy/torch scalars and arrays to numbers
    and lists, sets to sorted lists, anything else unknown to ``str``.

    A run's record is written at its very end; failing there on a stray ``np.float32`` or ``Path``
    would throw away the whole run, while this keeps the numbers as numbers.
    """
    if isinstance(value, dict):
        return {
            k if isinstance(k, (str, int, float, bool)) or k is None else str(k): strict_json(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((strict_json(v) for v in value), key=str)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return strict_json(value.item())
    if hasattr(value, "tolist"):
        return strict_json(value.tolist())
    return str(value)


def config_hash(config: dict[str, Any]) -> str:
    """16 hex digits of sha256 over canonical JSON, so equal configs hash equally in any key order.

    Values are converted as in :func:`write_record` (numpy scalars to numbers, paths to ``str``), so
    the hash never raises and matches the hash of the config read back from a record.
    """
    return hashlib.sha256(_canonical(config).encode("utf-8")).hexdigest()[:16]


def record_identity(record: dict[str, Any]) -> dict[str, Any]:
    """What defines a run's result: ``record["identity"]`` when the record carries one, else its
    ``config`` minus :data:`IDENTITY_EXCLUDED`. A record with neither (hand-made, or from before
    configs were stored) is described by the fields it states about itself, in the config's shape.
    """
    identity = record.get("identity")
    if isinstance(identity, dict):
        return identity
    config = record.get("config")
    if isinstance(config, dict):
        return {k: v for k, v in config.items() if k not in IDENTITY_EXCLUDED}
    return {
        "seed": record.get("seed"),
        "data": {"dataset": record.get("dataset")},
        "method": {"name": record.get("method"), "options": {}},
        "missing": dict(record.get("missing") or {}),
        "partition": dict(record.get("partition") or {}),
    }


def identity_key(record: dict[str, Any]) -> str:
    """Canonical JSON of :func:`record_identity`: equal exactly when two records are the same run."""
    return _canonical(record_identity(record))


def _canonical(value: Any) -> str:
    return json.dumps(strict_json(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
