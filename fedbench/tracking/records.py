"""Run records: one JSON file per finished run, written so that a crash never leaves half a file.

The leaderboard is regenerated from these files alone, so they are the source of truth. Each record
lives at ``<results_dir>/<dataset>/<run_id>.json``. Writes go to a temporary file in the same folder,
are fsynced, then moved into place with :func:`os.replace` (atomic on POSIX and Windows), so a reader
sees either the previous complete record or the new one, never a partial one. Temporary files start
with ``.tmp-`` and are ignored by readers; a file that still fails to parse (a hand edit, a disk
fault) is skipped with one warning so one bad run cannot block the whole leaderboard.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from fedbench.errors import DataError

SCHEMA_VERSION = 1
TMP_PREFIX = ".tmp-"

__all__ = [
    "SCHEMA_VERSION",
    "atomic_write",
    "atomic_write_text",
    "config_hash",
    "dedupe_records",
    "find_record",
    "load_records",
    "metric_value",
    "partition_label",
    "run_identity",
    "section_of",
    "section_title",
    "write_record",
]


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fh)`` on a temp file next to ``path``, fsync it, then move it onto ``path``.

    ``path`` is therefore always either the old complete file or the new complete one. The temporary
    file sits in the destination folder because :func:`os.replace` is only atomic within one
    filesystem. Serialising straight into the temp file (rather than into memory and then the target)
    means a failure inside ``write`` also leaves the old file untouched; the temp file is removed and
    the error re-raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path`` (see :func:`atomic_write`)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data))


def write_record(results_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` atomically to ``results_dir/<dataset>/<run_id>.json`` and return the path."""
    for key in ("dataset", "run_id"):
        value = record.get(key)
        if not isinstance(value, str) or not value:
            raise DataError(f"run record has no '{key}' string; set record['{key}'] before writing it")
        if "/" in value or "\\" in value or value.startswith("."):
            raise DataError(f"run record {key} {value!r} is not a valid file name; use letters, digits, - and _")
    path = Path(results_dir) / record["dataset"] / f"{record['run_id']}.json"

    def dump(fh: IO[bytes]) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="\n")
        json.dump(record, text, indent=2, sort_keys=True, default=_to_json)
        text.write("\n")
        text.flush()
        text.detach()  # leave ``fh`` open for atomic_write's fsync

    return atomic_write(path, dump)


def load_records(results_dir: Path, dataset: str | None = None) -> list[dict[str, Any]]:
    """Return every readable record under ``results_dir`` (only ``dataset``'s when given).

    Records come back sorted by file path so callers see a stable order. A missing results folder
    yields an empty list: no runs yet is a normal state, not an error.
    """
    root = Path(results_dir)
    folders = [root / dataset] if dataset is not None else sorted(p for p in root.glob("*") if p.is_dir())
    records: list[dict[str, Any]] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            if path.name.startswith(TMP_PREFIX):
                continue
            record = _read_record(path)
            if record is not None:
                records.append(record)
    return records


def find_record(results_dir: Path, dataset: str, run_id: str) -> dict[str, Any] | None:
    """Return the record of ``run_id`` for ``dataset``, or None if it was never written (or is corrupt)."""
    path = Path(results_dir) / dataset / f"{run_id}.json"
    if not path.is_file():
        return None
    return _read_record(path)


def config_hash(config: dict[str, Any]) -> str:
    """16 hex digits of sha256 over canonical JSON, so equal configs hash equally in any key order.

    Non-JSON values are converted as in :func:`write_record` (numpy scalars to numbers, paths to
    ``str``), so the hash never raises and matches the hash of the config read back from a record.
    """
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_to_json)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def dedupe_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep only the newest record (by ``created``) per (method, missingness, seed, partition).

    Re-running a configuration (after a fix, or a crash and resume) writes a new run id; the
    leaderboard must count it once, with the latest numbers, instead of averaging stale and fresh
    runs as if they were extra seeds. ISO-8601 UTC strings sort chronologically as strings. Input
    order is preserved among the survivors.
    """
    newest: dict[str, dict[str, Any]] = {}
    for record in records:
        key = run_identity(record)
        if key not in newest or str(record.get("created", "")) >= str(newest[key].get("created", "")):
            newest[key] = record
    kept = {id(r) for r in newest.values()}
    return [r for r in records if id(r) in kept]


def run_identity(record: dict[str, Any]) -> str:
    """Canonical string of what makes two runs "the same run" for deduplication."""
    missing = record.get("missing") or {}
    identity = {
        "dataset": record.get("dataset"),
        "method": record.get("method"),
        "protocol": missing.get("protocol"),
        "type": missing.get("type"),
        "rate": missing.get("rate"),
        "seed": record.get("seed"),
        "partition": record.get("partition"),
    }
    return json.dumps(identity, sort_keys=True, default=_to_json)


def section_of(record: dict[str, Any]) -> tuple[str, str]:
    """(missing type, protocol) of a run: results are only comparable within one section."""
    missing = record.get("missing") or {}
    return str(missing.get("type", "none")), str(missing.get("protocol", "per_sample"))


def section_title(section: tuple[str, str]) -> str:
    """Human title of a section; the protocol is named only when it is not the default."""
    missing_type, protocol = section
    return f"Missing type: {missing_type}" + ("" if protocol == "per_sample" else f" (protocol: {protocol})")


def partition_label(partition: dict[str, Any] | None) -> str:
    """Short label such as ``dirichlet(alpha=0.5), 5 clients``."""
    if not partition:
        return "unknown partition"
    params = ", ".join(f"{k}={partition[k]}" for k in sorted(partition) if k not in ("name", "n_clients"))
    label = str(partition.get("name", "?")) + (f"({params})" if params else "")
    if "n_clients" in partition:
        label += f", {partition['n_clients']} clients"
    return label


def metric_value(record: dict[str, Any], metric: str, condition: str | None, source: str = "final") -> float | None:
    """A metric of a run, or None where the run did not report it.

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


def _to_json(value: Any) -> Any:
    """Turn numpy/torch scalars and arrays into numbers and lists, anything else into ``str``.

    A run's record is written at its very end; failing there on a stray ``np.float32`` or ``Path``
    would throw away the whole run, while this keeps the numbers as numbers.
    """
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def _read_record(path: Path) -> dict[str, Any] | None:
    """Parse one record file; warn and return None when it is unreadable or not a record."""
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        warnings.warn(f"skipping unreadable run record {path}: {err}; delete or re-run it", stacklevel=3)
        return None
    if not isinstance(record, dict):
        warnings.warn(f"skipping run record {path}: top level is not an object; delete or re-run it", stacklevel=3)
        return None
    if record.get("schema") != SCHEMA_VERSION:
        warnings.warn(
            f"skipping run record {path}: schema {record.get('schema')!r}, expected {SCHEMA_VERSION}; re-run it",
            stacklevel=3,
        )
        return None
    return record


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
