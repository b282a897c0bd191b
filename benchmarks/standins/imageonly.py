"""Image-only stand-ins: CIFAR-10 / CIFAR-100 binary versions and Tiny-ImageNet's cs231n zip layout
(data.md §1.6, fedbench/data/cifar.py and tinyimagenet.py).

    cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin   records: label byte + 3,072 pixel bytes
    cifar-10-batches-bin/batches.meta.txt                         class names, one a line
    cifar-100-binary/train.bin, test.bin                          records: coarse, fine + 3,072 pixel bytes
    cifar-100-binary/fine_label_names.txt, coarse_label_names.txt

    tiny-imagenet-200/wnids.txt, words.txt
    tiny-imagenet-200/train/<wnid>/images/<wnid>_<n>.JPEG, train/<wnid>/<wnid>_boxes.txt
    tiny-imagenet-200/val/images/val_<n>.JPEG, val/val_annotations.txt, test/images/test_<n>.JPEG

Real counts: CIFAR 50,000 train (5,000 / 500 per class) + 10,000 test (1,000 / 100 per class);
Tiny-ImageNet 200 classes x 500 train, 10,000 val (50 per class), 10,000 unlabelled test, all 64x64
JPEG; words.txt of the zip names all 82,115 WordNet ids, not only the 200. The 200 WordNet ids here
are made up (fixed seed) in the real format (``n`` and eight digits).
"""

from __future__ import annotations

import numpy as np

from benchmarks.standins.common import Report, Writer, allocate, even, scaled
from benchmarks.standins.images import Pictures, planes
from benchmarks.standins.names import CIFAR10, CIFAR100_COARSE, CIFAR100_COARSE_OF, CIFAR100_FINE
from benchmarks.standins.texts import Texts

CHUNK = 2_000  # records encoded at a time
TINY_CLASSES, TINY_TRAIN, TINY_VAL, TINY_TEST, TINY_WORDS = 200, 500, 50, 10_000, 82_115


def shuffled_labels(per_class: list[int], rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(len(per_class)), per_class))


def records(labels: np.ndarray, heads: np.ndarray, pictures: Pictures):
    """Binary records in chunks: ``heads`` [N, k] label bytes, then the pixel planes."""
    for start in range(0, len(labels), CHUNK):
        stop = min(len(labels), start + CHUNK)
        pixels = planes(pictures.pixels(32, 32, stop - start))
        yield np.concatenate([heads[start:stop].astype(np.uint8), pixels], axis=1).tobytes()


def make_cifar10(out: Writer, rng: np.random.Generator, scale: float) -> Report:
    pictures = Pictures(rng)
    train = shuffled_labels(allocate([5_000] * 10, scale), rng)
    test = shuffled_labels(allocate([1_000] * 10, scale), rng)
    at = 0
    for i, n in enumerate(even(len(train), 5), 1):
        part = train[at : at + n]
        out.chunks(f"cifar-10-batches-bin/data_batch_{i}.bin", records(part, part[:, None], pictures))
        at += n
    out.chunks("cifar-10-batches-bin/test_batch.bin", records(test, test[:, None], pictures))
    out.text("cifar-10-batches-bin/batches.meta.txt", "".join(f"{n}\n" for n in CIFAR10) + "\n")
    return Report(
        "cifar10",
        out.root,
        len(train) + len(test),
        {"train": len(train), "test": len(test)},
        notes={"classes": 10},
    )


def make_cifar100(out: Writer, rng: np.random.Generator, scale: float) -> Report:
    pictures = Pictures(rng)
    coarse_of = np.array([CIFAR100_COARSE_OF[f] for f in CIFAR100_FINE])
    counts = {}
    for split, per_class in (("train", 500), ("test", 100)):
        fine = shuffled_labels(allocate([per_class] * 100, scale), rng)
        heads = np.stack([coarse_of[fine], fine], axis=1)
        out.chunks(f"cifar-100-binary/{split}.bin", records(fine, heads, pictures))
        counts[split] = len(fine)
    out.lines("cifar-100-binary/fine_label_names.txt", CIFAR100_FINE)
    out.lines("cifar-100-binary/coarse_label_names.txt", CIFAR100_COARSE)
    return Report(
        "cifar100", out.root, sum(counts.values()), counts, notes={"classes": 100, "superclasses": 20}
    )


def wordnet_ids() -> list[str]:
    """The 82,115 ids of words.txt; the first 200 are the classes (fixed, like the release's)."""
    fixed = np.random.default_rng(200)
    return [
        f"n{v:08d}" for v in fixed.choice(np.arange(1_000_000, 15_000_000), size=TINY_WORDS, replace=False)
    ]


def box(rng: np.random.Generator) -> str:
    x0, y0 = rng.integers(0, 32, 2)
    x1, y1 = rng.integers(32, 64, 2)
    return f"{x0}\t{y0}\t{x1}\t{y1}"


def make_tinyimagenet(out: Writer, rng: np.random.Generator, scale: float) -> Report:
    base = "tiny-imagenet-200"
    ids = wordnet_ids()
    wnids = ids[:TINY_CLASSES]
    texts, pictures = Texts(np.random.default_rng(82_115)), Pictures(rng, "JPEG", square=64)
    out.lines(f"{base}/wnids.txt", [wnids[i] for i in rng.permutation(TINY_CLASSES)])
    out.lines(f"{base}/words.txt", [f"{w}\t{texts.phrase(1, 3)}, {texts.phrase(1, 2)}" for w in sorted(ids)])
    train = allocate([TINY_TRAIN] * TINY_CLASSES, scale)
    for c, wnid in enumerate(wnids):
        boxes = []
        for n in range(train[c]):
            out.blob(f"{base}/train/{wnid}/images/{wnid}_{n}.JPEG", pictures.make())
            boxes.append(f"{wnid}_{n}.JPEG\t{box(rng)}")
        out.lines(f"{base}/train/{wnid}/{wnid}_boxes.txt", boxes)
    val = shuffled_labels(allocate([TINY_VAL] * TINY_CLASSES, scale), rng)
    annotations = []
    for i, c in enumerate(val.tolist()):
        out.blob(f"{base}/val/images/val_{i}.JPEG", pictures.make())
        annotations.append(f"val_{i}.JPEG\t{wnids[c]}\t{box(rng)}")
    out.lines(f"{base}/val/val_annotations.txt", annotations)
    test = scaled(TINY_TEST, scale)
    for i in range(test):
        out.blob(f"{base}/test/images/test_{i}.JPEG", pictures.make())
    return Report(
        "tinyimagenet",
        out.root,
        sum(train) + len(val) + test,
        {"train": sum(train), "val": len(val), "test (unlabelled)": test},
        notes={"classes": TINY_CLASSES},
    )
