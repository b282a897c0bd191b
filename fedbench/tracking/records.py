"""Run records: one JSON file per finished run, written so that a crash never leaves half a file.

The leaderboard is regenerated from these files alone, so they are the source of truth. Each record
lives at ``<results_dir>/<dataset>/<run_id>.json``. Writes go to a temporary file in the same folder,
are fsynced, made world-readable (0644) and moved into place with :func:`os.replace` (atomic on POSIX
and Windows), so a reader sees either the previous complete record or the new one, never a partial
one. Records are strict JSON: a NaN or infinite float (a diverged run's loss) is written as ``null``,
so any JSON parser reads them. Every record is signed with this user's key
(:mod:`~fedbench.tracking.record_trust`). Temporary files start with ``.tmp-`` and are ignored by
readers; a file that fails the checks of :mod:`~fedbench.tracking.record_file` (a hand edit, a disk
fault, an old writer) is skipped with one warning naming it, so one bad run cannot block the board.

A run's *identity* is its full config minus the sections that cannot change a result
(:data:`IDENTITY_EXCLUDED`); two records are the same run exactly when their identities are equal.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import IO, Any

from fedbench.errors import DataError
from fedbench.safe_io import FILE_MODE, atomic_write, atomic_write_text
from fedbench.tracking.identity import (
    IDENTITY_EXCLUDED,
    config_hash,
    identity_key,
    record_identity,
    strict_json,
)
from fedbench.tracking.record_file import SCHEMA_VERSION, read_records, warn_about
from fedbench.tracking.record_trust import signed

__all__ = [
    "FILE_MODE",
    "IDENTITY_EXCLUDED",
    "SCHEMA_VERSION",
    "atomic_write",
    "atomic_write_text",
    "config_hash",
    "dedupe_records",
    "find_record",
    "identity_key",
    "is_diverged",
    "load_records",
    "record_path",
    "metric_value",
    "record_identity",
    "strict_json",
    "write_record",
]


def write_record(results_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` atomically to ``results_dir/<dataset>/<run_id>.json``, signed with this
    user's key, and return the path.

    The file is strict JSON (see :func:`strict_json`): NaN and infinities become ``null``. The
    signature covers the record as it reads back (a JSON round trip turns integer keys to strings).
    """
    for key in ("dataset", "run_id"):
        value = record.get(key)
        if not isinstance(value, str) or not value:
            raise DataError(f"run record has no '{key}' string; set record['{key}'] before writing it")
        if "/" in value or "\\" in value or value.startswith("."):
            raise DataError(
                f"run record {key} {value!r} is not a valid file name; use letters, digits, - and _"
            )
    path = Path(results_dir) / record["dataset"] / f"{record['run_id']}.json"
    plain = signed(json.loads(json.dumps(strict_json(record), allow_nan=False)))

    def dump(fh: IO[bytes]) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="\n")
        json.dump(plain, text, indent=2, sort_keys=True, allow_nan=False)
        text.write("\n")
        text.flush()
        text.detach()  # leave ``fh`` open for atomic_write's fsync

    return atomic_write(path, dump)


def load_records(results_dir: Path, dataset: str | None = None) -> list[dict[str, Any]]:
    """Return every valid record under ``results_dir`` (only ``dataset``'s when given), produced here
    or not (see :func:`~fedbench.tracking.record_file.read_records` to tell them apart); each
    invalid file is skipped with one warning naming it.

    Records come back sorted by file path so callers see a stable order. A missing results folder
    yields an empty list: no runs yet is a normal state, not an error.
    """
    found = read_records(results_dir, dataset, warn=False)
    warn_about(found, foreign=False)
    return sorted([*found.own, *(f.record for f in found.foreign)], key=lambda r: (r["dataset"], r["run_id"]))


def record_path(results_dir: Path, dataset: str, run_id: str) -> Path:
    return Path(results_dir) / dataset / f"{run_id}.json"


def find_record(results_dir: Path, dataset: str, run_id: str) -> dict[str, Any] | None:
    """The record of ``run_id`` for ``dataset`` when it is valid and produced here (signed with this
    user's key, or committed and unchanged); None otherwise."""
    from fedbench.tracking.record_file import check_record_file

    path = record_path(results_dir, dataset, run_id)
    if not path.is_file():
        return None
    own = check_record_file(path).own
    return own[0] if own else None


def dedupe_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep only the newest record (by ``created``) of each identity (see :func:`record_identity`).

    Re-running a configuration (after a fix, or a crash and resume) writes a new record; the
    leaderboard must count it once, with the latest numbers, instead of averaging stale and fresh
    runs as if they were extra seeds. Runs that differ in any result-changing field are all kept.
    ISO-8601 UTC strings sort chronologically as strings. Input order is preserved among survivors.
    """
    newest: dict[str, dict[str, Any]] = {}
    for record in records:
        key = identity_key(record)
        if key not in newest or str(record.get("created", "")) >= str(newest[key].get("created", "")):
            newest[key] = record
    kept = {id(r) for r in newest.values()}
    return [r for r in records if id(r) in kept]


def is_diverged(record: dict[str, Any]) -> bool:
    """True when the run stopped on a non-finite loss or weights (``status: "diverged"``)."""
    return record.get("status") == "diverged"


def metric_value(
    record: dict[str, Any], metric: str, condition: str | None, source: str = "final"
) -> float | None:
    """A metric of a run, or None where the run did not report it (NaN stays NaN: the caller decides).

    ``source`` is ``"final"`` (last round), ``"selected"`` (round chosen on validation) or
    ``"personalized"`` (mean per-client evaluation, which has no conditions).
    """
    if source == "final":
        block = (record.get("final") or {}).get(condition)
    elif source == "selected":
        block = ((record.get("selected") or {}).get("metrics") or {}).get(condition)
    elif source == "personalized":
        block = record.get("personalized")
    else:
        raise ValueError(f"unknown metric source {source!r}")
    value = (block or {}).get(metric)
    return None if value is None else float(value)
