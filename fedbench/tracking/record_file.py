"""Reading run-record files for the board: every record is checked before anything uses it.

A record file is believed only after it passes, in order:

1. **size and nesting**: at most :data:`MAX_BYTES` and :data:`MAX_DEPTH` levels of nesting, counted
   on the text before parsing (a deeply nested file would otherwise end the whole board in a
   ``RecursionError`` inside the parser or the code after it);
2. **strict JSON**: no bare ``NaN`` / ``Infinity`` tokens (fedbench writes ``null``), no key twice;
3. **schema and shape** (:func:`~fedbench.tracking.record_shape.shape_problem`), scores finite in [0, 1];
4. **identity**: its run id is the hash of its identity (``config_hash``, as the loop computes run
   ids) and its file name and folder are that run id and its dataset, so an edited config or
   copied file cannot pass as another run.

A file failing any of these is skipped with one warning naming it and the reason. A file passing
them is then *own* (signed here, or committed and unchanged: :mod:`~fedbench.tracking.record_trust`)
or *foreign* (shown on the board in its own marked section, never averaged in).
"""

from __future__ import annotations

import itertools
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedbench.safe_io import TMP_PREFIX
from fedbench.tracking import record_trust
from fedbench.tracking.record_shape import shape_problem

MAX_BYTES = 64 << 20  # committed records are about 100 KB
MAX_DEPTH = 32  # committed records nest 5 levels
SCHEMA_VERSION = 1
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


@dataclass
class Foreign:
    """A valid record not produced here: where, what, and why it is not believed."""

    path: Path
    record: dict[str, Any]
    reason: str


@dataclass
class RecordSet:
    """The records of a results folder, sorted by path: believed (``own``), valid but not produced
    here (``foreign``), and skipped as invalid (``skipped``: (path, reason))."""

    own: list[dict[str, Any]] = field(default_factory=list)
    foreign: list[Foreign] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def nesting_depth(text: str) -> int:
    """How deeply ``text``'s JSON arrays and objects nest, without parsing it (strings removed)."""
    steps = (1 if b in "[{" else -1 for b in _BRACKETS.findall(_STRINGS.sub('""', text)))
    return max(itertools.accumulate(steps, initial=0))


def parse_record(text: str) -> tuple[Any, str | None]:
    """(the parsed JSON, None), or (None, why it is not a strict, bounded JSON document)."""
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        return None, f"nested {depth} levels deep (a record has at most {MAX_DEPTH})"
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys), None
    except json.JSONDecodeError as err:
        return None, f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    except ValueError as err:  # from the hooks
        return None, f"not strict JSON ({err})"


def record_problem(record: Any, path: Path | None = None) -> str | None:
    """What makes ``record`` unusable (schema, shape, run id, file name), or None."""
    from fedbench.tracking.identity import config_hash, record_identity

    if isinstance(record, dict) and record.get("schema") != SCHEMA_VERSION:
        return f"schema {record.get('schema')!r}, expected {SCHEMA_VERSION}"
    problem = shape_problem(record)
    if problem is not None:
        return problem
    expected = config_hash(record_identity(record))
    if record["run_id"] != expected:
        return (
            f"run_id {record['run_id']} is not the hash of its identity ({expected}): its config was edited"
        )
    if path is not None and Path(path).stem != record["run_id"]:
        return f"the file is named {Path(path).name} but holds run {record['run_id']}"
    if path is not None and Path(path).parent.name != record["dataset"]:
        return f"it is a {record['dataset']!r} run in the folder {Path(path).parent.name!r}"
    return None


def read_records(results_dir: Path, dataset: str | None = None, warn: bool = True) -> RecordSet:
    """Every record under ``results_dir`` (``dataset``'s folder only, when given), checked and sorted
    into own, foreign and skipped; one warning per skipped or foreign file when ``warn``."""
    root = Path(results_dir)
    folders = [root / dataset] if dataset is not None else sorted(p for p in root.glob("*") if p.is_dir())
    out = RecordSet()
    for folder in folders:
        if not folder.is_dir():
            continue
        blobs = record_trust.head_blobs(folder)
        for path in sorted(folder.glob("*.json")):
            if not path.name.startswith(TMP_PREFIX):
                _sort_into(out, path, blobs)
    if warn:
        warn_about(out)
    return out


def warn_about(found: RecordSet, foreign: bool = True) -> None:
    """One warning per skipped file (and per file not produced here, when ``foreign``)."""
    for path, reason in found.skipped:
        warnings.warn(f"skipping run record {path}: {reason}; fix or delete it", stacklevel=3)
    for item in found.foreign if foreign else ():
        warnings.warn(
            f"run record {item.path} is not produced here ({item.reason}): "
            "the board lists it apart and never averages it in; "
            f"check it with `fedbench reproduce {item.path}`",
            stacklevel=3,
        )


def check_record_file(path: Path) -> RecordSet:
    """One file, checked as :func:`read_records` checks each (no warning)."""
    out = RecordSet()
    _sort_into(out, Path(path), None)
    return out


def _sort_into(out: RecordSet, path: Path, blobs: dict[str, str] | None) -> None:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            out.skipped.append((path, f"{size:,} bytes, larger than a record can be ({MAX_BYTES:,})"))
            return
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as err:
        out.skipped.append((path, f"unreadable ({err.strerror or err})"))
        return
    except UnicodeDecodeError:
        out.skipped.append((path, "not UTF-8 text"))
        return
    record, problem = parse_record(text)
    problem = problem or record_problem(record, path)
    if problem is not None:
        out.skipped.append((path, problem))
        return
    how, why = record_trust.provenance(path, record, data, blobs)
    if how is None:
        out.foreign.append(Foreign(path, record, why or "not verified"))
    else:
        out.own.append(record)


def _no_constant(name: str) -> None:
    raise ValueError(f"a bare {name} token; fedbench writes non-finite numbers as null")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        twice = next(k for i, (k, _) in enumerate(pairs) if any(k == k2 for k2, _ in pairs[:i]))
        raise ValueError(f"the key {twice!r} appears twice in one object")
    return out
