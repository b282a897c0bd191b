"""MM-IMDb (Arevalo et al., 2017): 25,959 movies, a poster and one or more plots each, 23 genres.

Two protocols read the same download. ``map`` is MAP's: 23-genre multi-label (label order as in
MAP's code, genres outside it dropped), split.json's train / dev / test with dev as validation,
scored by F1-macro (F1-micro, -weighted, -samples beside it). ``fedprime`` is FedPrime's cut:
movies with exactly one genre, of the 8 most common such genres, single-label, dev merged into
train (so a validation share is carved from train+dev, seeded by the split seed), scored by
macro-F1 of the argmax. Results of the two are not comparable.

Layouts: MAP's (``images/<id>.jpeg``, ``labels/<id>.json``, ``split.json``) or the archive's
(``mmimdb/split.json``, ``mmimdb/dataset/<id>.jpeg`` and ``.json``). A movie's text is one of its
plots (``plot`` option); ``each`` gives one row per plot as MAP's data loader does, which puts
every plot of a movie in the movie's split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedbench.data.base import MetricSpec, ModalData
from fedbench.data.layouts import Archive, Problems, listing, read_json, resolve_root
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
from fedbench.errors import ConfigError

URL = "https://archive.org/download/mmimdb/mmimdb.tar.gz"
SPLIT_URL = "https://github.com/YiLunLee/missing_aware_prompts/blob/main/datasets/mmimdb/split.json"
DOWNLOAD = f"download mmimdb.tar.gz (8.1 GB) from {URL} and extract it there"
# MAP's label order (vilt/datasets/mmimdb_dataset.py via make_arrow): index -> genre
GENRES = (
    "Drama",
    "Comedy",
    "Romance",
    "Thriller",
    "Crime",
    "Action",
    "Adventure",
    "Horror",
    "Documentary",
    "Mystery",
    "Sci-Fi",
    "Fantasy",
    "Family",
    "Biography",
    "War",
    "History",
    "Music",
    "Animation",
    "Musical",
    "Western",
    "Sport",
    "Short",
    "Film-Noir",
)
SPLITS = ("train", "dev", "test")
VARIANTS, PLOTS = ("map", "fedprime"), ("longest", "first", "all", "each")
FEDPRIME_CLASSES = 8


@dataclass
class MMIMDbOptions:
    """root: the folder of the download (MAP's layout or the archive's). variant: map (23 genres,
    multi-label) or fedprime (single-genre movies of the 8 commonest genres). plot: a movie's text
    is its longest plot, its first, all joined, or each (one row per plot, as MAP). val_fraction:
    share of train+dev held out for validation (fedprime; map validates on dev). image_size:
    resize posters to a square (null keeps them; the backbone resizes)."""

    root: str = ""
    variant: str = "map"
    plot: str = "longest"
    val_fraction: float = 0.1
    image_size: int | None = None

    def validate(self) -> None:
        if not self.root:
            raise ConfigError(f"data.options.root: give the folder of the MM-IMDb download; {DOWNLOAD}")
        check_choice("variant", self.variant, VARIANTS)
        check_choice("plot", self.plot, PLOTS)
        check_fraction("val_fraction", self.val_fraction)
        check_image_size(self.image_size)


def _find(root: Path) -> tuple[Path, Path, Path, str] | None:
    """(split.json folder, poster folder, json folder, layout name) of MAP's or the archive's layout."""
    if (root / "split.json").is_file() and (root / "images").is_dir():
        return root, root / "images", root / "labels", "map"
    for base in (root, root / "mmimdb"):
        if (base / "split.json").is_file() and (base / "dataset").is_dir():
            return base, base / "dataset", base / "dataset", "archive"
    return None


def _index(root: Path) -> list[Path]:
    return [
        root / "split.json",
        root / "images",
        root / "labels",
        root / "mmimdb" / "split.json",
        root / "mmimdb" / "dataset",
        root / "dataset",
    ]


def scan(root: Path, problems: Problems) -> SourceTable | None:
    found = _find(root)
    if found is None:
        problems.missing(
            root / "split.json",
            "split.json with images/ and labels/ (MAP) or mmimdb/dataset/ (archive)",
            DOWNLOAD,
        )
        return None
    base, image_dir, json_dir, layout = found
    split = read_json(base / "split.json", problems, f"use MAP's split.json ({SPLIT_URL})")
    if split is None:
        return None
    if not isinstance(split, dict) or any(not isinstance(split.get(s), list) for s in SPLITS):
        problems.add(
            f"{base / 'split.json'} has no train/dev/test lists of IMDb ids; use MAP's split.json "
            f"({SPLIT_URL})"
        )
        return None
    ids = [str(i) for s in SPLITS for i in split[s]]
    splits = [s for s in SPLITS for _ in split[s]]
    fix = f"extract them again from mmimdb.tar.gz ({URL})"
    posters, jsons = listing(image_dir), listing(json_dir)
    problems.missing_many(
        image_dir, [f"{i}.jpeg" for i in ids if f"{i}.jpeg" not in posters], len(ids), "posters", fix
    )
    problems.missing_many(
        json_dir, [f"{i}.json" for i in ids if f"{i}.json" not in jsons], len(ids), "movie json files", fix
    )
    if problems:
        return None
    genres, plots, bad = [], [], []
    for i in ids:
        data = read_json(json_dir / f"{i}.json", Problems("mmimdb", root), "")
        if not isinstance(data, dict):
            bad.append(f"{i}.json")
            data = {}
        genres.append([str(g) for g in data.get("genres") or []])
        plot = data.get("plot") or []
        plots.append([str(p) for p in ([plot] if isinstance(plot, str) else plot)])
    if bad:
        problems.add(
            f"unreadable movie json files: {len(bad):,} under {json_dir} ({', '.join(bad[:3])}); {fix}"
        )
        return None
    images = EncodedImages(PathBlobs([image_dir / f"{i}.jpeg" for i in ids]), key="")
    return SourceTable(ids, splits, genres, plots, images, list(GENRES), layout)


def _pick_plot(plots: list[str], how: str) -> str:
    if not plots:
        return ""
    if how == "first":
        return plots[0]
    if how == "all":
        return " ".join(plots)
    return max(plots, key=len)  # longest; the first of equal lengths


def build_mmimdb(options: MMIMDbOptions, split_seed: int) -> ModalData:
    root = resolve_root(options.root, "mmimdb", DOWNLOAD)
    source = load_source("mmimdb", root)
    split = np.array(source.splits)
    if options.variant == "map":
        names = list(GENRES)
        labels = np.array([[g in set(gs) for g in GENRES] for gs in source.labels], dtype=np.int64).reshape(
            len(source), len(GENRES)
        )
        parts = {
            "train": np.flatnonzero(split == "train"),
            "val": np.flatnonzero(split == "dev"),
            "test": np.flatnonzero(split == "test"),
        }
        metric = MetricSpec("multilabel", "f1_macro")
        protocol = "MAP: split.json train / dev as validation / test; 23 genres, multi-label"
    else:
        single = [gs[0] if len(gs) == 1 and gs[0] in GENRES else None for gs in source.labels]
        counts = {g: single.count(g) for g in GENRES if g in single}
        names = sorted(counts, key=lambda g: (-counts[g], GENRES.index(g)))[:FEDPRIME_CLASSES]
        labels = np.array([names.index(g) if g in names else -1 for g in single], dtype=np.int64)
        pool = np.flatnonzero((labels >= 0) & np.isin(split, ["train", "dev"]))
        train, val = carve_val(pool, labels, options.val_fraction, split_seed)
        parts = {"train": train, "val": val, "test": np.flatnonzero((labels >= 0) & (split == "test"))}
        metric = MetricSpec("multiclass", "macro_f1")
        protocol = (
            f"FedPrime: single-genre movies of the {len(names)} commonest genres; dev merged into train; "
            f"validation = {options.val_fraction:g} of train+dev per class (split_seed {split_seed})"
        )
    movies = np.sort(np.concatenate(list(parts.values())))
    if options.plot == "each":
        rows = np.array([m for m in movies for _ in range(max(1, len(source.texts[m])))], dtype=np.int64)
        texts = [p for m in movies for p in (source.texts[m] or [""])]
    else:
        rows = movies
        texts = [_pick_plot(source.texts[m], options.plot) for m in movies]
    splits = {k: np.flatnonzero(np.isin(rows, v)) for k, v in parts.items()}
    info = {
        "protocol": protocol,
        "plot": options.plot,
        "movies": {k: int(len(v)) for k, v in parts.items()},
        "movies_without_plot": int(sum(not source.texts[m] for m in movies)),
    }
    return assemble(
        source,
        name="mmimdb",
        rows=rows,
        labels=labels[rows],
        label_names=names,
        texts=texts,
        splits=splits,
        metric=metric,
        options=options,
        split_seed=split_seed,
        info=info,
        groups=rows.copy(),
    )


# the archive's SHA-256 as MMF records it
ARCHIVE = Archive(
    "mmimdb.tar.gz", "7facb412f84e8e707cf5c15bb58e4cf3ac12d33e6e944e1bdefebada1259a253", URL, "sha256"
)
register_layout(Layout("mmimdb", DOWNLOAD, scan, _index, (ARCHIVE,), full_rows=25_959))
register_dataset(
    DatasetSpec(
        "mmimdb",
        build_mmimdb,
        MMIMDbOptions,
        "MM-IMDb posters + plots: 23 genres multi-label (MAP, F1-macro) or FedPrime's single-label top-8 cut",
    )
)
