"""Cache entries: one folder per cached table of rows, found by what its bytes depend on.

An entry lives in ``<cache>/rows/<kind>-<family>-<rows digest>/`` and holds ``.npy`` arrays plus
``meta.json``, written last (a folder without it is an unfinished build and is ignored, then
removed by ``fedbench cache clean``). Its *family* hashes what every row's bytes depend on (the
image origin, size, resampling; the tokenizer and length; the backbone's weights), never a run's
split, seed or options: a new ``split_seed`` reuses the entry. ``rows.npy`` lists the origin rows
the entry holds, so a request for a subset (FedPrime's 8-dish cut of Food-101) reads an entry of
the whole (MAP's 101 dishes) through a row map instead of building its own.

``fedbench cache list`` / ``fedbench cache clean`` (:mod:`fedbench.cache.commands`) show and free
what is on disk; every use of an entry refreshes its ``last_used`` time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedbench.cache.arrays import open_rows
from fedbench.cache.folder import cache_dir, cache_key
from fedbench.safe_io import TMP_PREFIX, atomic_write_text

META = "meta.json"
ROWS = "rows.npy"
FORMAT = 1


def rows_root() -> Path:
    return cache_dir() / "rows"


def family_key(kind: str, **parts: Any) -> str:
    return cache_key(kind=kind, format=FORMAT, **parts)


def rows_digest(rows: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(rows, dtype=np.int64).tobytes()).hexdigest()[:12]


@dataclass
class Entry:
    """A finished entry: its folder and meta (``kind``, ``family``, ``describe``, ``rows``, ``bytes``,
    ``created``, ``last_used``)."""

    folder: Path
    meta: dict

    def array(self, name: str) -> np.ndarray:
        return open_rows(self.folder / f"{name}.npy")

    def origin_rows(self) -> np.ndarray:
        return np.asarray(open_rows(self.folder / ROWS))

    def touch(self) -> None:
        """Refresh ``last_used`` (what ``fedbench cache clean --unused-days`` looks at)."""
        try:
            os.utime(self.folder / META)
        except OSError:
            pass

    @property
    def bytes(self) -> int:
        return int(self.meta.get("bytes", 0))

    @property
    def last_used(self) -> float:
        try:
            return (self.folder / META).stat().st_mtime
        except OSError:
            return 0.0


def _read(folder: Path) -> Entry | None:
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None
    return Entry(folder, meta)


def entries(kind: str | None = None) -> list[Entry]:
    """Every finished entry (of ``kind``), newest first."""
    root = rows_root()
    if not root.is_dir():
        return []
    found = [
        e
        for p in root.iterdir()
        if p.is_dir() and (kind is None or p.name.startswith(kind + "-"))
        if (e := _read(p)) is not None
    ]
    return sorted(found, key=lambda e: -e.last_used)


def unfinished() -> list[Path]:
    """Folders of builds that never finished (killed, or failed): safe to delete when no build runs."""
    root = rows_root()
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and not (p / META).exists()]


def find(kind: str, family: str, rows: np.ndarray) -> tuple[Entry, np.ndarray] | None:
    """The smallest finished entry of ``family`` that holds every origin row of ``rows``, and the
    position of each requested row in it; None when no entry covers them."""
    wanted = np.unique(np.asarray(rows, dtype=np.int64))
    best = None
    for entry in entries(kind):
        if entry.meta.get("family") != family or int(entry.meta.get("rows", -1)) < len(wanted):
            continue
        if best is not None and entry.meta["rows"] >= best[0].meta["rows"]:
            continue
        try:
            held = entry.origin_rows()
        except (OSError, ValueError):
            continue
        at = np.searchsorted(held, wanted)
        if len(wanted) and (
            at.max() >= len(held) or not np.array_equal(held[np.minimum(at, len(held) - 1)], wanted)
        ):
            continue
        best = (entry, held)
    if best is None:
        return None
    entry, held = best
    entry.touch()
    return entry, np.searchsorted(held, np.asarray(rows, dtype=np.int64))


def new_folder(kind: str, family: str, rows: np.ndarray) -> Path:
    """A fresh build folder (``.tmp-`` prefixed until :func:`finish` renames it)."""
    root = rows_root()
    root.mkdir(parents=True, exist_ok=True)
    name = f"{TMP_PREFIX}{kind}-{family}-{rows_digest(rows)}-{os.getpid()}-{time.time_ns()}"
    folder = root / name
    folder.mkdir()
    return folder


def finish(folder: Path, kind: str, family: str, rows: np.ndarray, describe: dict) -> Entry:
    """Write ``meta.json`` into a build folder and move it to its final name. A concurrent build of
    the same entry that finished first wins; this one's folder is then removed."""
    final = rows_root() / f"{kind}-{family}-{rows_digest(rows)}"
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    meta = {
        "format": FORMAT,
        "kind": kind,
        "family": family,
        "rows": int(len(rows)),
        "bytes": size,
        "created": time.time(),
        "describe": describe,
    }
    atomic_write_text(folder / META, json.dumps(meta, indent=1, sort_keys=True))
    try:
        os.rename(folder, final)
    except OSError:  # another process finished the same entry first (the folder exists)
        shutil.rmtree(folder, ignore_errors=True)
        existing = _read(final)
        if existing is None:
            raise
        return existing
    return Entry(final, meta)


def remove(entry_or_folder: Entry | Path) -> int:
    """Delete an entry (or an unfinished folder); returns the bytes freed."""
    folder = entry_or_folder.folder if isinstance(entry_or_folder, Entry) else entry_or_folder
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    shutil.rmtree(folder, ignore_errors=True)
    return size
