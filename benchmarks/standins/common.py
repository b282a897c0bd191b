"""What every dataset stand-in shares: the output folder (refused when it holds something that is
not a stand-in), a writer that counts files and bytes as it streams them to disk, the report, and
the rule that scales the real per-class counts down.

Scaling rule (the tests restate it from the real numbers): a split's total becomes
``round(real_total * scale)``, shared among the classes in proportion to their real counts (largest
remainder), and every class keeps at least :data:`MIN_PER_CLASS` rows of each split, so a class
of two splits has six rows and the loaders' stratified 10% carving (which rounds, and never takes a
class's last row) still gives it one test and one validation row. At scale 1 the real counts are
written exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedbench.data.layouts import STANDIN_MARKER

MIN_PER_CLASS = 3
# written last: names what the folder holds (so --overwrite only ever deletes a stand-in) and its split
# sizes, which fedbench's loaders check instead of the release's (fedbench.data.layouts.standin_splits)
MARKER = STANDIN_MARKER


@dataclass
class Report:
    """What one generator wrote: ``rows`` the samples the release has (image files), ``splits``
    the rows per split as the release names them, ``notes`` anything else a reader should know."""

    name: str
    root: Path
    rows: int
    splits: dict[str, int]
    files: int = 0
    bytes: int = 0
    disk: int = 0  # allocated on disk (what du counts): small files round up to a block each
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)

    def line(self) -> str:
        parts = ", ".join(f"{k} {v:,}" for k, v in self.splits.items())
        notes = "".join(f"; {k} {v:,}" if isinstance(v, int) else f"; {k} {v}" for k, v in self.notes.items())
        size = f"{self.bytes / 1e6:,.1f} MB ({self.disk / 1e6:,.1f} MB on disk)"
        what = f"{self.name}: {self.rows:,} rows ({parts}{notes})"
        return f"{what}; {self.files:,} files, {size} in {self.seconds:.1f} s -> {self.root}"


class Writer:
    """Writes files under ``root``, creating folders once each, and counts files and bytes."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.files = 0
        self.bytes = 0
        self._dirs: set[Path] = set()

    def path(self, rel: str) -> Path:
        """The absolute path of ``rel``, its folder created."""
        path = self.root / rel
        if path.parent not in self._dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        return path

    def blob(self, rel: str, data: bytes) -> None:
        with open(self.path(rel), "wb") as fh:
            fh.write(data)
        self.files += 1
        self.bytes += len(data)

    def chunks(self, rel: str, parts) -> None:
        """One file written from an iterable of byte strings (a large binary file, kept out of RAM)."""
        with open(self.path(rel), "wb") as fh:
            for part in parts:
                fh.write(part)
                self.bytes += len(part)
        self.files += 1

    def text(self, rel: str, text: str) -> None:
        self.blob(rel, text.encode("utf-8"))

    def json(self, rel: str, obj, **kwargs) -> None:
        self.text(rel, json.dumps(obj, **kwargs))

    def lines(self, rel: str, lines: Sequence[str]) -> None:
        self.text(rel, "".join(f"{line}\n" for line in lines))

    def counted(self, rel: str) -> None:
        """Count a file some other library wrote at :meth:`path` (scipy's savemat)."""
        self.files += 1
        self.bytes += (self.root / rel).stat().st_size


def rng_for(name: str, seed: int) -> np.random.Generator:
    """One generator per (dataset, seed), so two datasets made with the same seed still differ."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def check_scale(scale: float) -> float:
    scale = float(scale)
    if not 0 < scale <= 1:
        raise ValueError(f"scale {scale} is outside (0, 1]; it is the fraction of the real row counts")
    return scale


def even(total: int, parts: int) -> list[int]:
    """``total`` shared as evenly as possible by ``parts`` (the first ones get the remainder)."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def allocate(real: Sequence[int], scale: float, minimum: int = MIN_PER_CLASS) -> list[int]:
    """Per-class counts at ``scale`` (see the module docstring): exactly ``real`` at scale 1."""
    real_arr = np.asarray(real, dtype=np.int64)
    if scale >= 1:
        return real_arr.tolist()
    total = int(real_arr.sum())
    target = int(round(total * scale))
    quota = real_arr * target / max(total, 1)
    base = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - base), kind="stable")
    base[order[: target - int(base.sum())]] += 1
    return np.maximum(base, minimum).tolist()


def scaled(real: int, scale: float, minimum: int = 1) -> int:
    """A single count at ``scale`` (a split without classes), at least ``minimum``."""
    return real if scale >= 1 else max(minimum, int(round(real * scale)))


def open_root(root: Path, name: str, overwrite: bool) -> Writer:
    """A writer on an empty ``root``. A non-empty folder is refused, unless ``overwrite`` and it is
    a stand-in (its marker file names ``name``): then it is deleted first. Anything else is never
    deleted, so a mistyped path cannot wipe real data."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} is a file, not a folder")
    if root.is_dir() and any(root.iterdir()):
        marker = root / MARKER
        ours = marker.is_file() and json.loads(marker.read_text()).get("dataset") == name
        if not overwrite:
            raise FileExistsError(
                f"{root} is not empty; pass overwrite=True (--overwrite) to replace a stand-in there"
            )
        if not ours:
            raise FileExistsError(
                f"{root} is not empty and holds no {name} stand-in ({MARKER}); refusing to delete it"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    return Writer(root)


def disk_usage(root: Path) -> int:
    """Bytes allocated under ``root`` (st_blocks, as du counts them)."""
    total, stack = 0, [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                total += entry.stat(follow_symlinks=False).st_blocks * 512
    return total


def finish(out: Writer, report: Report, started: float, scale: float, seed: int) -> Report:
    """Write the marker (what, which scale and seed, the counts) and complete the report."""
    report.seconds = time.perf_counter() - started
    report.files, report.bytes, report.disk = out.files, out.bytes, disk_usage(out.root)
    marker = {
        "dataset": report.name,
        "scale": scale,
        "seed": seed,
        "rows": report.rows,
        "splits": report.splits,
        "notes": report.notes,
        "files": out.files,
        "bytes": out.bytes,
    }
    (out.root / MARKER).write_text(json.dumps(marker, indent=1))
    return report
