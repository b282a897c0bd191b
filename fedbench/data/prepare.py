"""``fedbench data prepare`` and ``fedbench data list``: check a download once, then convert it to
one memory-mapped arrow file that every run reads instead of tens of thousands of small files.

The prepared copy lives in ``<root>/.fedbench/<name>/`` (or, when the data folder is read-only,
``$FEDBENCH_CACHE/datasets/<name>-<hash of the folder>/``): ``rows-<stamp>.arrow`` (an arrow
stream, readable with ``datasets.Dataset.from_file``; images stay encoded and are decoded when a
row is asked for) and ``meta.json``, written last, which names the rows file. A write that fails or
finds a damaged image leaves the previous state as it was. A prepared copy is used only while the
download's index files (split files, label files, folder sizes) are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fedbench.data.layouts import Problems, check_archives, image_problem, resolve_root
from fedbench.data.sources import LAYOUTS, EncodedImages, SourceTable, stamp_of
from fedbench.errors import DataError

FORMAT = 1
META = "meta.json"
BATCH = 256
_SOURCES: dict[tuple[str, str, str | None], SourceTable] = {}


def locations(name: str, root: Path) -> list[Path]:
    """Where a prepared copy of ``name`` from ``root`` may live, in the order they are tried."""
    from fedbench.cache.folder import cache_dir

    tag = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:12]
    return [Path(root) / ".fedbench" / name, cache_dir() / "datasets" / f"{name}-{tag}"]


class ArrowFileBlobs:
    """Encoded images in a prepared rows file, memory-mapped on first use (and re-opened, not
    copied, when sent to another process)."""

    def __init__(self, path: Path, ids: list[str]):
        self.path, self.ids, self._col = Path(path), ids, None

    def _column(self):
        if self._col is None:
            import pyarrow as pa

            self._col = pa.ipc.open_stream(pa.memory_map(str(self.path))).read_all().column("image")
        return self._col

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> bytes | None:
        return self._column()[int(i)].as_py()

    def name(self, i: int) -> str:
        return f"row {self.ids[i]}"

    def __getstate__(self):
        return {"path": self.path, "ids": self.ids, "_col": None}


def _read_meta(folder: Path, name: str) -> dict | None:
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None
    rows = folder / str(meta.get("rows_file", ""))
    ok = meta.get("format") == FORMAT and meta.get("dataset") == name and rows.is_file()
    return meta if ok and rows.stat().st_size == meta.get("rows_bytes") else None


def load_prepared(name: str, root: Path, stamp: str | None) -> SourceTable | None:
    """The prepared table of ``name`` whose stamp is ``stamp`` (any stamp when None: the raw
    files are gone and the prepared copy is all there is), or None."""
    import pyarrow as pa

    for folder in locations(name, root):
        meta = _read_meta(folder, name)
        if meta is None:
            continue
        if stamp is not None and meta["stamp"] != stamp:
            warnings.warn(
                f"{name}: the prepared copy in {folder} is older than the files in {root}; reading the files "
                f"(run `fedbench data prepare {name} --root {root}` to refresh it)",
                stacklevel=2,
            )
            continue
        path = folder / meta["rows_file"]
        table = pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
        ids = table.column("id").to_pylist()
        if meta["image"]["kind"] == "pixels":
            col = table.column("image").combine_chunks()
            buf = np.frombuffer(col.buffers()[1], dtype=np.uint8)
            size = int(np.prod(meta["image"]["shape"]))
            images = buf[col.offset * size : (col.offset + len(col)) * size].reshape(
                len(col), *meta["image"]["shape"]
            )
        else:
            images = EncodedImages(ArrowFileBlobs(path, ids), key="")
        return SourceTable(
            ids=ids,
            splits=table.column("split").to_pylist(),
            labels=table.column("label").to_pylist(),
            texts=table.column("texts").to_pylist(),
            images=images,
            label_names=meta["label_names"],
            layout=meta["layout"],
            extra={k: table.column(k).to_pylist() for k in meta["extra"]},
            meta=meta["meta"],
            stamp=meta["stamp"],
            prepared=True,
        )
    return None


def load_source(name: str, root: Path) -> SourceTable:
    """What a build reads: the prepared copy when it matches the files, else the files themselves
    (slower; any problem is raised as one line naming the first missing piece)."""
    layout = LAYOUTS[name]
    index = [p for p in layout.index(root) if p.exists()]
    stamp = stamp_of(root, index) if index else None
    key = (name, str(Path(root).resolve()), stamp)
    if key not in _SOURCES:
        source = load_prepared(name, root, stamp)
        if source is None:
            problems = Problems(name, root)
            source = layout.scan(root, problems)
            problems.raise_if_any()
            assert source is not None
            source.stamp = stamp or ""
        _SOURCES[key] = source
    return _SOURCES[key]


def _arrow_columns(source: SourceTable, rows: range, images: list) -> dict:
    import pyarrow as pa

    label = source.labels[rows.start] if len(source) else 0
    label_type = pa.list_(pa.string()) if isinstance(label, list) else pa.int64()
    cols = {
        "id": pa.array([source.ids[i] for i in rows], pa.string()),
        "split": pa.array([source.splits[i] for i in rows], pa.string()),
        "label": pa.array([source.labels[i] for i in rows], label_type),
        "texts": pa.array([source.texts[i] for i in rows], pa.list_(pa.string())),
    }
    if isinstance(source.images, np.ndarray):
        width = int(np.prod(source.images.shape[1:]))
        data = pa.py_buffer(np.ascontiguousarray(source.images[rows.start : rows.stop]).tobytes())
        cols["image"] = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(rows), [None, data])
    else:
        cols["image"] = pa.array(images, pa.binary())
    for k, values in source.extra.items():
        cols[k] = pa.array([values[i] for i in rows])
    return cols


def _write_rows(
    source: SourceTable, path: Path, deep: bool, problems: Problems, echo: Callable, fix: str, skip: bool
) -> list[str]:
    """Stream the table into ``path`` atomically, checking every image on the way; damaged images
    abort the write (the temporary file is removed) after all of them are found, unless ``skip``
    stores them as absent images (for a release that itself holds broken files). Returns the
    names of the images stored as absent."""
    import pyarrow as pa

    from fedbench.safe_io import atomic_write

    damaged: dict[str, list[str]] = {}
    encoded = not isinstance(source.images, np.ndarray)

    def write(fh) -> None:
        writer, last = None, time.monotonic()
        for start in range(0, len(source), BATCH):
            rows = range(start, min(len(source), start + BATCH))
            blobs = []
            for i in rows if encoded else ():
                try:
                    blob = source.images.encoded(i)
                except OSError as err:
                    blob, why = None, f"unreadable ({err.strerror})"
                else:
                    why = image_problem(blob, deep)
                if why is not None:
                    damaged.setdefault(why.split(" ")[0], []).append(source.images.blobs.name(i))
                blobs.append(None if why is not None and skip else blob)
            batch = pa.record_batch(_arrow_columns(source, rows, blobs))
            writer = writer or pa.ipc.new_stream(fh, batch.schema)
            writer.write_batch(batch)
            if time.monotonic() - last > 10:
                echo(f"  {rows.stop:,} of {len(source):,} rows checked and written", file=sys.stderr)
                last = time.monotonic()
        if writer is not None:
            writer.close()
        for kind, names in damaged.items() if not skip else ():
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            problems.add(
                f"{kind} images: {len(names):,} of {len(source):,} ({shown}); extract them again ({fix}), "
                "or pass --skip-damaged to keep them as missing images"
            )
        if damaged and not skip:
            raise _Damaged

    try:
        atomic_write(path, write)
    except _Damaged:
        pass
    return [n for names in damaged.values() for n in names]


class _Damaged(Exception):
    pass


def prepare_dataset(
    name: str,
    root: str | Path,
    *,
    deep: bool = False,
    force: bool = False,
    skip_damaged: bool = False,
    echo: Callable = print,
) -> Path:
    """Check the download of ``name`` in ``root`` and write its prepared copy; returns its folder.
    ``deep`` decodes every image (slow) instead of checking its ends; ``skip_damaged`` keeps damaged
    images as absent ones instead of refusing; ``echo`` is print-like.

    Every problem found (a missing file, a wrong archive checksum, a truncated image) is echoed
    as one line on stderr and the call raises :class:`DataError` without writing anything."""
    from fedbench.data.registry import DATASETS

    DATASETS.get(name)  # an unknown name is one line listing the known ones
    if name not in LAYOUTS:
        raise DataError(f"{name}: built into fedbench from installed packages; there is nothing to prepare")
    layout = LAYOUTS[name]
    root = resolve_root(str(root), name, layout.download)
    index = [p for p in layout.index(root) if p.exists()]
    stamp = stamp_of(root, index) if index else ""
    target = _writable(locations(name, root))
    meta = _read_meta(target, name)
    if meta is not None and meta["stamp"] == stamp and not force:
        echo(f"{name}: already prepared in {target} ({meta['rows']:,} rows); --force prepares it again")
        return target
    problems = Problems(name, root)
    check_archives(root, layout.archives, problems)
    source = layout.scan(root, problems)
    if source is None and not problems:
        problems.add(f"no download found in {root}; {layout.download}")
    if source is not None and not problems and len(source) == 0:
        problems.add(f"no samples found in {root}; {layout.download}")
    if source is not None and not problems:
        source.stamp = stamp
        created = not target.exists()
        target.mkdir(parents=True, exist_ok=True)
        rows_file = f"rows-{stamp[:16]}.arrow"
        skipped = _write_rows(source, target / rows_file, deep, problems, echo, layout.download, skip_damaged)
        if problems and created:
            _remove_empty(target, stop=root)
    if problems or source is None:
        for line in problems.lines:
            echo(f"{name}: {line}", file=sys.stderr)
        raise DataError(
            f"{name}: {len(problems.lines)} problem(s) in {root}; nothing was written (fix them and run this "
            "again)"
        )
    meta = _meta(name, source, root, rows_file, (target / rows_file).stat().st_size)
    meta["damaged_images"] = skipped
    from fedbench.safe_io import atomic_write_text

    atomic_write_text(target / META, json.dumps(meta, indent=1))
    for old in target.glob("rows-*.arrow"):
        if old.name != rows_file:
            old.unlink(missing_ok=True)

    remember(name, root, target, meta)
    counts = ", ".join(f"{k} {v:,}" for k, v in source.split_counts().items())
    echo(f"{name}: prepared {len(source):,} rows ({counts}) from the {source.layout} layout into {target}")
    if skipped:
        echo(
            f"{name}: note: {len(skipped):,} damaged images kept as missing images "
            f"({', '.join(skipped[:3])}); listed in {target / META}"
        )
    found = release_rows(source)
    if layout.full_rows and found < layout.full_rows:
        echo(f"{name}: note: the full release has {layout.full_rows:,} samples; this download has {found:,}")
    return target


def release_rows(source: SourceTable) -> int:
    """The download's samples counted as ``Layout.full_rows`` counts the release's: before a loader
    drops the ones it cannot use (Food-101 keeps 90,656 of its 90,704 images: 48 have no text)."""
    return len(source) + int(source.meta.get("dropped_without_text", 0))


def _meta(name: str, source: SourceTable, root: Path, rows_file: str, size: int) -> dict:
    pixels = isinstance(source.images, np.ndarray)
    from importlib.metadata import version

    return {
        "format": FORMAT,
        "dataset": name,
        "layout": source.layout,
        "stamp": source.stamp,
        "rows": len(source),
        "splits": source.split_counts(),
        "label_names": source.label_names,
        "extra": sorted(source.extra),
        "meta": source.meta,
        "image": {
            "kind": "pixels" if pixels else "encoded",
            "shape": list(source.images.shape[1:]) if pixels else None,
        },
        "rows_file": rows_file,
        "rows_bytes": size,
        "root": str(root),
        "fedbench": version("fedbench"),
        "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _writable(candidates: list[Path]) -> Path:
    for folder in candidates:
        probe = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if probe is not None and os.access(probe, os.W_OK | os.X_OK):
            return folder
    raise DataError(
        f"cannot write a prepared copy in {candidates[0]} nor {candidates[-1]}; make one writable or set "
        "FEDBENCH_CACHE"
    )


def _remove_empty(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _index_path() -> Path:
    from fedbench.cache.folder import cache_dir

    return cache_dir() / "datasets" / "prepared.json"


def remember(name: str, root: Path, target: Path, meta: dict) -> None:
    """Record a prepared copy in the index, so ``data list`` can find it."""
    from fedbench.safe_io import atomic_write_text

    index = prepared_index()
    where = str(Path(root).resolve())
    index[f"{name}|{where}"] = {
        "dataset": name,
        "root": where,
        "dir": str(target),
        "rows": meta["rows"],
        "layout": meta["layout"],
    }
    atomic_write_text(_index_path(), json.dumps(index, indent=1, sort_keys=True))


def prepared_index() -> dict:
    try:
        data = json.loads(_index_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
