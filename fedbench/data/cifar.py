"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009): 32x32 images, image only, as PPT uses them; scored
by accuracy on the official test set, with validation carved from train.

Read from the binary version (``cifar-10-batches-bin/``, ``cifar-100-binary/``: fixed-length
records, label byte(s) then 3,072 pixel bytes, red, green, blue planes) or the hub parquet copy
(``uoft-cs/cifar10``, ``uoft-cs/cifar100``). Every file of the binary version holds a known number
of records (10,000 per CIFAR-10 batch; 50,000 and 10,000 for CIFAR-100's train and test), so a
file cut short on a record boundary (``head -c``, a copy interrupted at the right moment) is
refused by its count, not only by a size that is not a whole number of records. A stand-in
(``benchmarks/standins``, the tests' fixtures) states its own split sizes in its marker file. The
python version is pickles, and unpickling runs whatever code a file carries, so it is refused with
the name of a file to get instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from fedbench.data.base import MetricSpec, ModalData
from fedbench.data.layouts import (
    Archive,
    Problems,
    find_base,
    find_parquet,
    hub_class_names,
    hub_image_bytes,
    read_lines,
    read_parquet,
    resolve_root,
    standin_splits,
)
from fedbench.data.prepare import load_source
from fedbench.data.registry import DatasetSpec, register_dataset
from fedbench.data.sources import (
    Layout,
    SourceTable,
    assemble,
    carve_val,
    check_choice,
    check_fraction,
    check_image_size,
    decode_all,
    register_layout,
)
from fedbench.errors import ConfigError

PIXELS = 3 * 32 * 32
COARSE_CLASSES = 20  # CIFAR-100's superclasses
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass(frozen=True)
class Release:
    name: str
    classes: int
    bin_dir: str
    pickle_dir: str
    files: dict[str, tuple[str, ...]]  # split -> binary files
    records: dict[str, int]  # binary file -> records it holds in the release
    label_bytes: int  # the last one is the (fine) label; CIFAR-100's first is the coarse label
    names_files: tuple[str, ...]  # (fine or only) label names, then coarse
    hub: str
    label_column: str
    coarse_column: str | None
    archive: Archive

    @property
    def download(self) -> str:
        return (
            f"download the binary version {self.archive.url} and extract {self.bin_dir}/ there, or the "
            f"parquet copy with `huggingface-cli download {self.hub} --repo-type dataset --local-dir ROOT`"
        )


CIFAR10 = Release(
    "cifar10",
    10,
    "cifar-10-batches-bin",
    "cifar-10-batches-py",
    {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)},
    {**{f"data_batch_{i}.bin": 10_000 for i in range(1, 6)}, "test_batch.bin": 10_000},
    1,
    ("batches.meta.txt",),
    "uoft-cs/cifar10",
    "label",
    None,
    Archive(
        "cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530",
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    ),
)
CIFAR100 = Release(
    "cifar100",
    100,
    "cifar-100-binary",
    "cifar-100-python",
    {"train": ("train.bin",), "test": ("test.bin",)},
    {"train.bin": 50_000, "test.bin": 10_000},
    2,
    ("fine_label_names.txt", "coarse_label_names.txt"),
    "uoft-cs/cifar100",
    "fine_label",
    "coarse_label",
    Archive(
        "cifar-100-binary.tar.gz",
        "03b5dce01913d631647c71ecec9e9cb8",
        "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    ),
)


@dataclass
class CifarOptions:
    """root: the folder holding the binary version's folder or the parquet copy. val_fraction:
    share of train carved (per class, seeded) for validation. image_size: resize (null keeps 32;
    the backbone upsamples)."""

    root: str = ""
    val_fraction: float = 0.1
    image_size: int | None = None

    def validate(self) -> None:
        if not self.root:
            raise ConfigError(
                "data.options.root: give the folder of the CIFAR download (binary version or parquet copy)"
            )
        check_fraction("val_fraction", self.val_fraction)
        check_image_size(self.image_size)


@dataclass
class Cifar100Options(CifarOptions):
    """As CIFAR-10's, plus label: fine (100 classes) or coarse (20 superclasses)."""

    label: str = "fine"

    def validate(self) -> None:
        super().validate()
        check_choice("label", self.label, ("fine", "coarse"))


def _index(release: Release, root: Path) -> list[Path]:
    bins = [b / f for b in (root, root / release.bin_dir) for fs in release.files.values() for f in fs]
    return bins + sorted(root.rglob("*.parquet")) if root.is_dir() else bins


def _names(base: Path, filename: str, problems: Problems, release: Release, expected: int) -> list[str]:
    path = base / filename
    fix = f"extract it again from {release.archive.filename} ({release.archive.url})"
    if not path.is_file():
        if release is CIFAR10:
            return list(CIFAR10_NAMES)  # batches.meta.txt only repeats the published names
        problems.missing(path, "label names file", release.download)
        return []
    names = read_lines(path, "label names file", problems, fix)
    if names is not None and len(names) != expected:
        problems.add(f"label names file {path} has {len(names):,} names, the release has {expected}; {fix}")
    return names or []


def _check_counts(release: Release, base: Path, counts: dict[str, int], problems: Problems) -> None:
    """Refuse batch files holding fewer (or more) records than the release's (a stand-in's: what
    its marker says per split)."""
    fix = f"extract it again from {release.archive.filename} ({release.archive.url})"
    standin = standin_splits(base, release.name)
    for split, files in release.files.items():
        present = [f for f in files if f in counts]
        if standin is None:
            for f in present:
                if counts[f] != release.records[f]:
                    problems.add(
                        f"truncated batch file: {base / f} holds {counts[f]:,} records, the release's holds "
                        f"{release.records[f]:,}; {fix}"
                    )
        elif split in standin and (total := sum(counts[f] for f in present)) != standin[split]:
            most = max(counts[f] for f in present)
            short = [
                f for f in present if counts[f] < most - 1
            ] or present  # a stand-in shares a split evenly
            problems.add(
                f"truncated batch file: {', '.join(str(base / f) for f in short)} (the {split} files hold "
                f"{total:,} records, the stand-in's marker says {standin[split]:,}); write the stand-in again"
            )


def _scan_binary(release: Release, base: Path, problems: Problems) -> SourceTable | None:
    width = release.label_bytes + PIXELS
    labels, coarse, pixels, splits, counts = [], [], [], [], {}
    for split, files in release.files.items():
        for filename in files:
            path = base / filename
            if not path.is_file():
                problems.missing(path, "batch file", release.download)
                continue
            raw = np.fromfile(path, dtype=np.uint8)
            if raw.size == 0 or raw.size % width:
                problems.add(
                    f"truncated batch file: {path} has {raw.size:,} bytes, not a whole number of "
                    f"{width:,}-byte records; extract it again from {release.archive.filename} "
                    f"({release.archive.url})"
                )
                continue
            records = raw.reshape(-1, width)
            counts[filename] = len(records)
            labels.append(records[:, release.label_bytes - 1].astype(np.int64))
            coarse.append(records[:, 0].astype(np.int64))
            pixels.append(records[:, release.label_bytes :].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            splits += [split] * len(records)
    _check_counts(release, base, counts, problems)
    names = [
        _names(base, f, problems, release, n)
        for f, n in zip(release.names_files, (release.classes, COARSE_CLASSES), strict=False)
    ]
    if problems:
        return None
    label = np.concatenate(labels)
    if label.max() >= len(names[0]):
        problems.add(
            f"labels up to {label.max()} in {base} but {len(names[0])} class names; extract "
            f"{release.archive.filename} again"
        )
        return None
    extra = {"coarse": np.concatenate(coarse).tolist()} if release.coarse_column else {}
    meta = {"coarse_names": names[1]} if release.coarse_column else {}
    return _table(
        release,
        splits,
        label.tolist(),
        np.ascontiguousarray(np.concatenate(pixels)),
        names[0],
        "binary",
        extra,
        meta,
    )


def _scan_parquet(release: Release, root: Path, problems: Problems) -> SourceTable | None:
    columns = ["img", release.label_column] + ([release.coarse_column] if release.coarse_column else [])
    labels, coarse, pixels, splits, names, coarse_names = [], [], [], [], None, None
    fix = (
        f"download the copy again (`huggingface-cli download {release.hub} --repo-type dataset --local-dir "
        "ROOT`)"
    )
    for split in ("train", "test"):
        files = find_parquet(root, split)
        if not files:
            problems.missing(
                root / f"{split}-*.parquet", f"{split} split of the parquet copy", release.download
            )
            continue
        table = read_parquet(files, columns, problems, fix)
        if table is None:
            continue
        names = names or hub_class_names(files, release.label_column)
        coarse_names = coarse_names or (
            hub_class_names(files, release.coarse_column) if release.coarse_column else None
        )
        blobs = hub_image_bytes(table, "img", problems, "images", fix)
        if not problems:
            pixels.append(decode_all(blobs.to_pylist(), (32, 32)))
            labels += table.column(release.label_column).to_pylist()
            coarse += table.column(release.coarse_column).to_pylist() if release.coarse_column else []
            splits += [split] * table.num_rows
    if problems:
        return None
    names = names or (
        list(CIFAR10_NAMES) if release is CIFAR10 else [f"class_{i}" for i in range(release.classes)]
    )
    extra = {"coarse": coarse} if release.coarse_column else {}
    meta = (
        {"coarse_names": coarse_names or [f"superclass_{i}" for i in range(COARSE_CLASSES)]}
        if release.coarse_column
        else {}
    )
    return _table(release, splits, labels, np.concatenate(pixels), names, "parquet", extra, meta)


def _table(release, splits, labels, pixels, names, layout, extra, meta) -> SourceTable:
    counter: dict[str, int] = {}
    ids = []
    for s in splits:
        ids.append(f"{s}/{counter.get(s, 0):05d}")  # position in the split's own order
        counter[s] = counter.get(s, 0) + 1
    return SourceTable(ids, splits, labels, [[] for _ in ids], pixels, names, layout, extra, meta)


def scan(release: Release, root: Path, problems: Problems) -> SourceTable | None:
    first = release.files["train"][0]
    base = find_base(root, first, (release.bin_dir,))
    if base is not None:
        return _scan_binary(release, base, problems)
    if find_parquet(root, "train"):
        return _scan_parquet(release, root, problems)
    pickles = find_base(root, "batches.meta" if release is CIFAR10 else "meta", (release.pickle_dir,))
    if pickles is not None or (root / release.pickle_dir).is_dir():
        problems.add(
            f"{root / release.pickle_dir} is the python version (pickles, which fedbench never loads); "
            f"{release.download}"
        )
        return None
    problems.missing(root / release.bin_dir / first, "batch file", release.download)
    return None


def build_cifar(release: Release, options: CifarOptions, split_seed: int) -> ModalData:
    root = resolve_root(options.root, release.name, release.download)
    source = load_source(release.name, root)
    label = getattr(options, "label", "fine")
    coarse = release.coarse_column is not None and label == "coarse"
    labels = np.asarray(source.extra["coarse"] if coarse else source.labels, dtype=np.int64)
    names = source.meta["coarse_names"] if coarse else source.label_names
    split = np.array(source.splits)
    train, val = carve_val(np.flatnonzero(split == "train"), labels, options.val_fraction, split_seed)
    protocol = (
        f"official train/test; validation = {options.val_fraction:g} of train per class (split_seed "
        f"{split_seed})"
    )
    return assemble(
        source,
        name=release.name,
        rows=np.arange(len(source)),
        labels=labels,
        label_names=list(names),
        texts=[""] * len(source),
        splits={"train": train, "val": val, "test": np.flatnonzero(split == "test")},
        metric=MetricSpec("multiclass", "accuracy"),
        options=options,
        split_seed=split_seed,
        info={"protocol": protocol, "label": label},
    )


for _release in (CIFAR10, CIFAR100):
    register_layout(
        Layout(
            _release.name,
            _release.download,
            partial(scan, _release),
            partial(_index, _release),
            (_release.archive,),
            60_000,
        )
    )
    register_dataset(
        DatasetSpec(
            _release.name,
            partial(build_cifar, _release),
            Cifar100Options if _release.coarse_column else CifarOptions,
            f"CIFAR-{_release.classes} 32x32 images, image only, accuracy (PPT)"
            + (" ; label: fine or coarse" if _release.coarse_column else ""),
        )
    )
