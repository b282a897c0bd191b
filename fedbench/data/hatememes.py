"""Hateful Memes (Kiela et al., 2020): meme images with their overlay text, hateful or not, scored
by AUROC (the challenge's metric; accuracy beside it).

Splits as MAP uses them: ``train.jsonl``, validation = ``dev_seen.jsonl`` (500), test =
``test_seen.jsonl`` (1,000, with labels). The phase-1 names ``dev.jsonl`` / ``test.jsonl`` are
accepted when the ``_seen`` files are absent, but a test file without labels is refused. Layouts:
the release (``img/<id>.png`` beside the jsonl files, also under ``data/`` as MAP's script reads
it) or a hub parquet copy with ``image``, ``text`` and ``label`` columns per split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedbench.data.base import MetricSpec, ModalData
from fedbench.data.layouts import (
    Problems,
    find_base,
    find_parquet,
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
    check_image_size,
    register_layout,
)
from fedbench.errors import ConfigError

RELEASE = "https://ai.meta.com/tools/hatefulmemes/"
MIRROR = "https://huggingface.co/datasets/neuralcatcher/hateful_memes"
DOWNLOAD = (
    f"get the Hateful Memes release (img/ and the .jsonl files; gated, {RELEASE}) or its copy at {MIRROR}, "
    "and extract it there"
)
FILES = {
    "train": ("train.jsonl",),
    "dev": ("dev_seen.jsonl", "dev.jsonl"),
    "test": ("test_seen.jsonl", "test.jsonl"),
}
PARQUET = {"train": ("train",), "dev": ("dev_seen", "dev", "validation"), "test": ("test_seen", "test")}
LABEL_NAMES = ["not-hateful", "hateful"]


@dataclass
class HatefulMemesOptions:
    """root: the folder of the release (img/ and the jsonl files, or data/ holding them) or of a
    hub parquet copy. image_size: resize to a square (null keeps; the backbone resizes)."""

    root: str = ""
    image_size: int | None = None

    def validate(self) -> None:
        if not self.root:
            raise ConfigError(f"data.options.root: give the folder of the Hateful Memes download; {DOWNLOAD}")
        check_image_size(self.image_size)


def _index(root: Path) -> list[Path]:
    out = [p for base in (root, root / "data") for names in FILES.values() for p in (base / n for n in names)]
    out += [root / "img", root / "data" / "img"]
    return out + sorted(root.rglob("*.parquet")) if root.is_dir() else out


def _read_jsonl(path: Path, problems: Problems) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    problems.add(f"{path} line {n} is not JSON; download the file again ({DOWNLOAD})")
                    return []
    return records


def _scan_jsonl(base: Path, problems: Problems) -> SourceTable | None:
    ids, splits, labels, texts, paths, missing = [], [], [], [], [], []
    present = listing(base / "img")
    for split, names in FILES.items():
        path = next((base / n for n in names if (base / n).is_file()), None)
        if path is None:
            problems.missing(base / names[0], f"{split} split file", DOWNLOAD)
            continue
        records = _read_jsonl(path, problems)
        unlabelled = sum("label" not in r for r in records)
        if unlabelled:
            problems.add(
                f"{path} has {unlabelled:,} rows without a label (the phase-1 test file); put "
                f"test_seen.jsonl (with labels) from the final release ({RELEASE}) in {base}"
            )
            continue
        for r in records:
            img = str(r.get("img", f"img/{r.get('id')}.png"))
            if Path(img).name not in present:
                missing.append(img)
            ids.append(str(r.get("id")))
            splits.append(split)
            labels.append(int(r["label"]))
            texts.append([str(r.get("text", ""))])
            paths.append(base / img)
    problems.missing_many(
        base / "img", missing, len(ids), "meme images", f"extract img/ again from the release ({DOWNLOAD})"
    )
    if problems:
        return None
    return SourceTable(
        ids, splits, labels, texts, EncodedImages(PathBlobs(paths), key=""), list(LABEL_NAMES), "release"
    )


def _scan_parquet(root: Path, problems: Problems) -> SourceTable | None:
    ids, splits, labels, texts, blobs = [], [], [], [], []
    fix = f"download the copy again ({MIRROR})"
    for split, names in PARQUET.items():
        files = next((f for f in (find_parquet(root, n) for n in names) if f), [])
        if not files:
            problems.missing(root / f"{names[0]}-*.parquet", f"{split} split of the parquet copy", DOWNLOAD)
            continue
        table = read_parquet(files, ["image", "text", "label"], problems, fix)
        if table is None:
            continue
        raw = table.column("label").to_pylist()
        if any(v is None for v in raw):
            problems.add(
                f"the {split} split of the parquet copy has rows without a label; use a copy whose test "
                f"split is labelled ({MIRROR})"
            )
            continue
        ids += [f"{split}/{i}" for i in range(table.num_rows)]
        splits += [split] * table.num_rows
        labels += [int(v) for v in raw]
        texts += [[str(t or "")] for t in table.column("text").to_pylist()]
        blobs += hub_image_bytes(table, "image", problems, "memes", fix).to_pylist()
    if problems:
        return None
    import pyarrow as pa

    images = EncodedImages(ArrayBlobs(pa.array(blobs, pa.binary()), ids), key="")
    return SourceTable(ids, splits, labels, texts, images, list(LABEL_NAMES), "parquet")


def scan(root: Path, problems: Problems) -> SourceTable | None:
    base = find_base(root, "train.jsonl", ("data", "hateful_memes"))
    if base is not None:
        return _scan_jsonl(base, problems)
    if find_parquet(root, "train"):
        return _scan_parquet(root, problems)
    problems.missing(root / "train.jsonl", "train split file (with img/ beside it)", DOWNLOAD)
    return None


def build_hatememes(options: HatefulMemesOptions, split_seed: int) -> ModalData:
    root = resolve_root(options.root, "hatememes", DOWNLOAD)
    source = load_source("hatememes", root)
    split = np.array(source.splits)
    rows = np.arange(len(source))
    splits = {
        "train": np.flatnonzero(split == "train"),
        "val": np.flatnonzero(split == "dev"),
        "test": np.flatnonzero(split == "test"),
    }
    return assemble(
        source,
        name="hatememes",
        rows=rows,
        labels=np.asarray(source.labels, dtype=np.int64),
        label_names=LABEL_NAMES,
        texts=[t[0] if t else "" for t in source.texts],
        splits=splits,
        metric=MetricSpec("binary", "auroc"),
        options=options,
        split_seed=split_seed,
        info={"protocol": "train / dev_seen as validation / test_seen (MAP)"},
    )


register_layout(Layout("hatememes", DOWNLOAD, scan, _index, full_rows=10_000))
register_dataset(
    DatasetSpec(
        "hatememes",
        build_hatememes,
        HatefulMemesOptions,
        "Hateful Memes images + overlay text: binary, AUROC (MAP)",
    )
)
