"""CUB-200-2011 and Oxford-102 Flowers stand-ins with Reed et al.'s ten captions per image (data.md
§1.4-1.5, fedbench/data/captioned.py):

    CUB_200_2011/{images.txt, image_class_labels.txt, train_test_split.txt, classes.txt,
                  bounding_boxes.txt, images/<NNN.Class>/<Class_Name>_<XXXX>_<YYYYYY>.jpg}
    cvpr2016_cub/text_c10/<NNN.Class>/<stem>.txt             ten captions, one a line

    jpg/image_<NNNNN>.jpg, imagelabels.mat (labels 1..102, uint8), setid.mat (trnid, valid, tstid)
    cvpr2016_flowers/text_c10/class_<CCCCC>/image_<NNNNN>.txt

Real counts: CUB 11,788 images of 200 species, official split 5,994 train / 5,794 test (about 30 of
each species' ~59 images in train); Flowers 8,189 images of 102 species, trnid 1,020 / valid 1,020
(10 per species each) / tstid 6,149, species of 40 to 258 images (data.md §1.4-1.5). The per-species
counts of the releases are not reproduced one by one: they are drawn once (fixed seed, so the same
for every stand-in) to match the totals and their spread.
"""

from __future__ import annotations

import numpy as np
from scipy.io import savemat

from benchmarks.standins.common import Report, Writer, allocate
from benchmarks.standins.images import Pictures
from benchmarks.standins.names import CUB200
from benchmarks.standins.texts import Texts

CUB_TRAIN, CUB_TEST = 5_994, 5_794
FLOWERS_TRN, FLOWERS_VAL, FLOWERS_TST, FLOWER_CLASSES = 1_020, 1_020, 6_149, 102
CAPTIONS = 10


def share(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``weights`` (largest remainder), summing exactly."""
    quota = weights * total / weights.sum()
    base = np.floor(quota).astype(np.int64)
    base[np.argsort(-(quota - base), kind="stable")[: total - int(base.sum())]] += 1
    return base


def cub_counts() -> tuple[list[int], list[int]]:
    """Real-like (train, test) per species: 30 train each but six with 29; 60 images each but 212
    fewer spread at random, as the release's 41..60 per species."""
    fixed = np.random.default_rng(2011)
    train = np.full(len(CUB200), 30)
    train[fixed.choice(len(CUB200), 6, replace=False)] = 29
    totals = np.full(len(CUB200), 60) - fixed.multinomial(212, np.full(len(CUB200), 1 / len(CUB200)))
    return train.tolist(), (totals - train).tolist()


def captions(texts: Texts, subject: str) -> str:
    return "".join(f"this {subject} {texts.phrase(8, 22)}\n" for _ in range(CAPTIONS))


def title_case(name: str) -> str:
    return "_".join(p[:1].upper() + p[1:] for p in name.split("_"))


def make_cub(out: Writer, rng: np.random.Generator, scale: float) -> Report:
    train_real, test_real = cub_counts()
    train, test = allocate(train_real, scale), allocate(test_real, scale)
    pictures, texts = Pictures(rng, "JPEG", side=(32, 64)), Texts(rng)
    folders = [f"{c + 1:03d}.{name}" for c, name in enumerate(CUB200)]
    serials = rng.choice(np.arange(1, 800_000), size=sum(train) + sum(test), replace=False)
    images, labels, is_train, boxes = [], [], [], []
    for c, folder in enumerate(folders):
        n = train[c] + test[c]
        numbers = np.sort(rng.choice(np.arange(1, 130), size=n, replace=False))  # sparse, as the release's
        flags = rng.permutation(np.arange(n) < train[c])
        for j in range(n):
            k = len(images) + 1
            stem = f"{title_case(folder.split('.', 1)[1])}_{numbers[j]:04d}_{serials[k - 1]}"
            out.blob(f"CUB_200_2011/images/{folder}/{stem}.jpg", pictures.make())
            out.text(f"cvpr2016_cub/text_c10/{folder}/{stem}.txt", captions(texts, "bird"))
            images.append(f"{k} {folder}/{stem}.jpg")
            labels.append(f"{k} {c + 1}")
            is_train.append(f"{k} {int(flags[j])}")
            x, y = rng.integers(0, 60, 2)
            boxes.append(f"{k} {x}.0 {y}.0 {rng.integers(60, 400)}.0 {rng.integers(60, 300)}.0")
    out.lines("CUB_200_2011/images.txt", images)
    out.lines("CUB_200_2011/image_class_labels.txt", labels)
    out.lines("CUB_200_2011/train_test_split.txt", is_train)
    out.lines("CUB_200_2011/classes.txt", [f"{c + 1} {f}" for c, f in enumerate(folders)])
    out.lines("CUB_200_2011/bounding_boxes.txt", boxes)
    return Report(
        "cub200",
        out.root,
        len(images),
        {"train": sum(train), "test": sum(test)},
        notes={"classes": len(folders), "captions per image": CAPTIONS},
    )


def flowers_counts() -> list[int]:
    """Real-like tstid images per species: 20 each plus a lognormal share of the rest (6,149 in
    all), so with its 10 trnid and 10 valid images a species has 40 to a few hundred."""
    fixed = np.random.default_rng(102)
    extra = share(FLOWERS_TST - 20 * FLOWER_CLASSES, fixed.lognormal(0.0, 0.7, FLOWER_CLASSES))
    return (20 + extra).tolist()


def make_flowers(out: Writer, rng: np.random.Generator, scale: float) -> Report:
    tst_real = flowers_counts()
    trn = allocate([FLOWERS_TRN // FLOWER_CLASSES] * FLOWER_CLASSES, scale)
    val = allocate([FLOWERS_VAL // FLOWER_CLASSES] * FLOWER_CLASSES, scale)
    tst = allocate(tst_real, scale)
    pictures, texts = Pictures(rng, "JPEG", side=(32, 64)), Texts(rng)
    order = np.random.default_rng(8189).permutation(FLOWER_CLASSES)  # the release groups images by species
    labels, sets = [], {"trnid": [], "valid": [], "tstid": []}
    for c in order.tolist():
        which = ["trnid"] * trn[c] + ["valid"] * val[c] + ["tstid"] * tst[c]
        for part in rng.permutation(which).tolist():
            k = len(labels) + 1
            labels.append(c + 1)
            sets[part].append(k)
            out.blob(f"jpg/image_{k:05d}.jpg", pictures.make())
            out.text(
                f"cvpr2016_flowers/text_c10/class_{c + 1:05d}/image_{k:05d}.txt", captions(texts, "flower")
            )
    savemat(out.path("imagelabels.mat"), {"labels": np.array([labels], dtype=np.uint8)})
    out.counted("imagelabels.mat")
    savemat(out.path("setid.mat"), {k: np.array([sorted(v)], dtype=np.uint16) for k, v in sets.items()})
    out.counted("setid.mat")
    splits = {"trnid": len(sets["trnid"]), "valid": len(sets["valid"]), "tstid": len(sets["tstid"])}
    return Report(
        "flowers102",
        out.root,
        len(labels),
        splits,
        notes={"classes": FLOWER_CLASSES, "captions per image": CAPTIONS},
    )
