"""A download as it lies on disk (a :class:`SourceTable`), the :class:`Layout` that reads it, and
the steps every real dataset takes from that table to :class:`~fedbench.data.base.ModalData`.

The table keeps everything the download has (all plots of a movie, all ten captions of a bird,
its own split names) and nothing an option decides; options (a paper's cut, which caption, the
validation share) apply when a run builds its ModalData. So one prepared copy serves every
variant, and the prepared copy and the raw files give the same rows.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedbench import checks
from fedbench.data.base import MetricSpec, ModalData
from fedbench.data.layouts import Archive, Problems
from fedbench.errors import ConfigError, DataError


@dataclass
class SourceTable:
    """One row per sample of a download. ``labels``: an int per row, or (MM-IMDb) a list of
    genre names; ``texts``: every text the row has (plots, captions; [] for image-only data);
    ``images``: :class:`EncodedImages` or a uint8 array [N, H, W, 3]; ``extra``: more per-row
    columns (CIFAR-100's coarse label); ``meta``: plain facts (which layout, extra label names)."""

    ids: list[str]
    splits: list[str]
    labels: list
    texts: list[list[str]]
    images: Any
    label_names: list[str]
    layout: str
    extra: dict[str, list] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    stamp: str = ""
    prepared: bool = False

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, *names: str) -> np.ndarray:
        wanted = set(names)
        return np.array([i for i, s in enumerate(self.splits) if s in wanted], dtype=np.int64)

    def split_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.splits:
            counts[s] = counts.get(s, 0) + 1
        return counts


@dataclass(frozen=True)
class Layout:
    """How to read one dataset's download. ``scan(root, problems)`` returns the table (adding a
    line to ``problems`` for anything missing); ``index(root)`` lists the files and folders whose
    state identifies the download (cheap: no image is opened), so a prepared copy is reused only
    while they are unchanged; ``archives`` are verified against their published checksums."""

    name: str
    download: str  # one line: what to download and from where
    scan: Callable[[Path, Problems], SourceTable | None]
    index: Callable[[Path], list[Path]]
    archives: tuple[Archive, ...] = ()
    # samples of the complete release, before any are dropped (a smaller count is reported, not refused)
    full_rows: int = 0


LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    LAYOUTS[layout.name] = layout
    return layout


def stamp_of(root: Path, paths: list[Path]) -> str:
    """A hash of the index: names and sizes of files, contents of small files, entry counts of
    folders. Changes when a split file is edited or a folder gains or loses files."""
    digest = hashlib.sha256()
    for path in sorted(set(paths)):
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        if path.is_dir():
            digest.update(f"{rel}/:{sum(1 for _ in path.iterdir())}\n".encode())
        elif path.is_file():
            size = path.stat().st_size
            digest.update(f"{rel}:{size}\n".encode())
            if size <= 16 << 20:
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# ---- images


class PathBlobs:
    """Encoded images read from files, one path per row (None: no image)."""

    def __init__(self, paths: list[Path | None]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> bytes | None:
        path = self.paths[i]
        return None if path is None else Path(path).read_bytes()

    def name(self, i: int) -> str:
        return str(self.paths[i])


class ArrayBlobs:
    """Encoded images held in an arrow binary array (a hub parquet copy read into memory)."""

    def __init__(self, array, ids: list[str]):
        self.array, self.ids = array, ids

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i: int) -> bytes | None:
        return self.array[i].as_py()

    def name(self, i: int) -> str:
        return f"row {self.ids[i]}"


