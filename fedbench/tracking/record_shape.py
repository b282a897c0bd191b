"""The shape a run record must have before the leaderboard reads it.

A record is valid JSON long before it is a usable record: a hand edit, an old writer or a half-done
migration can leave ``final`` a list or a metric a string. Checking the shape once, when a record is
loaded, turns what would be a traceback deep inside the leaderboard (naming no file) into one
warning naming the file and the field, and the board is still written from the other runs.

Only what the leaderboard and the sweep read is checked; extra fields are free. Scores (every
metric of ``final``, ``selected.metrics``, the rounds' ``val``, and ``personalized``'s primary metric
and ``per_client`` values) must be finite fractions in [0, 1] (accuracy, F1 and AUROC all are): an
accuracy of 5.0 would show as 500.0, a NaN as a diverged cell the header does not count. A
diverged run's test scores are never read, so only their types are checked.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["STATUSES", "is_finite_number", "shape_problem"]

STATUSES = ("ok", "diverged")  # an absent status means "ok"


def shape_problem(record: Any) -> str | None:
    """What is wrong with ``record``'s shape, in a few words naming the field, or None if nothing.

    >>> shape_problem({"schema": 1, "run_id": "r", "dataset": "d", "method": "m", "metric": "accuracy",
    ...                "seed": 0, "missing": {}, "final": {"as_train": {"accuracy": "high"}}})
    'final.as_train.accuracy is a str, expected a number or null'
    """
    if not isinstance(record, dict):
        return f"top level is {_kind(record)}, expected an object"
    for key in ("run_id", "dataset", "method", "metric"):
        if not isinstance(record.get(key), str) or not record[key]:
            return _wrong(record, key, "a non-empty string")
    if not _is_int(record.get("seed")):
        return _wrong(record, "seed", "an integer")
    status = record.get("status")
    if status is not None and status not in STATUSES:
        return f"status is {status!r}, expected one of {', '.join(STATUSES)}"
    diverged = status == "diverged"
    metric = record["metric"]
    checks = (
        _object(record, "missing", optional=False),
        _object(record, "partition"),
        _object(record, "config"),
        _object(record, "identity"),
        _optional(record, "sweep", str, "a string or null"),
        _optional(record, "created", str, "a string"),
        _fraction(record, "majority_rate"),
        _conditions(record.get("final"), "final", metric, optional=diverged, scores=not diverged),
        _selected(record.get("selected"), metric, scores=not diverged),
        _metrics(record.get("personalized"), "personalized", metric, optional=True, scores=(metric,)),
        _per_client((record.get("personalized") or {}).get("per_client")),
        _rounds(record.get("rounds")),
        _diverged(record.get("diverged")),
    )
    return next((problem for problem in checks if problem is not None), None)


def _conditions(block: Any, where: str, metric: str, optional: bool, scores: bool = True) -> str | None:
    """``{condition: {metric: fraction | null}}``: the shape of ``final`` and ``selected.metrics``."""
    if block is None and optional:
        return None
    if not isinstance(block, dict):
        return f"{where} is {_kind(block)}, expected an object of test conditions"
    for condition, metrics in block.items():
        problem = _metrics(
            metrics, f"{where}.{condition}", metric, optional=True, scores=all if scores else None
        )
        if problem is not None:
            return problem
    return None


def _metrics(block: Any, where: str, metric: str, optional: bool, scores: Any = ()) -> str | None:
    """``{name: number | null}``; lists are allowed beside them (``personalized.per_client``).
    The names in ``scores`` (``all``: every name) must be fractions in [0, 1], the other numbers
    finite and not negative (counts); ``scores=None`` checks the types only."""
    if block is None and optional:
        return None
    if not isinstance(block, dict):
        return f"{where} is {_kind(block)}, expected an object of metrics"
    for name, value in block.items():
        if isinstance(value, list) and name != metric:
            continue
        if value is None:
            continue
        if not _is_number(value):
            return f"{where}.{name} is {_kind(value)}, expected a number or null"
        if scores is None:
            continue
        is_score = scores is all or name in scores
        if is_score and not _is_fraction(value):
            return f"{where}.{name} is {value!r}, outside [0, 1] (a score is a fraction)"
        if not is_score and not (math.isfinite(value) and value >= 0):
            return f"{where}.{name} is {value!r}, expected a finite count >= 0"
    return None


def _per_client(values: Any) -> str | None:
    if values is None:
        return None
    if not isinstance(values, list):
        return f"personalized.per_client is {_kind(values)}, expected a list of scores"
    bad = next((i for i, v in enumerate(values) if v is not None and not _is_fraction(v)), None)
    return (
        None
        if bad is None
        else f"personalized.per_client[{bad}] is {values[bad]!r}, outside [0, 1] (a score is a fraction)"
    )


def _selected(block: Any, metric: str, scores: bool = True) -> str | None:
    if block is None:
        return None
    if not isinstance(block, dict):
        return f"selected is {_kind(block)}, expected an object with round and metrics"
    if block.get("round") is not None and not _is_int(block["round"]):
        return f"selected.round is {_kind(block['round'])}, expected an integer"
    return _conditions(block.get("metrics"), "selected.metrics", metric, optional=True, scores=scores)


def _rounds(rounds: Any) -> str | None:
    if rounds is None:
        return None
    if not isinstance(rounds, list):
        return f"rounds is {_kind(rounds)}, expected a list of per-round entries"
    for i, entry in enumerate(rounds):
        if not isinstance(entry, dict):
            return f"rounds[{i}] is {_kind(entry)}, expected an object"
        for key in ("bytes_up", "bytes_down"):
            value = entry.get(key)
            if value is not None and not (_is_number(value) and math.isfinite(value) and value >= 0):
                return f"rounds[{i}].{key} is {value!r}, expected a number of bytes >= 0"
        val = entry.get("val")
        if val is not None:
            problem = _metrics(val, f"rounds[{i}].val", "", optional=False, scores=all)
            if problem is not None:
                return problem
    return None


def _diverged(info: Any) -> str | None:
    """``{"round": int, "client": int | null, "what": str}`` where a diverged run says where."""
    if info is None:
        return None
    if not isinstance(info, dict):
        return f"diverged is {_kind(info)}, expected an object with round, client and what"
    if info.get("round") is not None and not _is_int(info["round"]):
        return f"diverged.round is {_kind(info['round'])}, expected an integer"
    if info.get("client") is not None and not _is_int(info["client"]):
        return f"diverged.client is {_kind(info['client'])}, expected an integer or null"
    if info.get("what") is not None and not isinstance(info["what"], str):
        return f"diverged.what is {_kind(info['what'])}, expected a string"
    return None


def _object(record: dict[str, Any], key: str, optional: bool = True) -> str | None:
    if key not in record and not optional:
        return f"{key} is absent, expected an object"
    if key in record and not isinstance(record[key], dict) and not (optional and record[key] is None):
        return _wrong(record, key, "an object")
    return None


def _fraction(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or _is_fraction(value):
        return None
    return (
        f"{key} is {value!r}, outside [0, 1]"
        if _is_number(value)
        else _wrong(record, key, "a fraction in [0, 1] or null")
    )


def _optional(record: dict[str, Any], key: str, check: Any, expected: str) -> str | None:
    value = record.get(key)
    ok = value is None or (isinstance(value, check) if isinstance(check, type) else check(value))
    return None if ok else _wrong(record, key, expected)


def _wrong(record: dict[str, Any], key: str, expected: str) -> str:
    got = "absent" if key not in record else _kind(record[key])
    return f"{key} is {got}, expected {expected}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_fraction(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value) and 0 <= value <= 1


def is_finite_number(value: Any) -> bool:
    """A real number a record can average or log: int or float, not bool, not NaN or infinite."""
    return _is_number(value) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else f"a {type(value).__name__}"
