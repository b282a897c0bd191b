"""CUB-200-2011 and Oxford-102 Flowers with the ten captions per image of Reed et al. (CVPR 2016),
as FedMVP uses them; scored by accuracy.

Images come from the original archives (``CUB_200_2011/`` with images.txt,
image_class_labels.txt, classes.txt, train_test_split.txt; ``jpg/`` with imagelabels.mat and
setid.mat), captions from Reed's ``text_c10/`` folder (one .txt per image, one caption a line),
which may sit anywhere up to two folders below the root. ``split: fedmvp`` re-splits all images
90/10 per class into train/test as FedMVP does (its exact ids are not published, so the split is
seeded by the split seed and recorded); ``official`` keeps the datasets' own splits. Validation
is carved from train (Flowers' official split has its own). FedMVP draws one caption at random
per step; a row here has one text, so ``caption: random`` fixes one random caption per image
(seeded), ``first`` takes the first, ``all`` joins the ten.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from fedbench.data.base import MetricSpec, ModalData
from fedbench.data.layouts import Archive, Problems, find_base, find_named_dir, listing, resolve_root
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
    stratified_split,
)
from fedbench.errors import ConfigError

REED = "https://github.com/reedscot/cvpr2016 (its README links {0}.tar.gz)"
CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
CUB_DOWNLOAD = (
    f"download CUB_200_2011.tgz from {CUB_URL} and Reed's captions from {REED.format('cvpr2016_cub')}, and "
    "extract both there"
)
FLOWERS_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
FLOWERS_DOWNLOAD = (
    f"download 102flowers.tgz, imagelabels.mat and setid.mat from {FLOWERS_URL} and Reed's captions from "
    f"{REED.format('cvpr2016_flowers')}, and extract them there"
)
# the usual English names (github.com/jimgoo/caffe-oxford102), in label order 1..102
FLOWER_NAMES = (
    "pink primrose|hard-leaved pocket orchid|canterbury bells|sweet pea|english marigold|tiger lily|"
    "moon orchid|bird of paradise|monkshood|globe thistle|snapdragon|colt's foot|king protea|spear thistle|"
    "yellow iris|globe-flower|purple coneflower|peruvian lily|balloon flower|giant white arum lily|fire lily|"
    "pincushion flower|fritillary|red ginger|grape hyacinth|corn poppy|prince of wales feathers|"
    "stemless gentian|artichoke|sweet william|carnation|garden phlox|love in the mist|mexican aster|"
    "alpine sea holly|ruby-lipped cattleya|cape flower|great masterwort|siam tulip|lenten rose|"
    "barbeton daisy|daffodil|sword lily|poinsettia|bolero deep blue|wallflower|marigold|buttercup|"
    "oxeye daisy|common dandelion|petunia|wild pansy|primula|sunflower|pelargonium|bishop of llandaff|gaura|"
    "geranium|orange dahlia|pink-yellow dahlia|cautleya spicata|japanese anemone|black-eyed susan|silverbush|"
    "californian poppy|osteospermum|spring crocus|bearded iris|windflower|tree poppy|gazania|azalea|"
    "water lily|rose|thorn apple|morning glory|passion flower|lotus|toad lily|anthurium|frangipani|clematis|"
    "hibiscus|columbine|desert-rose|tree mallow|magnolia|cyclamen|watercress|canna lily|hippeastrum|bee balm|"
    "ball moss|foxglove|bougainvillea|camellia|mallow|mexican petunia|bromelia|blanket flower|"
    "trumpet creeper|blackberry lily"
).split("|")


@dataclass
class CaptionedOptions:
    """root: the folder holding the image archive's contents and Reed's text_c10/. split: fedmvp
    (90/10 of all images per class) or official. caption: random (one per image, seeded), first,
    or all (joined). val_fraction: share of train carved for validation. image_size: resize to a
    square (FedMVP uses 256; null keeps the original)."""

    root: str = ""
    split: str = "fedmvp"
    caption: str = "random"
    val_fraction: float = 0.1
    image_size: int | None = None

    def validate(self) -> None:
        if not self.root:
            raise ConfigError(
                "data.options.root: give the folder of the images and Reed's text_c10/ (see "
                "docs/real-benchmarks.md)"
            )
        check_choice("split", self.split, ("fedmvp", "official"))
        check_choice("caption", self.caption, ("random", "first", "all"))
        check_fraction("val_fraction", self.val_fraction)
        check_image_size(self.image_size)


def _pairs(path: Path, problems: Problems) -> list[tuple[str, str]]:
    if not path.is_file():
        problems.missing(path, "index file", CUB_DOWNLOAD)
        return []
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines() if " " in line.strip()]


def _captions(root: Path, wanted: list[tuple[str, str]], problems: Problems, fix: str) -> list[list[str]]:
    """Captions of (folder, stem) pairs from Reed's text_c10/, checked against one listing per folder."""
    text_dir = find_named_dir(root, "text_c10")
    if text_dir is None:
        problems.missing(root / "text_c10", "caption folder (Reed et al.; up to two folders down)", fix)
        return []
    listings: dict[str, set[str]] = {}
    missing = []
    for folder, stem in wanted:
        if f"{stem}.txt" not in listings.setdefault(folder, listing(text_dir / folder)):
            missing.append(f"{folder}/{stem}.txt")
    problems.missing_many(text_dir, missing, len(wanted), "caption files", fix)
    if missing:
        return []
    return [
        [c.strip() for c in (text_dir / f / f"{s}.txt").read_text(errors="replace").splitlines() if c.strip()]
        for f, s in wanted
    ]


