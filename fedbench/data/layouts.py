"""What every loader of a real download shares: finding its folder, saying what is missing and
where to get it, checking archives and images, and reading hub parquet copies.

Problems are collected rather than raised one by one, so ``fedbench data prepare`` can list
everything wrong with a download in one pass (one line per kind of problem, each naming the file
and the fix), while a run that reads an unprepared download stops at the first of them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fedbench.errors import ConfigError, DataError

GUIDE = "docs/real-benchmarks.md"
STANDIN_MARKER = (
    ".standin.json"  # written by benchmarks/standins (and the tests' fixtures) into a stand-in's root
)
EXAMPLES = 3  # file names quoted in a line about many missing files


class DataProblems(DataError):
    """A download is incomplete or damaged. ``lines`` holds one line per kind of problem; ``str``
    is the first of them (the CLI's one line) with a pointer to the full list."""

    def __init__(self, name: str, root: Path, lines: list[str]):
        self.lines = list(lines)
        more = ""
        if len(lines) > 1:
            more = f" (and {len(lines) - 1} more; `fedbench data prepare {name} --root {root}` lists them)"
        super().__init__(f"{name}: {lines[0]}{more}")


class Problems:
    """Collects one line per problem found in the download of ``name`` under ``root``."""

    def __init__(self, name: str, root: Path):
        self.name, self.root, self.lines = name, Path(root), []

    def __bool__(self) -> bool:
        return bool(self.lines)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def missing(self, path: Path, what: str, fix: str) -> None:
        self.add(f"missing {what}: {path}; {fix}")

    def missing_many(self, folder: Path, names: list[str], total: int, what: str, fix: str) -> None:
        """One line for many absent files of one kind (a partly extracted archive)."""
        if names:
            shown = ", ".join(names[:EXAMPLES]) + (", ..." if len(names) > EXAMPLES else "")
            self.add(f"missing {len(names):,} of {total:,} {what} under {folder} ({shown}); {fix}")

    def raise_if_any(self) -> None:
        if self.lines:
            raise DataProblems(self.name, self.root, self.lines)


def resolve_root(root: str, name: str, download: str) -> Path:
    """The dataset folder (``~`` and ``$VARS`` expanded; relative to the current directory).

    A missing folder is one line with where to download the data; the folder is never created
    (nothing downloads at run time)."""
    if not root:
        raise ConfigError(f"data.options.root: {name} needs the folder of your download; {download}")
    path = Path(os.path.expandvars(os.path.expanduser(root)))
    if not path.is_dir():
        raise DataError(f"{name}: data folder {path} does not exist; {download} (see {GUIDE})")
    return path


def find_base(root: Path, marker: str, subdirs: Iterable[str]) -> Path | None:
    """The folder holding ``marker``: the root itself or one of the archive's own top folders."""
    for sub in ("", *subdirs):
        if (root / sub / marker).exists():
            return root / sub
    return None


def find_named_dir(root: Path, name: str, depth: int = 2) -> Path | None:
    """The first folder called ``name`` within ``depth`` levels under ``root`` (sorted, so stable)."""
    level = [root]
    for step in range(depth + 1):
        for folder in level:
            if folder.name == name and folder.is_dir():
                return folder
        if step < depth:
            level = sorted(p for f in level for p in f.iterdir() if p.is_dir() and not p.name.startswith("."))
    return None


def listing(folder: Path) -> set[str]:
    """File names in ``folder`` (empty when it does not exist): one directory read, then set
    lookups, instead of one stat per expected file."""
    try:
        return {e.name for e in os.scandir(folder)}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def standin_splits(base: Path, name: str) -> dict[str, int] | None:
    """{split: rows} a stand-in of ``name`` states in its marker (in ``base`` or the folder above
    it), or None for a real download. The release's own counts do not apply to a stand-in, which
    is the release scaled down."""
    for folder in (base, base.parent):
        try:
            marker = json.loads((folder / STANDIN_MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        splits = marker.get("splits") if isinstance(marker, dict) and marker.get("dataset") == name else None
        if isinstance(splits, dict) and all(isinstance(v, int) for v in splits.values()):
            return dict(splits)
    return None


def read_lines(path: Path, what: str, problems: Problems, fix: str) -> list[str] | None:
    """The non-empty lines of a small text file of the download (label names, an index), stripped;
    None with one problem line naming the file when it is not UTF-8 text (a garbage or binary file
    would otherwise end in a UnicodeDecodeError traceback)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        problems.add(
            f"unreadable {what}: {path} is not UTF-8 text (byte {err.start:,} is "
            f"0x{err.object[err.start]:02x}); {fix}"
        )
        return None
    except OSError as err:
        problems.add(f"unreadable {what}: {path} ({err.strerror}); {fix}")
        return None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_json(path: Path, problems: Problems, fix: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        problems.add(f"unreadable {path.name}: {path} ({type(err).__name__}: {str(err)[:80]}); {fix}")
        return None


@dataclass(frozen=True)
class Archive:
    """A download as published, with its known checksum, verified when it sits in the root."""

    filename: str
    checksum: str
    url: str
    algorithm: str = "md5"


def checksum_of(path: Path, algorithm: str = "md5") -> str:
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_archives(root: Path, archives: Iterable[Archive], problems: Problems) -> None:
    for archive in archives:
        path = root / archive.filename
        if path.is_file():
            actual = checksum_of(path, archive.algorithm)
            if actual != archive.checksum:
                problems.add(
                    f"wrong checksum: {path} has {archive.algorithm} {actual}, the published file has "
                    f"{archive.checksum}; the download is damaged or incomplete, download it again from "
                    f"{archive.url}"
                )


def image_problem(blob: bytes | None, deep: bool = False) -> str | None:
    """Why ``blob`` is not a whole image, or None. A download cut short loses its tail, so the
    end-of-image marker (JPEG) or IEND chunk (PNG) is checked without decoding; ``deep`` also
    decodes every pixel (slow, catches damage inside the file)."""
    from PIL import Image, ImageFile

    if not blob:
        return "empty file"
    if blob[:2] == b"\xff\xd8" and b"\xff\xd9" not in blob[-4096:]:
        return f"truncated (JPEG of {len(blob):,} bytes without its end-of-image marker)"
    if blob[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in blob[-64:]:
        return f"truncated (PNG of {len(blob):,} bytes without its IEND chunk)"
    try:
        with Image.open(io.BytesIO(blob)) as im:
            fmt = im.format
            if deep:
                saved, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
                try:
                    im.load()
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = saved
    except Exception as err:  # PIL raises many types for damaged files
        kind = "truncated" if "truncated" in str(err) else "unreadable"
        return f"{kind} ({type(err).__name__}: {str(err)[:60]})"
    return None if fmt else "unreadable (not an image format Pillow knows)"


# ---- hub parquet copies (``huggingface-cli download <id> --repo-type dataset --local-dir ROOT``)


def find_parquet(root: Path, split: str) -> list[Path]:
    """Parquet files of one split under ``root``: the split name as a whole word of the path
    (``plain_text/train-00000-of-00001.parquet``, ``data/valid-....parquet``,
    ``tinyimagenet_train.parquet``), so ``test`` never picks up ``test_seen``."""
    pattern = re.compile(rf"(^|[-_./]){re.escape(split)}([-.]|$)")
    found = []
    for path in sorted(root.rglob("*.parquet")):
        rel = path.relative_to(root).as_posix()
        if not any(part.startswith(".") for part in rel.split("/")) and pattern.search(
            rel[: -len(".parquet")]
        ):
            found.append(path)
    return found


def read_parquet(files: list[Path], columns: list[str], problems: Problems, fix: str):
    """One arrow table from ``files`` (or None with a problem line naming the file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for path in files:
        try:
            table = pq.read_table(path)
        except Exception as err:  # pyarrow raises ArrowInvalid / OSError for damaged files
            problems.add(f"unreadable parquet file: {path} ({str(err)[:80]}); {fix}")
            return None
        absent = [c for c in columns if c not in table.column_names]
        if absent:
            problems.add(
                f"parquet file {path} has no column {absent[0]!r} (has {', '.join(table.column_names)}); "
                f"{fix}"
            )
            return None
        tables.append(table.select(columns))
    return pa.concat_tables(tables) if tables else None


def hub_class_names(files: list[Path], column: str) -> list[str] | None:
    """The ClassLabel names that ``datasets`` stores in a parquet file's schema metadata."""
    import pyarrow.parquet as pq

    for path in files:
        meta = pq.read_schema(path).metadata or {}
        try:
            info = json.loads(meta[b"huggingface"])
            features = info.get("info", {}).get("features", {})
            names = features.get(column, {}).get("names")
        except (KeyError, ValueError, AttributeError):
            continue
        if names:
            return [str(n) for n in names]
    return None


def hub_image_bytes(table, column: str, problems: Problems, what: str, fix: str):
    """The encoded bytes of a ``datasets`` Image column (a struct of bytes and path), or a binary
    column as is. Rows that only point at a file outside the parquet are a problem."""
    import pyarrow as pa

    col = table.column(column).combine_chunks()
    if pa.types.is_struct(col.type):
        col = col.field("bytes")
    nulls = col.null_count
    if nulls:
        problems.add(f"{nulls:,} {what} in the parquet copy hold no image bytes (only a path); {fix}")
    return col
