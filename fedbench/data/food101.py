"""UPMC Food-101 (Wang et al., 2015): about 90,000 recipe-page images with the page's title text,
101 dishes, scored by accuracy.

Layout (the Kaggle mirror): ``images/{train,test}/<class>/<class>_<n>.jpg`` and
``texts/{train,test}_titles.csv`` (filename, text, class; with or without a header row). With
MAP's ``split.json`` (train / val / test file names; val files live under ``images/train``),
``class_idx.json`` (MAP's label numbers, not alphabetical) and ``text.json`` (filename -> text)
beside them, the split, labels and texts are MAP's. Without them the official train/test split
is used and validation is carved from train. Images without a text are dropped, as MAP does.
``fedprime`` keeps FedPrime's cut: the 8 alphabetically first dishes (apple_pie ... bibimbap),
relabelled 0..7.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedbench.data.base import MetricSpec, ModalData
from fedbench.data.layouts import Problems, find_base, listing, read_json, resolve_root
from fedbench.data.prepare import load_source
from fedbench.data.registry import DatasetSpec, register_dataset
from fedbench.data.sources import (
    EncodedImages,
    Layout,
    PathBlobs,
    SourceTable,
    assemble,
    carve_val,
    check_choice,
    check_fraction,
    check_image_size,
    register_layout,
)
from fedbench.errors import ConfigError, DataError

KAGGLE = "https://www.kaggle.com/datasets/gianmarco96/upmcfood101"
MAP_FILES = "https://github.com/YiLunLee/missing_aware_prompts/tree/main/datasets/Food101"
DOWNLOAD = f"download UPMC Food-101 (images/ and texts/) from {KAGGLE} and extract it there"
SUBDIRS = ("upmcfood101", "UPMC_Food101", "food101")
FEDPRIME_CLASSES = 8


@dataclass
class Food101Options:
    """root: the folder holding images/ and texts/ (plus MAP's split.json, class_idx.json and
    text.json for MAP's protocol). variant: map (101 dishes) or fedprime (the first 8
    alphabetically). split: map (MAP's split.json) or official (images/train vs images/test, with
    val_fraction of train carved for validation). image_size: resize to a square (null keeps)."""

    root: str = ""
    variant: str = "map"
    split: str = "map"
    val_fraction: float = 0.1
    image_size: int | None = None

    def validate(self) -> None:
        if not self.root:
            raise ConfigError(f"data.options.root: give the folder of the UPMC Food-101 download; {DOWNLOAD}")
        check_choice("variant", self.variant, ("map", "fedprime"))
        check_choice("split", self.split, ("map", "official"))
        check_fraction("val_fraction", self.val_fraction)
        check_image_size(self.image_size)


def _class_of(filename: str) -> str:
    return filename[: filename.rindex("_")] if "_" in filename else filename


def _index(root: Path) -> list[Path]:
    out = []
    for base in (root, *(root / s for s in SUBDIRS)):
        out += [
            base / "split.json",
            base / "class_idx.json",
            base / "text.json",
            base / "texts" / "train_titles.csv",
            base / "texts" / "test_titles.csv",
            base / "images" / "train",
            base / "images" / "test",
        ]
    return out


def _csv_texts(base: Path, problems: Problems) -> dict[str, str]:
    texts: dict[str, str] = {}
    for part in ("train", "test"):
        path = base / "texts" / f"{part}_titles.csv"
        if not path.is_file():
            problems.missing(
                path,
                "text file",
                f"download texts/ from {KAGGLE}, or put MAP's text.json ({MAP_FILES}) in {base}",
            )
            continue
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            for row in csv.reader(fh):
                if len(row) >= 2 and row[0].lower().endswith((".jpg", ".jpeg", ".png")):  # skips a header row
                    texts[row[0]] = row[1]
    return texts


def scan(root: Path, problems: Problems) -> SourceTable | None:
    base = find_base(root, "images", SUBDIRS)
    if base is None:
        problems.missing(root / "images", "image folder images/{train,test}/<class>/", DOWNLOAD)
        return None
    folders = {p: base / "images" / p for p in ("train", "test")}
    for folder in folders.values():
        if not folder.is_dir():
            problems.missing(folder, "image folder", DOWNLOAD)
    if problems:
        return None
    classes = sorted(p.name for p in folders["train"].iterdir() if p.is_dir())
    if (base / "text.json").is_file():
        raw = read_json(base / "text.json", problems, f"use MAP's text.json ({MAP_FILES})") or {}
        texts = {k: " ".join(v) if isinstance(v, list) else str(v) for k, v in raw.items()}
        text_source = "text.json"
    else:
        texts, text_source = _csv_texts(base, problems), "texts/*_titles.csv"
    names, layout = classes, "kaggle"
    if (base / "split.json").is_file():
        split = read_json(base / "split.json", problems, f"use MAP's split.json ({MAP_FILES})") or {}
        entries = [(s, str(f)) for s in ("train", "val", "test") for f in split.get(s, [])]
        if not entries:
            problems.add(
                f"{base / 'split.json'} has no train/val/test lists; use MAP's split.json ({MAP_FILES})"
            )
        layout = "kaggle+map-split"
        if (base / "class_idx.json").is_file():
            idx = (
                read_json(base / "class_idx.json", problems, f"use MAP's class_idx.json ({MAP_FILES})") or {}
            )
            names = sorted(idx, key=lambda c: idx[c])
    else:
        entries = [
            (p, f) for p, folder in folders.items() for c in classes for f in sorted(listing(folder / c))
        ]
    if problems:
        return None
    unknown = sorted({_class_of(f) for _, f in entries} - set(names))
    if unknown:
        problems.add(
            f"files of unknown classes ({', '.join(unknown[:3])}) in the split; check class_idx.json and "
            "images/train/"
        )
        return None
    present = {(p, c): listing(folder / c) for p, folder in folders.items() for c in names}
    number = {c: i for i, c in enumerate(names)}
    ids, splits, labels, paths, missing, no_text = [], [], [], [], [], 0
    for s, f in entries:
        part, c = ("test" if s == "test" else "train"), _class_of(f)
        if f not in present[(part, c)]:
            missing.append(f"{c}/{f}")
        elif f not in texts:
            no_text += 1
        else:
            ids.append(f)
            splits.append(s)
            labels.append(number[c])
            paths.append(folders[part] / c / f)
    problems.missing_many(
        base / "images", missing, len(entries), "images", f"extract them again from the download ({KAGGLE})"
    )
    if problems:
        return None
    return SourceTable(
        ids,
        splits,
        labels,
        [[texts[f]] for f in ids],
        EncodedImages(PathBlobs(paths), key=""),
        list(names),
        layout,
        meta={"text_source": text_source, "dropped_without_text": no_text},
    )


def build_food101(options: Food101Options, split_seed: int) -> ModalData:
    root = resolve_root(options.root, "food101", DOWNLOAD)
    source = load_source("food101", root)
    split, labels = np.array(source.splits), np.asarray(source.labels, dtype=np.int64)
    names = list(source.label_names)
    keep = np.ones(len(source), dtype=bool)
    if options.variant == "fedprime":
        names = sorted(names)[:FEDPRIME_CLASSES]
        remap = np.array([names.index(n) if n in names else -1 for n in source.label_names])
        labels = remap[labels]
        keep = labels >= 0
    if options.split == "map":
        if "val" not in source.splits:
            raise DataError(
                f"food101: data.options.split is map but {root} has no MAP split.json; put split.json, "
                f"class_idx.json and text.json from {MAP_FILES} there, or set data.options.split to official"
            )
        parts = {k: np.flatnonzero(keep & (split == k)) for k in ("train", "val", "test")}
        protocol = "MAP: split.json train / val / test"
    else:
        train, val = carve_val(
            np.flatnonzero(keep & (split != "test")), labels, options.val_fraction, split_seed
        )
        parts = {"train": train, "val": val, "test": np.flatnonzero(keep & (split == "test"))}
        protocol = (
            f"official train/test; validation = {options.val_fraction:g} of train per class (split_seed "
            f"{split_seed})"
        )
    if options.variant == "fedprime":
        protocol += f"; FedPrime's cut: the first {FEDPRIME_CLASSES} dishes alphabetically"
    rows = np.sort(np.concatenate(list(parts.values())))
    position = np.full(len(source), -1)
    position[rows] = np.arange(len(rows))
    info = {"protocol": protocol, **source.meta}
    return assemble(
        source,
        name="food101",
        rows=rows,
        labels=labels[rows],
        label_names=names,
        texts=[source.texts[r][0] for r in rows],
        splits={k: position[v] for k, v in parts.items()},
        metric=MetricSpec("multiclass", "accuracy"),
        options=options,
        split_seed=split_seed,
        info=info,
    )


register_layout(Layout("food101", DOWNLOAD, scan, _index, full_rows=90_704))
register_dataset(
    DatasetSpec(
        "food101",
        build_food101,
        Food101Options,
        "UPMC Food-101 images + page titles: 101 dishes (MAP, accuracy) or FedPrime's 8-dish cut",
    )
)