@dataclass
class EncodedImages:
    """Images kept encoded (JPEG/PNG bytes) and decoded when a row is asked for; ``rows`` maps
    this source's rows onto the blobs (a subset or a repetition), ``size`` resizes to a square.
    ``origin`` names the blobs and the resize, without the rows: caches of decoded pixels are
    keyed by it and the blob rows, so every subset of one download shares them. Reads are
    thread-safe (pixel caches decode in parallel threads)."""

    blobs: Any
    key: str
    size: int | None = None
    rows: np.ndarray | None = None
    origin_key: str = ""

    def __len__(self) -> int:
        return len(self.blobs) if self.rows is None else len(self.rows)

    def encoded(self, i: int) -> bytes | None:
        return self.blobs[int(i if self.rows is None else self.rows[i])]

    def __getitem__(self, i: int) -> np.ndarray | None:
        from PIL import Image

        blob = self.encoded(i)
        if blob is None:
            return None
        try:
            with Image.open(io.BytesIO(blob)) as im:
                im = im.convert("RGB")
                if self.size is not None:
                    im = im.resize((self.size, self.size), Image.BICUBIC)
                return np.asarray(im, dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as err:  # what Pillow raises for damaged files
            where = self.blobs.name(int(i if self.rows is None else self.rows[i]))
            raise DataError(
                f"cannot decode the image {where} ({str(err)[:60]}); `fedbench data prepare` checks every "
                "image and lists the damaged ones"
            ) from err

    def take(self, rows: np.ndarray, key: str, size: int | None, origin_key: str = "") -> EncodedImages:
        base = np.arange(len(self.blobs)) if self.rows is None else self.rows
        return EncodedImages(self.blobs, key, size, base[np.asarray(rows, dtype=np.int64)], origin_key)

    def origin(self) -> tuple[str, np.ndarray, EncodedImages]:
        """(origin key, each row's blob row, a source over every blob): see the class docstring."""
        rows = (
            np.arange(len(self.blobs), dtype=np.int64)
            if self.rows is None
            else np.asarray(self.rows, dtype=np.int64)
        )
        return (
            self.origin_key or self.key,
            rows,
            EncodedImages(self.blobs, self.origin_key or self.key, self.size),
        )


@dataclass
class PixelImages:
    """Decoded images of one shape ([M, H, W, 3] uint8, e.g. CIFAR's prepared array, mapped from
    disk), seen through ``rows`` (this source's row i is ``array[rows[i]]``), resized on access."""

    array: np.ndarray
    key: str
    size: int | None = None
    rows: np.ndarray | None = None
    origin_key: str = ""

    def __len__(self) -> int:
        return len(self.array) if self.rows is None else len(self.rows)

    def _row(self, i: int) -> np.ndarray:
        return self.array[int(i if self.rows is None else self.rows[i])]

    def __getitem__(self, i: int) -> np.ndarray:
        if self.size is None or self.size == self.array.shape[1]:
            return self._row(i)
        from PIL import Image

        im = Image.fromarray(self._row(i)).resize((self.size, self.size), Image.BICUBIC)
        return np.asarray(im, dtype=np.uint8)

    def load_all(self) -> np.ndarray:
        if self.size is None or self.size == self.array.shape[1]:
            return self.array if self.rows is None else self.array[self.rows]
        return np.stack([self[i] for i in range(len(self))])

    def origin(self) -> tuple[str, np.ndarray, PixelImages]:
        rows = (
            np.arange(len(self.array), dtype=np.int64)
            if self.rows is None
            else np.asarray(self.rows, dtype=np.int64)
        )
        return (
            self.origin_key or self.key,
            rows,
            PixelImages(self.array, self.origin_key or self.key, self.size),
        )


def decode_all(blobs, shape: tuple[int, int]) -> np.ndarray:
    """Encoded images of one known size decoded into one uint8 array (small images only)."""
    from PIL import Image

    out = np.empty((len(blobs), *shape, 3), dtype=np.uint8)
    for i in range(len(blobs)):
        with Image.open(io.BytesIO(blobs[i])) as im:
            im = im.convert("RGB")
            out[i] = np.asarray(im if im.size == shape[::-1] else im.resize(shape[::-1], Image.BICUBIC))
    return out


# ---- splits


def stratified_split(
    labels: np.ndarray, fraction: float, seed: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions into ``labels`` split into (kept, held out): within each class a seeded shuffle
    holds out round(fraction * n) samples, never the class's last one, so every split keeps the
    class mix of the whole."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(list(seed))
    held = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n = min(int(np.floor(fraction * len(members) + 0.5)), len(members) - 1)
        held.append(members[:n])
    out = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(labels)), out)
    return keep, out


def carve_val(
    train: np.ndarray, labels: np.ndarray, fraction: float, split_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A validation split carved from ``train`` rows, stratified by ``labels`` and seeded."""
    keep, held = stratified_split(np.asarray(labels)[train], fraction, (split_seed, 1))
    return train[keep], train[held]


def check_fraction(name: str, value: float) -> None:
    checks.within(f"data.options.{name}", value, 0, 0.5, open_lo=True, open_hi=True, hint="0.1")


def check_image_size(value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(
            f"data.options.image_size: {value!r} is not valid; give a size in pixels >= 8 or null (keep the "
            "original)"
        )
    checks.at_least("data.options.image_size", value, 8, null="keep the original")


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    checks.choice(f"data.options.{name}", value, allowed)


# ---- ModalData


def assemble(
    source: SourceTable,
    *,
    name: str,
    rows: np.ndarray,
    labels: np.ndarray,
    label_names: list[str],
    texts: list[str],
    splits: dict[str, np.ndarray],
    metric: MetricSpec,
    options: Any,
    split_seed: int,
    info: dict[str, Any],
    groups: np.ndarray | None = None,
) -> ModalData:
    """ModalData over ``rows`` of ``source`` (positions into it); ``splits`` index the result.

    The fingerprint names the content (layout, index stamp, options, split seed) but not the
    folder, so moving the data keeps the feature caches."""
    opts = {k: v for k, v in asdict(options).items() if k != "root"}
    digest = hashlib.sha256(np.asarray(rows, dtype=np.int64).tobytes()).hexdigest()[:12]
    ident = f"{name}/{source.layout}/{source.stamp[:16]}/{json.dumps(opts, sort_keys=True)}/split{split_seed}"
    size = getattr(options, "image_size", None)
    origin = f"{name}/{source.layout}/{source.stamp[:16]}/size{size}"  # the images before any row is chosen
    key = f"{name}/{source.layout}/{source.stamp[:16]}/rows{digest}/size{size}"
    if isinstance(source.images, np.ndarray):
        whole = len(rows) == len(source.images) and np.array_equal(rows, np.arange(len(rows)))
        images: Any = PixelImages(
            source.images, key, size, None if whole else np.asarray(rows, dtype=np.int64), origin
        )
    else:
        images = source.images.take(rows, key, size, origin)
    splits = {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in splits.items()}
    base_info = {
        "layout": source.layout,
        "prepared": source.prepared,
        "source_rows": len(source),
        "source_splits": source.split_counts(),
        "split_counts": {k: int(len(v)) for k, v in splits.items()},
        "modalities": ["image", "text"] if any(texts) else ["image"],
    }
    return ModalData(
        name=name,
        labels=labels,
        label_names=list(label_names),
        texts=list(texts),
        images=images,
        splits=splits,
        metric=metric,
        groups=groups,
        fingerprint=ident,
        info={**base_info, **info},
    )
