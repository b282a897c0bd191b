"""UPMC Food-101 stand-in in the Kaggle mirror's layout with MAP's three files beside it (data.md
§1.2, fedbench/data/food101.py):

    images/{train,test}/<class>/<class>_<n>.jpg     texts/{train,test}_titles.csv (no header)
    split.json  {"train": [...], "val": [...], "test": [...]}  (val files live under images/train)
    class_idx.json  {class: MAP's number}           text.json  {filename: title}

Real counts: MAP's split.json lists 90,704 files, train 61,142 / val 6,846 / test 22,716 (data.md
§1.2; the full_rows of fedbench's layout); 48 of them have no text, so MAP (and fedbench) keep
90,656. Those 48 are spread over the splits in proportion (32 / 4 / 12) and scaled with at least one,
so the dropping path always runs. Titles are 5 to 20 words, most naming the dish.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from benchmarks.standins.common import Report, Writer, allocate, even
from benchmarks.standins.images import Pictures
from benchmarks.standins.names import FOOD101, FOOD101_MAP_ANCHORS
from benchmarks.standins.texts import Texts

SPLITS = {"train": 61_142, "val": 6_846, "test": 22_716}
FILES = sum(SPLITS.values())  # 90,704
NO_TEXT = 48


def map_class_order() -> dict[str, int]:
    """MAP's class_idx.json: the known anchors, the other dishes in a fixed shuffled order."""
    rest = [c for c in FOOD101 if c not in FOOD101_MAP_ANCHORS]
    rest = [rest[i] for i in np.random.default_rng(101).permutation(len(rest))]
    free = [i for i in range(len(FOOD101)) if i not in FOOD101_MAP_ANCHORS.values()]
    order = {**FOOD101_MAP_ANCHORS, **dict(zip(rest, free, strict=True))}
    return dict(sorted(order.items(), key=lambda kv: kv[1]))


def make(out: Writer, rng: np.random.Generator, scale: float) -> Report:
    classes = FOOD101
    counts = {s: allocate(even(n, len(classes)), scale) for s, n in SPLITS.items()}
    total = sum(sum(v) for v in counts.values())
    no_text_per_split = allocate([round(NO_TEXT * n / FILES) for n in SPLITS.values()], scale, minimum=0)
    if scale < 1 and sum(no_text_per_split) == 0:
        no_text_per_split[0] = 1  # keep the drop-without-text path exercised at small scales
    pictures, texts = Pictures(rng, "JPEG", side=(24, 64)), Texts(rng)
    listed: dict[str, list[str]] = {s: [] for s in SPLITS}
    titles: dict[str, str] = {}
    csv_rows: dict[str, list[tuple[str, str, str]]] = {"train": [], "test": []}
    # which files lack a text: drawn per split among that split's files
    silent = {
        s: set(rng.choice(sum(counts[s]), no_text_per_split[i], replace=False).tolist())
        for i, s in enumerate(SPLITS)
    }
    seen = dict.fromkeys(SPLITS, 0)
    for c, dish in enumerate(classes):
        per = {s: counts[s][c] for s in SPLITS}
        numbers = rng.permutation(sum(per.values())).tolist()  # file numbers, shuffled over the splits
        dish_words = dish.split("_")
        for split in SPLITS:
            part = "test" if split == "test" else "train"
            for _ in range(per[split]):
                filename = f"{dish}_{numbers.pop()}.jpg"
                out.blob(f"images/{part}/{dish}/{filename}", pictures.make())
                listed[split].append(filename)
                if seen[split] not in silent[split]:
                    title = texts.sentence(5, 20, dish_words if rng.random() < 0.7 else None)
                    titles[filename] = title
                    csv_rows[part].append((filename, title, dish))
                seen[split] += 1
    for part, rows in csv_rows.items():
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        out.text(f"texts/{part}_titles.csv", buf.getvalue())
    out.json("split.json", {s: [listed[s][i] for i in rng.permutation(len(listed[s]))] for s in SPLITS})
    out.json("class_idx.json", map_class_order())
    out.json("text.json", titles)
    kept = len(titles)
    return Report(
        "food101",
        out.root,
        total,
        {s: len(v) for s, v in listed.items()},
        notes={"with text (kept)": kept, "without text": total - kept, "classes": len(classes)},
    )