def _cub_index(root: Path) -> list[Path]:
    files = ("images.txt", "image_class_labels.txt", "classes.txt", "train_test_split.txt")
    return [b / f for b in (root, root / "CUB_200_2011") for f in files] + [
        root / "text_c10",
        root / "cvpr2016_cub",
    ]


def scan_cub(root: Path, problems: Problems) -> SourceTable | None:
    base = find_base(root, "images.txt", ("CUB_200_2011",))
    if base is None:
        problems.missing(root / "CUB_200_2011" / "images.txt", "CUB index file", CUB_DOWNLOAD)
        return None
    images = _pairs(base / "images.txt", problems)
    label = dict(_pairs(base / "image_class_labels.txt", problems))
    classes = _pairs(base / "classes.txt", problems)
    is_train = dict(_pairs(base / "train_test_split.txt", problems))
    if problems:
        return None
    ids = [i for i, _ in images]
    bad = [i for i in ids if i not in label or i not in is_train]
    if bad:
        problems.add(
            f"image ids {', '.join(bad[:3])} have no class or split in {base}; extract CUB_200_2011.tgz "
            f"again ({CUB_URL})"
        )
        return None
    rel = dict(images)
    present: dict[str, set[str]] = {}
    missing = [
        rel[i]
        for i in ids
        if Path(rel[i]).name
        not in present.setdefault(str(Path(rel[i]).parent), listing(base / "images" / Path(rel[i]).parent))
    ]
    problems.missing_many(
        base / "images", missing, len(ids), "bird images", f"extract CUB_200_2011.tgz again ({CUB_URL})"
    )
    texts = _captions(
        root, [(str(Path(rel[i]).parent), Path(rel[i]).stem) for i in ids], problems, CUB_DOWNLOAD
    )
    if problems:
        return None
    names = [c.split(".", 1)[-1].replace("_", " ") for _, c in sorted(classes, key=lambda kv: int(kv[0]))]
    return SourceTable(
        ids,
        ["train" if is_train[i].strip() == "1" else "test" for i in ids],
        [int(label[i]) - 1 for i in ids],
        texts,
        EncodedImages(PathBlobs([base / "images" / rel[i] for i in ids]), key=""),
        names,
        "caltech+reed",
    )


def _flowers_index(root: Path) -> list[Path]:
    return [root / f for f in ("imagelabels.mat", "setid.mat", "jpg", "text_c10", "cvpr2016_flowers")]


