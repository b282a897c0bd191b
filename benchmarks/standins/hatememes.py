"""Hateful Memes stand-in in the release's layout (data.md §1.3, fedbench/data/hatememes.py):

    img/<id>.png     one PNG per meme, id a 5-digit number
    train.jsonl, dev_seen.jsonl, test_seen.jsonl   one {"id", "img", "label", "text"} object a line

Real counts: train 8,500 / dev_seen 500 / test_seen 1,000 (data.md §1.3; the 10,000 full_rows of
fedbench's layout). The release's dev_unseen (540) and test_unseen (2,000) files are not written:
fedbench reads only the three above. Labels: about 36% hateful in train, half in dev_seen and
test_seen (the release balanced its evaluation sets). Texts are 5 to 30 words, lower case.
"""

from __future__ import annotations

import json

import numpy as np

from benchmarks.standins.common import Report, Writer, scaled
from benchmarks.standins.images import Pictures
from benchmarks.standins.texts import Texts

SPLITS = {"train.jsonl": (8_500, 0.36), "dev_seen.jsonl": (500, 0.50), "test_seen.jsonl": (1_000, 0.49)}
MIN_PER_SPLIT = 4


def make(out: Writer, rng: np.random.Generator, scale: float) -> Report:
    sizes = {f: scaled(n, scale, MIN_PER_SPLIT) for f, (n, _) in SPLITS.items()}
    ids = rng.choice(np.arange(10_000, 100_000), size=sum(sizes.values()), replace=False).tolist()
    pictures, texts = Pictures(rng, "PNG", side=(32, 64), aspect=(0.6, 1.2)), Texts(rng)
    at, hateful = 0, 0
    for filename, n in sizes.items():
        positives = min(n - 1, max(1, int(round(n * SPLITS[filename][1]))))
        labels = rng.permutation(np.arange(n) < positives).astype(int).tolist()
        lines = []
        for mid, label in zip(ids[at : at + n], labels, strict=True):
            out.blob(f"img/{mid:05d}.png", pictures.make())
            row = {"id": mid, "img": f"img/{mid:05d}.png", "label": label, "text": texts.phrase(5, 30)}
            lines.append(json.dumps(row))
        out.lines(filename, lines)
        hateful += positives
        at += n
    splits = {f.removesuffix(".jsonl"): n for f, n in sizes.items()}
    return Report("hatememes", out.root, at, splits, notes={"hateful": hateful})
