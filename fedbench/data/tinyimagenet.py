"""Tiny-ImageNet (cs231n): 200 ImageNet classes, 64x64 images, image only, as PPT uses it; scored
by accuracy on the labelled validation set (the test set has no labels), with validation carved
from train.

Layouts: the original zip (``tiny-imagenet-200/`` with wnids.txt, ``train/<wnid>/images/*.JPEG``,
``val/images/`` and ``val/val_annotations.txt``) or the hub parquet copy ``zh-plus/tiny-imagenet``
(splits ``train`` and ``valid``, labels stored with their WordNet ids). Classes are numbered in
sorted WordNet-id order in both, so the two layouts give the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    listing,
    read_parquet,
    resolve_root,
)
from fedbench.data.prepare import load_source
from fedbench.data.registry import DatasetSpec, register_dataset
from fedbench.data.sources import (
    ArrayBlobs,
    EncodedImages,
    Layout,
    PathBlobs,
    SourceTable,
    assemble,
    carve_val,
    check_fraction,
    check_image_size,
    register_layout,
)
from fedbench.errors import ConfigError

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
HUB = "zh-plus/tiny-imagenet"
DOWNLOAD = (
    f"download {URL} and extract it there, or the parquet copy with "
    f"`huggingface-cli download {HUB} --repo-type dataset --local-dir ROOT`"
)


@dataclass
class TinyImageNetOptions:
    """root: the folder holding tiny-imagenet-200/ or the parquet copy. val_fraction: share of
    train carved (per class, seeded) for validation; the official validation set is the test
    split. image_size: resize (null keeps 64; the backbone upsamples)."""

    root: str = ""
    val_fraction: float = 0.1
    image_size: int | None = None

    def validate(self) -> None:
        if not self.root:
            raise ConfigError(f"data.options.root: give the folder of the Tiny-ImageNet download; {DOWNLOAD}")
        check_fraction("val_fraction", self.val_fraction)
        check_image_size(self.image_size)


def _index(root: Path) -> list[Path]:
    out = []
    for base in (root, root / "tiny-imagenet-200"):
        out += [
            base / "wnids.txt",
            base / "val" / "val_annotations.txt",
            base / "train",
            base / "val" / "images",
        ]
    return out + sorted(root.rglob("*.parquet")) if root.is_dir() else out


def _scan_original(base: Path, problems: Problems) -> SourceTable | None:
    wnids = sorted({w.strip() for w in (base / "wnids.txt").read_text().splitlines() if w.strip()})
    fix = f"extract tiny-imagenet-200.zip again ({URL})"
    number = {w: c for c, w in enumerate(wnids)}
    ids, splits, labels, paths = [], [], [], []
    for c, wnid in enumerate(wnids):
        folder = base / "train" / wnid / "images"
        files = sorted(listing(folder))
        if not files:
            problems.missing(folder, f"training images of class {wnid}", fix)
        for f in files:
            ids.append(Path(f).stem)
            splits.append("train")
            labels.append(c)
            paths.append(folder / f)
    annotations = base / "val" / "val_annotations.txt"
    if not annotations.is_file():
        problems.missing(annotations, "validation labels", fix)
        return None
    present, missing = listing(base / "val" / "images"), []
    for line in annotations.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        if parts[1] not in number:
            problems.add(f"{annotations} names class {parts[1]} which wnids.txt lacks; {fix}")
            return None
        if parts[0] not in present:
            missing.append(parts[0])
        ids.append(Path(parts[0]).stem)
        splits.append("valid")
        labels.append(number[parts[1]])
        paths.append(base / "val" / "images" / parts[0])
    problems.missing_many(base / "val" / "images", missing, splits.count("valid"), "validation images", fix)
    if problems:
        return None
    words = {}
    if (base / "words.txt").is_file():
        for line in (base / "words.txt").read_text(errors="replace").splitlines():
            wnid, _, text = line.partition("\t")
            if wnid in wnids:
                words[wnid] = text.strip()
    return SourceTable(
        ids,
        splits,
        labels,
        [[] for _ in ids],
        EncodedImages(PathBlobs(paths), key=""),
        wnids,
        "original",
        meta={"words": words},
    )


def _scan_parquet(root: Path, problems: Problems) -> SourceTable | None:
    fix = f"download the copy again (`huggingface-cli download {HUB} --repo-type dataset --local-dir ROOT`)"
    ids, splits, labels, blobs, wnids = [], [], [], [], None
    for split in ("train", "valid"):
        files = find_parquet(root, split)
        if not files:
            problems.missing(
                root / "data" / f"{split}-*.parquet", f"{split} split of the parquet copy", DOWNLOAD
            )
            continue
        names = hub_class_names(files, "label")
        if names is None:
            problems.add(
                f"{files[0]} carries no class names, so its labels cannot be matched to WordNet ids; {fix}"
            )
            continue
        wnids = wnids or sorted(names)
        table = read_parquet(files, ["image", "label"], problems, fix)
        if table is None:
            continue
        order = {n: wnids.index(n) for n in names if n in wnids}
        labels += [order[names[v]] for v in table.column("label").to_pylist()]
        ids += [f"{split}/{i:05d}" for i in range(table.num_rows)]
        splits += [split] * table.num_rows
        blobs += hub_image_bytes(table, "image", problems, "images", fix).to_pylist()
    if problems:
        return None
    import pyarrow as pa

    images = EncodedImages(ArrayBlobs(pa.array(blobs, pa.binary()), ids), key="")
    return SourceTable(ids, splits, labels, [[] for _ in ids], images, list(wnids or []), "parquet")


def scan(root: Path, problems: Problems) -> SourceTable | None:
    base = find_base(root, "wnids.txt", ("tiny-imagenet-200",))
    if base is not None:
        return _scan_original(base, problems)
    if find_parquet(root, "train"):
        return _scan_parquet(root, problems)
    problems.missing(root / "tiny-imagenet-200" / "wnids.txt", "class list", DOWNLOAD)
    return None


def build_tinyimagenet(options: TinyImageNetOptions, split_seed: int) -> ModalData:
    root = resolve_root(options.root, "tinyimagenet", DOWNLOAD)
    source = load_source("tinyimagenet", root)
    labels, split = np.asarray(source.labels, dtype=np.int64), np.array(source.splits)
    train, val = carve_val(np.flatnonzero(split == "train"), labels, options.val_fraction, split_seed)
    protocol = (
        f"train / official validation set as test; validation = {options.val_fraction:g} of train per class "
        f"(split_seed {split_seed})"
    )
    return assemble(
        source,
        name="tinyimagenet",
        rows=np.arange(len(source)),
        labels=labels,
        label_names=source.label_names,
        texts=[""] * len(source),
        splits={"train": train, "val": val, "test": np.flatnonzero(split == "valid")},
        metric=MetricSpec("multiclass", "accuracy"),
        options=options,
        split_seed=split_seed,
        info={"protocol": protocol},
    )


ARCHIVE = Archive("tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de", URL)
register_layout(Layout("tinyimagenet", DOWNLOAD, scan, _index, (ARCHIVE,), full_rows=110_000))
register_dataset(
    DatasetSpec(
        "tinyimagenet",
        build_tinyimagenet,
        TinyImageNetOptions,
        "Tiny-ImageNet 64x64 images, 200 classes, image only, accuracy (PPT)",
    )
)