def scan_flowers(root: Path, problems: Problems) -> SourceTable | None:
    from scipy.io import loadmat  # MATLAB files: plain arrays, no code runs on load

    base = find_base(root, "imagelabels.mat", ("flowers102", "flowers-102", "102flowers"))
    if base is None:
        problems.missing(root / "imagelabels.mat", "label file", FLOWERS_DOWNLOAD)
        return None
    try:
        labels = loadmat(base / "imagelabels.mat")["labels"].ravel().astype(int)
        setid = loadmat(base / "setid.mat")
        parts = {
            s: set(setid[k].ravel().astype(int).tolist())
            for s, k in (("train", "trnid"), ("val", "valid"), ("test", "tstid"))
        }
    except FileNotFoundError:
        problems.missing(base / "setid.mat", "split file", FLOWERS_DOWNLOAD)
        return None
    except (KeyError, ValueError, OSError) as err:
        problems.add(
            f"unreadable label or split file in {base} ({type(err).__name__}: {str(err)[:60]}); download it "
            f"again from {FLOWERS_URL}"
        )
        return None
    numbers = list(range(1, len(labels) + 1))
    present = listing(base / "jpg")
    missing = [f"image_{n:05d}.jpg" for n in numbers if f"image_{n:05d}.jpg" not in present]
    problems.missing_many(
        base / "jpg", missing, len(numbers), "flower images", f"extract 102flowers.tgz again ({FLOWERS_URL})"
    )
    orphans = [n for n in numbers if not any(n in p for p in parts.values())]
    if orphans:
        problems.add(
            f"images {orphans[:3]} are in no split of setid.mat; download setid.mat again from {FLOWERS_URL}"
        )
    texts = _captions(
        root, [(f"class_{labels[n - 1]:05d}", f"image_{n:05d}") for n in numbers], problems, FLOWERS_DOWNLOAD
    )
    if problems:
        return None
    splits = [next(s for s, p in parts.items() if n in p) for n in numbers]
    return SourceTable(
        [f"image_{n:05d}" for n in numbers],
        splits,
        [int(v) - 1 for v in labels],
        texts,
        EncodedImages(PathBlobs([base / "jpg" / f"image_{n:05d}.jpg" for n in numbers]), key=""),
        list(FLOWER_NAMES),
        "vgg+reed",
    )


def build_captioned(name: str, download: str, options: CaptionedOptions, split_seed: int) -> ModalData:
    root = resolve_root(options.root, name, download)
    source = load_source(name, root)
    labels, split = np.asarray(source.labels, dtype=np.int64), np.array(source.splits)
    if options.split == "fedmvp":
        pool, test = stratified_split(labels, 0.1, (split_seed, 2))
        train, val = carve_val(pool, labels, options.val_fraction, split_seed)
        protocol = (
            f"FedMVP: 90/10 train/test of all images per class (split_seed {split_seed}); validation = "
            f"{options.val_fraction:g} of train"
        )
    elif "val" in source.splits:
        train, val, test = (np.flatnonzero(split == s) for s in ("train", "val", "test"))
        protocol = "official trnid / valid / tstid of setid.mat"
    else:
        train, val = carve_val(np.flatnonzero(split == "train"), labels, options.val_fraction, split_seed)
        test = np.flatnonzero(split == "test")
        protocol = (
            f"official train/test; validation = {options.val_fraction:g} of train per class (split_seed "
            f"{split_seed})"
        )
    draw = np.random.default_rng([split_seed, 3]).random(len(source))
    if options.caption == "first":
        texts = [c[0] if c else "" for c in source.texts]
    elif options.caption == "all":
        texts = [" ".join(c) for c in source.texts]
    else:
        texts = [c[int(draw[i] * len(c))] if c else "" for i, c in enumerate(source.texts)]
    return assemble(
        source,
        name=name,
        rows=np.arange(len(source)),
        labels=labels,
        label_names=source.label_names,
        texts=texts,
        splits={"train": train, "val": val, "test": test},
        metric=MetricSpec("multiclass", "accuracy"),
        options=options,
        split_seed=split_seed,
        info={"protocol": protocol, "caption": options.caption},
    )


CUB_ARCHIVE = Archive("CUB_200_2011.tgz", "97eceeb196236b17998738112f37df78", CUB_URL)
FLOWERS_ARCHIVE = Archive(
    "102flowers.tgz", "52808999861908f626f3c1f4e79d11fa", FLOWERS_URL + "102flowers.tgz"
)
register_layout(Layout("cub200", CUB_DOWNLOAD, scan_cub, _cub_index, (CUB_ARCHIVE,), full_rows=11_788))
register_layout(
    Layout("flowers102", FLOWERS_DOWNLOAD, scan_flowers, _flowers_index, (FLOWERS_ARCHIVE,), full_rows=8_189)
)
register_dataset(
    DatasetSpec(
        "cub200",
        partial(build_captioned, "cub200", CUB_DOWNLOAD),
        CaptionedOptions,
        "CUB-200-2011 birds + Reed captions: 200 species, accuracy (FedMVP)",
    )
)
register_dataset(
    DatasetSpec(
        "flowers102",
        partial(build_captioned, "flowers102", FLOWERS_DOWNLOAD),
        CaptionedOptions,
        "Oxford-102 flowers + Reed captions: 102 species, accuracy (FedMVP)",
    )
)
